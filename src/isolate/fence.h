/* Strict mode's kernel fence: one BPF_PROG_TYPE_CGROUP_DEVICE program
 * attached (BPF_F_ALLOW_MULTI) to the fence cgroup, by default the root of
 * the cgroup2 hierarchy, so it runs for every open()/mknod() of a device
 * node by any process below it. It decides from four maps:
 *
 *   devs    (major, minor)       the guarded nodes; anything else is allowed
 *   exempt  uid                  users never denied (root is built in)
 *   allow   (uid, major, minor)  what each user's leases open
 *   denied  (uid, major, minor)  → u64 count of refused opens
 *
 * The uid is the opening task's real uid (bpf_get_current_uid_gid, the
 * kernel's current_uid()): a setuid helper still counts as its caller.
 *
 * The program and its maps are pinned in bpffs under the pin directory, and
 * the attachment belongs to the cgroup, not to us: a daemon that dies (even
 * kill -9) leaves the fence closed exactly as it was, and the next start
 * takes the pinned objects over without ever detaching. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "isolate/bpf.h"
#include "policy/fence.h"

#define FENCE_DEVS_MAX 8192
#define FENCE_ALLOW_MAX POLICY_FENCE_MAX_RULES
#define FENCE_EXEMPT_MAX 1024
#define FENCE_DENIED_MAX 16384
/* Bumped whenever the program's logic or a map's layout changes: a pinned
 * fence of another version is replaced (attach new, then detach old). */
#define FENCE_VERSION 1

typedef struct Fence Fence;

/* Open the fence whose objects are pinned under `pin_dir` (created, mode
 * 0700, inside a bpffs mount), or load a new one when none is pinned there.
 * Nothing is attached yet when it is new: fill the maps, then
 * fence_attach(). On failure `why` holds one line naming what is missing
 * (capability, cgroup2, bpffs, kernel support). *ret_taken_over tells
 * whether a pinned fence was found. */
int fence_open(const char *cgroup_path, const char *pin_dir, Fence **ret, bool *ret_taken_over,
               char *why, size_t why_len);

/* Attach to the fence cgroup unless attached already; then detach an older
 * pinned version if one was replaced. Returns 0 or -errno (`why` says). */
int fence_attach(Fence *f, char *why, size_t why_len);

/* Close our descriptors; the pinned program stays loaded and attached. */
void fence_close(Fence *f);

/* Make a map hold exactly the given sorted, duplicate-free entries: adds
 * first, then removes what is no longer wanted. Returns 0 or -errno. */
int fence_sync_guarded(Fence *f, const PolicyFenceDev *devs, size_t n);
int fence_sync_allow(Fence *f, const PolicyFenceRule *rules, size_t n);
int fence_sync_exempt(Fence *f, const uint32_t *uids, size_t n);

/* Add / remove one allow entry (the grant fast path). */
int fence_allow(Fence *f, const PolicyFenceRule *rule, bool allow);

/* Walk the refused-open counters. A negative return of `fn` stops it. */
typedef int (*fence_denied_fn)(const PolicyFenceRule *who, uint64_t count, void *userdata);
int fence_denied_foreach(Fence *f, fence_denied_fn fn, void *userdata);

/* The guarded-nodes map, for the per-lease programs (run cgroups). */
int fence_guarded_fd(const Fence *f);

/* Whether a fence is pinned under `pin_dir`. */
bool fence_is_pinned(const char *pin_dir);

/* Leave strict mode: detach the pinned program from `cgroup_path` and
 * remove the pins (and the directory). 0 when nothing was pinned. */
int fence_remove(const char *cgroup_path, const char *pin_dir, char *why, size_t why_len);

/* The programs, exposed for the tests and the benchmark. */
int fence_build_host(IsolateProg *p, int devs_fd, int exempt_fd, int allow_fd, int denied_fd);
/* A lease cgroup's program: guarded nodes other than `allowed` are refused,
 * whoever opens them (no uid: run cgroups hold one user's processes). */
int fence_build_lease(IsolateProg *p, int devs_fd, const PolicyFenceDev *allowed, size_t n);

/* Whether this kernel lets CGROUP_DEVICE programs call
 * bpf_get_current_uid_gid (every kernel with the program type does, 4.15+;
 * checked at start anyway). 1, 0, or -errno when nothing can be loaded. */
int fence_probe_uid_helper(char *why, size_t why_len);
