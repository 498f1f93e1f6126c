/* An SQLite VFS that wraps the default one and can make writes fail, for
 * fault-injection tests; see fault-vfs.h.
 *
 * Each file opened through it is the wrapper's small header followed by the
 * real VFS's file object (szOsFile is the sum), and every method is passed
 * through to the real one except when a fault is set: then xWrite, xSync and
 * xTruncate return the I/O error SQLite would get from a failing disk. The
 * shared-memory index (xShm*) is memory, not the disk, and is never failed. */
#include "store/fault-vfs.h"
#include "store/vfs-shim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct StoreFaultVfs {
        VfsShim shim; /* registered under shim.name over SQLite's default VFS */
        StoreFault fault;
        uint64_t n_failed;
};

typedef struct FaultFile {
        sqlite3_file base;
        StoreFaultVfs *vfs;
        /* The real VFS's file object follows. */
} FaultFile;

static sqlite3_file *real_file(sqlite3_file *f)
{
        return (sqlite3_file *)((char *)f + sizeof(FaultFile));
}

static int fault_rc(sqlite3_file *f, int rc)
{
        StoreFaultVfs *v = ((FaultFile *)f)->vfs;

        if (__atomic_load_n(&v->fault, __ATOMIC_RELAXED) != STORE_FAULT_IO_ERROR)
                return SQLITE_OK;
        __atomic_add_fetch(&v->n_failed, 1, __ATOMIC_RELAXED);
        return rc;
}

static int f_close(sqlite3_file *f)
{
        sqlite3_file *r = real_file(f);

        return r->pMethods ? r->pMethods->xClose(r) : SQLITE_OK;
}

static int f_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
        sqlite3_file *r = real_file(f);

        return r->pMethods->xRead(r, buf, amt, off);
}

static int f_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
        sqlite3_file *r = real_file(f);
        int rc = fault_rc(f, SQLITE_IOERR_WRITE);

        return rc != SQLITE_OK ? rc : r->pMethods->xWrite(r, buf, amt, off);
}

static int f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
        sqlite3_file *r = real_file(f);
        int rc = fault_rc(f, SQLITE_IOERR_TRUNCATE);

        return rc != SQLITE_OK ? rc : r->pMethods->xTruncate(r, size);
}

static int f_sync(sqlite3_file *f, int flags)
{
        sqlite3_file *r = real_file(f);
        int rc = fault_rc(f, SQLITE_IOERR_FSYNC);

        return rc != SQLITE_OK ? rc : r->pMethods->xSync(r, flags);
}

static int f_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
        sqlite3_file *r = real_file(f);

        return r->pMethods->xFileSize(r, size);
}

static int f_lock(sqlite3_file *f, int lock)
{
        sqlite3_file *r = real_file(f);

        return r->pMethods->xLock(r, lock);
}

static int f_unlock(sqlite3_file *f, int lock)
{
        sqlite3_file *r = real_file(f);

        return r->pMethods->xUnlock(r, lock);
}

static int f_check_reserved_lock(sqlite3_file *f, int *out)
{
        sqlite3_file *r = real_file(f);

        return r->pMethods->xCheckReservedLock(r, out);
}

static int f_file_control(sqlite3_file *f, int op, void *arg)
{
        sqlite3_file *r = real_file(f);

        return r->pMethods->xFileControl(r, op, arg);
}

static int f_sector_size(sqlite3_file *f)
{
        sqlite3_file *r = real_file(f);

        return r->pMethods->xSectorSize(r);
}

static int f_device_characteristics(sqlite3_file *f)
{
        sqlite3_file *r = real_file(f);

        return r->pMethods->xDeviceCharacteristics(r);
}

static int f_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **pp)
{
        sqlite3_file *r = real_file(f);

        return r->pMethods->xShmMap(r, page, size, extend, pp);
}

static int f_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
        sqlite3_file *r = real_file(f);

        return r->pMethods->xShmLock(r, offset, n, flags);
}

static void f_shm_barrier(sqlite3_file *f)
{
        sqlite3_file *r = real_file(f);

        r->pMethods->xShmBarrier(r);
}

static int f_shm_unmap(sqlite3_file *f, int delete_flag)
{
        sqlite3_file *r = real_file(f);

        return r->pMethods->xShmUnmap(r, delete_flag);
}

static int f_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
        sqlite3_file *r = real_file(f);

        return r->pMethods->xFetch(r, off, amt, pp);
}

static int f_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
        sqlite3_file *r = real_file(f);

        return r->pMethods->xUnfetch(r, off, p);
}

static const sqlite3_io_methods fault_io_methods = {
        .iVersion = 3,
        .xClose = f_close,
        .xRead = f_read,
        .xWrite = f_write,
        .xTruncate = f_truncate,
        .xSync = f_sync,
        .xFileSize = f_file_size,
        .xLock = f_lock,
        .xUnlock = f_unlock,
        .xCheckReservedLock = f_check_reserved_lock,
        .xFileControl = f_file_control,
        .xSectorSize = f_sector_size,
        .xDeviceCharacteristics = f_device_characteristics,
        .xShmMap = f_shm_map,
        .xShmLock = f_shm_lock,
        .xShmBarrier = f_shm_barrier,
        .xShmUnmap = f_shm_unmap,
        .xFetch = f_fetch,
        .xUnfetch = f_unfetch,
};

/* The real file's methods decide which of ours exist: SQLite checks
 * iVersion before it calls xShm* (WAL) and xFetch (mmap). */
static int v_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
                  int *out_flags)
{
        StoreFaultVfs *v = vfs->pAppData;
        FaultFile *ff = (FaultFile *)f;
        sqlite3_file *r = real_file(f);
        int rc;

        memset(ff, 0, sizeof *ff);
        ff->vfs = v;
        rc = v->shim.below->xOpen(v->shim.below, name, r, flags, out_flags);
        /* A file whose open failed must have no methods (SQLite then does
         * not call xClose); one that opened does, even on failure. */
        if (r->pMethods)
                f->pMethods = &fault_io_methods;
        return rc;
}

int store_fault_vfs_new(StoreFaultVfs **ret)
{
        sqlite3_vfs *real = sqlite3_vfs_find(NULL);
        StoreFaultVfs *v;
        int r;

        if (!real)
                return -EOPNOTSUPP;
        v = calloc(1, sizeof *v);
        if (!v)
                return -ENOMEM;
        r = vfs_shim_register(&v->shim, real, "gk-fault", (int)sizeof(FaultFile), v_open, v);
        if (r < 0) {
                free(v);
                return r;
        }
        *ret = v;
        return 0;
}

void store_fault_vfs_free(StoreFaultVfs *v)
{
        if (!v)
                return;
        vfs_shim_unregister(&v->shim);
        free(v);
}

const char *store_fault_vfs_name(const StoreFaultVfs *v)
{
        return v->shim.name;
}

void store_fault_vfs_set(StoreFaultVfs *v, StoreFault fault)
{
        __atomic_store_n(&v->fault, fault, __ATOMIC_RELAXED);
}

uint64_t store_fault_vfs_failed(const StoreFaultVfs *v)
{
        return __atomic_load_n(&v->n_failed, __ATOMIC_RELAXED);
}
