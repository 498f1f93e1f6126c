/* Violations: GPU processes whose owner holds no lease on the device they
 * run on. A pure function of (snapshot, active leases, exemptions): it
 * reads no clock, /proc or store, so every rule below is tested without a
 * daemon (tests/unit/policy). The enforcer (src/enforce/) acts on the result.
 *
 * Rules:
 *  - The device a process runs on is its MIG instance's uuid when NVML
 *    reported it on an instance, else its GPU's uuid (also for a process on
 *    a MIG-enabled GPU that NVML did not place on an instance).
 *  - A process is a violation unless its owner holds an active lease on that
 *    exact device: a lease on another MIG instance of the same GPU does not
 *    cover it, and neither does a lease on a whole GPU cover a MIG instance
 *    (the allocator never grants both on one GPU).
 *  - Exempt: processes that vanished before /proc could be read (there is
 *    nobody to attribute them to and nothing to signal), uid 0 when
 *    root_exempt, listed uids, and listed executables.
 *  - A process on several devices yields one violation per device it
 *    violates on. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gpu/inventory.h"

/* One device held by one user through an active lease (a lease on several
 * devices is several entries). Ended leases must not be passed. */
typedef struct PolicyHeld {
        uid_t uid;
        const char *uuid; /* "GPU-…" or "MIG-…" */
} PolicyHeld;

/* Returns the absolute path of the executable of process (pid, start_time)
 * (what /proc/<pid>/exe points to), or NULL when it cannot be told. The
 * pointer must stay valid until the next call or until
 * policy_find_violations returns. Called only for processes that would
 * otherwise be violations, and only when executables are listed, so the
 * caller's /proc reads stay off the common path. */
typedef const char *(*PolicyExeFunc)(void *userdata, uint32_t pid, uint64_t start_time);

typedef struct PolicyExempt {
        bool root_exempt;
        const uid_t *uids; /* resolved from the config's names and numbers */
        size_t n_uids;
        const char *const *executables; /* absolute paths, compared byte for byte */
        size_t n_executables;
        PolicyExeFunc exe; /* required when n_executables > 0 */
        void *userdata;
} PolicyExempt;

/* Strings point into the snapshot passed to policy_find_violations and are
 * valid as long as that snapshot is (one sampler tick): copy them to keep
 * a violation longer. */
typedef struct PolicyViolation {
        uint32_t pid;
        uint64_t start_time; /* /proc stat field 22: with pid, names the process for good */
        uid_t uid;
        const char *device_uuid; /* the MIG instance's uuid, or the GPU's */
        const char *gpu_uuid;
        unsigned gpu_index;         /* NVML index, for messages only */
        int instance;               /* index into the GPU's instances, -1 when whole GPU */
        uint64_t memory_used_bytes; /* GPU_VALUE_UNKNOWN when NVML cannot tell */
        const char *command;
} PolicyViolation;

/* Find every violation in `snap`. `held` lists the active leases' devices
 * (may be NULL when n_held is 0); `exempt` may be NULL (nothing exempt, not
 * even root). On success *ret is a malloc'd array the caller frees with
 * free() (NULL when there are none) and *ret_n its length; returns 0, or
 * -ENOMEM (outputs untouched). */
int policy_find_violations(const GpuSnapshot *snap, const PolicyHeld *held, size_t n_held,
                           const PolicyExempt *exempt, PolicyViolation **ret, size_t *ret_n);
