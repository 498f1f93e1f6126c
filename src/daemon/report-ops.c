/* report; see report-ops.h. */
#include "daemon/report-ops.h"

#include <errno.h>
#include <stdlib.h>

#include "basic/time-util.h"
#include "daemon/reads.h"
#include "store/history-store.h"

#define REPORT_DEFAULT_SPAN_USEC (30 * USEC_PER_DAY)
/* Unix seconds far beyond any real date, so the conversion to microseconds
 * cannot overflow. */
#define REPORT_SINCE_MAX 1e11
#define SEC_PER_HOUR 3600.0
#define BYTES_PER_GIB (1024.0 * 1024.0 * 1024.0)

/* The shared part of a report row or of the totals: lease-hours of shared
 * leases (each lease its own), the part with a process of the holder on the
 * GPU, the holder's own memory-hours, and the budgets: integrated
 * (GiB-hours) and their time-weighted mean (GiB). */
static int add_shared(json_t *o, double sec, double busy_sec, double mem, double budget)
{
        json_t *x = json_pack("{s:f, s:f, s:f, s:f, s:f}", "shared_device_hours",
                              sec / SEC_PER_HOUR, "shared_busy_device_hours",
                              busy_sec / SEC_PER_HOUR, "shared_memory_gib_hours",
                              mem / BYTES_PER_GIB / SEC_PER_HOUR, "shared_budget_gib_hours",
                              budget / BYTES_PER_GIB / SEC_PER_HOUR, "shared_budget_gib",
                              sec > 0 ? budget / sec / BYTES_PER_GIB : 0.0);

        if (!o || !x || json_object_update(o, x) < 0) {
                json_decref(x);
                return -ENOMEM;
        }
        json_decref(x);
        return 0;
}

/* A user's row; "user" is null until report_read_finish() names it. */
static json_t *user_json(const HistoryUsage *u)
{
        json_t *o = json_pack("{s:I, s:n, s:f, s:f, s:f, s:f, s:I, s:f, s:f, s:I}", "uid",
                              (json_int_t)u->uid, "user", "leased_device_hours",
                              u->leased_device_sec / SEC_PER_HOUR, "busy_device_hours",
                              u->busy_device_sec / SEC_PER_HOUR, "idle_share", u->idle_share,
                              "memory_gib_hours",
                              u->memory_byte_sec / BYTES_PER_GIB / SEC_PER_HOUR, "leases",
                              (json_int_t)u->leases, "queue_wait_mean_sec",
                              u->queue_wait_mean_sec, "queue_wait_p95_sec",
                              u->queue_wait_p95_sec, "violations", (json_int_t)u->violations);

        if (add_shared(o, u->shared_device_sec, u->shared_busy_device_sec,
                       u->shared_memory_byte_sec, u->shared_budget_byte_sec) < 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}

typedef struct ReportRead {
        uint64_t since_usec, now_usec;
        bool one_user;
        uid_t uid;
} ReportRead;

/* In the reader thread (reads.h): one snapshot for every sum. */
static int report_read_run(Store *reader, const void *state, json_t **ret_result)
{
        const ReportRead *q = state;
        _cleanup_free_ HistoryUsage *rows = NULL;
        HistoryTotals t;
        json_t *users, *result;
        size_t n = 0;
        int r;

        r = store_history_usage(reader, q->since_usec, q->now_usec + 1,
                                q->one_user ? &q->uid : NULL, &rows, &n, &t);
        if (r < 0)
                return r;
        users = json_array();
        for (size_t i = 0; users && i < n; i++)
                if (json_array_append_new(users, user_json(&rows[i])) < 0) {
                        json_decref(users);
                        users = NULL;
                }
        if (!users)
                return -ENOMEM;
        result = json_pack(
                "{s:f, s:f, s:o, s:{s:f, s:f, s:f, s:f, s:f, s:I, s:f}}", "since_sec",
                (double)q->since_usec / USEC_PER_SEC, "until_sec",
                (double)q->now_usec / USEC_PER_SEC, "users", users, "totals",
                "leased_device_hours", t.leased_device_sec / SEC_PER_HOUR, "busy_device_hours",
                t.busy_device_sec / SEC_PER_HOUR, "idle_leased_device_hours",
                t.idle_leased_device_sec / SEC_PER_HOUR, "unleased_busy_device_hours",
                t.unleased_busy_device_sec / SEC_PER_HOUR, "memory_gib_hours",
                t.memory_byte_sec / BYTES_PER_GIB / SEC_PER_HOUR, "violations",
                (json_int_t)t.violations, "waste_device_hours",
                (t.idle_leased_device_sec + t.unleased_busy_device_sec) / SEC_PER_HOUR);
        if (!result)
                return -ENOMEM;
        r = add_shared(json_object_get(result, "totals"), t.shared_device_sec,
                       t.shared_busy_device_sec, t.shared_memory_byte_sec,
                       t.shared_budget_byte_sec);
        if (r < 0) {
                json_decref(result);
                return r;
        }
        *ret_result = result;
        return 0;
}

/* On the loop: the names of the rows' users. */
static int report_read_finish(Daemon *d, json_t *result)
{
        return reads_name_users(d, json_object_get(result, "users"));
}

static const ReadWork report_read = {
        .run = report_read_run,
        .finish = report_read_finish,
};

int report_op(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
              gk_call_error *ret_error)
{
        json_t *since = args ? json_object_get(args, "since_sec") : NULL;
        json_t *user = args ? json_object_get(args, "user") : NULL;
        uint64_t now = now_usec(CLOCK_REALTIME);
        ReportRead *q;
        uid_t uid = 0;
        int r;

        (void)ret_result;
        if (args && json_object_size(args) > (size_t)(since != NULL) + (user != NULL))
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "report takes 'since_sec' and 'user' only");
        if (since && (!json_is_number(since) || json_number_value(since) < 0 ||
                      json_number_value(since) > REPORT_SINCE_MAX))
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'since_sec' must be a unix time in seconds");
        if (user) {
                r = request_parse_user(d, call, user, &uid, ret_error);
                if (r != 0)
                        return r;
        }
        q = calloc(1, sizeof *q);
        if (!q)
                return -ENOMEM;
        *q = (ReportRead){
                .since_usec = since ? (uint64_t)(json_number_value(since) * USEC_PER_SEC)
                                    : now - MIN(now, REPORT_DEFAULT_SPAN_USEC),
                .now_usec = now,
                .one_user = user != NULL,
                .uid = uid,
        };
        return reads_submit(d, call, &report_read, q, ret_error);
}
