/* What is in one environment: owner, size, python / torch / CUDA versions,
 * creation and last-use times, and (for export and backup) the full list of
 * conda records and pip packages and the requested specs from the history.
 *
 * Everything is read through directory fds without following symlinks, so a
 * prefix that contains a symlink to /etc yields no data from /etc.
 *
 * Sources, in order of preference:
 *   python  conda record "python"
 *   torch   conda record "pytorch", else "torch", else site-packages torch-*.dist-info
 *   CUDA    conda records "cuda-version", "cuda-runtime", "cudatoolkit",
 *           "cuda-cudart"; else "cudaX.Y" in the pytorch build string; else pip
 *           nvidia-cuda-runtime-cuXX (major.minor of its version); else the local
 *           version of a pip torch ("2.3.1+cu121" → "12.1")
 *   created    first "==> YYYY-MM-DD HH:MM:SS <==" of the history (local time), else
 *              conda-meta's mtime
 *   last used  the newer of ENV_LAST_ACTIVATED_FILE ("hook") and the atime of
 *              bin/python after following its symlink chain inside bin/
 *              ("atime"); the source of the one that won is reported */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "basic/parse.h"
#include "basic/strv.h"
#include "basic/user-util.h"
#include "env/env-internal.h"

static void package_done(EnvPackage *p)
{
        free(p->name);
        free(p->version);
        free(p->build);
        free(p->channel);
}

void env_info_free(EnvInfo *e)
{
        if (!e)
                return;
        free(e->name);
        free(e->path);
        free(e->error);
        free(e->owner_name);
        free(e->python_version);
        free(e->torch_version);
        free(e->cuda_version);
        for (size_t i = 0; e->packages && i < e->n_packages; i++)
                package_done(&e->packages[i]);
        free(e->packages);
        strv_free_n(e->history_specs, e->n_history_specs);
        strv_free_n(e->condarc_channels, e->n_condarc_channels);
        strv_free_n(e->warnings, e->n_warnings);
        free(e);
}

const char *env_last_used_source_to_string(EnvLastUsedSource s)
{
        switch (s) {
        case ENV_LAST_USED_HOOK:
                return "hook";
        case ENV_LAST_USED_ATIME:
                return "atime";
        default:
                return NULL;
        }
}

/* "numpy-1.26.4-py311h64a7726_0.json" → name, version, build (pointers into buf,
 * which is modified). Versions and build strings cannot contain '-'. */
static bool split_record_name(char *buf, char **name, char **version, char **build)
{
        char *b, *v;

        if (!env_endswith(buf, ".json"))
                return false;
        buf[strlen(buf) - 5] = '\0';
        b = strrchr(buf, '-');
        if (!b || b == buf)
                return false;
        *b = '\0';
        v = strrchr(buf, '-');
        if (!v || v == buf)
                return false;
        *v = '\0';
        if (b[1] == '\0' || v[1] == '\0')
                return false;
        *name = buf;
        *version = v + 1;
        *build = b + 1;
        return true;
}

typedef struct Record {
        char *name, *version, *build;
} Record;

static void records_free(Record *r, size_t n)
{
        for (size_t i = 0; r && i < n; i++) {
                free(r[i].name);
                free(r[i].version);
                free(r[i].build);
        }
        free(r);
}

static int cmp_record(const void *a, const void *b)
{
        return strcmp(((const Record *)a)->name, ((const Record *)b)->name);
}

static const Record *find_record(const Record *r, size_t n, const char *name)
{
        Record key = { .name = (char *)name };

        if (n == 0)
                return NULL; /* r may be NULL then, which bsearch must not get */
        return bsearch(&key, r, n, sizeof(Record), cmp_record);
}

_printf_(2, 3) static int warn(EnvInfo *e, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = strv_pushv(&e->warnings, &e->n_warnings, fmt, ap);
        va_end(ap);
        return r;
}

/* Names of the records in conda-meta (*.json files), sorted by name. */
static int read_record_names(EnvInfo *e, int metafd, Record **ret, size_t *ret_n)
{
        Record *v = NULL;
        size_t n = 0;
        struct dirent *de;
        DIR *d;
        int r;

        r = env_opendir_dup(metafd, &d);
        if (r < 0)
                return r;
        while ((de = readdir(d))) {
                char buf[256];
                char *name, *version, *build;
                Record *nv;

                if (!env_endswith(de->d_name, ".json"))
                        continue;
                if (strlen(de->d_name) >= sizeof buf ||
                    !split_record_name(strcpy(buf, de->d_name), &name, &version, &build)) {
                        r = warn(e, "%s: record file name is not name-version-build.json, skipped",
                                 de->d_name);
                        if (r < 0)
                                break;
                        continue;
                }
                if (n >= ENV_MAX_PACKAGES) {
                        r = warn(e, "more than %d conda records, the rest ignored", ENV_MAX_PACKAGES);
                        break;
                }
                nv = realloc(v, sizeof(Record) * (n + 1));
                if (!nv) {
                        r = -ENOMEM;
                        break;
                }
                v = nv;
                v[n].name = strdup(name);
                v[n].version = strdup(version);
                v[n].build = strdup(build);
                n++;
                if (!v[n - 1].name || !v[n - 1].version || !v[n - 1].build) {
                        r = -ENOMEM;
                        break;
                }
        }
        closedir(d);
        if (r < 0) {
                records_free(v, n);
                return r;
        }
        if (n > 0)
                qsort(v, n, sizeof(Record), cmp_record);
        *ret = v;
        *ret_n = n;
        return 0;
}

static int set_str(char **dst, const char *s)
{
        char *c = strdup(s);

        if (!c)
                return -ENOMEM;
        free(*dst);
        *dst = c;
        return 0;
}

/* "12.1.105" → "12.1" */
static int set_major_minor(char **dst, const char *version)
{
        const char *dot = strchr(version, '.');
        size_t len = strlen(version);

        if (dot) {
                const char *dot2 = strchr(dot + 1, '.');
                if (dot2)
                        len = (size_t)(dot2 - version);
        }
        free(*dst);
        *dst = strndup(version, len);
        return *dst ? 0 : -ENOMEM;
}

/* "py3.11_cuda12.1_cudnn8.9.2_0" → "12.1"; "+cu121" local version → "12.1". */
static int cuda_from_torch_tag(char **dst, const char *s, bool local_version)
{
        const char *p;
        char buf[16];
        size_t n = 0;

        if (local_version) {
                p = strstr(s, "+cu");
                if (!p)
                        return 0;
                p += 3;
                while (isdigit((unsigned char)p[n]) && n < 4)
                        n++;
                if (n < 2)
                        return 0;
                /* The last digit is the minor version: cu121 → 12.1, cu118 → 11.8. */
                snprintf(buf, sizeof buf, "%.*s.%c", (int)n - 1, p, p[n - 1]);
                return set_str(dst, buf);
        }
        p = strstr(s, "cuda");
        if (!p)
                return 0;
        p += 4;
        while ((isdigit((unsigned char)p[n]) || p[n] == '.') && n < sizeof buf - 1)
                n++;
        if (n == 0 || !isdigit((unsigned char)p[0]))
                return 0;
        snprintf(buf, sizeof buf, "%.*s", (int)n, p);
        return set_str(dst, buf);
}

int env_open_site_packages(int envfd, char **ret_rel, int *ret_fd)
{
        _cleanup_close_ int lib = -1;
        struct dirent *de;
        DIR *d;
        int k, r = -ENOENT;

        if (env_open_dir_beneath(envfd, "lib", &lib) < 0)
                return -ENOENT;
        k = env_opendir_dup(lib, &d);
        if (k < 0)
                return k;
        while ((de = readdir(d))) {
                char rel[300];
                int fd;

                if (strncmp(de->d_name, "python", 6) != 0 || strlen(de->d_name) > 64)
                        continue;
                snprintf(rel, sizeof rel, "%s/site-packages", de->d_name);
                if (env_open_dir_beneath(lib, rel, &fd) < 0)
                        continue;
                *ret_fd = fd;
                if (asprintf(ret_rel, "lib/%s", rel) < 0) {
                        close(fd);
                        r = -ENOMEM;
                        break;
                }
                r = 0;
                break;
        }
        closedir(d);
        return r;
}

static char *normalise_pip_name(const char *s)
{
        char *n = strdup(s);

        if (!n)
                return NULL;
        for (char *c = n; *c; c++) {
                if (*c == '_' || *c == '.')
                        *c = '-';
                else
                        *c = (char)tolower((unsigned char)*c);
        }
        return n;
}

/* Read the first ENV_MAX_METADATA_BYTES of an open regular file: a METADATA /
 * PKG-INFO header is at the top, a long description may follow. */
static int read_head(int fd, char **ret)
{
        char *buf = malloc(ENV_MAX_METADATA_BYTES + 1);
        size_t len = 0;

        if (!buf)
                return -ENOMEM;
        while (len < ENV_MAX_METADATA_BYTES) {
                ssize_t k = read(fd, buf + len, ENV_MAX_METADATA_BYTES - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        free(buf);
                        return negative_errno();
                }
                if (k == 0)
                        break;
                len += (size_t)k;
        }
        buf[len] = '\0';
        *ret = buf;
        return 0;
}

/* Name and Version headers of an RFC 822-style METADATA / PKG-INFO; the
 * headers end at the first empty line (the description follows). */
static void parse_metadata(char *text, char **ret_name, char **ret_version)
{
        char *line = text;

        while (line && *line) {
                char *nl = strchr(line, '\n');
                size_t l;

                if (nl)
                        *nl = '\0';
                l = strlen(line);
                if (l > 0 && line[l - 1] == '\r')
                        line[--l] = '\0';
                if (l == 0)
                        break;
                if (strncmp(line, "Name:", 5) == 0 && !*ret_name)
                        *ret_name = line + 5;
                else if (strncmp(line, "Version:", 8) == 0 && !*ret_version)
                        *ret_version = line + 8;
                line = nl ? nl + 1 : NULL;
        }
        while (*ret_name && isspace((unsigned char)**ret_name))
                (*ret_name)++;
        while (*ret_version && isspace((unsigned char)**ret_version))
                (*ret_version)++;
}

/* From "foo_bar-1.2.dist-info" / "foo-1.2-py3.11.egg-info": name and version. */
static void split_dist_dir(char *buf, char **ret_name, char **ret_version)
{
        char *dash = strchr(buf, '-');
        char *end;

        *ret_name = buf;
        *ret_version = NULL;
        if (!dash) {
                end = strstr(buf, ".dist-info");
                if (!end)
                        end = strstr(buf, ".egg-info");
                if (end)
                        *end = '\0';
                return;
        }
        *dash = '\0';
        *ret_version = dash + 1;
        end = strstr(*ret_version, ".dist-info");
        if (!end)
                end = strstr(*ret_version, ".egg-info");
        if (end)
                *end = '\0';
        end = strchr(*ret_version, '-'); /* egg-info: "1.2-py3.11" */
        if (end)
                *end = '\0';
}

typedef struct PipPackage {
        char *name, *version;
} PipPackage;

static int cmp_pip(const void *a, const void *b)
{
        return strcmp(((const PipPackage *)a)->name, ((const PipPackage *)b)->name);
}

static int cmp_package(const void *a, const void *b)
{
        return strcmp(((const EnvPackage *)a)->name, ((const EnvPackage *)b)->name);
}

/* Read one pip package's metadata: dist-info/METADATA, egg-info/PKG-INFO, or an
 * egg-info file. Falls back to the directory name. */
static int read_pip_package(int spfd, const char *entry, PipPackage *ret)
{
        _cleanup_free_ char *text = NULL, *dirname = strdup(entry);
        _cleanup_close_ int fd = -1;
        char *name = NULL, *version = NULL, *dn = NULL, *dv = NULL;
        char rel[512];
        struct stat st;
        int r;

        if (!dirname)
                return -ENOMEM;
        if (fstatat(spfd, entry, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();
        if (S_ISDIR(st.st_mode))
                snprintf(rel, sizeof rel, "%s/%s", entry,
                         env_endswith(entry, ".dist-info") ? "METADATA" : "PKG-INFO");
        else if (S_ISREG(st.st_mode))
                snprintf(rel, sizeof rel, "%s", entry);
        else
                return -EINVAL;
        r = env_open_file_beneath(spfd, rel, &fd);
        if (r >= 0) {
                r = read_head(fd, &text);
                if (r < 0)
                        return r;
                parse_metadata(text, &name, &version);
        }
        split_dist_dir(dirname, &dn, &dv);
        if (!name || !*name)
                name = dn;
        if (!version || !*version)
                version = dv;
        if (!name || !*name || !version || !*version)
                return -EBADMSG;
        ret->name = normalise_pip_name(name);
        ret->version = strdup(version);
        if (!ret->name || !ret->version) {
                free(ret->name);
                free(ret->version);
                return -ENOMEM;
        }
        return 0;
}

/* pip packages in site-packages that no conda record's files list claims.
 * conda_files: sorted "lib/python3.X/site-packages/<dist-info dir>" strings. */
static int read_pip_packages(EnvInfo *e, int spfd, const char *sp_rel, char **conda_files,
                             size_t n_conda_files, PipPackage **ret, size_t *ret_n)
{
        PipPackage *v = NULL;
        size_t n = 0;
        struct dirent *de;
        DIR *d;
        int r;

        r = env_opendir_dup(spfd, &d);
        if (r < 0)
                return r;
        while ((de = readdir(d))) {
                _cleanup_free_ char *key = NULL;
                PipPackage p = {}, *nv;
                char *kp;
                int k;

                if (!env_endswith(de->d_name, ".dist-info") && !env_endswith(de->d_name, ".egg-info"))
                        continue;
                if (asprintf(&key, "%s/%s", sp_rel, de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                kp = key;
                if (n_conda_files > 0 &&
                    bsearch(&kp, conda_files, n_conda_files, sizeof(char *), env_cmp_strp))
                        continue;
                if (n >= ENV_MAX_PACKAGES) {
                        r = warn(e, "more than %d pip packages, the rest ignored", ENV_MAX_PACKAGES);
                        break;
                }
                k = read_pip_package(spfd, de->d_name, &p);
                if (k == -ENOMEM) {
                        r = k;
                        break;
                }
                if (k < 0) {
                        r = warn(e, "%s: unreadable pip metadata, skipped", de->d_name);
                        if (r < 0)
                                break;
                        continue;
                }
                nv = realloc(v, sizeof(PipPackage) * (n + 1));
                if (!nv) {
                        free(p.name);
                        free(p.version);
                        r = -ENOMEM;
                        break;
                }
                v = nv;
                v[n++] = p;
        }
        closedir(d);
        if (r < 0) {
                for (size_t i = 0; i < n; i++) {
                        free(v[i].name);
                        free(v[i].version);
                }
                free(v);
                return r;
        }
        if (n > 0)
                qsort(v, n, sizeof(PipPackage), cmp_pip);
        *ret = v;
        *ret_n = n;
        return 0;
}

/* The dist-info / egg-info entries a record's files list claims, as
 * "lib/pythonX/site-packages/<entry>". */
static int collect_conda_dist_dirs(json_t *files, char ***v, size_t *n)
{
        size_t i;
        json_t *f;

        json_array_foreach(files, i, f) {
                const char *s = json_string_value(f), *sp, *end;
                _cleanup_free_ char *key = NULL;
                size_t len;

                if (!s || strncmp(s, "lib/python", 10) != 0)
                        continue;
                sp = strstr(s, "/site-packages/");
                if (!sp)
                        continue;
                sp += strlen("/site-packages/");
                end = strchr(sp, '/');
                len = end ? (size_t)(end - s) : strlen(s);
                key = strndup(s, len);
                if (!key)
                        return -ENOMEM;
                if (!env_endswith(key, ".dist-info") && !env_endswith(key, ".egg-info"))
                        continue;
                if (*n > 0 && strcmp((*v)[*n - 1], key) == 0)
                        continue; /* files of one dist-info are listed together */
                if (strv_consume(v, n, TAKE_PTR(key)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* Parse conda-meta/<rec>.json and check it describes what its name says. */
static int load_record(EnvInfo *e, int metafd, const Record *rec, EnvPackage *ret,
                       char ***dist_dirs, size_t *n_dist_dirs)
{
        _cleanup_free_ char *fn = NULL, *text = NULL;
        json_t *j, *files;
        const char *name, *version, *build, *channel;
        size_t len;
        int r;

        if (asprintf(&fn, "%s-%s-%s.json", rec->name, rec->version, rec->build) < 0)
                return -ENOMEM;
        r = env_read_file_beneath(metafd, fn, ENV_MAX_RECORD_BYTES, &text, &len);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return warn(e, "conda-meta/%s: unreadable, skipped", fn) < 0 ? -ENOMEM : 1;
        j = json_loadb(text, len, 0, NULL);
        if (!j || !json_is_object(j)) {
                json_decref(j);
                return warn(e, "conda-meta/%s: not a JSON object, skipped", fn) < 0 ? -ENOMEM : 1;
        }
        name = json_string_value(json_object_get(j, "name"));
        version = json_string_value(json_object_get(j, "version"));
        build = json_string_value(json_object_get(j, "build"));
        if (!name || !version || !build || strcmp(name, rec->name) != 0 ||
            strcmp(version, rec->version) != 0 || strcmp(build, rec->build) != 0) {
                json_decref(j);
                return warn(e, "conda-meta/%s: name/version/build do not match the file name, skipped",
                            fn) < 0
                               ? -ENOMEM
                               : 1;
        }
        channel = json_string_value(json_object_get(j, "channel"));
        *ret = (EnvPackage){
                .name = strdup(name),
                .version = strdup(version),
                .build = strdup(build),
                .channel = channel && *channel ? env_channel_canonical(channel) : NULL,
        };
        files = json_object_get(j, "files");
        r = json_is_array(files) ? collect_conda_dist_dirs(files, dist_dirs, n_dist_dirs) : 0;
        if (channel && *channel && !ret->channel)
                r = -ENOMEM;
        json_decref(j);
        if (r < 0 || !ret->name || !ret->version || !ret->build) {
                package_done(ret);
                return -ENOMEM;
        }
        return 0;
}

/* First "==> 2026-01-05 10:00:00 <==" of the history, as local time. */
static uint64_t history_first_time(int metafd)
{
        _cleanup_close_ int fd = -1;
        char buf[4096];
        ssize_t k;
        const char *p;
        struct tm tm = {};
        time_t t;

        if (env_open_file_beneath(metafd, "history", &fd) < 0)
                return 0;
        k = read(fd, buf, sizeof buf - 1);
        if (k <= 0)
                return 0;
        buf[k] = '\0';
        for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
                const char *end;

                if (strncmp(p, "==> ", 4) != 0)
                        continue;
                end = strptime(p + 4, "%Y-%m-%d %H:%M:%S", &tm);
                if (!end || strncmp(end, " <==", 4) != 0)
                        return 0;
                tm.tm_isdst = -1;
                t = mktime(&tm);
                return t > 0 ? (uint64_t)t * USEC_PER_SEC : 0;
        }
        return 0;
}

static uint64_t timespec_usec(const struct timespec *ts)
{
        return (uint64_t)ts->tv_sec * USEC_PER_SEC + (uint64_t)ts->tv_nsec / 1000;
}

/* bin/python is usually a symlink chain inside bin/ (python → python3.11);
 * follow it there only, a few hops, never out of bin/. */
static uint64_t python_atime(int envfd)
{
        _cleanup_close_ int bin = -1;
        char name[256] = "python";

        if (env_open_dir_beneath(envfd, "bin", &bin) < 0)
                return 0;
        for (int hop = 0; hop < 8; hop++) {
                struct stat st;
                char target[256];
                ssize_t k;

                if (fstatat(bin, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return 0;
                if (S_ISREG(st.st_mode))
                        return timespec_usec(&st.st_atim);
                if (!S_ISLNK(st.st_mode))
                        return 0;
                k = readlinkat(bin, name, target, sizeof target - 1);
                if (k <= 0)
                        return 0;
                target[k] = '\0';
                if (strchr(target, '/') || strcmp(target, ".") == 0 || strcmp(target, "..") == 0)
                        return 0;
                memcpy(name, target, (size_t)k + 1);
        }
        return 0;
}

/* Last use is the newer of the two records: the activate hook sees only
 * `conda activate`, while a Jupyter kernel (`gpukeeper kernel install`) or
 * `env/bin/python x.py` runs python without activating, which only the atime
 * shows; trusting the hook alone would prune an env used daily that way.
 * The hook writes whole seconds, so an atime within the same second counts
 * as the hook's (the activation ran python, or came right after). */
static void load_last_used(EnvInfo *e, int envfd)
{
        _cleanup_free_ char *text = NULL;
        uint64_t secs, hook = 0, at;

        if (env_read_file_beneath(envfd, ENV_LAST_ACTIVATED_FILE, 64, &text, NULL) >= 0) {
                text[strcspn(text, " \t\r\n")] = '\0';
                if (parse_uint64(text, &secs) >= 0 && secs > 0 && secs < UINT64_MAX / USEC_PER_SEC)
                        hook = secs * USEC_PER_SEC;
        }
        at = python_atime(envfd);
        if (hook > 0 && at / USEC_PER_SEC <= hook / USEC_PER_SEC) {
                e->last_used_usec = hook;
                e->last_used_source = ENV_LAST_USED_HOOK;
        } else if (at > 0) {
                e->last_used_usec = at;
                e->last_used_source = ENV_LAST_USED_ATIME;
        }
}

static const char *error_text(int r)
{
        switch (r) {
        case -ELOOP:
                return "a symbolic link on the path, not followed";
        case -EPERM:
                return "outside the home and not owned by the user, not read";
        case -ENOENT:
                return "does not exist (any more)";
        case -ENOTDIR:
                return "not a directory";
        case -EINVAL:
                return "not an absolute, plain path";
        default:
                return NULL;
        }
}

static int set_error(EnvInfo *e, const char *what, int r)
{
        const char *t = error_text(r);

        free(e->error);
        if (t)
                return (asprintf(&e->error, "%s%s", what, t) < 0) ? -ENOMEM : 0;
        return (asprintf(&e->error, "%s%s", what, strerror(-r)) < 0) ? -ENOMEM : 0;
}

/* Versions from the record names (no JSON needed), pip torch fallback. */
static int fill_versions(EnvInfo *e, int envfd, const Record *recs, size_t n)
{
        static const char *const cuda_names[] = { "cuda-version", "cuda-runtime", "cudatoolkit",
                                                  "cuda-cudart" };
        const Record *r;
        int k;

        r = find_record(recs, n, "python");
        if (r && (k = set_str(&e->python_version, r->version)) < 0)
                return k;
        r = find_record(recs, n, "pytorch");
        if (!r)
                r = find_record(recs, n, "torch");
        if (r && (k = set_str(&e->torch_version, r->version)) < 0)
                return k;
        for (size_t i = 0; i < ELEMENTSOF(cuda_names) && !e->cuda_version; i++) {
                r = find_record(recs, n, cuda_names[i]);
                if (r && (k = set_major_minor(&e->cuda_version, r->version)) < 0)
                        return k;
        }
        r = find_record(recs, n, "pytorch");
        if (!e->cuda_version && r && (k = cuda_from_torch_tag(&e->cuda_version, r->build, false)) < 0)
                return k;

        if (!e->torch_version || !e->cuda_version) {
                _cleanup_free_ char *sp_rel = NULL;
                _cleanup_close_ int spfd = -1;
                struct dirent *de;
                DIR *d;

                if (env_open_site_packages(envfd, &sp_rel, &spfd) < 0)
                        return 0;
                if (env_opendir_dup(spfd, &d) < 0)
                        return 0;
                k = 0;
                while (k >= 0 && (de = readdir(d))) {
                        char buf[256], *dn, *dv;

                        if (!env_endswith(de->d_name, ".dist-info") || strlen(de->d_name) >= sizeof buf)
                                continue;
                        split_dist_dir(strcpy(buf, de->d_name), &dn, &dv);
                        if (!dv)
                                continue;
                        if (!e->torch_version && strcmp(dn, "torch") == 0)
                                k = set_str(&e->torch_version, dv);
                        else if (!e->cuda_version && strncmp(dn, "nvidia_cuda_runtime_cu", 22) == 0)
                                k = set_major_minor(&e->cuda_version, dv);
                }
                closedir(d);
                if (k < 0)
                        return k;
                if (!e->cuda_version && e->torch_version)
                        return cuda_from_torch_tag(&e->cuda_version, e->torch_version, true);
        }
        return 0;
}

static int load_packages(EnvInfo *e, int envfd, int metafd, const Record *recs, size_t n)
{
        _cleanup_free_ char *sp_rel = NULL, *history = NULL;
        _cleanup_close_ int spfd = -1;
        char **dist_dirs = NULL, **specs = NULL;
        size_t n_dist_dirs = 0, n_specs = 0, n_pip = 0, hlen = 0;
        PipPackage *pip = NULL;
        int r = 0;

        e->packages = calloc(n + 1, sizeof(EnvPackage));
        if (!e->packages)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = load_record(e, metafd, &recs[i], &e->packages[e->n_conda_packages],
                                &dist_dirs, &n_dist_dirs);
                if (r < 0)
                        goto finish;
                if (r == 0)
                        e->n_conda_packages++;
        }
        e->n_packages = e->n_conda_packages;
        if (n_dist_dirs > 0)
                qsort(dist_dirs, n_dist_dirs, sizeof(char *), env_cmp_strp);

        if (env_open_site_packages(envfd, &sp_rel, &spfd) >= 0) {
                r = read_pip_packages(e, spfd, sp_rel, dist_dirs, n_dist_dirs, &pip, &n_pip);
                if (r < 0)
                        goto finish;
                if (n_pip > 0) {
                        EnvPackage *np = realloc(e->packages,
                                                 sizeof(EnvPackage) * (e->n_packages + n_pip + 1));
                        if (!np) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        e->packages = np;
                        for (size_t i = 0; i < n_pip; i++) {
                                e->packages[e->n_packages++] = (EnvPackage){
                                        .name = TAKE_PTR(pip[i].name),
                                        .version = TAKE_PTR(pip[i].version),
                                        .pip = true,
                                };
                        }
                }
        }

        r = env_read_file_beneath(metafd, "history", ENV_MAX_HISTORY_BYTES, &history, &hlen);
        if (r == -ENOMEM)
                goto finish;
        if (r < 0) {
                r = warn(e, "conda-meta/history: %s", strerror(-r));
                goto finish;
        }
        r = env_history_specs(history, hlen, &specs, &n_specs, &e->warnings, &e->n_warnings);
        if (r < 0)
                goto finish;
        r = 0;
        /* Keep only specs whose package is still installed (by conda). */
        for (size_t i = 0; i < n_specs; i++) {
                _cleanup_free_ char *nm = env_spec_name(specs[i]);
                EnvPackage key;

                if (!nm) {
                        r = -ENOMEM;
                        goto finish;
                }
                /* The conda records come first in packages[], sorted by name. */
                key = (EnvPackage){ .name = nm };
                if (e->n_conda_packages == 0 ||
                    !bsearch(&key, e->packages, e->n_conda_packages, sizeof(EnvPackage), cmp_package))
                        continue;
                r = strv_push(&e->history_specs, &e->n_history_specs, specs[i]);
                if (r < 0)
                        goto finish;
        }
finish:
        for (size_t i = 0; i < n_pip; i++) {
                free(pip[i].name);
                free(pip[i].version);
        }
        free(pip);
        strv_free_n(dist_dirs, n_dist_dirs);
        strv_free_n(specs, n_specs);
        return r;
}

/* A base env's size leaves out the root's other envs (listed on their own)
 * and its package cache (`env clean-cache` deals with that). Returns 0, 1
 * when the walk stopped early (a lower bound, with a warning), or -ENOMEM. */
static int size_from_fd(EnvInfo *e, int envfd)
{
        static const char *const conda_root_parts[] = { "envs", "pkgs", NULL };
        int r = env_disk_usage(envfd, e->is_base ? conda_root_parts : NULL, &e->size_bytes);

        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return warn(e, "size: %s, the value is a lower bound", strerror(-r)) < 0 ? -ENOMEM
                                                                                         : 1;
        return 0;
}

int env_info_load(const EnvUser *user, int homefd, const char *path, const char *name,
                  bool is_base, char *const *condarc_channels, size_t n_condarc_channels,
                  unsigned flags, EnvInfo **ret)
{
        _cleanup_(env_info_freep) EnvInfo *e = calloc(1, sizeof(EnvInfo));
        _cleanup_close_ int envfd = -1, metafd = -1;
        Record *recs = NULL;
        size_t n_recs = 0;
        struct stat st;
        char owner[64];
        int r;

        if (!e)
                return -ENOMEM;
        e->path = strdup(path);
        if (!e->path)
                return -ENOMEM;
        if (name)
                e->name = strdup(name);
        else if (is_base)
                e->name = strdup("base");
        else {
                const char *slash = strrchr(path, '/');
                e->name = strdup(slash && slash[1] ? slash + 1 : path);
        }
        if (!e->name)
                return -ENOMEM;
        e->is_base = is_base;
        e->owner_uid = (uid_t)-1;
        r = strv_copy(condarc_channels, n_condarc_channels, &e->condarc_channels,
                          &e->n_condarc_channels);
        if (r < 0)
                return r;

        r = env_open_user_dir(user, homefd, path, flags, &envfd);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                if (set_error(e, "", r) < 0)
                        return -ENOMEM;
                *ret = TAKE_PTR(e);
                return 0;
        }
        if (fstat(envfd, &st) < 0)
                return negative_errno();
        e->dev = st.st_dev;
        e->ino = st.st_ino;
        e->owner_uid = st.st_uid;
        if (st.st_uid == user->uid)
                e->owner_name = strdup(user->name);
        else if (user_name_from_uid(st.st_uid, owner, sizeof owner) >= 0)
                e->owner_name = strdup(owner);

        r = env_open_dir_beneath(envfd, "conda-meta", &metafd);
        if (r >= 0 && (fstatat(metafd, "history", &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                       !S_ISREG(st.st_mode)))
                r = -ENOENT;
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                if (set_error(e, "not a conda environment (conda-meta/history): ", r) < 0)
                        return -ENOMEM;
                *ret = TAKE_PTR(e);
                return 0;
        }

        r = read_record_names(e, metafd, &recs, &n_recs);
        if (r < 0)
                return r;
        r = fill_versions(e, envfd, recs, n_recs);
        if (r >= 0) {
                e->n_packages = n_recs;
                if (flags & ENV_LOAD_PACKAGES)
                        r = load_packages(e, envfd, metafd, recs, n_recs);
        }
        records_free(recs, n_recs);
        if (r < 0)
                return r;

        e->created_usec = history_first_time(metafd);
        if (e->created_usec == 0 && fstat(metafd, &st) >= 0)
                e->created_usec = timespec_usec(&st.st_mtim);
        load_last_used(e, envfd);

        if (flags & ENV_LOAD_SIZE) {
                r = size_from_fd(e, envfd);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(e);
        return 0;
}

/* What changes when packages come or go: conda rewrites conda-meta and the
 * history, pip adds dist-info dirs to site-packages, both touch bin/. The
 * ctimes are in it too: nobody can set them back (utime() moves them), so a
 * prefix recreated on a recycled inode with copied mtimes still differs.
 * *ret_newest_usec gets the newest of the mtimes and ctimes. */
static char *change_stamp(int envfd, uint64_t *ret_newest_usec)
{
        static const char *const dirs[] = { ".", "conda-meta", "conda-meta/history", "bin" };
        _cleanup_free_ char *sp_rel = NULL;
        _cleanup_close_ int spfd = -1;
        char buf[512];
        size_t len = 0;
        uint64_t newest = 0;
        struct stat st;

        for (size_t i = 0; i <= ELEMENTSOF(dirs); i++) {
                int k;

                if (i < ELEMENTSOF(dirs))
                        k = fstatat(envfd, dirs[i], &st, AT_SYMLINK_NOFOLLOW);
                else
                        k = env_open_site_packages(envfd, &sp_rel, &spfd) >= 0 ? fstat(spfd, &st) : -1;
                if (k < 0)
                        memset(&st, 0, sizeof st);
                newest = MAX(newest, MAX(timespec_usec(&st.st_mtim), timespec_usec(&st.st_ctim)));
                if (st.st_mtim.tv_sec < 0 || st.st_ctim.tv_sec < 0)
                        newest = UINT64_MAX; /* before 1970: never settled */
                len += (size_t)snprintf(buf + len, sizeof buf - len, "%llx.%lx.%llx.%lx.%llx-",
                                        (unsigned long long)st.st_mtim.tv_sec,
                                        (unsigned long)st.st_mtim.tv_nsec,
                                        (unsigned long long)st.st_ctim.tv_sec,
                                        (unsigned long)st.st_ctim.tv_nsec,
                                        (unsigned long long)st.st_size);
                if (len >= sizeof buf)
                        return NULL;
        }
        *ret_newest_usec = newest;
        return strdup(buf);
}

int env_info_load_size(const EnvUser *user, int homefd, EnvInfo *e, unsigned flags,
                       const char *stamp_cached, uint64_t size_cached, char **ret_stamp,
                       uint64_t *ret_newest_usec)
{
        _cleanup_close_ int envfd = -1;
        struct stat st;
        int r;

        if (e->error)
                return 0;
        r = env_open_user_dir(user, homefd, e->path, flags, &envfd);
        if (r >= 0 && fstat(envfd, &st) < 0)
                r = negative_errno();
        if (r >= 0 && (st.st_dev != e->dev || st.st_ino != e->ino))
                r = -ESTALE;
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return warn(e, "size: %s", strerror(-r));
        if (ret_stamp) {
                *ret_stamp = change_stamp(envfd, ret_newest_usec);
                if (!*ret_stamp)
                        return -ENOMEM;
                if (stamp_cached && strcmp(stamp_cached, *ret_stamp) == 0) {
                        e->size_bytes = size_cached;
                        return 0;
                }
        }
        r = size_from_fd(e, envfd);
        if (r > 0 && ret_stamp) {
                /* A lower bound is not worth remembering as the size. */
                free(*ret_stamp);
                *ret_stamp = NULL;
        }
        return r < 0 ? r : 0;
}
