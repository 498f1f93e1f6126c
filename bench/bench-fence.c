/* Strict mode's costs (issue 12), measured against the real kernel:
 *
 * 1. open() of a device node with and without the fence. Three sibling
 *    cgroups of the benchmark's own under the cgroup2 mount: "plain" (no
 *    program: the baseline), "fenced" (the host fence program, as strict
 *    mode attaches it to the cgroup2 root), and "fenced/lease" (the fence
 *    plus a run lease's program, as `gpukeeper run` gets). One child per
 *    cgroup, all as the same unprivileged uid, takes turns (rounds
 *    alternate, so load from other work hits all alike) timing open() of a
 *    mknod'd 195:N node: allowed opens fail with ENXIO (no driver), refused
 *    ones with EPERM. Targets: allowed and denied ≤ 1.2× the baseline and
 *    < 2 µs added.
 * 2. grant → fence-open latency: gpukeeperd in strict mode on the simulator,
 *    its fence on the "fenced" cgroup; a client of the benchmark uid in that
 *    cgroup sends lease.acquire for GPU 1 and at once spins on open() of
 *    /dev/nvidia1 until it is let through (the time from sending the request
 *    is an upper bound of grant → open), then lease.release and spins until
 *    it is refused again. Target: p99 < 100 ms.
 *
 * Run as root (cgroups, bpffs, mknod). Prints its numbers and verdicts. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"
#include "isolate/fence.h"
#include "isolate/lease-cgroup.h"
#include "policy/fence.h"

#define CGROUP2 "/sys/fs/cgroup/unified"
#define BENCH_UID 60201
#define ROUNDS 41
#define OPENS_PER_ROUND 5000
#define GRANTS 100

static double now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
        qsort(v, n, sizeof *v, cmp_double);
        return v[(size_t)fmin((double)n - 1, floor(p * (double)n))];
}

static int join(const char *cgroup)
{
        char path[512], buf[32];
        int fd, n;

        snprintf(path, sizeof path, "%s/cgroup.procs", cgroup);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = snprintf(buf, sizeof buf, "%d", (int)getpid());
        if (write(fd, buf, (size_t)n) != n) {
                close(fd);
                return -errno;
        }
        close(fd);
        return 0;
}

static int become_user(void)
{
        return setresgid(BENCH_UID, BENCH_UID, BENCH_UID) < 0 ||
                       setresuid(BENCH_UID, BENCH_UID, BENCH_UID) < 0
                   ? -errno
                   : 0;
}

/* ns per open() of `path`, expecting errno `want` every time. */
static double time_opens(const char *path, int want)
{
        double t0 = now_ns();

        for (int i = 0; i < OPENS_PER_ROUND; i++) {
                int fd = open(path, O_RDWR | O_CLOEXEC);

                if (fd >= 0)
                        close(fd);
                if (fd >= 0 || errno != want)
                        return -1;
        }
        return (now_ns() - t0) / OPENS_PER_ROUND;
}

/* A child that joins `cgroup`, drops to BENCH_UID, and on each byte from
 * `cmd` times the nodes in `paths` (expecting `wants`) and writes the ns
 * per open to `res`. */
typedef struct Worker {
        pid_t pid;
        int cmd, res;
} Worker;

static int worker_start(const char *cgroup, const char *const *paths, const int *wants, size_t n,
                        Worker *w)
{
        int c[2], r[2];

        if (pipe2(c, O_CLOEXEC) < 0 || pipe2(r, O_CLOEXEC) < 0)
                return -errno;
        w->pid = fork();
        if (w->pid < 0)
                return -errno;
        if (w->pid == 0) {
                char b;

                if (join(cgroup) < 0 || become_user() < 0)
                        _exit(1);
                while (read(c[0], &b, 1) == 1) {
                        double out[8];

                        for (size_t i = 0; i < n; i++) {
                                out[i] = time_opens(paths[i], wants[i]);
                                if (out[i] < 0)
                                        fprintf(stderr, "bench-fence: %s in %s: %m, not %s\n",
                                                paths[i], cgroup, strerror(wants[i]));
                        }
                        if (write(r[1], out, n * sizeof *out) != (ssize_t)(n * sizeof *out))
                                _exit(1);
                }
                _exit(0);
        }
        close(c[0]);
        close(r[1]);
        w->cmd = c[1];
        w->res = r[0];
        return 0;
}

static int worker_round(Worker *w, double *out, size_t n)
{
        char b = 'g';

        if (write(w->cmd, &b, 1) != 1 || read(w->res, out, n * sizeof *out) != (ssize_t)(n * sizeof *out))
                return -EIO;
        for (size_t i = 0; i < n; i++)
                if (out[i] < 0)
                        return -EPROTO;
        return 0;
}

static void worker_stop(Worker *w)
{
        int status;

        /* Later workers inherited this one's pipe ends: EOF alone would not reach it. */
        kill(w->pid, SIGKILL);
        close(w->cmd);
        close(w->res);
        waitpid(w->pid, &status, 0);
}

/* ---- part 2: the daemon ------------------------------------------------- */

static int send_frame(int fd, json_t *o)
{
        char *body = json_dumps(o, JSON_COMPACT);
        uint32_t len;
        int r = 0;

        json_decref(o);
        if (!body)
                return -ENOMEM;
        len = htonl((uint32_t)strlen(body));
        if (write(fd, &len, 4) != 4 || write(fd, body, strlen(body)) != (ssize_t)strlen(body))
                r = -EIO;
        free(body);
        return r;
}

/* The reply with `id` (events before it are skipped). */
static json_t *recv_reply(int fd, int id)
{
        for (;;) {
                uint32_t len;
                char *buf;
                size_t got = 0;
                json_t *o;

                if (read(fd, &len, 4) != 4)
                        return NULL;
                len = ntohl(len);
                if (len == 0 || len > (16u << 20))
                        return NULL;
                buf = malloc(len);
                while (buf && got < len) {
                        ssize_t n = read(fd, buf + got, len - got);

                        if (n <= 0)
                                break;
                        got += (size_t)n;
                }
                o = buf && got == len ? json_loadb(buf, len, 0, NULL) : NULL;
                free(buf);
                if (!o)
                        return NULL;
                if (json_integer_value(json_object_get(o, "id")) == id)
                        return o;
                json_decref(o);
        }
}

static int connect_daemon(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (strlen(path) >= sizeof sa.sun_path) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        memcpy(sa.sun_path, path, strlen(path) + 1);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        return fd;
}

/* The user side of part 2 (a child in the fenced cgroup, as BENCH_UID):
 * writes GRANTS pairs of (grant→open, release→closed) in ns to `out`. */
static int latency_child(const char *sock, const char *node, const char *uuid, int out)
{
        for (int i = 0; i < GRANTS; i++) {
                double t0, t_open, t1, t_closed, pair[2];
                json_t *reply;
                int fd = connect_daemon(sock), id = 2 * i + 1, lease;

                if (fd < 0)
                        return 1;
                t0 = now_ns();
                if (send_frame(fd, json_pack("{s:i, s:i, s:s, s:{s:s, s:[s], s:i}}", "v", 1, "id",
                                             id, "op", "lease.acquire", "args", "kind", "manual",
                                             "devices", uuid, "duration_sec", 3600)) < 0)
                        return 1;
                for (;;) {
                        int f = open(node, O_RDWR | O_CLOEXEC);

                        if (f >= 0)
                                close(f);
                        if (f < 0 && errno == ENXIO)
                                break;
                        if (now_ns() - t0 > 5e9)
                                return 2;
                }
                t_open = now_ns();
                reply = recv_reply(fd, id);
                if (!reply || !json_is_true(json_object_get(reply, "ok")))
                        return 3;
                lease = (int)json_integer_value(json_object_get(
                    json_object_get(json_object_get(reply, "result"), "lease"), "id"));
                json_decref(reply);
                t1 = now_ns();
                if (send_frame(fd, json_pack("{s:i, s:i, s:s, s:{s:i}}", "v", 1, "id", id + 1,
                                             "op", "lease.release", "args", "id", lease)) < 0)
                        return 1;
                for (;;) {
                        int f = open(node, O_RDWR | O_CLOEXEC);

                        if (f >= 0)
                                close(f);
                        if (f < 0 && errno == EPERM)
                                break;
                        if (now_ns() - t1 > 5e9)
                                return 4;
                }
                t_closed = now_ns();
                reply = recv_reply(fd, id + 1);
                json_decref(reply);
                close(fd);
                pair[0] = t_open - t0;
                pair[1] = t_closed - t1;
                if (write(out, pair, sizeof pair) != sizeof pair)
                        return 1;
        }
        return 0;
}

static const char LAB[] =
    "{\"driver_version\": \"550.54.15\", \"gpus\": ["
    "{\"name\": \"NVIDIA A100-SXM4-80GB\", \"uuid\": \"GPU-be9c0000-0000-4000-8000-000000000000\","
    " \"pci_bus_id\": \"00000000:07:00.0\", \"minor\": 0, \"memory_total_mib\": 81920,"
    " \"processes\": []},"
    "{\"name\": \"NVIDIA A100-SXM4-80GB\", \"uuid\": \"GPU-be9c0000-0000-4000-8000-000000000001\","
    " \"pci_bus_id\": \"00000000:0F:00.0\", \"minor\": 1, \"memory_total_mib\": 81920,"
    " \"processes\": []}]}\n";

static int write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");

        if (!f)
                return -errno;
        fputs(text, f);
        return fclose(f) == 0 ? 0 : -EIO;
}

/* A free loopback port for the daemon's /metrics listener (port 0 is not
 * accepted by http.listen). */
static int free_port(void)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof sa;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = 9400;

        if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
            getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
                port = ntohs(sa.sin_port);
        if (fd >= 0)
                close(fd);
        return port;
}

static int measure_latency(const char *scratch, const char *fenced, const char *pins,
                           const char *nodes, bool *ret_pass)
{
        char cfg[600], lab[600], sock[600], state[600], text[3000], node[600];
        const char *uuid = "GPU-be9c0000-0000-4000-8000-000000000001";
        double opens[GRANTS], closes[GRANTS];
        int p[2], status, n = 0;
        pid_t daemon, child;

        snprintf(cfg, sizeof cfg, "%s/gpukeeper.yaml", scratch);
        snprintf(lab, sizeof lab, "%s/lab.json", scratch);
        snprintf(sock, sizeof sock, "%s/gk.sock", scratch);
        snprintf(state, sizeof state, "%s/state", scratch);
        snprintf(node, sizeof node, "%s/nvidia1", nodes);
        mkdir(state, 0700);
        snprintf(text, sizeof text,
                 "socket: %s\nstate_dir: %s\nnvml_library: %s\nlog_level: warning\n"
                 "http:\n  listen: 127.0.0.1:%d\n"
                 "enforcement:\n  mode: strict\n  fence_cgroup: %s\n  fence_pin_dir: %s\n",
                 sock, state, BENCH_SIM_LIBRARY, free_port(), fenced, pins);
        if (write_file(cfg, text) < 0 || write_file(lab, LAB) < 0)
                return -EIO;
        daemon = fork();
        if (daemon == 0) {
                setenv("GPUKEEPER_SIM_LAB", lab, 1);
                execl(BENCH_GPUKEEPERD, "gpukeeperd", "--config", cfg, (char *)NULL);
                _exit(127);
        }
        for (int i = 0; i < 200 && access(sock, F_OK) < 0; i++)
                usleep(50000);
        if (access(sock, F_OK) < 0) {
                kill(daemon, SIGTERM);
                waitpid(daemon, &status, 0);
                fprintf(stderr, "bench-fence: gpukeeperd did not start\n");
                return -EIO;
        }
        /* The uid's socket access: the socket is 0666 by design. */
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        child = fork();
        if (child == 0) {
                close(p[0]);
                if (join(fenced) < 0 || become_user() < 0)
                        _exit(1);
                _exit(latency_child(sock, node, uuid, p[1]));
        }
        close(p[1]);
        while (n < GRANTS) {
                double pair[2];

                if (read(p[0], pair, sizeof pair) != sizeof pair)
                        break;
                opens[n] = pair[0] / 1e6;
                closes[n] = pair[1] / 1e6;
                n++;
        }
        close(p[0]);
        waitpid(child, &status, 0);
        kill(daemon, SIGTERM);
        waitpid(daemon, NULL, 0);
        if (n < GRANTS) {
                fprintf(stderr, "bench-fence: the latency client stopped after %d grants (exit %d)\n",
                        n, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
                return -EIO;
        }
        printf("\n%-44s %5s %9s %9s %9s\n", "grant/release → fence (ms), from the request", "n",
               "p50", "p99", "max");
        {
                double o50 = pct(opens, GRANTS, 0.5), o99 = pct(opens, GRANTS, 0.99),
                       omax = opens[GRANTS - 1];
                double c50 = pct(closes, GRANTS, 0.5), c99 = pct(closes, GRANTS, 0.99),
                       cmax = closes[GRANTS - 1];

                printf("%-44s %5d %9.3f %9.3f %9.3f\n", "lease.acquire sent → open() allowed",
                       GRANTS, o50, o99, omax);
                printf("%-44s %5d %9.3f %9.3f %9.3f\n", "lease.release sent → open() refused",
                       GRANTS, c50, c99, cmax);
                *ret_pass = o99 < 100 && c99 < 100;
                printf("verdict: p99 < 100 ms: %s\n", *ret_pass ? "PASS" : "MISSED");
        }
        return 0;
}

int main(void)
{
        char scratch[256], plain[300], fenced[300], lease[400], bpffs[300], pins[320], nodes[300],
            why[1024];
        const char *names[] = {"nvidia0", "nvidia1", "nvidiactl"};
        const unsigned minors[] = {0, 1, 255};
        char paths[3][400];
        Worker w_plain, w_fenced, w_lease;
        Fence *f = NULL;
        bool taken_over, pass_latency = false;
        double plain_ns[ROUNDS], allowed_ns[ROUNDS], denied_ns[ROUNDS], control_ns[ROUNDS],
            lease_ns[ROUNDS], lease_denied_ns[ROUNDS];
        int r, rc = BENCH_EXIT_PASS;

        if (!bench_need_root("cgroups, bpffs and mknod"))
                return BENCH_EXIT_ERROR;
        if (bench_scratch_make(scratch, sizeof scratch) < 0)
                return BENCH_EXIT_ERROR;
        chmod(scratch, 0755);
        snprintf(plain, sizeof plain, CGROUP2 "/gk-bench-fence-%d-plain", (int)getpid());
        snprintf(fenced, sizeof fenced, CGROUP2 "/gk-bench-fence-%d", (int)getpid());
        snprintf(lease, sizeof lease, "%s/" ISOLATE_LEASE_CGROUPS_DIR, fenced);
        snprintf(bpffs, sizeof bpffs, "%s/bpffs", scratch);
        snprintf(pins, sizeof pins, "%s/gk", bpffs);
        snprintf(nodes, sizeof nodes, "%s/dev", scratch);
        if (mkdir(plain, 0755) < 0 || mkdir(fenced, 0755) < 0 || mkdir(bpffs, 0700) < 0 ||
            mount("bpf", bpffs, "bpf", 0, "mode=0700") < 0 || mkdir(nodes, 0755) < 0) {
                fprintf(stderr, "bench-fence: setup failed: %m\n");
                return BENCH_EXIT_ERROR;
        }
        chmod(nodes, 0755);
        for (size_t i = 0; i < 3; i++) {
                snprintf(paths[i], sizeof paths[i], "%s/%s", nodes, names[i]);
                mknod(paths[i], S_IFCHR | 0666, makedev(195, minors[i]));
                chmod(paths[i], 0666);
        }

        /* The fence on "fenced": uid BENCH_UID holds GPU 1 (not GPU 0). */
        r = fence_open(fenced, pins, &f, &taken_over, why, sizeof why);
        if (r >= 0) {
                PolicyFenceDev *guarded = NULL;
                size_t n = 0;
                const PolicyFenceRule rule = {BENCH_UID, 195, 1};

                r = policy_fence_guarded(NULL, 0, 0, &guarded, &n);
                if (r >= 0)
                        r = fence_sync_guarded(f, guarded, n);
                free(guarded);
                if (r >= 0)
                        r = fence_sync_allow(f, &rule, 1);
                if (r >= 0)
                        r = fence_attach(f, why, sizeof why);
        }
        /* A run lease's cgroup below it, holding GPU 1; this process moves
         * back out of it at once. */
        if (r >= 0)
                r = isolate_lease_cgroup_create(ISOLATE_CGROUP_CGROUPFS, lease, 1, getpid(),
                                                fence_guarded_fd(f),
                                                (const PolicyFenceDev[]){{195, 1}}, 1, NULL, why,
                                                sizeof why);
        if (r >= 0)
                r = join(CGROUP2);
        if (r < 0) {
                fprintf(stderr, "bench-fence: cannot set up the fence: %s\n", why);
                rc = BENCH_EXIT_ERROR;
                goto cleanup;
        }
        snprintf(lease, sizeof lease, "%s/" ISOLATE_LEASE_CGROUPS_DIR "/lease-1", fenced);

        {
                const char *pp[] = {paths[1], paths[0]};
                const int want_plain[] = {ENXIO, ENXIO};
                const char *pf[] = {paths[1], paths[0], paths[2]};
                const int want_fenced[] = {ENXIO, EPERM, ENXIO};
                const int want_lease[] = {ENXIO, EPERM};

                if (worker_start(plain, pp, want_plain, 2, &w_plain) < 0 ||
                    worker_start(fenced, pf, want_fenced, 3, &w_fenced) < 0 ||
                    worker_start(lease, pp, want_lease, 2, &w_lease) < 0) {
                        rc = BENCH_EXIT_ERROR;
                        goto cleanup;
                }
                for (int i = 0; i < ROUNDS; i++) {
                        double a[2], b[3], c[2];

                        if (worker_round(&w_plain, a, 2) < 0 || worker_round(&w_fenced, b, 3) < 0 ||
                            worker_round(&w_lease, c, 2) < 0) {
                                fprintf(stderr, "bench-fence: an open did not fail as expected "
                                                "(allowed ENXIO / refused EPERM)\n");
                                rc = BENCH_EXIT_ERROR;
                                break;
                        }
                        plain_ns[i] = a[0];
                        allowed_ns[i] = b[0];
                        denied_ns[i] = b[1];
                        control_ns[i] = b[2];
                        lease_ns[i] = c[0];
                        lease_denied_ns[i] = c[1];
                }
                worker_stop(&w_plain);
                worker_stop(&w_fenced);
                worker_stop(&w_lease);
        }
        if (rc == BENCH_EXIT_PASS) {
                double base = pct(plain_ns, ROUNDS, 0.5);
                struct {
                        const char *what;
                        double *v;
                        bool target;
                } rows[] = {
                        {"no program (baseline), 195:1 → ENXIO", plain_ns, false},
                        {"fence, leased 195:1 → ENXIO (allowed)", allowed_ns, true},
                        {"fence, unleased 195:0 → EPERM (denied)", denied_ns, true},
                        {"fence, nvidiactl 195:255 → ENXIO", control_ns, true},
                        {"fence + run lease program, 195:1 → ENXIO", lease_ns, false},
                        {"fence + run lease program, 195:0 → EPERM", lease_denied_ns, false},
                };
                bool pass = true;

                double base_min;

                printf("open() of a device node, %d rounds × %d opens each (rounds alternate "
                       "between the cgroups), uid %d\n", ROUNDS, OPENS_PER_ROUND, BENCH_UID);
                printf("%-44s %8s %8s %8s %7s %8s %7s\n", "ns per open()", "min", "median", "added",
                       "ratio", "med+", "med x");
                base_min = pct(plain_ns, ROUNDS, 0.0);
                base = pct(plain_ns, ROUNDS, 0.5);
                for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                        double mn = pct(rows[i].v, ROUNDS, 0.0), med = pct(rows[i].v, ROUNDS, 0.5);
                        /* The verdict uses the least disturbed round of each
                         * (other work on the machine only ever adds time). */
                        bool ok = mn / base_min <= 1.2 && mn - base_min < 2000;

                        printf("%-44s %8.0f %8.0f %8.0f %6.2fx %8.0f %6.2fx%s\n", rows[i].what, mn,
                               med, mn - base_min, mn / base_min, med - base, med / base,
                               rows[i].target ? (ok ? "  PASS" : "  MISSED") : "");
                        if (rows[i].target && !ok)
                                pass = false;
                }
                printf("verdict: fence ≤ 1.2× and < 2 µs added: %s\n", pass ? "PASS" : "MISSED");
                if (!pass)
                        rc = BENCH_EXIT_MISSED;
        }
        /* Part 2 reuses the "fenced" cgroup with the daemon's own fence. */
        fence_close(f);
        f = NULL;
        (void)fence_remove(fenced, pins, why, sizeof why);
        if (rc != BENCH_EXIT_ERROR) {
                char pins2[340];

                snprintf(pins2, sizeof pins2, "%s/daemon", bpffs);
                if (measure_latency(scratch, fenced, pins2, nodes, &pass_latency) < 0)
                        rc = BENCH_EXIT_ERROR;
                else if (!pass_latency && rc == BENCH_EXIT_PASS)
                        rc = BENCH_EXIT_MISSED;
                (void)fence_remove(fenced, pins2, why, sizeof why);
        }

cleanup:
        fence_close(f);
        (void)fence_remove(fenced, pins, why, sizeof why);
        {
                char p1[600];

                snprintf(p1, sizeof p1, "%s/" ISOLATE_LEASE_CGROUPS_DIR "/lease-1", fenced);
                rmdir(p1);
                snprintf(p1, sizeof p1, "%s/" ISOLATE_LEASE_CGROUPS_DIR, fenced);
                rmdir(p1);
        }
        rmdir(fenced);
        rmdir(plain);
        umount2(bpffs, MNT_DETACH);
        bench_scratch_remove(scratch);
        return rc;
}
