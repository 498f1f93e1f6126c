/* Alert delivery: turns "condition raised / cleared" calls from the daemon into
 * messages for the configured sinks (generic webhook, DingTalk robot, Slack
 * incoming webhook, email over SMTP) and delivers them through libcurl's multi
 * interface driven by the daemon's sd-event loop, so nothing here ever blocks
 * the loop.
 *
 * Per sink, messages wait in a bounded FIFO queue and are sent one at a time
 * (so a receiver sees them in order); a failed attempt is retried with
 * exponential backoff, and after the last attempt the message is given up.
 * A sink that never answers only holds up its own queue, never other sinks.
 * Every attempt's outcome is handed to the daemon's record callback (the store
 * keeps them); this module does not log. URLs, secrets and passwords never
 * appear in error texts (DingTalk and Slack URLs carry tokens): outcomes name
 * the sink only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <systemd/sd-event.h>

#include "basic/macro.h"
#include "config/alerts.h"

typedef struct Alerts Alerts;

/* Limits on what the daemon may hand in (longer strings are cut, never refused). */
#define ALERTS_KEY_MAX 256
#define ALERTS_SUBJECT_MAX 256
#define ALERTS_TEXT_MAX 8192
/* Conditions remembered for repeat_after / recovery; when full, the condition
 * raised longest ago is forgotten (its recovery is then not sent). */
#define ALERTS_CONDITIONS_MAX 4096

/* One delivery outcome, handed to the record callback after every attempt and
 * when a queued message is dropped. All pointers are borrowed for the call. */
typedef struct AlertsRecord {
        const char *sink;       /* the sink's configured name */
        ConfigAlertEvent event;
        const char *key;        /* the condition key given to alerts_raise/clear */
        bool recovery;          /* the message announces that the condition cleared */
        bool ok;                /* delivered (2xx and, for DingTalk/Slack, an accepting body) */
        bool final;             /* no further attempt follows for this message */
        unsigned attempt;       /* 1-based; 0 for a message dropped from a full queue before any attempt */
        const char *error;      /* NULL when ok; otherwise a short text without URLs or secrets */
} AlertsRecord;

typedef void (*AlertsRecordFunc)(const AlertsRecord *record, void *userdata);

/* Delivery tuning. alerts_new(…, NULL, …) uses ALERTS_TUNING_DEFAULT; tests pass
 * shorter backoffs and smaller queues. */
typedef struct AlertsTuning {
        uint64_t backoff_base_usec; /* delay before the 2nd attempt; doubles after each failure */
        uint64_t backoff_max_usec;  /* cap of that delay */
        unsigned max_attempts;      /* attempts per message, ≥ 1 */
        size_t queue_max;           /* pending messages per sink (the one in flight included), ≥ 1 */
} AlertsTuning;

#define ALERTS_TUNING_DEFAULT                                                                      \
        ((AlertsTuning){ .backoff_base_usec = UINT64_C(1000000),                                   \
                         .backoff_max_usec = UINT64_C(300000000),                                  \
                         .max_attempts = 8,                                                        \
                         .queue_max = 1000 })

/* Counters of one sink, for metrics. Counters of a sink survive
 * alerts_reconfigure() as long as a sink of the same name stays configured. */
typedef struct AlertsSinkStats {
        const char *name;       /* borrowed; valid until the next alerts_reconfigure()/alerts_free() */
        ConfigAlertSinkType type;
        uint64_t sent;          /* messages delivered */
        uint64_t failed;        /* messages given up after their last attempt */
        uint64_t attempts_failed; /* failed attempts, retried ones included */
        uint64_t dropped;       /* messages dropped from a full queue (the oldest waiting one goes) */
        size_t queued;          /* messages waiting or in flight now */
} AlertsSinkStats;

/* Create the delivery engine on `event` (referenced, not owned) for the sinks in
 * `config` (deep-copied: the caller may free its Config afterwards). `hostname`
 * names this machine in every message. `record` (may be NULL) is called from the
 * event loop after every attempt. `tuning` may be NULL for the defaults.
 * Returns 0 or -EINVAL (bad tuning, sink without the fields its type needs),
 * -ENOMEM, -EIO (libcurl could not be initialised). */
int alerts_new(sd_event *event, const ConfigAlerts *config, const char *hostname,
               const AlertsTuning *tuning, AlertsRecordFunc record, void *userdata,
               Alerts **ret_alerts);

/* Abort every transfer, drop every queued message (not reported) and free. NULL is fine. */
Alerts *alerts_free(Alerts *alerts);
DEFINE_TRIVIAL_CLEANUP_FUNC(Alerts *, alerts_free)

/* The clock repeat_after is measured on: microseconds that only move
 * forward (default CLOCK_MONOTONIC). The daemon passes its boot clock, which
 * its test clock (debug.clock) can advance. Set it before the first
 * alerts_raise(). */
typedef uint64_t (*AlertsClockFunc)(void *userdata);
void alerts_set_clock(Alerts *alerts, AlertsClockFunc clock, void *userdata);

/* Report that the condition (event, key) holds. `subject` is a one-line summary,
 * `text` the human explanation, `details` (may be NULL, borrowed) extra facts for
 * the webhook body and the email. Unless the same (event, key) was sent less
 * than repeat_after ago, a message is queued for every sink whose filter has
 * `event`. The condition is remembered (even when no sink wants the event) so
 * that alerts_clear() can announce the recovery.
 * Returns the number of sinks the message was queued to (0 when suppressed by
 * repeat_after or when no sink wants it), or -ENOMEM. */
int alerts_raise(Alerts *alerts, ConfigAlertEvent event, const char *key, const char *subject,
                 const char *text, json_t *details);

/* Report that the condition (event, key) no longer holds. If it had been raised,
 * a recovery message (the original subject, marked resolved, with `text`) goes
 * to every sink whose filter has `event`, and the condition is forgotten, so the
 * next alerts_raise() of it is sent at once. Returns the number of sinks queued
 * to, 0 when the condition was not raised, or -ENOMEM. */
int alerts_clear(Alerts *alerts, ConfigAlertEvent event, const char *key, const char *text);

/* Apply a reloaded configuration (SIGHUP). Sinks are matched by name: a kept sink
 * keeps its queue and counters and uses its new settings from its next attempt
 * on (a transfer in flight finishes with the old ones); a removed sink's
 * transfer is aborted and its queue dropped; new sinks start empty. Remembered
 * conditions are kept; repeat_after takes the new value. On failure (-EINVAL,
 * -ENOMEM) nothing changes. */
int alerts_reconfigure(Alerts *alerts, const ConfigAlerts *config);

/* Number of configured sinks, and the counters of the i-th one (in configuration order). */
size_t alerts_n_sinks(const Alerts *alerts);
int alerts_sink_stats(const Alerts *alerts, size_t i, AlertsSinkStats *ret_stats);

/* Whether any sink has a message waiting or in flight (tests and shutdown use it). */
bool alerts_busy(const Alerts *alerts);
