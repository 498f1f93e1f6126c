/* Audit rows of refused requests, one per burst: a user who repeats a
 * refused request in a loop must not grow the audit by a row each time
 * (50,000 rows in 6 s were seen). A burst is a (uid, action) within
 * REFUSALS_BURST_USEC of its first refusal. The first refusal of each of
 * its first REFUSALS_REASONS reasons (what the caller was told) is
 * recorded at once; the same refusals after it are only counted, and when
 * the burst is over (or the daemon stops) one row per reason records how
 * many there were ({"reason": ..., "repeated": N, "since": ...}). Further
 * reasons in the same burst (a client varying its request in a loop) are
 * counted together, in one row that says so ({"reason": the last one's,
 * "repeated": N, "since": ..., "various": true}): a count never claims
 * a reason it did not have. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "basic/time-util.h"

typedef struct Daemon Daemon;

#define REFUSALS_BURST_USEC (60 * USEC_PER_SEC)
/* (uid, action) pairs followed at once; the oldest is flushed for a new one. */
#define REFUSALS_MAX 128
/* Reasons followed apart in one burst. */
#define REFUSALS_REASONS 4

typedef struct RefusalReason {
        char text[256];     /* what the caller was told */
        char subject[64];   /* of the latest refusal */
        uint64_t repeated;  /* refusals counted, not recorded, since the first */
} RefusalReason;

typedef struct RefusalBurst {
        uid_t uid;
        char action[48];
        uint64_t start_usec; /* CLOCK_MONOTONIC; 0 = slot free */
        uint64_t start_wall_usec;
        RefusalReason reasons[REFUSALS_REASONS];
        size_t n_reasons;
        RefusalReason various; /* the reasons beyond those: the last one's text */
} RefusalBurst;

typedef struct RefusalState {
        RefusalBurst bursts[REFUSALS_MAX];
} RefusalState;

/* Record (or count) the refusal of `action` on `subject` to `uid`. */
void refusals_audit(Daemon *d, uid_t uid, const char *action, const char *subject,
                    const char *reason);

/* Close the bursts that are over (all of them with `all`), writing their
 * count rows. Called every sampler tick, and with `all` at shutdown. */
void refusals_flush(Daemon *d, bool all);
