/* Filesystem helpers for reading other people's homes safely: every path is
 * walked one component at a time with O_NOFOLLOW from a directory fd, reads are
 * bounded, and the recursive walks (disk usage, removal) never follow a symlink.
 * Also the small string-vector helpers the rest of src/env uses. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/fileio.h"
#include "env/env-internal.h"

bool env_endswith(const char *name, const char *suffix)
{
        size_t a = strlen(name), b = strlen(suffix);

        return a >= b && memcmp(name + a - b, suffix, b) == 0;
}

int env_cmp_strp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

char *env_safe_name(const char *name)
{
        size_t len = strnlen(name, 100);
        char *s = malloc(len + 4);

        if (!s)
                return NULL;
        for (size_t i = 0; i < len; i++) {
                char c = name[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '+' ||
                          c == '-';
                s[i] = ok ? c : '_';
        }
        s[len] = '\0';
        if (len == 0)
                strcpy(s, "env");
        else if (s[0] == '.')
                s[0] = '_';
        return s;
}

/* Open one component below dirfd. A symlink gives ENOTDIR with O_DIRECTORY and
 * ELOOP without; report both as -ELOOP so callers can say "symlink not followed". */
static int open_component(int dirfd, const char *name, int flags)
{
        int fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;

        if (fd >= 0)
                return fd;
        if (errno == ENOTDIR || errno == ELOOP) {
                int saved = errno;

                if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                        return -ELOOP;
                return -saved;
        }
        return negative_errno();
}

/* Walk relpath below dirfd; the last component is opened with last_flags. */
static int open_beneath(int dirfd, const char *relpath, int last_flags, int *ret_fd)
{
        _cleanup_free_ char *copy = strdup(relpath);
        _cleanup_close_ int cur = -1;
        char *p, *save = NULL;
        int at = dirfd;

        if (!copy)
                return -ENOMEM;
        if (relpath[0] == '/' || relpath[0] == '\0')
                return -EINVAL;
        p = strtok_r(copy, "/", &save);
        while (p) {
                char *next = strtok_r(NULL, "/", &save);
                int fd;

                if (strcmp(p, ".") == 0 || strcmp(p, "..") == 0)
                        return -EINVAL;
                /* O_PATH for intermediate directories: searching needs only +x. */
                fd = open_component(at, p, next ? (O_PATH | O_DIRECTORY) : last_flags);
                if (fd < 0)
                        return fd;
                closep(&cur);
                cur = fd;
                at = cur;
                p = next;
        }
        if (cur < 0)
                return -EINVAL;
        *ret_fd = TAKE_FD(cur);
        return 0;
}

int env_open_dir_beneath(int dirfd, const char *relpath, int *ret_fd)
{
        return open_beneath(dirfd, relpath, O_RDONLY | O_DIRECTORY, ret_fd);
}

int env_mkdir_beneath(int dirfd, const char *relpath, mode_t mode, int *ret_fd)
{
        _cleanup_free_ char *copy = strdup(relpath);
        _cleanup_close_ int fd = -1;
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return negative_errno();
        /* As open_beneath: ".." would climb out of dirfd, and "." names
         * nothing new. All components are checked before anything is made. */
        if (relpath[0] == '/' || relpath[0] == '\0')
                return -EINVAL;
        for (const char *p = relpath; *p;) {
                size_t n = strcspn(p, "/");

                if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return -EINVAL;
                p += n;
                p += strspn(p, "/");
        }
        for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                int next;

                if (mkdirat(fd, c, mode) < 0 && errno != EEXIST)
                        return negative_errno();
                next = open_component(fd, c, O_RDONLY | O_DIRECTORY);
                if (next < 0)
                        return next;
                close(fd);
                fd = next;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int env_open_file_beneath(int dirfd, const char *relpath, int *ret_fd)
{
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        /* O_NONBLOCK: a FIFO planted in place of a file must not hang us. */
        r = open_beneath(dirfd, relpath, O_RDONLY | O_NONBLOCK | O_NOCTTY, &fd);
        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int env_read_file_beneath(int dirfd, const char *relpath, size_t max, char **ret,
                          size_t *ret_len)
{
        _cleanup_close_ int fd = -1;
        int r;

        r = env_open_file_beneath(dirfd, relpath, &fd);
        if (r < 0)
                return r;
        return read_full_fd(fd, max, ret, ret_len);
}

int env_open_home(const EnvUser *user, int *ret_fd)
{
        _cleanup_close_ int fd = open(user->home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct stat st;

        if (fd < 0)
                return negative_errno();
        /* The passwd path is root's, but a component of it may not be: a home
         * under a sticky shared directory can be replaced by its user with a
         * symlink to /root. What we opened must be the user's own directory,
         * or root would read (and archive) someone else's files as theirs. */
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (st.st_uid != user->uid)
                return -EPERM;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* path relative to `base` when it is below it ("" for base itself), else NULL. */
static const char *path_below(const char *path, const char *base)
{
        size_t n = strlen(base);

        while (n > 1 && base[n - 1] == '/')
                n--;
        if (strncmp(path, base, n) != 0)
                return NULL;
        if (path[n] == '\0')
                return path + n;
        if (path[n] != '/')
                return NULL;
        while (path[n] == '/')
                n++;
        return path + n;
}

int env_open_user_dir(const EnvUser *user, int homefd, const char *path, unsigned flags,
                      int *ret_fd)
{
        _cleanup_free_ char *home_real = NULL;
        _cleanup_close_ int fd = -1, root = -1;
        const char *rel;
        struct stat st;
        int r;

        if (path[0] != '/')
                return -EINVAL;
        if (flags & ENV_FOLLOW_SYMLINKS) {
                fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        return negative_errno();
                *ret_fd = TAKE_FD(fd);
                return 0;
        }

        rel = path_below(path, user->home);
        if (!rel) {
                home_real = realpath(user->home, NULL);
                if (home_real)
                        rel = path_below(path, home_real);
        }
        if (rel) {
                if (*rel == '\0') {
                        fd = fcntl(homefd, F_DUPFD_CLOEXEC, 3);
                        if (fd < 0)
                                return negative_errno();
                } else {
                        r = env_open_dir_beneath(homefd, rel, &fd);
                        if (r < 0)
                                return r;
                }
                *ret_fd = TAKE_FD(fd);
                return 0;
        }

        /* Outside the home (a /scratch or /data prefix): no symlinks anywhere on
         * the way, and the directory must be the user's, so that a user cannot
         * make root read someone else's environment on their behalf. */
        root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return negative_errno();
        if (path[1] == '\0')
                return -EPERM;
        r = env_open_dir_beneath(root, path + 1, &fd);
        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (st.st_uid != user->uid)
                return -EPERM;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* ---- disk usage ---- */

typedef struct InodeSet {
        struct {
                dev_t dev;
                ino_t ino;
        } *slots;
        size_t cap, n; /* cap is a power of two; slot ino==0 is empty */
} InodeSet;

static size_t inode_hash(dev_t dev, ino_t ino, size_t cap)
{
        uint64_t h = (uint64_t)ino * UINT64_C(0x9E3779B97F4A7C15) ^ (uint64_t)dev;

        return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

/* Returns 1 when (dev, ino) was new, 0 when seen, -ENOMEM. */
static int inode_set_add(InodeSet *s, dev_t dev, ino_t ino)
{
        size_t i;

        if (ino == 0)
                return 1; /* never happens on Linux filesystems; count it */
        if ((s->n + 1) * 2 > s->cap) {
                size_t ncap = s->cap ? s->cap * 2 : 1024;
                __typeof__(s->slots) ns = calloc(ncap, sizeof(*ns));

                if (!ns)
                        return -ENOMEM;
                for (size_t j = 0; j < s->cap; j++) {
                        if (s->slots[j].ino == 0)
                                continue;
                        i = inode_hash(s->slots[j].dev, s->slots[j].ino, ncap);
                        while (ns[i].ino != 0)
                                i = (i + 1) & (ncap - 1);
                        ns[i] = s->slots[j];
                }
                free(s->slots);
                s->slots = ns;
                s->cap = ncap;
        }
        i = inode_hash(dev, ino, s->cap);
        while (s->slots[i].ino != 0) {
                if (s->slots[i].ino == ino && s->slots[i].dev == dev)
                        return 0;
                i = (i + 1) & (s->cap - 1);
        }
        s->slots[i].dev = dev;
        s->slots[i].ino = ino;
        s->n++;
        return 1;
}

typedef struct Walk {
        InodeSet seen;
        uint64_t bytes;
        size_t entries;
        const char *const *skip; /* top-level names not counted, NULL-terminated, or NULL */
} Walk;

static bool walk_skips(const Walk *w, unsigned depth, const char *name)
{
        if (depth > 0 || !w->skip)
                return false;
        for (const char *const *s = w->skip; *s; s++)
                if (strcmp(*s, name) == 0)
                        return true;
        return false;
}

int env_opendir_dup(int dirfd, DIR **ret)
{
        DIR *d;
        int fd;

        fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                int r = negative_errno();

                close(fd);
                return r;
        }
        *ret = d;
        return 0;
}

static int du_dir(Walk *w, int dirfd, unsigned depth)
{
        DIR *d;
        struct dirent *de;
        int r;

        if (depth > ENV_MAX_WALK_DEPTH)
                return -E2BIG;
        r = env_opendir_dup(dirfd, &d);
        if (r < 0)
                return r;
        while ((de = readdir(d))) {
                struct stat st;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
                    walk_skips(w, depth, de->d_name))
                        continue;
                if (++w->entries > ENV_MAX_WALK_ENTRIES) {
                        r = -E2BIG;
                        break;
                }
                if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue; /* vanished meanwhile */
                if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
                        int k = inode_set_add(&w->seen, st.st_dev, st.st_ino);
                        if (k < 0) {
                                r = k;
                                break;
                        }
                        if (k == 0)
                                continue;
                }
                w->bytes += (uint64_t)st.st_blocks * 512;
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int sub = openat(dirfd, de->d_name,
                                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                                                 O_CLOEXEC);
                        if (sub < 0)
                                continue; /* unreadable subdirectory: its own size is counted */
                        r = du_dir(w, sub, depth + 1);
                        if (r < 0)
                                break;
                }
        }
        closedir(d);
        return r;
}

int env_disk_usage(int dirfd, const char *const *skip, uint64_t *ret)
{
        Walk w = { .skip = skip };
        struct stat st;
        int r;

        if (fstat(dirfd, &st) < 0)
                return negative_errno();
        w.bytes = (uint64_t)st.st_blocks * 512;
        r = du_dir(&w, dirfd, 0);
        free(w.seen.slots);
        *ret = w.bytes;
        return r;
}

/* A directory of our own without u+wx (conda makes some read-only) gets
 * them, through its fd, so that its entries can be removed, as rm -rf does.
 * Not for anyone else's: we only remove what we own. */
static void make_writable(int fd, const struct stat *st)
{
        if (st->st_uid == geteuid() && (st->st_mode & 0300) != 0300)
                (void)fchmod(fd, (st->st_mode & 07777) | 0700);
}

static int rm_rf_children(int dirfd, unsigned depth)
{
        DIR *d;
        struct dirent *de;
        int r;

        if (depth > ENV_MAX_WALK_DEPTH * 4)
                return -ELOOP;
        r = env_opendir_dup(dirfd, &d);
        if (r < 0)
                return r;
        while ((de = readdir(d))) {
                struct stat st;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (S_ISDIR(st.st_mode)) {
                        int sub = openat(dirfd, de->d_name,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        int k;

                        if (sub < 0) {
                                if (r == 0)
                                        r = negative_errno();
                                continue;
                        }
                        make_writable(sub, &st);
                        k = rm_rf_children(sub, depth + 1);
                        close(sub);
                        if (k < 0 && r == 0)
                                r = k;
                        if (unlinkat(dirfd, de->d_name, AT_REMOVEDIR) < 0 && r == 0)
                                r = negative_errno();
                } else if (unlinkat(dirfd, de->d_name, 0) < 0 && r == 0)
                        r = negative_errno();
        }
        closedir(d);
        return r;
}

int env_rm_rf_at(int dirfd, const char *name)
{
        struct stat st;
        int r;

        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();
        if (S_ISDIR(st.st_mode)) {
                _cleanup_close_ int sub =
                        openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0)
                        return negative_errno();
                make_writable(sub, &st);
                r = rm_rf_children(sub, 0);
                if (r < 0)
                        return r;
                if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
                        return negative_errno();
                return 0;
        }
        if (unlinkat(dirfd, name, 0) < 0)
                return negative_errno();
        return 0;
}

int env_write_file_atomic_at(int dirfd, const char *name, const char *data, size_t len,
                             mode_t mode)
{
        char tmp[NAME_MAX + 1];
        _cleanup_close_ int fd = -1;
        size_t off = 0;
        int r;

        r = snprintf(tmp, sizeof tmp, ".#%s.%ld.tmp", name, (long)getpid());
        if (r < 0 || (size_t)r >= sizeof tmp)
                return -ENAMETOOLONG;
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return negative_errno();
        while (off < len) {
                ssize_t k = write(fd, data + off, len - off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        goto fail;
                }
                off += (size_t)k;
        }
        if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
                r = negative_errno();
                goto fail;
        }
        if (renameat(dirfd, tmp, dirfd, name) < 0) {
                r = negative_errno();
                goto fail;
        }
        return 0;
fail:
        unlinkat(dirfd, tmp, 0);
        return r;
}
