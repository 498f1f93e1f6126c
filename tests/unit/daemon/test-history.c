/* Unit tests for the usage history: 30 days of synthetic samples for 8 GPUs
 * (leases, idle stretches, unleased use, memory) are written tick by tick,
 * rolled up, and the per-user report (whole hours from the hour rows, the
 * ends of the window from raw and minute rows) is checked against sums the
 * test computes itself, before and after the rollup; retention deletes old minute
 * rows; device series come back in time order. A GPU shared by three
 * users for an hour is an hour of shared time for each, with their budgets
 * and own memory, and the lab's leased whole-device time does not grow by
 * it; the series of that GPU is one point per tick with the memory summed,
 * before and after the rollup. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/history-store.h"
#include "store/store.h"

#define N_GPUS 8
#define N_USERS 3
#define DAYS 30
#define TICK_USEC (60ULL * 1000000ULL)
#define N_TICKS ((uint64_t)DAYS * 24 * 60)
#define START_USEC (1700000040ULL * 1000000ULL) /* a whole minute */
#define END_USEC (START_USEC + N_TICKS * TICK_USEC)
#define HOUR_USEC (3600ULL * 1000000ULL)
#define GIB (1024ULL * 1024ULL * 1024ULL)

typedef struct Expected {
        double leased, busy, mem; /* seconds, seconds, byte-seconds */
        unsigned leases, violations;
} Expected;

typedef struct Fixture {
        char dir[64];
        Store *store;
        Expected users[N_USERS];
        double unleased_busy;
} Fixture;

/* The synthetic lab: GPU g at tick i. */
static int64_t holder_of(unsigned g, uint64_t i)
{
        return ((i / 180 + g) % 4 == 0) ? -1 : 1000 + (int64_t)(g % N_USERS);
}

static bool busy_of(unsigned g, uint64_t i)
{
        return holder_of(g, i) >= 0 ? (i % 7 != 0) : (i % 11 == 0);
}

static uint64_t memory_of(unsigned g, uint64_t i)
{
        if (busy_of(g, i))
                return (g + 1) * GIB;
        return holder_of(g, i) >= 0 ? 100ULL << 20 : 0;
}

static void exec_sql(Store *s, const char *sql)
{
        assert_int_equal(sqlite3_exec(store_db(s), sql, NULL, NULL, NULL), SQLITE_OK);
}

static int setup(void **state)
{
        Fixture *f = calloc(1, sizeof *f);
        HistorySample samples[N_GPUS];
        char sql[512];

        assert_non_null(f);
        snprintf(f->dir, sizeof f->dir, "/tmp/gk-test-history-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        assert_int_equal(store_open(f->dir, &f->store, NULL), 0);
        /* 43200 commits: without fsync, so the fill takes seconds. */
        exec_sql(f->store, "PRAGMA synchronous=OFF");

        for (uint64_t i = 0; i < N_TICKS; i++) {
                uint64_t ts = START_USEC + i * TICK_USEC;

                for (unsigned g = 0; g < N_GPUS; g++) {
                        HistorySample *x = &samples[g];
                        int64_t h = holder_of(g, i);

                        *x = (HistorySample){
                                .util_percent = busy_of(g, i) ? 50 + (int)g : 0,
                                .busy = busy_of(g, i),
                                .memory_used_bytes = memory_of(g, i),
                                .power_mw = 100000 + g * 1000,
                                .holder_uid = h,
                                .lease_id = h >= 0 ? 1 : 0,
                        };
                        snprintf(x->device_uuid, sizeof x->device_uuid, "GPU-test-%u", g);
                        snprintf(x->gpu_uuid, sizeof x->gpu_uuid, "GPU-test-%u", g);
                        if (h >= 0) {
                                Expected *e = &f->users[h - 1000];
                                e->leased += 60;
                                e->busy += x->busy ? 60 : 0;
                                e->mem += (double)x->memory_used_bytes * 60;
                        } else if (x->busy)
                                f->unleased_busy += 60;
                }
                assert_int_equal(store_history_write(f->store, ts, TICK_USEC, samples, N_GPUS), 0);
        }

        /* Leases with queue waits of 1..20 s for each user; violations. */
        for (unsigned u = 0; u < N_USERS; u++)
                for (unsigned k = 1; k <= 20; k++) {
                        snprintf(sql, sizeof sql,
                                 "INSERT INTO leases (uid, kind, state, created_usec, request, "
                                 "queue_wait_usec) VALUES (%u, 'manual', 'released', %llu, '{}', %llu)",
                                 1000 + u, (unsigned long long)(START_USEC + k * HOUR_USEC * 24),
                                 (unsigned long long)((k + u) * 1000000ULL));
                        exec_sql(f->store, sql);
                        f->users[u].leases++;
                }
        for (unsigned k = 0; k < 5; k++) {
                snprintf(sql, sizeof sql,
                         "INSERT INTO violations (pid, start_time, uid, device_uuid, gpu_uuid, "
                         "detected_usec, ended_usec) VALUES (%u, 1, 1001, 'GPU-test-0', "
                         "'GPU-test-0', %llu, %llu)",
                         100 + k, (unsigned long long)(START_USEC + k * HOUR_USEC),
                         (unsigned long long)(START_USEC + k * HOUR_USEC + 1));
                exec_sql(f->store, sql);
                f->users[1].violations++;
        }
        exec_sql(f->store, "PRAGMA synchronous=NORMAL");
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        Fixture *f = *state;
        const char *names[] = {STORE_DB_NAME, STORE_DB_NAME "-wal", STORE_DB_NAME "-shm"};
        char path[128];

        store_close(f->store);
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
                snprintf(path, sizeof path, "%s/%s", f->dir, names[i]);
                unlink(path);
        }
        rmdir(f->dir);
        free(f);
        return 0;
}

static int64_t count(Store *s, const char *sql)
{
        sqlite3_stmt *st;
        int64_t n;

        assert_int_equal(sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return n;
}

static void check_report(Fixture *f)
{
        HistoryUsage *rows = NULL;
        HistoryTotals t;
        double leased = 0, busy = 0;
        size_t n;

        assert_int_equal(store_history_usage(f->store, START_USEC, END_USEC, NULL, &rows, &n, &t), 0);
        assert_int_equal(n, N_USERS);
        for (unsigned u = 0; u < N_USERS; u++) {
                const Expected *e = &f->users[u];

                assert_int_equal(rows[u].uid, 1000 + u);
                assert_float_equal(rows[u].leased_device_sec, e->leased, 1e-3);
                assert_float_equal(rows[u].busy_device_sec, e->busy, 1e-3);
                assert_float_equal(rows[u].idle_share, 1.0 - e->busy / e->leased, 1e-9);
                assert_float_equal(rows[u].memory_byte_sec, e->mem, e->mem * 1e-9);
                assert_int_equal(rows[u].leases, e->leases);
                assert_int_equal(rows[u].violations, e->violations);
                /* Waits (1+u)..(20+u) s: mean 10.5+u, p95 the 19th. */
                assert_float_equal(rows[u].queue_wait_mean_sec, 10.5 + u, 1e-9);
                assert_float_equal(rows[u].queue_wait_p95_sec, 19.0 + u, 1e-9);
                leased += e->leased;
                busy += e->busy;
        }
        assert_float_equal(t.leased_device_sec, leased, 1e-3);
        assert_float_equal(t.busy_device_sec, busy, 1e-3);
        assert_float_equal(t.idle_leased_device_sec, leased - busy, 1e-3);
        assert_float_equal(t.unleased_busy_device_sec, f->unleased_busy, 1e-3);
        assert_int_equal(t.violations, 5);
        free(rows);

        /* One user only. */
        uid_t only = 1001;
        assert_int_equal(store_history_usage(f->store, START_USEC, END_USEC, &only, &rows, &n, NULL), 0);
        assert_int_equal(n, 1);
        assert_int_equal(rows[0].uid, 1001);
        assert_float_equal(rows[0].leased_device_sec, f->users[1].leased, 1e-3);
        free(rows);
}

static void test_report_before_and_after_rollup(void **state)
{
        Fixture *f = *state;
        int r;

        check_report(f);
        assert_int_equal(count(f->store, "SELECT count(*) FROM history_samples"),
                         (int64_t)(N_TICKS * N_GPUS));

        /* Roll up everything older than 48 h, in bounded steps. */
        unsigned steps = 0;
        while ((r = store_history_rollup(f->store, END_USEC - 48 * HOUR_USEC,
                                         END_USEC - 90 * 24 * HOUR_USEC, 1440)) > 0)
                steps++;
        assert_int_equal(r, 0);
        assert_true(steps >= 27); /* 28 days in whole-day batches */
        assert_int_equal(count(f->store, "SELECT count(*) FROM history_samples"),
                         (int64_t)(48 * 60 * N_GPUS));
        assert_int_equal(count(f->store, "SELECT min(ts_usec) FROM history_samples"),
                         (int64_t)(END_USEC - 48 * HOUR_USEC));
        assert_true(count(f->store, "SELECT count(*) FROM history_minutes") >=
                    (int64_t)((N_TICKS - 48 * 60) * N_GPUS));
        check_report(f);

        /* A series spanning the rolled-up past and the raw present. */
        HistoryPoint *p = NULL;
        size_t n;
        uint64_t since = END_USEC - 49 * HOUR_USEC;
        assert_int_equal(store_history_series(f->store, "GPU-test-3", since, 0, &p, &n), 0);
        assert_int_equal(n, 49 * 60);
        for (size_t k = 0; k < n; k++) {
                uint64_t i = (since - START_USEC) / TICK_USEC + k;

                assert_int_equal(p[k].ts_usec, START_USEC + i * TICK_USEC);
                assert_int_equal(p[k].holder_uid, holder_of(3, i));
                assert_int_equal(p[k].memory_used_bytes, memory_of(3, i));
                assert_float_equal(p[k].util_percent, busy_of(3, i) ? 53 : 0, 1e-9);
                assert_float_equal(p[k].power_w, 103.0, 1e-9);
        }
        free(p);
        assert_int_equal(store_history_series(f->store, "GPU-test-3", since, 10, &p, &n), 0);
        assert_int_equal(n, 10);
        assert_int_equal(p[9].ts_usec, END_USEC - TICK_USEC);
        free(p);
        assert_int_equal(store_history_series(f->store, "GPU-none", 0, 0, &p, &n), 0);
        assert_int_equal(n, 0);
        free(p);
}

static void test_retention(void **state)
{
        Fixture *f = *state;
        uint64_t keep_from = START_USEC + 10 * 24 * HOUR_USEC;
        int r;

        while ((r = store_history_rollup(f->store, END_USEC - 48 * HOUR_USEC, keep_from, 600)) > 0)
                ;
        assert_int_equal(r, 0);
        assert_int_equal(count(f->store, "SELECT min(minute_usec) FROM history_minutes"),
                         (int64_t)keep_from);
        assert_int_equal(count(f->store, "SELECT count(*) FROM history_minutes WHERE minute_usec < "
                                         "1700864040000000"),
                         0);
        assert_int_equal(count(f->store, "SELECT min(hour_usec) FROM history_hours"),
                         (int64_t)(keep_from / HOUR_USEC * HOUR_USEC));
        /* Nothing of the raw 48 h was touched. */
        assert_int_equal(count(f->store, "SELECT count(*) FROM history_samples"),
                         (int64_t)(48 * 60 * N_GPUS));
}

static void test_span_is_capped(void **state)
{
        Fixture *f = *state;
        HistorySample x = {.device_uuid = "GPU-cap", .gpu_uuid = "GPU-cap", .util_percent = -1,
                           .busy = true, .holder_uid = 4242, .lease_id = 9};
        HistoryUsage *rows = NULL;
        size_t n;

        assert_int_equal(store_history_write(f->store, END_USEC + HOUR_USEC, 3600ULL * 1000000ULL,
                                             &x, 1),
                         0);
        uid_t u = 4242;
        assert_int_equal(store_history_usage(f->store, END_USEC, END_USEC + 2 * HOUR_USEC, &u, &rows,
                                             &n, NULL),
                         0);
        assert_int_equal(n, 1);
        assert_float_equal(rows[0].leased_device_sec, HISTORY_SAMPLE_MAX_USEC / 1e6, 1e-9);
        free(rows);
}

/* Three users share GPU-shared for one hour (20/20/30 GiB budgets, using
 * 10/15/25 GiB; the third never busy); the first also holds GPU-whole. */
static void check_shared(Fixture *f, uint64_t base)
{
        static const uint64_t budget[3] = {20 * GIB, 20 * GIB, 30 * GIB};
        static const uint64_t used[3] = {10 * GIB, 15 * GIB, 25 * GIB};
        /* An hour in the middle (hour rows or minute rows) and ragged ends. */
        uint64_t since = base - HOUR_USEC / 2, until = base + 3 * HOUR_USEC / 2;
        HistoryUsage *rows = NULL;
        HistoryTotals t;
        size_t n;

        assert_int_equal(store_history_usage(f->store, since, until, NULL, &rows, &n, &t), 0);
        assert_int_equal(n, 3);
        for (unsigned u = 0; u < 3; u++) {
                assert_int_equal(rows[u].uid, 2001 + u);
                assert_float_equal(rows[u].shared_device_sec, 3600, 1e-6);
                assert_float_equal(rows[u].shared_busy_device_sec, u < 2 ? 3600 : 0, 1e-6);
                assert_float_equal(rows[u].shared_budget_byte_sec, (double)budget[u] * 3600,
                                   1e-3);
                assert_float_equal(rows[u].shared_memory_byte_sec, (double)used[u] * 3600, 1e-3);
                /* Only the whole GPU counts as leased. */
                assert_float_equal(rows[u].leased_device_sec, u == 0 ? 3600 : 0, 1e-6);
                assert_float_equal(rows[u].memory_byte_sec, u == 0 ? 3600.0 * GIB : 0, 1e-3);
        }
        assert_float_equal(t.leased_device_sec, 3600, 1e-6);
        assert_float_equal(t.shared_device_sec, 3 * 3600, 1e-6);
        assert_float_equal(t.shared_busy_device_sec, 2 * 3600, 1e-6);
        assert_float_equal(t.unleased_busy_device_sec, 0, 1e-6);
        free(rows);

        /* Inside the hour: raw or minute rows only, 58 ticks. */
        assert_int_equal(store_history_usage(f->store, base + TICK_USEC, base + 59 * TICK_USEC,
                                             NULL, &rows, &n, &t),
                         0);
        assert_int_equal(n, 3);
        for (unsigned u = 0; u < 3; u++) {
                assert_float_equal(rows[u].shared_device_sec, 58 * 60, 1e-6);
                assert_float_equal(rows[u].shared_busy_device_sec, u < 2 ? 58 * 60 : 0, 1e-6);
                assert_float_equal(rows[u].shared_budget_byte_sec, (double)budget[u] * 58 * 60,
                                   1e-3);
                assert_float_equal(rows[u].shared_memory_byte_sec, (double)used[u] * 58 * 60,
                                   1e-3);
                assert_float_equal(rows[u].leased_device_sec, u == 0 ? 58 * 60 : 0, 1e-6);
        }
        assert_float_equal(t.shared_device_sec, 3 * 58 * 60, 1e-6);
        free(rows);
}

static void test_shared_gpu(void **state)
{
        Fixture *f = *state;
        uint64_t base = (END_USEC / HOUR_USEC + 3) * HOUR_USEC;
        HistorySample x[4];
        HistoryPoint *p = NULL;
        size_t n;
        int r;

        for (uint64_t i = 0; i < 60; i++) {
                static const uint64_t used_gib[3] = {10, 15, 25};

                for (unsigned u = 0; u < 3; u++)
                        x[u] = (HistorySample){.device_uuid = "GPU-shared",
                                               .gpu_uuid = "GPU-shared",
                                               .util_percent = 60,
                                               .busy = u < 2,
                                               .memory_used_bytes = used_gib[u] * GIB,
                                               .power_mw = 200000,
                                               .holder_uid = 2001 + u,
                                               .lease_id = 501 + u,
                                               .share_bytes = (u == 2 ? 30 : 20) * GIB};
                x[3] = (HistorySample){.device_uuid = "GPU-whole", .gpu_uuid = "GPU-whole",
                                       .util_percent = 10, .busy = true,
                                       .memory_used_bytes = GIB, .holder_uid = 2001,
                                       .lease_id = 500};
                assert_int_equal(
                    store_history_write(f->store, base + i * TICK_USEC, TICK_USEC, x, 4), 0);
        }
        assert_int_equal(count(f->store, "SELECT count(*) FROM history_samples WHERE device_id = "
                                         "(SELECT id FROM history_devices WHERE device_uuid = "
                                         "'GPU-shared')"),
                         180);
        check_shared(f, base);
        assert_int_equal(store_history_series(f->store, "GPU-shared", base, 0, &p, &n), 0);
        assert_int_equal(n, 60);
        assert_int_equal(p[0].memory_used_bytes, 50 * GIB);
        assert_int_equal(p[0].holder_uid, 2001);
        assert_float_equal(p[0].util_percent, 60, 1e-9);
        free(p);

        /* Rolled up into minute rows: the same report, the same series. */
        while ((r = store_history_rollup(f->store, base + 2 * HOUR_USEC, 0, 1440)) > 0)
                ;
        assert_int_equal(r, 0);
        assert_int_equal(count(f->store, "SELECT count(*) FROM history_samples"), 0);
        check_shared(f, base);
        assert_int_equal(store_history_series(f->store, "GPU-shared", base, 0, &p, &n), 0);
        assert_int_equal(n, 60);
        for (size_t k = 0; k < n; k++) {
                assert_int_equal(p[k].ts_usec, base + k * TICK_USEC);
                assert_int_equal(p[k].memory_used_bytes, 50 * GIB);
                assert_float_equal(p[k].util_percent, 60, 1e-9);
                assert_float_equal(p[k].power_w, 200, 1e-9);
        }
        free(p);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_report_before_and_after_rollup),
                cmocka_unit_test(test_retention),
                cmocka_unit_test(test_span_is_capped),
                cmocka_unit_test(test_shared_gpu),
        };

        return cmocka_run_group_tests_name("test-history", tests, setup, teardown);
}
