/* bench-status: wall time of `gpukeeper status` and `gpukeeper status --json`
 * as a user sees it, against the cost of starting any process at all,
 * measured in the same run.
 *
 * gpukeeperd runs with the benchmark lab (8 GPUs, 2 MIG x 7, 256 real
 * processes, as bench-tick) from a scratch directory, sampling every 2 s.
 * Each sample is one posix_spawn of the command with stdout on /dev/null,
 * timed until waitpid returns; the baseline spawns /bin/true the same way.
 * The three commands run interleaved in blocks, rotating which goes first.
 * The issue sets no target for status: the numbers are recorded as they are. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-util.h"

#define DEFAULT_COUNT 200
#define BLOCK 10

extern char **environ;

typedef struct Options {
        const char *gkd;
        const char *cli;
        const char *library;
        const char *gen_lab;
        size_t count;
} Options;

/* Spawn argv with stdout on `out` (a path) and wait. Stores the wall time
 * and the child's own CPU time (user + system, from wait4) in microseconds.
 * Returns 0, or -1 after a message when it could not run or failed. */
static int spawn_timed(char *const argv[], const char *out, double *ret_wall, double *ret_cpu)
{
        posix_spawn_file_actions_t fa;
        struct rusage ru = { 0 };
        uint64_t t0, t1;
        pid_t pid;
        int status = 0, r;

        r = posix_spawn_file_actions_init(&fa);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out,
                                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (r != 0) {
                fprintf(stderr, "bench-status: posix_spawn_file_actions: %s\n", strerror(r));
                return -1;
        }
        t0 = bench_now_nsec();
        r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
        if (r == 0)
                while (wait4(pid, &status, 0, &ru) < 0)
                        if (errno != EINTR) {
                                r = errno;
                                break;
                        }
        t1 = bench_now_nsec();
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0) {
                fprintf(stderr, "bench-status: cannot run %s: %s\n", argv[0], strerror(r));
                return -1;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "bench-status: %s %s failed (wait status %d)\n", argv[0],
                        argv[1] ? argv[1] : "", status);
                return -1;
        }
        *ret_wall = (double)(t1 - t0) / 1000.0;
        *ret_cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
                   (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
        return 0;
}

/* Does the daemon's status (as `gpukeeper status --json` wrote it to
 * `path`) show the whole lab, every process alive and ours? */
static bool status_check(const char *path)
{
        _cleanup_(json_decrefp) json_t *root = NULL;
        size_t processes = 0, wrong = 0, i, k;
        json_error_t error;
        json_t *gpus, *gpu, *procs, *p;

        root = json_load_file(path, 0, &error);
        if (!root) {
                fprintf(stderr, "bench-status: status --json output: %s (line %d)\n", error.text,
                        error.line);
                return false;
        }
        gpus = json_object_get(root, "gpus");
        json_array_foreach(gpus, i, gpu) {
                procs = json_object_get(gpu, "processes");
                json_array_foreach(procs, k, p) {
                        json_t *uid = json_object_get(p, "uid");

                        processes++;
                        if (json_is_true(json_object_get(p, "vanished")) || !json_is_integer(uid) ||
                            json_integer_value(uid) != (json_int_t)getuid())
                                wrong++;
                }
        }
        if (json_array_size(gpus) == BENCH_LAB_GPUS && processes == BENCH_LAB_PROCESSES &&
            wrong == 0)
                return true;
        fprintf(stderr,
                "bench-status: status shows %zu GPUs and %zu processes (%zu vanished or not ours); "
                "expected %d and %d\n",
                json_array_size(gpus), processes, wrong, BENCH_LAB_GPUS, BENCH_LAB_PROCESSES);
        return false;
}

static void help(void)
{
        printf("Usage: bench-status [OPTIONS]\n"
               "\n"
               "Time `gpukeeper status` and `gpukeeper status --json` against a gpukeeperd\n"
               "serving a lab of %d GPUs and %d real processes, against spawning /bin/true.\n"
               "\n"
               "  --gpukeeperd PATH  the daemon (default " BENCH_GPUKEEPERD ")\n"
               "  --gpukeeper PATH   the CLI (default " BENCH_GPUKEEPER ")\n"
               "  --library PATH     NVML simulator library (default " BENCH_SIM_LIBRARY ")\n"
               "  --gen-lab PATH     sim/gen-lab.py (default " BENCH_GEN_LAB ")\n"
               "  --count N          runs of each command (default %d)\n"
               "\n"
               "Exit status: 0 measured, 1 could not measure.\n",
               BENCH_LAB_GPUS, BENCH_LAB_PROCESSES, DEFAULT_COUNT);
}

/* Returns 1 to run, 0 to exit successfully (help), -1 on bad usage. */
static int parse_argv(int argc, char **argv, Options *o)
{
        const BenchOption options[] = {
                BENCH_STRING("gpukeeperd", &o->gkd),
                BENCH_STRING("gpukeeper", &o->cli),
                BENCH_STRING("library", &o->library),
                BENCH_STRING("gen-lab", &o->gen_lab),
                BENCH_COUNT("count", &o->count, 100000),
        };

        *o = (Options){
                .gkd = BENCH_GPUKEEPERD,
                .cli = BENCH_GPUKEEPER,
                .library = BENCH_SIM_LIBRARY,
                .gen_lab = BENCH_GEN_LAB,
                .count = DEFAULT_COUNT,
        };
        return bench_parse_options(argc, argv, options, ELEMENTSOF(options), help);
}

/* The command lines compared, baseline first. */
enum { CMD_TRUE, CMD_STATUS, CMD_STATUS_JSON, CMD_MAX };

/* One command of the measurement: its command line and where the CPU times
 * of its runs go. */
typedef struct Command {
        char *const *argv;
        double *cpu;
} Command;

/* A BenchSide sample: one run of the command, wall time in µs. */
static int sample_command(void *userdata, size_t i, double *ret_wall)
{
        Command *c = userdata;

        return spawn_timed(c->argv, "/dev/null", ret_wall, &c->cpu[i]);
}

/* Run every command o->count times; wall[cmd] and cpu[cmd] receive the samples. */
static int measure(const Options *o, const char *socket_path, double *wall[CMD_MAX],
                   double *cpu[CMD_MAX])
{
        char *const argvs[CMD_MAX][6] = {
                [CMD_TRUE] = { "/bin/true", NULL },
                [CMD_STATUS] = { (char *)o->cli, "--socket", (char *)socket_path, "status", NULL },
                [CMD_STATUS_JSON] = { (char *)o->cli, "--socket", (char *)socket_path, "status",
                                      "--json", NULL },
        };
        Command cmds[CMD_MAX];
        BenchSide sides[CMD_MAX];

        for (size_t k = 0; k < CMD_MAX; k++) {
                cmds[k] = (Command){ .argv = argvs[k], .cpu = cpu[k] };
                sides[k] = (BenchSide){ .sample = sample_command, .userdata = &cmds[k],
                                        .samples = wall[k] };
        }
        return bench_interleave(sides, CMD_MAX, o->count, BLOCK);
}

static const char *const command_label[CMD_MAX] = {
        [CMD_TRUE] = "/bin/true (process start)",
        [CMD_STATUS] = "gpukeeper status",
        [CMD_STATUS_JSON] = "gpukeeper status --json",
};

/* Print the wall and CPU tables, the ratios to the baseline and the
 * daemon's CPU per request (`daemon_ns` over all status requests, or -1). */
static void report(const Options *o, double *wall[CMD_MAX], double *cpu[CMD_MAX],
                   int64_t daemon_ns)
{
        BenchStats w[CMD_MAX];

        printf("\n  wall time, spawn to reap\n");
        bench_print_header("us");
        for (size_t k = 0; k < CMD_MAX; k++)
                w[k] = bench_print_stats(command_label[k], wall[k], o->count);
        printf("\n  CPU time of the command itself (user + system, wait4)\n");
        bench_print_header("us");
        for (size_t k = 0; k < CMD_MAX; k++)
                bench_print_stats(command_label[k], cpu[k], o->count);
        printf("\n");
        for (size_t k = CMD_STATUS; k < CMD_MAX; k++)
                printf("  %-24s wall / true: p50 %.2f, mean %.2f; wall minus true: p50 %.0f us, "
                       "mean %.0f us\n",
                       command_label[k], w[k].p50 / w[CMD_TRUE].p50,
                       w[k].mean / w[CMD_TRUE].mean, w[k].p50 - w[CMD_TRUE].p50,
                       w[k].mean - w[CMD_TRUE].mean);
        if (daemon_ns >= 0)
                printf("  gpukeeperd CPU per status request: %.0f us (mean over %zu requests, "
                       "sampler ticks included)\n",
                       (double)daemon_ns / 1000.0 / (double)(2 * o->count), 2 * o->count);
        else
                printf("  gpukeeperd CPU per status request: n/a (no /proc/PID/schedstat)\n");
}

static int run(const Options *o, const char *scratch, const char *lab)
{
        char json_out[PATH_MAX];
        _cleanup_free_ double *all = NULL;
        double *wall[CMD_MAX], *cpu[CMD_MAX], check_wall, check_cpu;
        int64_t cpu_before, cpu_after;
        BenchDaemon d;
        int ret = BENCH_EXIT_ERROR;

        snprintf(json_out, sizeof(json_out), "%s/status.json", scratch);
        all = calloc(2 * CMD_MAX * o->count, sizeof(double));
        if (!all) {
                fprintf(stderr, "bench-status: out of memory\n");
                return BENCH_EXIT_ERROR;
        }
        for (size_t k = 0; k < CMD_MAX; k++) {
                wall[k] = all + (2 * k) * o->count;
                cpu[k] = all + (2 * k + 1) * o->count;
        }

        if (bench_daemon_launch(o->gkd, o->library, scratch, lab, &d) < 0)
                goto stop;
        /* The first snapshot is taken before the socket opens; check it
         * holds the whole lab before timing anything. */
        if (spawn_timed((char *const[]){ (char *)o->cli, "--socket", d.socket_path, "status",
                                         "--json", NULL },
                        json_out, &check_wall, &check_cpu) < 0 ||
            !status_check(json_out))
                goto stop;

        printf("bench-status: gpukeeperd %s, lab of %d GPUs (%d in MIG mode), %d real "
               "processes, sample_interval 2s\n",
               o->gkd, BENCH_LAB_GPUS, BENCH_LAB_MIG_GPUS, BENCH_LAB_PROCESSES);
        printf("bench-status: %zu runs of each command, interleaved in blocks of %d, stdout to "
               "/dev/null\n",
               o->count, BLOCK);
        cpu_before = bench_cpu_nsec_of(d.pid);
        if (measure(o, d.socket_path, wall, cpu) < 0)
                goto stop;
        cpu_after = bench_cpu_nsec_of(d.pid);
        report(o, wall, cpu, cpu_before >= 0 && cpu_after >= cpu_before ? cpu_after - cpu_before
                                                                         : -1);
        printf("bench-status: measured (no target set)\n");
        ret = BENCH_EXIT_PASS;
stop:
        return bench_daemon_end(&d, ret);
}

int main(int argc, char **argv)
{
        char scratch[PATH_MAX] = "", lab[PATH_MAX];
        BenchChildren children = { 0 };
        Options o;
        int r, ret = BENCH_EXIT_ERROR;

        r = parse_argv(argc, argv, &o);
        if (r <= 0)
                return r == 0 ? EXIT_SUCCESS : 64;
        if (bench_scratch_make(scratch, sizeof(scratch)) < 0)
                return BENCH_EXIT_ERROR;
        if (bench_lab_start(o.gen_lab, scratch, NULL, 0, NULL, &children, lab) >= 0)
                ret = run(&o, scratch, lab);
        bench_lab_stop(&children, NULL, 0, false);
        bench_scratch_remove(scratch);
        return ret;
}
