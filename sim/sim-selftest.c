/* Self-test of the NVML simulator: dlopen()s each library variant the way
 * the daemon's binding does and checks the behaviour the binding's quirk
 * handling is tested against: the exact exported symbol sets, how many
 * bytes each versioned call writes, the INSUFFICIENT_SIZE protocol, the
 * nvmlMemory_v2 version word, MIG handles, lost GPUs, injected errors, Xid
 * events, NUMA memory affinity and reloading after an atomic rename.
 *
 * Usage: sim-selftest LIB_MODERN LIB_535 LIB_LEGACY LAB4_JSON BENCH_LAB_JSON NUMA_LAB_JSON */
#include <dlfcn.h>
#include <elf.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "basic/macro.h"
#include "gpu/nvml-abi.h"

enum { MODERN, V535, LEGACY, N_VARIANTS };

static const char *lib_paths[N_VARIANTS];
static const char *lab4_path, *bench_lab_path, *numa_lab_path;
static char tmpdir[PATH_MAX], lab_path[PATH_MAX + 16];

/* ---- helpers ---- */

static void *lib_open(int variant)
{
        void *dl = dlopen(lib_paths[variant], RTLD_NOW | RTLD_LOCAL);

        if (!dl)
                fail_msg("dlopen %s: %s", lib_paths[variant], dlerror());
        return dl;
}

static void *sym(void *dl, const char *name)
{
        void *p = dlsym(dl, name);

        if (!p)
                fail_msg("symbol %s missing", name);
        return p;
}

#define SYM(dl, type, name) ((type)sym((dl), (name)))

/* Replace the lab the way tests do: write beside it, then rename over it. */
static void write_lab(const char *fmt, ...)
{
        char tmp[sizeof(lab_path) + 8];
        va_list ap;
        FILE *f;

        snprintf(tmp, sizeof(tmp), "%s.tmp", lab_path);
        f = fopen(tmp, "we");
        assert_non_null(f);
        va_start(ap, fmt);
        vfprintf(f, fmt, ap);
        va_end(ap);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(rename(tmp, lab_path), 0);
        /* Calls on a device handle look at the lab at most every 10 ms
         * (SIM_REFRESH_USEC): wait that long, as a test of a rewritten lab. */
        nanosleep(&(struct timespec){ .tv_nsec = 11 * 1000 * 1000 }, NULL);
}

static void use_lab_file(const char *path)
{
        assert_int_equal(setenv("GPUKEEPER_SIM_LAB", path, 1), 0);
}

static uint64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A library's state is process-wide: every test leaves it shut down. */
static void init_ok(void *dl)
{
        const char *name = dlsym(dl, "nvmlInit_v2") ? "nvmlInit_v2" : "nvmlInit";

        assert_int_equal(SYM(dl, nvmlInit_fn, name)(), NVML_SUCCESS);
}

static void shutdown_ok(void *dl)
{
        assert_int_equal(SYM(dl, nvmlShutdown_fn, "nvmlShutdown")(), NVML_SUCCESS);
}

static nvmlDevice_t handle(void *dl, unsigned index)
{
        const char *name = dlsym(dl, "nvmlDeviceGetHandleByIndex_v2") ?
                "nvmlDeviceGetHandleByIndex_v2" : "nvmlDeviceGetHandleByIndex";
        nvmlDevice_t d = NULL;

        assert_int_equal(SYM(dl, nvmlDeviceGetHandleByIndex_fn, name)(index, &d), NVML_SUCCESS);
        assert_non_null(d);
        return d;
}

static nvmlDevice_t mig_handle(void *dl, nvmlDevice_t parent, unsigned index)
{
        nvmlDevice_t d = NULL;

        assert_int_equal(SYM(dl, nvmlDeviceGetMigDeviceHandleByIndex_fn,
                             "nvmlDeviceGetMigDeviceHandleByIndex")(parent, index, &d),
                         NVML_SUCCESS);
        return d;
}

/* ---- exported symbol sets, read from the ELF dynamic symbol table ---- */

static const char *const common_symbols[] = {
        "nvmlInit", "nvmlShutdown", "nvmlErrorString", "nvmlSystemGetDriverVersion",
        "nvmlDeviceGetCount", "nvmlDeviceGetHandleByIndex", "nvmlDeviceGetName",
        "nvmlDeviceGetUUID", "nvmlDeviceGetPciInfo", "nvmlDeviceGetMinorNumber",
        "nvmlDeviceGetMemoryInfo", "nvmlDeviceGetUtilizationRates", "nvmlDeviceGetTemperature",
        "nvmlDeviceGetPowerUsage", "nvmlDeviceGetTotalEnergyConsumption",
        "nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses",
        "nvmlDeviceGetProcessUtilization", "nvmlEventSetCreate", "nvmlEventSetFree",
        "nvmlDeviceRegisterEvents", "nvmlEventSetWait", "gpukeeperSimVersion",
        "nvmlDeviceGetCpuAffinity", "nvmlDeviceGetClockInfo", NULL,
};

static const char *const versioned_symbols[] = {
        "nvmlInit_v2", "nvmlDeviceGetCount_v2", "nvmlDeviceGetHandleByIndex_v2",
        "nvmlDeviceGetPciInfo_v3", "nvmlDeviceGetPciInfo_v2", "nvmlDeviceGetMemoryInfo_v2",
        "nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2",
        "nvmlDeviceGetGraphicsRunningProcesses_v3", "nvmlDeviceGetGraphicsRunningProcesses_v2",
        "nvmlDeviceGetMigMode", "nvmlDeviceGetMaxMigDeviceCount",
        "nvmlDeviceGetMigDeviceHandleByIndex", "nvmlDeviceGetGpuInstanceId",
        "nvmlDeviceGetComputeInstanceId", "nvmlDeviceGetDeviceHandleFromMigDeviceHandle",
        "nvmlDeviceIsMigDeviceHandle", "nvmlDeviceGetGpuInstanceProfileInfo",
        "nvmlEventSetWait_v2", "nvmlDeviceGetConfComputeMemSizeInfo",
        "nvmlDeviceGetMemoryAffinity",
        /* GPM came with the R520 drivers: not in the legacy variant. */
        "nvmlGpmQueryDeviceSupport", "nvmlGpmSampleAlloc", "nvmlGpmSampleFree",
        "nvmlGpmSampleGet", "nvmlGpmMetricsGet", NULL,
};

/* MIG management (issue 13), exported by the modern and 535 variants. */
static const char *const mig_management_symbols[] = {
        "nvmlDeviceSetMigMode", "nvmlDeviceGetGpuInstanceProfileInfoV",
        "nvmlDeviceGetGpuInstancePossiblePlacements_v2", "nvmlDeviceGetGpuInstanceRemainingCapacity",
        "nvmlDeviceCreateGpuInstance", "nvmlDeviceCreateGpuInstanceWithPlacement",
        "nvmlGpuInstanceDestroy", "nvmlDeviceGetGpuInstances", "nvmlDeviceGetGpuInstanceById",
        "nvmlGpuInstanceGetInfo", "nvmlGpuInstanceGetComputeInstanceProfileInfo",
        "nvmlGpuInstanceGetComputeInstanceProfileInfoV", "nvmlGpuInstanceCreateComputeInstance",
        "nvmlComputeInstanceDestroy", "nvmlGpuInstanceGetComputeInstances",
        "nvmlComputeInstanceGetInfo_v2", NULL,
};

static bool in_list(const char *const *list, const char *name)
{
        for (size_t i = 0; list[i]; i++)
                if (strcmp(list[i], name) == 0)
                        return true;
        return false;
}

static bool expected_export(int variant, const char *name)
{
        if (in_list(common_symbols, name))
                return true;
        if (variant != LEGACY && in_list(versioned_symbols, name))
                return true;
        if (variant != LEGACY && in_list(mig_management_symbols, name))
                return true;
        return variant == MODERN && strcmp(name, "nvmlDeviceGetRunningProcessDetailList") == 0;
}

static size_t expected_export_count(int variant)
{
        size_t n = 0;

        for (size_t i = 0; common_symbols[i]; i++)
                n++;
        if (variant != LEGACY)
                for (size_t i = 0; versioned_symbols[i]; i++)
                        n++;
        if (variant != LEGACY)
                for (size_t i = 0; mig_management_symbols[i]; i++)
                        n++;
        return n + (variant == MODERN);
}

/* Count the defined global symbols of the library file's .dynsym and check
 * that each one is expected (what `nm -D --defined-only` lists). */
static void check_exports(int variant)
{
        _cleanup_fclose_ FILE *f = fopen(lib_paths[variant], "re");
        _cleanup_free_ unsigned char *buf = NULL;
        struct stat st;
        size_t n_defined = 0;

        assert_non_null(f);
        assert_int_equal(fstat(fileno(f), &st), 0);
        buf = malloc((size_t)st.st_size);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t)st.st_size, f), (size_t)st.st_size);

        const Elf64_Ehdr *eh = (const Elf64_Ehdr *)buf;
        assert_memory_equal(eh->e_ident, ELFMAG, SELFMAG);
        assert_int_equal(eh->e_ident[EI_CLASS], ELFCLASS64);
        const Elf64_Shdr *sh = (const Elf64_Shdr *)(buf + eh->e_shoff);
        for (unsigned i = 0; i < eh->e_shnum; i++) {
                if (sh[i].sh_type != SHT_DYNSYM)
                        continue;
                const Elf64_Sym *syms = (const Elf64_Sym *)(buf + sh[i].sh_offset);
                const char *strtab = (const char *)(buf + sh[sh[i].sh_link].sh_offset);

                for (size_t k = 0; k < sh[i].sh_size / sizeof(Elf64_Sym); k++) {
                        const char *name = strtab + syms[k].st_name;
                        unsigned bind = ELF64_ST_BIND(syms[k].st_info);

                        if (syms[k].st_shndx == SHN_UNDEF || !name[0] ||
                            (bind != STB_GLOBAL && bind != STB_WEAK))
                                continue;
                        if (strcmp(name, "_init") == 0 || strcmp(name, "_fini") == 0)
                                continue;
                        if (!expected_export(variant, name))
                                fail_msg("%s exports unexpected %s", lib_paths[variant], name);
                        n_defined++;
                }
        }
        assert_int_equal(n_defined, expected_export_count(variant));
}

static void test_exports(void **state)
{
        for (int v = 0; v < N_VARIANTS; v++) {
                void *dl = lib_open(v);

                check_exports(v);
                assert_string_equal(SYM(dl, const char *(*)(void), "gpukeeperSimVersion")(),
                                    "gpukeeper-nvml-sim 1");
                /* The generation markers the binding keys on. */
                assert_int_equal(dlsym(dl, "nvmlDeviceGetConfComputeMemSizeInfo") != NULL, v != LEGACY);
                assert_int_equal(dlsym(dl, "nvmlDeviceGetRunningProcessDetailList") != NULL, v == MODERN);
                dlclose(dl);
        }
}

/* ---- init, shutdown, error strings ---- */

static void test_init(void **state)
{
        void *dl = lib_open(MODERN);
        nvmlInit_fn init = SYM(dl, nvmlInit_fn, "nvmlInit_v2");
        nvmlShutdown_fn shutdown = SYM(dl, nvmlShutdown_fn, "nvmlShutdown");
        nvmlDeviceGetCount_fn count = SYM(dl, nvmlDeviceGetCount_fn, "nvmlDeviceGetCount_v2");
        nvmlErrorString_fn errstr = SYM(dl, nvmlErrorString_fn, "nvmlErrorString");
        char missing[PATH_MAX + 16];
        unsigned n = 0;

        assert_int_equal(count(&n), NVML_ERROR_UNINITIALIZED);
        assert_int_equal(shutdown(), NVML_ERROR_UNINITIALIZED);

        assert_int_equal(unsetenv("GPUKEEPER_SIM_LAB"), 0);
        assert_int_equal(init(), NVML_ERROR_DRIVER_NOT_LOADED);
        snprintf(missing, sizeof(missing), "%s/missing.json", tmpdir);
        use_lab_file(missing);
        assert_int_equal(init(), NVML_ERROR_DRIVER_NOT_LOADED);
        use_lab_file(lab_path);
        write_lab("{ \"gpus\": [ { \"name\": \"x\" } ] }");
        assert_int_equal(init(), NVML_ERROR_DRIVER_NOT_LOADED);
        write_lab("{ \"gpus\": [], \"typo\": 1 }");
        assert_int_equal(init(), NVML_ERROR_DRIVER_NOT_LOADED);
        write_lab("{ \"gpus\": [], \"errors\": { \"nvmlInit_v2\": 9 } }");
        assert_int_equal(init(), NVML_ERROR_DRIVER_NOT_LOADED);
        assert_int_equal(count(&n), NVML_ERROR_UNINITIALIZED);

        /* Refcounted like NVML. */
        write_lab("{ \"gpus\": [] }");
        assert_int_equal(init(), NVML_SUCCESS);
        assert_int_equal(init(), NVML_SUCCESS);
        assert_int_equal(count(&n), NVML_SUCCESS);
        assert_int_equal(n, 0);
        assert_int_equal(shutdown(), NVML_SUCCESS);
        assert_int_equal(count(&n), NVML_SUCCESS);
        assert_int_equal(shutdown(), NVML_SUCCESS);
        assert_int_equal(count(&n), NVML_ERROR_UNINITIALIZED);
        assert_int_equal(shutdown(), NVML_ERROR_UNINITIALIZED);

        assert_string_equal(errstr(NVML_SUCCESS), "Success");
        assert_string_equal(errstr(NVML_ERROR_INVALID_ARGUMENT), "Invalid Argument");
        assert_string_equal(errstr(NVML_ERROR_NO_PERMISSION), "Insufficient Permissions");
        assert_string_equal(errstr(NVML_ERROR_GPU_IS_LOST), "GPU is lost");
        assert_string_equal(errstr(12345), "Unknown Error");
        dlclose(dl);
}

/* ---- identity, strings, PCI, memory, sensors on lab4 ---- */

static void test_lab4_device(void **state)
{
        void *dl = lib_open(MODERN);
        char buf[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
        nvmlPciInfo_t pci;
        nvmlMemory_t mem;
        nvmlMemory_v2_t mem2;
        nvmlUtilization_t util;
        unsigned n = 0;
        unsigned long long energy = 0;
        nvmlDevice_t d;

        use_lab_file(lab4_path);
        init_ok(dl);
        assert_int_equal(SYM(dl, nvmlDeviceGetCount_fn, "nvmlDeviceGetCount_v2")(&n), NVML_SUCCESS);
        assert_int_equal(n, 4);

        nvmlSystemGetDriverVersion_fn version =
                SYM(dl, nvmlSystemGetDriverVersion_fn, "nvmlSystemGetDriverVersion");
        assert_int_equal(version(buf, sizeof(buf)), NVML_SUCCESS);
        assert_string_equal(buf, "550.54.15");
        assert_int_equal(version(buf, (unsigned)strlen("550.54.15")), NVML_ERROR_INSUFFICIENT_SIZE);
        assert_int_equal(version(buf, (unsigned)strlen("550.54.15") + 1), NVML_SUCCESS);

        d = handle(dl, 0);
        nvmlDeviceGetString_fn name = SYM(dl, nvmlDeviceGetString_fn, "nvmlDeviceGetName");
        nvmlDeviceGetString_fn uuid = SYM(dl, nvmlDeviceGetString_fn, "nvmlDeviceGetUUID");
        assert_int_equal(name(d, buf, sizeof(buf)), NVML_SUCCESS);
        assert_string_equal(buf, "NVIDIA A100-SXM4-80GB");
        assert_int_equal(name(d, buf, 5), NVML_ERROR_INSUFFICIENT_SIZE);
        assert_int_equal(uuid(d, buf, sizeof(buf)), NVML_SUCCESS);
        assert_string_equal(buf, "GPU-5e2c8a1f-3b7d-4c19-9a02-6f1e0d4b7c31");
        assert_int_equal(uuid(d, buf, 40), NVML_ERROR_INSUFFICIENT_SIZE);
        assert_int_equal(uuid(d, buf, 41), NVML_SUCCESS);

        memset(&pci, 0xAA, sizeof(pci));
        assert_int_equal(SYM(dl, nvmlDeviceGetPciInfo_fn, "nvmlDeviceGetPciInfo_v3")(d, &pci), NVML_SUCCESS);
        assert_string_equal(pci.busId, "00000000:07:00.0");
        assert_string_equal(pci.busIdLegacy, "0000:07:00.0");
        assert_int_equal(pci.bus, 7);
        assert_int_equal(pci.pciDeviceId, 0x20B210DE);
        assert_int_equal(SYM(dl, nvmlDeviceGetUInt_fn, "nvmlDeviceGetMinorNumber")(d, &n), NVML_SUCCESS);
        assert_int_equal(n, 0);

        assert_int_equal(SYM(dl, nvmlDeviceGetMemoryInfo_fn, "nvmlDeviceGetMemoryInfo")(d, &mem), NVML_SUCCESS);
        assert_int_equal(mem.total, 81920ull << 20);
        assert_int_equal(mem.used, (20480ull + 512) << 20); /* v1 used includes reserved */
        assert_int_equal(mem.free, (81920ull - 20480 - 512) << 20);
        nvmlDeviceGetMemoryInfo_v2_fn mem_v2 =
                SYM(dl, nvmlDeviceGetMemoryInfo_v2_fn, "nvmlDeviceGetMemoryInfo_v2");
        memset(&mem2, 0, sizeof(mem2));
        assert_int_equal(mem_v2(d, &mem2), NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
        mem2.version = NVML_STRUCT_VERSION(sizeof(nvmlMemory_v2_t), 1);
        assert_int_equal(mem_v2(d, &mem2), NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
        mem2.version = nvmlMemory_v2;
        assert_int_equal(mem_v2(d, &mem2), NVML_SUCCESS);
        assert_int_equal(mem2.total, 81920ull << 20);
        assert_int_equal(mem2.reserved, 512ull << 20);
        assert_int_equal(mem2.used, 20480ull << 20);
        assert_int_equal(mem2.free, (81920ull - 20480 - 512) << 20);

        assert_int_equal(SYM(dl, nvmlDeviceGetUtilizationRates_fn, "nvmlDeviceGetUtilizationRates")(d, &util),
                         NVML_SUCCESS);
        assert_int_equal(util.gpu, 87);
        assert_int_equal(util.memory, 41);
        nvmlDeviceGetTemperature_fn temp = SYM(dl, nvmlDeviceGetTemperature_fn, "nvmlDeviceGetTemperature");
        assert_int_equal(temp(d, NVML_TEMPERATURE_GPU, &n), NVML_SUCCESS);
        assert_int_equal(n, 61);
        assert_int_equal(temp(d, 7, &n), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(SYM(dl, nvmlDeviceGetUInt_fn, "nvmlDeviceGetPowerUsage")(d, &n), NVML_SUCCESS);
        assert_int_equal(n, 312000);
        assert_int_equal(SYM(dl, nvmlDeviceGetULL_fn, "nvmlDeviceGetTotalEnergyConsumption")(d, &energy),
                         NVML_SUCCESS);
        assert_int_equal(energy, 918273645ull);

        nvmlDevice_t none = NULL;
        assert_int_equal(SYM(dl, nvmlDeviceGetHandleByIndex_fn, "nvmlDeviceGetHandleByIndex_v2")(4, &none),
                         NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(name((nvmlDevice_t)buf, buf, sizeof(buf)), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(SYM(dl, nvmlDeviceGetUInt_fn, "nvmlDeviceGetMaxMigDeviceCount")(d, &n), NVML_SUCCESS);
        assert_int_equal(n, 0);

        /* A GPU without a "mig" object cannot do MIG at all. */
        shutdown_ok(dl);
        write_lab("{ \"gpus\": [ { \"name\": \"Tesla V100-SXM2-32GB\", \"uuid\": \"GPU-1\","
                  " \"pci_bus_id\": \"00000000:1a:00.0\", \"memory_total_mib\": 32768 } ] }");
        use_lab_file(lab_path);
        init_ok(dl);
        d = handle(dl, 0);
        unsigned cur, pend;
        assert_int_equal(SYM(dl, nvmlDeviceGetMigMode_fn, "nvmlDeviceGetMigMode")(d, &cur, &pend),
                         NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(SYM(dl, nvmlDeviceGetUInt_fn, "nvmlDeviceGetMaxMigDeviceCount")(d, &n),
                         NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(SYM(dl, nvmlDeviceGetPciInfo_fn, "nvmlDeviceGetPciInfo_v3")(d, &pci), NVML_SUCCESS);
        assert_string_equal(pci.busId, "00000000:1A:00.0");
        assert_int_equal(SYM(dl, nvmlDeviceGetMemoryInfo_fn, "nvmlDeviceGetMemoryInfo")(d, &mem), NVML_SUCCESS);
        assert_int_equal(mem.used, 0);
        shutdown_ok(dl);
        dlclose(dl);
}

/* ---- running processes: sizes per symbol and variant, and the protocol ---- */

/* Call `fn` for one process on lab4's GPU 0 into an 0xAA-filled buffer and
 * return how many bytes it wrote. */
static size_t process_entry_size(void *dl, const char *fn)
{
        nvmlDeviceGetProcesses_fn get = SYM(dl, nvmlDeviceGetProcesses_fn, fn);
        unsigned char buf[256];
        unsigned count = 0;
        size_t n;

        assert_int_equal(get(handle(dl, 0), &count, NULL), NVML_ERROR_INSUFFICIENT_SIZE);
        assert_int_equal(count, 1);
        memset(buf, 0xAA, sizeof(buf));
        assert_int_equal(get(handle(dl, 0), &count, buf), NVML_SUCCESS);
        assert_int_equal(count, 1);
        for (n = sizeof(buf); n > 0 && buf[n - 1] == 0xAA; n--)
                ;
        /* The last field written is never 0xAA…: gi/ci are 0xFFFFFFFF, the CC memory 0. */
        assert_int_equal(*(unsigned *)buf, 4242);
        assert_int_equal(*(unsigned long long *)(buf + 8), 20480ull << 20);
        if (n >= 24) {
                assert_int_equal(*(unsigned *)(buf + 16), NVML_INSTANCE_ID_NONE);
                assert_int_equal(*(unsigned *)(buf + 20), NVML_INSTANCE_ID_NONE);
        }
        return n;
}

static void test_process_sizes(void **state)
{
        use_lab_file(lab4_path);
        for (int v = 0; v < N_VARIANTS; v++) {
                void *dl = lib_open(v);

                init_ok(dl);
                assert_int_equal(process_entry_size(dl, "nvmlDeviceGetComputeRunningProcesses"), 16);
                if (v != LEGACY) {
                        assert_int_equal(process_entry_size(dl, "nvmlDeviceGetComputeRunningProcesses_v2"), 24);
                        assert_int_equal(process_entry_size(dl, "nvmlDeviceGetComputeRunningProcesses_v3"),
                                         v == V535 ? 32 : 24);
                }
                shutdown_ok(dl);
                dlclose(dl);
        }
}

static void test_process_lists(void **state)
{
        void *dl = lib_open(MODERN);
        nvmlDeviceGetProcesses_fn compute =
                SYM(dl, nvmlDeviceGetProcesses_fn, "nvmlDeviceGetComputeRunningProcesses_v3");
        nvmlDeviceGetProcesses_fn graphics =
                SYM(dl, nvmlDeviceGetProcesses_fn, "nvmlDeviceGetGraphicsRunningProcesses_v3");
        nvmlProcessInfo_v2_t p[4];
        unsigned count;

        use_lab_file(lab4_path);
        init_ok(dl);
        /* An idle GPU: count 0 with a NULL array is the documented size query. */
        count = 0;
        assert_int_equal(compute(handle(dl, 1), &count, NULL), NVML_SUCCESS);
        assert_int_equal(count, 0);
        assert_int_equal(compute(handle(dl, 1), NULL, NULL), NVML_ERROR_INVALID_ARGUMENT);

        count = 4;
        assert_int_equal(compute(handle(dl, 3), &count, p), NVML_SUCCESS);
        assert_int_equal(count, 1);
        assert_int_equal(p[0].pid, 4245);
        count = 4;
        assert_int_equal(graphics(handle(dl, 3), &count, p), NVML_SUCCESS);
        assert_int_equal(count, 2);
        assert_int_equal(p[0].pid, 4245);
        assert_int_equal(p[1].pid, 4246);
        assert_true(p[1].usedGpuMemory == NVML_VALUE_NOT_AVAILABLE);

        /* The MIG parent aggregates every instance's processes. */
        count = 1;
        assert_int_equal(compute(handle(dl, 2), &count, p), NVML_ERROR_INSUFFICIENT_SIZE);
        assert_int_equal(count, 2);
        assert_int_equal(compute(handle(dl, 2), &count, p), NVML_SUCCESS);
        assert_int_equal(p[0].pid, 4243);
        assert_int_equal(p[0].gpuInstanceId, 1);
        assert_int_equal(p[0].computeInstanceId, 0);
        assert_int_equal(p[1].pid, 4244);
        assert_int_equal(p[1].gpuInstanceId, 13);

        /* Process utilisation: NULL asks the size, no samples is NOT_FOUND, MIG is NOT_SUPPORTED. */
        nvmlDeviceGetProcessUtilization_fn putil =
                SYM(dl, nvmlDeviceGetProcessUtilization_fn, "nvmlDeviceGetProcessUtilization");
        nvmlProcessUtilizationSample_t s[2];
        count = 0;
        assert_int_equal(putil(handle(dl, 0), NULL, &count, 0), NVML_ERROR_INSUFFICIENT_SIZE);
        assert_int_equal(count, 1);
        assert_int_equal(putil(handle(dl, 0), s, &count, 0), NVML_SUCCESS);
        assert_int_equal(s[0].pid, 4242);
        assert_int_equal(s[0].smUtil, 85);
        assert_int_equal(s[0].memUtil, 40);
        assert_true(s[0].timeStamp > 0);
        assert_int_equal(putil(handle(dl, 0), s, &count, ~0ull), NVML_ERROR_NOT_FOUND);
        assert_int_equal(putil(handle(dl, 1), s, &count, 0), NVML_ERROR_NOT_FOUND);
        assert_int_equal(putil(handle(dl, 2), s, &count, 0), NVML_ERROR_NOT_SUPPORTED);
        shutdown_ok(dl);
        dlclose(dl);
}

/* ---- MIG ---- */

static void test_mig(void **state)
{
        void *dl = lib_open(MODERN);
        nvmlDeviceGetMigDeviceHandleByIndex_fn by_index =
                SYM(dl, nvmlDeviceGetMigDeviceHandleByIndex_fn, "nvmlDeviceGetMigDeviceHandleByIndex");
        nvmlDeviceGetProcesses_fn compute =
                SYM(dl, nvmlDeviceGetProcesses_fn, "nvmlDeviceGetComputeRunningProcesses_v2");
        nvmlDeviceGetUInt_fn gi_id = SYM(dl, nvmlDeviceGetUInt_fn, "nvmlDeviceGetGpuInstanceId");
        nvmlDeviceGetUInt_fn ci_id = SYM(dl, nvmlDeviceGetUInt_fn, "nvmlDeviceGetComputeInstanceId");
        nvmlDeviceGetUInt_fn is_mig = SYM(dl, nvmlDeviceGetUInt_fn, "nvmlDeviceIsMigDeviceHandle");
        nvmlDeviceGetGpuInstanceProfileInfo_fn profile_info =
                SYM(dl, nvmlDeviceGetGpuInstanceProfileInfo_fn, "nvmlDeviceGetGpuInstanceProfileInfo");
        char buf[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
        nvmlGpuInstanceProfileInfo_t info;
        nvmlProcessInfo_v2_t p[4];
        nvmlUtilization_t util;
        nvmlMemory_v2_t mem2 = { .version = nvmlMemory_v2 };
        nvmlMemory_t mem;
        unsigned cur = 9, pend = 9, n, count;
        nvmlDevice_t parent, m, back = NULL, none = NULL;

        use_lab_file(lab4_path);
        init_ok(dl);
        parent = handle(dl, 2);
        assert_int_equal(SYM(dl, nvmlDeviceGetMigMode_fn, "nvmlDeviceGetMigMode")(parent, &cur, &pend),
                         NVML_SUCCESS);
        assert_int_equal(cur, 1);
        assert_int_equal(pend, 1);
        assert_int_equal(SYM(dl, nvmlDeviceGetMigMode_fn, "nvmlDeviceGetMigMode")(handle(dl, 0), &cur, &pend),
                         NVML_SUCCESS);
        assert_int_equal(cur, 0);
        assert_int_equal(pend, 0);
        assert_int_equal(SYM(dl, nvmlDeviceGetUInt_fn, "nvmlDeviceGetMaxMigDeviceCount")(parent, &n), NVML_SUCCESS);
        assert_int_equal(n, 7);
        assert_int_equal(by_index(parent, 4, &none), NVML_ERROR_NOT_FOUND);
        assert_int_equal(by_index(parent, 7, &none), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(by_index(handle(dl, 0), 0, &none), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(SYM(dl, nvmlDeviceGetUtilizationRates_fn, "nvmlDeviceGetUtilizationRates")(parent, &util),
                         NVML_ERROR_NOT_SUPPORTED);

        m = mig_handle(dl, parent, 0);
        assert_ptr_not_equal(m, parent);
        assert_int_equal(SYM(dl, nvmlDeviceGetString_fn, "nvmlDeviceGetUUID")(m, buf, sizeof(buf)), NVML_SUCCESS);
        assert_string_equal(buf, "MIG-1f0a6b2d-8c47-5e91-a3d6-0b5c7e29f814");
        assert_int_equal(SYM(dl, nvmlDeviceGetString_fn, "nvmlDeviceGetName")(m, buf, sizeof(buf)), NVML_SUCCESS);
        assert_string_equal(buf, "NVIDIA A100-SXM4-80GB MIG 3g.40gb");
        assert_int_equal(SYM(dl, nvmlDeviceGetMemoryInfo_fn, "nvmlDeviceGetMemoryInfo")(m, &mem), NVML_SUCCESS);
        assert_int_equal(mem.total, 40192ull << 20);
        assert_int_equal(mem.used, 12288ull << 20);
        assert_int_equal(SYM(dl, nvmlDeviceGetMemoryInfo_v2_fn, "nvmlDeviceGetMemoryInfo_v2")(m, &mem2),
                         NVML_SUCCESS);
        assert_int_equal(mem2.reserved, 0);
        assert_int_equal(mem2.free, (40192ull - 12288) << 20);
        assert_int_equal(gi_id(m, &n), NVML_SUCCESS);
        assert_int_equal(n, 1);
        assert_int_equal(ci_id(m, &n), NVML_SUCCESS);
        assert_int_equal(n, 0);
        assert_int_equal(gi_id(parent, &n), NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(is_mig(m, &n), NVML_SUCCESS);
        assert_int_equal(n, 1);
        assert_int_equal(is_mig(parent, &n), NVML_SUCCESS);
        assert_int_equal(n, 0);
        assert_int_equal(SYM(dl, nvmlDeviceGetUtilizationRates_fn, "nvmlDeviceGetUtilizationRates")(m, &util),
                         NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(SYM(dl, nvmlDeviceGetTemperature_fn, "nvmlDeviceGetTemperature")(m, 0, &n),
                         NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(SYM(dl, nvmlDeviceGetUInt_fn, "nvmlDeviceGetPowerUsage")(m, &n), NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(SYM(dl, nvmlDeviceGetProcessUtilization_fn, "nvmlDeviceGetProcessUtilization")(
                                 m, NULL, &n, 0),
                         NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(((nvmlReturn_t(*)(nvmlDevice_t, nvmlDevice_t *))sym(
                                  dl, "nvmlDeviceGetDeviceHandleFromMigDeviceHandle"))(m, &back),
                         NVML_SUCCESS);
        assert_ptr_equal(back, parent);

        count = 4;
        assert_int_equal(compute(m, &count, p), NVML_SUCCESS);
        assert_int_equal(count, 1);
        assert_int_equal(p[0].pid, 4243);
        assert_int_equal(p[0].gpuInstanceId, 1);
        count = 4;
        assert_int_equal(compute(mig_handle(dl, parent, 1), &count, p), NVML_SUCCESS);
        assert_int_equal(count, 0);
        m = mig_handle(dl, parent, 3);
        assert_int_equal(SYM(dl, nvmlDeviceGetString_fn, "nvmlDeviceGetName")(m, buf, sizeof(buf)), NVML_SUCCESS);
        assert_string_equal(buf, "NVIDIA A100-SXM4-80GB MIG 1g.10gb");

        assert_int_equal(profile_info(parent, 0x0, &info), NVML_SUCCESS);
        assert_int_equal(info.id, 19);
        assert_int_equal(info.sliceCount, 1);
        assert_int_equal(info.instanceCount, 7);
        assert_int_equal(info.memorySizeMB, 9728);
        assert_int_equal(profile_info(parent, 0x2, &info), NVML_SUCCESS);
        assert_int_equal(info.sliceCount, 3);
        assert_int_equal(info.memorySizeMB, 40192);
        assert_int_equal(profile_info(parent, 0x4, &info), NVML_SUCCESS);
        assert_int_equal(info.sliceCount, 7);
        assert_int_equal(info.id, 0);
        assert_int_equal(profile_info(parent, 0x5, &info), NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(profile_info(parent, 0x11, &info), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(profile_info(handle(dl, 3), 0x0, &info), NVML_SUCCESS);
        assert_int_equal(info.memorySizeMB, 9984); /* H100 */

        /* MIG turned off by a reload: old MIG handles become invalid. */
        shutdown_ok(dl);
        write_lab("{ \"gpus\": [ { \"name\": \"NVIDIA A100-SXM4-80GB\", \"uuid\": \"GPU-a\","
                  " \"pci_bus_id\": \"00000000:07:00.0\", \"memory_total_mib\": 81920,"
                  " \"mig\": { \"enabled\": true, \"instances\": [ { \"gi\": 7, \"profile\": \"1g.10gb\","
                  " \"uuid\": \"MIG-a\" } ] },"
                  " \"processes\": [ { \"pid\": 77, \"used_mib\": 100, \"gi\": 7, \"ci\": 0 } ] } ] }");
        use_lab_file(lab_path);
        init_ok(dl);
        parent = handle(dl, 0);
        m = mig_handle(dl, parent, 0);
        assert_int_equal(SYM(dl, nvmlDeviceGetMemoryInfo_fn, "nvmlDeviceGetMemoryInfo")(m, &mem), NVML_SUCCESS);
        assert_int_equal(mem.total, 9728ull << 20); /* from the profile table */
        write_lab("{ \"gpus\": [ { \"name\": \"NVIDIA A100-SXM4-80GB\", \"uuid\": \"GPU-a\","
                  " \"pci_bus_id\": \"00000000:07:00.0\", \"memory_total_mib\": 81920,"
                  " \"mig\": { \"enabled\": false } } ] }");
        assert_int_equal(SYM(dl, nvmlDeviceGetMemoryInfo_fn, "nvmlDeviceGetMemoryInfo")(m, &mem),
                         NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(SYM(dl, nvmlDeviceGetMemoryInfo_fn, "nvmlDeviceGetMemoryInfo")(parent, &mem),
                         NVML_SUCCESS);
        assert_int_equal(by_index(parent, 0, &none), NVML_ERROR_INVALID_ARGUMENT);
        shutdown_ok(dl);
        dlclose(dl);
}

/* ---- lost GPUs and injected errors ---- */

static const char *const injection_lab =
        "{ \"errors\": { \"nvmlSystemGetDriverVersion\": 17 },"
        "  \"gpus\": ["
        "  { \"name\": \"NVIDIA A100-SXM4-80GB\", \"uuid\": \"GPU-0\", \"pci_bus_id\": \"00000000:07:00.0\","
        "    \"memory_total_mib\": 81920, \"power_mw\": 1000, \"temperature_c\": 40,"
        "    \"errors\": { \"nvmlDeviceGetPowerUsage\": 999, \"nvmlDeviceGetComputeRunningProcesses\": 3,"
        "                  \"nvmlDeviceGetComputeRunningProcesses_v3\": 4 } },"
        "  { \"name\": \"NVIDIA A100-SXM4-80GB\", \"uuid\": \"GPU-1\", \"pci_bus_id\": \"00000000:0F:00.0\","
        "    \"memory_total_mib\": 81920, \"lost\": %s,"
        "    \"mig\": { \"enabled\": true, \"instances\": ["
        "      { \"gi\": 1, \"ci\": 0, \"profile\": \"3g.40gb\", \"uuid\": \"MIG-1\","
        "        \"errors\": { \"nvmlDeviceGetUUID\": 4 } },"
        "      { \"gi\": 2, \"ci\": 0, \"profile\": \"3g.40gb\", \"uuid\": \"MIG-2\" } ] } } ] }";

static void test_lost_and_injection(void **state)
{
        void *dl = lib_open(MODERN);
        nvmlDeviceGetHandleByIndex_fn by_index =
                SYM(dl, nvmlDeviceGetHandleByIndex_fn, "nvmlDeviceGetHandleByIndex_v2");
        nvmlDeviceGetString_fn uuid = SYM(dl, nvmlDeviceGetString_fn, "nvmlDeviceGetUUID");
        char buf[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
        nvmlDevice_t d0, d1, m0, m1, none = NULL;
        unsigned n = 0, count = 0;

        use_lab_file(lab_path);
        write_lab(injection_lab, "false");
        init_ok(dl);
        assert_int_equal(SYM(dl, nvmlSystemGetDriverVersion_fn, "nvmlSystemGetDriverVersion")(buf, sizeof(buf)),
                         NVML_ERROR_OPERATING_SYSTEM);
        d0 = handle(dl, 0);
        assert_int_equal(SYM(dl, nvmlDeviceGetUInt_fn, "nvmlDeviceGetPowerUsage")(d0, &n), 999);
        assert_int_equal(SYM(dl, nvmlDeviceGetTemperature_fn, "nvmlDeviceGetTemperature")(d0, 0, &n), NVML_SUCCESS);
        assert_int_equal(n, 40);
        /* The exact name wins over the base name, which covers every version. */
        assert_int_equal(SYM(dl, nvmlDeviceGetProcesses_fn, "nvmlDeviceGetComputeRunningProcesses_v3")(d0, &count, NULL), 4);
        assert_int_equal(SYM(dl, nvmlDeviceGetProcesses_fn, "nvmlDeviceGetComputeRunningProcesses_v2")(d0, &count, NULL), 3);
        assert_int_equal(SYM(dl, nvmlDeviceGetProcesses_fn, "nvmlDeviceGetComputeRunningProcesses")(d0, &count, NULL), 3);
        assert_int_equal(SYM(dl, nvmlDeviceGetProcesses_fn, "nvmlDeviceGetGraphicsRunningProcesses_v3")(d0, &count, NULL),
                         NVML_SUCCESS);

        d1 = handle(dl, 1);
        m0 = mig_handle(dl, d1, 0);
        m1 = mig_handle(dl, d1, 1);
        assert_int_equal(uuid(m0, buf, sizeof(buf)), NVML_ERROR_NO_PERMISSION);
        assert_int_equal(uuid(m1, buf, sizeof(buf)), NVML_SUCCESS);
        assert_int_equal(uuid(d1, buf, sizeof(buf)), NVML_SUCCESS);

        /* The GPU falls off the bus: its handle, its MIG handles and its index all say so. */
        write_lab(injection_lab, "true");
        assert_int_equal(uuid(d1, buf, sizeof(buf)), NVML_ERROR_GPU_IS_LOST);
        assert_int_equal(uuid(m1, buf, sizeof(buf)), NVML_ERROR_GPU_IS_LOST);
        assert_int_equal(by_index(1, &none), NVML_ERROR_GPU_IS_LOST);
        assert_int_equal(uuid(d0, buf, sizeof(buf)), NVML_SUCCESS);
        assert_int_equal(SYM(dl, nvmlDeviceGetCount_fn, "nvmlDeviceGetCount_v2")(&n), NVML_SUCCESS);
        assert_int_equal(n, 2);
        shutdown_ok(dl);
        dlclose(dl);
}

/* ---- reload, Xid events ---- */

static const char *const xid_lab =
        "{ \"gpus\": ["
        "  { \"name\": \"NVIDIA A100-SXM4-80GB\", \"uuid\": \"GPU-0\", \"pci_bus_id\": \"00000000:07:00.0\","
        "    \"memory_total_mib\": 81920, \"temperature_c\": %u, \"xid\": %u },"
        "  { \"name\": \"NVIDIA A100-SXM4-80GB\", \"uuid\": \"GPU-1\", \"pci_bus_id\": \"00000000:0F:00.0\","
        "    \"memory_total_mib\": 81920, \"xid\": %u } ] }";

static void test_reload_and_xid(void **state)
{
        void *dl = lib_open(MODERN);
        nvmlEventSetWait_fn wait = SYM(dl, nvmlEventSetWait_fn, "nvmlEventSetWait_v2");
        nvmlDeviceGetTemperature_fn temp = SYM(dl, nvmlDeviceGetTemperature_fn, "nvmlDeviceGetTemperature");
        nvmlDeviceGetCount_fn count = SYM(dl, nvmlDeviceGetCount_fn, "nvmlDeviceGetCount_v2");
        nvmlEventSet_t set = NULL;
        nvmlEventData_t ev;
        nvmlDevice_t d0, d1;
        unsigned n = 0;
        uint64_t t;

        use_lab_file(lab_path);
        write_lab(xid_lab, 30u, 13u, 0u); /* an Xid already there at init is history */
        init_ok(dl);
        d0 = handle(dl, 0);
        d1 = handle(dl, 1);
        assert_int_equal(SYM(dl, nvmlEventSetCreate_fn, "nvmlEventSetCreate")(&set), NVML_SUCCESS);
        assert_int_equal(SYM(dl, nvmlDeviceRegisterEvents_fn, "nvmlDeviceRegisterEvents")(
                                 d0, NVML_EVENT_TYPE_XID_CRITICAL_ERROR, set),
                         NVML_SUCCESS);
        t = now_ms();
        assert_int_equal(wait(set, &ev, 0), NVML_ERROR_TIMEOUT);
        assert_true(now_ms() - t < 20);
        t = now_ms();
        assert_int_equal(wait(set, &ev, 60), NVML_ERROR_TIMEOUT);
        assert_true(now_ms() - t >= 55);

        write_lab(xid_lab, 31u, 79u, 48u); /* GPU 1 changes too, but nobody registered it */
        memset(&ev, 0xAA, sizeof(ev));
        assert_int_equal(wait(set, &ev, 0), NVML_SUCCESS);
        assert_ptr_equal(ev.device, d0);
        assert_int_equal(ev.eventType, NVML_EVENT_TYPE_XID_CRITICAL_ERROR);
        assert_int_equal(ev.eventData, 79);
        assert_int_equal(ev.gpuInstanceId, NVML_INSTANCE_ID_NONE);
        assert_int_equal(wait(set, &ev, 0), NVML_ERROR_TIMEOUT);
        assert_int_equal(temp(d0, 0, &n), NVML_SUCCESS);
        assert_int_equal(n, 31);

        /* The same Xid again is not a new event; a different one is. */
        write_lab(xid_lab, 32u, 79u, 48u);
        assert_int_equal(wait(set, &ev, 0), NVML_ERROR_TIMEOUT);
        write_lab(xid_lab, 33u, 0u, 48u);
        assert_int_equal(wait(set, &ev, 0), NVML_ERROR_TIMEOUT);
        write_lab(xid_lab, 34u, 94u, 48u);
        assert_int_equal(wait(set, &ev, 10), NVML_SUCCESS);
        assert_int_equal(ev.eventData, 94);

        /* A lab that no longer parses leaves the previous one in effect. */
        write_lab("{ \"gpus\": [ ");
        assert_int_equal(count(&n), NVML_SUCCESS);
        assert_int_equal(n, 2);
        assert_int_equal(temp(d0, 0, &n), NVML_SUCCESS);
        assert_int_equal(n, 34);

        /* Shrinking: the handle of the GPU that went away stops working, the other survives. */
        write_lab("{ \"gpus\": [ { \"name\": \"NVIDIA A100-SXM4-80GB\", \"uuid\": \"GPU-0\","
                  " \"pci_bus_id\": \"00000000:07:00.0\", \"memory_total_mib\": 81920, \"temperature_c\": 50 } ] }");
        assert_int_equal(count(&n), NVML_SUCCESS);
        assert_int_equal(n, 1);
        assert_int_equal(temp(d0, 0, &n), NVML_SUCCESS);
        assert_int_equal(n, 50);
        assert_int_equal(temp(d1, 0, &n), NVML_ERROR_GPU_NOT_FOUND);

        assert_int_equal(SYM(dl, nvmlEventSetFree_fn, "nvmlEventSetFree")(set), NVML_SUCCESS);
        shutdown_ok(dl);
        dlclose(dl);
}

/* ---- CPU affinity (gres.conf Cores=) ---- */

static const char *const cpu_lab =
        "{ \"gpus\": ["
        "  { \"name\": \"NVIDIA A100-SXM4-80GB\", \"uuid\": \"GPU-0\", \"pci_bus_id\": \"00000000:07:00.0\","
        "    \"memory_total_mib\": 81920, \"cpu_affinity\": %s },"
        "  { \"name\": \"NVIDIA A100-SXM4-80GB\", \"uuid\": \"GPU-1\", \"pci_bus_id\": \"00000000:0F:00.0\","
        "    \"memory_total_mib\": 81920 } ] }";

static void test_cpu_affinity(void **state)
{
        void *dl = lib_open(MODERN);
        nvmlDeviceGetCpuAffinity_fn affinity =
                SYM(dl, nvmlDeviceGetCpuAffinity_fn, "nvmlDeviceGetCpuAffinity");
        unsigned long set[3];

        use_lab_file(lab_path);
        /* CPU numbers from 0 to 1023. */
        write_lab(cpu_lab, "[1024]");
        assert_int_equal(SYM(dl, nvmlInit_fn, "nvmlInit_v2")(), NVML_ERROR_DRIVER_NOT_LOADED);
        write_lab(cpu_lab, "[0, 1, 2, 3, 64, 129]");
        init_ok(dl);

        /* Bit n % 64 of word n / 64; cpuSetSize words written, no more. */
        memset(set, 0xAA, sizeof(set));
        assert_int_equal(affinity(handle(dl, 0), 2, set), NVML_SUCCESS);
        assert_true(set[0] == 0xFul && set[1] == 1ul);
        assert_true(set[2] == 0xAAAAAAAAAAAAAAAAul);
        assert_int_equal(affinity(handle(dl, 0), 3, set), NVML_SUCCESS);
        assert_true(set[2] == 2ul);
        assert_int_equal(affinity(handle(dl, 0), 0, set), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(affinity(handle(dl, 0), 2, NULL), NVML_ERROR_INVALID_ARGUMENT);
        /* Without "cpu_affinity" in the lab: NOT_SUPPORTED. */
        assert_int_equal(affinity(handle(dl, 1), 2, set), NVML_ERROR_NOT_SUPPORTED);
        SYM(dl, nvmlShutdown_fn, "nvmlShutdown")();
}

/* ---- NUMA memory affinity ---- */

static const char *const numa_lab =
        "{ \"gpus\": ["
        "  { \"name\": \"NVIDIA A100-SXM4-80GB\", \"uuid\": \"GPU-0\", \"pci_bus_id\": \"00000000:07:00.0\","
        "    \"memory_total_mib\": 81920, \"numa_node\": %s },"
        "  { \"name\": \"NVIDIA A100-SXM4-80GB\", \"uuid\": \"GPU-1\", \"pci_bus_id\": \"00000000:0F:00.0\","
        "    \"memory_total_mib\": 81920, \"numa_node\": 1023 },"
        "  { \"name\": \"NVIDIA A100-SXM4-80GB\", \"uuid\": \"GPU-2\", \"pci_bus_id\": \"00000000:47:00.0\","
        "    \"memory_total_mib\": 81920 },"
        "  { \"name\": \"NVIDIA A100-SXM4-80GB\", \"uuid\": \"GPU-3\", \"pci_bus_id\": \"00000000:4E:00.0\","
        "    \"memory_total_mib\": 81920, \"numa_node\": 3,"
        "    \"errors\": { \"nvmlDeviceGetMemoryAffinity\": %s },"
        "    \"mig\": { \"enabled\": true, \"instances\": [ { \"gi\": 1, \"ci\": 0,"
        "      \"profile\": \"3g.40gb\", \"uuid\": \"MIG-3\" } ] } } ] }";

static void test_memory_affinity(void **state)
{
        void *dl = lib_open(MODERN);
        nvmlDeviceGetMemoryAffinity_fn affinity =
                SYM(dl, nvmlDeviceGetMemoryAffinity_fn, "nvmlDeviceGetMemoryAffinity");
        unsigned long set[16 + 1];
        nvmlDevice_t d;

        use_lab_file(lab_path);
        /* "numa_node" is an integer from 0 to 1023. */
        write_lab(numa_lab, "1024", "3");
        assert_int_equal(SYM(dl, nvmlInit_fn, "nvmlInit_v2")(), NVML_ERROR_DRIVER_NOT_LOADED);
        write_lab(numa_lab, "-1", "3");
        assert_int_equal(SYM(dl, nvmlInit_fn, "nvmlInit_v2")(), NVML_ERROR_DRIVER_NOT_LOADED);
        write_lab(numa_lab, "\"0\"", "3");
        assert_int_equal(SYM(dl, nvmlInit_fn, "nvmlInit_v2")(), NVML_ERROR_DRIVER_NOT_LOADED);

        write_lab(numa_lab, "1", "3");
        init_ok(dl);

        /* One bit, node n at bit n % 64 of word n / 64; every word given is
         * written, nothing past them. Both scopes report the lab's node. */
        for (nvmlAffinityScope_t scope = NVML_AFFINITY_SCOPE_NODE;
             scope <= NVML_AFFINITY_SCOPE_SOCKET; scope++) {
                memset(set, 0xAA, sizeof(set));
                assert_int_equal(affinity(handle(dl, 0), 16, set, scope), NVML_SUCCESS);
                assert_true(set[0] == 0x2ul);
                for (size_t w = 1; w < 16; w++)
                        assert_true(set[w] == 0);
                assert_true(set[16] == 0xAAAAAAAAAAAAAAAAul);
        }
        memset(set, 0xAA, sizeof(set));
        assert_int_equal(affinity(handle(dl, 1), 16, set, NVML_AFFINITY_SCOPE_NODE), NVML_SUCCESS);
        assert_true(set[15] == 1ul << 63);
        assert_true(set[0] == 0 && set[14] == 0);

        /* Too small a set is no INSUFFICIENT_SIZE in NVML: the node that does
         * not fit is just not there. */
        memset(set, 0xAA, sizeof(set));
        assert_int_equal(affinity(handle(dl, 1), 1, set, NVML_AFFINITY_SCOPE_NODE), NVML_SUCCESS);
        assert_true(set[0] == 0);
        assert_true(set[1] == 0xAAAAAAAAAAAAAAAAul);

        /* Argument checks, as nvml.h lists them. */
        assert_int_equal(affinity(handle(dl, 0), 0, set, NVML_AFFINITY_SCOPE_NODE),
                         NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(affinity(handle(dl, 0), 16, NULL, NVML_AFFINITY_SCOPE_NODE),
                         NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(affinity(handle(dl, 0), 16, set, 2), NVML_ERROR_INVALID_ARGUMENT);

        /* No "numa_node": what NVML says on a machine without NUMA information. */
        assert_int_equal(affinity(handle(dl, 2), 16, set, NVML_AFFINITY_SCOPE_NODE),
                         NVML_ERROR_NOT_SUPPORTED);

        /* A MIG device reports its parent's node; the parent's injected error
         * is not the instance's. */
        d = handle(dl, 3);
        assert_int_equal(affinity(d, 16, set, NVML_AFFINITY_SCOPE_NODE), 3);
        memset(set, 0xAA, sizeof(set));
        assert_int_equal(affinity(mig_handle(dl, d, 0), 16, set, NVML_AFFINITY_SCOPE_NODE),
                         NVML_SUCCESS);
        assert_true(set[0] == 1ul << 3);

        /* The value follows the lab when it is replaced. */
        write_lab(numa_lab, "64", "3");
        memset(set, 0xAA, sizeof(set));
        assert_int_equal(affinity(handle(dl, 0), 2, set, NVML_AFFINITY_SCOPE_NODE), NVML_SUCCESS);
        assert_true(set[0] == 0 && set[1] == 1ul);
        shutdown_ok(dl);

        /* gen-lab.py --gpus 4 --numa-nodes 2: consecutive blocks, 0 0 1 1. */
        use_lab_file(numa_lab_path);
        init_ok(dl);
        for (unsigned i = 0; i < 4; i++) {
                assert_int_equal(affinity(handle(dl, i), 1, set, NVML_AFFINITY_SCOPE_NODE),
                                 NVML_SUCCESS);
                assert_true(set[0] == 1ul << (i / 2));
        }
        shutdown_ok(dl);
        dlclose(dl);
}

/* ---- the legacy driver ---- */

static void test_legacy(void **state)
{
        void *dl = lib_open(LEGACY);
        nvmlEventSetWait_fn wait = SYM(dl, nvmlEventSetWait_fn, "nvmlEventSetWait");
        unsigned char buf[sizeof(nvmlPciInfo_t) + 8];
        char version[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
        nvmlEventSet_t set = NULL;
        nvmlEventData_t ev;
        nvmlPciInfo_t *pci = (nvmlPciInfo_t *)buf;
        nvmlMemory_t mem;
        size_t n;

        use_lab_file(lab_path);
        write_lab(xid_lab, 30u, 0u, 0u);
        init_ok(dl);
        assert_int_equal(SYM(dl, nvmlSystemGetDriverVersion_fn, "nvmlSystemGetDriverVersion")(version, sizeof(version)),
                         NVML_SUCCESS);
        assert_string_equal(version, "418.226.00");

        memset(buf, 0xAA, sizeof(buf));
        assert_int_equal(SYM(dl, nvmlDeviceGetPciInfo_fn, "nvmlDeviceGetPciInfo")(handle(dl, 1), pci), NVML_SUCCESS);
        for (n = sizeof(buf); n > 0 && buf[n - 1] == 0xAA; n--)
                ;
        assert_int_equal(n, offsetof(nvmlPciInfo_t, busId));
        assert_string_equal(pci->busIdLegacy, "0000:0F:00.0");
        assert_int_equal(pci->bus, 0x0F);
        assert_int_equal(SYM(dl, nvmlDeviceGetMemoryInfo_fn, "nvmlDeviceGetMemoryInfo")(handle(dl, 0), &mem),
                         NVML_SUCCESS);
        assert_int_equal(mem.total, 81920ull << 20);

        /* The unversioned wait predates the instance-id fields. */
        assert_int_equal(SYM(dl, nvmlEventSetCreate_fn, "nvmlEventSetCreate")(&set), NVML_SUCCESS);
        assert_int_equal(SYM(dl, nvmlDeviceRegisterEvents_fn, "nvmlDeviceRegisterEvents")(
                                 handle(dl, 1), NVML_EVENT_TYPE_XID_CRITICAL_ERROR, set),
                         NVML_SUCCESS);
        write_lab(xid_lab, 30u, 0u, 63u);
        memset(&ev, 0xAA, sizeof(ev));
        assert_int_equal(wait(set, &ev, 0), NVML_SUCCESS);
        assert_int_equal(ev.eventData, 63);
        assert_int_equal(ev.gpuInstanceId, 0xAAAAAAAAu);
        /* Shutdown frees what is left. */
        shutdown_ok(dl);
        dlclose(dl);
}

/* ---- one mutex: readers on several threads while the lab is replaced ---- */

typedef struct Hammer {
        void *dl;
        atomic_bool stop;
        unsigned calls, failures;
} Hammer;

static void *hammer(void *arg)
{
        Hammer *h = arg;
        nvmlDeviceGetHandleByIndex_fn by_index =
                (nvmlDeviceGetHandleByIndex_fn)dlsym(h->dl, "nvmlDeviceGetHandleByIndex_v2");
        nvmlDeviceGetProcesses_fn compute =
                (nvmlDeviceGetProcesses_fn)dlsym(h->dl, "nvmlDeviceGetComputeRunningProcesses_v3");
        nvmlDeviceGetMemoryInfo_fn mem = (nvmlDeviceGetMemoryInfo_fn)dlsym(h->dl, "nvmlDeviceGetMemoryInfo");

        while (!h->stop) {
                nvmlProcessInfo_v2_t p[8];
                unsigned count = 8;
                nvmlMemory_t m;
                nvmlDevice_t d;

                if (by_index(0, &d) != NVML_SUCCESS || compute(d, &count, p) != NVML_SUCCESS ||
                    count != 1 || p[0].pid != 42 || mem(d, &m) != NVML_SUCCESS)
                        h->failures++;
                h->calls++;
        }
        return NULL;
}

static void test_threads(void **state)
{
        Hammer h[4] = {};
        pthread_t t[4];
        void *dl = lib_open(MODERN);

        use_lab_file(lab_path);
        write_lab("{ \"gpus\": [ { \"name\": \"NVIDIA A100-SXM4-80GB\", \"uuid\": \"GPU-0\","
                  " \"pci_bus_id\": \"00000000:07:00.0\", \"memory_total_mib\": 81920,"
                  " \"processes\": [ { \"pid\": 42, \"used_mib\": 0 } ] } ] }");
        init_ok(dl);
        for (int i = 0; i < 4; i++) {
                h[i].dl = dl;
                assert_int_equal(pthread_create(&t[i], NULL, hammer, &h[i]), 0);
        }
        for (unsigned k = 1; k <= 200; k++)
                write_lab("{ \"gpus\": [ { \"name\": \"NVIDIA A100-SXM4-80GB\", \"uuid\": \"GPU-0\","
                          " \"pci_bus_id\": \"00000000:07:00.0\", \"memory_total_mib\": 81920,"
                          " \"processes\": [ { \"pid\": 42, \"used_mib\": %u } ] } ] }", k);
        for (int i = 0; i < 4; i++) {
                h[i].stop = true;
                assert_int_equal(pthread_join(t[i], NULL), 0);
                assert_int_equal(h[i].failures, 0);
                assert_true(h[i].calls > 0);
        }
        shutdown_ok(dl);
        dlclose(dl);
}

/* ---- the generated benchmark lab ---- */

static void test_bench_lab(void **state)
{
        void *dl = lib_open(MODERN);
        nvmlDeviceGetProcesses_fn compute =
                SYM(dl, nvmlDeviceGetProcesses_fn, "nvmlDeviceGetComputeRunningProcesses_v3");
        unsigned n = 0, total = 0, cur, pend, mig_gpus = 0;

        use_lab_file(bench_lab_path);
        init_ok(dl);
        assert_int_equal(SYM(dl, nvmlDeviceGetCount_fn, "nvmlDeviceGetCount_v2")(&n), NVML_SUCCESS);
        assert_int_equal(n, 8);
        for (unsigned i = 0; i < 8; i++) {
                nvmlDevice_t d = handle(dl, i);
                unsigned count = 0;

                nvmlReturn_t r = compute(d, &count, NULL);

                assert_int_equal(r, count > 0 ? NVML_ERROR_INSUFFICIENT_SIZE : NVML_SUCCESS);
                total += count;
                assert_int_equal(SYM(dl, nvmlDeviceGetMigMode_fn, "nvmlDeviceGetMigMode")(d, &cur, &pend),
                                 NVML_SUCCESS);
                if (cur) {
                        nvmlDevice_t m = NULL;

                        mig_gpus++;
                        for (unsigned k = 0; k < 7; k++)
                                m = mig_handle(dl, d, k);
                        assert_non_null(m);
                }
        }
        assert_int_equal(total, 256);
        assert_int_equal(mig_gpus, 2);
        shutdown_ok(dl);
        dlclose(dl);
}

/* ---- MIG management: the create / destroy / placement ABI and its state file ---- */

static bool file_has_line(const char *path, const char *line)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char buf[256];

        assert_non_null(f);
        while (fgets(buf, sizeof(buf), f)) {
                buf[strcspn(buf, "\n")] = '\0';
                if (strcmp(buf, line) == 0)
                        return true;
        }
        return false;
}

static bool file_contains(const char *path, const char *needle)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char buf[65536];
        size_t n;

        if (!f)
                return false;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        return strstr(buf, needle) != NULL;
}

#define MIG_LAB_HEAD                                                                               \
        "{ \"gpus\": [\n"                                                                          \
        " { \"name\": \"NVIDIA H100 80GB HBM3\", \"uuid\": \"GPU-aaaa0000-0000-4000-8000-000000000000\",\n" \
        "   \"pci_bus_id\": \"00000000:18:00.0\", \"pci_device_id\": 590418142, \"memory_total_mib\": 81559,\n" \
        "   \"mig\": { \"enabled\": true }"
#define MIG_LAB_TAIL                                                                               \
        " },\n"                                                                                    \
        " { \"name\": \"NVIDIA A100-SXM4-40GB\", \"uuid\": \"GPU-bbbb0000-0000-4000-8000-000000000000\",\n" \
        "   \"pci_bus_id\": \"00000000:2A:00.0\", \"memory_total_mib\": 40960, \"mig\": { \"enabled\": false } },\n" \
        " { \"name\": \"NVIDIA GeForce RTX 3090\", \"uuid\": \"GPU-cccc0000-0000-4000-8000-000000000000\",\n" \
        "   \"pci_bus_id\": \"00000000:3B:00.0\", \"memory_total_mib\": 24576 } ] }\n"

static void test_mig_management(void **state)
{
        void *dl = lib_open(MODERN);
        nvmlDeviceGetGpuInstanceProfileInfoV_fn info_v =
                SYM(dl, nvmlDeviceGetGpuInstanceProfileInfoV_fn, "nvmlDeviceGetGpuInstanceProfileInfoV");
        nvmlDeviceGetGpuInstancePossiblePlacements_fn placements = SYM(
                dl, nvmlDeviceGetGpuInstancePossiblePlacements_fn, "nvmlDeviceGetGpuInstancePossiblePlacements_v2");
        nvmlDeviceCreateGpuInstanceWithPlacement_fn create_at = SYM(
                dl, nvmlDeviceCreateGpuInstanceWithPlacement_fn, "nvmlDeviceCreateGpuInstanceWithPlacement");
        nvmlDeviceCreateGpuInstance_fn create = SYM(dl, nvmlDeviceCreateGpuInstance_fn, "nvmlDeviceCreateGpuInstance");
        nvmlGpuInstanceGetInfo_fn gi_info = SYM(dl, nvmlGpuInstanceGetInfo_fn, "nvmlGpuInstanceGetInfo");
        nvmlGpuInstanceDestroy_fn gi_destroy = SYM(dl, nvmlGpuInstanceDestroy_fn, "nvmlGpuInstanceDestroy");
        nvmlDeviceGetGpuInstances_fn list = SYM(dl, nvmlDeviceGetGpuInstances_fn, "nvmlDeviceGetGpuInstances");
        nvmlDeviceGetGpuInstanceRemainingCapacity_fn remaining = SYM(
                dl, nvmlDeviceGetGpuInstanceRemainingCapacity_fn, "nvmlDeviceGetGpuInstanceRemainingCapacity");
        nvmlGpuInstanceGetComputeInstanceProfileInfo_fn ci_info = SYM(
                dl, nvmlGpuInstanceGetComputeInstanceProfileInfo_fn, "nvmlGpuInstanceGetComputeInstanceProfileInfo");
        nvmlGpuInstanceGetComputeInstanceProfileInfoV_fn ci_info_v = SYM(
                dl, nvmlGpuInstanceGetComputeInstanceProfileInfoV_fn, "nvmlGpuInstanceGetComputeInstanceProfileInfoV");
        nvmlGpuInstanceCreateComputeInstance_fn ci_create = SYM(
                dl, nvmlGpuInstanceCreateComputeInstance_fn, "nvmlGpuInstanceCreateComputeInstance");
        nvmlComputeInstanceDestroy_fn ci_destroy = SYM(dl, nvmlComputeInstanceDestroy_fn, "nvmlComputeInstanceDestroy");
        nvmlComputeInstanceGetInfo_fn ci_get = SYM(dl, nvmlComputeInstanceGetInfo_fn, "nvmlComputeInstanceGetInfo_v2");
        nvmlGpuInstanceGetComputeInstances_fn ci_list =
                SYM(dl, nvmlGpuInstanceGetComputeInstances_fn, "nvmlGpuInstanceGetComputeInstances");
        nvmlDeviceSetMigMode_fn set_mode = SYM(dl, nvmlDeviceSetMigMode_fn, "nvmlDeviceSetMigMode");
        nvmlDeviceGetMigMode_fn get_mode = SYM(dl, nvmlDeviceGetMigMode_fn, "nvmlDeviceGetMigMode");
        nvmlDeviceGetMigDeviceHandleByIndex_fn by_index =
                SYM(dl, nvmlDeviceGetMigDeviceHandleByIndex_fn, "nvmlDeviceGetMigDeviceHandleByIndex");
        nvmlGpuInstanceProfileInfo_v2_t pi = { .version = nvmlGpuInstanceProfileInfo_v2 };
        nvmlComputeInstanceProfileInfo_v2_t cpi = { .version = nvmlComputeInstanceProfileInfo_v2 };
        nvmlComputeInstanceProfileInfo_t cpi1;
        nvmlGpuInstancePlacement_t pl[8];
        nvmlGpuInstance_t gi = NULL, gis[8];
        nvmlComputeInstance_t ci = NULL, cis[8];
        nvmlGpuInstanceInfo_t ginfo;
        nvmlComputeInstanceInfo_t cinfo;
        nvmlReturn_t activation = 0;
        char state_path[PATH_MAX + 32], minors_path[PATH_MAX + 32], lock_path[PATH_MAX + 40];
        char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE], name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
        unsigned n = 0, cur = 9, pend = 9, id = 99;
        nvmlDevice_t h100, a100, rtx, mig = NULL;

        snprintf(state_path, sizeof(state_path), "%s/mig-state.json", tmpdir);
        snprintf(lock_path, sizeof(lock_path), "%s.lock", state_path);
        snprintf(minors_path, sizeof(minors_path), "%s/mig-minors", tmpdir);
        assert_int_equal(setenv("GPUKEEPER_SIM_STATE", state_path, 1), 0);
        assert_int_equal(setenv("GPUKEEPER_SIM_MIG_MINORS", minors_path, 1), 0);
        use_lab_file(lab_path);
        write_lab(MIG_LAB_HEAD MIG_LAB_TAIL);
        init_ok(dl);
        h100 = handle(dl, 0);
        a100 = handle(dl, 1);
        rtx = handle(dl, 2);

        /* The nvidia-caps table: 9 minors per GPU instance, 135 per GPU. */
        assert_true(file_has_line(minors_path, "config 1"));
        assert_true(file_has_line(minors_path, "monitor 2"));
        assert_true(file_has_line(minors_path, "gpu0/gi0/access 3"));
        assert_true(file_has_line(minors_path, "gpu0/gi0/ci7/access 11"));
        assert_true(file_has_line(minors_path, "gpu0/gi1/access 12"));
        assert_true(file_has_line(minors_path, "gpu0/gi1/ci0/access 13"));
        assert_true(file_has_line(minors_path, "gpu1/gi0/access 138"));
        assert_true(file_has_line(minors_path, "gpu31/gi14/ci7/access 4322"));

        /* Profiles by NVML_GPU_INSTANCE_PROFILE_* index, V struct with its version word. */
        assert_int_equal(info_v(h100, 0x0, &pi), NVML_SUCCESS);
        assert_int_equal(pi.id, 19);
        assert_int_equal(pi.sliceCount, 1);
        assert_int_equal(pi.instanceCount, 7);
        assert_string_equal(pi.name, "MIG 1g.10gb");
        assert_int_equal(info_v(h100, 0x2, &pi), NVML_SUCCESS);
        assert_int_equal(pi.id, 9);
        assert_string_equal(pi.name, "MIG 3g.40gb");
        assert_int_equal(info_v(a100, 0x9, &pi), NVML_SUCCESS);
        assert_int_equal(pi.id, 15);
        assert_string_equal(pi.name, "MIG 1g.10gb");
        assert_int_equal(info_v(h100, 0x5, &pi), NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(info_v(rtx, 0x0, &pi), NVML_ERROR_NOT_SUPPORTED);
        pi.version = 1;
        assert_int_equal(info_v(h100, 0x0, &pi), NVML_ERROR_INVALID_ARGUMENT);

        /* Placements by profile id, with MIG on or off; none without MIG. */
        assert_int_equal(placements(h100, 9, NULL, &n), NVML_SUCCESS);
        assert_int_equal(n, 2);
        assert_int_equal(placements(h100, 9, pl, &n), NVML_SUCCESS);
        assert_int_equal(pl[0].start, 0);
        assert_int_equal(pl[1].start, 4);
        assert_int_equal(pl[1].size, 4);
        assert_int_equal(placements(a100, 19, pl, &n), NVML_SUCCESS);
        assert_int_equal(n, 7);
        assert_int_equal(pl[6].start, 6);
        assert_int_equal(pl[6].size, 1);
        assert_int_equal(placements(h100, 15, pl, &n), NVML_SUCCESS);
        assert_int_equal(n, 4);
        assert_int_equal(pl[3].start, 6);
        assert_int_equal(pl[3].size, 2);
        assert_int_equal(placements(h100, 0, pl, &n), NVML_SUCCESS);
        assert_int_equal(n, 1);
        assert_int_equal(pl[0].size, 8);
        assert_int_equal(placements(h100, 99, pl, &n), NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(placements(rtx, 19, pl, &n), NVML_ERROR_NOT_SUPPORTED);

        /* A GPU instance at a placement; bad placements are INVALID_ARGUMENT,
         * a taken one INSUFFICIENT_RESOURCES. */
        assert_int_equal(create_at(h100, 9, &(nvmlGpuInstancePlacement_t) { 2, 4 }, &gi),
                         NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(create_at(h100, 9, &(nvmlGpuInstancePlacement_t) { 0, 2 }, &gi),
                         NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(create_at(h100, 9, NULL, &gi), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(create_at(h100, 9, &(nvmlGpuInstancePlacement_t) { 4, 4 }, &gi), NVML_SUCCESS);
        assert_int_equal(create_at(h100, 9, &(nvmlGpuInstancePlacement_t) { 4, 4 }, &gis[0]),
                         NVML_ERROR_INSUFFICIENT_RESOURCES);
        assert_int_equal(create_at(h100, 19, &(nvmlGpuInstancePlacement_t) { 5, 1 }, &gis[0]),
                         NVML_ERROR_INSUFFICIENT_RESOURCES);
        assert_int_equal(create_at(a100, 19, &(nvmlGpuInstancePlacement_t) { 0, 1 }, &gis[0]),
                         NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(create(rtx, 19, &gis[0]), NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(gi_info(gi, &ginfo), NVML_SUCCESS);
        assert_ptr_equal(ginfo.device, h100);
        assert_int_equal(ginfo.profileId, 9);
        assert_int_equal(ginfo.placement.start, 4);
        assert_int_equal(ginfo.placement.size, 4);
        assert_true(ginfo.id >= 1 && ginfo.id <= 14);
        /* A GPU instance alone is no MIG device yet. */
        assert_int_equal(by_index(h100, 0, &mig), NVML_ERROR_NOT_FOUND);

        /* Compute instance profiles of a 3-slice GPU instance. */
        assert_int_equal(ci_info(gi, 0x2, 0, &cpi1), NVML_SUCCESS);
        assert_int_equal(cpi1.id, 2);
        assert_int_equal(cpi1.sliceCount, 3);
        assert_int_equal(cpi1.instanceCount, 1);
        assert_int_equal(cpi1.multiprocessorCount, 60);
        assert_int_equal(ci_info(gi, 0x0, 0, &cpi1), NVML_SUCCESS);
        assert_int_equal(cpi1.instanceCount, 3);
        assert_int_equal(ci_info(gi, 0x3, 0, &cpi1), NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(ci_info(gi, 0x2, 1, &cpi1), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(ci_info_v(gi, 0x2, 0, &cpi), NVML_SUCCESS);
        assert_string_equal(cpi.name, "MIG 3g.40gb");
        assert_int_equal(ci_info_v(gi, 0x0, 0, &cpi), NVML_SUCCESS);
        assert_string_equal(cpi.name, "MIG 1c.3g.40gb");

        assert_int_equal(ci_create(gi, 0x2, &ci), NVML_SUCCESS);
        assert_int_equal(ci_create(gi, 0x0, &cis[0]), NVML_ERROR_INSUFFICIENT_RESOURCES);
        assert_int_equal(ci_get(ci, &cinfo), NVML_SUCCESS);
        assert_int_equal(cinfo.id, 0);
        assert_int_equal(cinfo.profileId, 2);
        assert_int_equal(cinfo.placement.size, 3);
        assert_ptr_equal(cinfo.gpuInstance, gi);
        assert_int_equal(ci_list(gi, 0x2, cis, &n), NVML_SUCCESS);
        assert_int_equal(n, 1);

        /* Now a MIG device, with a fresh MIG UUID, in the state file. */
        mig = NULL;
        assert_int_equal(by_index(h100, 0, &mig), NVML_SUCCESS);
        assert_int_equal(SYM(dl, nvmlDeviceGetString_fn, "nvmlDeviceGetUUID")(mig, uuid, sizeof(uuid)),
                         NVML_SUCCESS);
        assert_memory_equal(uuid, "MIG-", 4);
        assert_int_equal(strlen(uuid), 40);
        assert_int_equal(SYM(dl, nvmlDeviceGetString_fn, "nvmlDeviceGetName")(mig, name, sizeof(name)),
                         NVML_SUCCESS);
        assert_string_equal(name, "NVIDIA H100 80GB HBM3 MIG 3g.40gb");
        assert_int_equal(SYM(dl, nvmlDeviceGetUInt_fn, "nvmlDeviceGetGpuInstanceId")(mig, &id), NVML_SUCCESS);
        assert_int_equal(id, ginfo.id);
        assert_true(file_contains(state_path, uuid));

        /* Another process (here: a fresh init after the last shutdown) sees it. */
        shutdown_ok(dl);
        init_ok(dl);
        h100 = handle(dl, 0);
        a100 = handle(dl, 1);
        rtx = handle(dl, 2);
        assert_int_equal(by_index(h100, 0, &mig), NVML_SUCCESS);
        {
                char again[NVML_DEVICE_UUID_V2_BUFFER_SIZE];

                assert_int_equal(SYM(dl, nvmlDeviceGetString_fn, "nvmlDeviceGetUUID")(mig, again, sizeof(again)),
                                 NVML_SUCCESS);
                assert_string_equal(again, uuid);
        }
        assert_int_equal(list(h100, 9, gis, &n), NVML_SUCCESS);
        assert_int_equal(n, 1);
        gi = gis[0];
        assert_int_equal(ci_list(gi, 0x2, cis, &n), NVML_SUCCESS);
        assert_int_equal(n, 1);
        ci = cis[0];

        /* In use: a GPU instance with a compute instance, a compute instance with a process. */
        assert_int_equal(gi_destroy(gi), NVML_ERROR_IN_USE);
        assert_int_equal(set_mode(h100, NVML_DEVICE_MIG_DISABLE, &activation), NVML_ERROR_IN_USE);
        write_lab(MIG_LAB_HEAD ", \"processes\": [ { \"pid\": %d, \"gi\": %u, \"ci\": 0 } ]" MIG_LAB_TAIL,
                  (int)getpid(), ginfo.id);
        assert_int_equal(ci_destroy(ci), NVML_ERROR_IN_USE);
        write_lab(MIG_LAB_HEAD MIG_LAB_TAIL);
        assert_int_equal(ci_destroy(ci), NVML_SUCCESS);
        assert_int_equal(ci_destroy(ci), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(by_index(h100, 0, &mig), NVML_ERROR_NOT_FOUND);
        assert_int_equal(gi_destroy(gi), NVML_SUCCESS);
        assert_int_equal(gi_info(gi, &ginfo), NVML_ERROR_INVALID_ARGUMENT);

        /* Seven 1g.10gb fill an H100; the eighth finds no resources. */
        assert_int_equal(remaining(h100, 19, &n), NVML_SUCCESS);
        assert_int_equal(n, 7);
        for (unsigned i = 0; i < 7; i++) {
                assert_int_equal(create(h100, 19, &gis[i]), NVML_SUCCESS);
                assert_int_equal(gi_info(gis[i], &ginfo), NVML_SUCCESS);
                assert_int_equal(ginfo.placement.start, i);
                assert_int_equal(ci_create(gis[i], 0x0, &cis[i]), NVML_SUCCESS);
        }
        assert_int_equal(create(h100, 19, &gi), NVML_ERROR_INSUFFICIENT_RESOURCES);
        assert_int_equal(create(h100, 14, &gi), NVML_ERROR_INSUFFICIENT_RESOURCES);
        assert_int_equal(remaining(h100, 19, &n), NVML_SUCCESS);
        assert_int_equal(n, 0);
        assert_int_equal(list(h100, 19, gis, &n), NVML_SUCCESS);
        assert_int_equal(n, 7);
        assert_int_equal(by_index(h100, 6, &mig), NVML_SUCCESS);
        for (unsigned i = 0; i < 7; i++) {
                assert_int_equal(ci_destroy(cis[i]), NVML_SUCCESS);
                assert_int_equal(gi_destroy(gis[i]), NVML_SUCCESS);
        }

        /* A mode change stays pending until the GPU is reset. */
        assert_int_equal(set_mode(a100, NVML_DEVICE_MIG_ENABLE, &activation), NVML_SUCCESS);
        assert_int_equal(activation, NVML_ERROR_IN_USE);
        assert_int_equal(get_mode(a100, &cur, &pend), NVML_SUCCESS);
        assert_int_equal(cur, 0);
        assert_int_equal(pend, 1);
        assert_int_equal(create(a100, 19, &gi), NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(set_mode(h100, NVML_DEVICE_MIG_ENABLE, &activation), NVML_SUCCESS);
        assert_int_equal(activation, NVML_SUCCESS);
        assert_int_equal(set_mode(h100, 2, &activation), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(set_mode(rtx, NVML_DEVICE_MIG_ENABLE, &activation), NVML_ERROR_NOT_SUPPORTED);
        /* The reset sim-reset.py does: current = pending, instances gone. */
        {
                char tmp[sizeof(state_path) + 8];
                FILE *f;

                snprintf(tmp, sizeof(tmp), "%s.tmp", state_path);
                f = fopen(tmp, "we");
                assert_non_null(f);
                fputs("{ \"gpus\": { \"GPU-bbbb0000-0000-4000-8000-000000000000\": "
                      "{ \"enabled\": true, \"pending\": true } } }\n", f);
                assert_int_equal(fclose(f), 0);
                assert_int_equal(rename(tmp, state_path), 0);
                /* Past the simulator's look-at-most-every-10-ms window. */
                nanosleep(&(struct timespec){ .tv_nsec = 11 * 1000 * 1000 }, NULL);
        }
        assert_int_equal(get_mode(a100, &cur, &pend), NVML_SUCCESS);
        assert_int_equal(cur, 1);
        assert_int_equal(pend, 1);
        assert_int_equal(create_at(a100, 15, &(nvmlGpuInstancePlacement_t) { 6, 2 }, &gi), NVML_SUCCESS);
        assert_int_equal(gi_info(gi, &ginfo), NVML_SUCCESS);
        assert_int_equal(ginfo.profileId, 15);

        shutdown_ok(dl);
        unlink(state_path);
        unlink(lock_path);
        unlink(minors_path);
        unsetenv("GPUKEEPER_SIM_STATE");
        unsetenv("GPUKEEPER_SIM_MIG_MINORS");
        dlclose(dl);
}

static int setup(void **state)
{
        const char *base = getenv("TMPDIR");

        snprintf(tmpdir, sizeof(tmpdir), "%s/sim-selftest-XXXXXX", base && base[0] ? base : "/tmp");
        if (!mkdtemp(tmpdir))
                return -1;
        snprintf(lab_path, sizeof(lab_path), "%s/lab.json", tmpdir);
        return 0;
}

static int teardown(void **state)
{
        char tmp[sizeof(lab_path) + 8];

        snprintf(tmp, sizeof(tmp), "%s.tmp", lab_path);
        unlink(tmp);
        unlink(lab_path);
        return rmdir(tmpdir) < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_exports),
                cmocka_unit_test(test_init),
                cmocka_unit_test(test_lab4_device),
                cmocka_unit_test(test_process_sizes),
                cmocka_unit_test(test_process_lists),
                cmocka_unit_test(test_mig),
                cmocka_unit_test(test_lost_and_injection),
                cmocka_unit_test(test_reload_and_xid),
                cmocka_unit_test(test_memory_affinity),
                cmocka_unit_test(test_cpu_affinity),
                cmocka_unit_test(test_legacy),
                cmocka_unit_test(test_threads),
                cmocka_unit_test(test_bench_lab),
                cmocka_unit_test(test_mig_management),
        };

        if (argc != 7) {
                fprintf(stderr, "usage: %s LIB_MODERN LIB_535 LIB_LEGACY LAB4_JSON BENCH_LAB_JSON NUMA_LAB_JSON\n",
                        argv[0]);
                return 64;
        }
        for (int v = 0; v < N_VARIANTS; v++)
                lib_paths[v] = argv[1 + v];
        lab4_path = argv[4];
        bench_lab_path = argv[5];
        numa_lab_path = argv[6];
        return cmocka_run_group_tests_name("sim-selftest", tests, setup, teardown);
}
