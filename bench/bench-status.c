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
#include <getopt.h>
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
        enum { OPT_GKD = 0x100, OPT_CLI, OPT_LIBRARY, OPT_GEN_LAB, OPT_COUNT };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "gpukeeperd", required_argument, NULL, OPT_GKD },
                { "gpukeeper", required_argument, NULL, OPT_CLI },
                { "library", required_argument, NULL, OPT_LIBRARY },
                { "gen-lab", required_argument, NULL, OPT_GEN_LAB },
                { "count", required_argument, NULL, OPT_COUNT },
                {},
        };
        int c;

        *o = (Options){
                .gkd = BENCH_GPUKEEPERD,
                .cli = BENCH_GPUKEEPER,
                .library = BENCH_SIM_LIBRARY,
                .gen_lab = BENCH_GEN_LAB,
                .count = DEFAULT_COUNT,
        };
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case OPT_GKD:
                        o->gkd = optarg;
                        break;
                case OPT_CLI:
                        o->cli = optarg;
                        break;
                case OPT_LIBRARY:
                        o->library = optarg;
                        break;
                case OPT_GEN_LAB:
                        o->gen_lab = optarg;
                        break;
                case OPT_COUNT:
                        if (!bench_parse_count("--count", optarg, 100000, &o->count))
                                return -1;
                        break;
                default:
                        return -1;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "bench-status: unexpected argument '%s'\n", argv[optind]);
                return -1;
        }
        return 1;
}

/* The command lines compared, baseline first. */
enum { CMD_TRUE, CMD_STATUS, CMD_STATUS_JSON, CMD_MAX };

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
        size_t done[CMD_MAX] = { 0 };

        for (size_t block = 0; done[CMD_TRUE] < o->count; block++) {
                size_t n = MIN((size_t)BLOCK, o->count - done[CMD_TRUE]);

                for (size_t j = 0; j < CMD_MAX; j++) {
                        size_t cmd = (block + j) % CMD_MAX;

                        for (size_t i = 0; i < n; i++) {
                                if (spawn_timed(argvs[cmd], "/dev/null", &wall[cmd][done[cmd]],
                                                &cpu[cmd][done[cmd]]) < 0)
                                        return -1;
                                done[cmd]++;
                        }
                }
        }
        return 0;
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
        BenchStats w[CMD_MAX], c[CMD_MAX];

        for (size_t k = 0; k < CMD_MAX; k++) {
                w[k] = bench_stats(wall[k], o->count);
                c[k] = bench_stats(cpu[k], o->count);
        }
        printf("\n  wall time, spawn to reap\n");
        bench_print_header("us");
        for (size_t k = 0; k < CMD_MAX; k++)
                bench_print_row(command_label[k], &w[k]);
        printf("\n  CPU time of the command itself (user + system, wait4)\n");
        bench_print_header("us");
        for (size_t k = 0; k < CMD_MAX; k++)
                bench_print_row(command_label[k], &c[k]);
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

static int run(const Options *o, const char *scratch, const pid_t *pids, size_t n_pids)
{
        char lab[PATH_MAX], config[PATH_MAX], socket_path[PATH_MAX], state_dir[PATH_MAX],
                log[PATH_MAX], json_out[PATH_MAX];
        _cleanup_free_ double *all = NULL;
        double *wall[CMD_MAX], *cpu[CMD_MAX], check_wall, check_cpu;
        int64_t cpu_before, cpu_after;
        bool reaped = false;
        pid_t daemon;
        int r, status, ret = BENCH_EXIT_ERROR;

        snprintf(lab, sizeof(lab), "%s/lab.json", scratch);
        snprintf(config, sizeof(config), "%s/gpukeeper.yaml", scratch);
        snprintf(socket_path, sizeof(socket_path), "%s/gpukeeper.sock", scratch);
        snprintf(state_dir, sizeof(state_dir), "%s/state", scratch);
        snprintf(log, sizeof(log), "%s/gpukeeperd.log", scratch);
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

        r = bench_write_lab(o->gen_lab, scratch, pids, n_pids, lab);
        if (r < 0) {
                fprintf(stderr, "bench-status: %s could not write the lab: %s\n", o->gen_lab,
                        strerror(-r));
                return BENCH_EXIT_ERROR;
        }
        if (mkdir(state_dir, 0700) < 0) {
                fprintf(stderr, "bench-status: mkdir %s: %s\n", state_dir, strerror(errno));
                return BENCH_EXIT_ERROR;
        }
        if (bench_write_daemon_config(config, socket_path, state_dir, o->library) < 0)
                return BENCH_EXIT_ERROR;
        if (setenv("GPUKEEPER_SIM_LAB", lab, 1) < 0) {
                perror("bench-status: setenv");
                return BENCH_EXIT_ERROR;
        }

        daemon = bench_daemon_start(o->gkd, config, log);
        if (daemon < 0)
                return BENCH_EXIT_ERROR;
        if (bench_daemon_wait_ready(daemon, socket_path, &reaped) < 0)
                goto stop;
        /* The first snapshot is taken before the socket opens; check it
         * holds the whole lab before timing anything. */
        if (spawn_timed((char *const[]){ (char *)o->cli, "--socket", socket_path, "status",
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
        cpu_before = bench_cpu_nsec_of(daemon);
        if (measure(o, socket_path, wall, cpu) < 0)
                goto stop;
        cpu_after = bench_cpu_nsec_of(daemon);
        report(o, wall, cpu, cpu_before >= 0 && cpu_after >= cpu_before ? cpu_after - cpu_before
                                                                         : -1);
        printf("bench-status: measured (no target set)\n");
        ret = BENCH_EXIT_PASS;
stop:
        if (reaped) {
                bench_dump_log(log);
                return BENCH_EXIT_ERROR;
        }
        status = bench_daemon_stop(daemon);
        if (status != 0) {
                fprintf(stderr, "bench-status: gpukeeperd did not stop cleanly (status %d)\n",
                        status);
                bench_dump_log(log);
                ret = BENCH_EXIT_ERROR;
        } else if (ret != BENCH_EXIT_PASS)
                bench_dump_log(log);
        return ret;
}

int main(int argc, char **argv)
{
        char scratch[PATH_MAX] = "";
        BenchChildren children = { 0 };
        Options o;
        int r, ret = BENCH_EXIT_ERROR;

        r = parse_argv(argc, argv, &o);
        if (r <= 0)
                return r == 0 ? EXIT_SUCCESS : 64;

        r = bench_scratch_make(scratch, sizeof(scratch));
        if (r < 0) {
                fprintf(stderr, "bench-status: cannot make a scratch directory: %s\n",
                        strerror(-r));
                return BENCH_EXIT_ERROR;
        }
        r = bench_children_start(BENCH_LAB_PROCESSES, &children);
        if (r < 0)
                fprintf(stderr, "bench-status: cannot start %d processes: %s\n",
                        BENCH_LAB_PROCESSES, strerror(-r));
        else
                ret = run(&o, scratch, children.pids, children.n);
        bench_children_stop(&children);
        bench_scratch_remove(scratch);
        return ret;
}
