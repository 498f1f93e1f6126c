/* Our own declarations of the subset of NVML that gpukeeper uses.
 *
 * We do not include nvml.h: the daemon must build without NVIDIA's SDK and
 * load whatever libnvidia-ml.so.1 the driver ships at run time (dlopen), as
 * nvtop does. The layouts below follow NVIDIA's nvml.h (as vendored by
 * NVIDIA/go-nvml) for x86-64; sizes are checked with static asserts. The NVML
 * simulator in sim/ implements exactly these signatures, so the binding code
 * runs unchanged against either library. */
#pragma once

#include <assert.h>
#include <stddef.h>

typedef int nvmlReturn_t; /* a 4-byte enum in nvml.h */

enum {
        NVML_SUCCESS = 0,
        NVML_ERROR_UNINITIALIZED = 1,
        NVML_ERROR_INVALID_ARGUMENT = 2,
        NVML_ERROR_NOT_SUPPORTED = 3,
        NVML_ERROR_NO_PERMISSION = 4,
        NVML_ERROR_ALREADY_INITIALIZED = 5,
        NVML_ERROR_NOT_FOUND = 6,
        NVML_ERROR_INSUFFICIENT_SIZE = 7,
        NVML_ERROR_INSUFFICIENT_POWER = 8,
        NVML_ERROR_DRIVER_NOT_LOADED = 9,
        NVML_ERROR_TIMEOUT = 10,
        NVML_ERROR_IRQ_ISSUE = 11,
        NVML_ERROR_LIBRARY_NOT_FOUND = 12,
        NVML_ERROR_FUNCTION_NOT_FOUND = 13,
        NVML_ERROR_CORRUPTED_INFOROM = 14,
        NVML_ERROR_GPU_IS_LOST = 15,
        NVML_ERROR_RESET_REQUIRED = 16,
        NVML_ERROR_OPERATING_SYSTEM = 17,
        NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18,
        NVML_ERROR_IN_USE = 19,
        NVML_ERROR_MEMORY = 20,
        NVML_ERROR_NO_DATA = 21,
        NVML_ERROR_INSUFFICIENT_RESOURCES = 23,
        NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
        NVML_ERROR_DEPRECATED = 26,
        NVML_ERROR_NOT_READY = 27,
        NVML_ERROR_GPU_NOT_FOUND = 28,
        NVML_ERROR_INVALID_STATE = 29,
        NVML_ERROR_UNKNOWN = 999,
};

typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct nvmlGpuInstance_st *nvmlGpuInstance_t;
typedef struct nvmlComputeInstance_st *nvmlComputeInstance_t;
typedef struct nvmlEventSet_st *nvmlEventSet_t;

#define NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE 80
#define NVML_DEVICE_NAME_V2_BUFFER_SIZE 96
#define NVML_DEVICE_UUID_V2_BUFFER_SIZE 96
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE 32
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE 16

#define NVML_TEMPERATURE_GPU 0
#define NVML_DEVICE_MIG_DISABLE 0
#define NVML_DEVICE_MIG_ENABLE 1

/* gpuInstanceId / computeInstanceId of a process that is not in a MIG instance. */
#define NVML_INSTANCE_ID_NONE 0xFFFFFFFFu
/* usedGpuMemory when the driver cannot tell (e.g. Windows WDDM, some containers). */
#define NVML_VALUE_NOT_AVAILABLE 0xFFFFFFFFFFFFFFFFull

/* Event types (bit mask) and the Xid one we listen for. */
#define NVML_EVENT_TYPE_XID_CRITICAL_ERROR 0x0000000000000008ull

/* NVML_STRUCT_VERSION(T, v) = sizeof(T_v) | v << 24 */
#define NVML_STRUCT_VERSION(size, v) ((unsigned)(size) | ((unsigned)(v) << 24))

typedef struct {
        char busIdLegacy[NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE];
        unsigned int domain;
        unsigned int bus;
        unsigned int device;
        unsigned int pciDeviceId;
        unsigned int pciSubSystemId;
        char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
} nvmlPciInfo_t;
static_assert(sizeof(nvmlPciInfo_t) == 68, "nvmlPciInfo_t ABI");

typedef struct {
        unsigned long long total;
        unsigned long long free;
        unsigned long long used; /* includes reserved memory */
} nvmlMemory_t;
static_assert(sizeof(nvmlMemory_t) == 24, "nvmlMemory_t ABI");

typedef struct {
        unsigned int version; /* must be nvmlMemory_v2 = 0x02000028 */
        unsigned long long total;
        unsigned long long reserved;
        unsigned long long free;
        unsigned long long used;
} nvmlMemory_v2_t;
static_assert(sizeof(nvmlMemory_v2_t) == 40, "nvmlMemory_v2_t ABI");
static_assert(offsetof(nvmlMemory_v2_t, total) == 8, "nvmlMemory_v2_t ABI");
static_assert(offsetof(nvmlMemory_v2_t, used) == 32, "nvmlMemory_v2_t ABI");
#define nvmlMemory_v2 NVML_STRUCT_VERSION(sizeof(nvmlMemory_v2_t), 2)
static_assert(nvmlMemory_v2 == 0x02000028, "nvmlMemory_v2 version word");

typedef struct {
        unsigned int gpu;
        unsigned int memory;
} nvmlUtilization_t;
static_assert(sizeof(nvmlUtilization_t) == 8, "nvmlUtilization_t ABI");

/* nvmlDeviceGetComputeRunningProcesses (unversioned) fills this. */
typedef struct {
        unsigned int pid;
        unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;
static_assert(sizeof(nvmlProcessInfo_v1_t) == 16, "nvmlProcessInfo_v1_t ABI");

/* _v2 and _v3 fill this (nvmlProcessInfo_t in nvml.h). */
typedef struct {
        unsigned int pid;
        unsigned long long usedGpuMemory;
        unsigned int gpuInstanceId;
        unsigned int computeInstanceId;
} nvmlProcessInfo_v2_t;
static_assert(sizeof(nvmlProcessInfo_v2_t) == 24, "nvmlProcessInfo_v2_t ABI");
static_assert(offsetof(nvmlProcessInfo_v2_t, gpuInstanceId) == 16, "nvmlProcessInfo_v2_t ABI");

/* Drivers 535.43 up to (not including) 535.86 return this 32-byte struct from
 * nvmlDeviceGetComputeRunningProcesses_v3 while callers pass 24-byte arrays
 * (gpustat #161, nvitop's detection). */
typedef struct {
        unsigned int pid;
        unsigned long long usedGpuMemory;
        unsigned int gpuInstanceId;
        unsigned int computeInstanceId;
        unsigned long long usedGpuCcProtectedMemory;
} nvmlProcessDetail_v1_t;
static_assert(sizeof(nvmlProcessDetail_v1_t) == 32, "nvmlProcessDetail_v1_t ABI");

typedef struct {
        unsigned int pid;
        unsigned long long timeStamp; /* µs */
        unsigned int smUtil;
        unsigned int memUtil;
        unsigned int encUtil;
        unsigned int decUtil;
} nvmlProcessUtilizationSample_t;
static_assert(sizeof(nvmlProcessUtilizationSample_t) == 32, "nvmlProcessUtilizationSample_t ABI");

typedef struct {
        unsigned int id;
        unsigned int isP2pSupported;
        unsigned int sliceCount;
        unsigned int instanceCount;
        unsigned int multiprocessorCount;
        unsigned int copyEngineCount;
        unsigned int decoderCount;
        unsigned int encoderCount;
        unsigned int jpegCount;
        unsigned int ofaCount;
        unsigned long long memorySizeMB;
} nvmlGpuInstanceProfileInfo_t;
static_assert(sizeof(nvmlGpuInstanceProfileInfo_t) == 48, "nvmlGpuInstanceProfileInfo_t ABI");

typedef struct {
        nvmlDevice_t device;
        unsigned long long eventType;
        unsigned long long eventData; /* the Xid for XID_CRITICAL_ERROR */
        unsigned int gpuInstanceId;
        unsigned int computeInstanceId;
} nvmlEventData_t;
static_assert(sizeof(nvmlEventData_t) == 32, "nvmlEventData_t ABI");

/* nvmlDeviceGetMemoryAffinity (NVML 11, drivers 450 and later; absent from
 * older libraries):
 *   nvmlReturn_t nvmlDeviceGetMemoryAffinity(nvmlDevice_t device,
 *           unsigned int nodeSetSize, unsigned long *nodeSet, nvmlAffinityScope_t scope);
 * fills nodeSet, an array of nodeSetSize unsigned longs, with the bitmask of
 * the NUMA nodes whose memory is closest to the device: node n is bit n % 64
 * of word n / 64 (64-bit longs). nodeSetSize is how many words are safe to
 * write; a node beyond them is simply not reported (there is no
 * INSUFFICIENT_SIZE). SCOPE_NODE asks for the device's own node(s),
 * SCOPE_SOCKET for every node of its socket; a scope the topology lacks
 * falls back to the nearest non-I/O ancestor. Returns INVALID_ARGUMENT for
 * nodeSetSize 0, a NULL nodeSet or an unknown scope, NOT_SUPPORTED where the
 * platform has no NUMA information, GPU_IS_LOST as every device call. */
typedef unsigned int nvmlAffinityScope_t;
#define NVML_AFFINITY_SCOPE_NODE 0u
#define NVML_AFFINITY_SCOPE_SOCKET 1u
static_assert(sizeof(unsigned long) == 8, "nodeSet words are 64 bits on x86-64");

/* Function pointer types, one per NVML entry point we resolve with dlsym. */
typedef nvmlReturn_t (*nvmlInit_fn)(void);
typedef nvmlReturn_t (*nvmlShutdown_fn)(void);
typedef const char *(*nvmlErrorString_fn)(nvmlReturn_t);
typedef nvmlReturn_t (*nvmlSystemGetDriverVersion_fn)(char *, unsigned int);
typedef nvmlReturn_t (*nvmlDeviceGetCount_fn)(unsigned int *);
typedef nvmlReturn_t (*nvmlDeviceGetHandleByIndex_fn)(unsigned int, nvmlDevice_t *);
typedef nvmlReturn_t (*nvmlDeviceGetString_fn)(nvmlDevice_t, char *, unsigned int);
typedef nvmlReturn_t (*nvmlDeviceGetPciInfo_fn)(nvmlDevice_t, nvmlPciInfo_t *);
typedef nvmlReturn_t (*nvmlDeviceGetUInt_fn)(nvmlDevice_t, unsigned int *);
typedef nvmlReturn_t (*nvmlDeviceGetULL_fn)(nvmlDevice_t, unsigned long long *);
typedef nvmlReturn_t (*nvmlDeviceGetMemoryInfo_fn)(nvmlDevice_t, nvmlMemory_t *);
typedef nvmlReturn_t (*nvmlDeviceGetMemoryInfo_v2_fn)(nvmlDevice_t, nvmlMemory_v2_t *);
typedef nvmlReturn_t (*nvmlDeviceGetUtilizationRates_fn)(nvmlDevice_t, nvmlUtilization_t *);
typedef nvmlReturn_t (*nvmlDeviceGetTemperature_fn)(nvmlDevice_t, int, unsigned int *);
/* The process-list calls take a void * because the element size depends on
 * which versioned symbol (and which driver) is behind the pointer. */
typedef nvmlReturn_t (*nvmlDeviceGetProcesses_fn)(nvmlDevice_t, unsigned int *, void *);
typedef nvmlReturn_t (*nvmlDeviceGetProcessUtilization_fn)(nvmlDevice_t,
                                                           nvmlProcessUtilizationSample_t *,
                                                           unsigned int *, unsigned long long);
typedef nvmlReturn_t (*nvmlDeviceGetMigMode_fn)(nvmlDevice_t, unsigned int *, unsigned int *);
typedef nvmlReturn_t (*nvmlDeviceGetMigDeviceHandleByIndex_fn)(nvmlDevice_t, unsigned int,
                                                               nvmlDevice_t *);
typedef nvmlReturn_t (*nvmlDeviceGetGpuInstanceProfileInfo_fn)(nvmlDevice_t, unsigned int,
                                                               nvmlGpuInstanceProfileInfo_t *);
typedef nvmlReturn_t (*nvmlEventSetCreate_fn)(nvmlEventSet_t *);
typedef nvmlReturn_t (*nvmlEventSetFree_fn)(nvmlEventSet_t);
typedef nvmlReturn_t (*nvmlDeviceRegisterEvents_fn)(nvmlDevice_t, unsigned long long,
                                                    nvmlEventSet_t);
typedef nvmlReturn_t (*nvmlEventSetWait_fn)(nvmlEventSet_t, nvmlEventData_t *, unsigned int);
typedef nvmlReturn_t (*nvmlDeviceGetMemoryAffinity_fn)(nvmlDevice_t, unsigned int,
                                                       unsigned long *, nvmlAffinityScope_t);
/* nvmlDeviceGetCpuAffinity(device, cpuSetSize, cpuSet): the CPUs nearest the
 * GPU as a bitmask of cpuSetSize unsigned longs (CPU n is bit n % 64 of word
 * n / 64 on x86-64). */
typedef nvmlReturn_t (*nvmlDeviceGetCpuAffinity_fn)(nvmlDevice_t, unsigned int, unsigned long *);

/* ---- MIG management (nvml.h "Multi Instance GPU Management") ----
 * Profile *indexes* (NVML_GPU_INSTANCE_PROFILE_*) are what
 * nvmlDeviceGetGpuInstanceProfileInfo[V] takes; the profile *ids* it returns
 * (19 for 1g.10gb) are what the placement, create and list calls take.
 * Placements count memory slices (8 per A100/H100). */
#define NVML_GPU_INSTANCE_PROFILE_1_SLICE 0x0u
#define NVML_GPU_INSTANCE_PROFILE_7_SLICE 0x4u
#define NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1 0x7u
#define NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV2 0x9u
#define NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE 0x0u
#define NVML_COMPUTE_INSTANCE_PROFILE_7_SLICE 0x4u
#define NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED 0x0u
#define NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_COUNT 0x1u

typedef struct {
        unsigned int start; /* first memory slice */
        unsigned int size;  /* memory slices */
} nvmlGpuInstancePlacement_t;
static_assert(sizeof(nvmlGpuInstancePlacement_t) == 8, "nvmlGpuInstancePlacement_t ABI");

typedef struct {
        unsigned int start; /* first compute slice within the GPU instance */
        unsigned int size;
} nvmlComputeInstancePlacement_t;

/* nvmlGpuInstanceProfileInfo_v2_t: version first, name last. */
typedef struct {
        unsigned int version;
        unsigned int id;
        unsigned int isP2pSupported;
        unsigned int sliceCount;
        unsigned int instanceCount;
        unsigned int multiprocessorCount;
        unsigned int copyEngineCount;
        unsigned int decoderCount;
        unsigned int encoderCount;
        unsigned int jpegCount;
        unsigned int ofaCount;
        unsigned long long memorySizeMB;
        char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
} nvmlGpuInstanceProfileInfo_v2_t;
static_assert(sizeof(nvmlGpuInstanceProfileInfo_v2_t) == 152, "nvmlGpuInstanceProfileInfo_v2_t ABI");
static_assert(offsetof(nvmlGpuInstanceProfileInfo_v2_t, memorySizeMB) == 48, "ProfileInfo_v2 ABI");
#define nvmlGpuInstanceProfileInfo_v2 NVML_STRUCT_VERSION(sizeof(nvmlGpuInstanceProfileInfo_v2_t), 2)

typedef struct {
        nvmlDevice_t device;
        unsigned int id;
        unsigned int profileId;
        nvmlGpuInstancePlacement_t placement;
} nvmlGpuInstanceInfo_t;
static_assert(sizeof(nvmlGpuInstanceInfo_t) == 24, "nvmlGpuInstanceInfo_t ABI");

typedef struct {
        unsigned int id;
        unsigned int sliceCount;
        unsigned int instanceCount;
        unsigned int multiprocessorCount;
        unsigned int sharedCopyEngineCount;
        unsigned int sharedDecoderCount;
        unsigned int sharedEncoderCount;
        unsigned int sharedJpegCount;
        unsigned int sharedOfaCount;
} nvmlComputeInstanceProfileInfo_t;
static_assert(sizeof(nvmlComputeInstanceProfileInfo_t) == 36, "nvmlComputeInstanceProfileInfo_t ABI");

typedef struct {
        unsigned int version;
        unsigned int id;
        unsigned int sliceCount;
        unsigned int instanceCount;
        unsigned int multiprocessorCount;
        unsigned int sharedCopyEngineCount;
        unsigned int sharedDecoderCount;
        unsigned int sharedEncoderCount;
        unsigned int sharedJpegCount;
        unsigned int sharedOfaCount;
        char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
} nvmlComputeInstanceProfileInfo_v2_t;
static_assert(sizeof(nvmlComputeInstanceProfileInfo_v2_t) == 136, "ComputeInstanceProfileInfo_v2 ABI");
#define nvmlComputeInstanceProfileInfo_v2 \
        NVML_STRUCT_VERSION(sizeof(nvmlComputeInstanceProfileInfo_v2_t), 2)

typedef struct {
        nvmlDevice_t device;
        nvmlGpuInstance_t gpuInstance;
        unsigned int id;
        unsigned int profileId;
        nvmlComputeInstancePlacement_t placement;
} nvmlComputeInstanceInfo_t;
static_assert(sizeof(nvmlComputeInstanceInfo_t) == 32, "nvmlComputeInstanceInfo_t ABI");

typedef nvmlReturn_t (*nvmlDeviceSetMigMode_fn)(nvmlDevice_t, unsigned int, nvmlReturn_t *);
typedef nvmlReturn_t (*nvmlDeviceGetGpuInstanceProfileInfoV_fn)(nvmlDevice_t, unsigned int,
                                                                nvmlGpuInstanceProfileInfo_v2_t *);
typedef nvmlReturn_t (*nvmlDeviceGetGpuInstancePossiblePlacements_fn)(nvmlDevice_t, unsigned int,
                                                                      nvmlGpuInstancePlacement_t *,
                                                                      unsigned int *);
typedef nvmlReturn_t (*nvmlDeviceGetGpuInstanceRemainingCapacity_fn)(nvmlDevice_t, unsigned int,
                                                                     unsigned int *);
typedef nvmlReturn_t (*nvmlDeviceCreateGpuInstance_fn)(nvmlDevice_t, unsigned int,
                                                       nvmlGpuInstance_t *);
typedef nvmlReturn_t (*nvmlDeviceCreateGpuInstanceWithPlacement_fn)(
        nvmlDevice_t, unsigned int, const nvmlGpuInstancePlacement_t *, nvmlGpuInstance_t *);
typedef nvmlReturn_t (*nvmlGpuInstanceDestroy_fn)(nvmlGpuInstance_t);
typedef nvmlReturn_t (*nvmlDeviceGetGpuInstances_fn)(nvmlDevice_t, unsigned int,
                                                     nvmlGpuInstance_t *, unsigned int *);
typedef nvmlReturn_t (*nvmlDeviceGetGpuInstanceById_fn)(nvmlDevice_t, unsigned int,
                                                        nvmlGpuInstance_t *);
typedef nvmlReturn_t (*nvmlGpuInstanceGetInfo_fn)(nvmlGpuInstance_t, nvmlGpuInstanceInfo_t *);
typedef nvmlReturn_t (*nvmlGpuInstanceGetComputeInstanceProfileInfo_fn)(
        nvmlGpuInstance_t, unsigned int, unsigned int, nvmlComputeInstanceProfileInfo_t *);
typedef nvmlReturn_t (*nvmlGpuInstanceGetComputeInstanceProfileInfoV_fn)(
        nvmlGpuInstance_t, unsigned int, unsigned int, nvmlComputeInstanceProfileInfo_v2_t *);
typedef nvmlReturn_t (*nvmlGpuInstanceCreateComputeInstance_fn)(nvmlGpuInstance_t, unsigned int,
                                                                nvmlComputeInstance_t *);
typedef nvmlReturn_t (*nvmlComputeInstanceDestroy_fn)(nvmlComputeInstance_t);
typedef nvmlReturn_t (*nvmlGpuInstanceGetComputeInstances_fn)(nvmlGpuInstance_t, unsigned int,
                                                              nvmlComputeInstance_t *,
                                                              unsigned int *);
typedef nvmlReturn_t (*nvmlComputeInstanceGetInfo_fn)(nvmlComputeInstance_t,
                                                      nvmlComputeInstanceInfo_t *);

/* ---- Clocks and GPM (dcgm-exporter parity, issue 17) -------------------
 * nvmlDeviceGetClockInfo(dev, nvmlClockType_t, unsigned *mhz): the current
 * clock of one domain in MHz. NVML's GPU Performance Monitoring (GPM, Hopper
 * and later): nvmlGpmQueryDeviceSupport says whether a device has it;
 * nvmlGpmSampleAlloc / nvmlGpmSampleGet take opaque samples; nvmlGpmMetricsGet
 * computes metrics (percent for the *_UTIL ones) between two samples of one
 * device; nvmlGpmSampleFree frees one. Source: nvml.h as vendored by
 * NVIDIA/go-nvml. */
typedef unsigned int nvmlClockType_t;
#define NVML_CLOCK_GRAPHICS 0u
#define NVML_CLOCK_SM 1u
#define NVML_CLOCK_MEM 2u
#define NVML_CLOCK_VIDEO 3u

typedef struct nvmlGpmSample_st *nvmlGpmSample_t;

#define NVML_GPM_SUPPORT_VERSION 1u
typedef struct nvmlGpmSupport_st {
        unsigned int version; /* IN: NVML_GPM_SUPPORT_VERSION */
        unsigned int isSupportedDevice;
} nvmlGpmSupport_t;
static_assert(sizeof(nvmlGpmSupport_t) == 8, "nvmlGpmSupport_t is 8 bytes");

/* nvmlGpmMetricId_t values gpukeeper reads. */
#define NVML_GPM_METRIC_GRAPHICS_UTIL 1u
#define NVML_GPM_METRIC_SM_UTIL 2u
#define NVML_GPM_METRIC_SM_OCCUPANCY 3u
#define NVML_GPM_METRIC_ANY_TENSOR_UTIL 5u
#define NVML_GPM_METRIC_DRAM_BW_UTIL 10u
/* The metrics[] length of CUDA 12's header (98; CUDA 13's is 333). The
 * library reads and writes numMetrics entries only, so a caller's array
 * need only be that long; ours is CUDA 12's size. */
#define NVML_GPM_METRIC_MAX_12 98u

typedef struct nvmlGpmMetric_st {
        unsigned int metricId;   /* IN */
        nvmlReturn_t nvmlReturn; /* OUT: value is valid only when NVML_SUCCESS */
        double value;            /* OUT */
        struct {
                char *shortName, *longName, *unit;
        } metricInfo; /* OUT, may be NULL */
} nvmlGpmMetric_t;
static_assert(sizeof(nvmlGpmMetric_t) == 40, "nvmlGpmMetric_t is 40 bytes");
static_assert(offsetof(nvmlGpmMetric_t, value) == 8, "value at 8");

#define NVML_GPM_METRICS_GET_VERSION 1u
typedef struct nvmlGpmMetricsGet_st {
        unsigned int version;    /* IN: NVML_GPM_METRICS_GET_VERSION */
        unsigned int numMetrics; /* IN: entries of metrics[] to compute */
        nvmlGpmSample_t sample1; /* IN: the earlier sample */
        nvmlGpmSample_t sample2; /* IN: the later sample */
        nvmlGpmMetric_t metrics[NVML_GPM_METRIC_MAX_12];
} nvmlGpmMetricsGet_t;
static_assert(offsetof(nvmlGpmMetricsGet_t, sample1) == 8, "sample1 at 8");
static_assert(offsetof(nvmlGpmMetricsGet_t, metrics) == 24, "metrics at 24");

typedef nvmlReturn_t (*nvmlDeviceGetClockInfo_fn)(nvmlDevice_t, nvmlClockType_t, unsigned int *);
typedef nvmlReturn_t (*nvmlGpmQueryDeviceSupport_fn)(nvmlDevice_t, nvmlGpmSupport_t *);
typedef nvmlReturn_t (*nvmlGpmSampleAlloc_fn)(nvmlGpmSample_t *);
typedef nvmlReturn_t (*nvmlGpmSampleFree_fn)(nvmlGpmSample_t);
typedef nvmlReturn_t (*nvmlGpmSampleGet_fn)(nvmlDevice_t, nvmlGpmSample_t);
typedef nvmlReturn_t (*nvmlGpmMetricsGet_fn)(nvmlGpmMetricsGet_t *);
