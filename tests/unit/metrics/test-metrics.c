/* Tests of metrics/render.c (a synthetic lab: a whole GPU, a MIG-enabled GPU
 * with two instances, leases, violations, an alert sink, a command line that
 * needs escaping), metrics_authorized() and the http config section. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "basic/macro.h"
#include "config/config.h"
#include "metrics/http.h"
#include "metrics/render.h"

#define MIB (UINT64_C(1) << 20)

static const char *names(void *userdata, uid_t uid)
{
        return uid == 1000 ? "alice" : uid == 1001 ? "bob" : NULL;
}

typedef struct Lab {
        GpuDevice gpus[2];
        GpuInstance instances[2];
        GpuProcess processes[3];
        GpuSnapshot snapshot;
        LeaseDevice dev_a[1], dev_b[1];
        StoredLease lease_a, lease_b;
        const StoredLease *leases[2];
        AlertsSinkStats sinks[1];
        MetricsInput in;
} Lab;

static void lab_init(Lab *lab)
{
        memset(lab, 0, sizeof *lab);
        lab->gpus[0] = (GpuDevice){
            .index = 0,
            .uuid = "GPU-aaaa",
            .name = "NVIDIA A100-SXM4-80GB",
            .pci_bus_id = "00000000:07:00.0",
            .minor = 5, /* /dev/nvidia5: the device label still says nvidia0 (the index) */
            .memory_total_bytes = 81920 * MIB,
            .memory_used_bytes = 5120 * MIB,
            .clock_sm_mhz = 1410,
            .clock_mem_mhz = 1593,
            .has_gpm = true,
            .gpm = {.graphics_active = 0.5, .sm_active = 0.4, .sm_occupancy = -1,
                    .tensor_active = 0.25, .dram_active = 0.125},
            .memory_reserved_bytes = 0,
            .utilization_gpu = 40,
            .utilization_memory = 10,
            .temperature_c = 41,
            .power_mw = 123456,
            .energy_mj = 1000,
            .last_xid = 79,
            .healthy = true,
            .processes = &lab->processes[0],
            .n_processes = 2,
        };
        lab->instances[0] = (GpuInstance){.uuid = "MIG-1111",
                                          .profile = "3g.40gb",
                                          .gpu_instance_id = 1,
                                          .memory_total_bytes = 40192 * MIB,
                                          .memory_used_bytes = 1024 * MIB};
        lab->instances[1] = (GpuInstance){.uuid = "MIG-2222",
                                          .profile = "3g.40gb",
                                          .gpu_instance_id = 2,
                                          .memory_total_bytes = 40192 * MIB,
                                          .memory_used_bytes = 0};
        lab->gpus[1] = (GpuDevice){
            .index = 1,
            .uuid = "GPU-bbbb",
            .name = "NVIDIA A100-SXM4-80GB",
            .pci_bus_id = "00000000:0F:00.0",
            .minor = 1,
            .memory_total_bytes = 81920 * MIB,
            .memory_used_bytes = 1024 * MIB,
            .utilization_gpu = -1,
            .utilization_memory = -1,
            .temperature_c = 35,
            .power_mw = 61000,
            .energy_mj = GPU_VALUE_UNKNOWN,
            .clock_sm_mhz = -1,
            .clock_mem_mhz = 1215,
            .healthy = true,
            .mig_enabled = true,
            .instances = lab->instances,
            .n_instances = 2,
            .processes = &lab->processes[2],
            .n_processes = 1,
        };
        lab->processes[0] = (GpuProcess){.pid = 4242,
                                         .memory_used_bytes = 4096 * MIB,
                                         .instance = -1,
                                         .uid = 1000,
                                         .command = (char *)"python train.py"};
        lab->processes[1] = (GpuProcess){.pid = 4343,
                                         .memory_used_bytes = 1024 * MIB,
                                         .instance = -1,
                                         .uid = 1001,
                                         .command = (char *)"sh -c \"echo a\\b\"\nnext"};
        lab->processes[2] = (GpuProcess){.pid = 4444,
                                         .memory_used_bytes = 1024 * MIB,
                                         .instance = 0,
                                         .uid = 1001,
                                         .command = (char *)"python\xff"};
        lab->snapshot =
            (GpuSnapshot){.tick_usec = 2500, .nvml_errors = 2, .gpus = lab->gpus, .n_gpus = 2,
                          .driver_version = "550.54.15"};

        strcpy(lab->dev_a[0].uuid, "GPU-aaaa");
        strcpy(lab->dev_b[0].uuid, "MIG-1111");
        lab->lease_a = (StoredLease){.id = 1,
                                     .uid = 1000,
                                     .kind = LEASE_MANUAL,
                                     .created_usec = 1000 * 1000000ULL,
                                     .idle_device_usec = 30 * 1000000ULL,
                                     .devices = lab->dev_a,
                                     .n_devices = 1};
        lab->lease_b = (StoredLease){.id = 2,
                                     .uid = 1001,
                                     .kind = LEASE_RUN,
                                     .created_usec = 1090 * 1000000ULL,
                                     .devices = lab->dev_b,
                                     .n_devices = 1};
        lab->leases[0] = &lab->lease_a;
        lab->leases[1] = &lab->lease_b;
        lab->sinks[0] = (AlertsSinkStats){.name = "ops", .sent = 5, .failed = 1};
        lab->in = (MetricsInput){
            .snapshot = &lab->snapshot,
            .hostname = "node\"1",
            .version = "0.1.0",
            .leases = lab->leases,
            .n_leases = 2,
            .queue_length = 3,
            .violations_total = 4,
            .signals_sent_total = 2,
            .log_suppressed_total = 17,
            .connections_refused_total = 5,
            .audit_suppressed_total = 4999,
            .status_cached_total = 31,
            .status_built_total = 7,
            .checkpoints_thread_total = 12,
            .checkpoints_commit_total = 1,
            .sinks = lab->sinks,
            .n_sinks = 1,
            .per_process = true,
            .now_usec = 1100 * 1000000ULL,
            .user_name = names,
        };
}

#define LABELS0                                                                                    \
        "{gpu=\"0\",UUID=\"GPU-aaaa\",pci_bus_id=\"00000000:07:00.0\",device=\"nvidia0\","         \
        "modelName=\"NVIDIA A100-SXM4-80GB\",Hostname=\"node\\\"1\","                           \
        "DCGM_FI_DRIVER_VERSION=\"550.54.15\"}"
#define LABELS1                                                                                    \
        "{gpu=\"1\",UUID=\"GPU-bbbb\",pci_bus_id=\"00000000:0F:00.0\",device=\"nvidia1\","         \
        "modelName=\"NVIDIA A100-SXM4-80GB\""
#define HOST "Hostname=\"node\\\"1\",DCGM_FI_DRIVER_VERSION=\"550.54.15\"}"

static void assert_has(const char *text, const char *line)
{
        if (!strstr(text, line))
                fail_msg("missing from the output: %s\n---\n%s", line, text);
}

static void assert_lacks(const char *text, const char *needle)
{
        if (strstr(text, needle))
                fail_msg("unexpected in the output: %s", needle);
}

static void test_render(void **state)
{
        _cleanup_free_ char *out = NULL;
        Lab lab;
        size_t len = 0;

        lab_init(&lab);
        assert_int_equal(metrics_render(&lab.in, &out, &len), 0);
        assert_int_equal(strlen(out), len);

        /* dcgm-exporter series of the whole GPU. */
        assert_has(out, "# HELP DCGM_FI_DEV_FB_USED ");
        assert_has(out, "# TYPE DCGM_FI_DEV_FB_USED gauge\n");
        assert_has(out, "\nDCGM_FI_DEV_GPU_UTIL" LABELS0 " 40\n");
        assert_has(out, "\nDCGM_FI_DEV_MEM_COPY_UTIL" LABELS0 " 10\n");
        assert_has(out, "\nDCGM_FI_DEV_FB_USED" LABELS0 " 5120\n");
        assert_has(out, "\nDCGM_FI_DEV_FB_FREE" LABELS0 " 76800\n");
        assert_has(out, "\nDCGM_FI_DEV_GPU_TEMP" LABELS0 " 41\n");
        assert_has(out, "\nDCGM_FI_DEV_POWER_USAGE" LABELS0 " 123.456\n");
        assert_has(out, "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n");
        assert_has(out, "\nDCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION" LABELS0 " 1000\n");
        assert_has(out, "\nDCGM_FI_DEV_XID_ERRORS" LABELS0 " 79\n");
        /* Clocks, and GPM's profiling series as DCGM's ratios (issue 17). */
        assert_has(out, "\nDCGM_FI_DEV_SM_CLOCK" LABELS0 " 1410\n");
        assert_has(out, "\nDCGM_FI_DEV_MEM_CLOCK" LABELS0 " 1593\n");
        assert_has(out, "\nDCGM_FI_PROF_GR_ENGINE_ACTIVE" LABELS0 " 0.500000\n");
        assert_has(out, "\nDCGM_FI_PROF_SM_ACTIVE" LABELS0 " 0.400000\n");
        assert_has(out, "\nDCGM_FI_PROF_PIPE_TENSOR_ACTIVE" LABELS0 " 0.250000\n");
        assert_has(out, "\nDCGM_FI_PROF_DRAM_ACTIVE" LABELS0 " 0.125000\n");
        assert_lacks(out, "\nDCGM_FI_PROF_SM_OCCUPANCY{");
        /* No GPM on GPU 1 (before Hopper): its profiling series are absent,
         * not 0; an unknown clock is absent too. */
        assert_lacks(out, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE" LABELS1);
        assert_lacks(out, "DCGM_FI_DEV_SM_CLOCK" LABELS1);
        assert_has(out, "\nDCGM_FI_DEV_MEM_CLOCK" LABELS1 "," HOST " 1215\n");

        /* The MIG-enabled GPU: memory per instance, with the parent's UUID;
         * no utilisation (unknown on MIG), no energy (unknown here). */
        assert_has(out, "\nDCGM_FI_DEV_FB_USED" LABELS1
                        ",GPU_I_PROFILE=\"3g.40gb\",GPU_I_ID=\"1\"," HOST " 1024\n");
        assert_has(out, "\nDCGM_FI_DEV_FB_FREE" LABELS1
                        ",GPU_I_PROFILE=\"3g.40gb\",GPU_I_ID=\"2\"," HOST " 40192\n");
        assert_lacks(out, "DCGM_FI_DEV_FB_USED" LABELS1 "," HOST);
        assert_lacks(out, "DCGM_FI_DEV_GPU_UTIL" LABELS1);
        assert_lacks(out, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION" LABELS1);
        assert_has(out, "\nDCGM_FI_DEV_GPU_TEMP" LABELS1 "," HOST " 35\n");

        /* gpukeeper's own series. */
        assert_has(out, "# TYPE gpukeeper_device_leased gauge\n");
        assert_has(out, "\ngpukeeper_device_leased{uuid=\"GPU-aaaa\",gpu=\"0\",holder=\"alice\","
                        "kind=\"manual\"} 1\n");
        assert_has(out, "\ngpukeeper_device_leased{uuid=\"MIG-1111\",gpu=\"1\",holder=\"bob\","
                        "kind=\"run\"} 1\n");
        assert_has(out, "\ngpukeeper_device_leased{uuid=\"MIG-2222\",gpu=\"1\",holder=\"\","
                        "kind=\"\"} 0\n");
        assert_lacks(out, "gpukeeper_device_leased{uuid=\"GPU-bbbb\"");
        assert_has(out, "\ngpukeeper_leases_active 2\n");
        assert_has(out, "\ngpukeeper_queue_length 3\n");
        assert_has(out,
                   "# TYPE gpukeeper_violations_total counter\ngpukeeper_violations_total 4\n");
        assert_has(out, "\ngpukeeper_signals_sent_total 2\n");
        assert_has(out, "\ngpukeeper_log_messages_suppressed_total 17\n");
        assert_has(out, "\ngpukeeper_socket_connections_refused_total 5\n");
        assert_has(out, "\ngpukeeper_audit_refusals_suppressed_total 4999\n");
        assert_has(out, "\ngpukeeper_status_replies_cached_total 31\n");
        assert_has(out, "\ngpukeeper_status_replies_built_total 7\n");
        assert_has(out, "# TYPE gpukeeper_store_checkpoints_total counter\n"
                        "gpukeeper_store_checkpoints_total{by=\"thread\"} 12\n"
                        "gpukeeper_store_checkpoints_total{by=\"commit\"} 1\n");
        assert_has(out, "\ngpukeeper_alerts_sent_total{sink=\"ops\"} 5\n");
        assert_has(out, "\ngpukeeper_alerts_failed_total{sink=\"ops\"} 1\n");
        assert_has(out, "\ngpukeeper_sampler_duration_seconds 0.002500\n");
        assert_has(out, "\ngpukeeper_nvml_errors 2\n");
        assert_has(out, "\ngpukeeper_build_info{version=\"0.1.0\"} 1\n");
        assert_has(out, "\ngpukeeper_user_leased_devices{user=\"alice\"} 1\n");
        assert_has(out, "\ngpukeeper_user_leased_devices{user=\"bob\"} 1\n");
        assert_has(out, "\ngpukeeper_user_gpu_memory_used_bytes{user=\"alice\"} 4294967296\n");
        assert_has(out, "\ngpukeeper_user_gpu_memory_used_bytes{user=\"bob\"} 2147483648\n");
        assert_has(out, "# TYPE gpukeeper_user_leased_device_seconds_total counter\n");
        assert_has(out, "\ngpukeeper_user_leased_device_seconds_total{user=\"alice\"} "
                        "100.000000\n");
        assert_has(out, "\ngpukeeper_user_leased_device_seconds_total{user=\"bob\"} 10.000000\n");
        assert_has(out, "\ngpukeeper_user_idle_leased_device_seconds_total{user=\"alice\"} "
                        "30.000000\n");

        /* Per process, with the command line escaped and invalid UTF-8 repaired. */
        assert_has(out, "\ngpukeeper_process_gpu_memory_used_bytes{pid=\"4343\",user=\"bob\","
                        "command=\"sh -c \\\"echo a\\\\b\\\"\\nnext\",gpu=\"0\","
                        "uuid=\"GPU-aaaa\"} 1073741824\n");
        assert_has(out, "\ngpukeeper_process_gpu_memory_used_bytes{pid=\"4444\",user=\"bob\","
                        "command=\"python\xef\xbf\xbd\",gpu=\"1\",uuid=\"MIG-1111\"} 1073741824\n");
}

static void test_render_options(void **state)
{
        _cleanup_free_ char *out = NULL;
        Lab lab;
        size_t len = 0;

        lab_init(&lab);
        lab.in.per_process = false;
        lab.in.user_name = NULL;
        assert_int_equal(metrics_render(&lab.in, &out, &len), 0);
        assert_lacks(out, "gpukeeper_process_");
        /* Without names, users are shown by uid. */
        assert_has(out, "\ngpukeeper_user_leased_devices{user=\"1000\"} 1\n");
        free(out);
        out = NULL;

        /* No snapshot yet: still a valid exposition with the daemon's own series. */
        lab.in.snapshot = NULL;
        assert_int_equal(metrics_render(&lab.in, &out, &len), 0);
        assert_lacks(out, "DCGM_");
        assert_has(out, "\ngpukeeper_leases_active 2\n");
}

/* MIG room (issue 13): free memory slices and on-demand instances per MIG GPU. */
static void test_render_mig(void **state)
{
        _cleanup_free_ char *out = NULL;
        MetricsMig mig[] = { { .uuid = "GPU-aa\"bb", .index = 3, .free_slices = 5, .on_demand = 2 } };
        Lab lab;
        size_t len = 0;

        lab_init(&lab);
        assert_int_equal(metrics_render(&lab.in, &out, &len), 0);
        assert_lacks(out, "gpukeeper_mig_");
        free(out);
        out = NULL;
        lab.in.mig = mig;
        lab.in.n_mig = 1;
        assert_int_equal(metrics_render(&lab.in, &out, &len), 0);
        assert_has(out, "\n# TYPE gpukeeper_mig_free_slices gauge\n");
        assert_has(out, "\ngpukeeper_mig_free_slices{gpu=\"3\",UUID=\"GPU-aa\\\"bb\"} 5\n");
        assert_has(out, "\ngpukeeper_mig_on_demand_instances{gpu=\"3\",UUID=\"GPU-aa\\\"bb\"} 2\n");
}

/* Strict mode's series: absent in other modes; the gauge and one counter
 * per (user, node) in strict mode. */
static void test_render_fence(void **state)
{
        _cleanup_free_ char *out = NULL;
        const MetricsFenceDenied denied[] = {
                {.uid = 1000, .device = "/dev/nvidia1", .count = 3},
                {.uid = 4242, .device = "/dev/nvidia-caps/nvidia-cap12", .count = 1},
        };
        Lab lab;
        size_t len = 0;

        lab_init(&lab);
        assert_int_equal(metrics_render(&lab.in, &out, &len), 0);
        assert_lacks(out, "gpukeeper_fence_");
        free(out);
        out = NULL;

        lab.in.fence_state = 1;
        lab.in.fence_denied = denied;
        lab.in.n_fence_denied = ELEMENTSOF(denied);
        assert_int_equal(metrics_render(&lab.in, &out, &len), 0);
        assert_has(out, "\n# TYPE gpukeeper_fence_active gauge\ngpukeeper_fence_active 1\n");
        assert_has(out, "\ngpukeeper_fence_denied_opens_total{user=\"alice\","
                        "device=\"/dev/nvidia1\"} 3\n");
        assert_has(out, "\ngpukeeper_fence_denied_opens_total{user=\"4242\","
                        "device=\"/dev/nvidia-caps/nvidia-cap12\"} 1\n");
        free(out);
        out = NULL;

        lab.in.fence_state = 2;
        assert_int_equal(metrics_render(&lab.in, &out, &len), 0);
        assert_has(out, "\ngpukeeper_fence_active 0\n");
}

/* Shared leases: a budget and a use gauge per shared lease (issue 14),
 * the use summed over the holder's processes on the lease's GPU; nothing
 * without shared leases. */
static void test_render_shared(void **state)
{
        _cleanup_free_ char *out = NULL;
        Lab lab;
        size_t len = 0;

        lab_init(&lab);
        assert_int_equal(metrics_render(&lab.in, &out, &len), 0);
        assert_lacks(out, "gpukeeper_lease_memory_");
        free(out);
        out = NULL;
        lab.lease_a.share_bytes = UINT64_C(20) << 30;
        assert_int_equal(metrics_render(&lab.in, &out, &len), 0);
        assert_has(out, "\n# TYPE gpukeeper_lease_memory_budget_bytes gauge\n");
        assert_has(out, "\ngpukeeper_lease_memory_budget_bytes{lease=\"1\",user=\"alice\","
                        "uuid=\"GPU-aaaa\"} 21474836480\n");
        /* alice's one process on GPU-aaaa: 4096 MiB (bob's 1024 MiB is not hers). */
        assert_has(out, "\ngpukeeper_lease_memory_used_bytes{lease=\"1\",user=\"alice\","
                        "uuid=\"GPU-aaaa\"} 4294967296\n");
        assert_lacks(out, "lease=\"2\"");
}

static void test_every_family_once(void **state)
{
        _cleanup_free_ char *out = NULL;
        Lab lab;
        size_t len = 0;
        const char *p;

        lab_init(&lab);
        assert_int_equal(metrics_render(&lab.in, &out, &len), 0);
        /* Each family's TYPE appears once, and no sample precedes its TYPE. */
        for (p = strstr(out, "# TYPE "); p; p = strstr(p + 1, "# TYPE ")) {
                char name[128], needle[160];

                assert_int_equal(sscanf(p, "# TYPE %127s", name), 1);
                snprintf(needle, sizeof needle, "# TYPE %s ", name);
                assert_ptr_equal(strstr(out, needle), p);
                assert_null(strstr(p + 1, needle));
        }
}

static void test_authorized(void **state)
{
        assert_true(metrics_authorized(NULL, NULL));
        assert_true(metrics_authorized("anything", NULL));
        assert_true(metrics_authorized("Bearer s3cret", "s3cret"));
        assert_false(metrics_authorized(NULL, "s3cret"));
        assert_false(metrics_authorized("Bearer s3cre", "s3cret"));
        assert_false(metrics_authorized("Bearer s3cret2", "s3cret"));
        assert_false(metrics_authorized("Bearer s3creT", "s3cret"));
        assert_false(metrics_authorized("Basic s3cret", "s3cret"));
        assert_false(metrics_authorized("Bearer ", "s3cret"));
}

/* Load `yaml` as a config file; returns config_load's result. */
static int load(const char *yaml, Config **ret, char **ret_error)
{
        char path[] = "/tmp/gk-test-metrics-XXXXXX";
        int fd = mkstemp(path), r;

        assert_true(fd >= 0);
        assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
        close(fd);
        r = config_load(path, ret, ret_error);
        unlink(path);
        return r;
}

static void expect_config_error(const char *yaml, const char *want)
{
        _cleanup_free_ char *error = NULL;
        Config *c = NULL;

        assert_int_equal(load(yaml, &c, &error), -EINVAL);
        assert_non_null(error);
        if (!strstr(error, want))
                fail_msg("error '%s' lacks '%s'", error, want);
}

static void test_config_http(void **state)
{
        _cleanup_free_ char *error = NULL;
        Config *c = NULL;

        assert_int_equal(config_new_defaults(&c), 0);
        assert_string_equal(c->http.listen.text, "127.0.0.1:9400");
        assert_true(c->http.listen.loopback);
        assert_null(c->http.token);
        assert_false(c->http.per_process_metrics);
        config_free(c);

        assert_int_equal(
            load("http:\n  listen: \"[::1]:9500\"\n  per_process_metrics: yes\n", &c, &error), 0);
        assert_true(c->http.listen.loopback);
        assert_int_equal(c->http.listen.addr.ss_family, AF_INET6);
        assert_true(c->http.per_process_metrics);
        config_free(c);

        assert_int_equal(load("http:\n  listen: 0.0.0.0:9400\n  token: abc.DEF-123\n", &c, &error),
                         0);
        assert_false(c->http.listen.loopback);
        assert_string_equal(c->http.token, "abc.DEF-123");
        config_free(c);

        expect_config_error("http:\n  listen: 0.0.0.0:9400\n",
                            "'http.listen' (0.0.0.0:9400) is not a loopback address: set "
                            "'http.token' too");
        expect_config_error("http:\n  listen: localhost:9400\n", "an IPv4 address");
        expect_config_error("http:\n  listen: 127.0.0.1:0\n", "an IPv4 address");
        expect_config_error("http:\n  listen: 127.0.0.1:65536\n", "an IPv4 address");
        expect_config_error("http:\n  listen: \"::1:9400\"\n", "an IPv4 address");
        expect_config_error("http:\n  listen: \"[::1]\"\n", "an IPv4 address");
        expect_config_error("http:\n  token: \"a b\"\n", "printable ASCII");
        expect_config_error("http:\n  frobnicate: 1\n", "unknown key");
        /* The token is a secret: never quoted back. */
        {
                _cleanup_free_ char *e = NULL;
                Config *x = NULL;

                assert_int_equal(load("http:\n  token: \"SECRET TOKEN\"\n", &x, &e), -EINVAL);
                assert_null(strstr(e, "SECRET"));
        }
}

/* Label values: the text format's escapes, and no terminal controls (ESC,
 * BEL, CR, C1 CSI) from a command line. */
static void test_label_value_controls(void **state)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        assert_non_null(f);
        metrics_write_label_value(f, "a\x1b]0;pwned\x07" "b\rc\nd\\e\"f\x7fg\xc2\x9b" "2Jh\tdone\xc3\xa9");
        fclose(f);
        assert_string_equal(buf, "a]0;pwnedbc\\nd\\\\e\\\"fg2Jhdone\xc3\xa9");
        free(buf);
}

static void test_host_allowed(void **state)
{
        static const char *const good[] = {
                NULL, "localhost", "localhost:9400", "LocalHost", "localhost.", "127.0.0.1",
                "127.0.0.1:9400", "127.1.2.3:1", "[::1]", "[::1]:9400", "gpu.example:9400",
                "GPU.example",
        };
        static const char *const bad[] = {
                "", "evil.example", "evil.example:9400", "localhost.evil.example",
                "127.0.0.1.evil.example", "10.0.0.1", "128.0.0.1", "[::2]", "[::1]x",
                "localhost:", "localhost:94x", "[::1", "::1",
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                assert_true(metrics_host_allowed(good[i], "gpu.example:9400"));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_false(metrics_host_allowed(bad[i], "gpu.example:9400"));
        assert_true(metrics_host_allowed("127.0.0.1", NULL));
        assert_false(metrics_host_allowed("gpu.example", NULL));
        assert_false(metrics_host_allowed("gpu.example", "127.0.0.1:9400"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_render),
            cmocka_unit_test(test_render_options),
            cmocka_unit_test(test_render_mig),
            cmocka_unit_test(test_render_fence),
                cmocka_unit_test(test_render_shared),
            cmocka_unit_test(test_every_family_once),
            cmocka_unit_test(test_authorized),
            cmocka_unit_test(test_label_value_controls),
            cmocka_unit_test(test_host_allowed),
            cmocka_unit_test(test_config_http),
        };

        return cmocka_run_group_tests_name("test-metrics", tests, NULL, NULL);
}
