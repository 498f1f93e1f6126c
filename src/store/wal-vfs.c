/* WAL write gathering VFS; see wal-vfs.h for what and why. */
#include "store/wal-vfs.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "store/vfs-shim.h"

#define WAL_HEADER_SIZE 32
#define WAL_FRAME_HEADER_SIZE 24
#define WAL_BUFFER_MIN (64 * 1024)

typedef struct WalFile WalFile;

struct WalVfs {
        VfsShim shim; /* registered under shim.name over the base VFS */
        pthread_mutex_t lock; /* guards dbs and the links between files */
        WalFile *dbs;         /* open main database files */
        sqlite3_int64 writes, calls;
};

struct WalFile {
        sqlite3_file base;
        sqlite3_file *real; /* the file of the VFS below, right after this struct */
        WalVfs *vfs;
        const char *name; /* main database: xOpen's zName (the pager's pointer) */
        bool is_main, is_wal;
        WalFile *next; /* main database: in vfs->dbs */
        WalFile *wal;  /* main database: its open WAL file */
        WalFile *db;   /* WAL file: its main database file */

        /* WAL file: gathered bytes [start, start + len). */
        unsigned char *buf;
        size_t len, cap;
        sqlite3_int64 start;
        bool commit_pending; /* the last gathered write was a commit frame's header */
};

static WalFile *wal_file(sqlite3_file *f)
{
        return (WalFile *)f;
}

/* Hand the gathered bytes to the real file in one write. */
static int wal_flush(WalFile *f)
{
        int rc;

        rc = SQLITE_OK;
        for (size_t done = 0; done < f->len && rc == SQLITE_OK;) {
                /* SQLite's unix VFS writes at most 128 KiB - 1 per call. */
                size_t n = MIN(f->len - done, (size_t)WAL_VFS_WRITE_MAX);

                rc = f->real->pMethods->xWrite(f->real, f->buf + done, (int)n,
                                               f->start + (sqlite3_int64)done);
                __atomic_add_fetch(&f->vfs->writes, 1, __ATOMIC_RELAXED);
                done += n;
        }
        f->len = 0;
        f->commit_pending = false;
        return rc;
}

/* The WAL of a main database file, flushed (shared-memory calls, syncs). */
static int flush_linked(WalFile *f)
{
        WalFile *w;
        int rc = SQLITE_OK;

        if (!f->is_main)
                return f->is_wal ? wal_flush(f) : SQLITE_OK;
        pthread_mutex_lock(&f->vfs->lock);
        w = f->wal;
        if (w)
                rc = wal_flush(w);
        pthread_mutex_unlock(&f->vfs->lock);
        return rc;
}

static int flush_self(WalFile *f)
{
        return f->is_wal ? wal_flush(f) : SQLITE_OK;
}

static bool is_page_size(int n)
{
        return n >= 512 && n <= 65536 && (n & (n - 1)) == 0;
}

static int wal_write(WalFile *f, const void *data, int amt, sqlite3_int64 off)
{
        const unsigned char *p = data;
        bool header = amt == WAL_FRAME_HEADER_SIZE && off >= WAL_HEADER_SIZE;
        int rc;

        __atomic_add_fetch(&f->vfs->calls, 1, __ATOMIC_RELAXED);

        /* Only the shapes SQLite's WAL writer uses are gathered: the WAL
         * header, frame headers and whole pages, appended in order. Anything
         * else (a sync point split, a rewrite in place) goes out at once,
         * after what was gathered. */
        if ((f->len > 0 && off != f->start + (sqlite3_int64)f->len) ||
            (amt != WAL_HEADER_SIZE && !header && !is_page_size(amt))) {
                rc = wal_flush(f);
                if (rc != SQLITE_OK)
                        return rc;
                if (amt != WAL_HEADER_SIZE && !header && !is_page_size(amt)) {
                        __atomic_add_fetch(&f->vfs->writes, 1, __ATOMIC_RELAXED);
                        return f->real->pMethods->xWrite(f->real, data, amt, off);
                }
        }

        if (f->len + (size_t)amt > f->cap) {
                size_t cap = f->cap ? f->cap : WAL_BUFFER_MIN;
                unsigned char *b;

                while (cap < f->len + (size_t)amt && cap < WAL_VFS_BUFFER_MAX)
                        cap *= 2;
                if (cap > WAL_VFS_BUFFER_MAX || cap < f->len + (size_t)amt ||
                    !(b = realloc(f->buf, cap))) {
                        /* Too much to gather (or no memory): write what was
                         * gathered, then this write by itself. */
                        rc = wal_flush(f);
                        if (rc != SQLITE_OK)
                                return rc;
                        __atomic_add_fetch(&f->vfs->writes, 1, __ATOMIC_RELAXED);
                        return f->real->pMethods->xWrite(f->real, data, amt, off);
                }
                f->buf = b;
                f->cap = cap;
        }
        if (f->len == 0)
                f->start = off;
        memcpy(f->buf + f->len, p, (size_t)amt);
        f->len += (size_t)amt;

        if (f->commit_pending && !header)
                /* The commit frame's page: the transaction is complete. */
                return wal_flush(f);
        /* A frame header's second field is the database size after a commit,
         * zero in the frames before the last of a transaction. */
        f->commit_pending = header && (p[4] | p[5] | p[6] | p[7]) != 0;
        return SQLITE_OK;
}

/* ---- sqlite3_io_methods ------------------------------------------------ */

static int m_close(sqlite3_file *file)
{
        WalFile *f = wal_file(file);
        WalVfs *v = f->vfs;
        int rc = flush_self(f), k;

        pthread_mutex_lock(&v->lock);
        if (f->is_wal && f->db)
                f->db->wal = NULL;
        if (f->is_main) {
                if (f->wal)
                        f->wal->db = NULL;
                for (WalFile **i = &v->dbs; *i; i = &(*i)->next)
                        if (*i == f) {
                                *i = f->next;
                                break;
                        }
        }
        pthread_mutex_unlock(&v->lock);

        k = f->real->pMethods->xClose(f->real);
        free(f->buf);
        f->buf = NULL;
        return rc != SQLITE_OK ? rc : k;
}

static int m_read(sqlite3_file *file, void *buf, int amt, sqlite3_int64 off)
{
        WalFile *f = wal_file(file);
        int rc = flush_self(f);

        return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, buf, amt, off);
}

static int m_write(sqlite3_file *file, const void *buf, int amt, sqlite3_int64 off)
{
        WalFile *f = wal_file(file);

        if (f->is_wal)
                return wal_write(f, buf, amt, off);
        return f->real->pMethods->xWrite(f->real, buf, amt, off);
}

static int m_truncate(sqlite3_file *file, sqlite3_int64 size)
{
        WalFile *f = wal_file(file);
        int rc = flush_self(f);

        return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int m_sync(sqlite3_file *file, int flags)
{
        WalFile *f = wal_file(file);
        int rc = flush_linked(f);

        return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int m_file_size(sqlite3_file *file, sqlite3_int64 *ret)
{
        WalFile *f = wal_file(file);
        int rc = flush_self(f);

        return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, ret);
}

static int m_lock(sqlite3_file *file, int level)
{
        WalFile *f = wal_file(file);

        return f->real->pMethods->xLock(f->real, level);
}

static int m_unlock(sqlite3_file *file, int level)
{
        WalFile *f = wal_file(file);

        return f->real->pMethods->xUnlock(f->real, level);
}

static int m_check_reserved_lock(sqlite3_file *file, int *ret)
{
        WalFile *f = wal_file(file);

        return f->real->pMethods->xCheckReservedLock(f->real, ret);
}

static int m_file_control(sqlite3_file *file, int op, void *arg)
{
        WalFile *f = wal_file(file);
        int rc = flush_linked(f);

        if (rc != SQLITE_OK)
                return rc;
        rc = f->real->pMethods->xFileControl(f->real, op, arg);
        if (op == SQLITE_FCNTL_VFSNAME && rc == SQLITE_OK && arg) {
                /* Name this layer in front of the real one's, as shims do. */
                char **name = arg;
                char *n = sqlite3_mprintf("%s/%z", f->vfs->shim.name, *name);

                if (n)
                        *name = n;
        }
        return rc;
}

static int m_sector_size(sqlite3_file *file)
{
        WalFile *f = wal_file(file);

        return f->real->pMethods->xSectorSize(f->real);
}

static int m_device_characteristics(sqlite3_file *file)
{
        WalFile *f = wal_file(file);

        return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int m_shm_map(sqlite3_file *file, int page, int size, int extend, void volatile **ret)
{
        WalFile *f = wal_file(file);
        int rc = flush_linked(f);

        return rc != SQLITE_OK ? rc : f->real->pMethods->xShmMap(f->real, page, size, extend, ret);
}

static int m_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
        WalFile *f = wal_file(file);
        int rc = flush_linked(f);

        return rc != SQLITE_OK ? rc : f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void m_shm_barrier(sqlite3_file *file)
{
        WalFile *f = wal_file(file);

        /* Nothing is gathered here in practice (a commit frame is written at
         * once); this only keeps the order should SQLite ever publish
         * frames that are not a commit's. */
        (void)flush_linked(f);
        f->real->pMethods->xShmBarrier(f->real);
}

static int m_shm_unmap(sqlite3_file *file, int delete_flag)
{
        WalFile *f = wal_file(file);
        int rc = flush_linked(f);

        return rc != SQLITE_OK ? rc : f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

static int m_fetch(sqlite3_file *file, sqlite3_int64 off, int amt, void **ret)
{
        WalFile *f = wal_file(file);
        int rc = flush_self(f);

        return rc != SQLITE_OK ? rc : f->real->pMethods->xFetch(f->real, off, amt, ret);
}

static int m_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
        WalFile *f = wal_file(file);

        return f->real->pMethods->xUnfetch(f->real, off, p);
}

static const sqlite3_io_methods wal_io_methods = {
        .iVersion = 3,
        .xClose = m_close,
        .xRead = m_read,
        .xWrite = m_write,
        .xTruncate = m_truncate,
        .xSync = m_sync,
        .xFileSize = m_file_size,
        .xLock = m_lock,
        .xUnlock = m_unlock,
        .xCheckReservedLock = m_check_reserved_lock,
        .xFileControl = m_file_control,
        .xSectorSize = m_sector_size,
        .xDeviceCharacteristics = m_device_characteristics,
        .xShmMap = m_shm_map,
        .xShmLock = m_shm_lock,
        .xShmBarrier = m_shm_barrier,
        .xShmUnmap = m_shm_unmap,
        .xFetch = m_fetch,
        .xUnfetch = m_unfetch,
};

/* ---- sqlite3_vfs --------------------------------------------------------- */

static WalVfs *wal_vfs(sqlite3_vfs *vfs)
{
        return vfs->pAppData;
}

static int v_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags,
                  int *ret_flags)
{
        WalVfs *v = wal_vfs(vfs);
        WalFile *f = wal_file(file);
        int rc;

        memset(f, 0, sizeof *f);
        f->real = (sqlite3_file *)(f + 1);
        f->vfs = v;
        rc = v->shim.below->xOpen(v->shim.below, name, f->real, flags, ret_flags);
        if (rc != SQLITE_OK) {
                if (f->real->pMethods)
                        f->real->pMethods->xClose(f->real);
                f->base.pMethods = NULL;
                return rc;
        }
        if (!f->real->pMethods || f->real->pMethods->iVersion < 3) {
                if (f->real->pMethods)
                        f->real->pMethods->xClose(f->real);
                f->base.pMethods = NULL;
                return SQLITE_CANTOPEN;
        }
        f->base.pMethods = &wal_io_methods;

        pthread_mutex_lock(&v->lock);
        if ((flags & SQLITE_OPEN_MAIN_DB) && name) {
                f->is_main = true;
                f->name = name;
                f->next = v->dbs;
                v->dbs = f;
        } else if ((flags & SQLITE_OPEN_WAL) && name) {
                const char *db = sqlite3_filename_database(name);

                f->is_wal = true;
                /* The pager hands its WAL and database names out of one
                 * allocation, so the database's name is the very pointer
                 * its xOpen received; fall back to comparing the text. */
                for (WalFile *i = v->dbs; i && !f->db; i = i->next)
                        if (i->name == db && !i->wal)
                                f->db = i;
                for (WalFile *i = v->dbs; i && !f->db; i = i->next)
                        if (!i->wal && db && strcmp(i->name, db) == 0)
                                f->db = i;
                if (f->db)
                        f->db->wal = f;
        }
        pthread_mutex_unlock(&v->lock);
        return SQLITE_OK;
}

int wal_vfs_new(const char *base, WalVfs **ret)
{
        sqlite3_vfs *below;
        WalVfs *v;
        int r;

        if (sqlite3_initialize() != SQLITE_OK)
                return -EIO;
        below = sqlite3_vfs_find(base);
        if (!below)
                return -ENOENT;
        v = calloc(1, sizeof *v);
        if (!v)
                return -ENOMEM;
        pthread_mutex_init(&v->lock, NULL);
        r = vfs_shim_register(&v->shim, below, "gpukeeper-wal", (int)sizeof(WalFile), v_open, v);
        if (r < 0) {
                pthread_mutex_destroy(&v->lock);
                free(v);
                return r;
        }
        *ret = v;
        return 0;
}

const char *wal_vfs_name(const WalVfs *v)
{
        return v->shim.name;
}

void wal_vfs_counts(const WalVfs *v, sqlite3_int64 *ret_writes, sqlite3_int64 *ret_calls)
{
        if (ret_writes)
                *ret_writes = __atomic_load_n(&v->writes, __ATOMIC_RELAXED);
        if (ret_calls)
                *ret_calls = __atomic_load_n(&v->calls, __ATOMIC_RELAXED);
}

void wal_vfs_free(WalVfs *v)
{
        if (!v)
                return;
        vfs_shim_unregister(&v->shim);
        pthread_mutex_destroy(&v->lock);
        free(v);
}
