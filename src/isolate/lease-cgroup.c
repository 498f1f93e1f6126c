/* Per-lease cgroups of `gpukeeper run`; see lease-cgroup.h. */
#include "isolate/lease-cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "basic/macro.h"
#include "isolate/bpf.h"
#include "isolate/fence.h"

IsolateCgroupBackend isolate_cgroup_backend(void)
{
        return sd_booted() > 0 ? ISOLATE_CGROUP_SYSTEMD : ISOLATE_CGROUP_CGROUPFS;
}

/* Load the lease's program and attach it to the cgroup directory `path`. */
static int attach_lease_program(const char *path, int devs_fd, const PolicyFenceDev *allowed,
                                size_t n, char *why, size_t why_len)
{
        _cleanup_free_ IsolateProg *prog = NULL;
        _cleanup_close_ int cg = -1, fd = -1;
        int r;

        prog = malloc(sizeof *prog);
        if (!prog)
                return -ENOMEM;
        r = fence_build_lease(prog, devs_fd, allowed, n);
        if (r < 0) {
                snprintf(why, why_len, "cannot build the lease's device program: %s",
                         strerror(-r));
                return r;
        }
        fd = isolate_bpf_prog_load_device(prog->insns, prog->n, "gk_lease", NULL, 0);
        if (fd < 0) {
                snprintf(why, why_len, "cannot load the lease's device program: %s",
                         strerror(-fd));
                return fd;
        }
        cg = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cg < 0) {
                r = negative_errno();
                snprintf(why, why_len, "cannot open %s: %s", path, strerror(-r));
                return r;
        }
        r = isolate_bpf_attach_device(cg, fd);
        if (r < 0 && r != -EEXIST) {
                snprintf(why, why_len, "cannot attach the lease's device program to %s: %s",
                         path, strerror(-r));
                return r;
        }
        /* The attachment holds the program now; our fd may go. */
        return 0;
}

static int move_pid(const char *path, pid_t pid, char *why, size_t why_len)
{
        char procs[PATH_MAX], buf[32];
        _cleanup_close_ int fd = -1;
        int len, r;

        len = snprintf(procs, sizeof procs, "%s/cgroup.procs", path);
        if (len < 0 || (size_t)len >= sizeof procs)
                return -ENAMETOOLONG;
        fd = open(procs, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                r = negative_errno();
                snprintf(why, why_len, "cannot open %s: %s", procs, strerror(-r));
                return r;
        }
        len = snprintf(buf, sizeof buf, "%d\n", (int)pid);
        if (write(fd, buf, (size_t)len) != len) {
                r = negative_errno();
                snprintf(why, why_len, "cannot move process %d into %s: %s", (int)pid, path,
                         strerror(-r));
                return r;
        }
        return 0;
}

static int lease_dir(const char *parent, int64_t id, char *buf, size_t len)
{
        int n = snprintf(buf, len, "%s/lease-%" PRId64, parent, id);

        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int create_cgroupfs(const char *parent, int64_t id, pid_t pid, int devs_fd,
                           const PolicyFenceDev *allowed, size_t n, char **ret_path, char *why,
                           size_t why_len)
{
        char path[PATH_MAX];
        int r;

        if (mkdir(parent, 0755) < 0 && errno != EEXIST) {
                r = negative_errno();
                snprintf(why, why_len, "cannot create %s: %s", parent, strerror(-r));
                return r;
        }
        if ((r = lease_dir(parent, id, path, sizeof path)) < 0)
                return r;
        if (mkdir(path, 0755) < 0 && errno != EEXIST) {
                r = negative_errno();
                snprintf(why, why_len, "cannot create %s: %s", path, strerror(-r));
                return r;
        }
        r = attach_lease_program(path, devs_fd, allowed, n, why, why_len);
        if (r >= 0)
                r = move_pid(path, pid, why, why_len);
        if (r < 0) {
                (void)rmdir(path);
                return r;
        }
        if (ret_path && !(*ret_path = strdup(path)))
                return -ENOMEM;
        return 0;
}

/* The cgroup2 path of `pid` ("0::/x/y" in /proc/PID/cgroup). */
static int pid_cgroup(pid_t pid, char *buf, size_t len)
{
        _cleanup_fclose_ FILE *f = NULL;
        char file[64], line[PATH_MAX];

        snprintf(file, sizeof file, "/proc/%d/cgroup", (int)pid);
        f = fopen(file, "re");
        if (!f)
                return negative_errno();
        while (fgets(line, sizeof line, f))
                if (strncmp(line, "0::", 3) == 0) {
                        line[strcspn(line, "\n")] = '\0';
                        snprintf(buf, len, "%s", line + 3);
                        return 0;
                }
        return -ENOENT;
}

static void bus_unrefp(sd_bus **b)
{
        sd_bus_flush_close_unref(*b);
}

static void message_unrefp(sd_bus_message **m)
{
        sd_bus_message_unref(*m);
}

static int create_systemd(const char *mount, int64_t id, pid_t pid, int devs_fd,
                          const PolicyFenceDev *allowed, size_t n, char **ret_path, char *why,
                          size_t why_len)
{
        _cleanup_(bus_unrefp) sd_bus *bus = NULL;
        _cleanup_(message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char unit[64], cg[PATH_MAX], path[PATH_MAX], description[96], proc[32], slice[64];
        struct timespec pause = {.tv_nsec = 10 * 1000 * 1000};
        struct stat st;
        int r;

        snprintf(unit, sizeof unit, "gpukeeper-lease-%" PRId64 ".scope", id);
        snprintf(proc, sizeof proc, "/proc/%d", (int)pid);
        snprintf(description, sizeof description, "gpukeeper run lease %" PRId64, id);
        r = sd_bus_open_system(&bus);
        if (r < 0) {
                snprintf(why, why_len, "cannot connect to systemd's bus: %s", strerror(-r));
                return r;
        }
        r = sd_bus_message_new_method_call(bus, &m, "org.freedesktop.systemd1",
                                           "/org/freedesktop/systemd1",
                                           "org.freedesktop.systemd1.Manager",
                                           "StartTransientUnit");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", unit, "fail");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sv)");
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)(sv)(sv)", "Description", "s", description,
                                          "PIDs", "au", 1, (uint32_t)pid, "CollectMode", "s",
                                          "inactive-or-failed");
        /* Inside the run's owner's slice, so that the user's per-user limits
         * (user-UID.slice, src/limits/) hold the run too; the owner is the
         * uid of the `gpukeeper run` process itself. */
        if (r >= 0 && stat(proc, &st) == 0 && st.st_uid != 0) {
                snprintf(slice, sizeof slice, "user-%u.slice", (unsigned)st.st_uid);
                r = sd_bus_message_append(m, "(sv)", "Slice", "s", slice);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "a(sa(sv))", 0);
        if (r < 0) {
                snprintf(why, why_len, "cannot build the StartTransientUnit call: %s",
                         strerror(-r));
                return r;
        }
        r = sd_bus_call(bus, m, 2 * 1000 * 1000, &error, &reply);
        if (r < 0) {
                snprintf(why, why_len, "systemd refused scope %s: %s", unit,
                         error.message ? error.message : strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }
        /* The job moves the process asynchronously: wait (≤ 1 s) until
         * /proc says it is in the scope, then fence the scope. */
        for (int i = 0; i < 100; i++) {
                r = pid_cgroup(pid, cg, sizeof cg);
                if (r >= 0 && strstr(cg, unit))
                        break;
                r = -ETIMEDOUT;
                nanosleep(&pause, NULL);
        }
        if (r < 0) {
                snprintf(why, why_len, "process %d did not arrive in scope %s", (int)pid, unit);
                return r;
        }
        r = snprintf(path, sizeof path, "%s%s", mount, cg);
        if (r < 0 || (size_t)r >= sizeof path)
                return -ENAMETOOLONG;
        r = attach_lease_program(path, devs_fd, allowed, n, why, why_len);
        if (r < 0)
                return r;
        if (ret_path && !(*ret_path = strdup(path)))
                return -ENOMEM;
        return 0;
}

int isolate_lease_cgroup_create(IsolateCgroupBackend backend, const char *parent, int64_t id,
                                pid_t pid, int devs_fd, const PolicyFenceDev *allowed, size_t n,
                                char **ret_path, char *why, size_t why_len)
{
        if (pid <= 0 || id <= 0)
                return -EINVAL;
        if (backend == ISOLATE_CGROUP_SYSTEMD)
                return create_systemd(parent, id, pid, devs_fd, allowed, n, ret_path, why,
                                      why_len);
        return create_cgroupfs(parent, id, pid, devs_fd, allowed, n, ret_path, why, why_len);
}

int isolate_lease_cgroup_remove(const char *parent, int64_t id)
{
        char path[PATH_MAX];
        int r;

        if ((r = lease_dir(parent, id, path, sizeof path)) < 0)
                return r;
        if (rmdir(path) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}

int isolate_lease_cgroups_sweep(const char *parent, bool (*keep)(int64_t id, void *userdata),
                                void *userdata)
{
        DIR *dir = opendir(parent);
        struct dirent *de;
        int busy = 0;

        if (!dir)
                return 0;
        while ((de = readdir(dir))) {
                char *end;
                long long id;

                if (strncmp(de->d_name, "lease-", 6) != 0)
                        continue;
                errno = 0;
                id = strtoll(de->d_name + 6, &end, 10);
                if (errno || *end || id <= 0 || keep(id, userdata))
                        continue;
                if (isolate_lease_cgroup_remove(parent, id) < 0)
                        busy++;
        }
        closedir(dir);
        return busy;
}
