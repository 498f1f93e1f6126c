/* Shared pieces of the benchmarks; see bench-util.h. */
#include "bench-util.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_TIMEOUT_NSEC (UINT64_C(15) * 1000000000)
#define STOP_TIMEOUT_NSEC (UINT64_C(5) * 1000000000)
#define POLL_NSEC (20 * 1000000L)

extern char **environ;

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
                return -ENAMETOOLONG;
        if (!mkdtemp(ret))
                return negative_errno();
        return 0;
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
 * -errno. */
static int user_lookup(const char *name, BenchUser *u)
{
        struct passwd pw, *found = NULL;
        char buf[4096];
        int r;

        r = getpwnam_r(name, &pw, buf, sizeof(buf), &found);
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
                        struct passwd pw, *found = NULL;
                        char buf[4096];

                        /* Only users that exist: a failed make leaves names behind. */
                        if (getpwnam_r(u->name, &pw, buf, sizeof(buf), &found) == 0 && found &&
                            bench_run(with_home ? with : without, true) < 0)
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

        snprintf(gpus, sizeof(gpus), "%d", BENCH_LAB_GPUS);
        snprintf(mig, sizeof(mig), "%d", BENCH_LAB_MIG_GPUS);
        return bench_run((char *const[]){ "python3", (char *)gen_lab, "--gpus", gpus, "--mig", mig,
                                          "--pids-from", pid_file, "--out", (char *)lab_path,
                                          NULL },
                         false);
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

bool bench_parse_count(const char *name, const char *s, size_t max, size_t *ret)
{
        unsigned long long v;
        char *end;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v == 0 || v > max) {
                fprintf(stderr, "%s: expected a count from 1 to %zu, got '%s'\n", name, max, s);
                return false;
        }
        *ret = (size_t)v;
        return true;
}
