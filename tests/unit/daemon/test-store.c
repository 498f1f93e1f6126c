/* Unit tests for the state database: creation, WAL mode, migrations,
 * refusal of newer schemas and of symlinks, audit records. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/lease-store.h"
#include "store/store.h"

static char *make_tmpdir(void)
{
        char tmpl[] = "/tmp/gk-test-store-XXXXXX";
        char *d = mkdtemp(tmpl);

        assert_non_null(d);
        return strdup(d);
}

static void remove_tree(const char *dir)
{
        const char *names[] = {STORE_DB_NAME, STORE_DB_NAME "-wal", STORE_DB_NAME "-shm"};
        char path[PATH_MAX];

        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
                int k = snprintf(path, sizeof path, "%s/%s", dir, names[i]);

                assert_true(k > 0 && (size_t)k < sizeof path);
                unlink(path);
        }
        rmdir(dir);
}

static void test_create_wal_and_schema(void **state)
{
        _cleanup_free_ char *dir = make_tmpdir(), *error = NULL;
        char path[512];
        sqlite3_stmt *st;
        struct stat sb;
        Store *s = NULL;

        assert_int_equal(store_open(dir, &s, &error), 0);
        assert_int_equal(store_schema_version(s), store_schema_latest());
        assert_true(store_schema_latest() >= 1);

        assert_int_equal(sqlite3_prepare_v2(store_db(s), "PRAGMA journal_mode", -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
        sqlite3_finalize(st);

        snprintf(path, sizeof path, "%s/%s", dir, STORE_DB_NAME);
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0600);
        store_close(s);

        /* Reopening applies nothing new and keeps the data. */
        assert_int_equal(store_open(dir, &s, &error), 0);
        assert_int_equal(store_schema_version(s), store_schema_latest());
        store_close(s);
        remove_tree(dir);
}

static void test_audit_and_runs(void **state)
{
        _cleanup_free_ char *dir = make_tmpdir(), *error = NULL;
        sqlite3_stmt *st;
        Store *s = NULL;
        int64_t run;

        assert_int_equal(store_open(dir, &s, &error), 0);
        run = store_run_started(s, 1234, "test");
        assert_true(run > 0);
        assert_int_equal(store_audit(s, 1000, "lease.grant", "GPU-x", "{\"n\":1}"), 0);
        assert_int_equal(store_audit(s, -1, "daemon.start", NULL, NULL), 0);
        assert_int_equal(store_run_stopped(s, run), 0);

        assert_int_equal(sqlite3_prepare_v2(store_db(s),
                                            "SELECT uid, action, subject, detail FROM audit "
                                            "ORDER BY id",
                                            -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int64(st, 0), 1000);
        assert_string_equal((const char *)sqlite3_column_text(st, 1), "lease.grant");
        assert_string_equal((const char *)sqlite3_column_text(st, 2), "GPU-x");
        assert_string_equal((const char *)sqlite3_column_text(st, 3), "{\"n\":1}");
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int64(st, 0), -1);
        assert_int_equal(sqlite3_column_type(st, 2), SQLITE_NULL);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);

        assert_int_equal(sqlite3_prepare_v2(store_db(s),
                                            "SELECT stopped_usec IS NOT NULL, pid FROM daemon_runs",
                                            -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(st, 0), 1);
        assert_int_equal(sqlite3_column_int(st, 1), 1234);
        sqlite3_finalize(st);
        store_close(s);
        remove_tree(dir);
}

static void test_refuses_newer_schema(void **state)
{
        _cleanup_free_ char *dir = make_tmpdir(), *error = NULL;
        char sql[64];
        Store *s = NULL;

        assert_int_equal(store_open(dir, &s, &error), 0);
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", store_schema_latest() + 1);
        assert_int_equal(sqlite3_exec(store_db(s), sql, NULL, NULL, NULL), SQLITE_OK);
        store_close(s);

        s = NULL;
        assert_int_equal(store_open(dir, &s, &error), -EPROTONOSUPPORT);
        assert_null(s);
        assert_non_null(error);
        assert_non_null(strstr(error, "newer"));
        remove_tree(dir);
}

static void test_refuses_symlink(void **state)
{
        _cleanup_free_ char *dir = make_tmpdir(), *error = NULL;
        char link[512];
        Store *s = NULL;

        snprintf(link, sizeof link, "%s/%s", dir, STORE_DB_NAME);
        assert_int_equal(symlink("/etc/passwd", link), 0);
        assert_int_equal(store_open(dir, &s, &error), -ELOOP);
        assert_null(s);
        assert_non_null(strstr(error, STORE_DB_NAME));
        remove_tree(dir);
}

static void test_creates_state_dir(void **state)
{
        _cleanup_free_ char *dir = make_tmpdir(), *error = NULL;
        char sub[512];
        Store *s = NULL;

        snprintf(sub, sizeof sub, "%s/state", dir);
        assert_int_equal(store_open(sub, &s, &error), 0);
        store_close(s);
        remove_tree(sub);
        rmdir(dir);
}

static int count_rows(Store *s, const char *sql)
{
        sqlite3_stmt *st;
        int n;

        assert_int_equal(sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        n = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        return n;
}

static int count_drain(const char *uuid, uint64_t usec, void *userdata)
{
        (*(int *)userdata)++;
        return 0;
}

static void test_leases_never_double_granted(void **state)
{
        _cleanup_free_ char *dir = make_tmpdir(), *error = NULL;
        LeaseDevice a = {.uuid = "GPU-a", .gpu_uuid = "GPU-a"};
        LeaseDevice ab[2] = {{.uuid = "GPU-b", .gpu_uuid = "GPU-b"},
                             {.uuid = "GPU-a", .gpu_uuid = "GPU-a"}};
        StoredLease l1 = {.uid = 1000, .kind = LEASE_MANUAL, .created_usec = 1,
                          .expires_usec = 100, .devices = &a, .n_devices = 1};
        StoredLease l2 = {.uid = 1001, .kind = LEASE_RUN, .created_usec = 2, .client_pid = 42,
                          .client_start_time = 7, .devices = ab, .n_devices = 2};
        StoredLease *active = NULL;
        size_t n = 0;
        Store *s = NULL;
        int drains = 0;

        assert_int_equal(store_open(dir, &s, &error), 0);
        assert_int_equal(store_lease_grant(s, &l1, "{}"), 0);
        assert_true(l1.id > 0);

        /* GPU-a is held: the whole second grant is refused, nothing written. */
        assert_int_equal(store_lease_grant(s, &l2, "{}"), -EEXIST);
        assert_int_equal(count_rows(s, "SELECT count(*) FROM leases"), 1);
        assert_int_equal(count_rows(s, "SELECT count(*) FROM lease_devices"), 1);

        assert_int_equal(store_lease_extend(s, l1.id, 500, 1000), 0);
        assert_int_equal(store_lease_end(s, l1.id, true, "lease expired", -1, 600), 0);
        assert_int_equal(store_lease_end(s, l1.id, false, "again", -1, 700), -ENOENT);
        assert_int_equal(count_rows(s, "SELECT count(*) FROM device_usage "
                                       "WHERE device_uuid = 'GPU-a' AND last_released_usec = 600"),
                         1);

        /* A MIG instance of a GPU held whole, and the other way round. */
        {
                LeaseDevice mig = {.uuid = "MIG-a1", .gpu_uuid = "GPU-a", .profile = "1g.10gb"};
                LeaseDevice whole_c = {.uuid = "GPU-c", .gpu_uuid = "GPU-c"};
                LeaseDevice mig_c = {.uuid = "MIG-c1", .gpu_uuid = "GPU-c", .profile = "1g.10gb"};
                StoredLease part = {.uid = 1002, .kind = LEASE_MANUAL, .created_usec = 3,
                                    .expires_usec = 100, .devices = &mig, .n_devices = 1};
                StoredLease lc = part, lc_part = part;

                assert_int_equal(store_lease_grant(s, &part, "{}"), 0); /* GPU-a is free now */
                lc.devices = &whole_c;
                assert_int_equal(store_lease_grant(s, &lc, "{}"), 0);
                lc_part.devices = &mig_c;
                assert_int_equal(store_lease_grant(s, &lc_part, "{}"), -EEXIST);
                assert_int_equal(store_lease_end(s, lc.id, false, "done", -1, 640), 0);
                assert_int_equal(store_lease_grant(s, &lc_part, "{}"), 0);
                assert_int_equal(store_lease_end(s, lc_part.id, false, "done", -1, 645), 0);
                assert_int_equal(store_lease_end(s, part.id, false, "done", -1, 650), 0);
        }

        assert_int_equal(store_lease_grant(s, &l2, "{\"gpus\":2}"), 0);
        assert_int_equal(store_leases_load_active(s, &active, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(active[0].id, l2.id);
        assert_int_equal(active[0].kind, LEASE_RUN);
        assert_int_equal(active[0].client_pid, 42);
        assert_int_equal(active[0].client_start_time, 7);
        assert_int_equal(active[0].n_devices, 2);
        assert_string_equal(active[0].devices[0].uuid, "GPU-b");
        assert_string_equal(active[0].devices[1].uuid, "GPU-a");
        stored_lease_done(&active[0]);
        free(active);

        assert_int_equal(count_rows(s, "SELECT count(*) FROM audit WHERE action IN "
                                       "('lease.grant', 'lease.extend', 'lease.expire')"),
                         7);

        assert_int_equal(store_drain_set(s, "GPU-a", true, 0, "maintenance"), 0);
        assert_int_equal(store_drains_foreach(s, count_drain, &drains), 0);
        assert_int_equal(drains, 1);
        assert_int_equal(store_drain_set(s, "GPU-a", false, 0, NULL), 0);
        drains = 0;
        assert_int_equal(store_drains_foreach(s, count_drain, &drains), 0);
        assert_int_equal(drains, 0);
        store_close(s);
        remove_tree(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_create_wal_and_schema),
                cmocka_unit_test(test_audit_and_runs),
                cmocka_unit_test(test_refuses_newer_schema),
                cmocka_unit_test(test_refuses_symlink),
                cmocka_unit_test(test_creates_state_dir),
                cmocka_unit_test(test_leases_never_double_granted),
        };
        return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
