/* Unit tests for status replies built from a synthetic snapshot: every
 * documented key, null for unknown values, MIG attribution, owners named,
 * and invalid UTF-8 from /proc repaired instead of breaking the reply. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/status.h"
#include "gpu/nvml-abi.h"

static const char *const top_keys[] = {"simulated", "driver_version", "hostname", "sampled_at",
                                       "nvml_available", "message", "gpu_count", "gpus", "queue",
                                       "fence"};
static const char *const gpu_keys[] = {"index", "uuid", "name", "pci_bus_id", "numa_node",
                                       "memory_total_bytes", "memory_used_bytes",
                                       "utilization_gpu", "temperature_c", "power_w", "healthy",
                                       "error", "mig_enabled", "instances", "processes",
                                       "lease", "drained", "mig",
                                       "processes_incomplete", "shared"};
static const char *const instance_keys[] = {"uuid", "profile", "gpu_instance_id",
                                            "compute_instance_id", "memory_total_bytes",
                                            "memory_used_bytes", "lease", "drained"};
static const char *const process_keys[] = {"pid", "uid", "user", "command", "memory_used_bytes",
                                           "instance_uuid", "vanished", "zombie", "exited",
                                           "leased", "violation"};

static void assert_keys(json_t *o, const char *const *keys, size_t n)
{
        assert_true(json_is_object(o));
        assert_int_equal(json_object_size(o), n);
        for (size_t i = 0; i < n; i++)
                if (!json_object_get(o, keys[i]))
                        fail_msg("missing key %s", keys[i]);
}

static GpuSnapshot *make_snapshot(void)
{
        GpuSnapshot *s = calloc(1, sizeof *s);
        GpuDevice *g;

        s->taken_usec = UINT64_C(1700000000) * 1000000;
        s->simulated = true;
        s->nvml_available = true;
        strcpy(s->driver_version, "550.54.15");
        s->n_gpus = 2;
        s->gpus = calloc(2, sizeof *s->gpus);

        g = &s->gpus[0];
        g->index = 0;
        strcpy(g->uuid, "GPU-00000000-0000-0000-0000-000000000000");
        strcpy(g->name, "NVIDIA A100-SXM4-80GB");
        strcpy(g->pci_bus_id, "00000000:07:00.0");
        g->numa_node = 1;
        g->memory_total_bytes = UINT64_C(80) << 30;
        g->memory_used_bytes = UINT64_C(5) << 30;
        g->utilization_gpu = 37;
        g->temperature_c = 34;
        g->power_mw = 61000;
        g->healthy = true;
        g->n_processes = 2;
        g->processes = calloc(2, sizeof *g->processes);
        g->processes[0] = (GpuProcess){.pid = (uint32_t)getpid(), .memory_used_bytes = 1 << 20,
                                       .instance = -1, .uid = 0,
                                       .gpu_instance_id = NVML_INSTANCE_ID_NONE,
                                       .compute_instance_id = NVML_INSTANCE_ID_NONE,
                                       .command = strdup("python bad\xff\xfe utf8")};
        g->processes[1] = (GpuProcess){.pid = 99999, .memory_used_bytes = GPU_VALUE_UNKNOWN,
                                       .instance = -1, .vanished = true, .uid = (uid_t)-1};

        g = &s->gpus[1];
        g->index = 1;
        strcpy(g->uuid, "GPU-11111111-1111-1111-1111-111111111111");
        strcpy(g->name, "NVIDIA A100-SXM4-80GB");
        g->numa_node = -1;
        g->memory_total_bytes = GPU_VALUE_UNKNOWN;
        g->memory_used_bytes = GPU_VALUE_UNKNOWN;
        g->utilization_gpu = -1;
        g->temperature_c = -1;
        g->power_mw = -1;
        g->mig_enabled = true;
        g->healthy = false;
        g->error = NVML_ERROR_GPU_IS_LOST;
        strcpy(g->error_call, "nvmlDeviceGetMemoryInfo_v2");
        g->n_instances = 1;
        g->instances = calloc(1, sizeof *g->instances);
        g->instances[0] = (GpuInstance){.gpu_instance_id = 1, .compute_instance_id = 0,
                                        .memory_total_bytes = UINT64_C(40) << 30,
                                        .memory_used_bytes = 0};
        strcpy(g->instances[0].uuid, "MIG-22222222-2222-2222-2222-222222222222");
        strcpy(g->instances[0].profile, "3g.40gb");
        g->n_processes = 1;
        g->processes = calloc(1, sizeof *g->processes);
        g->processes[0] = (GpuProcess){.pid = 4242, .memory_used_bytes = 5 << 20, .instance = 0,
                                       .uid = 0, .gpu_instance_id = 1, .compute_instance_id = 0,
                                       .command = strdup("python infer.py")};
        return s;
}

/* A daemon with make_snapshot()'s GPUs and root's manual lease 7 on GPU 0,
 * for an hour from 1700000000. */
typedef struct test_daemon {
        LeaseDevice held;
        Lease lease;
        UserMemo names;
        Daemon d;
} test_daemon;

static void test_daemon_init(test_daemon *t)
{
        *t = (test_daemon){
            .held = {.uuid = "GPU-00000000-0000-0000-0000-000000000000",
                     .gpu_uuid = "GPU-00000000-0000-0000-0000-000000000000"},
            .lease = {.rec = {.id = 7, .uid = 0, .kind = LEASE_MANUAL,
                              .created_usec = UINT64_C(1700000000) * 1000000,
                              .expires_usec = UINT64_C(1700003600) * 1000000,
                              .n_devices = 1}},
        };
        t->lease.rec.devices = &t->held;
        t->d.user_names = &t->names;
        strcpy(t->d.hostname, "testhost");
        t->d.snapshot = make_snapshot();
        t->d.leases.leases = &t->lease;
        t->d.leases.n_leases = 1;
}

static void test_status_keys_and_values(void **state)
{
        test_daemon t;
        json_t *o = NULL, *gpus, *g0, *g1, *p, *l;

        test_daemon_init(&t);
        assert_int_equal(status_build(&t.d, STATUS_OBJECTS, &o), 0);

        assert_keys(o, top_keys, sizeof top_keys / sizeof top_keys[0]);
        assert_true(json_is_true(json_object_get(o, "simulated")));
        assert_string_equal(json_string_value(json_object_get(o, "driver_version")), "550.54.15");
        assert_string_equal(json_string_value(json_object_get(o, "hostname")), "testhost");
        assert_true(json_is_null(json_object_get(o, "message")));
        assert_true(json_real_value(json_object_get(o, "sampled_at")) == 1700000000.0);
        assert_int_equal(json_integer_value(json_object_get(o, "gpu_count")), 2);
        /* What the header of `gpukeeper status` shows comes before the
         * GPUs, so that it can print each GPU as it arrives. */
        {
                _cleanup_free_ char *dump = json_dumps(o, JSON_COMPACT);
                const char *gpus_at;

                assert_non_null(dump);
                gpus_at = strstr(dump, "\"gpus\":");
                assert_non_null(gpus_at);
                for (size_t i = 0; i < 7; i++) {
                        char key[32];

                        snprintf(key, sizeof key, "\"%s\":", top_keys[i]);
                        assert_true(strstr(dump, key) && strstr(dump, key) < gpus_at);
                }
        }

        gpus = json_object_get(o, "gpus");
        assert_int_equal(json_array_size(gpus), 2);
        g0 = json_array_get(gpus, 0);
        g1 = json_array_get(gpus, 1);
        assert_keys(g0, gpu_keys, sizeof gpu_keys / sizeof gpu_keys[0]);
        assert_keys(g1, gpu_keys, sizeof gpu_keys / sizeof gpu_keys[0]);
        assert_int_equal(json_integer_value(json_object_get(g0, "memory_total_bytes")),
                         INT64_C(80) << 30);
        assert_true(json_real_value(json_object_get(g0, "power_w")) == 61.0);
        assert_int_equal(json_integer_value(json_object_get(g0, "numa_node")), 1);
        assert_true(json_is_null(json_object_get(g0, "error")));
        assert_true(json_is_false(json_object_get(g0, "drained")));
        l = json_object_get(g0, "lease");
        assert_int_equal(json_integer_value(json_object_get(l, "id")), 7);
        assert_string_equal(json_string_value(json_object_get(l, "user")), "root");
        assert_string_equal(json_string_value(json_object_get(l, "kind")), "manual");
        assert_true(json_real_value(json_object_get(l, "expires_at")) == 1700003600.0);
        assert_true(json_is_null(json_object_get(g1, "lease")));
        assert_int_equal(json_array_size(json_object_get(o, "queue")), 0);

        /* Unknown values are null, never 0. */
        assert_true(json_is_null(json_object_get(g1, "memory_total_bytes")));
        assert_true(json_is_null(json_object_get(g1, "numa_node")));
        assert_true(json_is_null(json_object_get(g1, "utilization_gpu")));
        assert_true(json_is_null(json_object_get(g1, "temperature_c")));
        assert_true(json_is_null(json_object_get(g1, "power_w")));
        assert_true(json_is_false(json_object_get(g1, "healthy")));
        assert_string_equal(json_string_value(json_object_get(g1, "error")),
                            "nvmlDeviceGetMemoryInfo_v2: NVML error 15");

        p = json_array_get(json_object_get(g0, "processes"), 0);
        assert_keys(p, process_keys, sizeof process_keys / sizeof process_keys[0]);
        assert_string_equal(json_string_value(json_object_get(p, "user")), "root");
        assert_string_equal(json_string_value(json_object_get(p, "command")),
                            "python bad\xEF\xBF\xBD\xEF\xBF\xBD utf8");
        assert_true(json_is_null(json_object_get(p, "instance_uuid")));
        assert_true(json_is_false(json_object_get(p, "vanished")));
        /* root's process on root's lease. */
        assert_true(json_is_true(json_object_get(p, "leased")));

        p = json_array_get(json_object_get(g0, "processes"), 1);
        assert_true(json_is_true(json_object_get(p, "vanished")));
        assert_true(json_is_null(json_object_get(p, "uid")));
        assert_true(json_is_null(json_object_get(p, "user")));
        assert_true(json_is_null(json_object_get(p, "memory_used_bytes")));

        assert_keys(json_array_get(json_object_get(g1, "instances"), 0), instance_keys,
                    sizeof instance_keys / sizeof instance_keys[0]);
        p = json_array_get(json_object_get(g1, "processes"), 0);
        assert_true(json_is_false(json_object_get(p, "leased")));
        assert_string_equal(json_string_value(json_object_get(p, "instance_uuid")),
                            "MIG-22222222-2222-2222-2222-222222222222");

        json_decref(o);
        gpu_snapshot_free(t.d.snapshot);
}

static void test_status_without_snapshot(void **state)
{
        Daemon d = {};
        json_t *o = NULL;

        UserMemo names = {};

        d.user_names = &names;
        strcpy(d.hostname, "h");
        assert_int_equal(status_build(&d, STATUS_OBJECTS, &o), 0);
        assert_true(json_is_false(json_object_get(o, "nvml_available")));
        assert_int_equal(json_array_size(json_object_get(o, "gpus")), 0);
        json_decref(o);
}

/* "process_rows": the same result, each process a row of its object's
 * values in the order "process_fields" names them (that of the object's
 * keys), "process_fields" written after gpu_count and before gpus. */
static void test_status_rows_are_the_objects_values(void **state)
{
        test_daemon t;
        json_t *objects = NULL, *rows = NULL, *fields;
        const char *key;
        json_t *value;
        size_t n_procs = 0;

        test_daemon_init(&t);
        assert_int_equal(status_build(&t.d, STATUS_OBJECTS, &objects), 0);
        assert_int_equal(status_build(&t.d, STATUS_ROWS, &rows), 0);
        assert_null(json_object_get(objects, "process_fields"));
        fields = json_object_get(rows, "process_fields");
        assert_int_equal(json_array_size(fields), sizeof process_keys / sizeof process_keys[0]);
        for (size_t i = 0; i < json_array_size(fields); i++)
                assert_string_equal(json_string_value(json_array_get(fields, i)), process_keys[i]);
        {
                _cleanup_free_ char *dump = json_dumps(rows, JSON_COMPACT);
                const char *at;

                assert_non_null(dump);
                at = strstr(dump, "\"process_fields\":");
                assert_non_null(at);
                assert_true(strstr(dump, "\"gpu_count\":") < at);
                assert_true(at < strstr(dump, "\"gpus\":"));
        }
        json_object_foreach(objects, key, value) {
                json_t *gpus_r = json_object_get(rows, "gpus");

                if (strcmp(key, "gpus") != 0) {
                        assert_true(json_equal(value, json_object_get(rows, key)));
                        continue;
                }
                assert_int_equal(json_array_size(value), json_array_size(gpus_r));
                for (size_t g = 0; g < json_array_size(value); g++) {
                        json_t *go = json_array_get(value, g), *gr = json_array_get(gpus_r, g);
                        const char *gkey;
                        json_t *gvalue;

                        assert_int_equal(json_object_size(go), json_object_size(gr));
                        json_object_foreach(go, gkey, gvalue) {
                                json_t *po = gvalue, *pr = json_object_get(gr, gkey);

                                if (strcmp(gkey, "processes") != 0) {
                                        assert_true(json_equal(po, pr));
                                        continue;
                                }
                                assert_int_equal(json_array_size(po), json_array_size(pr));
                                for (size_t i = 0; i < json_array_size(po); i++, n_procs++) {
                                        json_t *o = json_array_get(po, i), *r = json_array_get(pr, i);
                                        size_t k = 0;
                                        const char *pkey;
                                        json_t *pvalue;

                                        assert_true(json_is_array(r));
                                        assert_int_equal(json_array_size(r), json_object_size(o));
                                        json_object_foreach(o, pkey, pvalue) {
                                                assert_string_equal(
                                                        pkey, json_string_value(json_array_get(fields, k)));
                                                assert_true(json_equal(pvalue, json_array_get(r, k)));
                                                k++;
                                        }
                                }
                        }
                }
        }
        assert_int_equal(n_procs, 3);
        json_decref(objects);
        json_decref(rows);
        gpu_snapshot_free(t.d.snapshot);
}

/* Rows come in the order `gpukeeper status` shows them (most memory
 * first, an unknown amount last, then by pid); objects stay in the
 * sampler's order. */
static void test_status_rows_in_display_order(void **state)
{
        static const uint32_t sampled[] = {30, 10, 20, 5, 7};
        static const uint64_t memory[] = {1 << 20, GPU_VALUE_UNKNOWN, 5 << 20, 1 << 20,
                                          GPU_VALUE_UNKNOWN};
        static const json_int_t shown[] = {20, 5, 30, 7, 10};
        test_daemon t;
        json_t *objects = NULL, *rows = NULL, *po, *pr;
        GpuDevice *g;

        test_daemon_init(&t);
        g = &t.d.snapshot->gpus[0];
        for (size_t i = 0; i < g->n_processes; i++)
                free(g->processes[i].command);
        free(g->processes);
        g->n_processes = sizeof sampled / sizeof sampled[0];
        g->processes = calloc(g->n_processes, sizeof *g->processes);
        assert_non_null(g->processes);
        for (size_t i = 0; i < g->n_processes; i++)
                g->processes[i] = (GpuProcess){.pid = sampled[i], .memory_used_bytes = memory[i],
                                               .instance = -1, .uid = 0,
                                               .command = strdup("python train.py")};

        assert_int_equal(status_build(&t.d, STATUS_OBJECTS, &objects), 0);
        assert_int_equal(status_build(&t.d, STATUS_ROWS, &rows), 0);
        po = json_object_get(json_array_get(json_object_get(objects, "gpus"), 0), "processes");
        pr = json_object_get(json_array_get(json_object_get(rows, "gpus"), 0), "processes");
        assert_int_equal(json_array_size(po), g->n_processes);
        assert_int_equal(json_array_size(pr), g->n_processes);
        for (size_t i = 0; i < g->n_processes; i++) {
                json_t *o = json_array_get(po, i), *r = json_array_get(pr, i);

                assert_int_equal(json_integer_value(json_object_get(o, "pid")), sampled[i]);
                assert_int_equal(json_integer_value(json_array_get(r, 0)), shown[i]);
        }
        json_decref(objects);
        json_decref(rows);
        gpu_snapshot_free(t.d.snapshot);
}

/* The arguments a status takes: none, or "process_rows" as a boolean. */
static void test_status_shape_from_args(void **state)
{
        static const char *const bad[] = {
                "{\"process_rows\":1}", "{\"process_rows\":null}", "{\"rows\":true}",
                "{\"process_rows\":true,\"all\":true}", "{\"process_rows\":\"yes\"}",
        };
        StatusShape shape = _STATUS_SHAPE_MAX;
        const char *why = NULL;
        json_t *a;

        assert_int_equal(status_shape_from_args(NULL, &shape, &why), 0);
        assert_int_equal(shape, STATUS_OBJECTS);
        a = json_loads("{}", 0, NULL);
        assert_int_equal(status_shape_from_args(a, &shape, &why), 0);
        assert_int_equal(shape, STATUS_OBJECTS);
        json_decref(a);
        a = json_loads("{\"process_rows\":true}", 0, NULL);
        assert_int_equal(status_shape_from_args(a, &shape, &why), 0);
        assert_int_equal(shape, STATUS_ROWS);
        json_decref(a);
        a = json_loads("{\"process_rows\":false}", 0, NULL);
        assert_int_equal(status_shape_from_args(a, &shape, &why), 0);
        assert_int_equal(shape, STATUS_OBJECTS);
        json_decref(a);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                a = json_loads(bad[i], 0, NULL);
                assert_non_null(a);
                shape = STATUS_OBJECTS;
                why = NULL;
                assert_int_equal(status_shape_from_args(a, &shape, &why), -EINVAL);
                assert_non_null(why);
                assert_non_null(strstr(why, "process_rows"));
                json_decref(a);
        }
}

/* The sorted index status looks violations up in answers as the list walk
 * does: every key in the list, keys next to them, and of two entries with
 * the same key the one first in the list. */
static void test_violation_index(void **state)
{
        enum { N = 60 };
        static const char *const uuids[] = {"GPU-a", "GPU-b", "MIG-c"};
        TrackedViolation t[N] = {};
        Daemon d = {};
        EnforcementIndex idx = {};

        for (size_t i = 0; i < N; i++) {
                /* pids out of order and repeated, on several devices and start times */
                t[i].rec.pid = (pid_t)(1000 + (i * 37) % 23);
                t[i].rec.start_time = (i * 7) % 3;
                strcpy(t[i].rec.device_uuid, uuids[i % 3]);
                t[i].next = i + 1 < N ? &t[i + 1] : NULL;
        }
        /* a key held twice (the tick never makes one; the lookup must still agree) */
        t[N - 1].rec.pid = t[5].rec.pid;
        t[N - 1].rec.start_time = t[5].rec.start_time;
        strcpy(t[N - 1].rec.device_uuid, t[5].rec.device_uuid);
        d.enforcement.tracked = &t[0];
        assert_int_equal(enforcement_index_build(&d, &idx), 0);
        assert_int_equal(idx.n, N);
        for (uint32_t pid = 998; pid < 1026; pid++)
                for (uint64_t st = 0; st < 4; st++)
                        for (size_t u = 0; u < 4; u++) {
                                const char *uuid = u < 3 ? uuids[u] : "GPU-zz";

                                assert_ptr_equal(enforcement_index_find(&idx, pid, st, uuid),
                                                 enforcement_find(&d, pid, st, uuid));
                        }
        /* at least one key is held twice: the list's first copy is found */
        {
                bool dup = false;

                for (size_t i = 0; i < N && !dup; i++)
                        for (size_t j = i + 1; j < N && !dup; j++)
                                if (t[i].rec.pid == t[j].rec.pid &&
                                    t[i].rec.start_time == t[j].rec.start_time &&
                                    strcmp(t[i].rec.device_uuid, t[j].rec.device_uuid) == 0) {
                                        dup = true;
                                        assert_ptr_equal(
                                            enforcement_index_find(&idx, (uint32_t)t[j].rec.pid,
                                                                   t[j].rec.start_time,
                                                                   t[j].rec.device_uuid),
                                            &t[i]);
                                }
                assert_true(dup);
        }
        enforcement_index_done(&idx);
        assert_null(idx.entries);

        /* an empty list */
        d.enforcement.tracked = NULL;
        assert_int_equal(enforcement_index_build(&d, &idx), 0);
        assert_null(enforcement_index_find(&idx, 1000, 0, "GPU-a"));
        enforcement_index_done(&idx);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_status_keys_and_values),
                cmocka_unit_test(test_status_without_snapshot),
                cmocka_unit_test(test_status_rows_are_the_objects_values),
                cmocka_unit_test(test_status_rows_in_display_order),
                cmocka_unit_test(test_status_shape_from_args),
                cmocka_unit_test(test_violation_index),
        };
        return cmocka_run_group_tests_name("status", tests, NULL, NULL);
}
