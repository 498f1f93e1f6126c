/* A VFS stacked over another one (the "shim" pattern of SQLite's own
 * test VFSes): the stacking VFS opens files its own way (xOpen) and every
 * other VFS-level method passes straight through to the VFS below.
 *
 * fault-vfs.c (I/O faults for tests) and wal-vfs.c (one write per WAL
 * transaction) are built on it, and can be stacked over each other: the
 * VFS below is any registered one. */
#pragma once

#include <sqlite3.h>

typedef int (*VfsShimOpen)(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file,
                           int flags, int *ret_flags);

typedef struct VfsShim {
        sqlite3_vfs base; /* what SQLite calls; base.pAppData is the owner */
        sqlite3_vfs *below;
        char name[48];
} VfsShim;

/* Fill `shim` and register it under "PREFIX-ADDRESS" (unique per instance:
 * SQLite keeps registered VFSes in one process-wide list) over `below`,
 * which must be version 2 or later (xCurrentTimeInt64). Its files are
 * file_size bytes of the owner's followed by the file object of `below`;
 * x_open opens them. `owner` is base.pAppData. Returns 0, -EOPNOTSUPP for a
 * `below` older than version 2, -EIO when SQLite refuses the registration. */
int vfs_shim_register(VfsShim *shim, sqlite3_vfs *below, const char *prefix, int file_size,
                      VfsShimOpen x_open, void *owner);

/* Unregister; the memory stays the caller's. */
void vfs_shim_unregister(VfsShim *shim);
