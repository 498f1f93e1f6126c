/* Enforcement: processes on devices their owner did not lease.
 *
 * After every sampler tick the daemon finds the violations in the new
 * snapshot (policy/violations.c, pure), opens a record for each new one and
 * tells its owner (terminal message, alert), and in `enforce` mode sends
 * SIGTERM after enforcement.grace and SIGKILL after kill_timeout, through
 * pidfds checked against the start time and uid seen at detection
 * (enforce/signal.c). A process still there after SIGKILL is reported to
 * admins once and left alone. Every step is written to the store before it
 * is taken, so a restarted daemon resumes each violation where it was and
 * never sends a signal twice. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/violation-store.h"

typedef struct Daemon Daemon;

typedef struct TrackedViolation {
        StoredViolation rec; /* wall times, for the store and display */
        /* The same steps on the boot clock (daemon.h DaemonClock): the grace
         * and kill timeout are measured on these, so a wall-clock step
         * neither shortens nor stretches them. Re-based once at start. */
        uint64_t detected_boot, term_boot, kill_boot;
        bool seen; /* still reported by NVML in this tick */
        struct TrackedViolation *next;
} TrackedViolation;

typedef struct EnforcementState {
        TrackedViolation *tracked; /* open violations, oldest first */
        size_t n_tracked;
        uint64_t signals_sent; /* SIGTERM and SIGKILL since start, for metrics */
        uint64_t violations_opened;
        /* enforcement.exempt.users resolved to uids, at most every
         * ENFORCEMENT_EXEMPT_TTL_USEC: NSS reads /etc/passwd per name, which
         * was most of the per-tick cost of enforcement. */
        uid_t exempt_uids[64];
        size_t n_exempt_uids;
        uint64_t exempt_resolved_usec; /* CLOCK_MONOTONIC; 0 = never */
} EnforcementState;

#define ENFORCEMENT_EXEMPT_TTL_USEC (60 * UINT64_C(1000000))

/* Forget the resolved exemptions (the config was reloaded). */
void enforcement_config_changed(EnforcementState *s);

/* Load the open violations from the store. Returns 0 or -errno. */
int enforcement_init(Daemon *d);
void enforcement_done(EnforcementState *s);

/* Act on the latest snapshot (called after every sampler tick). */
void enforcement_tick(Daemon *d);

/* The open violation of process (pid, start_time) on `device_uuid`, or NULL. */
const TrackedViolation *enforcement_find(const Daemon *d, uint32_t pid, uint64_t start_time,
                                         const char *device_uuid);

/* The open violations, sorted for enforcement_index_find(): a status reply
 * looks up every process (4,096 of them against as many violations), where
 * enforcement_find() walks the whole list each time. A snapshot of the
 * list: valid until the next enforcement tick changes it, so build, use and
 * free it within one request. */
typedef struct EnforcementIndex {
        struct EnforcementIndexEntry *entries;
        size_t n;
} EnforcementIndex;

/* 0, or -ENOMEM with *ret untouched. */
int enforcement_index_build(const Daemon *d, EnforcementIndex *ret);
/* What enforcement_find() returns for the list the index was built from
 * (with duplicates, the first of them in list order). */
const TrackedViolation *enforcement_index_find(const EnforcementIndex *idx, uint32_t pid,
                                               uint64_t start_time, const char *device_uuid);
/* Accepts a zero-filled index. */
void enforcement_index_done(EnforcementIndex *idx);

/* JSON of a violation record (keys in docs/protocol.md). NULL on OOM. */
json_t *enforcement_violation_json(const Daemon *d, const StoredViolation *v);
/* The same for an open violation of the list, without looking it up by id
 * (a status reply shows thousands). */
json_t *enforcement_tracked_json(const Daemon *d, const TrackedViolation *t);
