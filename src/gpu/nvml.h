/* The NVML binding: libnvidia-ml (or the simulator) loaded with dlopen, every
 * entry point resolved with versioned-symbol fallbacks, and every NVML quirk
 * (struct versions and sizes, the 535 process-struct bug, INSUFFICIENT_SIZE
 * retries, lost GPUs, optional MIG and event APIs) handled here and nowhere
 * else (ARCHITECTURE.md rule 9).
 *
 * The wrappers return NVML's own return codes so inventory.c can record them
 * per device; a function the library does not export reads as
 * NVML_ERROR_NOT_SUPPORTED (an unknown value, not a failure).
 * gpu_nvml_last_call() names the NVML symbol a wrapper called last, for
 * error reports. A GpuNvml is used from one thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/macro.h"
#include "gpu/nvml-abi.h"

#define GPU_NVML_DEFAULT_LIBRARY "libnvidia-ml.so.1"

typedef struct GpuNvml GpuNvml;

/* Load `library` (NULL: the default), resolve symbols, call nvmlInit and set
 * up Xid event delivery. On failure a one-line reason goes to errbuf, e.g.
 * "nvmlInit_v2: Driver Not Loaded (9)". Returns 0; -ENOENT when the library
 * cannot be loaded, -ELIBBAD when a required symbol is missing, -EIO when
 * nvmlInit fails, -ENOMEM. */
int gpu_nvml_open(const char *library, GpuNvml **ret, char *errbuf, size_t errlen);

/* nvmlShutdown and dlclose. Accepts NULL. */
void gpu_nvml_close(GpuNvml *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(GpuNvml *, gpu_nvml_close);

/* Is the loaded library gpukeeper's NVML simulator? */
bool gpu_nvml_is_simulated(const GpuNvml *n);

/* The name of the NVML function the most recent wrapper called last (the
 * one whose code it returned), e.g. "nvmlDeviceGetMemoryInfo_v2". */
const char *gpu_nvml_last_call(const GpuNvml *n);

/* "Driver Not Loaded" etc., from the library's nvmlErrorString. */
const char *gpu_nvml_error_string(const GpuNvml *n, nvmlReturn_t r);

nvmlReturn_t gpu_nvml_driver_version(GpuNvml *n, char *buf, size_t len);
nvmlReturn_t gpu_nvml_device_count(GpuNvml *n, unsigned *ret);
nvmlReturn_t gpu_nvml_device_handle(GpuNvml *n, unsigned index, nvmlDevice_t *ret);

/* Strings are always NUL-terminated in buf (empty on failure). */
nvmlReturn_t gpu_nvml_device_name(GpuNvml *n, nvmlDevice_t dev, char *buf, size_t len);
nvmlReturn_t gpu_nvml_device_uuid(GpuNvml *n, nvmlDevice_t dev, char *buf, size_t len);
/* PciInfo_v3 → _v2 → unversioned (whose only bus id is busIdLegacy). */
nvmlReturn_t gpu_nvml_device_pci_bus_id(GpuNvml *n, nvmlDevice_t dev, char *buf, size_t len);

nvmlReturn_t gpu_nvml_device_minor(GpuNvml *n, nvmlDevice_t dev, unsigned *ret);

/* The NUMA node nearest the device's memory: nvmlDeviceGetMemoryAffinity with
 * NVML_AFFINITY_SCOPE_NODE and room for GPU_NVML_NUMA_NODES_MAX nodes. *ret
 * is that node when exactly one bit is set, else -1 (no bit: no node or one
 * beyond our room; several: the driver could not place the device on one).
 * NOT_SUPPORTED when the library lacks the symbol (drivers before 450) or
 * the platform has no NUMA information. */
#define GPU_NVML_NUMA_NODES_MAX 1024
nvmlReturn_t gpu_nvml_device_numa_node(GpuNvml *n, nvmlDevice_t dev, int *ret);

/* The CPUs nearest the GPU (NVML's CPU affinity) as a bitmask of `n_words`
 * unsigned longs, zeroed first. Slurm's gres.conf Cores= comes from this. */
nvmlReturn_t gpu_nvml_device_cpu_affinity(GpuNvml *n, nvmlDevice_t dev, unsigned long *set,
                                          size_t n_words);

typedef struct GpuNvmlMemory {
        uint64_t total;
        uint64_t used;     /* v1 (no reserved figure): includes reserved memory */
        uint64_t reserved; /* UINT64_MAX when only the v1 call is available */
} GpuNvmlMemory;

/* nvmlDeviceGetMemoryInfo_v2 (version word 0x02000028), else the v1 call. */
nvmlReturn_t gpu_nvml_device_memory(GpuNvml *n, nvmlDevice_t dev, GpuNvmlMemory *ret);

nvmlReturn_t gpu_nvml_device_utilization(GpuNvml *n, nvmlDevice_t dev, nvmlUtilization_t *ret);
nvmlReturn_t gpu_nvml_device_temperature(GpuNvml *n, nvmlDevice_t dev, unsigned *ret);
nvmlReturn_t gpu_nvml_device_power(GpuNvml *n, nvmlDevice_t dev, unsigned *ret_mw);
nvmlReturn_t gpu_nvml_device_energy(GpuNvml *n, nvmlDevice_t dev, unsigned long long *ret_mj);

/* Current MIG mode; NOT_SUPPORTED when the library has no MIG API. */
nvmlReturn_t gpu_nvml_device_mig_enabled(GpuNvml *n, nvmlDevice_t dev, bool *ret);
nvmlReturn_t gpu_nvml_device_max_mig_count(GpuNvml *n, nvmlDevice_t dev, unsigned *ret);
/* NOT_FOUND for an empty slot. */
nvmlReturn_t gpu_nvml_device_mig_handle(GpuNvml *n, nvmlDevice_t dev, unsigned slot,
                                        nvmlDevice_t *ret);
nvmlReturn_t gpu_nvml_device_instance_ids(GpuNvml *n, nvmlDevice_t mig, unsigned *ret_gi,
                                          unsigned *ret_ci);

/* One running process, whatever struct version the driver filled. */
typedef struct GpuNvmlProcess {
        uint32_t pid;
        uint64_t memory_used_bytes; /* UINT64_MAX when the driver cannot tell */
        uint32_t gpu_instance_id;   /* NVML_INSTANCE_ID_NONE when not MIG or unknown (v1) */
        uint32_t compute_instance_id;
} GpuNvmlProcess;

/* How many processes per list we fetch from the driver at most: NVML
 * fills nothing when the buffer is too small, so to keep the first
 * GPU_MAX_PROCESSES_PER_DEVICE of a longer list we must read it whole. */
#define GPU_NVML_PROCESS_FETCH_MAX 65536

/* Compute and graphics processes on `dev`, merged by pid (a process that
 * is both appears once). The array belongs to `n` and stays valid until the
 * next call. At most GPU_MAX_PROCESSES_PER_DEVICE entries (the lowest pids):
 * a longer list is cut there and *ret_truncated set. A driver that reports
 * more than GPU_NVML_PROCESS_FETCH_MAX in one list yields
 * NVML_ERROR_INSUFFICIENT_SIZE. Allocation failure is NVML_ERROR_MEMORY. On
 * failure nothing is returned. */
nvmlReturn_t gpu_nvml_device_processes(GpuNvml *n, nvmlDevice_t dev, const GpuNvmlProcess **ret,
                                       size_t *ret_n, bool *ret_truncated);

/* A device's identity as last seen. */
/* Words of a CPU affinity mask kept per GPU: 1024 CPUs. */
#define GPU_NVML_CPUSET_WORDS 16

typedef struct GpuNvmlIdentity {
        char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
        char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
        char pci_bus_id[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
        int numa_node; /* gpu_nvml_device_numa_node(); -1 when unknown */
        /* The CPUs nearest the GPU (nvmlDeviceGetCpuAffinity, read with
         * numa_node, once per GPU), for `gpukeeper run`'s CPU binding. */
        unsigned long cpus[GPU_NVML_CPUSET_WORDS];
        bool has_cpus; /* false: NOT_SUPPORTED, absent, or not read yet */
} GpuNvmlIdentity;

/* Read uuid, name and PCI bus id of the device at `index`. What is read is
 * remembered per index; what cannot be read is filled from what was last
 * seen there (empty when never), so a GPU that falls off the bus keeps its
 * identity in reports. Returns the first failure (gpu_nvml_last_call names
 * its function), or NVML_SUCCESS.
 *
 * The NUMA node is static for a device, so it is asked once per GPU: when
 * a UUID is first seen at `index`, and again only after a failure other
 * than NOT_SUPPORTED. Its failures leave it unknown (-1) and are not
 * returned: locality is a preference, not part of a healthy identity. */
nvmlReturn_t gpu_nvml_device_identity(GpuNvml *n, unsigned index, nvmlDevice_t dev,
                                      GpuNvmlIdentity *ret);

/* The identity last seen at `index`, for when not even a handle can be had. */
void gpu_nvml_remembered_identity(const GpuNvml *n, unsigned index, GpuNvmlIdentity *ret);

/* The current clock of one domain (NVML_CLOCK_SM, NVML_CLOCK_MEM) in MHz:
 * nvmlDeviceGetClockInfo. */
nvmlReturn_t gpu_nvml_device_clock(GpuNvml *n, nvmlDevice_t dev, nvmlClockType_t type,
                                   unsigned *ret_mhz);

/* GPM metrics as DCGM's profiling fields have them: ratios from 0 to 1,
 * -1 when the device does not give that metric. */
typedef struct GpuNvmlGpm {
        double graphics_active; /* DCGM_FI_PROF_GR_ENGINE_ACTIVE */
        double sm_active;       /* DCGM_FI_PROF_SM_ACTIVE */
        double sm_occupancy;    /* DCGM_FI_PROF_SM_OCCUPANCY */
        double tensor_active;   /* DCGM_FI_PROF_PIPE_TENSOR_ACTIVE */
        double dram_active;     /* DCGM_FI_PROF_DRAM_ACTIVE */
} GpuNvmlGpm;

/* Take a GPM sample of the device `uuid` at `index` and compute the metrics
 * between the previous call's sample and this one (the sampler calls it once
 * per tick, so they cover one sample interval). NOT_SUPPORTED when the
 * library or the device has no GPM (before Hopper; asked once per device);
 * NO_DATA on the first sample of a device; other NVML errors as returned. */
nvmlReturn_t gpu_nvml_device_gpm(GpuNvml *n, unsigned index, const char *uuid, nvmlDevice_t dev,
                                 GpuNvmlGpm *ret);

/* Drain pending Xid events without waiting and remember the last Xid per
 * device. Returns how many Xid events were drained. */
unsigned gpu_nvml_drain_events(GpuNvml *n);

/* Last Xid seen for the GPU with this uuid since open, 0 when none. */
uint64_t gpu_nvml_last_xid(const GpuNvml *n, const char *uuid);

/* For the MIG management binding (gpu/nvml-mig.h), which resolves its own
 * entry points: dlsym in the loaded library (NULL when absent), and
 * recording the NVML function a wrapper calls for gpu_nvml_last_call(). */
void *gpu_nvml_symbol(const GpuNvml *n, const char *name);
void gpu_nvml_note_call(GpuNvml *n, const char *name);
