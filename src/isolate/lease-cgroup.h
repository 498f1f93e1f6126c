/* A cgroup of its own for each `gpukeeper run` lease, so that two runs of
 * the same user see only their own GPUs (the host fence decides by uid, and
 * cannot tell them apart). The lease's cgroup carries a second device
 * program (fence_build_lease) that refuses every guarded node but the
 * lease's; with BPF_F_ALLOW_MULTI both programs must allow an open.
 *
 * Where systemd is PID 1 the cgroup is a transient scope made through
 * systemd's D-Bus API (StartTransientUnit, "gpukeeper-lease-<id>.scope"),
 * so systemd keeps owning the tree; elsewhere it is a directory
 * <parent>/lease-<id> that gpukeeper makes and removes itself. Either way
 * the program is attached before the process is moved in, and the process
 * moved is the `gpukeeper run` client itself, before it forks the command:
 * the command is born inside. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy/fence.h"

#define ISOLATE_LEASE_CGROUPS_DIR "gpukeeper-runs"

typedef enum IsolateCgroupBackend {
        ISOLATE_CGROUP_CGROUPFS, /* <parent>/lease-<id>, made by us */
        ISOLATE_CGROUP_SYSTEMD,  /* a transient scope through sd-bus */
} IsolateCgroupBackend;

/* systemd when it runs as PID 1 (sd_booted()), cgroupfs otherwise. */
IsolateCgroupBackend isolate_cgroup_backend(void);

/* Make lease `id`'s cgroup with its program (nodes `allowed` open, every
 * other node in `devs_fd` refused), and move `pid` into it. `parent` is the
 * directory that holds the cgroupfs backend's lease cgroups (created when
 * missing) and, for systemd, the cgroup2 mount point. On failure `why`
 * holds one line. The cgroup's path is returned in *ret_path (may be NULL). */
int isolate_lease_cgroup_create(IsolateCgroupBackend backend, const char *parent, int64_t id,
                                pid_t pid, int devs_fd, const PolicyFenceDev *allowed, size_t n,
                                char **ret_path, char *why, size_t why_len);

/* Remove lease `id`'s cgroupfs cgroup: 0 when gone (or never there),
 * -EBUSY while processes are still inside (try again later). The systemd
 * backend's scope goes away by itself when its last process exits. */
int isolate_lease_cgroup_remove(const char *parent, int64_t id);

/* Remove every lease cgroup under `parent` whose id `keep` does not claim
 * (after a restart). Returns how many are still there (busy). */
int isolate_lease_cgroups_sweep(const char *parent, bool (*keep)(int64_t id, void *userdata),
                                void *userdata);
