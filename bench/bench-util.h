/* Shared pieces of the benchmarks in bench/: the real processes a bench lab
 * lists, writing that lab with sim/gen-lab.py, a scratch directory, starting
 * and stopping a gpukeeperd of our own, clocks and the statistics every
 * benchmark prints. Messages name the program (program_invocation_short_name).
 *
 * Benchmarks are programs, not tests: they report on stdout and return 0 when
 * they measured and met their target, 2 when they measured and missed it, and
 * 1 when they could not measure at all. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "basic/macro.h"

/* The benchmark lab of the issue: 8 GPUs, the last 2 in MIG mode with
 * 7 x 1g.10gb instances each, and 256 processes spread over them. */
#define BENCH_LAB_GPUS 8
#define BENCH_LAB_MIG_GPUS 2
#define BENCH_LAB_MIG_INSTANCES 7
#define BENCH_LAB_PROCESSES 256

#define BENCH_EXIT_PASS 0
#define BENCH_EXIT_ERROR 1
#define BENCH_EXIT_MISSED 2

/* Real processes that do nothing but pause(). Each dies with the benchmark
 * (PR_SET_PDEATHSIG) even if the benchmark is killed before it cleans up. */
typedef struct BenchChildren {
        pid_t *pids;
        size_t n;
} BenchChildren;

/* Fork `n` pausing children. Each starts a session of its own (setsid), so
 * it has no controlling terminal: nothing the daemon writes to a process's
 * terminal reaches ours. Returns 0 or -errno; on failure the children
 * already started are stopped again. */
int bench_children_start(size_t n, BenchChildren *ret);

/* The same, but child i first becomes uids[i] / gids[i] (no supplementary
 * groups), so the processes have real owners other than us. Needs root.
 * A child that cannot change its credentials exits at once; the caller
 * checks the owners it expects (in /proc, or in a snapshot). */
int bench_children_start_as(size_t n, const uid_t *uids, const gid_t *gids, BenchChildren *ret);

/* SIGKILL and reap every child. Accepts a zeroed struct. */
void bench_children_stop(BenchChildren *c);

/* A scratch directory under $TMPDIR (default /tmp), removed recursively by
 * bench_scratch_remove. Returns 0 or -errno; the path goes to ret (PATH_MAX). */
int bench_scratch_make(char *ret, size_t len);
void bench_scratch_remove(const char *path);

/* Run argv (argv[0] looked up in PATH) and wait for it; with `quiet` its
 * stdout and stderr go to /dev/null. Returns 0 when it exited 0, -EPROTO
 * when it failed, -errno when it could not be started. */
int bench_run(char *const argv[], bool quiet);

/* A Linux user the benchmark made (or found) for itself. */
typedef struct BenchUser {
        char name[32];
        uid_t uid;
        gid_t gid;
        char *home; /* from passwd */
} BenchUser;

/* Make sure the users PREFIX00, PREFIX01, ... (n of them, n <= 100) exist,
 * each with a user group of its name and /usr/sbin/nologin as its shell,
 * and fill users[0..n). Without `home_base` they have no home directory
 * (/nonexistent) and one that already exists is reused. With it, each gets
 * a new home HOME_BASE/NAME (useradd -m), and one that already exists (left
 * over from a killed run, its home elsewhere) is first removed with
 * userdel -r. Needs root. Returns 0, or -errno after a message (the users
 * made so far are left to bench_users_remove). */
int bench_users_make(const char *prefix, size_t n, const char *home_base, BenchUser *users);

/* userdel (-r: with the home directory, when `with_home`) every named entry
 * of users[0..n) and free their strings; failures get a message. The names
 * are the benchmark's own, so it removes them whether it made them or found
 * them. Accepts entries never filled (empty name). */
void bench_users_remove(BenchUser *users, size_t n, bool with_home);

/* Write the benchmark lab listing `pids` to `lab_path` with
 * `python3 GEN_LAB --gpus 8 --mig 2 --pids-from FILE --out LAB`; the PID file
 * is written beside the lab. Returns 0, or -errno / -EPROTO when the
 * generator fails (its stderr goes to ours). */
int bench_write_lab(const char *gen_lab, const char *scratch, const pid_t *pids, size_t n,
                    const char *lab_path);

/* Write a lab of `gpus` whole GPUs, the last `mig` of them in MIG mode, and
 * no processes: `python3 GEN_LAB --gpus G --mig M --out LAB`. Returns as
 * bench_write_lab. */
int bench_write_plain_lab(const char *gen_lab, unsigned gpus, unsigned mig, const char *lab_path);

/* Write the daemon configuration the benchmarks use: `socket` and
 * `state_dir` as given, the NVML simulator `library`, sample_interval 2s,
 * log_level info. Returns 0 or -1 after a message. */
int bench_write_daemon_config(const char *path, const char *socket_path, const char *state_dir,
                              const char *library);

/* Start `gkd --config CONFIG` with stdout and stderr in LOG and stdin on
 * /dev/null; the daemon gets SIGTERM if we die first. The lab comes from
 * $GPUKEEPER_SIM_LAB, which the caller sets. Returns its pid or -1 after a
 * message. */
pid_t bench_daemon_start(const char *gkd, const char *config, const char *log);

/* Wait (up to 15 s) until the daemon accepts connections on `socket_path`.
 * Returns 0, or -1 after a message when it exits (then *ret_reaped is set:
 * do not stop it) or does not listen in time. */
int bench_daemon_wait_ready(pid_t pid, const char *socket_path, bool *ret_reaped);

/* SIGTERM, wait up to 5 s, then SIGKILL. Returns the wait status (0 for a
 * clean exit), or -1 when it had to be killed. */
int bench_daemon_stop(pid_t pid);

/* Copy the daemon's log to stderr, for when it misbehaves. */
void bench_dump_log(const char *log);

/* CPU time `pid` has used so far, in nanoseconds (first field of
 * /proc/PID/schedstat, which covers its main thread: the daemon has only
 * that one); -1 when it cannot be read. */
int64_t bench_cpu_nsec_of(pid_t pid);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_nsec(void);

/* Summary of a series of samples (any unit). */
typedef struct BenchStats {
        size_t n;
        double p50;
        double p90;
        double mean;
        double min;
        double max;
} BenchStats;

/* Summarise samples[0..n) (n > 0); the array is sorted in place.
 * Percentiles are nearest-rank. */
BenchStats bench_stats(double *samples, size_t n);

/* One aligned row "label  p50  p90  mean  min  max" in the given unit. */
void bench_print_row(const char *label, const BenchStats *s);
void bench_print_header(const char *unit);

/* Parse a positive decimal count for option `name`; false (with a message on
 * stderr) when `s` is not one or exceeds `max`. */
bool bench_parse_count(const char *name, const char *s, size_t max, size_t *ret);
