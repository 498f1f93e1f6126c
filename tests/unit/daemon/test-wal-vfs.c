/* Unit tests for the WAL write gathering VFS (store/wal-vfs.h): one write
 * per transaction, committed rows visible at once to a connection on the
 * default VFS, commits surviving a SIGKILL of the writer, large transactions
 * (spilled to the WAL before their commit, and rolled back) leaving a sound
 * database. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "basic/macro.h"
#include "store/store.h"
#include "store/wal-vfs.h"

typedef struct Fixture {
        char dir[64];
        char path[128];
        WalVfs *vfs;
        sqlite3 *db;
} Fixture;

static void exec_ok(sqlite3 *db, const char *sql)
{
        char *msg = NULL;
        int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

        if (rc != SQLITE_OK)
                fail_msg("%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
        sqlite3_stmt *st = NULL;
        int64_t v;

        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return v;
}

static void assert_sound(sqlite3 *db)
{
        sqlite3_stmt *st = NULL;

        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
        sqlite3_finalize(st);
}

/* The daemon's settings (store.c), on this VFS. */
static sqlite3 *open_gathering(Fixture *f)
{
        sqlite3 *db = NULL;

        assert_int_equal(sqlite3_open_v2(f->path, &db,
                                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                             SQLITE_OPEN_FULLMUTEX,
                                         wal_vfs_name(f->vfs)),
                         SQLITE_OK);
        exec_ok(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
        return db;
}

static sqlite3 *open_plain(const char *path)
{
        sqlite3 *db = NULL;

        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        return db;
}

static int setup(void **state)
{
        Fixture *f = calloc(1, sizeof *f);

        assert_non_null(f);
        snprintf(f->dir, sizeof f->dir, "/tmp/gk-test-walvfs-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof f->path, "%s/t.db", f->dir);
        assert_int_equal(wal_vfs_new(NULL, &f->vfs), 0);
        f->db = open_gathering(f);
        /* Like a lease grant: a row in a table with three indexes and one in
         * a second table with its own, so a transaction is several pages. */
        exec_ok(f->db, "CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT, y TEXT,"
                       " z INTEGER);"
                       "CREATE INDEX a_x ON a(x); CREATE INDEX a_y ON a(y);"
                       "CREATE INDEX a_z ON a(z);"
                       "CREATE TABLE b (id INTEGER PRIMARY KEY, v BLOB);"
                       "CREATE INDEX b_v ON b(v);");
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        Fixture *f = *state;
        char p[160];

        sqlite3_close(f->db);
        wal_vfs_free(f->vfs);
        snprintf(p, sizeof p, "%s-wal", f->path);
        unlink(p);
        snprintf(p, sizeof p, "%s-shm", f->path);
        unlink(p);
        unlink(f->path);
        rmdir(f->dir);
        free(f);
        return 0;
}

static void insert_pair(sqlite3 *db, int i)
{
        char sql[256];

        snprintf(sql, sizeof sql,
                 "BEGIN IMMEDIATE; INSERT INTO a (x, y, z) VALUES ('x%d', 'y%d', %d);"
                 "INSERT INTO b (v) VALUES (randomblob(64)); COMMIT;",
                 i, i, i);
        exec_ok(db, sql);
}

static void test_one_write_per_transaction(void **state)
{
        Fixture *f = *state;
        sqlite3_int64 w0, c0, w1, c1;
        sqlite3 *reader = open_plain(f->path);

        insert_pair(f->db, 0); /* the first may restart the WAL */
        wal_vfs_counts(f->vfs, &w0, &c0);
        for (int i = 1; i <= 20; i++) {
                insert_pair(f->db, i);
                /* Visible at once to another connection on the default VFS:
                 * the frames reached the file before the commit was
                 * published in the wal-index. */
                assert_int_equal(query_int(reader, "SELECT count(*) FROM a"), i + 1);
        }
        wal_vfs_counts(f->vfs, &w1, &c1);
        /* SQLite asked for two writes per frame and at least 4 frames per
         * transaction; one write each went to the file. */
        assert_true(c1 - c0 >= 20 * 2 * 4);
        assert_int_equal(w1 - w0, 20);
        assert_sound(reader);
        sqlite3_close(reader);
}

static void test_commit_survives_sigkill(void **state)
{
        Fixture *f = *state;
        int status;
        pid_t pid;

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                /* A connection of its own in the child, then killed right
                 * after its commits returned: nothing closes or flushes. */
                sqlite3 *db = open_gathering(f);

                for (int i = 100; i < 110; i++)
                        insert_pair(db, i);
                raise(SIGKILL);
                _exit(1);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        sqlite3 *reader = open_plain(f->path);
        assert_int_equal(query_int(reader, "SELECT count(*) FROM a WHERE z >= 100 AND z < 110"),
                         10);
        assert_sound(reader);
        sqlite3_close(reader);
}

static void test_large_and_rolled_back_transactions(void **state)
{
        Fixture *f = *state;
        sqlite3 *reader;

        /* A tiny page cache makes SQLite spill pages of an unfinished
         * transaction into the WAL and rewrite them in place later; 3 MB of
         * rows pass WAL_VFS_BUFFER_MAX and the per-write limit. */
        exec_ok(f->db, "PRAGMA cache_size = 8;");
        exec_ok(f->db, "BEGIN IMMEDIATE;"
                       "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)"
                       "  INSERT INTO b (v) SELECT randomblob(2000) FROM n;"
                       "UPDATE b SET v = randomblob(2100) WHERE id % 3 = 0;"
                       "ROLLBACK;");
        exec_ok(f->db, "BEGIN IMMEDIATE;"
                       "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)"
                       "  INSERT INTO b (v) SELECT randomblob(2000) FROM n;"
                       "UPDATE b SET v = randomblob(2100) WHERE id % 3 = 0;"
                       "COMMIT;");
        insert_pair(f->db, 1000);

        reader = open_plain(f->path);
        assert_true(query_int(reader, "SELECT count(*) FROM b") >= 1501);
        assert_int_equal(query_int(reader, "SELECT count(*) FROM a WHERE z = 1000"), 1);
        assert_sound(reader);
        sqlite3_close(reader);

        /* A checkpoint reads the WAL back through the layer. */
        exec_ok(f->db, "PRAGMA wal_checkpoint(TRUNCATE);");
        assert_sound(f->db);
}

static void test_store_uses_it(void **state)
{
        char dir[] = "/tmp/gk-test-walvfs-store-XXXXXX", p[128];
        _cleanup_free_ char *error = NULL;
        sqlite3_stmt *st = NULL;
        Store *s = NULL;
        const char *name;
        (void)state;

        assert_non_null(mkdtemp(dir));
        assert_int_equal(store_open(dir, &s, &error), 0);
        assert_int_equal(sqlite3_file_control(store_db(s), "main", SQLITE_FCNTL_VFSNAME, &name),
                         SQLITE_OK);
        assert_non_null(strstr(name, "gpukeeper-wal-"));
        sqlite3_free((void *)name);
        assert_int_equal(store_audit(s, 0, "test", "subject", NULL), 0);
        assert_int_equal(sqlite3_prepare_v2(store_db(s), "SELECT count(*) FROM audit", -1, &st,
                                            NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_true(sqlite3_column_int(st, 0) >= 1);
        sqlite3_finalize(st);
        store_close(s);
        const char *names[] = {STORE_DB_NAME, STORE_DB_NAME "-wal", STORE_DB_NAME "-shm"};
        for (size_t i = 0; i < 3; i++) {
                snprintf(p, sizeof p, "%s/%s", dir, names[i]);
                unlink(p);
        }
        rmdir(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_one_write_per_transaction, setup, teardown),
                cmocka_unit_test_setup_teardown(test_commit_survives_sigkill, setup, teardown),
                cmocka_unit_test_setup_teardown(test_large_and_rolled_back_transactions, setup,
                                                teardown),
                cmocka_unit_test(test_store_uses_it),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
