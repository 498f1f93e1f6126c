/* An SQLite VFS that writes each WAL transaction with one write() (issue 16).
 *
 * SQLite appends a transaction to the WAL as a 24-byte frame header and a
 * page per changed page, each with its own pwrite(): a lease grant of 9
 * pages is 18 system calls, and most of them rewrite the same page-cache
 * pages (the frames are 4,120 bytes, so a page write straddles two file
 * pages). This VFS wraps the platform's default one and, for WAL files
 * only, gathers writes that continue the previous one in memory. It hands
 * them to the real file in one write:
 *
 *   - as soon as the frame that commits a transaction (a frame header whose
 *     "database size after commit" field is not zero) has been written, in
 *     that same xWrite call, so the commit's error (if any) is SQLite's
 *     write error, and every committed transaction is in the kernel (and so
 *     survives a kill -9 of the daemon, as with SQLite's own writes under
 *     synchronous=NORMAL) before SQLite publishes it in the wal-index;
 *   - before any other operation on the WAL file (read, sync, size,
 *     truncate, close, file control …) and before any shared-memory call on
 *     its database file, so nothing ever observes the file without them;
 *   - when a write does not continue the gathered ones, or they would pass
 *     WAL_VFS_BUFFER_MAX.
 *
 * "One write" is one write() of up to WAL_VFS_WRITE_MAX bytes: a larger
 * transaction (a history rollup) goes out in that many bytes per call.
 *
 * Database, journal and temporary files are passed through untouched. The
 * file format is SQLite's: any other program (sqlite3, a backup) reads and
 * writes the database with the default VFS at the same time.
 *
 * Each Store registers its own instance under a unique name (no process-wide
 * state of ours) and unregisters it after closing its connection. */
#pragma once

#include <sqlite3.h>

/* Largest run of gathered WAL bytes before they are written anyway. */
#define WAL_VFS_BUFFER_MAX (1024 * 1024)
/* Largest single write() (SQLite's unix VFS takes at most 128 KiB - 1). */
#define WAL_VFS_WRITE_MAX (64 * 1024)

typedef struct WalVfs WalVfs;

/* Register a new instance wrapping the VFS registered as `base` (NULL:
 * SQLite's default; the store's fault seam in test builds). Returns 0 or
 * -errno (-ENOMEM, -ENOENT when there is no such VFS, -EOPNOTSUPP when it
 * is older than version 2, -EIO when the registration fails). Built on
 * store/vfs-shim.h. */
int wal_vfs_new(const char *base, WalVfs **ret);

/* The name to pass to sqlite3_open_v2(). */
const char *wal_vfs_name(const WalVfs *v);

/* Unregister and free. Every connection opened with it must be closed. */
void wal_vfs_free(WalVfs *v);

/* How many write() calls it made to WAL files, and how many xWrite calls
 * SQLite made to them (for tests and benchmarks). */
void wal_vfs_counts(const WalVfs *v, sqlite3_int64 *ret_writes, sqlite3_int64 *ret_calls);
