/* Shared pieces of the benchmarks in bench/: the real processes a bench lab
 * lists, writing that lab with sim/gen-lab.py, a scratch directory, starting
 * and stopping a gpukeeperd of our own, the interleaved timing of several
 * sides, an echo child for the bare transport, clocks, the statistics and
 * verdict lines every benchmark prints, and option parsing. Messages name
 * the program (program_invocation_short_name).
 *
 * Benchmarks are programs, not tests: they report on stdout and return 0 when
 * they measured and met their target, 2 when they measured and missed it, and
 * 1 when they could not measure at all. */
#pragma once

#include <limits.h>
#include <sched.h>
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

/* A lab of another size (the scaled runs of issue 16: 64 GPUs, 4,096
 * processes): `gpus` GPUs, the last `mig_gpus` in MIG mode with 7
 * instances each, and `processes` real processes spread over them. */
typedef struct BenchLabShape {
        unsigned gpus;
        unsigned mig_gpus;
        size_t processes;
} BenchLabShape;
#define BENCH_LAB_SHAPE_DEFAULT \
        ((BenchLabShape){ BENCH_LAB_GPUS, BENCH_LAB_MIG_GPUS, BENCH_LAB_PROCESSES })
/* gen-lab.py's and the simulator's limit. */
#define BENCH_LAB_MAX_GPUS 64
#define BENCH_LAB_MAX_PROCESSES 16384

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

/* Wait (up to 10 s) until child n runs as uids[n] (the real uid in
 * /proc/PID/status), for every n: a /proc cache remembers an owner from the
 * first snapshot that sees a process, so none may come before the children's
 * setresuid. False after a message when one does not get there. */
bool bench_children_wait_owners(const BenchChildren *c, const uid_t *uids);

/* SIGKILL and reap every child. Accepts a zeroed struct. */
void bench_children_stop(BenchChildren *c);

/* A scratch directory under $TMPDIR (default /tmp), removed recursively by
 * bench_scratch_remove. Returns 0, or -errno after a message; the path goes
 * to ret (PATH_MAX). */
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
/* The same for a lab of `shape`'s GPUs (shape.processes is not used: the
 * lab lists pids[0..n)). */
int bench_write_lab_shape(const char *gen_lab, const char *scratch, BenchLabShape shape,
                          const pid_t *pids, size_t n, const char *lab_path);

/* Where the lab's processes belong to users the benchmark makes, those are
 * BENCH_USER_PREFIX00, BENCH_USER_PREFIX01, ... */
#define BENCH_USER_PREFIX "gkbench-"

/* Start the lab's BENCH_LAB_PROCESSES processes into *children and write
 * the lab listing them to SCRATCH/lab.json, whose path goes to ret_lab
 * (PATH_MAX; `scratch` takes the PID file too). With `users`, first make
 * the n_users users BENCH_USER_PREFIX00 .. (bench_users_make, no home; this
 * needs root): process n runs as users[owner_of(n)], and the lab is written
 * once every one does. Without, the processes are ours. Returns 0, or -1
 * after a message; either way finish with bench_lab_stop. */
int bench_lab_start(const char *gen_lab, const char *scratch, BenchUser *users, size_t n_users,
                    size_t (*owner_of)(size_t n), BenchChildren *children, char *ret_lab);
/* The same with a lab of `shape` (shape.processes processes). */
int bench_lab_start_shape(const char *gen_lab, const char *scratch, BenchLabShape shape,
                          BenchUser *users, size_t n_users, size_t (*owner_of)(size_t n),
                          BenchChildren *children, char *ret_lab);

/* Undo bench_lab_start: stop the children, then remove users[0..n_users)
 * (userdel, no home) or, with `keep`, leave them in place and only free
 * their strings. */
void bench_lab_stop(BenchChildren *children, BenchUser *users, size_t n_users, bool keep);

/* True when we run as root; otherwise false after the message
 * "needs root (WHY)". */
bool bench_need_root(const char *why);

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

/* A gpukeeperd of a benchmark, all of it in the scratch directory. */
typedef struct BenchDaemon {
        char state_dir[PATH_MAX];   /* SCRATCH/state */
        char socket_path[PATH_MAX]; /* SCRATCH/gpukeeper.sock */
        char config[PATH_MAX];      /* SCRATCH/gpukeeper.yaml */
        char log[PATH_MAX];         /* SCRATCH/gpukeeperd.log */
        pid_t pid;                  /* 0: not started */
        bool reaped;                /* it exited during the start */
} BenchDaemon;

/* Make the state directory, write the configuration
 * (bench_write_daemon_config, NVML library `library`), start `gkd` on the
 * lab `lab` ($GPUKEEPER_SIM_LAB) and wait until it listens. Returns 0, or -1
 * after a message; either way, finish with bench_daemon_end. */
int bench_daemon_launch(const char *gkd, const char *library, const char *scratch,
                        const char *lab, BenchDaemon *ret);

/* Stop the daemon and settle the benchmark's exit code `ret`: it becomes
 * BENCH_EXIT_ERROR when the daemon never started, died during the start or
 * did not stop cleanly. The log goes to stderr whenever the result is
 * BENCH_EXIT_ERROR and the daemon ran. Returns the exit code. */
int bench_daemon_end(BenchDaemon *d, int ret);

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

/* Summarise samples[0..n) as bench_stats does and print them as one row
 * (bench_print_row); returns the summary. */
BenchStats bench_print_stats(const char *label, double *samples, size_t n);

/* One aligned target line "  WHAT   PASS|FAIL". */
void bench_print_verdict(const char *what, bool pass);

/* The ratio of `side` to `baseline`, p50 and mean, against `limit`: the
 * line "ratio NAME: p50 R, mean R" and a target line for each. Returns
 * true when both are within the limit. */
bool bench_print_ratio(const char *name, const BenchStats *side, const BenchStats *baseline,
                       double limit);

/* The last line, "PROGRAM: PASS" or "PROGRAM: FAIL"; returns the exit
 * code for it (BENCH_EXIT_PASS or BENCH_EXIT_MISSED). */
int bench_print_result(bool pass);

/* One side of an interleaved measurement. */
typedef struct BenchSide {
        /* Take sample i (0 .. total - 1): time one run and store its time in
         * *ret_sample (more values of the same run go wherever userdata says,
         * at index i). Returns 0, or -1 after a message to stop. */
        int (*sample)(void *userdata, size_t i, double *ret_sample);
        /* Optional: called before (end false) and after (end true) every
         * block of this side, outside the timed runs. */
        void (*block)(void *userdata, bool end);
        void *userdata;
        double *samples; /* `total` entries: sample i is stored at [i] */
} BenchSide;

/* Take `total` samples of each of sides[0..n) in blocks of `block` per side
 * (the last block shorter), the sides one after the other, rotating which
 * goes first (block k starts with side k mod n): drift on a busy machine
 * then hits every side alike. Returns 0, or -1 when a sample failed. */
int bench_interleave(const BenchSide *sides, size_t n, size_t total, size_t block);

/* A child that echoes what it reads on its end of an AF_UNIX SOCK_STREAM
 * socketpair, as a minimal event-loop server does: epoll_wait, read, write.
 * It dies with the benchmark (PR_SET_PDEATHSIG) and exits at EOF. */
typedef struct BenchEcho {
        pid_t pid; /* 0: not started */
        int fd;    /* our end */
} BenchEcho;

/* Largest message bench_echo_round_trip takes. */
#define BENCH_ECHO_MAX 4096

/* Fork the echo child. Returns 0 or -errno. */
int bench_echo_start(BenchEcho *ret);

/* How bench_echo_round_trip waits for the echo. */
typedef enum BenchEchoWait {
        BENCH_ECHO_RECV, /* a blocking recv() */
        BENCH_ECHO_POLL, /* poll() for POLLIN, then recv(MSG_DONTWAIT), as the client library does */
} BenchEchoWait;

/* Send buf[0..len) (1 <= len <= BENCH_ECHO_MAX) and read it back, waiting
 * as `wait` says; the time from the send to the last byte back goes to
 * *ret_usec. Returns 0, -EPROTO when what came back differs, or -errno
 * (-ECONNRESET when the child is gone). */
int bench_echo_round_trip(BenchEcho *e, const void *buf, size_t len, BenchEchoWait wait,
                          double *ret_usec);

/* Close our end, SIGKILL and reap the child. Accepts one never started. */
void bench_echo_stop(BenchEcho *e);

/* Where bench-lease runs its two sides of a round trip (the benchmark with
 * its echo child and its client, against the daemon). On a VM a round trip
 * between two CPUs costs a wake-up of the other, idle, virtual CPU through
 * the hypervisor; one on a single CPU a context switch. Left to the
 * scheduler, a forked echo child shares its parent's CPU and gpukeeperd
 * does not, so the two would be timed under different placements. */
typedef enum BenchPlacement {
        BENCH_PLACEMENT_SPLIT, /* us on one CPU, the echo child and the daemon on another */
        BENCH_PLACEMENT_SAME,  /* all on one CPU */
        BENCH_PLACEMENT_FREE,  /* as the scheduler places them */
} BenchPlacement;

/* "split", "same", "free"; -1 for anything else. */
int bench_placement_from_string(const char *s);
const char *bench_placement_to_string(BenchPlacement p);

/* The first two CPUs this process may run on (*ret_second -1 with one). */
int bench_cpus_allowed(int *ret_first, int *ret_second);

/* Give `pid` the CPU mask `set` (sched_setaffinity), each of its threads
 * when `all_threads` (through /proc/PID/task; threads started later inherit
 * their creator's mask). Returns 0 or -errno. */
int bench_set_affinity(pid_t pid, const cpu_set_t *set, bool all_threads);

/* Parse a positive decimal count for option `name`; false (with a message on
 * stderr) when `s` is not one or exceeds `max`. */
bool bench_parse_count(const char *name, const char *s, size_t max, size_t *ret);

/* A long option of a benchmark: --NAME VALUE for a string or a count,
 * --NAME alone for a flag. Build them with the macros below, which check
 * the pointer's type. */
typedef enum BenchOptionType {
        BENCH_OPTION_STRING,
        BENCH_OPTION_COUNT,
        BENCH_OPTION_FLAG,
} BenchOptionType;

typedef struct BenchOption {
        const char *name; /* without the dashes */
        BenchOptionType type;
        union {
                const char **string;
                size_t *count;
                bool *flag;
        };
        size_t max; /* a count: 1 .. max */
} BenchOption;

#define BENCH_STRING(n, p) { .name = (n), .type = BENCH_OPTION_STRING, .string = (p) }
#define BENCH_COUNT(n, p, m) { .name = (n), .type = BENCH_OPTION_COUNT, .count = (p), .max = (m) }
#define BENCH_FLAG(n, p) { .name = (n), .type = BENCH_OPTION_FLAG, .flag = (p) }

/* Most options bench_parse_options takes (besides --help). */
#define BENCH_OPTIONS_MAX 16

/* The options of the benchmarks that interleave two sides in rounds
 * (bench-tick, bench-enforce): each side gets rounds x iterations samples,
 * at most BENCH_ROUNDS_MAX_SAMPLES. */
typedef struct BenchRounds {
        const char *library; /* --library: the NVML simulator */
        const char *gen_lab; /* --gen-lab: sim/gen-lab.py */
        size_t rounds;       /* --rounds */
        size_t iterations;   /* --iterations: per round and side */
} BenchRounds;

#define BENCH_ROUNDS_DEFAULT 20
#define BENCH_ITERATIONS_DEFAULT 100
#define BENCH_ROUNDS_MAX_SAMPLES 1000000

/* Print the help lines of the four options of BenchRounds. */
void bench_rounds_help(void);

/* Parse the four options of BenchRounds into *rounds (defaults first) and
 * extra[0..n_extra) as bench_parse_options does; bad usage as well when
 * rounds x iterations exceeds BENCH_ROUNDS_MAX_SAMPLES. Returns as
 * bench_parse_options. */
int bench_parse_rounds(int argc, char **argv, BenchRounds *rounds, const BenchOption *extra,
                       size_t n_extra, void (*help)(void));

/* Parse argv against opts[0..n) (n <= BENCH_OPTIONS_MAX) and --help/-h,
 * storing each value given; what is not given keeps the caller's default.
 * Returns 1 to run, 0 after --help (help() printed it), -1 after a message
 * on bad usage (unknown option, bad count, an argument left over). */
int bench_parse_options(int argc, char **argv, const BenchOption *opts, size_t n,
                        void (*help)(void));
