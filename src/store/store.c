/* SQLite state database: opening, pragmas, migrations, audit records.
 * See store.h for the contract. */
#include "store/store.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "basic/time-util.h"
#include "store/checkpointer.h"
#include "store/fault-vfs.h"
#include "store/migrations.h"
#include "store/wal-vfs.h"

/* Every statement the daemon runs is one of a few fixed strings; more than
 * this would be a programming error. */
#define STORE_STATEMENT_CACHE 48

struct Store {
        sqlite3 *db;
        WalVfs *vfs; /* the WAL write gathering VFS db was opened with */
        struct {
                const char *sql;
                sqlite3_stmt *st;
        } statements[STORE_STATEMENT_CACHE];
        size_t n_statements;
        uint64_t busy_start_usec;  /* CLOCK_MONOTONIC: the current wait began */
        uint64_t busy_failed_usec; /* CLOCK_MONOTONIC: the last wait that gave up */
        StoreFaultVfs *fault_vfs;  /* STORE_OPEN_FAULT_SEAM only */
        char *path;                /* the database file */
        Checkpointer *checkpointer; /* store_checkpoint_in_background() */
        int wal_frames;             /* the WAL's length after the last commit */
        int checkpoint_ask_at;      /* the length at which a commit asks next */
        uint64_t checkpoints_in_commit; /* at STORE_WAL_CHECKPOINT_HARD_PAGES */
        Store *origin; /* store_open_reader(): the store it reads (vfs, path and WAL are its) */
};

/* SQLite's busy handler while serving: wait at most STORE_BUSY_TIMEOUT_MS
 * for a lock, and not at all within STORE_BUSY_QUIET_USEC of a wait that
 * gave up, so a tick that writes several times stalls the loop once, not
 * once per statement. Returns nonzero to wait again. */
static int busy_handler(void *userdata, int count)
{
        Store *s = userdata;
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        if (count == 0) {
                if (s->busy_failed_usec && now - s->busy_failed_usec < STORE_BUSY_QUIET_USEC)
                        return 0;
                s->busy_start_usec = now;
        }
        if (now - s->busy_start_usec >= STORE_BUSY_TIMEOUT_MS * USEC_PER_MSEC) {
                s->busy_failed_usec = now;
                return 0;
        }
        (void)nanosleep(&(struct timespec){.tv_nsec = 1000 * 1000}, NULL);
        return 1;
}

/* Store a malloc'd message in *ret_error (when not NULL) and return r. */
_printf_(3, 4) static int set_error(char **ret_error, int r, const char *fmt, ...)
{
        if (ret_error) {
                char *m = NULL;
                va_list ap;

                va_start(ap, fmt);
                if (vasprintf(&m, fmt, ap) >= 0)
                        *ret_error = m;
                va_end(ap);
        }
        return r;
}

int store_errno_from_sqlite(int rc)
{
        switch (rc & 0xff) {
        case SQLITE_OK:
                return 0;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_INTERRUPT:
                return -EINTR;
        default:
                return -EIO;
        }
}

static int exec_sql(sqlite3 *db, const char *sql)
{
        return store_errno_from_sqlite(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

static int read_user_version(sqlite3 *db)
{
        sqlite3_stmt *st = NULL;
        int v = -EIO;

        if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        if (sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        return v;
}

/* Apply every migration newer than the database, each in one transaction
 * that also bumps user_version, so a crash leaves the schema at a known step. */
static int migrate(sqlite3 *db, char **ret_error)
{
        int current = read_user_version(db);

        if (current < 0)
                return set_error(ret_error, current, "reading schema version: %s",
                                 sqlite3_errmsg(db));
        if (current > store_schema_latest())
                return set_error(ret_error, -EPROTONOSUPPORT,
                                 "database schema version %d is newer than this gpukeeperd "
                                 "knows (%d); downgrade is not supported",
                                 current, store_schema_latest());

        for (size_t i = 0; i < store_n_migrations; i++) {
                const StoreMigration *m = &store_migrations[i];
                char pragma[64];
                int r;

                if (m->version <= current)
                        continue;
                r = exec_sql(db, "BEGIN IMMEDIATE");
                if (r < 0)
                        return set_error(ret_error, r, "starting migration: %s",
                                         sqlite3_errmsg(db));
                snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", m->version);
                r = exec_sql(db, m->sql);
                if (r >= 0)
                        r = exec_sql(db, pragma);
                if (r >= 0)
                        r = exec_sql(db, "COMMIT");
                if (r < 0) {
                        char *msg = strdup(sqlite3_errmsg(db));

                        exec_sql(db, "ROLLBACK");
                        r = set_error(ret_error, r, "schema migration %d failed: %s", m->version,
                                      msg ? msg : "out of memory");
                        free(msg);
                        return r;
                }
        }
        return 0;
}

/* Refuse to serve from a database whose references do not hold. */
static int check_foreign_keys(sqlite3 *db, char **ret_error)
{
        sqlite3_stmt *st = NULL;
        int rc;

        if (sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st, NULL) != SQLITE_OK)
                return set_error(ret_error, -EIO, "checking references: %s", sqlite3_errmsg(db));
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc == SQLITE_ROW)
                return set_error(ret_error, -EBADMSG,
                                 "the database has rows that refer to missing rows "
                                 "(PRAGMA foreign_key_check)");
        if (rc != SQLITE_DONE)
                return set_error(ret_error, store_errno_from_sqlite(rc), "checking references: %s",
                                 sqlite3_errmsg(db));
        return 0;
}

int store_schema_latest(void)
{
        return store_n_migrations > 0 ? store_migrations[store_n_migrations - 1].version : 0;
}

void store_configure_sqlite(void)
{
        /* SQLITE_MISUSE once SQLite is initialised: then it stays as it is. */
        (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int store_open(const char *state_dir, Store **ret, char **ret_error)
{
        return store_open_flags(state_dir, 0, ret, ret_error);
}

int store_open_flags(const char *state_dir, StoreOpenFlags flags, Store **ret, char **ret_error)
{
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        StoreFaultVfs *fault_vfs = NULL;
        sqlite3 *db = NULL;
        WalVfs *vfs = NULL;
        Store *s;
        int r;

        if (mkdir(state_dir, 0755) < 0 && errno != EEXIST)
                return set_error(ret_error, negative_errno(), "cannot create state_dir %s: %s",
                                 state_dir, strerror(errno));
        if (asprintf(&path, "%s/%s", state_dir, STORE_DB_NAME) < 0)
                return -ENOMEM;

        /* Create the file ourselves so its mode is 0600 whatever the umask,
         * and refuse a symlink planted in its place. The descriptor is closed
         * before SQLite opens the file: closing any descriptor of a file drops
         * every POSIX lock this process holds on it, SQLite's included, and
         * the next outside reader would then think it is alone, checkpoint and
         * delete the WAL the daemon still writes into (issue 10). */
        fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return set_error(ret_error, negative_errno(), "cannot open %s: %s", path,
                                 strerror(errno));
        if (fchmod(fd, 0600) < 0)
                return set_error(ret_error, negative_errno(), "cannot chmod %s: %s", path,
                                 strerror(errno));
        closep(&fd);
        fd = -1;

        store_configure_sqlite();
        if (flags & STORE_OPEN_FAULT_SEAM) {
                r = store_fault_vfs_new(&fault_vfs);
                if (r < 0)
                        return set_error(ret_error, r, "cannot set up the fault seam: %s",
                                         strerror(-r));
        }
        /* Each WAL transaction goes to the file in one write (wal-vfs.h),
         * over the fault seam when there is one (it plays the disk). */
        r = wal_vfs_new(fault_vfs ? store_fault_vfs_name(fault_vfs) : NULL, &vfs);
        if (r < 0) {
                store_fault_vfs_free(fault_vfs);
                return set_error(ret_error, r, "cannot set up SQLite's file layer: %s",
                                 strerror(-r));
        }
        /* NOMUTEX: a Store is used by one thread (the daemon's event loop),
         * so SQLite's per-connection mutex around every call is overhead. */
        r = sqlite3_open_v2(path, &db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX,
                            wal_vfs_name(vfs));
        if (r != SQLITE_OK) {
                r = set_error(ret_error, store_errno_from_sqlite(r), "cannot open database %s: %s",
                              path, db ? sqlite3_errmsg(db) : "out of memory");
                sqlite3_close(db);
                wal_vfs_free(vfs);
                store_fault_vfs_free(fault_vfs);
                return r;
        }
        /* Opening may wait for an outside program (a backup finishing); the
         * daemon is not serving yet. */
        sqlite3_busy_timeout(db, STORE_OPEN_BUSY_TIMEOUT_MS);

        /* WAL with synchronous=NORMAL: every commit survives a crash of the
         * daemon (kill -9); after a power loss the last commits may be lost
         * but the file stays consistent.
         *
         * wal_autocheckpoint 4000 pages (4 MiB of WAL with 1 KiB pages,
         * 16 MiB with 4 KiB ones; SQLite's default is 1000): a grant or release rewrites the same few pages, and a
         * checkpoint writes each page once however often the WAL holds it,
         * so a quarter as many checkpoints (one fdatasync each, inside some
         * unlucky request) write about a quarter of the data (issue 16).
         *
         * The page size (STORE_PAGE_SIZE_SQL) applies to a new database only:
         * it must come before journal_mode=WAL writes the first page. */
        r = exec_sql(db, STORE_PAGE_SIZE_SQL
                         "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                         STORE_WAL_AUTOCHECKPOINT_SQL STORE_WAL_SIZE_LIMIT_SQL);
        if (r < 0) {
                r = set_error(ret_error, r, "cannot configure database %s: %s", path,
                              sqlite3_errmsg(db));
                sqlite3_close(db);
                wal_vfs_free(vfs);
                store_fault_vfs_free(fault_vfs);
                return r;
        }

        /* Migrations run with foreign keys off, so one can rebuild a table
         * that others refer to (SQLite's documented way to change a table);
         * each keeps the ids, and the check below proves it did. */
        r = migrate(db, ret_error);
        if (r >= 0)
                r = check_foreign_keys(db, ret_error);
        if (r >= 0) {
                r = exec_sql(db, "PRAGMA foreign_keys=ON;");
                if (r < 0)
                        r = set_error(ret_error, r, "cannot configure database %s: %s", path,
                                      sqlite3_errmsg(db));
        }
        if (r < 0) {
                sqlite3_close(db);
                wal_vfs_free(vfs);
                store_fault_vfs_free(fault_vfs);
                return r;
        }

        s = calloc(1, sizeof *s);
        if (!s) {
                sqlite3_close(db);
                wal_vfs_free(vfs);
                store_fault_vfs_free(fault_vfs);
                return -ENOMEM;
        }
        sqlite3_busy_handler(db, busy_handler, s);
        s->db = db;
        s->path = TAKE_PTR(path);
        s->fault_vfs = fault_vfs;
        s->vfs = vfs;
        *ret = s;
        return 0;
}

static void rollback(Store *s)
{
        sqlite3_stmt *st = NULL;

        if (store_statement(s, "ROLLBACK", &st) >= 0)
                (void)store_step_done(st);
}

int store_connect(const char *path, const char *vfs, const char *sql, sqlite3 **ret)
{
        sqlite3 *db = NULL;
        int r;

        assert(path && sql && ret);
        /* NOMUTEX: one thread uses it. NOFOLLOW as the store's own open:
         * the path is the one it opened. */
        r = sqlite3_open_v2(path, &db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX, vfs);
        if (r != SQLITE_OK) {
                r = db ? store_errno_from_sqlite(r) : -ENOMEM;
                sqlite3_close(db);
                return r;
        }
        sqlite3_busy_timeout(db, STORE_OPEN_BUSY_TIMEOUT_MS);
        r = sqlite3_exec(db, sql, NULL, NULL, NULL);
        if (r != SQLITE_OK) {
                sqlite3_close(db);
                return store_errno_from_sqlite(r);
        }
        *ret = db;
        return 0;
}

int store_open_reader(Store *s, Store **ret)
{
        Store *x;
        int r;

        assert(s && !s->origin);
        assert(ret);
        x = calloc(1, sizeof *x);
        if (!x)
                return -ENOMEM;
        /* Read-write at the file level (a read-only connection to a WAL
         * database cannot always map its -shm), query_only at SQL's: no
         * statement of this connection can change the database. Off the
         * event loop, a wait for an outside program's lock delays one
         * reply, not the daemon. */
        r = store_connect(s->path, wal_vfs_name(s->vfs), "PRAGMA query_only=ON;", &x->db);
        if (r < 0) {
                free(x);
                return r;
        }
        x->origin = s;
        x->vfs = s->vfs;
        x->path = s->path;
        *ret = x;
        return 0;
}

bool store_wal_backlog(Store *reader, bool ask)
{
        Checkpointer *c;

        assert(reader && reader->origin);
        c = reader->origin->checkpointer;
        if (!c || checkpointer_uncopied(c) < STORE_WAL_CHECKPOINT_PAGES)
                return false;
        if (ask)
                checkpointer_ask(c);
        return true;
}

void store_interrupt(Store *s)
{
        if (s)
                sqlite3_interrupt(s->db);
}

int store_read_begin(Store *s)
{
        sqlite3_stmt *st = NULL;
        int r = store_statement(s, "BEGIN", &st);

        return r < 0 ? r : store_step_done(st);
}

void store_read_end(Store *s)
{
        rollback(s);
}

void store_close(Store *s)
{
        if (!s)
                return;
        for (size_t i = 0; i < s->n_statements; i++)
                sqlite3_finalize(s->statements[i].st);
        if (s->origin) {
                sqlite3_close(s->db);
                free(s);
                return;
        }
        /* Its connection before ours, both before the VFS they use. */
        checkpointer_stop(s->checkpointer);
        sqlite3_close(s->db);
        wal_vfs_free(s->vfs); /* the wrapper before the VFS it wraps */
        store_fault_vfs_free(s->fault_vfs);
        free(s->path);
        free(s);
}

/* SQLite's WAL hook, after every commit: `frames` is the WAL's length,
 * which a checkpoint that copied all of it lets the next writer start over
 * from 0. Replaces wal_autocheckpoint's own hook. */
static int wal_hook(void *userdata, sqlite3 *db, const char *name, int frames)
{
        Store *s = userdata;

        if (frames < s->wal_frames) /* it started over */
                s->checkpoint_ask_at = STORE_WAL_CHECKPOINT_PAGES;
        s->wal_frames = frames;
        checkpointer_committed(s->checkpointer, frames);
        if (frames >= STORE_WAL_CHECKPOINT_HARD_PAGES) {
                /* Commits came without a pause long enough for the thread
                 * to catch up with them: copy the rest here, inside this
                 * commit, so that the next one starts the WAL over. While
                 * the thread is at it this is refused at once (busy) and
                 * the next commit tries again. */
                int log_frames = 0, copied = 0;

                if (sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                              &copied) == SQLITE_OK &&
                    copied >= log_frames)
                        s->checkpoints_in_commit++;
        } else if (frames >= s->checkpoint_ask_at) {
                /* Once per STORE_WAL_CHECKPOINT_PAGES frames: the thread
                 * also goes on by itself after a checkpoint that commits
                 * overtook (checkpointer.h). */
                s->checkpoint_ask_at = frames + STORE_WAL_CHECKPOINT_PAGES;
                checkpointer_ask(s->checkpointer);
        }
        return SQLITE_OK;
}

int store_checkpoint_in_background(Store *s)
{
        int r;

        assert(s);
        if (s->checkpointer)
                return 0;
        r = checkpointer_start(s->path, wal_vfs_name(s->vfs), &s->checkpointer);
        if (r < 0)
                return r;
        s->checkpoint_ask_at = STORE_WAL_CHECKPOINT_PAGES;
        (void)sqlite3_wal_hook(s->db, wal_hook, s);
        return 0;
}

bool store_checkpoint_counts(Store *s, CheckpointerCounts *ret)
{
        assert(s);
        if (!s->checkpointer)
                return false;
        checkpointer_counts(s->checkpointer, ret);
        ret->in_commit = s->checkpoints_in_commit;
        return true;
}

int store_wal_frames(const Store *s)
{
        return s->wal_frames;
}

int store_set_fault(Store *s, StoreFault fault)
{
        if (!s->fault_vfs)
                return -EOPNOTSUPP;
        store_fault_vfs_set(s->fault_vfs, fault);
        return 0;
}

uint64_t store_faults_injected(const Store *s)
{
        return s->fault_vfs ? store_fault_vfs_failed(s->fault_vfs) : 0;
}

int store_schema_version(Store *s)
{
        return read_user_version(s->db);
}

sqlite3 *store_db(Store *s)
{
        return s->db;
}

int store_audit(Store *s, int64_t uid, const char *action, const char *subject, const char *detail)
{
        return store_exec(s,
                          "INSERT INTO audit (ts_usec, uid, action, subject, detail) "
                          "VALUES (?, ?, ?, ?, ?)",
                          STORE_ARGS(STORE_INT(now_usec(CLOCK_REALTIME)), STORE_INT(uid),
                                     STORE_TEXT(action), STORE_TEXT(subject), STORE_TEXT(detail)));
}

char *store_audit_detail(const char *key, const char *value)
{
        json_t *o = json_pack("{s:s}", key, value ? value : "");
        char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

        json_decref(o);
        return text;
}

int64_t store_run_started(Store *s, pid_t pid, const char *version)
{
        int r;

        r = store_exec(s, "INSERT INTO daemon_runs (started_usec, pid, version) VALUES (?, ?, ?)",
                       STORE_ARGS(STORE_INT(now_usec(CLOCK_REALTIME)), STORE_INT(pid),
                                  STORE_TEXT(version)));
        if (r < 0)
                return r;
        return sqlite3_last_insert_rowid(s->db);
}

int store_run_stopped(Store *s, int64_t run_id)
{
        return store_exec(s, "UPDATE daemon_runs SET stopped_usec = ? WHERE id = ?",
                          STORE_ARGS(STORE_INT(now_usec(CLOCK_REALTIME)), STORE_INT(run_id)));
}

int store_statement(Store *s, const char *sql, sqlite3_stmt **ret)
{
        sqlite3_stmt *st = NULL;
        int rc;

        for (size_t i = 0; i < s->n_statements; i++)
                if (s->statements[i].sql == sql) {
                        st = s->statements[i].st;
                        sqlite3_reset(st);
                        sqlite3_clear_bindings(st);
                        *ret = st;
                        return 0;
                }
        assert(s->n_statements < STORE_STATEMENT_CACHE);
        rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
        if (rc != SQLITE_OK)
                return store_errno_from_sqlite(rc);
        s->statements[s->n_statements].sql = sql;
        s->statements[s->n_statements++].st = st;
        *ret = st;
        return 0;
}

int store_step_done(sqlite3_stmt *st)
{
        int rc = sqlite3_step(st);

        sqlite3_reset(st);
        return rc == SQLITE_DONE ? 0 : store_errno_from_sqlite(rc);
}

/* The transaction statements go through the cache too: re-parsing BEGIN and
 * COMMIT for every lease grant showed up in profiles. */
int store_begin(Store *s)
{
        sqlite3_stmt *st = NULL;
        int r = store_statement(s, "BEGIN IMMEDIATE", &st);

        return r < 0 ? r : store_step_done(st);
}

int store_finish(Store *s, int r)
{
        sqlite3_stmt *st = NULL;
        int k;

        if (r >= 0) {
                k = store_statement(s, "COMMIT", &st);
                if (k >= 0)
                        k = store_step_done(st);
                if (k < 0)
                        r = k;
        }
        if (r < 0)
                rollback(s);
        return r;
}

int store_exec(Store *s, const char *sql, const StoreArg *args, size_t n)
{
        sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_OK;

        r = store_statement(s, sql, &st);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
                int k = (int)i + 1;

                switch (args[i].type) {
                case STORE_ARG_INT:
                        rc = sqlite3_bind_int64(st, k, args[i].i);
                        break;
                case STORE_ARG_TEXT:
                        rc = sqlite3_bind_text(st, k, args[i].text, -1, SQLITE_STATIC);
                        break;
                case STORE_ARG_DOUBLE:
                        rc = sqlite3_bind_double(st, k, args[i].d);
                        break;
                default:
                        rc = sqlite3_bind_null(st, k);
                        break;
                }
        }
        if (rc != SQLITE_OK) {
                sqlite3_reset(st);
                return store_errno_from_sqlite(rc);
        }
        return store_step_done(st);
}

int store_exec_audited(Store *s, const char *sql, const StoreArg *args, size_t n,
                       bool must_change, int64_t uid, const char *action, const char *subject,
                       const char *detail)
{
        int r;

        r = store_begin(s);
        if (r < 0)
                return r;
        r = store_exec(s, sql, args, n);
        if (r >= 0 && must_change && sqlite3_changes(s->db) == 0)
                r = -ENOENT;
        if (r >= 0)
                r = store_audit(s, uid, action, subject, detail);
        return store_finish(s, r);
}
