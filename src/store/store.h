/* The state database: one SQLite file in state_dir, opened in WAL mode.
 *
 * Every change the daemon makes to its state is one SQLite transaction, so
 * the file is consistent after a kill -9 at any instant. The schema is created
 * and upgraded by numbered migrations, each applied in its own transaction
 * together with the `PRAGMA user_version` bump that records it. */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "basic/macro.h"
#include "store/checkpointer.h"
#include "store/fault-vfs.h"

#define STORE_DB_NAME "gpukeeper.db"

/* The page size of a new database, as SQL (issue 16). A lease grant or
 * release dirties 9 small b-tree pages (one row or index entry each) and
 * SQLite checksums and writes every dirty page whole into the WAL: with
 * 4 KiB pages the checksums alone were a fifth of the daemon's instructions
 * per request (callgrind) and a grant wrote 37 KB. With 1 KiB pages (SQLite's
 * default before 3.12) the same 9 pages are 9 KB. An existing database keeps
 * the page size it was created with (changing it needs a VACUUM outside WAL
 * mode; docs/reliability.md). */
#define STORE_PAGE_SIZE_SQL "PRAGMA page_size=1024;"

/* The size the WAL file is cut back to when the WAL starts over after it
 * grew past it, as SQL (journal_size_limit: SQLite otherwise keeps the file
 * at its largest). It stays below STORE_WAL_CHECKPOINT_HARD_PAGES of 1 KiB
 * and of 4 KiB pages in steady use; reads that pin the WAL under a storm of
 * commits (store_wal_backlog) can take it past for a while. 128 MiB. */
#define STORE_WAL_SIZE_LIMIT_SQL "PRAGMA journal_size_limit=134217728;"

/* WAL pages after which a commit checkpoints (store.c says why), as SQL:
 * STORE_WAL_CHECKPOINT_PAGES below. */
#define STORE_WAL_AUTOCHECKPOINT_SQL "PRAGMA wal_autocheckpoint=4000;"

/* How long a statement waits for a lock another program holds on the
 * database (an admin's read-write `sqlite3` in a transaction, a backup tool
 * that locks). The daemon is one event loop: it answers -EBUSY after this
 * short wait, the request is answered "busy, try again" or retried from a
 * timer, and nothing else stalls. While opening (nothing served yet) it
 * waits longer. Readers (`sqlite3 -readonly`) never block the daemon in WAL
 * mode. */
#define STORE_BUSY_TIMEOUT_MS 20
/* After a wait that gave up, statements fail at once for this long. */
#define STORE_BUSY_QUIET_USEC (250 * UINT64_C(1000))
#define STORE_OPEN_BUSY_TIMEOUT_MS 5000

typedef struct Store Store;

/* SQLite's process-wide settings for the store: no memory statistics
 * (SQLITE_CONFIG_MEMSTATUS: a global mutex and two counters around each of
 * the ~40 allocations of a lease grant; nothing here reads them). They can
 * only be set before SQLite's first use in the process, so this is a no-op
 * after it. store_open() calls it; a program that uses SQLite before it
 * opens a store (bench-lease) calls it first. */
void store_configure_sqlite(void);

/* Open (creating if needed) STATE_DIR/gpukeeper.db: the directory is created
 * 0755 if missing, the database file is 0600, symlinks are not followed.
 * Applies pending migrations. Refuses a database whose schema is newer than
 * this build knows (-EPROTONOSUPPORT). On failure *ret_error (may be NULL)
 * receives a malloc'd message. Returns 0 or -errno. A Store is used by one
 * thread at a time (the connection is opened SQLITE_OPEN_NOMUTEX). */
int store_open(const char *state_dir, Store **ret, char **ret_error);

/* store_open() with options. STORE_OPEN_FAULT_SEAM opens the database
 * through the fault-injection VFS (fault-vfs.h), so that store_set_fault()
 * can make its writes fail; for tests only. */
typedef enum StoreOpenFlags {
        STORE_OPEN_FAULT_SEAM = 1 << 0,
} StoreOpenFlags;
int store_open_flags(const char *state_dir, StoreOpenFlags flags, Store **ret, char **ret_error);

/* Set or clear an injected fault (STORE_FAULT_NONE clears). -EOPNOTSUPP
 * unless opened with STORE_OPEN_FAULT_SEAM. */
int store_set_fault(Store *s, StoreFault fault);
/* Disk operations failed on purpose so far (0 without the seam). */
uint64_t store_faults_injected(const Store *s);

/* Another connection of the store module's own (the checkpoint thread's, a
 * reader's) to the database at `path` through the VFS named `vfs`: opened
 * read-write without following a symlink, for one thread (NOMUTEX),
 * waiting up to STORE_OPEN_BUSY_TIMEOUT_MS for an outside program's lock,
 * then `sql` run on it. Returns 0, or -errno with nothing left open. */
int store_connect(const char *path, const char *vfs, const char *sql, sqlite3 **ret);

/* Close a store, or a reader (store_open_reader) — every reader before the
 * store it was opened from. NULL is fine. */
void store_close(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_close);

/* A second connection to the database `s` opened, through the same file
 * layer, that can only read (PRAGMA query_only): for queries whose cost
 * grows with history, run in a thread of their own (daemon/reads.h) so the
 * event loop's connection never waits for them. WAL lets it read while the
 * store commits; each read transaction sees the commits made before it
 * began. Used by one thread at a time; waits up to
 * STORE_OPEN_BUSY_TIMEOUT_MS for an outside program's lock (it is off the
 * loop). The store's functions that only read (store_audit_list,
 * store_history_usage, …) take it as a Store. Returns 0 or -errno. */
int store_open_reader(Store *s, Store **ret);

/* For a reader's thread, between its read transactions: whether the WAL
 * holds STORE_WAL_CHECKPOINT_PAGES frames or more that no checkpoint has
 * copied yet (then, with `ask`, the checkpoint thread is asked for one). A read
 * transaction begun now would pin them: no checkpoint copies frames past
 * what an open reader sees, and the WAL cannot start over while it reads,
 * so readers back to back would let it grow without bound under steady
 * commits. False without a checkpoint thread. Safe from any thread. */
bool store_wal_backlog(Store *reader, bool ask);

/* One snapshot for several statements of a reader: BEGIN (deferred: the
 * first read takes the snapshot) and its end. */
int store_read_begin(Store *s);
void store_read_end(Store *s);

/* Make the statement `s` runs now stop with an error (SQLITE_INTERRUPT,
 * -EINTR) as soon as it can; safe from any thread. NULL is fine. */
void store_interrupt(Store *s);

/* WAL frames (pages) at which a commit asks for a checkpoint (as
 * STORE_WAL_AUTOCHECKPOINT_SQL: without a checkpointer SQLite's own
 * checkpoint runs inside that commit), and at which a commit checkpoints
 * itself even with one. */
#define STORE_WAL_CHECKPOINT_PAGES 4000
#define STORE_WAL_CHECKPOINT_HARD_PAGES (4 * STORE_WAL_CHECKPOINT_PAGES)

/* Take WAL checkpoints off the commits (issue 16; store/checkpointer.h): a
 * second connection checkpoints in a thread of its own, asked by the commit
 * that leaves STORE_WAL_CHECKPOINT_PAGES in the WAL and by one every as
 * many frames after, so that no request waits for a checkpoint's
 * fdatasync(). A commit that finds
 * STORE_WAL_CHECKPOINT_HARD_PAGES in the WAL (commits without a pause long
 * enough for a checkpoint to catch up) still checkpoints inside itself, so
 * the WAL stays bounded. Durability does not change: a checkpoint only
 * copies committed pages from the WAL into the database file. Returns 0
 * (also when already on), or -errno: then commits checkpoint as before. */
int store_checkpoint_in_background(Store *s);

/* The checkpointer's counts (checkpointer.h); false when there is none. */
bool store_checkpoint_counts(Store *s, CheckpointerCounts *ret);

/* The WAL's length in frames after the last commit (with a checkpointer;
 * 0 before the first). A length below the one before: the WAL started over. */
int store_wal_frames(const Store *s);

/* The schema version the database is at (PRAGMA user_version). */
int store_schema_version(Store *s);

/* The newest schema version this build can create. */
int store_schema_latest(void);

/* Append an audit record: who (uid, -1 for the daemon itself), what
 * (`action`, e.g. "daemon.start"), on what (`subject`, may be NULL) and
 * details (`detail`, a JSON text or NULL). One transaction. */
int store_audit(Store *s, int64_t uid, const char *action, const char *subject, const char *detail);

/* The JSON object {key: value} (value NULL: "") as an audit row's detail,
 * which is always an object or NULL (gpukeeperd(8), AUDIT TRAIL). NULL when
 * out of memory; free() it. */
char *store_audit_detail(const char *key, const char *value);

/* Record a daemon start (returns the run id, > 0) and its clean stop. */
int64_t store_run_started(Store *s, pid_t pid, const char *version);
int store_run_stopped(Store *s, int64_t run_id);

/* The underlying handle, for the store's other modules (lease-store.c …). */
sqlite3 *store_db(Store *s);

/* Map an SQLite result code to a negative errno (SQLITE_OK → 0;
 * SQLITE_CONSTRAINT → -EEXIST, SQLITE_BUSY → -EBUSY, …). */
int store_errno_from_sqlite(int rc);

/* A prepared statement for `sql`, reset and with its bindings cleared
 * (unbound parameters are NULL). Statements are prepared once and kept: the
 * cache is keyed by the address of `sql`, which must therefore be a string
 * with static storage. Never finalize the result; sqlite3_reset() it after
 * the last step (store_step_done() does). Returns 0 or a negative errno. */
int store_statement(Store *s, const char *sql, sqlite3_stmt **ret);

/* Step a statement that returns no rows and reset it. */
int store_step_done(sqlite3_stmt *st);

/* BEGIN IMMEDIATE, and the end of that transaction: store_finish() commits
 * when `r` (the result of the work inside) is >= 0, and rolls back when it is
 * negative or the COMMIT fails (a failed COMMIT leaves the transaction open,
 * and the next BEGIN would then fail). Returns r, or the COMMIT's error. */
int store_begin(Store *s);
int store_finish(Store *s, int r);

/* One parameter of a statement run by store_exec(): STORE_INT(v),
 * STORE_TEXT(s) (NULL binds SQL NULL; the text must outlive the call),
 * STORE_DOUBLE(v) or STORE_NULL. */
typedef enum StoreArgType {
        STORE_ARG_NULL,
        STORE_ARG_INT,
        STORE_ARG_TEXT,
        STORE_ARG_DOUBLE,
} StoreArgType;

typedef struct StoreArg {
        StoreArgType type;
        int64_t i;
        const char *text;
        double d;
} StoreArg;

#define STORE_INT(v) ((StoreArg){.type = STORE_ARG_INT, .i = (int64_t)(v)})
#define STORE_TEXT(v) ((StoreArg){.type = STORE_ARG_TEXT, .text = (v)})
#define STORE_DOUBLE(v) ((StoreArg){.type = STORE_ARG_DOUBLE, .d = (v)})
#define STORE_NULL ((StoreArg){.type = STORE_ARG_NULL})
/* The array and count store_exec() and store_exec_audited() take:
 * store_exec(s, sql, STORE_ARGS(STORE_INT(id), STORE_TEXT(name))). */
#define STORE_ARGS(...)                                                                            \
        (const StoreArg[]){__VA_ARGS__}, ELEMENTSOF(((const StoreArg[]){__VA_ARGS__}))

/* Run `sql` (a string with static storage, see store_statement) that
 * returns no rows, with args[0..n) bound to parameters 1..n. Returns 0 or a
 * negative errno. */
int store_exec(Store *s, const char *sql, const StoreArg *args, size_t n);

/* In one transaction (store_begin/store_finish): store_exec(sql, args),
 * then the audit record (uid, action, subject, detail) as store_audit()
 * writes it. With `must_change`, a statement that changed no row is -ENOENT
 * and nothing is written. Returns 0 or a negative errno. */
int store_exec_audited(Store *s, const char *sql, const StoreArg *args, size_t n,
                       bool must_change, int64_t uid, const char *action, const char *subject,
                       const char *detail);
