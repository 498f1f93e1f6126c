/* Strict mode in the daemon: keeps the kernel fence (src/isolate) equal to
 * the active leases, places `gpukeeper run` clients in their lease's
 * cgroup, and reports the fence in status and /metrics.
 *
 * At start, strict mode opens (or takes over) the pinned fence, fills its
 * maps from the leases the store restored, and attaches it; anything
 * missing (capability, cgroup2, bpffs, kernel support) refuses the start
 * with one line. Any other mode removes a fence a previous strict run left
 * behind. SIGHUP does not switch modes: that takes a restart. */
#pragma once

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "isolate/fence.h"
#include "isolate/lease-cgroup.h"
#include "policy/fence.h"
#include "store/lease-store.h"

typedef struct Daemon Daemon;
typedef struct Lease Lease;

#define STRICT_PENDING_MAX 4096

/* Where a leased device's nodes are, as last seen in a snapshot: a device
 * missing from one sample (NVML hiccup, GPU lost) keeps its fence open for
 * its lease holder instead of closing on every tick it is missing. */
typedef struct StrictKnownDevice {
        char uuid[LEASE_UUID_MAX];
        PolicyFenceLeased where; /* uid unused */
} StrictKnownDevice;
#define STRICT_KNOWN_MAX 1024

typedef struct StrictState {
        Fence *fence;                /* NULL unless strict mode is on */
        char cgroup[PATH_MAX];       /* where the fence is attached */
        char runs_dir[PATH_MAX];     /* cgroupfs parent of lease cgroups */
        char cgroup2_mount[PATH_MAX];
        IsolateCgroupBackend backend;
        uint32_t caps_major;         /* 0: no nvidia-caps major (no driver) */
        PolicyFenceMig *mig;
        size_t n_mig;
        uint64_t sync_usec;          /* duration of the last full sync */
        uint64_t syncs;
        int last_error;              /* of the last sync, 0 when it worked */
        int64_t *pending;            /* lease cgroups to remove once empty */
        size_t n_pending;
        StrictKnownDevice *known;    /* uuid → nodes, learned from snapshots */
        size_t n_known;
} StrictState;

/* Returns 0, or -errno having logged the one-line reason. */
int strict_start(Daemon *d);
void strict_done(StrictState *s);

/* Make the fence match the leases now (logged when it fails). */
void strict_sync(Daemon *d);
/* A lease was granted: open the fence for it (and give a run lease its
 * cgroup) before the client hears of the grant. */
void strict_lease_granted(Daemon *d, const Lease *l);
/* A lease is about to end: close the fence for it before the store records
 * the end (closing early is the safe side; a failed end resyncs). */
void strict_lease_ending(Daemon *d, const Lease *l);
/* A lease ended (already gone from d->leases). */
void strict_lease_ended(Daemon *d, int64_t id);
/* Every sampler tick: re-read the MIG table, resync, remove empty lease cgroups. */
void strict_tick(Daemon *d);

/* {"mode", "active", "cgroup", "denied_total", "denied": [{uid, user, device, count}]} */
json_t *strict_to_json(const Daemon *d);

/* A node's name for people: "/dev/nvidia1", "/dev/nvidia-caps/nvidia-cap12",
 * else "major:minor". */
void strict_device_name(const Daemon *d, const PolicyFenceRule *who, char *buf, size_t len);

/* Visit each refused-open counter (for /metrics). */
int strict_denied_foreach(const Daemon *d, fence_denied_fn fn, void *userdata);
