/* Tests of the NVML binding (src/gpu/nvml.c) and the inventory snapshot
 * (src/gpu/inventory.c) against the NVML simulator's three libraries:
 * modern (550), the 535 driver that writes 32-byte entries from _v3, and a
 * legacy driver with unversioned symbols only. Each test writes its lab file
 * into a fresh temporary directory and points $GPUKEEPER_SIM_LAB at it
 * before opening; rewrites are atomic (rename) as the simulator expects.
 * Processes are attributed through the real /proc: the test process itself
 * is one of the GPU processes, and pids above the kernel's PID_MAX_LIMIT
 * (4194304) stand for processes that are gone. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "basic/time-util.h"
#include "gpu/inventory.h"
#include "gpu/nvml.h"

#define MIB (1024ull * 1024ull)
/* Above PID_MAX_LIMIT: never a live process. */
#define GONE_PID 4100000

static const char *const sim_libraries[] = { SIM_MODERN, SIM_535, SIM_LEGACY };

typedef struct {
        char dir[PATH_MAX - 64];
        char lab[PATH_MAX];
        ProcCache *cache;
} TestLab;

static int setup_lab(void **state)
{
        TestLab *t = calloc(1, sizeof(*t));
        const char *tmp = getenv("TMPDIR");

        if (!t)
                return -1;
        snprintf(t->dir, sizeof(t->dir), "%s/test-inventory-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(t->dir)) {
                free(t);
                return -1;
        }
        snprintf(t->lab, sizeof(t->lab), "%s/lab.json", t->dir);
        if (setenv("GPUKEEPER_SIM_LAB", t->lab, 1) < 0 || proc_cache_new("/proc", &t->cache) < 0) {
                free(t);
                return -1;
        }
        *state = t;
        return 0;
}

static int teardown_lab(void **state)
{
        TestLab *t = *state;

        proc_cache_free(t->cache);
        unlink(t->lab);
        rmdir(t->dir);
        free(t);
        return 0;
}

/* Replace the lab atomically with the printf-formatted JSON. */
static void write_lab(TestLab *t, const char *fmt, ...) _printf_(2, 3);
static void write_lab(TestLab *t, const char *fmt, ...)
{
        char tmp[PATH_MAX + 8];
        va_list ap;
        FILE *f;

        snprintf(tmp, sizeof(tmp), "%s.tmp", t->lab);
        f = fopen(tmp, "we");
        assert_non_null(f);
        va_start(ap, fmt);
        assert_true(vfprintf(f, fmt, ap) > 0);
        va_end(ap);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(rename(tmp, t->lab), 0);
}

static GpuNvml *open_sim(const char *library)
{
        char err[256] = "";
        GpuNvml *n = NULL;
        int r = gpu_nvml_open(library, &n, err, sizeof(err));

        if (r < 0)
                fail_msg("gpu_nvml_open(%s): %d %s", library, r, err);
        assert_non_null(n);
        assert_true(gpu_nvml_is_simulated(n));
        return n;
}

static GpuSnapshot *take(TestLab *t, GpuNvml *n)
{
        GpuSnapshot *s = NULL;

        assert_int_equal(gpu_snapshot_take(n, t->cache, &s), 0);
        assert_non_null(s);
        return s;
}

/* One plain (non-MIG) H100 with the given extra keys and processes. */
#define GPU0_UUID "GPU-5e2c0c4a-0000-4000-8000-000000000000"
#define GPU1_UUID "GPU-5e2c0c4a-0000-4000-8000-000000000001"
#define GPU0_FMT                                                                                   \
        "{ \"name\": \"NVIDIA H100 80GB HBM3\", \"uuid\": \"" GPU0_UUID "\", "                     \
        "\"pci_bus_id\": \"00000000:1A:00.0\", \"minor\": 3, \"memory_total_mib\": 81559, "       \
        "\"memory_used_mib\": 3072, \"memory_reserved_mib\": 512, \"utilization_gpu\": 42, "      \
        "\"utilization_memory\": 17, \"temperature_c\": %u, \"power_mw\": 250000, "               \
        "\"energy_mj\": 123456789 %s, \"processes\": [ %s ] }"

static void test_open_missing_library(void **state)
{
        char err[256] = "";
        GpuNvml *n = NULL;

        assert_int_equal(gpu_nvml_open("/nonexistent/libnvidia-ml.so.1", &n, err, sizeof(err)),
                         -ENOENT);
        assert_null(n);
        assert_non_null(strstr(err, "cannot load NVML library /nonexistent/libnvidia-ml.so.1"));
}

static void test_open_not_nvml(void **state)
{
        char err[256] = "";
        GpuNvml *n = NULL;

        assert_int_equal(gpu_nvml_open("libc.so.6", &n, err, sizeof(err)), -ELIBBAD);
        assert_null(n);
        assert_string_equal(err, "libc.so.6 has no nvmlInit_v2: not an NVML library");
}

static void test_open_init_failure(void **state)
{
        TestLab *t = *state;
        char err[256] = "";
        GpuNvml *n = NULL;

        write_lab(t, "{ \"errors\": { \"nvmlInit\": 9 }, \"gpus\": [] }");
        assert_int_equal(gpu_nvml_open(SIM_MODERN, &n, err, sizeof(err)), -EIO);
        assert_null(n);
        assert_string_equal(err, "nvmlInit_v2: Driver Not Loaded (9)");

        assert_int_equal(gpu_nvml_open(SIM_LEGACY, &n, err, sizeof(err)), -EIO);
        assert_string_equal(err, "nvmlInit: Driver Not Loaded (9)");

        /* The same library opens once the driver "loads". */
        write_lab(t, "{ \"gpus\": [] }");
        n = open_sim(SIM_MODERN);
        gpu_nvml_close(n);
        gpu_nvml_close(NULL);
}

/* The same lab through all three libraries yields the same normalised
 * processes and identity. Through the 535 library that needs the 32-byte
 * stride: read at 24 bytes, the second entry's pid would be the first
 * one's usedGpuCcProtectedMemory (0). */
static void test_variants_same_processes(void **state)
{
        TestLab *t = *state;

        write_lab(t, "{ \"driver_version\": \"550.54.15\", \"gpus\": [ " GPU0_FMT " ] }", 55u, "",
                  "{ \"pid\": 4100002, \"used_mib\": 1000, \"type\": \"compute\" }, "
                  "{ \"pid\": 4100000, \"used_mib\": null, \"type\": \"graphics\" }, "
                  "{ \"pid\": 4100001, \"used_mib\": 2048, \"type\": \"both\" }");

        for (size_t v = 0; v < ELEMENTSOF(sim_libraries); v++) {
                _cleanup_(gpu_nvml_closep) GpuNvml *n = open_sim(sim_libraries[v]);
                _cleanup_(gpu_snapshot_freep) GpuSnapshot *s = NULL;
                const GpuNvmlProcess *p;
                nvmlDevice_t dev;
                size_t count;
                bool truncated = true;

                assert_int_equal(gpu_nvml_device_handle(n, 0, &dev), NVML_SUCCESS);
                assert_int_equal(gpu_nvml_device_processes(n, dev, &p, &count, &truncated),
                                 NVML_SUCCESS);
                assert_false(truncated);
                assert_int_equal(count, 3);
                assert_int_equal(p[0].pid, 4100000);
                assert_true(p[0].memory_used_bytes == GPU_VALUE_UNKNOWN);
                assert_int_equal(p[1].pid, 4100001);
                assert_int_equal(p[1].memory_used_bytes, 2048 * MIB);
                assert_int_equal(p[2].pid, 4100002);
                assert_int_equal(p[2].memory_used_bytes, 1000 * MIB);
                for (size_t i = 0; i < count; i++) {
                        assert_int_equal(p[i].gpu_instance_id, NVML_INSTANCE_ID_NONE);
                        assert_int_equal(p[i].compute_instance_id, NVML_INSTANCE_ID_NONE);
                }

                s = take(t, n);
                assert_true(s->nvml_available);
                assert_true(s->simulated);
                assert_int_equal(s->nvml_errors, 0);
                assert_int_equal(s->n_gpus, 1);
                assert_string_equal(s->gpus[0].uuid, GPU0_UUID);
                assert_string_equal(s->gpus[0].name, "NVIDIA H100 80GB HBM3");
                /* The legacy call's 16-byte bus id is widened to the same form. */
                assert_string_equal(s->gpus[0].pci_bus_id, "00000000:1A:00.0");
                assert_int_equal(s->gpus[0].minor, 3);
                assert_int_equal(s->gpus[0].n_processes, 3);
                assert_true(s->gpus[0].processes[0].memory_used_bytes == GPU_VALUE_UNKNOWN);
                assert_int_equal(s->gpus[0].processes[1].memory_used_bytes, 2048 * MIB);
                for (size_t i = 0; i < 3; i++) {
                        const GpuProcess *gp = &s->gpus[0].processes[i];

                        assert_int_equal(gp->pid, 4100000 + i);
                        assert_int_equal(gp->instance, -1);
                        assert_true(gp->vanished);
                        assert_int_equal(gp->uid, (uid_t)-1);
                        assert_null(gp->command);
                }
        }
}

/* More processes than the first buffer holds: INSUFFICIENT_SIZE, grow, retry. */
static void test_insufficient_size(void **state)
{
        TestLab *t = *state;
        size_t len = 0, size = 100 * 64;
        char *procs = malloc(size);

        assert_non_null(procs);
        procs[0] = '\0';
        for (unsigned i = 0; i < 100; i++)
                len += (size_t)snprintf(procs + len, size - len,
                                        "%s{ \"pid\": %u, \"used_mib\": %u }", i ? ", " : "",
                                        GONE_PID + i, i + 1);
        write_lab(t, "{ \"gpus\": [ " GPU0_FMT " ] }", 55u, "", procs);
        free(procs);

        for (size_t v = 0; v < ELEMENTSOF(sim_libraries); v++) {
                _cleanup_(gpu_nvml_closep) GpuNvml *n = open_sim(sim_libraries[v]);
                _cleanup_(gpu_snapshot_freep) GpuSnapshot *s = take(t, n);

                assert_int_equal(s->nvml_errors, 0);
                assert_int_equal(s->gpus[0].n_processes, 100);
                for (unsigned i = 0; i < 100; i++) {
                        assert_int_equal(s->gpus[0].processes[i].pid, GONE_PID + i);
                        assert_int_equal(s->gpus[0].processes[i].memory_used_bytes,
                                         (i + 1) * MIB);
                }
        }
}

/* A driver listing more than GPU_MAX_PROCESSES_PER_DEVICE: the ones that
 * fit are kept and the list is marked incomplete (issue 10 item 14; it used
 * to read as no processes at all, and a healthy, free-looking GPU). */
static void test_too_many_processes(void **state)
{
        TestLab *t = *state;
        size_t len = 0, size = (GPU_MAX_PROCESSES_PER_DEVICE + 10) * 32;
        char *procs = malloc(size);

        assert_non_null(procs);
        procs[0] = '\0';
        for (unsigned i = 0; i < GPU_MAX_PROCESSES_PER_DEVICE + 10; i++)
                len += (size_t)snprintf(procs + len, size - len, "%s{ \"pid\": %u }",
                                        i ? ", " : "", GONE_PID + i);
        write_lab(t, "{ \"gpus\": [ " GPU0_FMT " ] }", 55u, "", procs);
        free(procs);

        _cleanup_(gpu_nvml_closep) GpuNvml *n = open_sim(SIM_MODERN);
        _cleanup_(gpu_snapshot_freep) GpuSnapshot *s = take(t, n);

        assert_int_equal(s->nvml_errors, 0);
        assert_int_equal(s->gpus[0].n_processes, GPU_MAX_PROCESSES_PER_DEVICE);
        assert_int_equal(s->gpus[0].processes[0].pid, GONE_PID);
        assert_true(s->gpus[0].processes_incomplete);
        assert_true(s->gpus[0].healthy);
}

static void test_memory_v2_and_v1(void **state)
{
        TestLab *t = *state;
        GpuNvml *n;
        GpuSnapshot *s;

        write_lab(t, "{ \"gpus\": [ " GPU0_FMT " ] }", 55u, "", "");

        /* nvmlMemory_v2: used excludes the reserved part, which is reported. */
        n = open_sim(SIM_MODERN);
        s = take(t, n);
        assert_int_equal(s->gpus[0].memory_total_bytes, 81559 * MIB);
        assert_int_equal(s->gpus[0].memory_used_bytes, 3072 * MIB);
        assert_int_equal(s->gpus[0].memory_reserved_bytes, 512 * MIB);
        gpu_snapshot_free(s);
        gpu_nvml_close(n);

        /* v1 only: reserved counts as used and is unknown on its own. */
        n = open_sim(SIM_LEGACY);
        s = take(t, n);
        assert_int_equal(s->gpus[0].memory_total_bytes, 81559 * MIB);
        assert_int_equal(s->gpus[0].memory_used_bytes, (3072 + 512) * MIB);
        assert_true(s->gpus[0].memory_reserved_bytes == GPU_VALUE_UNKNOWN);
        gpu_snapshot_free(s);
        gpu_nvml_close(n);

        /* A driver that rejects _v2 for a device still answers v1: no error. */
        write_lab(t, "{ \"gpus\": [ " GPU0_FMT " ] }", 55u,
                  ", \"errors\": { \"nvmlDeviceGetMemoryInfo_v2\": 3 }", "");
        n = open_sim(SIM_MODERN);
        s = take(t, n);
        assert_int_equal(s->nvml_errors, 0);
        assert_true(s->gpus[0].healthy);
        assert_int_equal(s->gpus[0].memory_used_bytes, (3072 + 512) * MIB);
        assert_true(s->gpus[0].memory_reserved_bytes == GPU_VALUE_UNKNOWN);
        gpu_snapshot_free(s);
        gpu_nvml_close(n);
}

/* Read our own /proc/self/cmdline the way ProcInfo renders it. */
static void own_command(char *buf, size_t size)
{
        int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
        ssize_t k;

        assert_true(fd >= 0);
        k = read(fd, buf, size - 1);
        assert_true(k > 0);
        close(fd);
        for (ssize_t i = 0; i < k; i++)
                if (buf[i] == '\0')
                        buf[i] = ' ';
        while (k > 0 && buf[k - 1] == ' ')
                k--;
        buf[k] = '\0';
}

#define MIG_LAB                                                                                    \
        "{ \"gpus\": [ { \"name\": \"NVIDIA A100-SXM4-80GB\", \"uuid\": \"" GPU1_UUID "\", "      \
        "\"pci_bus_id\": \"00000000:07:00.0\", \"minor\": 0, \"memory_total_mib\": 81920, "       \
        "\"utilization_gpu\": 90, \"temperature_c\": 34, \"power_mw\": 61000, "                    \
        "\"mig\": { \"enabled\": true, \"instances\": [ "                                          \
        "{ \"gi\": 1, \"ci\": 0, \"profile\": \"3g.40gb\", \"uuid\": \"MIG-1f0a0000-0000\", "    \
        "\"memory_total_mib\": 40192 %s }, "                                                       \
        "{ \"gi\": 9, \"ci\": 0, \"profile\": \"1g.10gb\", \"uuid\": \"MIG-2b0b0000-0000\", "    \
        "\"memory_total_mib\": 9856, \"memory_used_mib\": 1500 } ] }, "                            \
        "\"processes\": [ { \"pid\": %d, \"used_mib\": 500, \"gi\": 1, \"ci\": 0 }, "             \
        "{ \"pid\": 4100000, \"used_mib\": 700, \"gi\": 9, \"ci\": 0 } ] } ] }"

static void test_mig(void **state)
{
        TestLab *t = *state;
        _cleanup_(gpu_nvml_closep) GpuNvml *n = NULL;
        _cleanup_(gpu_snapshot_freep) GpuSnapshot *s = NULL;
        char command[PROC_COMMAND_MAX];
        const GpuDevice *d;

        own_command(command, sizeof(command));
        write_lab(t, MIG_LAB, "", (int)getpid());
        n = open_sim(SIM_MODERN);
        s = take(t, n);

        assert_int_equal(s->nvml_errors, 0);
        d = &s->gpus[0];
        assert_true(d->healthy);
        assert_true(d->mig_enabled);
        /* No utilisation on a MIG-enabled GPU, whatever the lab says. */
        assert_int_equal(d->utilization_gpu, -1);
        assert_int_equal(d->utilization_memory, -1);
        assert_int_equal(d->temperature_c, 34);

        assert_int_equal(d->n_instances, 2);
        assert_string_equal(d->instances[0].uuid, "MIG-1f0a0000-0000");
        assert_string_equal(d->instances[0].profile, "3g.40gb");
        assert_int_equal(d->instances[0].gpu_instance_id, 1);
        assert_int_equal(d->instances[0].compute_instance_id, 0);
        assert_int_equal(d->instances[0].memory_total_bytes, 40192 * MIB);
        assert_int_equal(d->instances[0].memory_used_bytes, 500 * MIB);
        assert_string_equal(d->instances[1].uuid, "MIG-2b0b0000-0000");
        assert_string_equal(d->instances[1].profile, "1g.10gb");
        assert_int_equal(d->instances[1].gpu_instance_id, 9);
        assert_int_equal(d->instances[1].memory_used_bytes, 1500 * MIB);

        /* Each process is attributed to the instance whose handle listed it. */
        assert_int_equal(d->n_processes, 2);
        assert_int_equal(d->processes[0].pid, (uint32_t)getpid());
        assert_int_equal(d->processes[0].instance, 0);
        assert_int_equal(d->processes[0].gpu_instance_id, 1);
        assert_int_equal(d->processes[0].memory_used_bytes, 500 * MIB);
        assert_false(d->processes[0].vanished);
        assert_int_equal(d->processes[0].uid, getuid());
        assert_true(d->processes[0].start_time > 0);
        assert_string_equal(d->processes[0].command, command);
        assert_int_equal(d->processes[1].pid, 4100000);
        assert_int_equal(d->processes[1].instance, 1);
        assert_int_equal(d->processes[1].gpu_instance_id, 9);
        assert_true(d->processes[1].vanished);
}

/* An error injected on one MIG instance is recorded on its GPU; the rest of
 * the instance and the GPU are still read. */
static void test_mig_instance_error(void **state)
{
        TestLab *t = *state;
        _cleanup_(gpu_nvml_closep) GpuNvml *n = NULL;
        _cleanup_(gpu_snapshot_freep) GpuSnapshot *s = NULL;
        const GpuDevice *d;

        write_lab(t, MIG_LAB, ", \"errors\": { \"nvmlDeviceGetMemoryInfo\": 999 }", (int)getpid());
        n = open_sim(SIM_MODERN);
        s = take(t, n);
        d = &s->gpus[0];
        assert_int_equal(s->nvml_errors, 1);
        assert_int_equal(d->error, NVML_ERROR_UNKNOWN);
        assert_string_equal(d->error_call, "nvmlDeviceGetMemoryInfo_v2");
        assert_true(d->healthy);
        assert_int_equal(d->n_instances, 2);
        assert_true(d->instances[0].memory_total_bytes == GPU_VALUE_UNKNOWN);
        assert_int_equal(d->instances[1].memory_total_bytes, 9856 * MIB);
        assert_int_equal(d->n_processes, 2);
}

/* Without a MIG API (legacy driver) the same GPU is one device whose
 * processes come from the parent handle. */
static void test_mig_legacy(void **state)
{
        TestLab *t = *state;
        _cleanup_(gpu_nvml_closep) GpuNvml *n = NULL;
        _cleanup_(gpu_snapshot_freep) GpuSnapshot *s = NULL;

        write_lab(t, MIG_LAB, "", (int)getpid());
        n = open_sim(SIM_LEGACY);
        s = take(t, n);
        assert_int_equal(s->nvml_errors, 0);
        assert_false(s->gpus[0].mig_enabled);
        assert_int_equal(s->gpus[0].n_instances, 0);
        assert_int_equal(s->gpus[0].n_processes, 2);
        assert_int_equal(s->gpus[0].processes[0].instance, -1);
        assert_int_equal(s->gpus[0].processes[0].gpu_instance_id, NVML_INSTANCE_ID_NONE);
}

#define TWO_GPUS_FMT                                                                               \
        "{ \"gpus\": [ " GPU0_FMT ", { \"name\": \"NVIDIA A100-SXM4-80GB\", "                      \
        "\"uuid\": \"" GPU1_UUID "\", \"pci_bus_id\": \"00000000:07:00.0\", "                      \
        "\"minor\": 1, \"memory_total_mib\": 81920, \"lost\": %s } ] }"

static void test_lost_gpu(void **state)
{
        TestLab *t = *state;
        _cleanup_(gpu_nvml_closep) GpuNvml *n = NULL;
        GpuSnapshot *s;

        write_lab(t, TWO_GPUS_FMT, 55u, "", "", "false");
        n = open_sim(SIM_MODERN);
        s = take(t, n);
        assert_int_equal(s->n_gpus, 2);
        assert_true(s->gpus[1].healthy);
        gpu_snapshot_free(s);

        /* It falls off the bus: reported unhealthy under its last identity,
         * and the other GPU is unaffected. */
        write_lab(t, TWO_GPUS_FMT, 55u, "", "", "true");
        for (int tick = 0; tick < 2; tick++) {
                s = take(t, n);
                assert_int_equal(s->n_gpus, 2);
                assert_true(s->gpus[0].healthy);
                assert_int_equal(s->gpus[0].error, 0);
                assert_int_equal(s->gpus[0].temperature_c, 55);
                assert_false(s->gpus[1].healthy);
                assert_int_equal(s->gpus[1].error, NVML_ERROR_GPU_IS_LOST);
                assert_string_equal(s->gpus[1].error_call, "nvmlDeviceGetHandleByIndex_v2");
                assert_string_equal(s->gpus[1].uuid, GPU1_UUID);
                assert_string_equal(s->gpus[1].name, "NVIDIA A100-SXM4-80GB");
                assert_string_equal(s->gpus[1].pci_bus_id, "00000000:07:00.0");
                assert_true(s->gpus[1].memory_total_bytes == GPU_VALUE_UNKNOWN);
                assert_int_equal(s->nvml_errors, 1);
                assert_ptr_equal(gpu_snapshot_find_device(s, GPU1_UUID), &s->gpus[1]);
                gpu_snapshot_free(s);
        }
        gpu_nvml_close(TAKE_PTR(n));

        /* Lost before we ever saw it: unhealthy, identity unknown. */
        n = open_sim(SIM_MODERN);
        s = take(t, n);
        assert_false(s->gpus[1].healthy);
        assert_string_equal(s->gpus[1].uuid, "");
        assert_int_equal(s->gpus[1].error, NVML_ERROR_GPU_IS_LOST);
        gpu_snapshot_free(s);
}

static void test_injected_errors(void **state)
{
        TestLab *t = *state;
        _cleanup_(gpu_nvml_closep) GpuNvml *n = NULL;
        GpuSnapshot *s;

        /* A failing call: recorded and counted; everything else is read. */
        write_lab(t, "{ \"gpus\": [ " GPU0_FMT " ] }", 55u,
                  ", \"errors\": { \"nvmlDeviceGetTemperature\": 999 }",
                  "{ \"pid\": 4100000, \"used_mib\": 10 }");
        n = open_sim(SIM_MODERN);
        s = take(t, n);
        assert_int_equal(s->nvml_errors, 1);
        assert_int_equal(s->gpus[0].error, NVML_ERROR_UNKNOWN);
        assert_string_equal(s->gpus[0].error_call, "nvmlDeviceGetTemperature");
        assert_true(s->gpus[0].healthy);
        assert_int_equal(s->gpus[0].temperature_c, -1);
        assert_int_equal(s->gpus[0].utilization_gpu, 42);
        assert_int_equal(s->gpus[0].utilization_memory, 17);
        assert_int_equal(s->gpus[0].power_mw, 250000);
        assert_int_equal(s->gpus[0].energy_mj, 123456789);
        assert_int_equal(s->gpus[0].n_processes, 1);
        gpu_snapshot_free(s);

        /* NOT_SUPPORTED is an unknown value, not an error. */
        write_lab(t, "{ \"gpus\": [ " GPU0_FMT " ] }", 55u,
                  ", \"errors\": { \"nvmlDeviceGetPowerUsage\": 3 }", "");
        s = take(t, n);
        assert_int_equal(s->nvml_errors, 0);
        assert_int_equal(s->gpus[0].error, 0);
        assert_int_equal(s->gpus[0].power_mw, -1);
        assert_int_equal(s->gpus[0].temperature_c, 55);
        gpu_snapshot_free(s);

        /* Identity that cannot be read makes the GPU unhealthy. */
        write_lab(t, "{ \"gpus\": [ " GPU0_FMT " ] }", 55u,
                  ", \"errors\": { \"nvmlDeviceGetName\": 999 }", "");
        s = take(t, n);
        assert_false(s->gpus[0].healthy);
        assert_string_equal(s->gpus[0].error_call, "nvmlDeviceGetName");
        /* ...but keeps the name it had. */
        assert_string_equal(s->gpus[0].name, "NVIDIA H100 80GB HBM3");
        assert_int_equal(s->gpus[0].temperature_c, 55);
        gpu_snapshot_free(s);

        /* Device-less calls: the driver version, and a failing count (no GPUs). */
        write_lab(t, "{ \"errors\": { \"nvmlSystemGetDriverVersion\": 999 }, \"gpus\": [ " GPU0_FMT
                     " ] }",
                  55u, "", "");
        s = take(t, n);
        assert_int_equal(s->nvml_errors, 1);
        assert_string_equal(s->driver_version, "");
        assert_int_equal(s->n_gpus, 1);
        gpu_snapshot_free(s);

        write_lab(t, "{ \"errors\": { \"nvmlDeviceGetCount\": 999 }, \"gpus\": [] }");
        s = take(t, n);
        assert_true(s->nvml_available);
        assert_int_equal(s->n_gpus, 0);
        assert_int_equal(s->nvml_errors, 1);
        assert_string_equal(s->message, "nvmlDeviceGetCount_v2: Unknown Error (999)");
        gpu_snapshot_free(s);
}

static void test_xid(void **state)
{
        TestLab *t = *state;
        _cleanup_(gpu_nvml_closep) GpuNvml *n = NULL;
        GpuSnapshot *s;

        /* An Xid already in the lab at start happened before we listened. */
        write_lab(t, "{ \"gpus\": [ " GPU0_FMT " ] }", 55u, ", \"xid\": 13", "");
        n = open_sim(SIM_MODERN);
        s = take(t, n);
        assert_int_equal(s->gpus[0].last_xid, 0);
        gpu_snapshot_free(s);

        write_lab(t, "{ \"gpus\": [ " GPU0_FMT " ] }", 55u, ", \"xid\": 79", "");
        s = take(t, n);
        assert_int_equal(s->gpus[0].last_xid, 79);
        gpu_snapshot_free(s);
        /* Recorded once: nothing more to drain, and the value stays. */
        assert_int_equal(gpu_nvml_drain_events(n), 0);
        s = take(t, n);
        assert_int_equal(s->gpus[0].last_xid, 79);
        gpu_snapshot_free(s);

        write_lab(t, "{ \"gpus\": [ " GPU0_FMT " ] }", 56u, ", \"xid\": 48", "");
        assert_int_equal(gpu_nvml_drain_events(n), 1);
        assert_int_equal(gpu_nvml_last_xid(n, GPU0_UUID), 48);
        assert_int_equal(gpu_nvml_last_xid(n, GPU1_UUID), 0);
}

/* A changed lab shows in the next snapshot. */
static void test_lab_reload(void **state)
{
        TestLab *t = *state;
        _cleanup_(gpu_nvml_closep) GpuNvml *n = NULL;
        GpuSnapshot *s;
        uint64_t before = now_usec(CLOCK_REALTIME);

        write_lab(t, "{ \"driver_version\": \"550.54.15\", \"gpus\": [ " GPU0_FMT " ] }", 55u, "",
                  "");
        n = open_sim(SIM_MODERN);
        s = take(t, n);
        assert_string_equal(s->driver_version, "550.54.15");
        assert_int_equal(s->gpus[0].temperature_c, 55);
        assert_int_equal(s->gpus[0].n_processes, 0);
        assert_true(s->taken_usec >= before && s->taken_usec <= now_usec(CLOCK_REALTIME));
        assert_true(s->tick_usec < 10 * USEC_PER_SEC);
        gpu_snapshot_free(s);

        write_lab(t, "{ \"driver_version\": \"550.54.15\", \"gpus\": [ " GPU0_FMT " ] }", 71u, "",
                  "{ \"pid\": 4100000, \"used_mib\": 64 }");
        s = take(t, n);
        assert_int_equal(s->gpus[0].temperature_c, 71);
        assert_int_equal(s->gpus[0].n_processes, 1);
        gpu_snapshot_free(s);
}

/* The NUMA node from nvmlDeviceGetMemoryAffinity: read on every library
 * that has the symbol (not the legacy one), unknown without NUMA info. */
static void test_numa_node(void **state)
{
        TestLab *t = *state;

        write_lab(t, "{ \"gpus\": [ " GPU0_FMT " ] }", 55u, ", \"numa_node\": 1", "");
        for (size_t v = 0; v < ELEMENTSOF(sim_libraries); v++) {
                _cleanup_(gpu_nvml_closep) GpuNvml *n = open_sim(sim_libraries[v]);
                _cleanup_(gpu_snapshot_freep) GpuSnapshot *s = take(t, n);

                assert_int_equal(s->nvml_errors, 0);
                assert_true(s->gpus[0].healthy);
                /* The legacy driver has no nvmlDeviceGetMemoryAffinity. */
                assert_int_equal(s->gpus[0].numa_node,
                                 strcmp(sim_libraries[v], SIM_LEGACY) == 0 ? -1 : 1);
        }

        /* The largest node we make room for, through the wrapper itself. */
        write_lab(t, "{ \"gpus\": [ " GPU0_FMT " ] }", 55u, ", \"numa_node\": 1023", "");
        {
                _cleanup_(gpu_nvml_closep) GpuNvml *n = open_sim(SIM_MODERN);
                nvmlDevice_t dev;
                int node = -7;

                assert_int_equal(gpu_nvml_device_handle(n, 0, &dev), NVML_SUCCESS);
                assert_int_equal(gpu_nvml_device_numa_node(n, dev, &node), NVML_SUCCESS);
                assert_int_equal(node, 1023);
        }

        /* No NUMA information (NOT_SUPPORTED): unknown, and no error. */
        write_lab(t, "{ \"gpus\": [ " GPU0_FMT " ] }", 55u, "", "");
        {
                _cleanup_(gpu_nvml_closep) GpuNvml *n = open_sim(SIM_MODERN);
                _cleanup_(gpu_snapshot_freep) GpuSnapshot *s = take(t, n);
                nvmlDevice_t dev;
                int node = -7;

                assert_int_equal(s->nvml_errors, 0);
                assert_int_equal(s->gpus[0].error, 0);
                assert_int_equal(s->gpus[0].numa_node, -1);
                assert_int_equal(gpu_nvml_device_handle(n, 0, &dev), NVML_SUCCESS);
                assert_int_equal(gpu_nvml_device_numa_node(n, dev, &node), NVML_ERROR_NOT_SUPPORTED);
                assert_int_equal(node, -7);
        }
}

#define NUMA_MIG_LAB                                                                               \
        "{ \"gpus\": [ { \"name\": \"NVIDIA A100-SXM4-80GB\", \"uuid\": \"" GPU1_UUID "\", "      \
        "\"pci_bus_id\": \"00000000:07:00.0\", \"memory_total_mib\": 81920, \"numa_node\": 6, "  \
        "\"mig\": { \"enabled\": true, \"instances\": [ "                                          \
        "{ \"gi\": 1, \"ci\": 0, \"profile\": \"3g.40gb\", \"uuid\": \"MIG-1f0a0000-0000\" }, "   \
        "{ \"gi\": 2, \"ci\": 0, \"profile\": \"3g.40gb\", \"uuid\": \"MIG-2b0b0000-0000\" } ] } } ] }"

/* MIG instances are slices of their GPU's memory: they inherit its node. */
static void test_numa_node_mig(void **state)
{
        TestLab *t = *state;
        _cleanup_(gpu_nvml_closep) GpuNvml *n = NULL;
        _cleanup_(gpu_snapshot_freep) GpuSnapshot *s = NULL;

        write_lab(t, NUMA_MIG_LAB);
        n = open_sim(SIM_MODERN);
        s = take(t, n);
        assert_int_equal(s->nvml_errors, 0);
        assert_int_equal(s->gpus[0].numa_node, 6);
        assert_int_equal(s->gpus[0].n_instances, 2);
        assert_int_equal(s->gpus[0].instances[0].numa_node, 6);
        assert_int_equal(s->gpus[0].instances[1].numa_node, 6);
}

/* Read once per GPU: a changed node of the same GPU is not asked for again,
 * another GPU at the same index is. A failure leaves it unknown, without an
 * error on the device, and is retried; NOT_SUPPORTED is an answer. A lost
 * GPU keeps the node it had. */
static void test_numa_node_read_once(void **state)
{
        TestLab *t = *state;
        _cleanup_(gpu_nvml_closep) GpuNvml *n = NULL;
        GpuSnapshot *s;

        write_lab(t, TWO_GPUS_FMT, 55u, ", \"numa_node\": 1", "", "false");
        n = open_sim(SIM_MODERN);
        s = take(t, n);
        assert_int_equal(s->gpus[0].numa_node, 1);
        assert_int_equal(s->gpus[1].numa_node, -1);
        gpu_snapshot_free(s);

        write_lab(t, TWO_GPUS_FMT, 55u, ", \"numa_node\": 2", "", "false");
        s = take(t, n);
        assert_int_equal(s->gpus[0].numa_node, 1);
        gpu_snapshot_free(s);

        /* Another GPU at index 0 (the two swapped places). */
        write_lab(t,
                  "{ \"gpus\": [ { \"name\": \"NVIDIA A100-SXM4-80GB\", \"uuid\": \"" GPU1_UUID
                  "\", \"pci_bus_id\": \"00000000:07:00.0\", \"memory_total_mib\": 81920, "
                  "\"numa_node\": 4 }, " GPU0_FMT " ] }",
                  55u, ", \"numa_node\": 2", "");
        s = take(t, n);
        assert_string_equal(s->gpus[0].uuid, GPU1_UUID);
        assert_int_equal(s->gpus[0].numa_node, 4);
        assert_string_equal(s->gpus[1].uuid, GPU0_UUID);
        assert_int_equal(s->gpus[1].numa_node, 2);
        gpu_snapshot_free(s);
        gpu_nvml_close(TAKE_PTR(n));

        /* A failing call: unknown, no error recorded, asked again next tick. */
        write_lab(t, TWO_GPUS_FMT, 55u,
                  ", \"numa_node\": 1, \"errors\": { \"nvmlDeviceGetMemoryAffinity\": 999 }", "",
                  "false");
        n = open_sim(SIM_MODERN);
        s = take(t, n);
        assert_int_equal(s->gpus[0].numa_node, -1);
        assert_int_equal(s->nvml_errors, 0);
        assert_int_equal(s->gpus[0].error, 0);
        assert_true(s->gpus[0].healthy);
        gpu_snapshot_free(s);
        write_lab(t, TWO_GPUS_FMT, 55u, ", \"numa_node\": 1", "", "false");
        s = take(t, n);
        assert_int_equal(s->gpus[0].numa_node, 1);
        gpu_snapshot_free(s);
        gpu_nvml_close(TAKE_PTR(n));

        /* NOT_SUPPORTED is the answer for this GPU: not asked again. */
        write_lab(t, TWO_GPUS_FMT, 55u,
                  ", \"numa_node\": 1, \"errors\": { \"nvmlDeviceGetMemoryAffinity\": 3 }", "",
                  "false");
        n = open_sim(SIM_MODERN);
        s = take(t, n);
        assert_int_equal(s->gpus[0].numa_node, -1);
        gpu_snapshot_free(s);
        write_lab(t, TWO_GPUS_FMT, 55u, ", \"numa_node\": 1", "", "false");
        s = take(t, n);
        assert_int_equal(s->gpus[0].numa_node, -1);
        gpu_snapshot_free(s);

        /* GPU 0 falls off the bus: reported under its last identity, node included. */
        gpu_nvml_close(TAKE_PTR(n));
        n = open_sim(SIM_MODERN);
        s = take(t, n);
        assert_int_equal(s->gpus[0].numa_node, 1);
        gpu_snapshot_free(s);
        write_lab(t, TWO_GPUS_FMT, 55u, ", \"numa_node\": 1, \"lost\": true", "", "false");
        s = take(t, n);
        assert_false(s->gpus[0].healthy);
        assert_int_equal(s->gpus[0].error, NVML_ERROR_GPU_IS_LOST);
        assert_int_equal(s->gpus[0].numa_node, 1);
        gpu_snapshot_free(s);
}

static void test_no_nvml(void **state)
{
        TestLab *t = *state;
        _cleanup_(gpu_snapshot_freep) GpuSnapshot *s = take(t, NULL);

        assert_false(s->nvml_available);
        assert_false(s->simulated);
        assert_string_equal(s->message, "NVML is not loaded");
        assert_int_equal(s->n_gpus, 0);
        assert_null(gpu_snapshot_find_device(s, GPU0_UUID));
        assert_null(gpu_snapshot_find_device(NULL, GPU0_UUID));
        gpu_snapshot_free(NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_open_missing_library),
                cmocka_unit_test(test_open_not_nvml),
                cmocka_unit_test_setup_teardown(test_open_init_failure, setup_lab, teardown_lab),
                cmocka_unit_test_setup_teardown(test_variants_same_processes, setup_lab,
                                                teardown_lab),
                cmocka_unit_test_setup_teardown(test_insufficient_size, setup_lab, teardown_lab),
                cmocka_unit_test_setup_teardown(test_too_many_processes, setup_lab, teardown_lab),
                cmocka_unit_test_setup_teardown(test_memory_v2_and_v1, setup_lab, teardown_lab),
                cmocka_unit_test_setup_teardown(test_mig, setup_lab, teardown_lab),
                cmocka_unit_test_setup_teardown(test_mig_instance_error, setup_lab, teardown_lab),
                cmocka_unit_test_setup_teardown(test_mig_legacy, setup_lab, teardown_lab),
                cmocka_unit_test_setup_teardown(test_lost_gpu, setup_lab, teardown_lab),
                cmocka_unit_test_setup_teardown(test_injected_errors, setup_lab, teardown_lab),
                cmocka_unit_test_setup_teardown(test_xid, setup_lab, teardown_lab),
                cmocka_unit_test_setup_teardown(test_lab_reload, setup_lab, teardown_lab),
                cmocka_unit_test_setup_teardown(test_numa_node, setup_lab, teardown_lab),
                cmocka_unit_test_setup_teardown(test_numa_node_mig, setup_lab, teardown_lab),
                cmocka_unit_test_setup_teardown(test_numa_node_read_once, setup_lab, teardown_lab),
                cmocka_unit_test_setup_teardown(test_no_nvml, setup_lab, teardown_lab),
        };

        return cmocka_run_group_tests_name("test-inventory", tests, NULL, NULL);
}
