/* Unit tests for the state database: creation, WAL mode, migrations,
 * refusal of newer schemas and of symlinks, audit records. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/audit-store.h"
#include "store/history-store.h"
#include "store/lease-store.h"
#include "store/migrations.h"
#include "store/queue-store.h"
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

static size_t audit_count(Store *s, int64_t uid)
{
        StoredAuditRecord *list = NULL;
        size_t n = 0;

        assert_int_equal(store_audit_list(s, 0, uid, NULL, 1000, &list, &n), 0);
        stored_audit_free(list, n);
        return n;
}

/* The last day's alerts come from the partial index audit_alerts: the
 * statement the store ran is found among its connection's own, and its
 * plan and steps say it read the three alert rows, not the 20,000 others. */
static void test_recent_alerts_read_only_alerts(void **state)
{
        _cleanup_free_ char *dir = make_tmpdir(), *error = NULL;
        sqlite3_stmt *st = NULL, *plan = NULL;
        StoredAlert *alerts = NULL;
        bool indexed = false;
        Store *s = NULL;
        size_t n = 0;

        assert_int_equal(store_open(dir, &s, &error), 0);
        assert_int_equal(store_begin(s), 0);
        for (int i = 0; i < 20000; i++)
                assert_int_equal(store_audit(s, 1000, i % 2 ? "lease" : "lease.release", "x", NULL),
                                 0);
        assert_int_equal(store_audit(s, -1, "alert.sent", "a", NULL), 0);
        assert_int_equal(store_audit(s, -1, "alert.failed", "b", NULL), 0);
        assert_int_equal(store_audit(s, -1, "alert.sent", "c", NULL), 0);
        assert_int_equal(store_finish(s, 0), 0);

        assert_int_equal(store_alerts_recent(s, 0, 50, &alerts, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(alerts[0].subject, "c");
        assert_string_equal(alerts[1].action, "alert.failed");
        stored_alerts_free(alerts, n);

        while ((st = sqlite3_next_stmt(store_db(s), st)))
                if (strstr(sqlite3_sql(st), "'alert.sent'"))
                        break;
        assert_non_null(st);
        assert_true(sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 0) < 200);
        {
                _cleanup_free_ char *sql = NULL;

                assert_true(asprintf(&sql, "EXPLAIN QUERY PLAN %s", sqlite3_sql(st)) > 0);
                assert_int_equal(sqlite3_prepare_v2(store_db(s), sql, -1, &plan, NULL), SQLITE_OK);
        }
        while (sqlite3_step(plan) == SQLITE_ROW)
                indexed |= strstr((const char *)sqlite3_column_text(plan, 3), "audit_alerts") != NULL;
        sqlite3_finalize(plan);
        assert_true(indexed);
        store_close(s);
        remove_tree(dir);
}

static void *interrupt_later(void *reader)
{
        (void)nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
        store_interrupt(reader);
        return NULL;
}

/* A reader (daemon/reads.h): sees what the store committed before its read
 * transaction began and nothing committed during it; writes nothing; and a
 * statement of it can be interrupted from another thread's call. */
static void test_reader(void **state)
{
        _cleanup_free_ char *dir = make_tmpdir(), *error = NULL;
        Store *s = NULL, *reader = NULL;
        sqlite3_stmt *st;

        assert_int_equal(store_open(dir, &s, &error), 0);
        assert_int_equal(store_checkpoint_in_background(s), 0);
        assert_int_equal(store_open_reader(s, &reader), 0);
        assert_int_equal(audit_count(reader, 7), 0);
        assert_int_equal(store_audit(s, 7, "test.one", NULL, NULL), 0);
        assert_int_equal(audit_count(reader, 7), 1);

        assert_int_equal(store_read_begin(reader), 0);
        assert_int_equal(audit_count(reader, 7), 1);
        assert_int_equal(store_audit(s, 7, "test.two", NULL, NULL), 0);
        assert_int_equal(audit_count(reader, 7), 1); /* the snapshot */
        store_read_end(reader);
        assert_int_equal(audit_count(reader, 7), 2);

        assert_int_equal(store_audit(reader, 7, "test.three", NULL, NULL), -EACCES);
        assert_int_equal(audit_count(s, 7), 2);

        /* A statement that would never end, stopped from another thread. */
        assert_int_equal(sqlite3_prepare_v2(store_db(reader),
                                            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT "
                                            "x + 1 FROM c) SELECT count(*) FROM c",
                                            -1, &st, NULL),
                         SQLITE_OK);
        {
                pthread_t t;

                assert_int_equal(pthread_create(&t, NULL, interrupt_later, reader), 0);
                assert_int_equal(store_errno_from_sqlite(sqlite3_step(st)), -EINTR);
                pthread_join(t, NULL);
        }
        sqlite3_finalize(st);
        assert_int_equal(audit_count(reader, 7), 2); /* and it reads again */

        store_close(reader);
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
        /* -1 keeps the idle time written before; a value >= 0 is written
         * with the end, in its transaction; a refused end writes none. */
        assert_int_equal(store_lease_set_idle(s, l1.id, 77), 0);
        assert_int_equal(store_lease_end(s, l1.id, true, "lease expired", -1, 600, -1), 0);
        assert_int_equal(store_lease_end(s, l1.id, false, "again", -1, 700, 99), -ENOENT);
        assert_int_equal(count_rows(s, "SELECT count(*) FROM leases WHERE idle_device_usec = 77 "
                                       "AND state = 'expired' AND released_usec = 600"),
                         1);
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
                assert_int_equal(store_lease_end(s, lc.id, false, "done", -1, 640, 4242), 0);
                assert_int_equal(count_rows(s, "SELECT count(*) FROM leases WHERE "
                                               "idle_device_usec = 4242 AND state = 'released'"),
                                 1);
                assert_int_equal(store_lease_grant(s, &lc_part, "{}"), 0);
                assert_int_equal(store_lease_end(s, lc_part.id, false, "done", -1, 645, -1), 0);
                assert_int_equal(store_lease_end(s, part.id, false, "done", -1, 650, -1), 0);
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

/* Another process opens and closes the database (an admin's `sqlite3`):
 * that must not find it unlocked. Before the fix store_open() closed a second
 * descriptor of the file, which dropped SQLite's POSIX locks, and the outside
 * reader, alone as far as it could tell, checkpointed and deleted the WAL the
 * daemon's connection still wrote into. */
static void test_outside_reader_keeps_wal(void **state)
{
        _cleanup_free_ char *dir = make_tmpdir(), *error = NULL;
        LeaseDevice a = {.uuid = "GPU-a", .gpu_uuid = "GPU-a"};
        StoredLease l = {.uid = 1000, .kind = LEASE_MANUAL, .created_usec = 1,
                         .expires_usec = 100, .devices = &a, .n_devices = 1};
        char db[512], wal[512];
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0x40000002,
                           .l_len = 510};
        Store *s = NULL;
        int status, fd;
        pid_t pid;

        snprintf(db, sizeof db, "%s/%s", dir, STORE_DB_NAME);
        snprintf(wal, sizeof wal, "%s/%s-wal", dir, STORE_DB_NAME);
        assert_int_equal(store_open(dir, &s, &error), 0);
        assert_int_equal(store_lease_grant(s, &l, "{}"), 0);

        /* In WAL mode SQLite's unix VFS holds a shared lock on the main file's
         * SHARED range (from 0x40000002, 510 bytes) while a connection is
         * open; another process must see it. */
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                sqlite3 *other = NULL;
                int ok;

                fd = open(db, O_RDWR | O_CLOEXEC);
                if (fd < 0 || fcntl(fd, F_GETLK, &fl) < 0 || fl.l_type == F_UNLCK)
                        _exit(2);
                close(fd);
                /* Read-write, as `sqlite3 FILE 'select …'` opens it: the last
                 * connection to close checkpoints and deletes the WAL. */
                if (sqlite3_open_v2(db, &other, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
                        _exit(3);
                ok = sqlite3_exec(other, "SELECT count(*) FROM leases", NULL, NULL, NULL);
                sqlite3_close(other);
                _exit(ok == SQLITE_OK ? 0 : 4);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);

        /* The WAL the connection writes into is still the file on disk. */
        assert_int_equal(access(wal, F_OK), 0);
        l.id = 0;
        snprintf(a.uuid, sizeof a.uuid, "GPU-b");
        snprintf(a.gpu_uuid, sizeof a.gpu_uuid, "GPU-b");
        assert_int_equal(store_lease_grant(s, &l, "{}"), 0);
        store_close(s);

        /* Both grants are there after a reopen. */
        assert_int_equal(store_open(dir, &s, &error), 0);
        assert_int_equal(count_rows(s, "SELECT count(*) FROM leases WHERE state = 'active'"), 2);
        store_close(s);
        remove_tree(dir);
}

/* A lease id is never given out twice, even when the row with the highest
 * id is gone. */
static void test_lease_ids_never_reused(void **state)
{
        _cleanup_free_ char *dir = make_tmpdir(), *error = NULL;
        LeaseDevice a = {.uuid = "GPU-a", .gpu_uuid = "GPU-a"};
        StoredLease l = {.uid = 1000, .kind = LEASE_MANUAL, .created_usec = 1,
                         .expires_usec = 100, .devices = &a, .n_devices = 1};
        Store *s = NULL;
        int64_t first;

        assert_int_equal(store_open(dir, &s, &error), 0);
        assert_int_equal(store_lease_grant(s, &l, "{}"), 0);
        first = l.id;
        assert_int_equal(sqlite3_exec(store_db(s),
                                      "PRAGMA foreign_keys=OFF; DELETE FROM lease_devices; "
                                      "DELETE FROM leases; PRAGMA foreign_keys=ON;",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        l.id = 0;
        assert_int_equal(store_lease_grant(s, &l, "{}"), 0);
        assert_true(l.id > first);
        store_close(s);
        remove_tree(dir);
}

/* A database made by the schema before lease ids were AUTOINCREMENT keeps
 * its leases, their ids and devices through the upgrade, and the next id is
 * past the highest one it had. */
static void test_upgrade_keeps_leases(void **state)
{
        _cleanup_free_ char *dir = make_tmpdir(), *error = NULL;
        LeaseDevice b = {.uuid = "GPU-b", .gpu_uuid = "GPU-b"};
        StoredLease l = {.uid = 1000, .kind = LEASE_MANUAL, .created_usec = 1,
                         .expires_usec = 100, .devices = &b, .n_devices = 1};
        StoredLease *active = NULL;
        char path[512];
        sqlite3 *db = NULL;
        Store *s = NULL;
        size_t n = 0;

        snprintf(path, sizeof path, "%s/%s", dir, STORE_DB_NAME);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL), SQLITE_OK);
        for (size_t i = 0; i < store_n_migrations && store_migrations[i].version <= 5; i++)
                assert_int_equal(sqlite3_exec(db, store_migrations[i].sql, NULL, NULL, NULL),
                                 SQLITE_OK);
        assert_int_equal(
            sqlite3_exec(db,
                         "PRAGMA user_version = 5;"
                         "INSERT INTO leases (id, uid, kind, state, created_usec, request) "
                         "VALUES (7, 1000, 'manual', 'active', 1, '{}'), "
                         "(41, 1001, 'manual', 'released', 1, '{}');"
                         "INSERT INTO lease_devices (lease_id, position, device_uuid, gpu_uuid) "
                         "VALUES (7, 0, 'GPU-a', 'GPU-a');",
                         NULL, NULL, NULL),
            SQLITE_OK);
        sqlite3_close(db);

        assert_int_equal(store_open(dir, &s, &error), 0);
        assert_int_equal(store_schema_version(s), store_schema_latest());
        assert_int_equal(store_leases_load_active(s, &active, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(active[0].id, 7);
        assert_int_equal(active[0].n_devices, 1);
        assert_string_equal(active[0].devices[0].uuid, "GPU-a");
        stored_lease_done(&active[0]);
        free(active);
        assert_int_equal(sqlite3_exec(store_db(s), "DELETE FROM leases WHERE id = 41", NULL, NULL,
                                      NULL),
                         SQLITE_OK);
        assert_int_equal(store_lease_grant(s, &l, "{}"), 0);
        assert_int_equal(l.id, 42);
        store_close(s);
        remove_tree(dir);
}

/* A database at schema 10 (before shared leases had history rows of their
 * own) keeps its usage history through migration 11: raw rows with and
 * without a lease, minute and hour rows, the same report after; then a
 * shared GPU's ticks (two leases on one device at one time) are written
 * and counted as shared time. */
static void test_upgrade_keeps_history(void **state)
{
        _cleanup_free_ char *dir = make_tmpdir(), *error = NULL;
        const uint64_t hour = 3600ULL * 1000000ULL, t0 = 1700000000ULL / 3600 * hour;
        HistorySample x[2] = {
                {.device_uuid = "GPU-a", .gpu_uuid = "GPU-a", .util_percent = 10, .busy = true,
                 .memory_used_bytes = 1000, .holder_uid = 1000, .lease_id = 7,
                 .share_bytes = 4096},
                {.device_uuid = "GPU-a", .gpu_uuid = "GPU-a", .util_percent = 10, .busy = false,
                 .memory_used_bytes = 500, .holder_uid = 1001, .lease_id = 8,
                 .share_bytes = 8192},
        };
        HistoryUsage *rows = NULL;
        HistoryTotals t;
        char path[512], sql[2048];
        sqlite3 *db = NULL;
        Store *s = NULL;
        size_t n = 0;

        snprintf(path, sizeof path, "%s/%s", dir, STORE_DB_NAME);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL), SQLITE_OK);
        for (size_t i = 0; i < store_n_migrations && store_migrations[i].version <= 10; i++)
                assert_int_equal(sqlite3_exec(db, store_migrations[i].sql, NULL, NULL, NULL),
                                 SQLITE_OK);
        /* Hour t0: a whole hour of uid 1000; t0 + 1h: two raw minutes, one
         * leased (lease 7) and one not (NULL lease, as schema 10 wrote it);
         * t0 + 2h: one minute row of uid 1001; hour rows for all of it, as
         * the daemon writes them with every tick. */
        snprintf(sql, sizeof sql,
                 "PRAGMA user_version = 10;"
                 "INSERT INTO history_devices (id, device_uuid, gpu_uuid) "
                 "VALUES (1, 'GPU-a', 'GPU-a');"
                 "INSERT INTO history_hours VALUES (%llu, 1000, %llu, %llu, 3600.0),"
                 " (%llu, 1000, 60000000, 60000000, 6000.0), (%llu, -1, 60000000, 0, 0.0),"
                 " (%llu, 1001, 60000000, 30000000, 60.0);"
                 "INSERT INTO history_samples VALUES "
                 "(%llu, 1, 60000000, 50, 1, 100, 1000, 1000, 7),"
                 " (%llu, 1, 60000000, NULL, 0, 0, NULL, NULL, NULL);"
                 "INSERT INTO history_minutes VALUES (%llu, 1, 1001, 1, 60000000, 30000000, 0, 0,"
                 " 60.0, 0, 0);",
                 (unsigned long long)t0, (unsigned long long)hour, (unsigned long long)(hour / 2),
                 (unsigned long long)(t0 + hour), (unsigned long long)(t0 + hour),
                 (unsigned long long)(t0 + 2 * hour), (unsigned long long)(t0 + hour),
                 (unsigned long long)(t0 + hour + 60000000),
                 (unsigned long long)(t0 + 2 * hour));
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);

        assert_int_equal(store_open(dir, &s, &error), 0);
        assert_int_equal(store_schema_version(s), store_schema_latest());
        assert_true(store_schema_latest() >= 11);
        assert_int_equal(store_history_usage(s, t0, t0 + 3 * hour, NULL, &rows, &n, &t), 0);
        assert_int_equal(n, 2);
        assert_int_equal(rows[0].uid, 1000);
        assert_float_equal(rows[0].leased_device_sec, 3600 + 60, 1e-6);
        assert_float_equal(rows[0].busy_device_sec, 1800 + 60, 1e-6);
        assert_float_equal(rows[0].shared_device_sec, 0, 1e-9);
        assert_int_equal(rows[1].uid, 1001);
        assert_float_equal(rows[1].leased_device_sec, 60, 1e-6);
        assert_float_equal(rows[1].busy_device_sec, 30, 1e-6);
        free(rows);
        /* The raw rows and the minute row alone (no whole hour). */
        assert_int_equal(store_history_usage(s, t0 + hour, t0 + hour + hour / 2, NULL, &rows, &n,
                                             &t),
                         0);
        assert_int_equal(n, 1);
        assert_float_equal(rows[0].leased_device_sec, 60, 1e-6);
        assert_float_equal(rows[0].memory_byte_sec, 6000, 1e-6);
        free(rows);
        assert_int_equal(store_history_usage(s, t0 + 2 * hour, t0 + 2 * hour + 60000000, NULL,
                                             &rows, &n, &t),
                         0);
        assert_int_equal(n, 1);
        assert_int_equal(rows[0].uid, 1001);
        assert_float_equal(rows[0].leased_device_sec, 60, 1e-6);
        free(rows);
        {
                sqlite3_stmt *st;

                /* The unleased raw row has lease 0 now, the leased one kept 7. */
                assert_int_equal(sqlite3_prepare_v2(store_db(s),
                                                    "SELECT group_concat(lease_id) FROM "
                                                    "(SELECT lease_id FROM history_samples "
                                                    "ORDER BY ts_usec)",
                                                    -1, &st, NULL),
                                 SQLITE_OK);
                assert_int_equal(sqlite3_step(st), SQLITE_ROW);
                assert_string_equal((const char *)sqlite3_column_text(st, 0), "7,0");
                sqlite3_finalize(st);
        }

        /* Two shared leases on GPU-a at one tick are two rows. */
        assert_int_equal(store_history_write(s, t0 + 2 * hour + 60000000, 60000000, x, 2), 0);
        assert_int_equal(store_history_usage(s, t0 + 2 * hour + 60000000, t0 + 3 * hour, NULL,
                                             &rows, &n, &t),
                         0);
        assert_int_equal(n, 2);
        assert_float_equal(rows[0].shared_device_sec, 60, 1e-6);
        assert_float_equal(rows[0].shared_busy_device_sec, 60, 1e-6);
        assert_float_equal(rows[0].shared_budget_byte_sec, 4096.0 * 60, 1e-6);
        assert_float_equal(rows[0].leased_device_sec, 0, 1e-9);
        assert_float_equal(rows[1].shared_device_sec, 60, 1e-6);
        assert_float_equal(rows[1].shared_memory_byte_sec, 500.0 * 60, 1e-6);
        assert_float_equal(t.leased_device_sec, 0, 1e-9);
        assert_float_equal(t.shared_device_sec, 120, 1e-6);
        free(rows);
        store_close(s);
        remove_tree(dir);
}

/* Migration 11 rebuilds the raw history table: a gpukeeperd killed with
 * SIGKILL in the middle of it leaves schema 10 with every row (the
 * migration and its user_version bump are one transaction), and the next
 * start migrates. The child is killed at several instants into the
 * migration (and once not at all); whichever side of the commit it dies
 * on, the rows are all there and the schema is 10 or 11, never in between. */
static void test_history_migration_survives_kill9(void **state)
{
        static const unsigned delays_msec[] = {5, 40, 150, 0};
        _cleanup_free_ char *dir = make_tmpdir(), *error = NULL;
        char path[512];
        sqlite3 *db = NULL;
        int killed_before = 0;

        snprintf(path, sizeof path, "%s/%s", dir, STORE_DB_NAME);
        for (size_t k = 0; k < sizeof delays_msec / sizeof delays_msec[0]; k++) {
                sqlite3_stmt *st;
                Store *s = NULL;
                int status, version;
                pid_t pid;

                remove_tree(dir);
                assert_int_equal(mkdir(dir, 0700), 0);
                assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
                assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL),
                                 SQLITE_OK);
                for (size_t i = 0; i < store_n_migrations && store_migrations[i].version <= 10; i++)
                        assert_int_equal(
                            sqlite3_exec(db, store_migrations[i].sql, NULL, NULL, NULL), SQLITE_OK);
                /* 200,000 raw rows: a migration that takes a while. */
                assert_int_equal(
                    sqlite3_exec(db,
                                 "PRAGMA user_version = 10;"
                                 "WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i "
                                 "WHERE n < 199999) INSERT INTO history_samples SELECT "
                                 "n * 1000000, n % 8, 1000000, 50, 1, 1024, 100000, "
                                 "CASE WHEN n % 3 = 0 THEN NULL ELSE 1000 END, "
                                 "CASE WHEN n % 3 = 0 THEN NULL ELSE n END FROM i;",
                                 NULL, NULL, NULL),
                    SQLITE_OK);
                sqlite3_close(db);

                pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        Store *child = NULL;

                        _exit(store_open(dir, &child, NULL) < 0 ? 3 : 0);
                }
                if (delays_msec[k] > 0) {
                        usleep(delays_msec[k] * 1000);
                        kill(pid, SIGKILL);
                }
                assert_int_equal(waitpid(pid, &status, 0), pid);

                /* Outside the store first: the schema on disk is one or the other. */
                assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
                assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL),
                                 SQLITE_OK);
                assert_int_equal(sqlite3_step(st), SQLITE_ROW);
                version = sqlite3_column_int(st, 0);
                sqlite3_finalize(st);
                assert_true(version == 10 || version == store_schema_latest());
                killed_before += WIFSIGNALED(status) && version == 10;
                /* Not killed: the migration ran to its end. */
                assert_true(WIFSIGNALED(status) || version == store_schema_latest());

                assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM history_samples",
                                                    -1, &st, NULL),
                                 SQLITE_OK);
                assert_int_equal(sqlite3_step(st), SQLITE_ROW);
                assert_int_equal(sqlite3_column_int(st, 0), 200000);
                sqlite3_finalize(st);
                sqlite3_close(db);

                /* The next start migrates (again, or not at all). */
                assert_int_equal(store_open(dir, &s, &error), 0);
                assert_int_equal(store_schema_version(s), store_schema_latest());
                assert_int_equal(sqlite3_prepare_v2(store_db(s),
                                                    "SELECT count(*), sum(lease_id = 0) "
                                                    "FROM history_samples",
                                                    -1, &st, NULL),
                                 SQLITE_OK);
                assert_int_equal(sqlite3_step(st), SQLITE_ROW);
                assert_int_equal(sqlite3_column_int(st, 0), 200000);
                assert_int_equal(sqlite3_column_int(st, 1), 66667);
                sqlite3_finalize(st);
                store_close(s);
        }
        /* At least one kill landed before the migration committed. */
        assert_true(killed_before >= 1);
        remove_tree(dir);
}

/* The fault seam (fault-vfs.h): while writes fail with EIO, a grant and an
 * audit record fail with -EIO and leave nothing behind, reads keep working,
 * and once the fault clears the same connection writes again; the file is
 * intact after it all. Without the seam, setting a fault is refused. */
static void test_io_error_fails_cleanly_and_recovers(void **state)
{
        _cleanup_free_ char *dir = make_tmpdir(), *error = NULL;
        LeaseDevice a = {.uuid = "GPU-a", .gpu_uuid = "GPU-a"};
        LeaseDevice b = {.uuid = "GPU-b", .gpu_uuid = "GPU-b"};
        StoredLease l = {.uid = 1000, .kind = LEASE_MANUAL, .created_usec = 1,
                         .expires_usec = 100, .devices = &a, .n_devices = 1};
        StoredLease *active = NULL;
        size_t n = 0;
        int64_t first;
        int leases, audits;
        Store *s = NULL;

        assert_int_equal(store_open(dir, &s, &error), 0);
        assert_int_equal(store_set_fault(s, STORE_FAULT_IO_ERROR), -EOPNOTSUPP);
        store_close(s);

        assert_int_equal(store_open_flags(dir, STORE_OPEN_FAULT_SEAM, &s, &error), 0);
        assert_int_equal(store_lease_grant(s, &l, "{}"), 0);
        first = l.id;
        leases = count_rows(s, "SELECT count(*) FROM leases");
        audits = count_rows(s, "SELECT count(*) FROM audit");

        l.devices = &b;
        assert_int_equal(store_set_fault(s, STORE_FAULT_IO_ERROR), 0);
        for (int i = 0; i < 3; i++) {
                l.id = 0;
                assert_int_equal(store_lease_grant(s, &l, "{}"), -EIO);
                assert_int_equal(store_audit(s, 1000, "test", NULL, NULL), -EIO);
                /* Reads still answer, and show nothing of the failed writes. */
                assert_int_equal(count_rows(s, "SELECT count(*) FROM leases"), leases);
                assert_int_equal(count_rows(s, "SELECT count(*) FROM audit"), audits);
        }
        assert_true(store_faults_injected(s) > 0);

        assert_int_equal(store_set_fault(s, STORE_FAULT_NONE), 0);
        l.id = 0;
        assert_int_equal(store_lease_grant(s, &l, "{}"), 0);
        assert_true(l.id > first);
        assert_int_equal(count_rows(s, "SELECT count(*) FROM leases"), leases + 1);
        store_close(s);

        /* A fresh connection, without the seam: both leases, intact. */
        assert_int_equal(store_open(dir, &s, &error), 0);
        assert_int_equal(store_leases_load_active(s, &active, &n), 0);
        assert_int_equal(n, 2);
        for (size_t i = 0; i < n; i++)
                stored_lease_done(&active[i]);
        free(active);
        assert_int_equal(count_rows(s, "SELECT count(*) FROM pragma_integrity_check "
                                       "WHERE integrity_check <> 'ok'"),
                         0);
        store_close(s);
        remove_tree(dir);
}

/* Shared leases (migration 10): several on one GPU, never with a whole-GPU
 * lease or a MIG instance of it; the budget survives a reload. */
static void test_shared_leases(void **state)
{
        _cleanup_free_ char *dir = make_tmpdir(), *error = NULL;
        LeaseDevice a = {.uuid = "GPU-a", .gpu_uuid = "GPU-a"};
        LeaseDevice mig = {.uuid = "MIG-a1", .gpu_uuid = "GPU-a", .profile = "1g.10gb"};
        StoredLease s1 = {.uid = 1000, .kind = LEASE_MANUAL, .created_usec = 1,
                          .expires_usec = 100, .devices = &a, .n_devices = 1,
                          .share_bytes = UINT64_C(20) << 30};
        StoredLease s2 = s1, whole = s1, part = s1, *active = NULL;
        Store *s = NULL;
        size_t n = 0;

        s2.uid = 1001;
        whole.share_bytes = 0;
        part.share_bytes = 0;
        part.devices = &mig;
        assert_int_equal(store_open(dir, &s, &error), 0);
        assert_int_equal(store_lease_grant(s, &s1, "{}"), 0);
        assert_int_equal(store_lease_grant(s, &s2, "{}"), 0);
        assert_int_equal(store_lease_grant(s, &whole, "{}"), -EEXIST);
        assert_int_equal(store_lease_grant(s, &part, "{}"), -EEXIST);
        assert_int_equal(store_leases_load_active(s, &active, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(active[0].share_bytes, UINT64_C(20) << 30);
        assert_int_equal(active[1].uid, 1001);
        for (size_t i = 0; i < n; i++)
                stored_lease_done(&active[i]);
        free(active);
        assert_int_equal(store_lease_end(s, s1.id, false, "test", 1000, 2, -1), 0);
        assert_int_equal(store_lease_end(s, s2.id, false, "test", 1001, 2, -1), 0);
        assert_int_equal(store_lease_grant(s, &whole, "{}"), 0);
        s1.id = 0;
        assert_int_equal(store_lease_grant(s, &s1, "{}"), -EEXIST);
        store_close(s);
        remove_tree(dir);
}

/* Whether the program of `sql` builds a temporary b-tree (OpenEphemeral). */
static bool builds_temp_btree(sqlite3 *db, const char *sql)
{
        _cleanup_free_ char *explain = NULL;
        sqlite3_stmt *st = NULL;
        bool found = false;

        assert_true(asprintf(&explain, "EXPLAIN %s", sql) > 0);
        assert_int_equal(sqlite3_prepare_v2(db, explain, -1, &st, NULL), SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW)
                found = found ||
                        strcmp((const char *)sqlite3_column_text(st, 1), "OpenEphemeral") == 0;
        sqlite3_finalize(st);
        return found;
}

/* Migration 12: the CHECKs on a lease's kind and state still refuse what
 * they refused, and writing a lease row no longer builds a temporary b-tree
 * per row for them (issue 16). */
static void test_lease_checks(void **state)
{
        _cleanup_free_ char *dir = make_tmpdir(), *error = NULL;
        Store *s = NULL;
        sqlite3 *db;

        assert_int_equal(store_open(dir, &s, &error), 0);
        db = store_db(s);
        assert_true(store_schema_latest() >= 12);
        assert_int_equal(sqlite3_exec(db,
                                      "INSERT INTO leases (uid, kind, state, created_usec, "
                                      "request) VALUES (1, 'slurm', 'active', 1, '{}'), "
                                      "(1, 'run', 'released', 1, '{}'), "
                                      "(1, 'manual', 'expired', 1, '{}')",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_exec(db,
                                      "INSERT INTO leases (uid, kind, state, created_usec, "
                                      "request) VALUES (1, 'Manual', 'active', 1, '{}')",
                                      NULL, NULL, NULL),
                         SQLITE_CONSTRAINT);
        assert_int_equal(sqlite3_exec(db,
                                      "INSERT INTO leases (uid, kind, state, created_usec, "
                                      "request) VALUES (1, 'manual', 'gone', 1, '{}')",
                                      NULL, NULL, NULL),
                         SQLITE_CONSTRAINT);
        assert_int_equal(sqlite3_exec(db, "UPDATE leases SET state = 'held' WHERE id = 1", NULL,
                                      NULL, NULL),
                         SQLITE_CONSTRAINT);
        assert_false(builds_temp_btree(db, "INSERT INTO leases (uid, kind, state, created_usec, "
                                           "request) VALUES (?, ?, 'active', ?, ?)"));
        assert_false(builds_temp_btree(db, "UPDATE leases SET state = ? WHERE id = ?"));
        store_close(s);
        remove_tree(dir);
}

/* Queue places keep when their request first queued (migration 13), and
 * read back in request id order. */
static void test_queue_places(void **state)
{
        _cleanup_free_ char *dir = make_tmpdir(), *error = NULL;
        StoredQueuePlace *list = NULL;
        Store *s = NULL;
        size_t n = 0;

        assert_int_equal(store_open(dir, &s, &error), 0);
        assert_int_equal(store_queue_place_add(s, &(StoredQueuePlace){.request_id = 7, .uid = 1001,
                                                                      .pid = 42,
                                                                      .pid_start_time = 99,
                                                                      .since_usec = 1234567}),
                         0);
        assert_int_equal(store_queue_place_add(s, &(StoredQueuePlace){.request_id = 3, .uid = 1002,
                                                                      .pid = 43,
                                                                      .pid_start_time = 98}),
                         0);
        store_close(s);
        s = NULL;
        assert_int_equal(store_open(dir, &s, &error), 0);
        assert_int_equal(store_queue_places_load(s, &list, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(list[0].request_id, 3);
        assert_int_equal(list[0].since_usec, 0);
        assert_int_equal(list[1].request_id, 7);
        assert_int_equal(list[1].uid, 1001);
        assert_int_equal(list[1].pid, 42);
        assert_int_equal(list[1].pid_start_time, 99);
        assert_int_equal(list[1].since_usec, 1234567);
        free(list);
        assert_int_equal(store_queue_place_remove(s, 3), 0);
        assert_int_equal(store_queue_places_load(s, &list, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(list[0].request_id, 7);
        free(list);
        store_close(s);
        remove_tree(dir);
}

/* The checkpointer's state once it has nothing left to do (a checkpoint
 * asked for while one ran runs after it): waits up to 30 s. */
static CheckpointerCounts checkpointer_settled(Store *s)
{
        CheckpointerCounts c = {};

        for (int i = 0; i < 3000; i++) {
                assert_true(store_checkpoint_counts(s, &c));
                if (c.idle)
                        break;
                usleep(10 * 1000);
        }
        assert_true(c.idle);
        return c;
}

static int wal_size_frames(const char *wal, off_t frame)
{
        struct stat st;

        assert_int_equal(stat(wal, &st), 0);
        return (int)(st.st_size / frame);
}

/* Checkpoints in the background (issue 16): commits past
 * STORE_WAL_CHECKPOINT_PAGES ask the checkpointer's thread and go on; once
 * it has copied the WAL back, the next commit starts the WAL over, so the
 * file stops growing. While an outside reader keeps an old snapshot no
 * checkpoint can copy past it and the WAL grows; once it has gone, the
 * commits at the hard limit copy the rest themselves and the WAL starts over
 * again. Every row committed is there. */
static void test_background_checkpoints(void **state)
{
        _cleanup_free_ char *dir = make_tmpdir(), *error = NULL, *wal = NULL, *insert = NULL,
                            *db_path = NULL;
        CheckpointerCounts c;
        sqlite3_stmt *st = NULL;
        sqlite3 *reader = NULL;
        Store *s = NULL;
        off_t frame;
        int page, size;

        assert_true(asprintf(&wal, "%s/%s-wal", dir, STORE_DB_NAME) > 0);
        assert_true(asprintf(&db_path, "%s/%s", dir, STORE_DB_NAME) > 0);
        assert_int_equal(store_open(dir, &s, &error), 0);
        assert_false(store_checkpoint_counts(s, &c));
        assert_int_equal(sqlite3_prepare_v2(store_db(s), "PRAGMA page_size", -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        page = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        st = NULL;
        frame = 24 + page;
        /* About 100 pages per transaction, whatever their size. */
        assert_true(asprintf(&insert,
                             "INSERT INTO audit (ts_usec, uid, action, detail) "
                             "VALUES (1, 0, 'test', zeroblob(%d))",
                             98 * page) > 0);
        assert_int_equal(store_checkpoint_in_background(s), 0);
        assert_int_equal(store_checkpoint_in_background(s), 0); /* once is enough */

        for (int i = 0; i < 45; i++)
                assert_int_equal(sqlite3_exec(store_db(s), insert, NULL, NULL, NULL), SQLITE_OK);
        assert_true(store_wal_frames(s) >= STORE_WAL_CHECKPOINT_PAGES);
        c = checkpointer_settled(s);
        assert_true(c.asked >= 1);
        assert_true(c.done >= 1);
        assert_int_equal(c.failed, 0);
        assert_int_equal(c.last_copied, c.last_wal); /* no commit came during the last one */
        size = wal_size_frames(wal, frame);
        assert_true(size >= STORE_WAL_CHECKPOINT_PAGES);

        /* Copied back: the next commit starts the WAL over; the file does
         * not grow while the commits stay below the threshold. */
        for (int i = 0; i < 30; i++)
                assert_int_equal(sqlite3_exec(store_db(s), insert, NULL, NULL, NULL), SQLITE_OK);
        assert_true(store_wal_frames(s) < STORE_WAL_CHECKPOINT_PAGES);
        assert_int_equal(wal_size_frames(wal, frame), size);

        /* An outside reader on an old snapshot: nothing can be copied past
         * it, so the WAL grows past the hard limit... */
        assert_int_equal(sqlite3_open_v2(db_path, &reader, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_exec(reader, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(reader, "SELECT count(*) FROM audit", -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        for (int i = 0; i < 170; i++)
                assert_int_equal(sqlite3_exec(store_db(s), insert, NULL, NULL, NULL), SQLITE_OK);
        assert_true(store_wal_frames(s) > STORE_WAL_CHECKPOINT_HARD_PAGES);
        sqlite3_finalize(st);
        st = NULL;
        assert_int_equal(sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(reader);

        /* ... and once it has gone, the next commit that finds the thread
         * idle copies the rest inside itself (a commit at the hard limit
         * does not wait for the thread), and the one after it starts the
         * WAL over. */
        for (int i = 0; i < 5 && store_wal_frames(s) >= STORE_WAL_CHECKPOINT_PAGES; i++) {
                (void)checkpointer_settled(s);
                assert_int_equal(sqlite3_exec(store_db(s), insert, NULL, NULL, NULL), SQLITE_OK);
        }
        assert_true(store_wal_frames(s) < STORE_WAL_CHECKPOINT_PAGES);
        c = checkpointer_settled(s);
        assert_int_equal(c.failed, 0);

        assert_int_equal(sqlite3_prepare_v2(store_db(s), "SELECT count(*) FROM audit WHERE "
                                                         "action = 'test'",
                                            -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_true(sqlite3_column_int(st, 0) >= 45 + 30 + 170 + 1);
        sqlite3_finalize(st);
        /* Closing stops the thread first (ASan sees its connection freed). */
        store_close(s);
        remove_tree(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_create_wal_and_schema),
                cmocka_unit_test(test_audit_and_runs),
                cmocka_unit_test(test_reader),
                cmocka_unit_test(test_recent_alerts_read_only_alerts),
                cmocka_unit_test(test_refuses_newer_schema),
                cmocka_unit_test(test_refuses_symlink),
                cmocka_unit_test(test_creates_state_dir),
                cmocka_unit_test(test_leases_never_double_granted),
                cmocka_unit_test(test_outside_reader_keeps_wal),
                cmocka_unit_test(test_lease_ids_never_reused),
                cmocka_unit_test(test_upgrade_keeps_leases),
                cmocka_unit_test(test_upgrade_keeps_history),
                cmocka_unit_test(test_history_migration_survives_kill9),
                cmocka_unit_test(test_io_error_fails_cleanly_and_recovers),
                cmocka_unit_test(test_shared_leases),
                cmocka_unit_test(test_lease_checks),
                cmocka_unit_test(test_background_checkpoints),
                cmocka_unit_test(test_queue_places),
        };
        return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
