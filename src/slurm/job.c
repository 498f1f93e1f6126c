/* What Slurm tells us about jobs: the prolog's environment (job id, GPU
 * index lists) and squeue's list of jobs it still knows; and the
 * dcgm-exporter HPC job-mapping directory the daemon keeps (one file per
 * device, one job id a line, so its series get an `hpc_job` label). */
#include "slurm/slurm.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/parse.h"

int slurm_parse_job_id(const char *text, uint64_t *ret)
{
        uint64_t v;

        if (!text || !isdigit((unsigned char)text[0]) || parse_uint64(text, &v) < 0 || v == 0 ||
            v > SLURM_JOB_ID_MAX)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_index(const char **p, unsigned *ret)
{
        char *end;
        unsigned long v;

        if (!isdigit((unsigned char)**p))
                return -EINVAL;
        errno = 0;
        v = strtoul(*p, &end, 10);
        if (errno || v >= SLURM_MAX_DEVICES)
                return -EINVAL;
        *p = end;
        *ret = (unsigned)v;
        return 0;
}

int slurm_parse_index_list(const char *text, unsigned *ret, size_t max)
{
        const char *p = text;
        size_t n = 0;

        if (!text)
                return -EINVAL;
        while (*p) {
                unsigned a, b;
                int r = parse_index(&p, &a);

                if (r < 0)
                        return r;
                b = a;
                if (*p == '-') {
                        p++;
                        r = parse_index(&p, &b);
                        if (r < 0 || b < a)
                                return -EINVAL;
                }
                for (unsigned v = a; v <= b; v++) {
                        for (size_t i = 0; i < n; i++)
                                if (ret[i] == v)
                                        return -EINVAL;
                        if (n >= max)
                                return -E2BIG;
                        ret[n++] = v;
                }
                if (*p == ',')
                        p++;
                else if (*p)
                        return -EINVAL;
        }
        return (int)n;
}

int slurm_parse_squeue(const char *text, uint64_t *ret, size_t max)
{
        size_t n = 0;

        for (const char *line = text; line && *line;) {
                const char *eol = strchr(line, '\n');
                size_t len = eol ? (size_t)(eol - line) : strlen(line);
                char buf[32];

                while (len && isspace((unsigned char)line[len - 1]))
                        len--;
                while (len && isspace((unsigned char)*line)) {
                        line++;
                        len--;
                }
                if (len) {
                        if (len >= sizeof buf)
                                return -EINVAL;
                        memcpy(buf, line, len);
                        buf[len] = '\0';
                        if (n >= max)
                                return -E2BIG;
                        if (slurm_parse_job_id(buf, &ret[n]) < 0)
                                return -EINVAL;
                        n++;
                }
                line = eol ? eol + 1 : NULL;
        }
        return (int)n;
}

uint64_t slurm_job_of_process(const char *cgroup, const char *environ_data, size_t environ_len)
{
        static const char key[] = "SLURM_JOB_ID=";
        uint64_t id;

        for (const char *p = cgroup; p && (p = strstr(p, "/job_"));) {
                char buf[24];
                size_t n = strspn(p + 5, "0123456789");

                if (n > 0 && n < sizeof buf && (p[5 + n] == '/' || p[5 + n] == '\n' ||
                                                p[5 + n] == '\0')) {
                        memcpy(buf, p + 5, n);
                        buf[n] = '\0';
                        if (slurm_parse_job_id(buf, &id) == 0)
                                return id;
                }
                p += 5;
        }
        for (size_t o = 0; environ_data && o < environ_len;) {
                const char *v = environ_data + o;
                size_t len = strnlen(v, environ_len - o);

                if (len > sizeof key - 1 && len < sizeof key + 20 &&
                    memcmp(v, key, sizeof key - 1) == 0) {
                        char buf[24];

                        memcpy(buf, v + sizeof key - 1, len - (sizeof key - 1));
                        buf[len - (sizeof key - 1)] = '\0';
                        return slurm_parse_job_id(buf, &id) == 0 ? id : 0;
                }
                o += len + 1;
        }
        return 0;
}

/* Whether `name` is one of ours: "<digits>" or "<digits>.<digits>". */
static bool jobmap_name(const char *name)
{
        const char *p = name;
        bool dot = false;

        if (!isdigit((unsigned char)*p))
                return false;
        for (; *p; p++) {
                if (*p == '.' && !dot && isdigit((unsigned char)p[1]))
                        dot = true;
                else if (!isdigit((unsigned char)*p))
                        return false;
        }
        return true;
}

static int render_entry(const SlurmJobmapEntry *e, char *buf, size_t len)
{
        size_t o = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < e->n_ids; i++) {
                int k = snprintf(buf + o, len - o, "%s\n", e->ids[i]);

                if (k < 0 || (size_t)k >= len - o)
                        return -E2BIG;
                o += (size_t)k;
        }
        return (int)o;
}

static bool same_content(int dirfd, const char *name, const char *want, size_t want_len)
{
        char buf[SLURM_JOBMAP_MAX_IDS * 24 + 2];
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        ssize_t got;

        if (fd < 0)
                return false;
        got = read(fd, buf, sizeof buf);
        return got >= 0 && (size_t)got == want_len && memcmp(buf, want, want_len) == 0;
}

static int write_entry(int dirfd, const SlurmJobmapEntry *e)
{
        char buf[SLURM_JOBMAP_MAX_IDS * 24 + 2], tmp[64];
        _cleanup_close_ int fd = -EBADF;
        int len = render_entry(e, buf, sizeof buf);

        if (len < 0)
                return len;
        if (same_content(dirfd, e->name, buf, (size_t)len))
                return 0;
        snprintf(tmp, sizeof tmp, ".%s.tmp", e->name);
        (void)unlinkat(dirfd, tmp, 0);
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        if (write(fd, buf, (size_t)len) != len) {
                int r = errno ? -errno : -EIO;

                (void)unlinkat(dirfd, tmp, 0);
                return r;
        }
        if (renameat(dirfd, tmp, dirfd, e->name) < 0) {
                int r = -errno;

                (void)unlinkat(dirfd, tmp, 0);
                return r;
        }
        return 0;
}

int slurm_jobmap_write(int dirfd, const SlurmJobmapEntry *entries, size_t n)
{
        DIR *dir;
        struct dirent *de;
        int dupfd, first = 0;

        for (size_t i = 0; i < n; i++) {
                int r = write_entry(dirfd, &entries[i]);

                if (r < 0 && first == 0)
                        first = r;
        }
        dupfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (dupfd < 0)
                return first ? first : -errno;
        dir = fdopendir(dupfd);
        if (!dir) {
                int r = -errno;

                close(dupfd);
                return first ? first : r;
        }
        rewinddir(dir);
        while ((de = readdir(dir))) {
                bool keep = false;

                if (!jobmap_name(de->d_name))
                        continue;
                for (size_t i = 0; i < n && !keep; i++)
                        keep = strcmp(entries[i].name, de->d_name) == 0;
                if (!keep && unlinkat(dirfd, de->d_name, 0) < 0 && errno != ENOENT && first == 0)
                        first = -errno;
        }
        closedir(dir);
        return first;
}
