/* A fault-injection seam for the state database: an SQLite VFS that passes
 * everything through to SQLite's default VFS ("unix") except that, while a
 * fault is set, every write, sync and truncate of the database and its WAL
 * fails as a failing disk makes them fail (SQLITE_IOERR_WRITE, _FSYNC,
 * _TRUNCATE, which the store maps to -EIO). Reads keep working.
 *
 * Only stores opened with STORE_OPEN_FAULT_SEAM use it (the daemon does so in
 * test builds, -Dtest_hooks=true); each instance is registered with SQLite
 * under a name of its own and unregistered when freed. The store's
 * checkpoint thread (checkpointer.h) writes through it too: a fault set
 * fails its writes and syncs as well, and both threads count into
 * store_fault_vfs_failed() (atomically). */
#pragma once

#include <sqlite3.h>
#include <stdint.h>

typedef enum StoreFault {
        STORE_FAULT_NONE,
        STORE_FAULT_IO_ERROR, /* writes, syncs and truncates fail with an I/O error */
} StoreFault;

typedef struct StoreFaultVfs StoreFaultVfs;

/* Register a new instance over the default VFS. Returns 0, -ENOMEM, or
 * -EOPNOTSUPP when the default VFS is too old to wrap. */
int store_fault_vfs_new(StoreFaultVfs **ret);

/* Unregister and free; every connection using it must be closed. NULL is fine. */
void store_fault_vfs_free(StoreFaultVfs *v);

/* The name to give sqlite3_open_v2(). */
const char *store_fault_vfs_name(const StoreFaultVfs *v);

void store_fault_vfs_set(StoreFaultVfs *v, StoreFault fault);

/* Operations failed on purpose so far. */
uint64_t store_fault_vfs_failed(const StoreFaultVfs *v);
