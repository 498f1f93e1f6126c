/* Rate limits for repeated events (log lines, audit rows), after systemd's
 * log_ratelimit: at most `burst` events per `interval`; the rest of the
 * interval is suppressed and counted, and the first event after it can say
 * how many were left out. Pure: the caller passes the time (CLOCK_MONOTONIC). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct RateLimit {
        uint64_t interval_usec;
        unsigned burst;
        uint64_t begin_usec; /* start of the current interval; 0 = none yet */
        unsigned num;        /* events let through in this interval */
        uint64_t suppressed; /* events refused since the last one let through */
} RateLimit;

#define RATELIMIT_INIT(interval, b) ((RateLimit){.interval_usec = (interval), .burst = (b)})

/* Whether one more event may go out at `now`. When it may and events were
 * suppressed before it, *ret_suppressed (may be NULL) says how many, and the
 * count starts again; otherwise *ret_suppressed is 0. */
bool ratelimit_below(RateLimit *rl, uint64_t now, uint64_t *ret_suppressed);
