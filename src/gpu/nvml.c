/* The NVML binding (see nvml.h): dlopen, versioned-symbol resolution, and
 * the wrappers that hide which symbol and which struct layout the loaded
 * driver has. Like nvtop, we carry our own declarations (nvml-abi.h) and
 * resolve every entry point at run time, so one binary works with any
 * driver, with no driver at all, and with the simulator. */
#include "gpu/nvml.h"

#include <assert.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/inventory.h"

/* Process-list buffer we start with; it grows on INSUFFICIENT_SIZE and is
 * kept for later calls. */
#define PROCESS_BUFFER_INITIAL 32
/* Attempts per list: processes can start between the sizing call and the
 * retry, so one retry is not always enough, but a few are. */
#define PROCESS_LIST_ATTEMPTS 4
/* Largest element any process-list symbol writes (nvmlProcessDetail_v1_t). */
#define PROCESS_ELEMENT_MAX sizeof(nvmlProcessDetail_v1_t)
/* Events drained per tick at most, so a storm cannot stall the sampler. */
#define EVENTS_PER_DRAIN_MAX 256

/* One process-list entry point and the element size it writes. */
typedef struct ProcessCall {
        const char *name;
        nvmlDeviceGetProcesses_fn fn;
        size_t element_size;
} ProcessCall;

/* A device registered for Xid events, identified by its handle in events. */
typedef struct XidWatch {
        nvmlDevice_t dev;
        char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
        uint64_t last_xid;
} XidWatch;

/* GPM of the device at one index: whether it has GPM (asked once per
 * uuid), and the sample of the previous tick to compute metrics against. */
typedef struct GpmState {
        char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE]; /* the device the state is for */
        bool asked, supported;
        nvmlGpmSample_t samples[2];
        int previous; /* index into samples of the last one taken, -1 none */
} GpmState;

struct GpuNvml {
        void *dl;
        bool initialized;
        bool simulated;
        const char *last_call;

        const char *init_name;
        nvmlInit_fn init;
        nvmlShutdown_fn shutdown;
        nvmlErrorString_fn error_string;
        nvmlSystemGetDriverVersion_fn driver_version;
        const char *count_name;
        nvmlDeviceGetCount_fn count;
        const char *handle_name;
        nvmlDeviceGetHandleByIndex_fn handle;
        nvmlDeviceGetString_fn name;
        nvmlDeviceGetString_fn uuid;
        const char *pci_name;
        nvmlDeviceGetPciInfo_fn pci;
        bool pci_legacy; /* unversioned call: only busIdLegacy is filled */
        nvmlDeviceGetUInt_fn minor;
        nvmlDeviceGetMemoryAffinity_fn memory_affinity;
        nvmlDeviceGetCpuAffinity_fn cpu_affinity;
        nvmlDeviceGetMemoryInfo_v2_fn memory_v2;
        nvmlDeviceGetMemoryInfo_fn memory_v1;
        nvmlDeviceGetUtilizationRates_fn utilization;
        nvmlDeviceGetTemperature_fn temperature;
        nvmlDeviceGetUInt_fn power;
        nvmlDeviceGetULL_fn energy;
        nvmlDeviceGetMigMode_fn mig_mode;
        nvmlDeviceGetUInt_fn max_mig_count;
        nvmlDeviceGetMigDeviceHandleByIndex_fn mig_handle;
        nvmlDeviceGetUInt_fn gpu_instance_id;
        nvmlDeviceGetUInt_fn compute_instance_id;
        ProcessCall compute;
        ProcessCall graphics;

        nvmlEventSetFree_fn event_set_free;
        const char *event_wait_name;
        nvmlEventSetWait_fn event_wait;
        nvmlEventSet_t events; /* NULL when no device delivers Xid events */
        XidWatch watches[GPU_MAX_DEVICES];
        size_t n_watches;

        unsigned char *raw; /* process-list scratch, raw_capacity elements of PROCESS_ELEMENT_MAX */
        size_t raw_capacity;
        GpuNvmlProcess *processes; /* merged result handed out */
        size_t processes_capacity;

        /* Clocks and GPM (issue 17). */
        nvmlDeviceGetClockInfo_fn clock_info;
        nvmlGpmQueryDeviceSupport_fn gpm_support;
        nvmlGpmSampleAlloc_fn gpm_alloc;
        nvmlGpmSampleFree_fn gpm_free;
        nvmlGpmSampleGet_fn gpm_sample;
        nvmlGpmMetricsGet_fn gpm_metrics;
        GpmState gpm[GPU_MAX_DEVICES];

        GpuNvmlIdentity identities[GPU_MAX_DEVICES]; /* last seen, per index */
        /* identities[i].numa_node is settled for identities[i].uuid: read,
         * or NOT_SUPPORTED, so it is not asked again (see nvml.h). */
        bool numa_settled[GPU_MAX_DEVICES];
};

static void set_error(char *buf, size_t len, const char *fmt, ...) _printf_(3, 4);
static void set_error(char *buf, size_t len, const char *fmt, ...)
{
        va_list ap;

        if (!buf || len == 0)
                return;
        va_start(ap, fmt);
        vsnprintf(buf, len, fmt, ap);
        va_end(ap);
}

/* The first of `names` (NULL-terminated, preferred first) that the library
 * exports; its name goes to *ret_name when ret_name is non-NULL. */
static void *resolve(void *dl, const char *const *names, const char **ret_name)
{
        for (; *names; names++) {
                void *p = dlsym(dl, *names);
                if (p) {
                        if (ret_name)
                                *ret_name = *names;
                        return p;
                }
        }
        return NULL;
}

#define RESOLVE(dl, ret_name, ...)                                                                 \
        resolve((dl), (const char *const[]){ __VA_ARGS__, NULL }, (ret_name))

/* A process-list entry point: _v3 → _v2 → unversioned, with the element
 * size the chosen one writes. The names are literals, so the pointer
 * resolve() hands back tells which one was found. */
static void resolve_process_call(GpuNvml *n, ProcessCall *call, const char *v3, const char *v2,
                                 const char *v1, bool detail_bug)
{
        call->fn = (nvmlDeviceGetProcesses_fn)RESOLVE(n->dl, &call->name, v3, v2, v1);
        if (!call->fn)
                return;
        if (call->name == v3)
                /* Drivers 535.43 up to 535.86 write the 32-byte
                 * nvmlProcessDetail_v1_t from _v3 while their header says 24
                 * (gpustat #161). Like nvitop we recognise them by exporting
                 * nvmlDeviceGetConfComputeMemSizeInfo (new in 535) but not
                 * nvmlDeviceGetRunningProcessDetailList (added with the fix). */
                call->element_size = detail_bug ? sizeof(nvmlProcessDetail_v1_t)
                                                : sizeof(nvmlProcessInfo_v2_t);
        else if (call->name == v2)
                call->element_size = sizeof(nvmlProcessInfo_v2_t);
        else
                call->element_size = sizeof(nvmlProcessInfo_v1_t);
}

static void resolve_all(GpuNvml *n)
{
        void *dl = n->dl;
        bool detail_bug;

        n->init = (nvmlInit_fn)RESOLVE(dl, &n->init_name, "nvmlInit_v2", "nvmlInit");
        n->shutdown = (nvmlShutdown_fn)RESOLVE(dl, NULL, "nvmlShutdown");
        n->error_string = (nvmlErrorString_fn)RESOLVE(dl, NULL, "nvmlErrorString");
        n->driver_version =
                (nvmlSystemGetDriverVersion_fn)RESOLVE(dl, NULL, "nvmlSystemGetDriverVersion");
        n->count = (nvmlDeviceGetCount_fn)RESOLVE(dl, &n->count_name, "nvmlDeviceGetCount_v2",
                                                  "nvmlDeviceGetCount");
        n->handle = (nvmlDeviceGetHandleByIndex_fn)RESOLVE(dl, &n->handle_name,
                                                           "nvmlDeviceGetHandleByIndex_v2",
                                                           "nvmlDeviceGetHandleByIndex");
        n->name = (nvmlDeviceGetString_fn)RESOLVE(dl, NULL, "nvmlDeviceGetName");
        n->uuid = (nvmlDeviceGetString_fn)RESOLVE(dl, NULL, "nvmlDeviceGetUUID");
        n->pci = (nvmlDeviceGetPciInfo_fn)RESOLVE(dl, &n->pci_name, "nvmlDeviceGetPciInfo_v3",
                                                  "nvmlDeviceGetPciInfo_v2",
                                                  "nvmlDeviceGetPciInfo");
        n->pci_legacy = n->pci && strcmp(n->pci_name, "nvmlDeviceGetPciInfo") == 0;
        n->minor = (nvmlDeviceGetUInt_fn)RESOLVE(dl, NULL, "nvmlDeviceGetMinorNumber");
        n->memory_affinity = (nvmlDeviceGetMemoryAffinity_fn)RESOLVE(
                dl, NULL, "nvmlDeviceGetMemoryAffinity");
        n->cpu_affinity =
                (nvmlDeviceGetCpuAffinity_fn)RESOLVE(dl, NULL, "nvmlDeviceGetCpuAffinity");
        n->memory_v2 =
                (nvmlDeviceGetMemoryInfo_v2_fn)RESOLVE(dl, NULL, "nvmlDeviceGetMemoryInfo_v2");
        n->memory_v1 = (nvmlDeviceGetMemoryInfo_fn)RESOLVE(dl, NULL, "nvmlDeviceGetMemoryInfo");
        n->utilization = (nvmlDeviceGetUtilizationRates_fn)RESOLVE(
                dl, NULL, "nvmlDeviceGetUtilizationRates");
        n->temperature =
                (nvmlDeviceGetTemperature_fn)RESOLVE(dl, NULL, "nvmlDeviceGetTemperature");
        n->power = (nvmlDeviceGetUInt_fn)RESOLVE(dl, NULL, "nvmlDeviceGetPowerUsage");
        n->energy = (nvmlDeviceGetULL_fn)RESOLVE(dl, NULL, "nvmlDeviceGetTotalEnergyConsumption");

        n->mig_mode = (nvmlDeviceGetMigMode_fn)RESOLVE(dl, NULL, "nvmlDeviceGetMigMode");
        n->max_mig_count =
                (nvmlDeviceGetUInt_fn)RESOLVE(dl, NULL, "nvmlDeviceGetMaxMigDeviceCount");
        n->mig_handle = (nvmlDeviceGetMigDeviceHandleByIndex_fn)RESOLVE(
                dl, NULL, "nvmlDeviceGetMigDeviceHandleByIndex");
        n->gpu_instance_id = (nvmlDeviceGetUInt_fn)RESOLVE(dl, NULL, "nvmlDeviceGetGpuInstanceId");
        n->compute_instance_id =
                (nvmlDeviceGetUInt_fn)RESOLVE(dl, NULL, "nvmlDeviceGetComputeInstanceId");

        detail_bug = dlsym(dl, "nvmlDeviceGetConfComputeMemSizeInfo") &&
                     !dlsym(dl, "nvmlDeviceGetRunningProcessDetailList");
        resolve_process_call(n, &n->compute, "nvmlDeviceGetComputeRunningProcesses_v3",
                             "nvmlDeviceGetComputeRunningProcesses_v2",
                             "nvmlDeviceGetComputeRunningProcesses", detail_bug);
        resolve_process_call(n, &n->graphics, "nvmlDeviceGetGraphicsRunningProcesses_v3",
                             "nvmlDeviceGetGraphicsRunningProcesses_v2",
                             "nvmlDeviceGetGraphicsRunningProcesses", detail_bug);

        n->event_set_free = (nvmlEventSetFree_fn)RESOLVE(dl, NULL, "nvmlEventSetFree");
        n->event_wait = (nvmlEventSetWait_fn)RESOLVE(dl, &n->event_wait_name,
                                                     "nvmlEventSetWait_v2", "nvmlEventSetWait");

        n->simulated = dlsym(dl, "gpukeeperSimVersion") != NULL;
        n->clock_info = (nvmlDeviceGetClockInfo_fn)RESOLVE(dl, NULL, "nvmlDeviceGetClockInfo");
        n->gpm_support =
            (nvmlGpmQueryDeviceSupport_fn)RESOLVE(dl, NULL, "nvmlGpmQueryDeviceSupport");
        n->gpm_alloc = (nvmlGpmSampleAlloc_fn)RESOLVE(dl, NULL, "nvmlGpmSampleAlloc");
        n->gpm_free = (nvmlGpmSampleFree_fn)RESOLVE(dl, NULL, "nvmlGpmSampleFree");
        n->gpm_sample = (nvmlGpmSampleGet_fn)RESOLVE(dl, NULL, "nvmlGpmSampleGet");
        n->gpm_metrics = (nvmlGpmMetricsGet_fn)RESOLVE(dl, NULL, "nvmlGpmMetricsGet");
        for (size_t i = 0; i < GPU_MAX_DEVICES; i++)
                n->gpm[i].previous = -1;
}

/* The symbols without which there is no inventory at all; the rest are
 * optional and read as NOT_SUPPORTED when absent. */
static const char *first_missing(const GpuNvml *n)
{
        if (!n->init)
                return "nvmlInit_v2";
        if (!n->shutdown)
                return "nvmlShutdown";
        if (!n->count)
                return "nvmlDeviceGetCount_v2";
        if (!n->handle)
                return "nvmlDeviceGetHandleByIndex_v2";
        if (!n->uuid)
                return "nvmlDeviceGetUUID";
        if (!n->memory_v2 && !n->memory_v1)
                return "nvmlDeviceGetMemoryInfo";
        if (!n->compute.fn)
                return "nvmlDeviceGetComputeRunningProcesses";
        return NULL;
}

/* Register every device for Xid events. The event API is optional and
 * per device "not supported" is normal (e.g. some GeForce boards), so any
 * failure here only means fewer events. */
static void setup_events(GpuNvml *n)
{
        nvmlEventSetCreate_fn create =
                (nvmlEventSetCreate_fn)RESOLVE(n->dl, NULL, "nvmlEventSetCreate");
        nvmlDeviceRegisterEvents_fn reg =
                (nvmlDeviceRegisterEvents_fn)RESOLVE(n->dl, NULL, "nvmlDeviceRegisterEvents");
        unsigned count;

        if (!create || !reg || !n->event_set_free || !n->event_wait)
                return;
        if (create(&n->events) != NVML_SUCCESS) {
                n->events = NULL;
                return;
        }
        if (n->count(&count) != NVML_SUCCESS)
                count = 0;
        for (unsigned i = 0; i < count && n->n_watches < ELEMENTSOF(n->watches); i++) {
                XidWatch *w = &n->watches[n->n_watches];
                nvmlDevice_t dev;

                if (n->handle(i, &dev) != NVML_SUCCESS)
                        continue;
                if (n->uuid(dev, w->uuid, sizeof(w->uuid)) != NVML_SUCCESS)
                        continue;
                w->uuid[sizeof(w->uuid) - 1] = '\0';
                if (reg(dev, NVML_EVENT_TYPE_XID_CRITICAL_ERROR, n->events) != NVML_SUCCESS)
                        continue;
                w->dev = dev;
                w->last_xid = 0;
                n->n_watches++;
        }
        if (n->n_watches == 0) {
                n->event_set_free(n->events);
                n->events = NULL;
        }
}

int gpu_nvml_open(const char *library, GpuNvml **ret, char *errbuf, size_t errlen)
{
        _cleanup_(gpu_nvml_closep) GpuNvml *n = NULL;
        const char *missing;
        nvmlReturn_t r;
        void *dl;

        assert(ret);

        if (!library)
                library = GPU_NVML_DEFAULT_LIBRARY;
        dl = dlopen(library, RTLD_NOW | RTLD_LOCAL);
        /* Without the .so.1 link (some containers) try the development name. */
        if (!dl && strcmp(library, GPU_NVML_DEFAULT_LIBRARY) == 0)
                dl = dlopen("libnvidia-ml.so", RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
                const char *e = dlerror();
                set_error(errbuf, errlen, "cannot load NVML library %s: %s", library,
                          e ? e : "unknown error");
                return -ENOENT;
        }

        n = calloc(1, sizeof(*n));
        if (!n) {
                dlclose(dl);
                return -ENOMEM;
        }
        n->dl = dl;
        for (size_t i = 0; i < ELEMENTSOF(n->identities); i++)
                n->identities[i].numa_node = -1;
        resolve_all(n);

        missing = first_missing(n);
        if (missing) {
                set_error(errbuf, errlen, "%s has no %s: not an NVML library", library, missing);
                return -ELIBBAD;
        }

        n->raw_capacity = PROCESS_BUFFER_INITIAL;
        n->raw = calloc(n->raw_capacity, PROCESS_ELEMENT_MAX);
        if (!n->raw)
                return -ENOMEM;

        r = n->init();
        if (r != NVML_SUCCESS) {
                set_error(errbuf, errlen, "%s: %s (%d)", n->init_name,
                          gpu_nvml_error_string(n, r), r);
                return -EIO;
        }
        n->initialized = true;

        setup_events(n);

        *ret = TAKE_PTR(n);
        return 0;
}

static void gpm_reset(GpuNvml *n, GpmState *g)
{
        for (size_t i = 0; i < ELEMENTSOF(g->samples); i++)
                if (g->samples[i] && n->gpm_free)
                        (void)n->gpm_free(g->samples[i]);
        *g = (GpmState){.previous = -1};
}

void gpu_nvml_close(GpuNvml *n)
{
        if (!n)
                return;
        if (n->initialized)
                for (size_t i = 0; i < GPU_MAX_DEVICES; i++)
                        gpm_reset(n, &n->gpm[i]);
        if (n->events)
                n->event_set_free(n->events);
        if (n->initialized)
                n->shutdown();
        if (n->dl)
                dlclose(n->dl);
        free(n->raw);
        free(n->processes);
        free(n);
}

bool gpu_nvml_is_simulated(const GpuNvml *n)
{
        assert(n);
        return n->simulated;
}

const char *gpu_nvml_last_call(const GpuNvml *n)
{
        assert(n);
        return n->last_call ? n->last_call : "";
}

const char *gpu_nvml_error_string(const GpuNvml *n, nvmlReturn_t r)
{
        const char *s = n && n->error_string ? n->error_string(r) : NULL;

        return s ? s : "Unknown Error";
}

/* A wrapper for an entry point the library does not export. */
static nvmlReturn_t absent(GpuNvml *n, const char *name)
{
        n->last_call = name;
        return NVML_ERROR_NOT_SUPPORTED;
}

/* Call a string getter; NVML takes an unsigned length and we guarantee
 * NUL termination whatever the library does. */
static nvmlReturn_t get_string(GpuNvml *n, nvmlDeviceGetString_fn fn, const char *name,
                               nvmlDevice_t dev, char *buf, size_t len)
{
        nvmlReturn_t r;

        assert(buf && len > 0);
        buf[0] = '\0';
        if (!fn)
                return absent(n, name);
        n->last_call = name;
        r = fn(dev, buf, (unsigned)MIN(len, (size_t)UINT32_MAX));
        buf[len - 1] = '\0';
        if (r != NVML_SUCCESS)
                buf[0] = '\0';
        return r;
}

nvmlReturn_t gpu_nvml_driver_version(GpuNvml *n, char *buf, size_t len)
{
        nvmlReturn_t r;

        assert(n && buf && len > 0);
        buf[0] = '\0';
        if (!n->driver_version)
                return absent(n, "nvmlSystemGetDriverVersion");
        n->last_call = "nvmlSystemGetDriverVersion";
        r = n->driver_version(buf, (unsigned)MIN(len, (size_t)UINT32_MAX));
        buf[len - 1] = '\0';
        if (r != NVML_SUCCESS)
                buf[0] = '\0';
        return r;
}

nvmlReturn_t gpu_nvml_device_count(GpuNvml *n, unsigned *ret)
{
        assert(n && ret);
        n->last_call = n->count_name;
        return n->count(ret);
}

nvmlReturn_t gpu_nvml_device_handle(GpuNvml *n, unsigned index, nvmlDevice_t *ret)
{
        assert(n && ret);
        n->last_call = n->handle_name;
        return n->handle(index, ret);
}

nvmlReturn_t gpu_nvml_device_name(GpuNvml *n, nvmlDevice_t dev, char *buf, size_t len)
{
        assert(n);
        return get_string(n, n->name, "nvmlDeviceGetName", dev, buf, len);
}

nvmlReturn_t gpu_nvml_device_uuid(GpuNvml *n, nvmlDevice_t dev, char *buf, size_t len)
{
        assert(n);
        return get_string(n, n->uuid, "nvmlDeviceGetUUID", dev, buf, len);
}

nvmlReturn_t gpu_nvml_device_pci_bus_id(GpuNvml *n, nvmlDevice_t dev, char *buf, size_t len)
{
        nvmlPciInfo_t pci = { 0 };
        nvmlReturn_t r;

        assert(n && buf && len > 0);
        buf[0] = '\0';
        if (!n->pci)
                return absent(n, "nvmlDeviceGetPciInfo_v3");
        n->last_call = n->pci_name;
        r = n->pci(dev, &pci);
        if (r != NVML_SUCCESS)
                return r;
        pci.busIdLegacy[sizeof(pci.busIdLegacy) - 1] = '\0';
        pci.busId[sizeof(pci.busId) - 1] = '\0';
        if (!n->pci_legacy) {
                snprintf(buf, len, "%s", pci.busId);
                return NVML_SUCCESS;
        }
        /* The old call only has the 16-byte "0000:07:00.0" form; widen the
         * domain so a GPU has the same bus id whichever driver reports it. */
        unsigned domain, bus, device, function;
        if (sscanf(pci.busIdLegacy, "%x:%x:%x.%x", &domain, &bus, &device, &function) == 4)
                snprintf(buf, len, "%08X:%02X:%02X.%X", domain, bus, device, function);
        else
                snprintf(buf, len, "%s", pci.busIdLegacy);
        return NVML_SUCCESS;
}

/* Call an optional (dev, unsigned *) getter. */
static nvmlReturn_t get_uint(GpuNvml *n, nvmlDeviceGetUInt_fn fn, const char *name,
                             nvmlDevice_t dev, unsigned *ret)
{
        if (!fn)
                return absent(n, name);
        n->last_call = name;
        return fn(dev, ret);
}

nvmlReturn_t gpu_nvml_device_minor(GpuNvml *n, nvmlDevice_t dev, unsigned *ret)
{
        assert(n && ret);
        return get_uint(n, n->minor, "nvmlDeviceGetMinorNumber", dev, ret);
}

nvmlReturn_t gpu_nvml_device_numa_node(GpuNvml *n, nvmlDevice_t dev, int *ret)
{
        /* Room for 1024 nodes, Linux's largest NODES_SHIFT (10). Zeroed, so
         * that words a driver leaves alone read as "no node there". */
        unsigned long set[GPU_NVML_NUMA_NODES_MAX / (8 * sizeof(unsigned long))] = { 0 };
        const unsigned bits = 8 * sizeof(unsigned long);
        unsigned found = 0;
        int node = -1;
        nvmlReturn_t r;

        assert(n && ret);
        if (!n->memory_affinity)
                return absent(n, "nvmlDeviceGetMemoryAffinity");
        n->last_call = "nvmlDeviceGetMemoryAffinity";
        r = n->memory_affinity(dev, (unsigned)ELEMENTSOF(set), set, NVML_AFFINITY_SCOPE_NODE);
        if (r != NVML_SUCCESS)
                return r;
        for (size_t w = 0; w < ELEMENTSOF(set) && found < 2; w++) {
                if (set[w] == 0)
                        continue;
                found += (unsigned)__builtin_popcountl(set[w]);
                node = (int)(w * bits + (unsigned)__builtin_ctzl(set[w]));
        }
        *ret = found == 1 ? node : -1;
        return NVML_SUCCESS;
}

nvmlReturn_t gpu_nvml_device_cpu_affinity(GpuNvml *n, nvmlDevice_t dev, unsigned long *set,
                                          size_t n_words)
{
        assert(n && set && n_words > 0 && n_words <= UINT_MAX);
        if (!n->cpu_affinity)
                return absent(n, "nvmlDeviceGetCpuAffinity");
        n->last_call = "nvmlDeviceGetCpuAffinity";
        /* Zeroed first: words a driver leaves alone read as "no CPU there". */
        memset(set, 0, n_words * sizeof *set);
        return n->cpu_affinity(dev, (unsigned)n_words, set);
}

nvmlReturn_t gpu_nvml_device_memory(GpuNvml *n, nvmlDevice_t dev, GpuNvmlMemory *ret)
{
        nvmlMemory_t m1 = { 0 };
        nvmlReturn_t r;

        assert(n && ret);
        if (n->memory_v2) {
                /* The version word is mandatory; without it the driver answers
                 * ARGUMENT_VERSION_MISMATCH. */
                nvmlMemory_v2_t m2 = { .version = nvmlMemory_v2 };

                n->last_call = "nvmlDeviceGetMemoryInfo_v2";
                r = n->memory_v2(dev, &m2);
                if (r == NVML_SUCCESS) {
                        *ret = (GpuNvmlMemory){
                                .total = m2.total, .used = m2.used, .reserved = m2.reserved
                        };
                        return r;
                }
                /* Drivers that export _v2 but reject it for this device or
                 * struct version still answer the v1 call. */
                if (!n->memory_v1 || (r != NVML_ERROR_NOT_SUPPORTED &&
                                      r != NVML_ERROR_ARGUMENT_VERSION_MISMATCH &&
                                      r != NVML_ERROR_FUNCTION_NOT_FOUND))
                        return r;
        }
        n->last_call = "nvmlDeviceGetMemoryInfo";
        r = n->memory_v1(dev, &m1);
        if (r == NVML_SUCCESS)
                *ret = (GpuNvmlMemory){
                        .total = m1.total, .used = m1.used, .reserved = UINT64_MAX
                };
        return r;
}

nvmlReturn_t gpu_nvml_device_utilization(GpuNvml *n, nvmlDevice_t dev, nvmlUtilization_t *ret)
{
        assert(n && ret);
        if (!n->utilization)
                return absent(n, "nvmlDeviceGetUtilizationRates");
        n->last_call = "nvmlDeviceGetUtilizationRates";
        return n->utilization(dev, ret);
}

nvmlReturn_t gpu_nvml_device_temperature(GpuNvml *n, nvmlDevice_t dev, unsigned *ret)
{
        assert(n && ret);
        if (!n->temperature)
                return absent(n, "nvmlDeviceGetTemperature");
        n->last_call = "nvmlDeviceGetTemperature";
        return n->temperature(dev, NVML_TEMPERATURE_GPU, ret);
}

nvmlReturn_t gpu_nvml_device_power(GpuNvml *n, nvmlDevice_t dev, unsigned *ret_mw)
{
        assert(n && ret_mw);
        return get_uint(n, n->power, "nvmlDeviceGetPowerUsage", dev, ret_mw);
}

nvmlReturn_t gpu_nvml_device_energy(GpuNvml *n, nvmlDevice_t dev, unsigned long long *ret_mj)
{
        assert(n && ret_mj);
        if (!n->energy)
                return absent(n, "nvmlDeviceGetTotalEnergyConsumption");
        n->last_call = "nvmlDeviceGetTotalEnergyConsumption";
        return n->energy(dev, ret_mj);
}

nvmlReturn_t gpu_nvml_device_mig_enabled(GpuNvml *n, nvmlDevice_t dev, bool *ret)
{
        unsigned current = 0, pending = 0;
        nvmlReturn_t r;

        assert(n && ret);
        if (!n->mig_mode)
                return absent(n, "nvmlDeviceGetMigMode");
        n->last_call = "nvmlDeviceGetMigMode";
        r = n->mig_mode(dev, &current, &pending);
        if (r == NVML_SUCCESS)
                *ret = current == NVML_DEVICE_MIG_ENABLE;
        return r;
}

nvmlReturn_t gpu_nvml_device_max_mig_count(GpuNvml *n, nvmlDevice_t dev, unsigned *ret)
{
        assert(n && ret);
        return get_uint(n, n->max_mig_count, "nvmlDeviceGetMaxMigDeviceCount", dev, ret);
}

nvmlReturn_t gpu_nvml_device_mig_handle(GpuNvml *n, nvmlDevice_t dev, unsigned slot,
                                        nvmlDevice_t *ret)
{
        assert(n && ret);
        if (!n->mig_handle)
                return absent(n, "nvmlDeviceGetMigDeviceHandleByIndex");
        n->last_call = "nvmlDeviceGetMigDeviceHandleByIndex";
        return n->mig_handle(dev, slot, ret);
}

nvmlReturn_t gpu_nvml_device_instance_ids(GpuNvml *n, nvmlDevice_t mig, unsigned *ret_gi,
                                          unsigned *ret_ci)
{
        unsigned gi, ci;
        nvmlReturn_t r;

        assert(n && ret_gi && ret_ci);
        r = get_uint(n, n->gpu_instance_id, "nvmlDeviceGetGpuInstanceId", mig, &gi);
        if (r != NVML_SUCCESS)
                return r;
        r = get_uint(n, n->compute_instance_id, "nvmlDeviceGetComputeInstanceId", mig, &ci);
        if (r != NVML_SUCCESS)
                return r;
        *ret_gi = gi;
        *ret_ci = ci;
        return NVML_SUCCESS;
}

/* Make room for `count` raw elements (of any size) in the scratch buffer. */
static bool raw_reserve(GpuNvml *n, size_t count)
{
        unsigned char *p;

        if (count <= n->raw_capacity)
                return true;
        p = reallocarray(n->raw, count, PROCESS_ELEMENT_MAX);
        if (!p)
                return false;
        n->raw = p;
        n->raw_capacity = count;
        return true;
}

static bool processes_reserve(GpuNvml *n, size_t count)
{
        GpuNvmlProcess *p;

        if (count <= n->processes_capacity)
                return true;
        p = reallocarray(n->processes, count, sizeof(*p));
        if (!p)
                return false;
        n->processes = p;
        n->processes_capacity = count;
        return true;
}

/* Convert one raw element. The three layouts share pid@0 and memory@8;
 * only the 24 and 32 byte ones carry instance ids @16/@20. */
static GpuNvmlProcess convert_process(const unsigned char *e, size_t element_size)
{
        GpuNvmlProcess p = {
                .gpu_instance_id = NVML_INSTANCE_ID_NONE,
                .compute_instance_id = NVML_INSTANCE_ID_NONE,
        };
        unsigned long long mem;

        memcpy(&p.pid, e + offsetof(nvmlProcessInfo_v2_t, pid), sizeof(p.pid));
        memcpy(&mem, e + offsetof(nvmlProcessInfo_v2_t, usedGpuMemory), sizeof(mem));
        p.memory_used_bytes = mem == NVML_VALUE_NOT_AVAILABLE ? UINT64_MAX : mem;
        if (element_size >= sizeof(nvmlProcessInfo_v2_t)) {
                memcpy(&p.gpu_instance_id, e + offsetof(nvmlProcessInfo_v2_t, gpuInstanceId),
                       sizeof(p.gpu_instance_id));
                memcpy(&p.compute_instance_id,
                       e + offsetof(nvmlProcessInfo_v2_t, computeInstanceId),
                       sizeof(p.compute_instance_id));
        }
        return p;
}

/* Append the list `call` returns for `dev` to n->processes[*io_n...].
 * The scratch buffer grows on INSUFFICIENT_SIZE to what the driver says
 * it needs plus slack for processes starting meanwhile. */
static nvmlReturn_t append_process_list(GpuNvml *n, const ProcessCall *call, nvmlDevice_t dev,
                                        size_t *io_n)
{
        unsigned count = 0;
        nvmlReturn_t r = NVML_ERROR_INSUFFICIENT_SIZE;

        n->last_call = call->name;
        for (int attempt = 0; attempt < PROCESS_LIST_ATTEMPTS; attempt++) {
                count = (unsigned)n->raw_capacity;
                r = call->fn(dev, &count, n->raw);
                if (r != NVML_ERROR_INSUFFICIENT_SIZE)
                        break;
                if (count > GPU_NVML_PROCESS_FETCH_MAX)
                        return r;
                if (!raw_reserve(n, MIN((size_t)count + count / 4 + 8,
                                        (size_t)GPU_NVML_PROCESS_FETCH_MAX)))
                        return NVML_ERROR_MEMORY;
        }
        if (r != NVML_SUCCESS)
                return r;

        /* Trust nothing: a count past our buffer would be a driver bug. */
        count = (unsigned)MIN((size_t)count, n->raw_capacity);
        if (!processes_reserve(n, *io_n + count))
                return NVML_ERROR_MEMORY;
        for (unsigned i = 0; i < count; i++)
                n->processes[(*io_n)++] = convert_process(n->raw + (size_t)i * call->element_size,
                                                          call->element_size);
        return NVML_SUCCESS;
}

static int process_pid_compare(const void *a, const void *b)
{
        const GpuNvmlProcess *x = a, *y = b;

        return (x->pid > y->pid) - (x->pid < y->pid);
}

/* Sort by pid and fold duplicates (a process that does compute and
 * graphics is in both lists) into one entry. Returns the new count. */
static size_t merge_by_pid(GpuNvmlProcess *p, size_t n)
{
        size_t out = 0;

        if (n == 0)
                return 0;
        qsort(p, n, sizeof(*p), process_pid_compare);
        for (size_t i = 1; i < n; i++) {
                GpuNvmlProcess *keep = &p[out];

                if (p[i].pid != keep->pid) {
                        p[++out] = p[i];
                        continue;
                }
                if (keep->memory_used_bytes == UINT64_MAX ||
                    (p[i].memory_used_bytes != UINT64_MAX &&
                     p[i].memory_used_bytes > keep->memory_used_bytes))
                        keep->memory_used_bytes = p[i].memory_used_bytes;
                if (keep->gpu_instance_id == NVML_INSTANCE_ID_NONE) {
                        keep->gpu_instance_id = p[i].gpu_instance_id;
                        keep->compute_instance_id = p[i].compute_instance_id;
                }
        }
        return out + 1;
}

nvmlReturn_t gpu_nvml_device_processes(GpuNvml *n, nvmlDevice_t dev, const GpuNvmlProcess **ret,
                                       size_t *ret_n, bool *ret_truncated)
{
        size_t count = 0;
        nvmlReturn_t r;

        assert(n && ret && ret_n);

        r = append_process_list(n, &n->compute, dev, &count);
        if (r != NVML_SUCCESS && r != NVML_ERROR_NOT_SUPPORTED)
                return r;
        if (n->graphics.fn) {
                r = append_process_list(n, &n->graphics, dev, &count);
                if (r != NVML_SUCCESS && r != NVML_ERROR_NOT_SUPPORTED)
                        return r;
        }
        count = merge_by_pid(n->processes, count);
        *ret_truncated = count > GPU_MAX_PROCESSES_PER_DEVICE;
        *ret = n->processes;
        *ret_n = MIN(count, (size_t)GPU_MAX_PROCESSES_PER_DEVICE);
        return NVML_SUCCESS;
}

void gpu_nvml_remembered_identity(const GpuNvml *n, unsigned index, GpuNvmlIdentity *ret)
{
        assert(n && ret);
        if (index < ELEMENTSOF(n->identities))
                *ret = n->identities[index];
        else
                *ret = (GpuNvmlIdentity){ .numa_node = -1 };
}

/* Keep the most telling failure of several calls: the first real error,
 * else the first NOT_SUPPORTED. */
static void note_failure(const GpuNvml *n, nvmlReturn_t r, nvmlReturn_t *first,
                         const char **first_call)
{
        if (r == NVML_SUCCESS)
                return;
        if (*first == NVML_SUCCESS ||
            (*first == NVML_ERROR_NOT_SUPPORTED && r != NVML_ERROR_NOT_SUPPORTED)) {
                *first = r;
                *first_call = n->last_call;
        }
}

nvmlReturn_t gpu_nvml_device_identity(GpuNvml *n, unsigned index, nvmlDevice_t dev,
                                      GpuNvmlIdentity *ret)
{
        GpuNvmlIdentity known, id;
        nvmlReturn_t first = NVML_SUCCESS, r;
        const char *first_call = NULL;
        bool settled;

        assert(n && ret);
        gpu_nvml_remembered_identity(n, index, &known);

        /* Each field: what the driver says now, else what it said last. */
        r = gpu_nvml_device_uuid(n, dev, id.uuid, sizeof(id.uuid));
        if (r != NVML_SUCCESS)
                memcpy(id.uuid, known.uuid, sizeof(id.uuid));
        note_failure(n, r, &first, &first_call);

        r = gpu_nvml_device_name(n, dev, id.name, sizeof(id.name));
        if (r != NVML_SUCCESS)
                memcpy(id.name, known.name, sizeof(id.name));
        note_failure(n, r, &first, &first_call);

        r = gpu_nvml_device_pci_bus_id(n, dev, id.pci_bus_id, sizeof(id.pci_bus_id));
        if (r != NVML_SUCCESS)
                memcpy(id.pci_bus_id, known.pci_bus_id, sizeof(id.pci_bus_id));
        note_failure(n, r, &first, &first_call);

        /* Static, so read once per GPU; not the per-tick cost of a call. A
         * failure stays unknown and is not `first`: see nvml.h. */
        settled = index < ELEMENTSOF(n->numa_settled) && n->numa_settled[index] &&
                  strcmp(id.uuid, known.uuid) == 0;
        id.numa_node = settled ? known.numa_node : -1;
        memcpy(id.cpus, known.cpus, sizeof id.cpus);
        id.has_cpus = settled && known.has_cpus;
        if (!settled && id.uuid[0]) {
                int node;

                r = gpu_nvml_device_numa_node(n, dev, &node);
                if (r == NVML_SUCCESS)
                        id.numa_node = node;
                settled = r == NVML_SUCCESS || r == NVML_ERROR_NOT_SUPPORTED;
                /* Same for the CPU affinity; an empty mask tells nothing. */
                r = gpu_nvml_device_cpu_affinity(n, dev, id.cpus, GPU_NVML_CPUSET_WORDS);
                id.has_cpus = false;
                for (size_t w = 0; r == NVML_SUCCESS && w < GPU_NVML_CPUSET_WORDS; w++)
                        id.has_cpus |= id.cpus[w] != 0;
        }

        if (index < ELEMENTSOF(n->identities)) {
                n->identities[index] = id;
                n->numa_settled[index] = settled;
        }
        if (first_call)
                n->last_call = first_call;
        *ret = id;
        return first;
}

unsigned gpu_nvml_drain_events(GpuNvml *n)
{
        unsigned drained = 0;

        assert(n);
        if (!n->events)
                return 0;
        n->last_call = n->event_wait_name;
        for (int i = 0; i < EVENTS_PER_DRAIN_MAX; i++) {
                nvmlEventData_t data = { 0 };

                /* Timeout 0: only what is already pending; TIMEOUT ends it. */
                if (n->event_wait(n->events, &data, 0) != NVML_SUCCESS)
                        break;
                if (!(data.eventType & NVML_EVENT_TYPE_XID_CRITICAL_ERROR))
                        continue;
                for (size_t w = 0; w < n->n_watches; w++)
                        if (n->watches[w].dev == data.device) {
                                n->watches[w].last_xid = data.eventData;
                                drained++;
                                break;
                        }
        }
        return drained;
}

uint64_t gpu_nvml_last_xid(const GpuNvml *n, const char *uuid)
{
        assert(n && uuid);
        for (size_t w = 0; w < n->n_watches; w++)
                if (strcmp(n->watches[w].uuid, uuid) == 0)
                        return n->watches[w].last_xid;
        return 0;
}

/* ---- hooks for the MIG management binding (gpu/nvml-mig.c) ---- */

void *gpu_nvml_symbol(const GpuNvml *n, const char *name)
{
        assert(n && name);
        return dlsym(n->dl, name);
}

void gpu_nvml_note_call(GpuNvml *n, const char *name)
{
        assert(n);
        n->last_call = name;
}

/* ---- Clocks and GPM ---------------------------------------------------- */

nvmlReturn_t gpu_nvml_device_clock(GpuNvml *n, nvmlDevice_t dev, nvmlClockType_t type,
                                   unsigned *ret_mhz)
{
        unsigned v = 0;
        nvmlReturn_t r;

        assert(n && ret_mhz);
        if (!n->clock_info)
                return absent(n, "nvmlDeviceGetClockInfo");
        n->last_call = "nvmlDeviceGetClockInfo";
        r = n->clock_info(dev, type, &v);
        if (r == NVML_SUCCESS)
                *ret_mhz = v;
        return r;
}

nvmlReturn_t gpu_nvml_device_gpm(GpuNvml *n, unsigned index, const char *uuid, nvmlDevice_t dev,
                                 GpuNvmlGpm *ret)
{
        static const unsigned ids[] = {NVML_GPM_METRIC_GRAPHICS_UTIL, NVML_GPM_METRIC_SM_UTIL,
                                       NVML_GPM_METRIC_SM_OCCUPANCY,
                                       NVML_GPM_METRIC_ANY_TENSOR_UTIL,
                                       NVML_GPM_METRIC_DRAM_BW_UTIL};
        _cleanup_free_ nvmlGpmMetricsGet_t *mg = NULL;
        double *out[ELEMENTSOF(ids)];
        GpmState *g;
        nvmlReturn_t r;
        int next;

        assert(n && uuid && ret);
        if (!n->gpm_support || !n->gpm_alloc || !n->gpm_free || !n->gpm_sample ||
            !n->gpm_metrics)
                return absent(n, "nvmlGpmMetricsGet");
        if (index >= GPU_MAX_DEVICES)
                return NVML_ERROR_INVALID_ARGUMENT;
        g = &n->gpm[index];
        /* Another device at this index (a reboot renumbered them, a GPU
         * came or went): its samples and support answer are not ours. */
        if (strcmp(g->uuid, uuid) != 0) {
                gpm_reset(n, g);
                snprintf(g->uuid, sizeof g->uuid, "%s", uuid);
        }
        if (!g->asked) {
                nvmlGpmSupport_t support = {.version = NVML_GPM_SUPPORT_VERSION};

                n->last_call = "nvmlGpmQueryDeviceSupport";
                r = n->gpm_support(dev, &support);
                if (r != NVML_SUCCESS && r != NVML_ERROR_NOT_SUPPORTED)
                        return r; /* asked again next time */
                g->asked = true;
                g->supported = r == NVML_SUCCESS && support.isSupportedDevice;
        }
        if (!g->supported)
                return NVML_ERROR_NOT_SUPPORTED;

        next = g->previous == 0 ? 1 : 0;
        if (!g->samples[next]) {
                n->last_call = "nvmlGpmSampleAlloc";
                r = n->gpm_alloc(&g->samples[next]);
                if (r != NVML_SUCCESS) {
                        g->samples[next] = NULL;
                        return r;
                }
        }
        n->last_call = "nvmlGpmSampleGet";
        r = n->gpm_sample(dev, g->samples[next]);
        if (r != NVML_SUCCESS) {
                g->previous = -1; /* start over from the next good sample */
                return r;
        }
        if (g->previous < 0) {
                g->previous = next;
                return NVML_ERROR_NO_DATA; /* the first sample: nothing to compare yet */
        }

        mg = calloc(1, sizeof *mg);
        if (!mg)
                return NVML_ERROR_MEMORY;
        mg->version = NVML_GPM_METRICS_GET_VERSION;
        mg->numMetrics = ELEMENTSOF(ids);
        mg->sample1 = g->samples[g->previous];
        mg->sample2 = g->samples[next];
        for (size_t i = 0; i < ELEMENTSOF(ids); i++)
                mg->metrics[i].metricId = ids[i];
        g->previous = next;
        n->last_call = "nvmlGpmMetricsGet";
        r = n->gpm_metrics(mg);
        if (r != NVML_SUCCESS)
                return r;

        out[0] = &ret->graphics_active;
        out[1] = &ret->sm_active;
        out[2] = &ret->sm_occupancy;
        out[3] = &ret->tensor_active;
        out[4] = &ret->dram_active;
        /* GPM gives percentages; DCGM's PROF fields are ratios from 0 to 1.
         * A metric the device does not have, or a value out of range, is
         * unknown (-1), never 0. */
        for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
                double v = mg->metrics[i].value;

                *out[i] = mg->metrics[i].nvmlReturn == NVML_SUCCESS && v >= 0.0 && v <= 100.0
                              ? v / 100.0
                              : -1.0;
        }
        return NVML_SUCCESS;
}
