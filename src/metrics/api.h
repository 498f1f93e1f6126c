/* The dashboard's JSON API, built from a MetricsSource and the store:
 * /api/status, /api/usage?days=N and /api/history?gpu=UUID&hours=N.
 *
 * Read-only: nothing here changes the daemon or the store. Every answer is
 * bounded in size (a fixed number of recent violations and alerts, of
 * points per series), but what usage and history read grows with the
 * history kept (every lease is kept): the listener runs those two in the
 * store's read queue, off the event loop (metrics/http.c). */
#pragma once

#include <jansson.h>

#include "gpu/inventory.h"
#include "metrics/source.h"
#include "store/history-store.h"

#define API_RECENT_LIMIT 50       /* violations and alerts on /api/status */
#define API_RECENT_HOURS 24       /* ... detected or sent in the last day */
#define API_USAGE_DAYS_MAX 90
#define API_USAGE_DAYS_DEFAULT 7     /* /api/usage without days= */
#define API_HISTORY_HOURS_MAX 168
#define API_HISTORY_HOURS_DEFAULT 24 /* /api/history without hours= */
#define API_HISTORY_BUCKETS 288   /* points per series after averaging */

/* Parse a decimal count in [min, max] (no sign, no spaces, no leading
 * zeros beyond "0"). Returns 0 or -EINVAL. */
int api_parse_count(const char *text, unsigned min, unsigned max, unsigned *ret);

/* The `status` op's result plus "violations" (newest first) and "alerts"
 * (audit records alert.sent / alert.failed, newest first) of the last
 * API_RECENT_HOURS, at most API_RECENT_LIMIT each. */
int api_status(const MetricsSource *src, json_t **ret);

/* /api/usage and /api/history in three steps, so the query can run in the
 * store's read queue (store/read-queue.h) off the event loop:
 * api_read_prepare() on the loop (checks, the period, whether the device
 * exists), api_read() in the queue's thread on a reader (the query; the
 * history's points are averaged there too), api_read_json() on the loop
 * again (user names come from the source), then api_read_done(). */
typedef enum ApiReadKind {
        API_READ_USAGE,   /* count: days */
        API_READ_HISTORY, /* count: hours; uuid */
} ApiReadKind;

typedef struct ApiRead {
        ApiReadKind kind;
        unsigned count;
        char uuid[GPU_UUID_MAX];
        uint64_t since_usec, until_usec;
        /* api_read()'s answer */
        HistoryUsage *rows;
        size_t n_rows;
        HistoryTotals totals;
        json_t *points;
} ApiRead;

/* 0, -EINVAL (no uuid, or too long), -ENOENT (not in the latest snapshot). */
int api_read_prepare(const MetricsSource *src, ApiReadKind kind, unsigned count, const char *uuid,
                     ApiRead *ret);
/* In any thread, on a store no other thread uses now. 0 or -errno. */
int api_read(Store *reader, ApiRead *q);
int api_read_json(const MetricsSource *src, ApiRead *q, json_t **ret);
void api_read_done(ApiRead *q);

/* Per-user usage over the last `days` days: {"days", "since", "until",
 * "users": [{"uid", "user", "leased_device_hours", "busy_device_hours",
 * "idle_share", "memory_gib_hours", "leases", "violations"}], "totals"}. */
int api_usage(const MetricsSource *src, unsigned days, json_t **ret);
/* api_usage() and api_history() run the three steps at once, on
 * source->store (the HTTP listener queues them instead). */

/* The series of device `uuid` (a GPU or MIG uuid) over the last `hours`
 * hours averaged into at most API_HISTORY_BUCKETS points: {"uuid", "hours",
 * "points": [{"t", "util", "memory_used_bytes", "holder"}]} with util null
 * when unknown. -ENOENT when the device is not in the latest snapshot. */
int api_history(const MetricsSource *src, const char *uuid, unsigned hours, json_t **ret);
