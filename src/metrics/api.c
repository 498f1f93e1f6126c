/* The dashboard's JSON API; see api.h.
 *
 * Everything comes from a MetricsSource (metrics/source.h) and the store's
 * queries; names are resolved with source->user_name (the daemon's memo),
 * times are seconds since the epoch as JSON reals, as in the `status` op. */
#include "metrics/api.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/time-util.h"
#include "proto/json-text.h"
#include "store/audit-store.h"
#include "store/history-store.h"
#include "store/store.h"
#include "store/violation-store.h"

/* An alert's detail larger than this is shown as null, not parsed. */
#define API_DETAIL_MAX 4096
/* Points read from the store for one series before averaging: a week of
 * raw samples every 2 s is 302400; past history.raw_hours the store has
 * minute rows, so in practice far fewer come back. */
#define API_HISTORY_READ_MAX 400000

#define GIB (1024.0 * 1024.0 * 1024.0)

int api_parse_count(const char *text, unsigned min, unsigned max, unsigned *ret)
{
        unsigned long v = 0;

        if (!text || !*text || strlen(text) > 10 || (text[0] == '0' && text[1]))
                return -EINVAL;
        for (const char *p = text; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned long)(*p - '0');
        }
        if (v < min || v > max)
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}

static json_t *seconds(uint64_t usec)
{
        return usec ? json_real((double)usec / USEC_PER_SEC) : json_null();
}

static json_t *recent_violations(const MetricsSource *src, uint64_t since)
{
        StoredViolation *v = NULL;
        size_t n = 0;
        json_t *a;

        if (store_violations_list(src->store, since, API_RECENT_LIMIT, &v, &n) < 0)
                return NULL;
        a = json_array();
        for (size_t i = 0; a && i < n; i++)
                if (json_array_append_new(a, src->violation_json(src->userdata, &v[i])) < 0) {
                        json_decref(a);
                        a = NULL;
                }
        stored_violations_free(v, n);
        return a;
}

static json_t *alert_json(const StoredAlert *x)
{
        json_t *parsed = NULL;

        if (x->detail && strlen(x->detail) <= API_DETAIL_MAX)
                parsed = json_loads(x->detail, JSON_REJECT_DUPLICATES, NULL);
        return json_pack("{s:o, s:o, s:o, s:o}", "at", seconds(x->at_usec), "action",
                         json_text(x->action), "key", json_text(x->subject), "detail",
                         parsed ? parsed : json_null());
}

/* The alerts delivered or given up on since `since`, newest first. */
static json_t *recent_alerts(const MetricsSource *src, uint64_t since)
{
        StoredAlert *x = NULL;
        size_t n = 0;
        json_t *a;

        if (store_alerts_recent(src->store, since, API_RECENT_LIMIT, &x, &n) < 0)
                return NULL;
        a = json_array();
        for (size_t i = 0; a && i < n; i++)
                if (json_array_append_new(a, alert_json(&x[i])) < 0) {
                        json_decref(a);
                        a = NULL;
                }
        stored_alerts_free(x, n);
        return a;
}

int api_status(const MetricsSource *src, json_t **ret)
{
        uint64_t since = now_usec(CLOCK_REALTIME) - API_RECENT_HOURS * 3600 * USEC_PER_SEC;
        json_t *o, *violations, *alerts;
        int r;

        r = src->status(src->userdata, &o);
        if (r < 0)
                return r;
        violations = recent_violations(src, since);
        alerts = recent_alerts(src, since);
        /* json_object_set() takes its own reference, so both are dropped
         * here whatever happened. */
        r = violations && alerts && json_object_set(o, "violations", violations) >= 0 &&
                    json_object_set(o, "alerts", alerts) >= 0
                ? 0
                : -EIO;
        json_decref(violations);
        json_decref(alerts);
        if (r < 0) {
                json_decref(o);
                return r;
        }
        *ret = o;
        return 0;
}

static json_t *usage_json(const MetricsSource *src, const HistoryUsage *u)
{
        return json_pack("{s:I, s:o, s:f, s:f, s:f, s:f, s:I, s:I, s:f, s:f}", "uid",
                         (json_int_t)u->uid,
                         "user", json_text(u->uid >= 0 ? src->user_name(src->userdata, (uid_t)u->uid) : NULL),
                         "leased_device_hours", u->leased_device_sec / 3600.0,
                         "busy_device_hours", u->busy_device_sec / 3600.0, "idle_share",
                         u->idle_share, "memory_gib_hours", u->memory_byte_sec / GIB / 3600.0,
                         "leases", (json_int_t)u->leases, "violations",
                         (json_int_t)u->violations, "shared_device_hours",
                         u->shared_device_sec / 3600.0, "shared_budget_gib",
                         u->shared_device_sec > 0
                                 ? u->shared_budget_byte_sec / u->shared_device_sec / GIB
                                 : 0.0);
}

static int usage_read(Store *store, ApiRead *q)
{
        return store_history_usage(store, q->since_usec, q->until_usec, NULL, &q->rows, &q->n_rows,
                                   &q->totals);
}

static int usage_json_all(const MetricsSource *src, const ApiRead *q, json_t **ret)
{
        const HistoryTotals *t = &q->totals;
        json_t *users, *o;

        users = json_array();
        if (!users)
                return -ENOMEM;
        for (size_t i = 0; i < q->n_rows; i++)
                if (json_array_append_new(users, usage_json(src, &q->rows[i])) < 0) {
                        json_decref(users);
                        return -ENOMEM;
                }
        o = json_pack("{s:I, s:o, s:o, s:o, s:{s:f, s:f, s:f, s:f, s:I, s:f}}", "days",
                      (json_int_t)q->count, "since", seconds(q->since_usec), "until",
                      seconds(q->until_usec), "users", users, "totals", "leased_device_hours",
                      t->leased_device_sec / 3600.0, "busy_device_hours",
                      t->busy_device_sec / 3600.0, "idle_leased_device_hours",
                      t->idle_leased_device_sec / 3600.0, "unleased_busy_device_hours",
                      t->unleased_busy_device_sec / 3600.0, "violations",
                      (json_int_t)t->violations, "shared_device_hours",
                      t->shared_device_sec / 3600.0);
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}

static bool device_known(const MetricsSource *src, const char *uuid)
{
        const GpuSnapshot *s = src->snapshot(src->userdata);

        for (size_t i = 0; s && i < s->n_gpus; i++) {
                if (strcmp(s->gpus[i].uuid, uuid) == 0)
                        return true;
                for (size_t j = 0; j < s->gpus[i].n_instances; j++)
                        if (strcmp(s->gpus[i].instances[j].uuid, uuid) == 0)
                                return true;
        }
        return false;
}

/* Average points [from, to) into one: util over the points that know it,
 * the holder of the last point. */
static json_t *bucket_json(const HistoryPoint *p, size_t from, size_t to)
{
        double util = 0, memory = 0;
        size_t n_util = 0;

        for (size_t i = from; i < to; i++) {
                if (p[i].util_percent >= 0) {
                        util += p[i].util_percent;
                        n_util++;
                }
                memory += (double)p[i].memory_used_bytes;
        }
        return json_pack("{s:o, s:o, s:I, s:I}", "t", seconds(p[to - 1].ts_usec), "util",
                         n_util ? json_real(util / (double)n_util) : json_null(),
                         "memory_used_bytes", (json_int_t)(memory / (double)(to - from)),
                         "holder", (json_int_t)p[to - 1].holder_uid);
}

/* The series, averaged: built in the thread (no names in it). */
static int history_read(Store *store, ApiRead *q)
{
        _cleanup_free_ HistoryPoint *p = NULL;
        size_t n = 0, per;
        json_t *points;
        int r;

        r = store_history_series(store, q->uuid, q->since_usec, API_HISTORY_READ_MAX, &p, &n);
        if (r < 0)
                return r;
        points = json_array();
        if (!points)
                return -ENOMEM;
        per = (n + API_HISTORY_BUCKETS - 1) / API_HISTORY_BUCKETS;
        for (size_t i = 0; i < n; i += per)
                if (json_array_append_new(points, bucket_json(p, i, MIN(i + per, n))) < 0) {
                        json_decref(points);
                        return -ENOMEM;
                }
        q->points = points;
        return 0;
}

int api_read_prepare(const MetricsSource *src, ApiReadKind kind, unsigned count, const char *uuid,
                     ApiRead *ret)
{
        uint64_t now = now_usec(CLOCK_REALTIME);

        *ret = (ApiRead){.kind = kind, .count = count, .until_usec = now};
        if (kind == API_READ_USAGE) {
                ret->since_usec = now - (uint64_t)count * 86400 * USEC_PER_SEC;
                return 0;
        }
        if (!uuid || strlen(uuid) >= sizeof ret->uuid)
                return -EINVAL;
        if (!device_known(src, uuid))
                return -ENOENT;
        strcpy(ret->uuid, uuid);
        ret->since_usec = now - (uint64_t)count * 3600 * USEC_PER_SEC;
        return 0;
}

int api_read(Store *reader, ApiRead *q)
{
        return q->kind == API_READ_USAGE ? usage_read(reader, q) : history_read(reader, q);
}

int api_read_json(const MetricsSource *src, ApiRead *q, json_t **ret)
{
        json_t *o;

        if (q->kind == API_READ_USAGE)
                return usage_json_all(src, q, ret);
        o = json_pack("{s:s, s:I, s:O}", "uuid", q->uuid, "hours", (json_int_t)q->count, "points",
                      q->points);
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}

void api_read_done(ApiRead *q)
{
        free(q->rows);
        q->rows = NULL;
        q->n_rows = 0;
        json_decref(q->points);
        q->points = NULL;
}

/* Prepare, read on the loop's own store, answer: for the unit tests and
 * anything without a read queue. */
static int api_read_now(const MetricsSource *src, ApiReadKind kind, unsigned count,
                        const char *uuid, json_t **ret)
{
        ApiRead q;
        int r;

        r = api_read_prepare(src, kind, count, uuid, &q);
        if (r >= 0)
                r = api_read(src->store, &q);
        if (r >= 0)
                r = api_read_json(src, &q, ret);
        api_read_done(&q);
        return r;
}

int api_usage(const MetricsSource *src, unsigned days, json_t **ret)
{
        return api_read_now(src, API_READ_USAGE, days, NULL, ret);
}

int api_history(const MetricsSource *src, const char *uuid, unsigned hours, json_t **ret)
{
        return api_read_now(src, API_READ_HISTORY, hours, uuid, ret);
}
