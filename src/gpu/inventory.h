/* The GPU inventory snapshot: everything one sampler tick learned from NVML
 * and /proc, as plain immutable data.
 *
 * A snapshot is taken on the sampler timer only (never on a request path) and
 * is then read by status replies, policy and metrics until the next tick
 * replaces it. Nothing in it points into NVML or the process cache. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "basic/proc.h"
#include "gpu/nvml.h"

#define GPU_UUID_MAX 96
#define GPU_NAME_MAX 96
#define GPU_PCI_BUS_ID_MAX 32
#define GPU_PROFILE_MAX 32
#define GPU_DRIVER_VERSION_MAX 80
#define GPU_MESSAGE_MAX 256
/* Hard limits on what we accept from NVML, so a broken driver cannot make
 * the root daemon allocate without bound. */
#define GPU_MAX_DEVICES 64
#define GPU_MAX_INSTANCES_PER_DEVICE 64
#define GPU_MAX_PROCESSES_PER_DEVICE 4096

/* A value NVML could not give (NOT_SUPPORTED, NOT_AVAILABLE, or an error). */
#define GPU_VALUE_UNKNOWN UINT64_MAX

typedef struct GpuProcess {
        uint32_t pid;
        uint64_t memory_used_bytes; /* GPU_VALUE_UNKNOWN when NVML cannot tell */
        int instance;               /* index into GpuDevice.instances, -1 when not MIG */
        uint32_t gpu_instance_id;   /* NVML_INSTANCE_ID_NONE when not MIG */
        uint32_t compute_instance_id;
        bool vanished;       /* NVML listed it, but it was gone before /proc could be read */
        bool zombie;         /* exited, not yet reaped by its parent (state Z): holds its memory */
        bool owner_from_earlier; /* vanished, and uid, start_time and command are from an earlier
                                  * snapshot where it was alive (gpu_snapshot_carry_owners) */
        uid_t uid;           /* real uid from /proc/<pid>/status; (uid_t)-1 when vanished
                              * and not owner_from_earlier */
        uint64_t start_time; /* /proc/<pid>/stat field 22 (clock ticks since boot); 0 when vanished */
        char *command;       /* cmdline with NULs as spaces, bounded by PROC_COMMAND_MAX; NULL when vanished */
} GpuProcess;

typedef struct GpuInstance {
        char uuid[GPU_UUID_MAX];       /* "MIG-…" */
        char profile[GPU_PROFILE_MAX]; /* "3g.40gb"; "unknown" when the driver does not say */
        uint32_t gpu_instance_id;
        uint32_t compute_instance_id;
        uint64_t memory_total_bytes; /* GPU_VALUE_UNKNOWN when unknown */
        uint64_t memory_used_bytes;
        int numa_node; /* the parent GPU's: an instance is a slice of its memory */
} GpuInstance;

typedef struct GpuDevice {
        unsigned index; /* NVML index: not stable across reboots, identify by uuid */
        char uuid[GPU_UUID_MAX];
        char name[GPU_NAME_MAX];
        char pci_bus_id[GPU_PCI_BUS_ID_MAX];
        int minor; /* /dev/nvidia<minor>, -1 when unknown */
        int numa_node; /* NUMA node nearest its memory (NVML memory affinity), -1 when unknown */
        bool has_cpus; /* cpus below is NVML's CPU affinity (nvmlDeviceGetCpuAffinity) */
        unsigned long cpus[GPU_NVML_CPUSET_WORDS]; /* the CPUs nearest the GPU, a bitmask */
        uint64_t memory_total_bytes; /* GPU_VALUE_UNKNOWN when unknown */
        uint64_t memory_used_bytes;
        uint64_t memory_reserved_bytes;
        int utilization_gpu;    /* percent, -1 when unknown (always on MIG-enabled GPUs) */
        int utilization_memory; /* percent, -1 when unknown */
        int temperature_c;      /* -1 when unknown */
        int64_t power_mw;       /* -1 when unknown */
        uint64_t energy_mj;     /* GPU_VALUE_UNKNOWN when unknown; monotonic counter */
        uint64_t last_xid;      /* last Xid event seen since the daemon started, 0 if none */
        int clock_sm_mhz;       /* current SM clock, -1 when unknown */
        int clock_mem_mhz;      /* current memory clock, -1 when unknown */
        bool has_gpm;           /* GPM metrics below are from this tick (Hopper and later) */
        GpuNvmlGpm gpm;         /* ratios 0..1, -1 per metric when unknown */
        bool healthy;           /* false when lost or when identity/memory could not be read */
        int error;              /* first NVML error of this tick on this device, 0 if none */
        char error_call[48];    /* the NVML function that returned `error` */
        bool mig_enabled;
        GpuInstance *instances;
        size_t n_instances;
        GpuProcess *processes; /* whole-GPU and MIG processes; GpuProcess.instance tells which */
        size_t n_processes;
        /* More processes than GPU_MAX_PROCESSES_PER_DEVICE (those that fit
         * are kept), or the list could not be read: what is not listed may
         * still be there, so the device is not granted and no violation on
         * it is closed for want of its process. */
        bool processes_incomplete;
} GpuDevice;

typedef struct GpuSnapshot {
        uint64_t taken_usec;  /* CLOCK_REALTIME when the tick started */
        uint64_t tick_usec;   /* how long taking it took (CLOCK_MONOTONIC) */
        bool simulated;       /* the library is gpukeeper's NVML simulator */
        bool nvml_available;  /* false: library missing or nvmlInit failed, see message */
        char message[GPU_MESSAGE_MAX];
        char driver_version[GPU_DRIVER_VERSION_MAX];
        unsigned nvml_errors; /* failed NVML calls in this tick (NOT_SUPPORTED not counted) */
        GpuDevice *gpus;
        size_t n_gpus;
} GpuSnapshot;

/* Take a snapshot: query every device, MIG instance and process through
 * `nvml` (which may be NULL or unavailable: the snapshot then says so and
 * holds no GPUs) and attribute processes via `cache`. Per-device NVML
 * errors are recorded in the snapshot, never returned. Returns 0, or -ENOMEM. */
int gpu_snapshot_take(GpuNvml *nvml, ProcCache *cache, GpuSnapshot **ret);

void gpu_snapshot_free(GpuSnapshot *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(GpuSnapshot *, gpu_snapshot_free);

/* Has the process exited while NVML still lists its GPU memory (gone, or a
 * zombie)? Nobody can free that memory but its parent (reaping a zombie) or
 * a GPU reset. */
static inline bool gpu_process_exited(const GpuProcess *p)
{
        return p->vanished || p->zombie;
}

/* For every vanished process of `now`, take the owner (uid, start time,
 * command) the same pid on the same GPU had in `prev`, where it was alive
 * or had one carried over, so memory held by exited processes keeps naming
 * whose it was. `prev` may be NULL. Returns 0 or -ENOMEM. */
int gpu_snapshot_carry_owners(GpuSnapshot *now, const GpuSnapshot *prev);

/* Lookups used by status, policy and metrics. NULL when absent. */
const GpuDevice *gpu_snapshot_find_device(const GpuSnapshot *s, const char *uuid);
