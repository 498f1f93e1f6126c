/* The NVML simulator's lab: the parsed form of the JSON file named by
 * $GPUKEEPER_SIM_LAB (format in sim/README.md), plus the MIG profile tables
 * of the GPU models the simulator knows.
 *
 * A SimLab is immutable once parsed; the simulator swaps in a new one when
 * the file changes. Everything is bounded by the SIM_MAX_* limits so a
 * broken lab file cannot make the library allocate without bound. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_MAX_GPUS 64
/* A100/H100 expose at most 7 MIG devices; nvmlDeviceGetMaxMigDeviceCount says so. */
#define SIM_MAX_MIG 7
#define SIM_MAX_PROCESSES_PER_GPU 16384
#define SIM_MAX_ERRORS 64
#define SIM_MAX_LAB_BYTES (16u * 1024u * 1024u)
/* NUMA nodes a lab may name: Linux's largest NODES_SHIFT is 10. */
#define SIM_MAX_NUMA_NODES 1024
#define SIM_MAX_CPUS 1024

#define SIM_NAME_MAX 96
#define SIM_UUID_MAX 96
#define SIM_BUS_ID_MAX 32
#define SIM_PROFILE_MAX 32
#define SIM_DRIVER_VERSION_MAX 80
#define SIM_FUNCTION_NAME_MAX 64

/* The GPM metrics the simulator computes, with their lab keys and
 * nvmlGpmMetricId_t values (sim_gpm_metrics in lab.c). */
typedef enum SimGpmMetric {
        SIM_GPM_GRAPHICS_UTIL,
        SIM_GPM_SM_UTIL,
        SIM_GPM_SM_OCCUPANCY,
        SIM_GPM_ANY_TENSOR_UTIL,
        SIM_GPM_DRAM_BW_UTIL,
        SIM_GPM_METRICS
} SimGpmMetric;

typedef struct SimGpmMetricInfo {
        const char *key; /* in the lab's "gpm" object */
        unsigned id;     /* NVML_GPM_METRIC_* */
        const char *short_name, *long_name, *unit;
} SimGpmMetricInfo;

extern const SimGpmMetricInfo sim_gpm_metrics[SIM_GPM_METRICS];

/* One injected return code: calls of `function` (see sim_errors_lookup) return `code`. */
typedef struct SimError {
        char function[SIM_FUNCTION_NAME_MAX];
        int code;
} SimError;

typedef struct SimErrors {
        SimError entries[SIM_MAX_ERRORS];
        size_t n;
} SimErrors;

enum {
        SIM_PROCESS_COMPUTE = 1 << 0,
        SIM_PROCESS_GRAPHICS = 1 << 1,
};

typedef struct SimProcess {
        unsigned pid;
        bool in_mig;           /* "gi"/"ci" given: resolved to `instance` after the MIG state is known */
        unsigned gi, ci;
        bool used_known;       /* false: "used_mib": null, reported as NVML_VALUE_NOT_AVAILABLE */
        uint64_t used_mib;
        int instance;          /* index into SimGpu.instances, -1 for a whole-GPU process */
        unsigned sm_util;      /* percent */
        unsigned mem_util;     /* percent */
        unsigned types;        /* SIM_PROCESS_* bits */
} SimProcess;

/* A MIG device: one compute instance inside a GPU instance. */
typedef struct SimInstance {
        unsigned gi, ci;
        int gpu_instance;      /* index into SimGpu.gis */
        unsigned ci_profile;   /* NVML_COMPUTE_INSTANCE_PROFILE_* index (= the CI profile id) */
        unsigned ci_start, ci_slices; /* compute slices it occupies inside its GPU instance */
        char profile[SIM_PROFILE_MAX];
        char uuid[SIM_UUID_MAX];
        uint64_t memory_total_mib;
        bool has_memory_used; /* "memory_used_mib" given; else the sum of its processes */
        uint64_t memory_used_mib;
        SimErrors errors;
} SimInstance;

struct SimMigProfile;

/* A GPU instance: a profile at a placement (memory slices). */
typedef struct SimGpuInstance {
        unsigned id;
        const struct SimMigProfile *profile; /* NULL: a profile the model's table lacks */
        char profile_name[SIM_PROFILE_MAX];
        unsigned start, size; /* memory slices; size 0: a lab instance that could not be placed */
} SimGpuInstance;

/* GPU instance ids run 0..14 on A100/H100 (nvidia-caps lists gi0..gi14). */
#define SIM_MAX_GI_ID 14
#define SIM_MAX_CI_ID 7
#define SIM_MEMORY_SLICES 8

typedef enum SimFamily {
        SIM_FAMILY_A100_80GB,
        SIM_FAMILY_A100_40GB,
        SIM_FAMILY_H100_80GB,
} SimFamily;

typedef struct SimGpu {
        char name[SIM_NAME_MAX];
        char uuid[SIM_UUID_MAX];
        char pci_bus_id[SIM_BUS_ID_MAX]; /* "00000000:07:00.0" */
        unsigned pci_domain, pci_bus, pci_device;
        unsigned pci_device_id, pci_subsystem_id;
        unsigned minor;
        int numa_node; /* nvmlDeviceGetMemoryAffinity; -1 without "numa_node" (NOT_SUPPORTED) */
        bool has_cpu_affinity; /* "cpu_affinity" given; else nvmlDeviceGetCpuAffinity is NOT_SUPPORTED */
        unsigned long cpu_affinity[SIM_MAX_CPUS / (8 * sizeof(unsigned long))];
        uint64_t memory_total_mib;
        bool has_memory_used;
        uint64_t memory_used_mib; /* excludes reserved memory, like nvmlMemory_v2_t.used */
        uint64_t memory_reserved_mib;
        unsigned utilization_gpu, utilization_memory;
        unsigned temperature_c;
        unsigned power_mw;
        uint64_t energy_mj;
        bool lost;
        uint64_t xid;
        bool mig_capable; /* the GPU has a "mig" object */
        bool mig_enabled;
        bool mig_pending;  /* nvmlDeviceGetMigMode's pending mode */
        bool mig_from_state; /* MIG mode and instances come from the state file */
        SimFamily family; /* which MIG profile table applies */
        SimGpuInstance gis[SIM_MAX_MIG];
        size_t n_gis;
        SimInstance instances[SIM_MAX_MIG];
        size_t n_instances; /* 0 unless mig_enabled */
        SimProcess *processes;
        size_t n_processes;
        SimErrors errors;
        /* Clocks and GPM (issue 17). A clock of 0: not in the lab, and
         * nvmlDeviceGetClockInfo answers NOT_SUPPORTED. has_gpm: the lab has
         * a "gpm" object (a Hopper or later GPU); its values are percent. */
        unsigned clock_sm_mhz, clock_mem_mhz;
        bool has_gpm;
        double gpm[SIM_GPM_METRICS]; /* indexed by SimGpmMetric */
} SimGpu;

typedef struct SimLab {
        char driver_version[SIM_DRIVER_VERSION_MAX];
        SimGpu *gpus;
        size_t n_gpus;
        SimErrors errors; /* for calls that take no device */
        unsigned delay_ms; /* "delay_ms": how long nvmlDeviceGetCount takes (a hung driver) */
} SimLab;

/* The file identity the simulator compares to decide whether to re-parse. */
typedef struct SimFileId {
        bool valid;
        uint64_t dev, ino, size;
        int64_t mtime_sec, mtime_nsec;
} SimFileId;

/* Parse the lab at `path` and overlay the MIG state file at `state_path`
 * (NULL or a missing file: none; format in sim/README.md). `default_driver_version` is used when the lab has
 * no "driver_version". On success stores the lab in *ret_lab and the
 * identity of the files that were read in *ret_id / *ret_state_id and returns 0. On failure
 * returns -errno (-EINVAL for a malformed lab) and writes a one-line reason
 * into `error` (always NUL-terminated); *ret_id still receives the identity
 * of the file that failed when it could be opened, so the caller does not
 * re-parse the same broken file on every call. */
int sim_lab_load(const char *path, const char *state_path, const char *default_driver_version,
                 SimLab **ret_lab, SimFileId *ret_id, SimFileId *ret_state_id, char *error,
                 size_t error_size);

/* Write the MIG state of every GPU of `lab` whose mig_from_state is set
 * into the state file at `path` (atomically: a temporary file beside it,
 * then rename), keeping entries of GPUs the lab does not have. Stores the
 * new file's identity in *ret_id. Returns 0 or -errno. */
int sim_state_write(const char *path, const SimLab *lab, SimFileId *ret_id);

/* Resolve processes' gi/ci to instance indexes and check them; used again
 * after an in-memory MIG change. Returns 0 or -EINVAL with `error` set. */
int sim_gpu_resolve_processes(SimGpu *gpu, unsigned index, char *error, size_t error_size);

/* The NVML_GPU_INSTANCE_PROFILE_* table of `family` (its profiles in index order). */
const struct SimMigProfile *sim_mig_profiles(SimFamily family, size_t *ret_n);
const struct SimMigProfile *sim_mig_profile_by_id(SimFamily family, unsigned id);

/* Does placement (start, size) collide with an existing GPU instance other than `skip`? */
bool sim_gpu_placement_free(const SimGpu *gpu, unsigned start, unsigned size);

void sim_lab_free(SimLab *lab);

/* Identity of the file at `path` now; returns 0 or -errno. */
int sim_file_id_get(const char *path, SimFileId *ret);
bool sim_file_id_equal(const SimFileId *a, const SimFileId *b);

/* The injected code for `function` in `errors`, or 0 when none. An entry
 * matches the exact symbol name or its unversioned base name, so
 * "nvmlDeviceGetComputeRunningProcesses" covers _v2 and _v3 as well. */
int sim_errors_lookup(const SimErrors *errors, const char *function);

/* One row of `nvidia-smi mig -lgip` for a GPU model. */
typedef struct SimMigProfile {
        unsigned profile_index; /* NVML_GPU_INSTANCE_PROFILE_* (the nvml.h constant) */
        const char *name;       /* "1g.10gb" */
        unsigned id;            /* the unique profile id nvidia-smi shows (19 for 1g.10gb) */
        unsigned slices;
        unsigned instances;
        unsigned multiprocessors;
        unsigned copy_engines, decoders, encoders, jpegs, ofas;
        uint64_t memory_mib;
        unsigned mem_slices; /* placement size (nvidia-smi mig -lgipp), in memory slices */
        unsigned starts;     /* bit s: a placement may start at memory slice s */
} SimMigProfile;

/* The profile with NVML_GPU_INSTANCE_PROFILE_* index `profile_index`, or
 * NULL when that GPU model does not have it. */
const SimMigProfile *sim_mig_profile_by_index(SimFamily family, unsigned profile_index);
const SimMigProfile *sim_mig_profile_by_name(SimFamily family, const char *name);
