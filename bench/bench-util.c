/* Shared pieces of the benchmarks; see bench-util.h. */
#include "bench-util.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "basic/parse.h"

#define READY_TIMEOUT_NSEC (UINT64_C(15) * 1000000000)
#define STOP_TIMEOUT_NSEC (UINT64_C(5) * 1000000000)
#define OWNERS_TIMEOUT_NSEC (UINT64_C(10) * 1000000000)
#define POLL_NSEC (20 * 1000000L)

extern char **environ;

/* ret (PATH_MAX) = dir/name; false after a message when too long. */
static bool path_join(char *ret, const char *dir, const char *name)
{
        int k = snprintf(ret, PATH_MAX, "%s/%s", dir, name);

        if (k >= 0 && k < PATH_MAX)
                return true;
        fprintf(stderr, "%s: path too long: %s/%s\n", program_invocation_short_name, dir, name);
        return false;
}

/* The body of one child: become uid/gid when asked, then wait for SIGKILL. */
_Noreturn static void child_main(pid_t parent, const uid_t *uid, const gid_t *gid)
{
        if (uid && (setgroups(0, NULL) < 0 || setresgid(*gid, *gid, *gid) < 0 ||
                    setresuid(*uid, *uid, *uid) < 0))
                _exit(EXIT_FAILURE);
        /* No controlling terminal: the daemon's notices to a process's
         * terminal must not land on the benchmark's. */
        (void)setsid();
        /* Die with the benchmark; if it is already gone, the death signal
         * was set too late to fire, so leave now. It is set after the
         * credential change, which clears it. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(EXIT_FAILURE);
        for (;;)
                pause();
}

int bench_children_start_as(size_t n, const uid_t *uids, const gid_t *gids, BenchChildren *ret)
{
        BenchChildren c = { 0 };
        pid_t parent = getpid();

        assert(ret);
        assert(!uids == !gids);
        c.pids = calloc(n, sizeof(*c.pids));
        if (!c.pids)
                return -ENOMEM;
        /* Nothing buffered may be written twice by the children. */
        fflush(NULL);
        for (; c.n < n; c.n++) {
                pid_t pid = fork();

                if (pid < 0) {
                        int r = negative_errno();
                        bench_children_stop(&c);
                        return r;
                }
                if (pid == 0)
                        child_main(parent, uids ? &uids[c.n] : NULL, gids ? &gids[c.n] : NULL);
                c.pids[c.n] = pid;
        }
        *ret = c;
        return 0;
}

int bench_children_start(size_t n, BenchChildren *ret)
{
        return bench_children_start_as(n, NULL, NULL, ret);
}

/* The real uid of `pid` from /proc/PID/status, or (uid_t)-1. */
static uid_t uid_of(pid_t pid)
{
        char path[64], line[256];
        _cleanup_fclose_ FILE *f = NULL;
        unsigned long uid;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        f = fopen(path, "re");
        if (!f)
                return (uid_t)-1;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "Uid: %lu", &uid) == 1)
                        return (uid_t)uid;
        return (uid_t)-1;
}

bool bench_children_wait_owners(const BenchChildren *c, const uid_t *uids)
{
        uint64_t deadline = bench_now_nsec() + OWNERS_TIMEOUT_NSEC;

        for (size_t n = 0; n < c->n; n++)
                while (uid_of(c->pids[n]) != uids[n]) {
                        struct timespec ts = { .tv_nsec = 10 * 1000000L };

                        if (bench_now_nsec() > deadline) {
                                fprintf(stderr, "%s: process %d did not become uid %u\n",
                                        program_invocation_short_name, (int)c->pids[n],
                                        (unsigned)uids[n]);
                                return false;
                        }
                        nanosleep(&ts, NULL);
                }
        return true;
}

void bench_children_stop(BenchChildren *c)
{
        assert(c);
        for (size_t i = 0; i < c->n; i++)
                (void)kill(c->pids[i], SIGKILL);
        for (size_t i = 0; i < c->n; i++)
                while (waitpid(c->pids[i], NULL, 0) < 0 && errno == EINTR)
                        ;
        free(c->pids);
        *c = (BenchChildren){ 0 };
}

int bench_scratch_make(char *ret, size_t len)
{
        const char *tmp = getenv("TMPDIR");
        int k;

        assert(ret && len > 0);
        if (!tmp || tmp[0] != '/')
                tmp = "/tmp";
        k = snprintf(ret, len, "%s/gk-bench-XXXXXX", tmp);
        if (k < 0 || (size_t)k >= len)
                k = -ENAMETOOLONG;
        else
                k = mkdtemp(ret) ? 0 : negative_errno();
        if (k < 0)
                fprintf(stderr, "%s: cannot make a scratch directory: %s\n",
                        program_invocation_short_name, strerror(-k));
        return k;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        (void)remove(path);
        return 0;
}

void bench_scratch_remove(const char *path)
{
        if (!path || !path[0])
                return;
        (void)nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int bench_run(char *const argv[], bool quiet)
{
        posix_spawn_file_actions_t fa;
        pid_t pid;
        int status, r;

        r = posix_spawn_file_actions_init(&fa);
        if (r != 0)
                return -r;
        if (quiet && ((r = posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null",
                                                            O_WRONLY, 0)) != 0 ||
                      (r = posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO)) !=
                              0)) {
                posix_spawn_file_actions_destroy(&fa);
                return -r;
        }
        r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return -r;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EPROTO;
}

/* Look `name` up in passwd into *u (home copied). Returns 0, -ENOENT, or
 * -errno. The buffer grows on ERANGE: nss_files parses every line it
 * passes into it, so one long entry anywhere (a 5 KB GECOS) needs more. */
static int user_lookup(const char *name, BenchUser *u)
{
        struct passwd pw, *found = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t size = 4096;
        int r;

        for (;;) {
                free(buf);
                buf = malloc(size);
                if (!buf)
                        return -ENOMEM;
                r = getpwnam_r(name, &pw, buf, size, &found);
                if (r != ERANGE || size >= (1u << 20))
                        break;
                size *= 2;
        }
        if (r != 0)
                return -r;
        if (!found)
                return -ENOENT;
        free(u->home);
        u->home = strdup(pw.pw_dir);
        if (!u->home)
                return -ENOMEM;
        u->uid = pw.pw_uid;
        u->gid = pw.pw_gid;
        return 0;
}

int bench_users_make(const char *prefix, size_t n, const char *home_base, BenchUser *users)
{
        const char *me = program_invocation_short_name;

        assert(prefix && users && n <= 100);
        for (size_t i = 0; i < n; i++) {
                BenchUser *u = &users[i];
                char home[PATH_MAX];
                int k, r;

                k = snprintf(u->name, sizeof(u->name), "%s%02zu", prefix, i);
                if (k < 0 || (size_t)k >= sizeof(u->name))
                        return -ENAMETOOLONG;
                r = user_lookup(u->name, u);
                if (r == 0 && !home_base)
                        continue;
                if (r == 0) {
                        r = bench_run((char *const[]){ "userdel", "-r", u->name, NULL }, true);
                        if (r < 0) {
                                fprintf(stderr, "%s: userdel -r %s (a leftover) failed\n", me,
                                        u->name);
                                return r;
                        }
                } else if (r != -ENOENT) {
                        fprintf(stderr, "%s: cannot look up %s: %s\n", me, u->name, strerror(-r));
                        return r;
                }
                if (home_base) {
                        k = snprintf(home, sizeof(home), "%s/%s", home_base, u->name);
                        if (k < 0 || (size_t)k >= sizeof(home))
                                return -ENAMETOOLONG;
                        r = bench_run((char *const[]){ "useradd", "-m", "-d", home, "-s",
                                                       "/usr/sbin/nologin", "-c",
                                                       "gpukeeper benchmark", u->name, NULL },
                                      true);
                } else
                        r = bench_run((char *const[]){ "useradd", "-M", "-d", "/nonexistent", "-s",
                                                       "/usr/sbin/nologin", "-c",
                                                       "gpukeeper benchmark", u->name, NULL },
                                      true);
                if (r == 0)
                        r = user_lookup(u->name, u);
                if (r < 0) {
                        fprintf(stderr, "%s: cannot make user %s: %s\n", me, u->name,
                                r == -EPROTO ? "useradd failed" : strerror(-r));
                        return r;
                }
        }
        return 0;
}

void bench_users_remove(BenchUser *users, size_t n, bool with_home)
{
        for (size_t i = 0; i < n; i++) {
                BenchUser *u = &users[i];

                if (u->name[0]) {
                        char *with[] = { "userdel", "-r", u->name, NULL };
                        char *without[] = { "userdel", u->name, NULL };
                        BenchUser found = { 0 };
                        bool exists = user_lookup(u->name, &found) == 0;

                        free(found.home);
                        /* Only users that exist: a failed make leaves names behind. */
                        if (exists && bench_run(with_home ? with : without, true) < 0)
                                fprintf(stderr, "%s: userdel %s failed\n",
                                        program_invocation_short_name, u->name);
                }
                free(u->home);
                *u = (BenchUser){ 0 };
        }
}

int bench_write_lab(const char *gen_lab, const char *scratch, const pid_t *pids, size_t n,
                    const char *lab_path)
{
        return bench_write_lab_shape(gen_lab, scratch, BENCH_LAB_SHAPE_DEFAULT, pids, n, lab_path);
}

int bench_write_lab_shape(const char *gen_lab, const char *scratch, BenchLabShape shape,
                          const pid_t *pids, size_t n, const char *lab_path)
{
        char pid_file[PATH_MAX], gpus[16], mig[16];
        _cleanup_fclose_ FILE *f = NULL;
        int k;

        k = snprintf(pid_file, sizeof(pid_file), "%s/pids.txt", scratch);
        if (k < 0 || (size_t)k >= sizeof(pid_file))
                return -ENAMETOOLONG;
        f = fopen(pid_file, "we");
        if (!f)
                return negative_errno();
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%d\n", (int)pids[i]);
        if (fflush(f) != 0 || ferror(f))
                return negative_errno();

        snprintf(gpus, sizeof(gpus), "%u", shape.gpus);
        snprintf(mig, sizeof(mig), "%u", shape.mig_gpus);
        return bench_run((char *const[]){ "python3", (char *)gen_lab, "--gpus", gpus, "--mig", mig,
                                          "--pids-from", pid_file, "--out", (char *)lab_path,
                                          NULL },
                         false);
}

int bench_lab_start(const char *gen_lab, const char *scratch, BenchUser *users, size_t n_users,
                    size_t (*owner_of)(size_t n), BenchChildren *children, char *ret_lab)
{
        return bench_lab_start_shape(gen_lab, scratch, BENCH_LAB_SHAPE_DEFAULT, users, n_users,
                                     owner_of, children, ret_lab);
}

int bench_lab_start_shape(const char *gen_lab, const char *scratch, BenchLabShape shape,
                          BenchUser *users, size_t n_users, size_t (*owner_of)(size_t n),
                          BenchChildren *children, char *ret_lab)
{
        const char *me = program_invocation_short_name;
        _cleanup_free_ uid_t *uids = calloc(MAX(shape.processes, (size_t)1), sizeof(*uids));
        _cleanup_free_ gid_t *gids = calloc(MAX(shape.processes, (size_t)1), sizeof(*gids));
        int r;

        assert(!users == !owner_of);
        if (!uids || !gids) {
                fprintf(stderr, "%s: out of memory\n", me);
                return -1;
        }
        if (!path_join(ret_lab, scratch, "lab.json"))
                return -1;
        if (users && bench_users_make(BENCH_USER_PREFIX, n_users, NULL, users) < 0)
                return -1;
        for (size_t n = 0; users && n < shape.processes; n++) {
                assert(owner_of(n) < n_users);
                uids[n] = users[owner_of(n)].uid;
                gids[n] = users[owner_of(n)].gid;
        }
        r = bench_children_start_as(shape.processes, users ? uids : NULL, users ? gids : NULL,
                                    children);
        if (r < 0) {
                fprintf(stderr, "%s: cannot start %zu processes: %s\n", me, shape.processes,
                        strerror(-r));
                return -1;
        }
        if (users && !bench_children_wait_owners(children, uids))
                return -1;
        r = bench_write_lab_shape(gen_lab, scratch, shape, children->pids, children->n, ret_lab);
        if (r < 0) {
                fprintf(stderr, "%s: %s could not write the lab: %s\n", me, gen_lab,
                        strerror(-r));
                return -1;
        }
        return 0;
}

void bench_lab_stop(BenchChildren *children, BenchUser *users, size_t n_users, bool keep)
{
        bench_children_stop(children);
        if (!keep)
                bench_users_remove(users, n_users, false);
        else
                for (size_t i = 0; i < n_users; i++) {
                        free(users[i].home);
                        users[i].home = NULL;
                }
}

bool bench_need_root(const char *why)
{
        if (geteuid() == 0)
                return true;
        fprintf(stderr, "%s: needs root (%s)\n", program_invocation_short_name, why);
        return false;
}

int bench_write_plain_lab(const char *gen_lab, unsigned gpus, unsigned mig, const char *lab_path)
{
        char g[16], m[16];

        snprintf(g, sizeof(g), "%u", gpus);
        snprintf(m, sizeof(m), "%u", mig);
        return bench_run((char *const[]){ "python3", (char *)gen_lab, "--gpus", g, "--mig", m,
                                          "--out", (char *)lab_path, NULL },
                         false);
}

int bench_write_daemon_config(const char *path, const char *socket_path, const char *state_dir,
                              const char *library)
{
        _cleanup_fclose_ FILE *f = fopen(path, "we");

        if (!f || fprintf(f,
                          "socket: %s\nstate_dir: %s\nnvml_library: %s\n"
                          "sample_interval: 2s\nlog_level: info\n",
                          socket_path, state_dir, library) < 0 ||
            fflush(f) != 0) {
                fprintf(stderr, "%s: cannot write %s: %s\n", program_invocation_short_name, path,
                        strerror(errno));
                return -1;
        }
        return 0;
}

static void sleep_poll(void)
{
        struct timespec ts = { .tv_nsec = POLL_NSEC };

        nanosleep(&ts, NULL);
}

pid_t bench_daemon_start(const char *gkd, const char *config, const char *log)
{
        pid_t parent = getpid(), pid;

        fflush(NULL);
        pid = fork();
        if (pid < 0) {
                fprintf(stderr, "%s: fork: %s\n", program_invocation_short_name, strerror(errno));
                return -1;
        }
        if (pid == 0) {
                int out = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                int in = open("/dev/null", O_RDONLY | O_CLOEXEC);

                if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent || out < 0 ||
                    in < 0 || dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
                    dup2(out, STDERR_FILENO) < 0)
                        _exit(127);
                execv(gkd, (char *const[]){ (char *)gkd, "--config", (char *)config, NULL });
                _exit(127);
        }
        return pid;
}

void bench_dump_log(const char *log)
{
        char buf[4096];
        size_t k;
        _cleanup_fclose_ FILE *f = fopen(log, "re");

        if (!f)
                return;
        fprintf(stderr, "--- gpukeeperd log ---\n");
        while ((k = fread(buf, 1, sizeof(buf), f)) > 0)
                fwrite(buf, 1, k, stderr);
        fprintf(stderr, "--- end of log ---\n");
}

int bench_daemon_launch(const char *gkd, const char *library, const char *scratch,
                        const char *lab, BenchDaemon *ret)
{
        const char *me = program_invocation_short_name;
        BenchDaemon *d = ret;

        *d = (BenchDaemon){ 0 };
        if (!path_join(d->state_dir, scratch, "state") ||
            !path_join(d->socket_path, scratch, "gpukeeper.sock") ||
            !path_join(d->config, scratch, "gpukeeper.yaml") ||
            !path_join(d->log, scratch, "gpukeeperd.log"))
                return -1;
        if (mkdir(d->state_dir, 0700) < 0) {
                fprintf(stderr, "%s: mkdir %s: %s\n", me, d->state_dir, strerror(errno));
                return -1;
        }
        if (bench_write_daemon_config(d->config, d->socket_path, d->state_dir, library) < 0)
                return -1;
        if (setenv("GPUKEEPER_SIM_LAB", lab, 1) < 0) {
                fprintf(stderr, "%s: setenv: %s\n", me, strerror(errno));
                return -1;
        }
        d->pid = bench_daemon_start(gkd, d->config, d->log);
        if (d->pid < 0) {
                d->pid = 0;
                return -1;
        }
        return bench_daemon_wait_ready(d->pid, d->socket_path, &d->reaped);
}

int bench_daemon_end(BenchDaemon *d, int ret)
{
        int status;

        /* Never started, or gone already: the launch failed. */
        if (d->pid <= 0 || d->reaped) {
                if (d->reaped)
                        bench_dump_log(d->log);
                return BENCH_EXIT_ERROR;
        }
        status = bench_daemon_stop(d->pid);
        d->pid = 0;
        if (status != 0) {
                fprintf(stderr, "%s: gpukeeperd did not stop cleanly (status %d)\n",
                        program_invocation_short_name, status);
                ret = BENCH_EXIT_ERROR;
        }
        if (ret == BENCH_EXIT_ERROR)
                bench_dump_log(d->log);
        return ret;
}

int bench_daemon_stop(pid_t pid)
{
        uint64_t deadline = bench_now_nsec() + STOP_TIMEOUT_NSEC;
        int status;

        (void)kill(pid, SIGTERM);
        while (bench_now_nsec() < deadline) {
                pid_t k = waitpid(pid, &status, WNOHANG);
                if (k == pid)
                        return status;
                if (k < 0 && errno != EINTR)
                        return -1;
                sleep_poll();
        }
        (void)kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        return -1;
}

int bench_daemon_wait_ready(pid_t pid, const char *socket_path, bool *ret_reaped)
{
        const char *me = program_invocation_short_name;
        uint64_t deadline = bench_now_nsec() + READY_TIMEOUT_NSEC;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int status;

        if (strlen(socket_path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "%s: socket path too long: %s\n", me, socket_path);
                return -1;
        }
        strcpy(sa.sun_path, socket_path);
        while (bench_now_nsec() < deadline) {
                _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

                if (fd < 0) {
                        fprintf(stderr, "%s: socket: %s\n", me, strerror(errno));
                        return -1;
                }
                if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                        return 0;
                if (waitpid(pid, &status, WNOHANG) == pid) {
                        *ret_reaped = true;
                        if (WIFEXITED(status))
                                fprintf(stderr, "%s: gpukeeperd exited with status %d during "
                                                "start\n",
                                        me, WEXITSTATUS(status));
                        else
                                fprintf(stderr, "%s: gpukeeperd died of signal %d during start\n",
                                        me, WTERMSIG(status));
                        return -1;
                }
                sleep_poll();
        }
        fprintf(stderr, "%s: gpukeeperd did not listen on %s within 15 s\n", me, socket_path);
        return -1;
}

int64_t bench_cpu_nsec_of(pid_t pid)
{
        char path[64];
        long long ns;
        _cleanup_fclose_ FILE *f = NULL;

        snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
        f = fopen(path, "re");
        if (!f || fscanf(f, "%lld", &ns) != 1 || ns < 0)
                return -1;
        return ns;
}

uint64_t bench_now_nsec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static int compare_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted[0..n). */
static double percentile(const double *sorted, size_t n, double p)
{
        size_t rank = (size_t)ceil(p * (double)n);

        return sorted[rank == 0 ? 0 : rank - 1];
}

BenchStats bench_stats(double *samples, size_t n)
{
        double sum = 0;

        assert(samples && n > 0);
        qsort(samples, n, sizeof(*samples), compare_double);
        for (size_t i = 0; i < n; i++)
                sum += samples[i];
        return (BenchStats){
                .n = n,
                .p50 = percentile(samples, n, 0.50),
                .p90 = percentile(samples, n, 0.90),
                .mean = sum / (double)n,
                .min = samples[0],
                .max = samples[n - 1],
        };
}

void bench_print_header(const char *unit)
{
        printf("  %-34s %6s %10s %10s %10s %10s %10s\n", "", "n", "p50", "p90", "mean", "min",
               "max");
        printf("  %-34s %6s %10s %10s %10s %10s %10s\n", "", "", unit, unit, unit, unit, unit);
}

void bench_print_row(const char *label, const BenchStats *s)
{
        printf("  %-34s %6zu %10.1f %10.1f %10.1f %10.1f %10.1f\n", label, s->n, s->p50, s->p90,
               s->mean, s->min, s->max);
}

BenchStats bench_print_stats(const char *label, double *samples, size_t n)
{
        BenchStats s = bench_stats(samples, n);

        bench_print_row(label, &s);
        return s;
}

void bench_print_verdict(const char *what, bool pass)
{
        printf("  %-58s %s\n", what, pass ? "PASS" : "FAIL");
}

bool bench_print_ratio(const char *name, const BenchStats *side, const BenchStats *baseline,
                       double limit)
{
        double p50 = side->p50 / baseline->p50, mean = side->mean / baseline->mean;
        char what[128];

        printf("\n  ratio %s: p50 %.2f, mean %.2f\n\n", name, p50, mean);
        snprintf(what, sizeof(what), "target: %s p50 ratio <= %.1f", name, limit);
        bench_print_verdict(what, p50 <= limit);
        snprintf(what, sizeof(what), "target: %s mean ratio <= %.1f", name, limit);
        bench_print_verdict(what, mean <= limit);
        return p50 <= limit && mean <= limit;
}

int bench_print_result(bool pass)
{
        printf("%s: %s\n", program_invocation_short_name, pass ? "PASS" : "FAIL");
        return pass ? BENCH_EXIT_PASS : BENCH_EXIT_MISSED;
}

int bench_interleave(const BenchSide *sides, size_t n, size_t total, size_t block)
{
        assert(sides && n > 0 && block > 0);
        for (size_t k = 0, done = 0; done < total; k++) {
                size_t len = MIN(block, total - done);

                for (size_t j = 0; j < n; j++) {
                        const BenchSide *side = &sides[(k + j) % n];

                        if (side->block)
                                side->block(side->userdata, false);
                        for (size_t i = done; i < done + len; i++)
                                if (side->sample(side->userdata, i, &side->samples[i]) < 0)
                                        return -1;
                        if (side->block)
                                side->block(side->userdata, true);
                }
                done += len;
        }
        return 0;
}

/* The body of the echo child: one epoll_wait, one read and a write of what
 * was read per message, like the daemon's event loop. */
_Noreturn static void echo_main(pid_t parent, int fd)
{
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
        char buf[BENCH_ECHO_MAX];
        int ep;

        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(EXIT_FAILURE);
        ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
                _exit(EXIT_FAILURE);
        for (;;) {
                ssize_t n;

                if (epoll_wait(ep, &ev, 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(EXIT_FAILURE);
                }
                n = read(fd, buf, sizeof(buf));
                if (n == 0)
                        _exit(EXIT_SUCCESS);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(EXIT_FAILURE);
                }
                for (ssize_t off = 0; off < n;) {
                        ssize_t w = send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);

                        if (w < 0 && errno != EINTR)
                                _exit(EXIT_FAILURE);
                        if (w > 0)
                                off += w;
                }
        }
}

int bench_echo_start(BenchEcho *ret)
{
        pid_t parent = getpid(), pid;
        int fds[2];

        assert(ret);
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
                return negative_errno();
        fflush(NULL);
        pid = fork();
        if (pid < 0) {
                int r = negative_errno();

                close(fds[0]);
                close(fds[1]);
                return r;
        }
        if (pid == 0) {
                close(fds[0]);
                echo_main(parent, fds[1]);
        }
        close(fds[1]);
        *ret = (BenchEcho){ .pid = pid, .fd = fds[0] };
        return 0;
}

int bench_echo_round_trip(BenchEcho *e, const void *buf, size_t len, BenchEchoWait wait,
                          double *ret_usec)
{
        char back[BENCH_ECHO_MAX];
        size_t sent = 0, got = 0;
        uint64_t t0, t1;

        assert(e && e->pid > 0 && buf && len > 0 && len <= sizeof(back));
        t0 = bench_now_nsec();
        while (sent < len) {
                ssize_t n = send(e->fd, (const char *)buf + sent, len - sent, MSG_NOSIGNAL);

                if (n < 0 && errno != EINTR)
                        return errno == EPIPE ? -ECONNRESET : negative_errno();
                if (n > 0)
                        sent += (size_t)n;
        }
        while (got < len) {
                ssize_t n;

                if (wait == BENCH_ECHO_POLL) {
                        struct pollfd p = { .fd = e->fd, .events = POLLIN };

                        if (poll(&p, 1, -1) < 0 && errno != EINTR)
                                return negative_errno();
                        n = recv(e->fd, back + got, len - got, MSG_DONTWAIT);
                        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                                continue;
                } else
                        n = recv(e->fd, back + got, len - got, 0);
                if (n == 0)
                        return -ECONNRESET;
                if (n < 0 && errno != EINTR)
                        return negative_errno();
                if (n > 0)
                        got += (size_t)n;
        }
        t1 = bench_now_nsec();
        if (memcmp(buf, back, len) != 0)
                return -EPROTO;
        *ret_usec = (double)(t1 - t0) / 1000.0;
        return 0;
}

void bench_echo_stop(BenchEcho *e)
{
        assert(e);
        if (e->pid <= 0)
                return;
        close(e->fd);
        (void)kill(e->pid, SIGKILL);
        while (waitpid(e->pid, NULL, 0) < 0 && errno == EINTR)
                ;
        *e = (BenchEcho){ 0 };
}

static const char *const placement_names[] = {
        [BENCH_PLACEMENT_SPLIT] = "split",
        [BENCH_PLACEMENT_SAME] = "same",
        [BENCH_PLACEMENT_FREE] = "free",
};

int bench_placement_from_string(const char *s)
{
        for (size_t i = 0; s && i < ELEMENTSOF(placement_names); i++)
                if (strcmp(s, placement_names[i]) == 0)
                        return (int)i;
        return -1;
}

const char *bench_placement_to_string(BenchPlacement p)
{
        return (size_t)p < ELEMENTSOF(placement_names) ? placement_names[p] : "?";
}

int bench_cpus_allowed(int *ret_first, int *ret_second)
{
        cpu_set_t set;
        int found[2] = { -1, -1 }, n = 0;

        if (sched_getaffinity(0, sizeof set, &set) < 0)
                return negative_errno();
        for (int cpu = 0; cpu < CPU_SETSIZE && n < 2; cpu++)
                if (CPU_ISSET(cpu, &set))
                        found[n++] = cpu;
        if (n == 0)
                return -ENODEV;
        *ret_first = found[0];
        *ret_second = found[1];
        return 0;
}

int bench_set_affinity(pid_t pid, const cpu_set_t *set, bool all_threads)
{
        char path[64];
        struct dirent *de;
        DIR *d;
        int r = 0;

        assert(set);
        if (!all_threads)
                return sched_setaffinity(pid, sizeof *set, set) < 0 ? negative_errno() : 0;
        snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
        d = opendir(path);
        if (!d)
                return negative_errno();
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' &&
                    sched_setaffinity((pid_t)atoi(de->d_name), sizeof *set, set) < 0 &&
                    errno != ESRCH)
                        r = negative_errno();
        closedir(d);
        return r;
}

bool bench_parse_count(const char *name, const char *s, size_t max, size_t *ret)
{
        uint64_t v;

        if (parse_uint64(s, &v) < 0 || v == 0 || v > max) {
                fprintf(stderr, "%s: expected a count from 1 to %zu, got '%s'\n", name, max, s);
                return false;
        }
        *ret = (size_t)v;
        return true;
}

/* Store optarg as opt asks; false after a message. */
static bool option_store(const BenchOption *opt, const char *arg)
{
        char name[64];

        switch (opt->type) {
        case BENCH_OPTION_STRING:
                *opt->string = arg;
                return true;
        case BENCH_OPTION_COUNT:
                snprintf(name, sizeof(name), "--%s", opt->name);
                return bench_parse_count(name, arg, opt->max, opt->count);
        case BENCH_OPTION_FLAG:
                *opt->flag = true;
                return true;
        }
        return false;
}

int bench_parse_options(int argc, char **argv, const BenchOption *opts, size_t n,
                        void (*help)(void))
{
        struct option longs[BENCH_OPTIONS_MAX + 2] = {
                { "help", no_argument, NULL, 'h' },
        };
        int c;

        assert(n <= BENCH_OPTIONS_MAX);
        /* getopt_long returns 0x100 + i for opts[i]: above any short option. */
        for (size_t i = 0; i < n; i++)
                longs[i + 1] = (struct option){
                        .name = opts[i].name,
                        .has_arg = opts[i].type == BENCH_OPTION_FLAG ? no_argument
                                                                     : required_argument,
                        .val = 0x100 + (int)i,
                };
        while ((c = getopt_long(argc, argv, "h", longs, NULL)) >= 0) {
                if (c == 'h') {
                        help();
                        return 0;
                }
                if (c < 0x100 || (size_t)(c - 0x100) >= n)
                        return -1;
                if (!option_store(&opts[c - 0x100], optarg))
                        return -1;
        }
        if (optind < argc) {
                fprintf(stderr, "%s: unexpected argument '%s'\n", program_invocation_short_name,
                        argv[optind]);
                return -1;
        }
        return 1;
}

void bench_rounds_help(void)
{
        printf("  --library PATH     NVML simulator library (default " BENCH_SIM_LIBRARY ")\n"
               "  --gen-lab PATH     sim/gen-lab.py (default " BENCH_GEN_LAB ")\n"
               "  --rounds N         interleaved rounds (default %d)\n"
               "  --iterations N     iterations per round and side (default %d)\n",
               BENCH_ROUNDS_DEFAULT, BENCH_ITERATIONS_DEFAULT);
}

int bench_parse_rounds(int argc, char **argv, BenchRounds *rounds, const BenchOption *extra,
                       size_t n_extra, void (*help)(void))
{
        BenchOption opts[BENCH_OPTIONS_MAX] = {
                BENCH_STRING("library", &rounds->library),
                BENCH_STRING("gen-lab", &rounds->gen_lab),
                BENCH_COUNT("rounds", &rounds->rounds, 10000),
                BENCH_COUNT("iterations", &rounds->iterations, 100000),
        };
        const size_t n_own = 4;
        int r;

        assert(n_own + n_extra <= BENCH_OPTIONS_MAX);
        *rounds = (BenchRounds){
                .library = BENCH_SIM_LIBRARY,
                .gen_lab = BENCH_GEN_LAB,
                .rounds = BENCH_ROUNDS_DEFAULT,
                .iterations = BENCH_ITERATIONS_DEFAULT,
        };
        for (size_t i = 0; i < n_extra; i++)
                opts[n_own + i] = extra[i];
        r = bench_parse_options(argc, argv, opts, n_own + n_extra, help);
        if (r > 0 && rounds->rounds * rounds->iterations > BENCH_ROUNDS_MAX_SAMPLES) {
                fprintf(stderr, "%s: at most %d samples per side\n",
                        program_invocation_short_name, BENCH_ROUNDS_MAX_SAMPLES);
                return -1;
        }
        return r;
}
