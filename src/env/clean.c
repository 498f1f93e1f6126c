/* `conda clean --all` on a user's package caches (conda/cli/main_clean.py):
 * tarballs (*.tar.bz2, *.conda), the index cache pkgs/cache/, extracted
 * packages no environment uses any more, temp files and logs.
 *
 * conda installs an environment by hard-linking the files of the extracted
 * package in pkgs/ into the prefix, so an extracted package whose regular
 * files all have st_nlink == 1 is used by no environment on this filesystem;
 * one hard link left means it is kept. The plan is made read-only (also by
 * root); removal happens as the user, re-checking the link counts first. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/strv.h"
#include "env/env-internal.h"

const char *env_clean_kind_to_string(EnvCleanKind k)
{
        switch (k) {
        case ENV_CLEAN_TARBALL:
                return "tarball";
        case ENV_CLEAN_INDEX_CACHE:
                return "index-cache";
        case ENV_CLEAN_PACKAGE:
                return "package";
        case ENV_CLEAN_TEMP:
                return "temp";
        case ENV_CLEAN_LOG:
                return "log";
        }
        return "unknown";
}

void env_clean_plan_free(EnvCleanPlan *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n_items; i++)
                free(p->items[i].path);
        free(p->items);
        strv_free_n(p->pkgs_dirs, p->n_pkgs_dirs);
        strv_free_n(p->errors, p->n_errors);
        free(p);
}

/* 1 when every regular file below dirfd has st_nlink == 1, 0 when one is still
 * linked elsewhere, -errno (then the package is kept: unknown is not unused). */
static int all_unlinked(int dirfd, unsigned depth, size_t *budget)
{
        struct dirent *de;
        DIR *d;
        int r = 1, k;

        if (depth > ENV_MAX_WALK_DEPTH)
                return -E2BIG;
        k = env_opendir_dup(dirfd, &d);
        if (k < 0)
                return k;
        while (r == 1 && (de = readdir(d))) {
                struct stat st;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (*budget == 0) {
                        r = -E2BIG;
                        break;
                }
                (*budget)--;
                if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = negative_errno();
                        break;
                }
                if (S_ISREG(st.st_mode) && st.st_nlink > 1)
                        r = 0;
                else if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int sub = openat(dirfd, de->d_name,
                                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                                                 O_CLOEXEC);
                        if (sub < 0)
                                r = negative_errno();
                        else
                                r = all_unlinked(sub, depth + 1, budget);
                }
        }
        closedir(d);
        return r;
}

static int package_unused(int pkgdirfd)
{
        size_t budget = ENV_MAX_WALK_ENTRIES;

        return all_unlinked(pkgdirfd, 0, &budget);
}

static int add_item(EnvCleanPlan *p, const char *dir, const char *name, EnvCleanKind kind,
                    uint64_t bytes)
{
        EnvCleanItem *nv = realloc(p->items, sizeof(EnvCleanItem) * (p->n_items + 1));
        char *path;

        if (!nv)
                return -ENOMEM;
        p->items = nv;
        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        p->items[p->n_items++] = (EnvCleanItem){ .path = path, .kind = kind, .bytes = bytes };
        p->total_bytes += bytes;
        return 0;
}

static bool is_temp_name(const char *n)
{
        return env_endswith(n, ".c~") || env_endswith(n, ".trash") || env_endswith(n, ".tmp");
}

static int scan_pkgs_dir(EnvCleanPlan *p, const char *dir, int fd)
{
        struct dirent *de;
        DIR *d;
        int r;
        size_t count = 0;

        r = env_opendir_dup(fd, &d);
        if (r < 0)
                return r;
        while (r >= 0 && (de = readdir(d)) && count++ < ENV_MAX_PACKAGES * 4) {
                const char *n = de->d_name;
                struct stat st;
                uint64_t bytes = 0;

                if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
                        continue;
                if (fstatat(fd, n, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (S_ISREG(st.st_mode)) {
                        uint64_t b = (uint64_t)st.st_blocks * 512;

                        if (env_endswith(n, ".tar.bz2") || env_endswith(n, ".conda"))
                                r = add_item(p, dir, n, ENV_CLEAN_TARBALL, b);
                        else if (is_temp_name(n))
                                r = add_item(p, dir, n, ENV_CLEAN_TEMP, b);
                        continue;
                }
                if (!S_ISDIR(st.st_mode))
                        continue;

                _cleanup_close_ int sub =
                        openat(fd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0)
                        continue;
                if (strcmp(n, "cache") == 0) {
                        (void)env_disk_usage(sub, NULL, &bytes);
                        r = add_item(p, dir, n, ENV_CLEAN_INDEX_CACHE, bytes);
                } else if (strcmp(n, ".logs") == 0) {
                        (void)env_disk_usage(sub, NULL, &bytes);
                        r = add_item(p, dir, n, ENV_CLEAN_LOG, bytes);
                } else if (strcmp(n, ".trash") == 0) {
                        (void)env_disk_usage(sub, NULL, &bytes);
                        r = add_item(p, dir, n, ENV_CLEAN_TEMP, bytes);
                } else if (fstatat(sub, "info/index.json", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                           S_ISREG(st.st_mode) && package_unused(sub) == 1) {
                        (void)env_disk_usage(sub, NULL, &bytes);
                        r = add_item(p, dir, n, ENV_CLEAN_PACKAGE, bytes);
                }
        }
        closedir(d);
        return r;
}

int env_clean_plan(const EnvUser *user, const EnvOptions *o, EnvCleanPlan **ret)
{
        _cleanup_(env_clean_plan_freep) EnvCleanPlan *p = calloc(1, sizeof(EnvCleanPlan));
        _cleanup_close_ int homefd = -1;
        unsigned flags = o ? o->flags : 0;
        int r;

        if (!p)
                return -ENOMEM;
        r = env_open_home(user, &homefd);
        if (r < 0)
                return r;
        for (size_t i = 0; i <= env_n_conda_roots; i++) {
                _cleanup_free_ char *dir = NULL;
                _cleanup_close_ int fd = -1;
                struct stat st;

                if (asprintf(&dir, "%s/%s/pkgs", user->home,
                             i < env_n_conda_roots ? env_conda_roots[i] : ".conda") < 0)
                        return -ENOMEM;
                r = env_open_user_dir(user, homefd, dir, flags, &fd);
                if (r == -ENOENT || r == -ENOTDIR)
                        continue;
                if (r == -ENOMEM)
                        return r;
                if (r >= 0 && fstat(fd, &st) < 0)
                        r = negative_errno();
                /* conda cleans only caches it can write; for us: the user's own. */
                if (r >= 0 && (st.st_uid != user->uid || !(st.st_mode & S_IWUSR)))
                        r = -EACCES;
                if (r < 0) {
                        if (strv_pushf(&p->errors, &p->n_errors, "%s: %s", dir,
                                           r == -ELOOP    ? "a symbolic link, not followed"
                                           : r == -EACCES ? "not writable by the user, skipped"
                                                          : strerror(-r)) < 0)
                                return -ENOMEM;
                        continue;
                }
                r = strv_push(&p->pkgs_dirs, &p->n_pkgs_dirs, dir);
                if (r < 0)
                        return r;
                r = scan_pkgs_dir(p, dir, fd);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(p);
        return 0;
}

static int clean_child(void *userdata)
{
        const EnvCleanPlan *plan = userdata;
        int r = 0;

        for (size_t i = 0; i < plan->n_items; i++) {
                _cleanup_free_ char *dir = strdup(plan->items[i].path);
                _cleanup_close_ int dfd = -1, sub = -1;
                char *slash;
                int k;

                if (!dir)
                        return -ENOMEM;
                slash = strrchr(dir, '/');
                if (!slash || slash == dir)
                        continue;
                *slash = '\0';
                dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd < 0) {
                        if (r == 0)
                                r = negative_errno();
                        continue;
                }
                /* A package may have been linked into a new env since the plan. */
                if (plan->items[i].kind == ENV_CLEAN_PACKAGE) {
                        sub = openat(dfd, slash + 1, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub < 0 || package_unused(sub) != 1)
                                continue;
                }
                k = env_rm_rf_at(dfd, slash + 1);
                if (k < 0 && k != -ENOENT && r == 0)
                        r = k;
        }
        return r;
}

int env_clean_apply(const EnvUser *user, const EnvCleanPlan *plan, const EnvOptions *o)
{
        if (plan->n_items == 0)
                return 0;
        return env_run_as_user(user->uid, user->gid, clean_child, (void *)plan);
}
