/* The dated backup of every user's environment specs: one tar.gz (libarchive)
 * with environment.yml (--no-builds), environment-builds.yml and a copy of
 * conda-meta/history per env, and a MANIFEST.json describing users, envs,
 * sizes and every error met. Written to a temp file and renamed into place,
 * mode 0600, so a reader never sees half an archive and other users never
 * read each other's specs. Also the retention of the newest N archives. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "basic/memstream.h"
#include "basic/strv.h"
#include "basic/time-util.h"
#include "env/env-internal.h"

#define BACKUP_PREFIX "gpukeeper-envs-"
#define BACKUP_SUFFIX ".tar.gz"
#define BACKUP_STAMP_LEN 15 /* YYYYMMDD-HHMMSS */

int env_read_history(const EnvUser *user, const EnvInfo *env, const EnvOptions *o, char **ret,
                     size_t *ret_len)
{
        _cleanup_close_ int homefd = -1, envfd = -1;
        struct stat st;
        int r;

        if (env->error)
                return -EINVAL;
        r = env_open_home(user, &homefd);
        if (r < 0)
                return r;
        r = env_open_user_dir(user, homefd, env->path, o ? o->flags & ENV_FOLLOW_SYMLINKS : 0,
                              &envfd);
        if (r < 0)
                return r;
        if (fstat(envfd, &st) < 0)
                return negative_errno();
        if (st.st_dev != env->dev || st.st_ino != env->ino)
                return -ESTALE;
        return env_read_file_beneath(envfd, "conda-meta/history", ENV_MAX_HISTORY_BYTES, ret, ret_len);
}

static int add_entry(struct archive *a, const char *path, const char *data, size_t len,
                     time_t mtime)
{
        struct archive_entry *e = archive_entry_new();
        int r = 0;

        if (!e)
                return -ENOMEM;
        archive_entry_set_pathname(e, path);
        archive_entry_set_size(e, (la_int64_t)len);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0600);
        archive_entry_set_mtime(e, mtime, 0);
        if (archive_write_header(a, e) != ARCHIVE_OK)
                r = -EIO;
        else if (len > 0 && archive_write_data(a, data, len) != (la_ssize_t)len)
                r = -EIO;
        archive_entry_free(e);
        return r;
}

/* environment.yml text of one mode, in memory. */
static int render_export(const EnvInfo *env, EnvExportMode mode, char **ret, size_t *ret_len)
{
        MemStream m;
        int r;

        r = memstream_open(&m);
        if (r < 0)
                return r;
        r = env_export(env, mode, m.f);
        return memstream_finish(&m, r, ret, ret_len);
}

/* Append a formatted error to the JSON array; the arguments may be any bytes
 * (paths of a user's files). 0 or -ENOMEM. */
_printf_(2, 3) static int append_error(json_t *errors, const char *fmt, ...)
{
        _cleanup_free_ char *text = NULL;
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vasprintf(&text, fmt, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;
        return json_array_append_new(errors, env_json_string(text)) < 0 ? -ENOMEM : 0;
}

/* Archive the envs of one user; fills the user's manifest object. */
static int backup_user(struct archive *a, const EnvUser *user, const EnvOptions *o, time_t mtime,
                       json_t *users)
{
        _cleanup_(env_list_freep) EnvList *l = NULL;
        _cleanup_free_ char *safe_user = env_safe_name(user->name);
        EnvOptions lo = o ? *o : (EnvOptions){};
        json_t *ju, *envs, *errors;
        char **used = NULL;
        size_t n_used = 0;
        int r;

        if (!safe_user)
                return -ENOMEM;
        ju = json_pack("{s:o, s:I, s:o, s:[], s:[]}", "user", env_json_string(user->name), "uid",
                       (json_int_t)user->uid, "home", env_json_string(user->home), "envs", "errors");
        if (!ju || json_array_append_new(users, ju) < 0)
                return -ENOMEM;
        envs = json_object_get(ju, "envs");
        errors = json_object_get(ju, "errors");

        lo.flags = (lo.flags & ENV_FOLLOW_SYMLINKS) | ENV_LOAD_PACKAGES | ENV_LOAD_SIZE;
        r = env_list_user(user, &lo, &l);
        if (r == -ENOMEM)
                return r;
        if (r == -EPERM) /* the home leads to someone else's directory */
                return append_error(errors, "home %s: not owned by %s, not read", user->home,
                                    user->name);
        if (r < 0)
                return append_error(errors, "home %s: %s", user->home, strerror(-r));
        for (size_t i = 0; i < l->n_errors; i++)
                if (json_array_append_new(errors, env_json_string(l->errors[i])) < 0)
                        return -ENOMEM;

        r = 0;
        for (size_t i = 0; r >= 0 && i < l->n_envs; i++) {
                const EnvInfo *e = l->envs[i];
                _cleanup_free_ char *safe = NULL, *dir = NULL, *yml = NULL, *builds = NULL,
                                    *history = NULL, *p = NULL;
                size_t yml_len = 0, builds_len = 0, hlen = 0;
                json_t *je = env_info_to_json(e);

                if (!je || json_array_append_new(envs, je) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (e->error)
                        continue;
                safe = env_safe_name(e->name);
                if (!safe) {
                        r = -ENOMEM;
                        break;
                }
                /* Same name twice (a base per root, or one name in two envs dirs). */
                dir = strdup(safe);
                for (unsigned k = 2; dir && strv_contains(used, n_used, dir); k++) {
                        free(dir);
                        if (asprintf(&dir, "%s-%u", safe, k) < 0)
                                dir = NULL;
                }
                if (!dir || strv_push(&used, &n_used, dir) < 0) {
                        r = -ENOMEM;
                        break;
                }
                /* Both parts are env_safe_name()s: plain ASCII. */
                if (json_object_set_new(je, "archive_dir", json_sprintf("%s/%s", safe_user, dir)) < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = render_export(e, ENV_EXPORT_NO_BUILDS, &yml, &yml_len);
                if (r >= 0)
                        r = render_export(e, ENV_EXPORT_BUILDS, &builds, &builds_len);
                if (r < 0)
                        break;
                r = env_read_history(user, e, &lo, &history, &hlen);
                if (r == -ENOMEM)
                        break;
                if (r < 0) {
                        r = append_error(errors, "%s: history: %s", e->path, strerror(-r));
                        if (r < 0)
                                break;
                }
                if (asprintf(&p, "%s/%s/environment.yml", safe_user, dir) < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = add_entry(a, p, yml, yml_len, mtime);
                free(p);
                if (r < 0 || asprintf(&p, "%s/%s/environment-builds.yml", safe_user, dir) < 0) {
                        p = NULL;
                        r = r < 0 ? r : -ENOMEM;
                        break;
                }
                r = add_entry(a, p, builds, builds_len, mtime);
                free(p);
                p = NULL;
                if (r < 0 || !history)
                        continue;
                if (asprintf(&p, "%s/%s/history", safe_user, dir) < 0) {
                        p = NULL;
                        r = -ENOMEM;
                        break;
                }
                r = add_entry(a, p, history, hlen, mtime);
        }
        strv_free_n(used, n_used);
        return r;
}

int env_backup(const EnvUser *users, size_t n_users, const char *dir, const EnvOptions *o,
               uint64_t now_usec, char **ret_path)
{
        _cleanup_close_ int dirfd = -1, fd = -1;
        _cleanup_free_ char *manifest = NULL, *path = NULL;
        char name[64], tmp[96], stamp[32], host[256] = "";
        time_t t = (time_t)(now_usec / USEC_PER_SEC);
        struct archive *a = NULL;
        struct stat st;
        struct tm tm;
        json_t *jm = NULL;
        int r;

        localtime_r(&t, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
        snprintf(name, sizeof name, BACKUP_PREFIX "%s" BACKUP_SUFFIX, stamp);
        snprintf(tmp, sizeof tmp, ".%s.%ld.tmp", name, (long)getpid());
        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;

        dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return negative_errno();
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                return -EEXIST;
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return negative_errno();

        (void)gethostname(host, sizeof host - 1);
        jm = json_pack("{s:i, s:I, s:o, s:[]}", "version", 1, "created", (json_int_t)t, "host",
                       env_json_string(host), "users");
        a = archive_write_new();
        if (!jm || !a) {
                r = -ENOMEM;
                goto fail;
        }
        if (archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
            archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
            archive_write_open_fd(a, fd) != ARCHIVE_OK) {
                r = -EIO;
                goto fail;
        }
        for (size_t i = 0; i < n_users; i++) {
                r = backup_user(a, &users[i], o, t, json_object_get(jm, "users"));
                if (r < 0)
                        goto fail;
        }
        manifest = json_dumps(jm, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (!manifest) {
                r = -ENOMEM;
                goto fail;
        }
        r = add_entry(a, "MANIFEST.json", manifest, strlen(manifest), t);
        if (r < 0)
                goto fail;
        if (archive_write_close(a) != ARCHIVE_OK) {
                r = -EIO;
                goto fail;
        }
        archive_write_free(a);
        a = NULL;
        json_decref(jm);
        jm = NULL;
        if (fchmod(fd, 0600) < 0 || fsync(fd) < 0) {
                r = negative_errno();
                goto fail;
        }
        if (renameat2(dirfd, tmp, dirfd, name, RENAME_NOREPLACE) < 0) {
                r = negative_errno();
                goto fail;
        }
        *ret_path = TAKE_PTR(path);
        return 0;
fail:
        if (a)
                archive_write_free(a);
        json_decref(jm);
        unlinkat(dirfd, tmp, 0);
        return r;
}

static bool is_backup_name(const char *n)
{
        size_t pl = strlen(BACKUP_PREFIX), sl = strlen(BACKUP_SUFFIX);

        if (strlen(n) != pl + BACKUP_STAMP_LEN + sl || strncmp(n, BACKUP_PREFIX, pl) != 0 ||
            !env_endswith(n, BACKUP_SUFFIX))
                return false;
        for (size_t i = 0; i < BACKUP_STAMP_LEN; i++) {
                char c = n[pl + i];
                if (i == 8 ? c != '-' : (c < '0' || c > '9'))
                        return false;
        }
        return true;
}

int env_backup_prune(const char *dir, unsigned keep)
{
        _cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char **names = NULL;
        size_t n = 0;
        struct dirent *de;
        DIR *d;
        int r = 0, deleted = 0;

        if (dirfd < 0)
                return negative_errno();
        r = env_opendir_dup(dirfd, &d);
        if (r < 0)
                return r;
        while ((de = readdir(d)))
                if (is_backup_name(de->d_name) && (r = strv_push(&names, &n, de->d_name)) < 0)
                        break;
        closedir(d);
        if (r >= 0 && n > keep) {
                /* The stamp in the name sorts chronologically. */
                qsort(names, n, sizeof(char *), env_cmp_strp);
                for (size_t i = 0; i < n - keep; i++) {
                        if (unlinkat(dirfd, names[i], 0) < 0) {
                                if (errno != ENOENT && r == 0)
                                        r = negative_errno();
                                continue;
                        }
                        deleted++;
                }
        }
        strv_free_n(names, n);
        return r < 0 ? r : deleted;
}
