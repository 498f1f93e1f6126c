/* Pruning abandoned environments into a per-user trash, and restoring them.
 *
 * Nothing is deleted: an environment is renamed (same filesystem only, so the
 * move is atomic and cheap) to ~/.local/share/gpukeeper/trash/<ID>/prefix next
 * to a manifest.json saying where it came from. All writes happen in a child
 * that has become the user (env_run_as_user), so root never creates or moves
 * anything in a home itself. An environment with a running process inside (its
 * executable or working directory below the prefix) is never moved; the check
 * is repeated right before the rename. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "basic/parse.h"
#include "basic/strv.h"
#include "basic/time-util.h"
#include "basic/utf8.h"
#include "env/env-internal.h"

/* Is `path` (from /proc/<pid>/{exe,cwd}) prefix itself or below it? */
static bool path_inside(const char *path, const char *prefix)
{
        size_t n = strlen(prefix);

        if (strncmp(path, prefix, n) != 0)
                return false;
        return path[n] == '\0' || path[n] == '/' || (n == 1 && prefix[0] == '/');
}

static bool link_inside(int procfd, const char *pid, const char *what, const char *prefix)
{
        char rel[64], target[4096];
        ssize_t k;
        size_t len;

        snprintf(rel, sizeof rel, "%s/%s", pid, what);
        k = readlinkat(procfd, rel, target, sizeof target - 1);
        if (k <= 0)
                return false;
        target[k] = '\0';
        len = (size_t)k;
        if (len > 10 && strcmp(target + len - 10, " (deleted)") == 0)
                target[len - 10] = '\0';
        return path_inside(target, prefix);
}

int env_find_process_inside(const char *proc_root, const char *prefix, pid_t *ret_pid)
{
        _cleanup_free_ char *real = realpath(prefix, NULL);
        struct dirent *de;
        DIR *d;
        int procfd, r = 0;

        if (!real) {
                real = strdup(prefix);
                if (!real)
                        return -ENOMEM;
        }
        d = opendir(proc_root ? proc_root : "/proc");
        if (!d)
                return negative_errno();
        procfd = dirfd(d);
        while ((de = readdir(d))) {
                uint64_t pid;

                if (parse_uint64(de->d_name, &pid) < 0 || pid == 0 || pid > INT32_MAX)
                        continue;
                if (link_inside(procfd, de->d_name, "exe", real) ||
                    link_inside(procfd, de->d_name, "cwd", real)) {
                        *ret_pid = (pid_t)pid;
                        r = 1;
                        break;
                }
        }
        closedir(d);
        return r;
}

void env_prune_plan_free(EnvPrunePlan *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n_items; i++) {
                free(p->items[i].name);
                free(p->items[i].path);
                free(p->items[i].skip_reason);
        }
        free(p->items);
        strv_free_n(p->errors, p->n_errors);
        free(p);
}

static int fill_item(const EnvInfo *e, uint64_t unused_for_usec, uint64_t now_usec,
                     const EnvOptions *o, EnvPruneItem *it)
{
        pid_t pid = 0;
        int r;

        *it = (EnvPruneItem){
                .name = strdup(e->name),
                .path = strdup(e->path),
                .dev = e->dev,
                .ino = e->ino,
                .uid = e->owner_uid,
                .size_bytes = e->size_bytes,
                .last_used_usec = e->last_used_usec,
                .last_used_source = e->last_used_source,
        };
        if (!it->name || !it->path)
                return -ENOMEM;
        if (e->is_base)
                return (it->skip_reason = strdup("base environment of a conda root")) ? 0 : -ENOMEM;
        if (e->last_used_source == ENV_LAST_USED_NONE)
                return (it->skip_reason = strdup("no record of last use")) ? 0 : -ENOMEM;
        /* Saturating: a hook file may claim any time, and last_used + unused_for
         * must not wrap around to something old. */
        if (e->last_used_usec > now_usec || now_usec - e->last_used_usec < unused_for_usec) {
                uint64_t days = now_usec > e->last_used_usec
                                        ? (now_usec - e->last_used_usec) / (86400 * USEC_PER_SEC)
                                        : 0;
                return asprintf(&it->skip_reason, "used %llu days ago (%s)", (unsigned long long)days,
                                env_last_used_source_to_string(e->last_used_source)) < 0
                               ? -ENOMEM
                               : 0;
        }
        r = env_find_process_inside(o ? o->proc_root : NULL, e->path, &pid);
        if (r < 0)
                return asprintf(&it->skip_reason, "cannot check for running processes: %s",
                                strerror(-r)) < 0
                               ? -ENOMEM
                               : 0;
        if (r > 0) {
                it->busy_pid = pid;
                return asprintf(&it->skip_reason, "in use by process %ld", (long)pid) < 0 ? -ENOMEM : 0;
        }
        return 0;
}

int env_prune_plan(const EnvUser *user, uint64_t unused_for_usec, uint64_t now_usec,
                   const EnvOptions *o, EnvPrunePlan **ret)
{
        _cleanup_(env_prune_plan_freep) EnvPrunePlan *p = calloc(1, sizeof(EnvPrunePlan));
        _cleanup_(env_list_freep) EnvList *l = NULL;
        EnvOptions lo = o ? *o : (EnvOptions){};
        int r;

        if (!p)
                return -ENOMEM;
        lo.flags = (lo.flags & ENV_FOLLOW_SYMLINKS) | ENV_LOAD_SIZE;
        r = env_list_user(user, &lo, &l);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l->n_errors; i++)
                if (strv_push(&p->errors, &p->n_errors, l->errors[i]) < 0)
                        return -ENOMEM;
        p->items = calloc(l->n_envs + 1, sizeof(EnvPruneItem));
        if (!p->items)
                return -ENOMEM;
        for (size_t i = 0; i < l->n_envs; i++) {
                const EnvInfo *e = l->envs[i];
                EnvPruneItem *it;

                if (e->error) {
                        if (strv_pushf(&p->errors, &p->n_errors, "%s: %s", e->path, e->error) < 0)
                                return -ENOMEM;
                        continue;
                }
                it = &p->items[p->n_items++];
                r = fill_item(e, unused_for_usec, now_usec, o, it);
                if (r < 0)
                        return r;
                if (!it->skip_reason) {
                        p->n_eligible++;
                        p->eligible_bytes += it->size_bytes;
                }
        }
        *ret = TAKE_PTR(p);
        return 0;
}

/* ---- as the user ---- */

/* ENV_TRASH_DIR below home, made (0700, like mkdir -p) when create is set. */
static int open_trash(const char *home, bool create, int *ret_fd)
{
        _cleanup_close_ int homefd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (homefd < 0)
                return negative_errno();
        if (create)
                return env_mkdir_beneath(homefd, ENV_TRASH_DIR, 0700, ret_fd);
        return env_open_dir_beneath(homefd, ENV_TRASH_DIR, ret_fd);
}

/* Append `path` as a line of the environments.txt in `dir` (which exists),
 * starting a new line when the file does not end with one. */
static int append_environments_txt(int dir, const char *path)
{
        _cleanup_close_ int fd = openat(dir, "environments.txt",
                                        O_RDWR | O_APPEND | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
        struct stat st;
        char last = '\n';

        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)
                return -EIO;
        if ((last != '\n' && dprintf(fd, "\n") < 0) || dprintf(fd, "%s\n", path) < 0)
                return -EIO;
        return 0;
}

/* Add or remove `path` as a line of ~/.conda/environments.txt (atomic rewrite). */
static int update_environments_txt(const char *home, const char *path, bool add)
{
        _cleanup_close_ int homefd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC), dir = -1;
        _cleanup_free_ char *text = NULL, *out = NULL;
        char *save = NULL;
        size_t olen = 0;
        bool present = false;
        FILE *f;
        int r;

        if (homefd < 0)
                return negative_errno();
        if (add && mkdirat(homefd, ".conda", 0755) < 0 && errno != EEXIST)
                return negative_errno();
        dir = openat(homefd, ".conda", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir < 0)
                return (errno == ENOENT && !add) ? 0 : negative_errno();
        r = env_read_file_beneath(dir, "environments.txt", ENV_MAX_SMALL_FILE_BYTES, &text, NULL);
        if (r == -EFBIG)
                /* Too big to rewrite within our limit (issue 10 item 17):
                 * append the line as conda does; a stale line left by a
                 * removal is harmless (discovery skips what is gone). */
                return add ? append_environments_txt(dir, path) : 0;
        if (r == -ENOENT) {
                if (!add)
                        return 0;
        } else if (r < 0)
                return r;

        f = open_memstream(&out, &olen);
        if (!f)
                return -ENOMEM;
        for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line;
             line = strtok_r(NULL, "\n", &save)) {
                size_t n = strlen(line);

                while (n > 1 && (line[n - 1] == '/' || line[n - 1] == '\r'))
                        line[--n] = '\0';
                if (strcmp(line, path) == 0) {
                        if (!add || present)
                                continue;
                        present = true;
                }
                fprintf(f, "%s\n", line);
        }
        if (add && !present)
                fprintf(f, "%s\n", path);
        if (fclose(f) != 0)
                return -ENOMEM;
        return env_write_file_atomic_at(dir, "environments.txt", out, olen, 0644);
}

typedef struct PruneJob {
        const char *home;
        const char *path;
        const char *name;
        const char *base_id;
        const char *proc_root;
        dev_t dev;
        ino_t ino;
        uid_t uid;
        uint64_t size_bytes;
        uint64_t now_usec;
        int id_pipe; /* the chosen id goes back through here */
} PruneJob;

/* manifest.json of a trash entry. JSON holds only UTF-8, so a path that is not
 * valid UTF-8 is written escaped (env_json_string) for people to read and, for
 * env_restore to put back byte for byte, also as hex in "original_path_hex". */
static int write_manifest(int idfd, const char *id, const char *name, const char *path, uid_t uid,
                          uint64_t now_usec, uint64_t size)
{
        _cleanup_free_ char *text = NULL;
        json_t *j = json_pack("{s:i, s:o, s:o, s:o, s:I, s:I, s:I}", "version", 1, "id",
                              env_json_string(id), "name", env_json_string(name), "original_path",
                              env_json_string(path), "uid", (json_int_t)uid, "trashed_at",
                              (json_int_t)(now_usec / USEC_PER_SEC), "size_bytes", (json_int_t)size);

        if (!j)
                return -ENOMEM;
        if (!utf8_is_valid(path, strlen(path))) {
                static const char hex[] = "0123456789abcdef";
                size_t len = strlen(path);
                _cleanup_free_ char *h = malloc(len * 2 + 1);

                if (!h) {
                        json_decref(j);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < len; i++) {
                        h[2 * i] = hex[(unsigned char)path[i] >> 4];
                        h[2 * i + 1] = hex[(unsigned char)path[i] & 0xF];
                }
                h[len * 2] = '\0';
                if (json_object_set_new(j, "original_path_hex", json_string(h)) < 0) {
                        json_decref(j);
                        return -ENOMEM;
                }
        }
        text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
        json_decref(j);
        if (!text)
                return -ENOMEM;
        return env_write_file_atomic_at(idfd, "manifest.json", text, strlen(text), 0600);
}

static int hex_digit(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* The bytes of manifest's "original_path_hex" (written by write_manifest):
 * NULL and -EBADMSG when it is not even-length lowercase hex of a string
 * without NUL bytes, at most PATH_MAX long. */
static int decode_hex_path(const char *h, char **ret)
{
        size_t len = strlen(h);
        char *p;

        if (len % 2 != 0 || len / 2 >= PATH_MAX)
                return -EBADMSG;
        p = malloc(len / 2 + 1);
        if (!p)
                return -ENOMEM;
        for (size_t i = 0; i < len / 2; i++) {
                int hi = hex_digit(h[2 * i]), lo = hex_digit(h[2 * i + 1]);

                if (hi < 0 || lo < 0 || (hi | lo) == 0) {
                        free(p);
                        return -EBADMSG;
                }
                p[i] = (char)(hi << 4 | lo);
        }
        p[len / 2] = '\0';
        *ret = p;
        return 0;
}

static int prune_child(void *userdata)
{
        PruneJob *job = userdata;
        _cleanup_close_ int trash = -1, idfd = -1;
        char id[256];
        struct stat st;
        pid_t pid;
        int r;

        if (lstat(job->path, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_dev != job->dev ||
            st.st_ino != job->ino)
                return -ESTALE;
        if (env_find_process_inside(job->proc_root, job->path, &pid) > 0)
                return -EBUSY;
        r = open_trash(job->home, true, &trash);
        if (r < 0)
                return r;
        for (unsigned n = 1;; n++) {
                if (n == 1)
                        snprintf(id, sizeof id, "%s", job->base_id);
                else
                        snprintf(id, sizeof id, "%s-%u", job->base_id, n);
                if (mkdirat(trash, id, 0700) >= 0)
                        break;
                if (errno != EEXIST || n > 1000)
                        return negative_errno();
        }
        idfd = openat(trash, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (idfd < 0)
                return negative_errno();
        r = write_manifest(idfd, id, job->name, job->path, job->uid, job->now_usec, job->size_bytes);
        if (r >= 0 && renameat2(AT_FDCWD, job->path, idfd, "prefix", RENAME_NOREPLACE) < 0)
                r = negative_errno();
        if (r < 0) {
                unlinkat(idfd, "manifest.json", 0);
                unlinkat(trash, id, AT_REMOVEDIR);
                return r;
        }
        if (write(job->id_pipe, id, strlen(id)) < 0)
                return negative_errno();
        /* The env is safely in the trash; a stale environments.txt line only
         * makes `conda env list` show a missing env, so this is not fatal. */
        (void)update_environments_txt(job->home, job->path, false);
        return 0;
}

static int read_pipe_string(int fd, char **ret)
{
        char buf[257];
        size_t len = 0;

        for (;;) {
                ssize_t k = read(fd, buf + len, sizeof buf - 1 - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0 || len + (size_t)k >= sizeof buf - 1) {
                        len += (size_t)MAX(k, 0);
                        break;
                }
                len += (size_t)k;
        }
        buf[len] = '\0';
        if (len == 0)
                return -EIO;
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

int env_prune(const EnvUser *user, const EnvPruneItem *item, const EnvOptions *o,
              uint64_t now_usec, char **ret_trash_id)
{
        _cleanup_free_ char *safe = NULL, *base_id = NULL;
        int pipefd[2];
        struct tm tm;
        time_t t = (time_t)(now_usec / USEC_PER_SEC);
        char stamp[32];
        pid_t pid;
        int r;

        if (item->skip_reason)
                return -EINVAL;
        /* As root the authoritative check: the child (as the user) cannot see
         * other users' processes. */
        r = env_find_process_inside(o ? o->proc_root : NULL, item->path, &pid);
        if (r < 0)
                return r;
        if (r > 0)
                return -EBUSY;
        safe = env_safe_name(item->name);
        if (!safe)
                return -ENOMEM;
        localtime_r(&t, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
        if (asprintf(&base_id, "%s-%s", safe, stamp) < 0)
                return -ENOMEM;
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return negative_errno();

        PruneJob job = {
                .home = user->home,
                .path = item->path,
                .name = item->name,
                .base_id = base_id,
                .proc_root = o ? o->proc_root : NULL,
                .dev = item->dev,
                .ino = item->ino,
                .uid = user->uid,
                .size_bytes = item->size_bytes,
                .now_usec = now_usec,
                .id_pipe = pipefd[1],
        };
        r = env_run_as_user(user->uid, user->gid, prune_child, &job);
        close(pipefd[1]);
        if (r >= 0)
                r = read_pipe_string(pipefd[0], ret_trash_id);
        close(pipefd[0]);
        return r;
}

/* ---- trash listing and restore ---- */

static void trash_entry_done(EnvTrashEntry *e)
{
        free(e->id);
        free(e->name);
        free(e->original_path);
        e->id = e->name = e->original_path = NULL;
}

void env_trash_entries_free(EnvTrashEntry *e, size_t n)
{
        if (!e)
                return;
        for (size_t i = 0; i < n; i++)
                trash_entry_done(&e[i]);
        free(e);
}

static bool plain_id(const char *id)
{
        return id[0] && id[0] != '.' && !strchr(id, '/') && strlen(id) < 256;
}

/* Read <trash>/<id>/manifest.json (no symlinks) into *ret. */
static int read_manifest(int trashfd, const char *id, EnvTrashEntry *ret)
{
        _cleanup_free_ char *rel = NULL, *text = NULL, *raw = NULL;
        const char *name, *path, *hex;
        json_t *j;
        size_t len;
        int r;

        if (asprintf(&rel, "%s/manifest.json", id) < 0)
                return -ENOMEM;
        r = env_read_file_beneath(trashfd, rel, ENV_MAX_SMALL_FILE_BYTES, &text, &len);
        if (r < 0)
                return r;
        j = json_loadb(text, len, 0, NULL);
        name = json_string_value(json_object_get(j, "name"));
        path = json_string_value(json_object_get(j, "original_path"));
        hex = json_string_value(json_object_get(j, "original_path_hex"));
        if (hex) {
                r = decode_hex_path(hex, &raw);
                if (r < 0) {
                        json_decref(j);
                        return r;
                }
                path = raw;
        }
        if (!name || !path || path[0] != '/') {
                json_decref(j);
                return -EBADMSG;
        }
        *ret = (EnvTrashEntry){
                .id = strdup(id),
                .name = strdup(name),
                .original_path = strdup(path),
                .trashed_usec = (uint64_t)json_integer_value(json_object_get(j, "trashed_at")) * USEC_PER_SEC,
                .size_bytes = (uint64_t)json_integer_value(json_object_get(j, "size_bytes")),
        };
        json_decref(j);
        if (!ret->id || !ret->name || !ret->original_path) {
                trash_entry_done(ret);
                return -ENOMEM;
        }
        return 0;
}

static int open_trash_readonly(const EnvUser *user, int *ret_fd)
{
        _cleanup_close_ int homefd = -1;
        int r;

        r = env_open_home(user, &homefd);
        if (r < 0)
                return r;
        return env_open_dir_beneath(homefd, ENV_TRASH_DIR, ret_fd);
}

static int cmp_trash(const void *a, const void *b)
{
        const EnvTrashEntry *x = a, *y = b;

        if (x->trashed_usec != y->trashed_usec)
                return x->trashed_usec < y->trashed_usec ? -1 : 1;
        return strcmp(x->id, y->id);
}

int env_trash_list(const EnvUser *user, const EnvOptions *o, EnvTrashEntry **ret, size_t *ret_n)
{
        _cleanup_close_ int trash = -1;
        EnvTrashEntry *v = NULL;
        size_t n = 0;
        struct dirent *de;
        DIR *d;
        int r;

        r = open_trash_readonly(user, &trash);
        if (r == -ENOENT) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (r < 0)
                return r;
        r = env_opendir_dup(trash, &d);
        if (r < 0)
                return r;
        r = 0;
        while ((de = readdir(d)) && n < ENV_MAX_ENVS_PER_USER * 10) {
                EnvTrashEntry e, *nv;
                int k;

                if (!plain_id(de->d_name))
                        continue;
                k = read_manifest(trash, de->d_name, &e);
                if (k == -ENOMEM) {
                        r = k;
                        break;
                }
                if (k < 0)
                        continue;
                nv = realloc(v, sizeof(EnvTrashEntry) * (n + 1));
                if (!nv) {
                        trash_entry_done(&e);
                        r = -ENOMEM;
                        break;
                }
                v = nv;
                v[n++] = e;
        }
        closedir(d);
        if (r < 0) {
                env_trash_entries_free(v, n);
                return r;
        }
        if (n > 0)
                qsort(v, n, sizeof(EnvTrashEntry), cmp_trash);
        *ret = v;
        *ret_n = n;
        return 0;
}

typedef struct RestoreJob {
        const char *home;
        const char *id;
        const char *path;
} RestoreJob;

static int restore_child(void *userdata)
{
        RestoreJob *job = userdata;
        _cleanup_close_ int trash = -1, idfd = -1;
        EnvTrashEntry e = {};
        struct stat st;
        int r;

        r = open_trash(job->home, false, &trash);
        if (r < 0)
                return r;
        /* Re-read as the user: the manifest must still say what the parent saw. */
        r = read_manifest(trash, job->id, &e);
        if (r < 0)
                return r;
        r = strcmp(e.original_path, job->path) == 0 ? 0 : -ESTALE;
        trash_entry_done(&e);
        if (r < 0)
                return r;
        if (lstat(job->path, &st) == 0)
                return -EEXIST;
        idfd = openat(trash, job->id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (idfd < 0)
                return negative_errno();
        if (renameat2(idfd, "prefix", AT_FDCWD, job->path, RENAME_NOREPLACE) < 0)
                return negative_errno();
        unlinkat(idfd, "manifest.json", 0);
        unlinkat(trash, job->id, AT_REMOVEDIR);
        return update_environments_txt(job->home, job->path, true);
}

int env_restore(const EnvUser *user, const char *trash_id, const EnvOptions *o, char **ret_path)
{
        _cleanup_close_ int trash = -1;
        _cleanup_free_ char *path = NULL;
        EnvTrashEntry e = {};
        int r;

        if (!plain_id(trash_id))
                return -EINVAL;
        r = open_trash_readonly(user, &trash);
        if (r < 0)
                return r;
        r = read_manifest(trash, trash_id, &e);
        if (r < 0)
                return r == -EBADMSG ? -ENOENT : r;
        path = TAKE_PTR(e.original_path);
        trash_entry_done(&e);

        RestoreJob job = { .home = user->home, .id = trash_id, .path = path };
        r = env_run_as_user(user->uid, user->gid, restore_child, &job);
        if (r < 0)
                return r;
        *ret_path = TAKE_PTR(path);
        return 0;
}

/* ---- emptying the trash ---- */

typedef struct RemoveJob {
        const char *home;
        char *const *ids;
        size_t n_ids;
} RemoveJob;

/* As the user: each entry is removed below the trash directory's fd with
 * unlinkat, no symlink followed (env_rm_rf_at), so an entry that was
 * swapped for a link removes the link and nothing it points at. */
static int remove_child(void *userdata)
{
        RemoveJob *job = userdata;
        _cleanup_close_ int trash = -1;
        int r = 0;

        r = open_trash(job->home, false, &trash);
        if (r < 0)
                return r;
        for (size_t i = 0; i < job->n_ids; i++) {
                int k = env_rm_rf_at(trash, job->ids[i]);

                if (k < 0 && r == 0)
                        r = k;
        }
        return r;
}

int env_trash_remove(const EnvUser *user, char *const *ids, size_t n_ids, const EnvOptions *o)
{
        (void)o;
        for (size_t i = 0; i < n_ids; i++)
                if (!plain_id(ids[i]))
                        return -EINVAL;
        if (n_ids == 0)
                return 0;
        RemoveJob job = {.home = user->home, .ids = ids, .n_ids = n_ids};
        return env_run_as_user(user->uid, user->gid, remove_child, &job);
}
