/* Per-user limits written straight into cgroup files, for machines where
 * systemd is not PID 1 (containers, older or minimal servers): each user gets
 * a cgroup "user-UID.slice" under a configured parent (limits.cgroupfs_parent)
 * in the hierarchy that carries each controller:
 *
 *   cgroup v2 (the controller listed in the unified root's cgroup.controllers):
 *     cpu.max "QUOTA 100000", memory.max, pids.max; the parent's
 *     cgroup.subtree_control gets "+cpu +memory +pids" (only cgroups we made
 *     are ever written; the root's is only read)
 *   cgroup v1 (a "cgroup" mount whose options name the controller):
 *     cpu.cfs_period_us 100000 and cpu.cfs_quota_us, memory.limit_in_bytes,
 *     pids.max
 *
 * v2 wins where it has the controller. The hierarchies are found in a
 * mountinfo file (/proc/self/mountinfo; tests pass their own). Nothing here
 * logs; failures come back as -errno with one line in `why`. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "policy/limits-policy.h"

#define LIMITS_CGROUPFS_CPU_PERIOD_USEC 100000

typedef struct LimitsCgroupfs {
        char *parent;                       /* relative: "gpukeeper.slice" */
        char *mount[_POLICY_LIMIT_MAX];     /* the hierarchy of each resource; NULL: none */
        bool v2[_POLICY_LIMIT_MAX];         /* that hierarchy is cgroup v2 */
} LimitsCgroupfs;

/* Find the hierarchies in `mountinfo` (a /proc/PID/mountinfo file). A
 * resource whose controller is mounted nowhere has mount NULL (applying a
 * limit to it fails). Returns 0, -ENOMEM, or -errno when the file cannot be
 * read (with `why`). */
int limits_cgroupfs_discover(const char *mountinfo, const char *parent, LimitsCgroupfs **ret,
                             char *why, size_t why_len);

void limits_cgroupfs_free(LimitsCgroupfs *fs);

/* "v1 cpu,memory,pids" / "v2 cpu,memory; v1 pids": what was found. */
void limits_cgroupfs_describe(const LimitsCgroupfs *fs, char *buf, size_t len);

/* The directory of uid's cgroup for resource `r`: MOUNT/PARENT/user-UID.slice.
 * Returns 0, -ENODEV when the controller is not mounted, -ENAMETOOLONG. */
int limits_cgroupfs_user_dir(const LimitsCgroupfs *fs, PolicyLimitResource r, uid_t uid,
                             char *buf, size_t len);

/* Create uid's cgroups (and the parent) where missing and write every
 * resource's value (INFINITY writes "max" / -1). Every resource is tried;
 * returns 0 when all were written, else the first -errno with every failure
 * in `why` ("memory: cannot write .../memory.limit_in_bytes: Device or
 * resource busy; ..."). */
int limits_cgroupfs_apply(const LimitsCgroupfs *fs, uid_t uid, const PolicyUserLimits *limits,
                          char *why, size_t why_len);

/* Move `pid` into uid's cgroups: in every v1 hierarchy, and in the v2 one
 * too when `v2_too` (a process has one v2 cgroup; `gpukeeper run` in strict
 * mode already has its lease's). Returns 0 or the first -errno with `why`. */
int limits_cgroupfs_attach(const LimitsCgroupfs *fs, uid_t uid, pid_t pid, bool v2_too,
                           char *why, size_t why_len);
