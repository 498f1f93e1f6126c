/* Idle reclaim: pure decisions on leases whose devices sit unused.
 *
 * The daemon keeps a PolicyIdleLease per active lease. Every sampler tick it
 * asks policy_idle_activity what the lease's devices did in the snapshot,
 * records that with policy_idle_note, asks policy_idle_decide what to do,
 * carries the decision out (alert, terminal message, release) and sets or
 * clears warned_usec / flagged accordingly. policy_idle_account adds the
 * tick's idle device time for the usage reports. Time is always passed in
 * (CLOCK_REALTIME microseconds, the clock leases are stored with), so every
 * transition is table-tested (tests/unit/policy).
 *
 * What counts as use, per device of the latest snapshot:
 *  - busy: any process on it (a MIG instance: on that instance) or a known
 *    non-zero utilisation. Manual leases are released after release_after
 *    without any busy tick.
 *  - utilised: a known non-zero utilisation, or a process on it while
 *    utilisation is unknown (MIG instances never report it: we do not flag
 *    what we cannot measure). Run leases are flagged after flag_after
 *    without any utilised tick.
 *  - A device missing from the snapshot, or a snapshot without NVML, counts
 *    as busy and utilised: no information never reclaims anything. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gpu/inventory.h"

typedef enum PolicyIdleKind {
        POLICY_IDLE_MANUAL, /* `lease acquire`: released when idle */
        POLICY_IDLE_RUN,    /* `run`: flagged when idle, ends with its command */
} PolicyIdleKind;

typedef struct PolicyIdleLease {
        PolicyIdleKind kind;
        uint64_t created_usec;
        uint64_t last_busy_usec;     /* last busy tick; 0 = none yet (idle since created) */
        uint64_t last_utilized_usec; /* last utilised tick; 0 = none yet */
        uint64_t warned_usec;        /* when the idle warning went out; 0 = not warned */
        bool flagged;                /* the idle flag is raised */
} PolicyIdleLease;

/* The idle settings (ConfigIdle's times). */
typedef struct PolicyIdleConfig {
        uint64_t release_after_usec; /* > 0 */
        uint64_t warn_before_usec;   /* ≤ release_after; 0 = release without warning */
        uint64_t flag_after_usec;    /* 0 = never flag */
} PolicyIdleConfig;

typedef enum PolicyIdleAction {
        POLICY_IDLE_NONE,
        POLICY_IDLE_WARN,       /* manual: warn the holder; then set warned_usec = now */
        POLICY_IDLE_WARN_CLEAR, /* manual: warned, but used since; clear warned_usec */
        POLICY_IDLE_RELEASE,    /* manual: release the lease */
        POLICY_IDLE_FLAG,       /* run: raise the idle flag; then set flagged */
        POLICY_IDLE_FLAG_CLEAR, /* run: flagged, but utilised since; clear flagged */
} PolicyIdleAction;

typedef struct PolicyIdleActivity {
        bool busy;
        bool utilized;
} PolicyIdleActivity;

/* What the devices `uuids[0..n)` (GPU or MIG uuids) of one lease did in
 * `snap`: busy / utilised when any of them was (rules above). */
PolicyIdleActivity policy_idle_activity(const GpuSnapshot *snap, const char *const *uuids,
                                        size_t n);

/* Record one tick's activity observed at `now`. */
void policy_idle_note(PolicyIdleLease *l, PolicyIdleActivity a, uint64_t now);

/* How long the lease has been idle (manual: not busy; run: not utilised)
 * at `now`: from the last such tick, or from creation when there was none;
 * 0 when that lies in the future (clock stepped back). */
uint64_t policy_idle_for(const PolicyIdleLease *l, uint64_t now);

/* The decision for one lease at `now`. Manual leases:
 *  - RELEASE when idle ≥ release_after and, unless warn_before is 0, the
 *    warning went out at least warn_before ago: the release never comes
 *    earlier than the warning announced, even when ticks were late or the
 *    daemon restarted in between (then it warns first);
 *  - WARN when not warned and idle ≥ release_after - warn_before;
 *  - WARN_CLEAR when warned and idle < release_after - warn_before.
 * Run leases: FLAG when not flagged and idle ≥ flag_after (flag_after > 0);
 * FLAG_CLEAR when flagged and idle < flag_after (or flagging is off). */
PolicyIdleAction policy_idle_decide(const PolicyIdleLease *l, const PolicyIdleConfig *c,
                                    uint64_t now);

/* Idle accounting for one tick of `elapsed_usec` (the time since the
 * previous tick, capped at `max_elapsed_usec` so a suspended daemon or a
 * clock jump does not credit hours nobody observed): for every device of
 * `uuids[0..n)` that was neither busy nor missing in `snap`, adds the
 * elapsed time to idle_usec[i]. Returns the total added (device-µs). */
uint64_t policy_idle_account(const GpuSnapshot *snap, const char *const *uuids, size_t n,
                             uint64_t elapsed_usec, uint64_t max_elapsed_usec, uint64_t *idle_usec);

const char *policy_idle_action_to_string(PolicyIdleAction a);
