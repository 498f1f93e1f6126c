/* The dashboard's JSON API, built from a MetricsSource and the store:
 * /api/status, /api/usage?days=N and /api/history?gpu=UUID&hours=N.
 *
 * Read-only: nothing here changes the daemon or the store. Every answer is
 * bounded (a fixed number of recent violations and alerts, a fixed number of
 * points per series) so a request costs the same whatever the lab's age. */
#pragma once

#include <jansson.h>

#include "metrics/source.h"

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

/* Per-user usage over the last `days` days: {"days", "since", "until",
 * "users": [{"uid", "user", "leased_device_hours", "busy_device_hours",
 * "idle_share", "memory_gib_hours", "leases", "violations"}], "totals"}. */
int api_usage(const MetricsSource *src, unsigned days, json_t **ret);

/* The series of device `uuid` (a GPU or MIG uuid) over the last `hours`
 * hours averaged into at most API_HISTORY_BUCKETS points: {"uuid", "hours",
 * "points": [{"t", "util", "memory_used_bytes", "holder"}]} with util null
 * when unknown. -ENOENT when the device is not in the latest snapshot. */
int api_history(const MetricsSource *src, const char *uuid, unsigned hours, json_t **ret);
