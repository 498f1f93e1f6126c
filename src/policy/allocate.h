/* The allocator: a pure function from (devices, queue, limits) to decisions.
 *
 * It touches no clock, store, NVML or socket, so it can be tested
 * exhaustively (tests/unit/policy). The daemon builds the inputs from the
 * latest snapshot, the active leases and the config, and carries out the
 * decisions (store transactions, replies).
 *
 * Rules (documented for users in gpukeeper(1), "QUEUE"):
 *  - A device is a whole GPU not in MIG mode, or one MIG instance. It can be
 *    granted when it is free (no active lease), healthy, not drained, and
 *    processes without a lease hold at most limits->unleased_memory_max bytes
 *    on it.
 *  - Requests are served in queue order (FIFO). A request that cannot start
 *    now keeps its place; a later request may start before it only with
 *    devices that no earlier waiting request could use ("backfill never
 *    delays an earlier request"), so no request is ever starved by later ones.
 *  - A request whose user would exceed max_devices with it waits for that
 *    user's own releases; it reserves nothing and blocks nobody.
 *  - A device named in a request whose only processes without a lease are
 *    the requester's own may be granted to that requester whatever memory
 *    they hold (`gpukeeper lease adopt`, or leasing the GPU one's own job
 *    already runs on); to anyone else unleased_memory_max applies.
 *  - Among free devices, those nobody else uses come first: no process
 *    without a lease on it and utilisation below POLICY_BUSY_UTILIZATION
 *    (or unknown), then devices that are only busy, then devices where
 *    processes without a lease run (a root job at 87 %%). Within the same
 *    rank the least recently released is preferred (wear levelling); a
 *    multi-device request prefers devices on one NUMA node and then close
 *    PCI bus ids. Whole GPUs that are not shareable come before shareable
 *    ones of the same rank, so shareable GPUs stay free for shared leases.
 *  - Shared leases (share_bytes > 0, see policy/share.h): a slice of one
 *    shareable GPU with a memory budget. A GPU holds either one whole-GPU
 *    lease or any number of shared leases whose budgets add up to at most
 *    its share_capacity_bytes (its memory minus sharing.reserve); the two
 *    kinds exclude each other. A shared request goes to the GPU where it
 *    fits best (the least capacity left over after it), so shared leases
 *    pack onto few GPUs and the others stay whole. A shared lease counts as
 *    one device towards max_devices, and waits in the same FIFO queue. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define POLICY_MAX_DEVICES 512  /* GPUs + MIG instances the allocator accepts */
#define POLICY_MAX_QUEUE 4096   /* waiting requests */
#define POLICY_MAX_REQUEST_ITEMS 64 /* named devices or MIG profile items in one request */
#define POLICY_PROFILE_MAX 32
#define POLICY_BUSY_UTILIZATION 10 /* percent: a free device at or above this is "busy" */

typedef struct PolicyDevice {
        const char *uuid;        /* "GPU-…" or "MIG-…" */
        const char *parent_uuid; /* the GPU of a MIG instance; == uuid for a whole GPU */
        const char *pci_bus_id;  /* the GPU's, for closeness; may be "" */
        const char *profile;     /* MIG profile ("3g.40gb"), NULL for a whole GPU */
        int numa_node;           /* -1 when unknown */
        bool healthy;
        bool drained;
        bool leased;                    /* an active lease holds it */
        uint64_t unleased_memory_bytes; /* held by processes whose owner has no lease on it */
        unsigned unleased_processes;    /* processes whose owner has no lease on it */
        bool unleased_by_one;           /* all of those belong to one user, unleased_uid */
        uid_t unleased_uid;
        int utilization_pct;            /* the device's utilisation, -1 when unknown */
        uint64_t last_released_usec;    /* 0 = never leased */
        /* Sharing (whole GPUs only; 0 on MIG instances). */
        uint64_t share_capacity_bytes;  /* budgets shared leases may hold on it in all;
                                         * 0: not shareable */
        uint64_t shared_budget_bytes;   /* budgets of its active shared leases */
        unsigned shared_leases;         /* its active shared leases (leased stays false) */
} PolicyDevice;

typedef struct PolicyMigItem {
        char profile[POLICY_PROFILE_MAX];
        unsigned count;
} PolicyMigItem;

/* What one request asks for. Exactly one of the forms is used: n_gpus
 * whole GPUs, or the named devices, or MIG items, or (share_bytes > 0, with
 * n_gpus 0 or 1 and nothing named) a slice of one shareable GPU. */
typedef struct PolicyRequest {
        uint64_t id;
        uid_t uid;
        unsigned n_gpus;
        const char *const *named; /* device uuids (indices already resolved) */
        size_t n_named;
        const PolicyMigItem *mig;
        size_t n_mig;
        uint64_t share_bytes; /* > 0: a shared lease with this memory budget */
} PolicyRequest;

typedef struct PolicyUserUsage {
        uid_t uid;
        unsigned held;        /* devices this user holds now */
        unsigned max_devices; /* the user's cap (from config, by group); 0 = no cap */
} PolicyUserUsage;

typedef struct PolicyLimits {
        uint64_t unleased_memory_max;
} PolicyLimits;

typedef enum PolicyVerdict {
        POLICY_GRANT,      /* devices chosen: see PolicyDecision.devices */
        POLICY_WAIT,       /* keeps its place; `reason` says what it waits for */
        POLICY_IMPOSSIBLE, /* can never be satisfied as asked; `reason` says why */
} PolicyVerdict;

typedef struct PolicyDecision {
        PolicyVerdict verdict;
        size_t *devices; /* GRANT: indices into the device array (malloc'd), n = request size;
                          * named: in the order named; MIG: item by item; else NULL */
        size_t n_devices;
        char reason[160]; /* WAIT / IMPOSSIBLE: one sentence for the user; GRANT: "" */
} PolicyDecision;

/* Check a request against the devices that exist and the user's cap,
 * before queueing it. Returns 0 when it could be satisfied some day, or
 * POLICY_IMPOSSIBLE with a reason in ret_reason ("asks for 9 GPUs, this
 * machine has 8"; "above your limit of 2 devices"; "no MIG instance of
 * profile 7g.80gb"; "unknown device GPU-…"). Devices count in any state
 * (drained, unhealthy, leased ones may come back). Only usage->max_devices
 * is used, not held; usage may be NULL for no cap. ret_reason is written
 * only for POLICY_IMPOSSIBLE. -EINVAL: NULL req or ret_reason, reason_len
 * 0, more than POLICY_MAX_DEVICES devices, a device with a NULL string or a
 * duplicate uuid, a request with a NULL array or name for a non-zero count,
 * or a MIG profile not NUL-terminated within POLICY_PROFILE_MAX. */
int policy_check_request(const PolicyDevice *devices, size_t n_devices, const PolicyRequest *req,
                         const PolicyUserUsage *usage, char *ret_reason, size_t reason_len);

/* Decide, in queue order, which requests start now. `usage` holds one entry
 * per uid in the queue (held counts are updated as grants are made within
 * this call, on a private copy). `ret` must have n_queue entries; each gets
 * a verdict. Devices granted to an earlier request are not offered to a
 * later one. Returns 0 or -ENOMEM / -EINVAL (n_devices or n_queue above the
 * limits). Free the decisions with policy_decisions_free().
 *
 * A queued request that has become impossible (a GPU went away) gets
 * POLICY_IMPOSSIBLE and blocks nobody. -EINVAL also for: NULL limits, NULL
 * arrays with non-zero counts, more than POLICY_MAX_QUEUE usage entries, a
 * duplicate uid in usage, a queued uid without one, and the malformed
 * devices and requests policy_check_request() refuses; then nothing is
 * written to ret. On -ENOMEM the decisions made so far are freed and the
 * later entries are not written. */
int policy_allocate(const PolicyDevice *devices, size_t n_devices, const PolicyRequest *queue,
                    size_t n_queue, const PolicyUserUsage *usage, size_t n_usage,
                    const PolicyLimits *limits, PolicyDecision *ret);

void policy_decisions_free(PolicyDecision *d, size_t n);
