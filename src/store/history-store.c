/* Usage history in SQLite; see history-store.h.
 *
 * Device uuids are kept once in history_devices and referred to by a small
 * integer, which keeps a raw row near 40 bytes: 90 days of 8 GPUs at a 2 s
 * interval stays well inside the database size budget. */
#include "store/history-store.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/parse.h"

/* Bound on the rows a report or series returns, against a corrupt store. */
#define HISTORY_MAX_USERS 65536
#define HISTORY_MAX_SERIES_ROWS (4U * 1024U * 1024U)

/* The id of a device in history_devices, adding it on first sight. */
static int device_id(Store *s, const char *uuid, const char *gpu_uuid, int64_t *ret)
{
        sqlite3_stmt *st = NULL;
        int r;

        r = store_exec(s,
                       "INSERT OR IGNORE INTO history_devices (device_uuid, gpu_uuid) "
                       "VALUES (?, ?)",
                       STORE_ARGS(STORE_TEXT(uuid), STORE_TEXT(gpu_uuid)));
        if (r < 0)
                return r;
        r = store_statement(s, "SELECT id FROM history_devices WHERE device_uuid = ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, uuid, -1, SQLITE_STATIC);
        r = sqlite3_step(st);
        if (r != SQLITE_ROW) {
                sqlite3_reset(st);
                return r == SQLITE_DONE ? -ENOENT : store_errno_from_sqlite(r);
        }
        *ret = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return 0;
}

/* Add one tick to the hour rows: one upsert per distinct holder. */
static int add_hours(Store *s, uint64_t ts_usec, uint64_t span_usec, const HistorySample *samples,
                     size_t n)
{
        for (size_t i = 0; i < n; i++) {
                uint64_t busy = 0, device_time = 0, sh_time = 0, sh_busy = 0;
                double mem = 0, sh_mem = 0, budget = 0;
                bool seen = false;
                int r;

                for (size_t j = 0; j < i && !seen; j++)
                        seen = MAX(samples[j].holder_uid, -1) == MAX(samples[i].holder_uid, -1);
                if (seen)
                        continue;
                for (size_t j = i; j < n; j++)
                        if (MAX(samples[j].holder_uid, -1) == MAX(samples[i].holder_uid, -1)) {
                                double m = (double)samples[j].memory_used_bytes *
                                           (double)span_usec * 1e-6;

                                device_time += span_usec;
                                busy += samples[j].busy ? span_usec : 0;
                                mem += m;
                                if (samples[j].share_bytes == 0)
                                        continue;
                                sh_time += span_usec;
                                sh_busy += samples[j].busy ? span_usec : 0;
                                sh_mem += m;
                                budget += (double)samples[j].share_bytes * (double)span_usec * 1e-6;
                        }
                r = store_exec(s,
                               "INSERT INTO history_hours (hour_usec, holder_uid, span_usec, "
                               "busy_usec, memory_byte_sec, shared_span_usec, shared_busy_usec, "
                               "shared_memory_byte_sec, budget_byte_sec) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                               "ON CONFLICT (hour_usec, holder_uid) DO UPDATE SET "
                               "span_usec = span_usec + excluded.span_usec, "
                               "busy_usec = busy_usec + excluded.busy_usec, "
                               "memory_byte_sec = memory_byte_sec + excluded.memory_byte_sec, "
                               "shared_span_usec = shared_span_usec + excluded.shared_span_usec, "
                               "shared_busy_usec = shared_busy_usec + excluded.shared_busy_usec, "
                               "shared_memory_byte_sec = shared_memory_byte_sec + "
                               "excluded.shared_memory_byte_sec, "
                               "budget_byte_sec = budget_byte_sec + excluded.budget_byte_sec",
                               STORE_ARGS(STORE_INT(ts_usec / USEC_PER_HOUR * USEC_PER_HOUR),
                                          STORE_INT(samples[i].holder_uid >= 0
                                                        ? samples[i].holder_uid
                                                        : -1),
                                          STORE_INT(device_time), STORE_INT(busy),
                                          STORE_DOUBLE(mem), STORE_INT(sh_time),
                                          STORE_INT(sh_busy), STORE_DOUBLE(sh_mem),
                                          STORE_DOUBLE(budget)));
                if (r < 0)
                        return r;
        }
        return 0;
}

int store_history_write(Store *s, uint64_t ts_usec, uint64_t span_usec, const HistorySample *samples,
                        size_t n)
{
        int r;

        if (n == 0)
                return 0;
        span_usec = MIN(span_usec, HISTORY_SAMPLE_MAX_USEC);
        r = store_begin(s);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                const HistorySample *x = &samples[i];
                int64_t id = 0;

                r = device_id(s, x->device_uuid, x->gpu_uuid, &id);
                if (r < 0)
                        goto finish;
                r = store_exec(
                    s,
                    "INSERT OR REPLACE INTO history_samples (ts_usec, device_id, span_usec, "
                    "util, busy, memory_used_bytes, power_mw, holder_uid, lease_id, share_bytes) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    STORE_ARGS(STORE_INT(ts_usec), STORE_INT(id), STORE_INT(span_usec),
                               x->util_percent >= 0 ? STORE_INT(MIN(x->util_percent, 100))
                                                    : STORE_NULL,
                               STORE_INT(x->busy), STORE_INT(x->memory_used_bytes),
                               x->power_mw > 0 ? STORE_INT(x->power_mw) : STORE_NULL,
                               x->holder_uid >= 0 ? STORE_INT(x->holder_uid) : STORE_NULL,
                               STORE_INT(x->holder_uid >= 0 ? MAX(x->lease_id, (int64_t)0) : 0),
                               STORE_INT(x->holder_uid >= 0 ? x->share_bytes : 0)));
                if (r < 0)
                        goto finish;
        }
        r = add_hours(s, ts_usec, span_usec, samples, n);
finish:
        return store_finish(s, r);
}

/* The smallest value of a one-column query, or -ENOENT on an empty table. */
static int query_min(Store *s, const char *sql, uint64_t *ret)
{
        sqlite3_stmt *st = NULL;
        int r;

        r = store_statement(s, sql, &st);
        if (r < 0)
                return r;
        r = sqlite3_step(st);
        if (r != SQLITE_ROW) {
                sqlite3_reset(st);
                return store_errno_from_sqlite(r);
        }
        if (sqlite3_column_type(st, 0) == SQLITE_NULL)
                r = -ENOENT;
        else {
                *ret = (uint64_t)sqlite3_column_int64(st, 0);
                r = 0;
        }
        sqlite3_reset(st);
        return r;
}

static const char sql_min_raw[] = "SELECT min(ts_usec) FROM history_samples";
static const char sql_min_minute[] = "SELECT min(minute_usec) FROM history_minutes";

int store_history_rollup(Store *s, uint64_t raw_before_usec, uint64_t minutes_before_usec,
                         unsigned max_minutes)
{
        /* Whole minutes only: a minute's raw rows are always rolled together. */
        uint64_t raw_limit = raw_before_usec / USEC_PER_MINUTE * USEC_PER_MINUTE;
        uint64_t span = (uint64_t)MAX(max_minutes, 1U) * USEC_PER_MINUTE, oldest;
        bool more = false;
        int r;

        r = store_begin(s);
        if (r < 0)
                return r;
        r = query_min(s, sql_min_raw, &oldest);
        if (r < 0 && r != -ENOENT)
                goto finish;
        if (r == 0 && oldest < raw_limit) {
                uint64_t upto = MIN(oldest / USEC_PER_MINUTE * USEC_PER_MINUTE + span, raw_limit);

                r = store_exec(
                    s,
                    "INSERT INTO history_minutes (minute_usec, device_id, holder_uid, samples, "
                    "span_usec, busy_usec, util_usec, util_span_usec, memory_byte_sec, "
                    "power_mw_usec, power_span_usec, shared_span_usec, shared_busy_usec, "
                    "shared_memory_byte_sec, budget_byte_sec) "
                    "SELECT ts_usec / 60000000 * 60000000, device_id, coalesce(holder_uid, -1), "
                    "count(*), sum(span_usec), sum(busy * span_usec), "
                    "sum(coalesce(util, 0) * span_usec), "
                    "sum(CASE WHEN util IS NULL THEN 0 ELSE span_usec END), "
                    "sum(memory_used_bytes * 1e-6 * span_usec), "
                    "sum(coalesce(power_mw, 0) * span_usec), "
                    "sum(CASE WHEN power_mw IS NULL THEN 0 ELSE span_usec END), "
                    "sum(CASE WHEN share_bytes > 0 THEN span_usec ELSE 0 END), "
                    "sum(CASE WHEN share_bytes > 0 THEN busy * span_usec ELSE 0 END), "
                    "sum(CASE WHEN share_bytes > 0 THEN memory_used_bytes * 1e-6 * span_usec "
                    "ELSE 0 END), "
                    "sum(share_bytes * 1e-6 * span_usec) "
                    "FROM history_samples WHERE ts_usec < ?1 GROUP BY 1, 2, 3 "
                    "ON CONFLICT (minute_usec, device_id, holder_uid) DO UPDATE SET "
                    "samples = samples + excluded.samples, "
                    "span_usec = span_usec + excluded.span_usec, "
                    "busy_usec = busy_usec + excluded.busy_usec, "
                    "util_usec = util_usec + excluded.util_usec, "
                    "util_span_usec = util_span_usec + excluded.util_span_usec, "
                    "memory_byte_sec = memory_byte_sec + excluded.memory_byte_sec, "
                    "power_mw_usec = power_mw_usec + excluded.power_mw_usec, "
                    "power_span_usec = power_span_usec + excluded.power_span_usec, "
                    "shared_span_usec = shared_span_usec + excluded.shared_span_usec, "
                    "shared_busy_usec = shared_busy_usec + excluded.shared_busy_usec, "
                    "shared_memory_byte_sec = shared_memory_byte_sec + "
                    "excluded.shared_memory_byte_sec, "
                    "budget_byte_sec = budget_byte_sec + excluded.budget_byte_sec",
                    STORE_ARGS(STORE_INT(upto)));
                if (r < 0)
                        goto finish;
                r = store_exec(s, "DELETE FROM history_samples WHERE ts_usec < ?",
                               STORE_ARGS(STORE_INT(upto)));
                if (r < 0)
                        goto finish;
                more = more || upto < raw_limit;
        }
        r = query_min(s, sql_min_minute, &oldest);
        if (r < 0 && r != -ENOENT)
                goto finish;
        if (r == 0 && oldest < minutes_before_usec) {
                uint64_t upto = MIN(oldest + span, minutes_before_usec);

                r = store_exec(s, "DELETE FROM history_minutes WHERE minute_usec < ?",
                               STORE_ARGS(STORE_INT(upto)));
                if (r < 0)
                        goto finish;
                r = store_exec(s, "DELETE FROM history_hours WHERE hour_usec < ?",
                               STORE_ARGS(STORE_INT(upto / USEC_PER_HOUR * USEC_PER_HOUR)));
                if (r < 0)
                        goto finish;
                more = more || upto < minutes_before_usec;
        }
        r = 0;
finish:
        r = store_finish(s, r);
        return r < 0 ? r : more;
}

/* The row of `uid` in the sorted array, inserted zeroed if missing. */
static HistoryUsage *usage_row(HistoryUsage **rows, size_t *n, size_t *allocated, int64_t uid)
{
        size_t lo = 0, hi = *n;

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if ((*rows)[mid].uid < uid)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (lo < *n && (*rows)[lo].uid == uid)
                return &(*rows)[lo];
        if (*n >= HISTORY_MAX_USERS)
                return NULL;
        if (*n == *allocated) {
                size_t a = MAX(*allocated * 2, (size_t)16);
                HistoryUsage *p = reallocarray(*rows, a, sizeof *p);
                if (!p)
                        return NULL;
                *rows = p;
                *allocated = a;
        }
        memmove(&(*rows)[lo + 1], &(*rows)[lo], (*n - lo) * sizeof **rows);
        (*rows)[lo] = (HistoryUsage){.uid = uid};
        (*n)++;
        return &(*rows)[lo];
}

static bool wanted(const uid_t *filter_uid, int64_t uid)
{
        return !filter_uid || uid == (int64_t)*filter_uid;
}

/* Add the device-time integrals of one table (raw, minute or hour rows).
 * The query's columns: holder uid, span, busy, memory (totals over whole
 * and shared rows), then the shared part of span, busy and memory, and the
 * budget integral. Whole-device figures are the totals less the shared part. */
static int add_time(Store *s, const char *sql, uint64_t since, uint64_t until, const uid_t *filter,
                    HistoryUsage **rows, size_t *n, size_t *allocated, HistoryTotals *t)
{
        sqlite3_stmt *st = NULL;
        int r;

        r = store_statement(s, sql, &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)since);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)until);
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
                int64_t uid = sqlite3_column_int64(st, 0);
                double sh_span = sqlite3_column_double(st, 4) * 1e-6;
                double sh_busy = sqlite3_column_double(st, 5) * 1e-6;
                double sh_mem = sqlite3_column_double(st, 6);
                double budget = sqlite3_column_double(st, 7);
                double span = sqlite3_column_double(st, 1) * 1e-6 - sh_span;
                double busy = sqlite3_column_double(st, 2) * 1e-6 - sh_busy;
                double mem = sqlite3_column_double(st, 3) - sh_mem;
                HistoryUsage *u;

                if (uid < 0) {
                        t->unleased_busy_device_sec += busy;
                        continue;
                }
                t->leased_device_sec += span;
                t->busy_device_sec += busy;
                t->memory_byte_sec += mem;
                t->shared_device_sec += sh_span;
                t->shared_busy_device_sec += sh_busy;
                t->shared_memory_byte_sec += sh_mem;
                t->shared_budget_byte_sec += budget;
                if (!wanted(filter, uid))
                        continue;
                u = usage_row(rows, n, allocated, uid);
                if (!u) {
                        sqlite3_reset(st);
                        return -ENOMEM;
                }
                u->leased_device_sec += span;
                u->busy_device_sec += busy;
                u->memory_byte_sec += mem;
                u->shared_device_sec += sh_span;
                u->shared_busy_device_sec += sh_busy;
                u->shared_memory_byte_sec += sh_mem;
                u->shared_budget_byte_sec += budget;
        }
        sqlite3_reset(st);
        return r == SQLITE_DONE ? 0 : store_errno_from_sqlite(r);
}

/* Device time over [since, until) from the raw and minute rows. */
static int add_detail(Store *s, uint64_t since, uint64_t until, const uid_t *filter,
                      HistoryUsage **rows, size_t *n, size_t *allocated, HistoryTotals *t)
{
        int r;

        if (since >= until)
                return 0;
        r = add_time(s,
                     /* Grouped by holder and shared-or-not first: four
                      * sums a row, not eight. */
                     "SELECT u, sum(s), sum(b), sum(m), sum(sh * s), sum(sh * b), sum(sh * m), "
                     "sum(g) FROM (SELECT coalesce(holder_uid, -1) AS u, share_bytes > 0 AS sh, "
                     "sum(span_usec) AS s, sum(busy * span_usec) AS b, "
                     "sum(memory_used_bytes * 1e-6 * span_usec) AS m, "
                     "sum(share_bytes * 1e-6 * span_usec) AS g FROM history_samples "
                     "WHERE ts_usec >= ? AND ts_usec < ? GROUP BY 1, 2) GROUP BY u",
                     since, until, filter, rows, n, allocated, t);
        if (r < 0)
                return r;
        return add_time(s,
                        "SELECT holder_uid, sum(span_usec), sum(busy_usec), sum(memory_byte_sec), "
                        "sum(shared_span_usec), sum(shared_busy_usec), "
                        "sum(shared_memory_byte_sec), sum(budget_byte_sec) "
                        "FROM history_minutes WHERE minute_usec >= ? AND minute_usec < ? "
                        "GROUP BY 1",
                        since, until, filter, rows, n, allocated, t);
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return (x > y) - (x < y);
}

/* Queue waits of one user's leases: mean and p95 (nearest rank). */
static void wait_stats(HistoryUsage *u, uint64_t *w, size_t n)
{
        double sum = 0;

        u->leases = n;
        if (n == 0)
                return;
        qsort(w, n, sizeof *w, cmp_u64);
        for (size_t i = 0; i < n; i++)
                sum += (double)w[i];
        u->queue_wait_mean_sec = sum / (double)n * 1e-6;
        u->queue_wait_p95_sec = (double)w[(95 * n + 99) / 100 - 1] * 1e-6;
}

static int add_leases(Store *s, uint64_t since, uint64_t until, const uid_t *filter,
                      HistoryUsage **rows, size_t *n, size_t *allocated)
{
        _cleanup_free_ uint64_t *w = NULL;
        size_t n_w = 0, a_w = 0;
        int64_t cur = -1;
        sqlite3_stmt *st = NULL;
        int r;

        r = store_statement(s,
                            "SELECT uid, queue_wait_usec FROM leases "
                            "WHERE created_usec >= ? AND created_usec < ? ORDER BY uid",
                            &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)since);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)until);
        for (;;) {
                int64_t uid = -1;
                HistoryUsage *u;

                r = sqlite3_step(st);
                if (r == SQLITE_ROW)
                        uid = sqlite3_column_int64(st, 0);
                else if (r != SQLITE_DONE)
                        break;
                if (uid != cur && n_w > 0) {
                        u = usage_row(rows, n, allocated, cur);
                        if (!u) {
                                sqlite3_reset(st);
                                return -ENOMEM;
                        }
                        wait_stats(u, w, n_w);
                        n_w = 0;
                }
                if (r == SQLITE_DONE)
                        break;
                cur = uid;
                if (!wanted(filter, uid))
                        continue;
                if (n_w == a_w) {
                        size_t a = MAX(a_w * 2, (size_t)64);
                        uint64_t *p = reallocarray(w, a, sizeof *p);
                        if (!p) {
                                sqlite3_reset(st);
                                return -ENOMEM;
                        }
                        w = p;
                        a_w = a;
                }
                w[n_w++] = (uint64_t)MAX(sqlite3_column_int64(st, 1), 0);
        }
        sqlite3_reset(st);
        return r == SQLITE_DONE ? 0 : store_errno_from_sqlite(r);
}

static int add_violations(Store *s, uint64_t since, uint64_t until, const uid_t *filter,
                          HistoryUsage **rows, size_t *n, size_t *allocated, HistoryTotals *t)
{
        sqlite3_stmt *st = NULL;
        int r;

        r = store_statement(s,
                            "SELECT uid, count(*) FROM violations "
                            "WHERE detected_usec >= ? AND detected_usec < ? GROUP BY uid",
                            &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)since);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)until);
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
                int64_t uid = sqlite3_column_int64(st, 0);
                uint64_t count = (uint64_t)sqlite3_column_int64(st, 1);
                HistoryUsage *u;

                t->violations += count;
                if (!wanted(filter, uid))
                        continue;
                u = usage_row(rows, n, allocated, uid);
                if (!u) {
                        sqlite3_reset(st);
                        return -ENOMEM;
                }
                u->violations += count;
        }
        sqlite3_reset(st);
        return r == SQLITE_DONE ? 0 : store_errno_from_sqlite(r);
}

int store_history_usage(Store *s, uint64_t since_usec, uint64_t until_usec, const uid_t *filter_uid,
                        HistoryUsage **ret, size_t *ret_n, HistoryTotals *ret_totals)
{
        _cleanup_free_ HistoryUsage *rows = NULL;
        size_t n = 0, allocated = 0;
        HistoryTotals t = {};
        int r;

        assert(ret && ret_n);
        if (until_usec > since_usec) {
                /* Whole hours from the hour rows; the ragged ends from the
                 * raw and minute rows. */
                uint64_t first = (since_usec + USEC_PER_HOUR - 1) / USEC_PER_HOUR * USEC_PER_HOUR;
                uint64_t last = until_usec / USEC_PER_HOUR * USEC_PER_HOUR;

                if (first < last) {
                        r = add_time(s,
                                     "SELECT holder_uid, sum(span_usec), sum(busy_usec), "
                                     "sum(memory_byte_sec), sum(shared_span_usec), "
                                     "sum(shared_busy_usec), sum(shared_memory_byte_sec), "
                                     "sum(budget_byte_sec) FROM history_hours "
                                     "WHERE hour_usec >= ? AND hour_usec < ? GROUP BY 1",
                                     first, last, filter_uid, &rows, &n, &allocated, &t);
                        if (r >= 0)
                                r = add_detail(s, since_usec, first, filter_uid, &rows, &n,
                                               &allocated, &t);
                        if (r >= 0)
                                r = add_detail(s, last, until_usec, filter_uid, &rows, &n,
                                               &allocated, &t);
                } else
                        r = add_detail(s, since_usec, until_usec, filter_uid, &rows, &n,
                                       &allocated, &t);
                if (r < 0)
                        return r;
        }
        r = add_leases(s, since_usec, until_usec, filter_uid, &rows, &n, &allocated);
        if (r < 0)
                return r;
        r = add_violations(s, since_usec, until_usec, filter_uid, &rows, &n, &allocated, &t);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                rows[i].idle_share = rows[i].leased_device_sec > 0
                                             ? 1.0 - rows[i].busy_device_sec / rows[i].leased_device_sec
                                             : 0.0;
        t.idle_leased_device_sec = t.leased_device_sec - t.busy_device_sec;
        *ret = TAKE_PTR(rows);
        *ret_n = n;
        if (ret_totals)
                *ret_totals = t;
        return 0;
}

static int push_point(HistoryPoint **p, size_t *n, size_t *allocated, HistoryPoint x)
{
        if (*n >= HISTORY_MAX_SERIES_ROWS)
                return -E2BIG;
        if (*n == *allocated) {
                size_t a = MAX(*allocated * 2, (size_t)256);
                HistoryPoint *q = reallocarray(*p, a, sizeof *q);
                if (!q)
                        return -ENOMEM;
                *p = q;
                *allocated = a;
        }
        (*p)[(*n)++] = x;
        return 0;
}

/* The rows of one minute of one device, being merged into a point. Rows of
 * shared leases overlap in time: the device's own time in the minute is the
 * whole-device rows' time plus the longest shared row's (each holder's row
 * stands for the same ticks), and memory is summed over the holders. */
typedef struct MinuteAcc {
        uint64_t minute; /* UINT64_MAX: nothing yet */
        int64_t holder;
        double span, util, util_span, mem, pw, pw_span, shared_max;
} MinuteAcc;

static int minute_flush(const MinuteAcc *a, HistoryPoint **p, size_t *n, size_t *allocated)
{
        double span = a->span + a->shared_max;

        if (a->minute == UINT64_MAX || span <= 0)
                return 0;
        return push_point(p, n, allocated,
                          (HistoryPoint){
                                  .ts_usec = a->minute,
                                  .util_percent = a->util_span > 0 ? a->util / a->util_span : -1,
                                  .memory_used_bytes = (uint64_t)(a->mem / (span * 1e-6) + 0.5),
                                  .power_w = a->pw_span > 0 ? a->pw / a->pw_span * 1e-3 : 0,
                                  .holder_uid = a->holder,
                          });
}

int store_history_series(Store *s, const char *device_uuid, uint64_t since_usec, size_t max_points,
                         HistoryPoint **ret, size_t *ret_n)
{
        _cleanup_free_ HistoryPoint *p = NULL;
        size_t n = 0, allocated = 0;
        sqlite3_stmt *st = NULL;
        int r;

        assert(device_uuid && ret && ret_n);
        /* Minute rows of one minute (one per holder) are merged; the holder
         * with the most time comes first. */
        r = store_statement(s,
                            "SELECT m.minute_usec, m.holder_uid, m.span_usec, m.util_usec, "
                            "m.util_span_usec, m.memory_byte_sec, m.power_mw_usec, "
                            "m.power_span_usec, m.shared_span_usec "
                            "FROM history_minutes m JOIN history_devices d ON d.id = m.device_id "
                            "WHERE d.device_uuid = ? AND m.minute_usec >= ? "
                            "ORDER BY m.minute_usec, m.span_usec DESC",
                            &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, device_uuid, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)since_usec);
        {
                MinuteAcc acc = {.minute = UINT64_MAX};

                while ((r = sqlite3_step(st)) == SQLITE_ROW) {
                        uint64_t minute = (uint64_t)sqlite3_column_int64(st, 0);

                        if (minute != acc.minute) {
                                int k = minute_flush(&acc, &p, &n, &allocated);
                                if (k < 0) {
                                        sqlite3_reset(st);
                                        return k;
                                }
                                acc = (MinuteAcc){.minute = minute,
                                                  .holder = sqlite3_column_int64(st, 1)};
                        }
                        acc.span += sqlite3_column_double(st, 2) - sqlite3_column_double(st, 8);
                        acc.shared_max = MAX(acc.shared_max, sqlite3_column_double(st, 8));
                        acc.util += sqlite3_column_double(st, 3);
                        acc.util_span += sqlite3_column_double(st, 4);
                        acc.mem += sqlite3_column_double(st, 5);
                        acc.pw += sqlite3_column_double(st, 6);
                        acc.pw_span += sqlite3_column_double(st, 7);
                }
                if (r == SQLITE_DONE) {
                        int k = minute_flush(&acc, &p, &n, &allocated);
                        if (k < 0) {
                                sqlite3_reset(st);
                                return k;
                        }
                }
        }
        sqlite3_reset(st);
        if (r != SQLITE_DONE)
                return store_errno_from_sqlite(r);

        r = store_statement(s,
                            "SELECT h.ts_usec, h.util, h.memory_used_bytes, h.power_mw, h.holder_uid "
                            "FROM history_samples h JOIN history_devices d ON d.id = h.device_id "
                            "WHERE d.device_uuid = ? AND h.ts_usec >= ? "
                            "ORDER BY h.ts_usec, h.lease_id",
                            &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, device_uuid, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)since_usec);
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
                HistoryPoint x = {
                        .ts_usec = (uint64_t)sqlite3_column_int64(st, 0),
                        .util_percent = sqlite3_column_type(st, 1) == SQLITE_NULL
                                                ? -1
                                                : sqlite3_column_double(st, 1),
                        .memory_used_bytes = (uint64_t)sqlite3_column_int64(st, 2),
                        .power_w = sqlite3_column_double(st, 3) * 1e-3,
                        .holder_uid = sqlite3_column_type(st, 4) == SQLITE_NULL
                                              ? -1
                                              : sqlite3_column_int64(st, 4),
                };
                int k;

                /* The other holders of a shared GPU at the same tick: one
                 * point, their memory summed. */
                if (n > 0 && p[n - 1].ts_usec == x.ts_usec) {
                        p[n - 1].memory_used_bytes += x.memory_used_bytes;
                        continue;
                }
                k = push_point(&p, &n, &allocated, x);
                if (k < 0) {
                        sqlite3_reset(st);
                        return k;
                }
        }
        sqlite3_reset(st);
        if (r != SQLITE_DONE)
                return store_errno_from_sqlite(r);
        if (max_points > 0 && n > max_points) {
                memmove(p, p + (n - max_points), max_points * sizeof *p);
                n = max_points;
        }
        *ret = TAKE_PTR(p);
        *ret_n = n;
        return 0;
}
