/* The MIG placement planner: a pure function from (GPUs with their NVML
 * placement tables and current instances, one requested profile) to where
 * a new GPU instance should go.
 *
 * Inputs come from NVML as the daemon read them
 * (nvmlDeviceGetGpuInstanceProfileInfo and _PossiblePlacements_v2): a
 * profile occupies `size` consecutive memory slices starting at one of the
 * slices in `starts`, at most `max_instances` of it per GPU. Two instances
 * may not share a memory slice; that is the whole constraint (compute
 * slices follow from it on A100/H100, see docs/gpukeeper.1, "MIG").
 *
 * Choice ("best fit over NVML's placement table keeping the largest
 * possible future profile available"): among every GPU and allowed start
 * where the profile fits, prefer
 *   1. the placement that leaves its GPU the most possible placements
 *      (over every profile and start of NVML's table: the most future
 *      requests of any shape can still be placed there),
 *   2. then the one after which its GPU can still take the largest profile
 *      (the size of the largest profile that still fits drops least),
 *   3. then the GPU with the fewest free memory slices (best fit),
 *   4. then the lowest GPU index and start (deterministic).
 * This order is measured (bench/bench-mig.c, docs/benchmarks.md): ranking
 * best fit first grants fewer requests over long sequences than first fit
 * does, ranking "choices left" first more than both.
 * Only when no placement fits may instances be destroyed: idle ones the
 * daemon created on demand (`destroyable`: no lease, no process), never a
 * leased one. Then the fewest destroyed wins, and the order above breaks
 * ties. The search is exhaustive per GPU (every subset of destroyable
 * instances, every start), so a request is refused only when no
 * placement exists without touching a non-destroyable instance. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POLICY_MIG_SLICES 8         /* memory slices of an A100 / H100 */
#define POLICY_MIG_MAX_PROFILES 16  /* NVML_GPU_INSTANCE_PROFILE_COUNT is 0x11 */
#define POLICY_MIG_MAX_INSTANCES 8  /* GPU instances per GPU (7 on A100/H100) */
#define POLICY_MIG_MAX_GPUS 64
#define POLICY_MIG_PROFILE_MAX 32

typedef struct PolicyMigProfile {
        char name[POLICY_MIG_PROFILE_MAX]; /* "3g.40gb" */
        unsigned size;          /* memory slices one instance occupies, 1..8 */
        unsigned starts;        /* bit s: an instance may start at slice s */
        unsigned max_instances; /* per GPU */
} PolicyMigProfile;

typedef struct PolicyMigInstance {
        unsigned profile;  /* index into the GPU's profiles */
        unsigned start;    /* first memory slice */
        bool destroyable;  /* created on demand, no lease, no process: may be destroyed */
} PolicyMigInstance;

typedef struct PolicyMigGpu {
        const PolicyMigProfile *profiles;
        size_t n_profiles;
        const PolicyMigInstance *instances;
        size_t n_instances;
        bool eligible; /* MIG on, opted in to on-demand creation, healthy, not drained */
} PolicyMigGpu;

typedef struct PolicyMigPlan {
        size_t gpu;      /* index into the GPU array */
        unsigned profile; /* index into that GPU's profiles */
        unsigned start;
        size_t destroy[POLICY_MIG_MAX_INSTANCES]; /* that GPU's instances to destroy first */
        size_t n_destroy;
} PolicyMigPlan;

/* Where to put one instance of profile `name`. Returns 1 with *ret filled,
 * 0 when it fits nowhere (not even by destroying destroyable instances;
 * *ret untouched), -EINVAL for malformed input: NULL pointers with non-zero
 * counts, more than POLICY_MIG_MAX_GPUS GPUs, more than
 * POLICY_MIG_MAX_PROFILES profiles or POLICY_MIG_MAX_INSTANCES instances on
 * a GPU, a profile of size 0 or above POLICY_MIG_SLICES, a start bit at or
 * past POLICY_MIG_SLICES, an instance naming a missing profile, starting
 * where its profile may not, or overlapping another. */
int policy_mig_place(const PolicyMigGpu *gpus, size_t n_gpus, const char *name,
                     PolicyMigPlan *ret);

/* Memory slices of `gpu` not covered by an instance (bit s: slice s free).
 * The GPU must be valid as policy_mig_place() checks. */
unsigned policy_mig_free_mask(const PolicyMigGpu *gpu);

/* The size of the largest profile that still fits in `free` (a free-slice
 * mask) given `counts` instances per profile already present; 0 when none. */
unsigned policy_mig_largest_fit(const PolicyMigProfile *profiles, size_t n_profiles, unsigned free,
                                const unsigned *counts);

/* Place several new instances at once on one GPU, around its existing
 * instances (all kept): `add` lists profile indexes; on success
 * ret_starts[i] is the start of add[i] and 1 is returned, 0 when they do
 * not all fit together, -EINVAL as policy_mig_place() or for more than
 * POLICY_MIG_MAX_INSTANCES instances in all. Exhaustive (largest first,
 * backtracking), so 0 means no arrangement exists. Used to carve a whole
 * layout (`gpukeeper mig apply`). */
int policy_mig_pack(const PolicyMigGpu *gpu, const unsigned *add, size_t n_add,
                    unsigned *ret_starts);
