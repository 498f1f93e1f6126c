/* Per-user limits through cgroup files (v1 and v2); see limits-cgroupfs.h. */
#include "limits/limits-cgroupfs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/macro.h"

static const char *const controller[_POLICY_LIMIT_MAX] = {
        [POLICY_LIMIT_CPU] = "cpu",
        [POLICY_LIMIT_MEMORY] = "memory",
        [POLICY_LIMIT_TASKS] = "pids",
};

/* Whether the comma- or space-separated `list` holds `word`. */
static bool has_word(const char *list, const char *word, char sep)
{
        size_t n = strlen(word);

        for (const char *p = list; p && *p;) {
                const char *end = strchr(p, sep);
                size_t len = end ? (size_t)(end - p) : strcspn(p, "\n");

                if (len == n && strncmp(p, word, n) == 0)
                        return true;
                p = end ? end + 1 : NULL;
        }
        return false;
}

static int read_small(const char *path, char *buf, size_t len)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        ssize_t n;

        if (fd < 0)
                return negative_errno();
        n = read(fd, buf, len - 1);
        if (n < 0)
                return negative_errno();
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        return 0;
}

void limits_cgroupfs_free(LimitsCgroupfs *fs)
{
        if (!fs)
                return;
        free(fs->parent);
        for (int r = 0; r < _POLICY_LIMIT_MAX; r++)
                free(fs->mount[r]);
        free(fs);
}

static void set_mount(LimitsCgroupfs *fs, int r, const char *mp, bool v2, int *err)
{
        char *copy = strdup(mp);

        if (!copy) {
                *err = -ENOMEM;
                return;
        }
        free(fs->mount[r]);
        fs->mount[r] = copy;
        fs->v2[r] = v2;
}

int limits_cgroupfs_discover(const char *mountinfo, const char *parent, LimitsCgroupfs **ret,
                             char *why, size_t why_len)
{
        LimitsCgroupfs *fs = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        char *line = NULL;
        size_t n = 0;
        int err = 0;

        f = fopen(mountinfo, "re");
        if (!f) {
                int r = negative_errno();

                snprintf(why, why_len, "cannot read %s: %s", mountinfo, strerror(-r));
                return r;
        }
        fs = calloc(1, sizeof *fs);
        if (!fs || !(fs->parent = strdup(parent))) {
                limits_cgroupfs_free(fs);
                return -ENOMEM;
        }
        while (getline(&line, &n, f) > 0 && err == 0) {
                char mp[PATH_MAX], fstype[32], opts[512], file[PATH_MAX + 32], ctl[512];
                const char *sep = strstr(line, " - ");

                /* 36 35 98:0 /root /mnt rw,noatime master:1 - cgroup cgroup rw,memory */
                if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1 ||
                    sscanf(sep + 3, "%31s %*s %511s", fstype, opts) != 2)
                        continue;
                if (strchr(mp, '\\'))
                        continue; /* an escaped space: not a cgroup mount we make paths in */
                if (strcmp(fstype, "cgroup2") == 0) {
                        snprintf(file, sizeof file, "%s/cgroup.controllers", mp);
                        if (read_small(file, ctl, sizeof ctl) < 0)
                                continue;
                        for (int r = 0; r < _POLICY_LIMIT_MAX; r++)
                                if (has_word(ctl, controller[r], ' '))
                                        set_mount(fs, r, mp, true, &err);
                } else if (strcmp(fstype, "cgroup") == 0) {
                        for (int r = 0; r < _POLICY_LIMIT_MAX; r++)
                                if (has_word(opts, controller[r], ',') && !fs->v2[r])
                                        set_mount(fs, r, mp, false, &err);
                }
        }
        free(line);
        if (err < 0) {
                limits_cgroupfs_free(fs);
                return err;
        }
        *ret = fs;
        return 0;
}

void limits_cgroupfs_describe(const LimitsCgroupfs *fs, char *buf, size_t len)
{
        size_t used = 0;

        buf[0] = '\0';
        for (int v2 = 1; v2 >= 0; v2--) {
                bool first = true;

                for (int r = 0; r < _POLICY_LIMIT_MAX; r++) {
                        if (!fs->mount[r] || fs->v2[r] != v2)
                                continue;
                        used += (size_t)snprintf(buf + used, used < len ? len - used : 0,
                                                 "%s%s%s", first ? (used ? "; " : "") : ",",
                                                 first ? (v2 ? "v2 " : "v1 ") : "",
                                                 controller[r]);
                        first = false;
                }
        }
        if (!buf[0])
                snprintf(buf, len, "no cpu, memory or pids controller mounted");
}

int limits_cgroupfs_user_dir(const LimitsCgroupfs *fs, PolicyLimitResource r, uid_t uid,
                             char *buf, size_t len)
{
        int n;

        if (!fs->mount[r])
                return -ENODEV;
        n = snprintf(buf, len, "%s/%s/user-%u.slice", fs->mount[r], fs->parent, (unsigned)uid);
        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int write_file(const char *dir, const char *name, const char *value, char *why,
                      size_t why_len)
{
        char path[PATH_MAX];
        _cleanup_close_ int fd = -1;
        size_t n = strlen(value);
        int r;

        r = snprintf(path, sizeof path, "%s/%s", dir, name);
        if (r < 0 || (size_t)r >= sizeof path)
                return -ENAMETOOLONG;
        /* O_TRUNC as a shell's "echo > file": cgroup files ignore it */
        fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 || write(fd, value, n) != (ssize_t)n) {
                r = negative_errno();
                snprintf(why, why_len, "cannot write '%s' to %s: %s", value, path, strerror(-r));
                return r;
        }
        return 0;
}

/* mkdir MOUNT/PARENT/... and MOUNT/PARENT/user-UID.slice, each component
 * where missing; on v2 every directory of ours above the user's enables the
 * controller for its children (the hierarchy root's subtree_control is only
 * read: if it lacks the controller, the write below it fails and says so). */
static int make_dirs(const LimitsCgroupfs *fs, int res, uid_t uid, char *dir, size_t len,
                     char *why, size_t why_len)
{
        char path[PATH_MAX], plus[16];
        size_t mlen = strlen(fs->mount[res]);
        int r;

        r = limits_cgroupfs_user_dir(fs, res, uid, dir, len);
        if (r < 0)
                return r;
        snprintf(path, sizeof path, "%s", dir);
        snprintf(plus, sizeof plus, "+%s", controller[res]);
        /* every '/' after the mount point ends a component to make */
        for (char *p = path + mlen + 1;; p++) {
                bool last = *p == '\0';

                if (*p != '/' && !last)
                        continue;
                *p = '\0';
                if (mkdir(path, 0755) < 0 && errno != EEXIST) {
                        r = negative_errno();
                        snprintf(why, why_len, "cannot create %s: %s", path, strerror(-r));
                        return r;
                }
                if (!last && fs->v2[res]) {
                        r = write_file(path, "cgroup.subtree_control", plus, why, why_len);
                        if (r < 0)
                                return r;
                }
                if (last)
                        return 0;
                *p = '/';
        }
}

static void value_string(int res, bool v2, uint64_t v, char *buf, size_t len)
{
        if (v == POLICY_LIMIT_INFINITY) {
                snprintf(buf, len, "%s", v2 || res == POLICY_LIMIT_TASKS ? "max" : "-1");
                return;
        }
        if (res == POLICY_LIMIT_CPU) {
                /* percent of one CPU: QUOTA per PERIOD microseconds */
                uint64_t quota = v * (LIMITS_CGROUPFS_CPU_PERIOD_USEC / 100);

                if (v2)
                        snprintf(buf, len, "%" PRIu64 " %d", quota,
                                 LIMITS_CGROUPFS_CPU_PERIOD_USEC);
                else
                        snprintf(buf, len, "%" PRIu64, quota);
                return;
        }
        snprintf(buf, len, "%" PRIu64, v);
}

static int write_values(const LimitsCgroupfs *fs, int res, const char *dir, uint64_t v,
                        bool set_period, char *why, size_t why_len)
{
        char value[64], period[16];
        int r;

        value_string(res, fs->v2[res], v, value, sizeof value);
        switch (res) {
        case POLICY_LIMIT_CPU:
                if (fs->v2[res])
                        return write_file(dir, "cpu.max", value, why, why_len);
                /* The period is the kernel's default too; set with the
                 * cgroup (and on any failure), not on every lease. */
                if (set_period) {
                        snprintf(period, sizeof period, "%d", LIMITS_CGROUPFS_CPU_PERIOD_USEC);
                        r = write_file(dir, "cpu.cfs_period_us", period, why, why_len);
                        if (r < 0)
                                return r;
                }
                return write_file(dir, "cpu.cfs_quota_us", value, why, why_len);
        case POLICY_LIMIT_MEMORY:
                return write_file(dir, fs->v2[res] ? "memory.max" : "memory.limit_in_bytes",
                                  value, why, why_len);
        default:
                return write_file(dir, "pids.max", value, why, why_len);
        }
}

static int apply_one(const LimitsCgroupfs *fs, int res, uid_t uid, uint64_t v, char *why,
                     size_t why_len)
{
        char dir[PATH_MAX];
        int r;

        if (!fs->mount[res]) {
                snprintf(why, why_len, "no cgroup hierarchy has the %s controller mounted",
                         controller[res]);
                return -ENODEV;
        }
        r = limits_cgroupfs_user_dir(fs, res, uid, dir, sizeof dir);
        if (r < 0)
                return r;
        /* On the lease path the cgroup usually exists: write at once, and
         * only when a file is missing (no cgroup yet, or on v2 a controller
         * not enabled for it) make the directories and enable the
         * controllers, then write again. */
        r = write_values(fs, res, dir, v, false, why, why_len);
        if (r == 0)
                return 0;
        if (r == -ENOENT) {
                r = make_dirs(fs, res, uid, dir, sizeof dir, why, why_len);
                if (r < 0)
                        return r;
        }
        return write_values(fs, res, dir, v, true, why, why_len);
}

int limits_cgroupfs_apply(const LimitsCgroupfs *fs, uid_t uid, const PolicyUserLimits *limits,
                          char *why, size_t why_len)
{
        size_t used = 0;
        int first = 0;

        why[0] = '\0';
        for (int res = 0; res < _POLICY_LIMIT_MAX; res++) {
                char one[512];
                int r = apply_one(fs, res, uid, limits->limit[res].value, one, sizeof one);

                if (r == 0)
                        continue;
                if (first == 0)
                        first = r;
                used += (size_t)snprintf(why + used, used < why_len ? why_len - used : 0,
                                         "%s%s: %s", used ? "; " : "",
                                         policy_limit_resource_to_string(res), one);
        }
        return first;
}

int limits_cgroupfs_attach(const LimitsCgroupfs *fs, uid_t uid, pid_t pid, bool v2_too,
                           char *why, size_t why_len)
{
        char pidbuf[32];

        snprintf(pidbuf, sizeof pidbuf, "%d", (int)pid);
        for (int res = 0; res < _POLICY_LIMIT_MAX; res++) {
                char dir[PATH_MAX];
                bool done = false;
                int r;

                if (!fs->mount[res] || (fs->v2[res] && !v2_too))
                        continue;
                /* cpu and cpuacct, or all of v2, share one directory: move once */
                for (int o = 0; o < res; o++)
                        done |= fs->mount[o] && strcmp(fs->mount[o], fs->mount[res]) == 0 &&
                                (!fs->v2[o] || v2_too);
                if (done)
                        continue;
                r = make_dirs(fs, res, uid, dir, sizeof dir, why, why_len);
                if (r < 0)
                        return r;
                r = write_file(dir, "cgroup.procs", pidbuf, why, why_len);
                if (r < 0)
                        return r;
        }
        return 0;
}
