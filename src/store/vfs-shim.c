/* The VFS-level pass-throughs of a stacked VFS; see vfs-shim.h. */
#include "store/vfs-shim.h"

#include <errno.h>
#include <stdio.h>

static sqlite3_vfs *below(sqlite3_vfs *vfs)
{
        return ((VfsShim *)vfs)->below;
}

static int s_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
        return below(vfs)->xDelete(below(vfs), name, sync_dir);
}

static int s_access(sqlite3_vfs *vfs, const char *name, int flags, int *ret)
{
        return below(vfs)->xAccess(below(vfs), name, flags, ret);
}

static int s_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
        return below(vfs)->xFullPathname(below(vfs), name, n, out);
}

static void *s_dl_open(sqlite3_vfs *vfs, const char *name)
{
        return below(vfs)->xDlOpen(below(vfs), name);
}

static void s_dl_error(sqlite3_vfs *vfs, int n, char *msg)
{
        below(vfs)->xDlError(below(vfs), n, msg);
}

static void (*s_dl_sym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
        return below(vfs)->xDlSym(below(vfs), h, sym);
}

static void s_dl_close(sqlite3_vfs *vfs, void *h)
{
        below(vfs)->xDlClose(below(vfs), h);
}

static int s_randomness(sqlite3_vfs *vfs, int n, char *out)
{
        return below(vfs)->xRandomness(below(vfs), n, out);
}

static int s_sleep(sqlite3_vfs *vfs, int usec)
{
        return below(vfs)->xSleep(below(vfs), usec);
}

static int s_current_time(sqlite3_vfs *vfs, double *ret)
{
        return below(vfs)->xCurrentTime(below(vfs), ret);
}

static int s_get_last_error(sqlite3_vfs *vfs, int n, char *msg)
{
        return below(vfs)->xGetLastError ? below(vfs)->xGetLastError(below(vfs), n, msg) : 0;
}

static int s_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *ret)
{
        return below(vfs)->xCurrentTimeInt64(below(vfs), ret);
}

int vfs_shim_register(VfsShim *shim, sqlite3_vfs *under, const char *prefix, int file_size,
                      VfsShimOpen x_open, void *owner)
{
        /* xCurrentTimeInt64 is version 2; SQLite's unix VFS is version 3. */
        if (under->iVersion < 2)
                return -EOPNOTSUPP;
        snprintf(shim->name, sizeof shim->name, "%s-%p", prefix, (void *)shim);
        shim->below = under;
        shim->base = (sqlite3_vfs){
                .iVersion = 2,
                .szOsFile = file_size + under->szOsFile,
                .mxPathname = under->mxPathname,
                .zName = shim->name,
                .pAppData = owner,
                .xOpen = x_open,
                .xDelete = s_delete,
                .xAccess = s_access,
                .xFullPathname = s_full_pathname,
                .xDlOpen = s_dl_open,
                .xDlError = s_dl_error,
                .xDlSym = s_dl_sym,
                .xDlClose = s_dl_close,
                .xRandomness = s_randomness,
                .xSleep = s_sleep,
                .xCurrentTime = s_current_time,
                .xGetLastError = s_get_last_error,
                .xCurrentTimeInt64 = s_current_time_int64,
        };
        return sqlite3_vfs_register(&shim->base, 0) == SQLITE_OK ? 0 : -EIO;
}

void vfs_shim_unregister(VfsShim *shim)
{
        sqlite3_vfs_unregister(&shim->base);
}
