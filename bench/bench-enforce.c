/* bench-enforce: what enforcement adds to a sampler tick, against the tick
 * without it, measured in the same run.
 *
 * The lab is the issue's: 8 A100s, the last 2 in MIG mode with 7 x 1g.10gb
 * instances each, and 256 real processes (children that pause()) owned by
 * 40 real users, gkbench-00 .. gkbench-39, which the benchmark makes with
 * useradd when they are missing and removes at the end. gen-lab.py places
 * process n on device n % 20 (the 6 whole GPUs, then the 14 instances), so
 * the owners are chosen by that position:
 *
 *  - 16 devices are leased, one each to gkbench-00 .. 15 (manual leases in
 *    the store): the 6 whole GPUs, all 7 instances of GPU 6 and 3 of GPU 7.
 *    On each, 11 processes belong to the lessee, 1 to one of gkbench-32 ..
 *    35, and the 13th (devices 0-15 have 13 processes, 16-19 have 12) to one
 *    of gkbench-16 .. 31: 16 processes on a device their owner did not lease;
 *  - the 4 free instances of GPU 7 run the 48 processes of gkbench-36 .. 39;
 *  - enforcement.exempt.users names gkbench-32 .. 39 (the daemon looks the
 *    names up every tick; --exempt-as-uids writes their uids instead),
 *    exempt.executables two paths no child runs (so each
 *    would-be violation costs a readlink of /proc/PID/exe), mode enforce,
 *    grace 1h, so the 16 violations stay open, warned and unsignalled.
 *
 * "Tick" is gpu_snapshot_take with a warm ProcCache, as bench-tick times it.
 * "Tick + enforcement" is the same call followed by the daemon's own
 * enforcement_tick() (src/daemon/enforcement.c) on a Daemon built by hand:
 * the configuration loaded from a file by config_load, the store opened by
 * store_open in the scratch directory, the leases loaded by leases_init and
 * the open violations by enforcement_init, as gpukeeperd does at start. The
 * first enforcement tick opens the 16 violations (store writes, alerts; the
 * children have no terminal to write to) and is reported apart; every timed
 * tick after it is the steady state, in which every violation is already
 * tracked and nothing is written to the store. The benchmark checks that: no
 * violation opened or closed, no signal sent, the store's WAL file untouched.
 * Frees of the snapshots are not timed on either side.
 *
 * Target (the issue): tick with enforcement <= 1.3 x tick without (p50 and
 * mean). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "basic/log.h"
#include "basic/proc.h"
#include "basic/time-util.h"
#include "bench-util.h"
#include "daemon/daemon.h"
#include "gpu/inventory.h"
#include "gpu/nvml.h"
#include "store/lease-store.h"
#include "store/store.h"

#define TARGET_RATIO 1.3

#define USERS 40
#define DEVICES 20             /* 6 whole GPUs + 2 x 7 instances: gen-lab's targets */
#define LEASED_DEVICES 16      /* devices 0 .. 15, to users 0 .. 15 */
#define LESSEE_PROCESSES 11    /* ranks 0 .. 10 on a leased device */
#define VIOLATOR_FIRST 16      /* users 16 .. 31: rank 12 on leased device d is user 16 + d */
#define EXEMPT_FIRST 32        /* users 32 .. 39 are exempt by name */
#define VIOLATIONS LEASED_DEVICES
#define FIRST_MIG_INSTANCE_GI 7 /* gen-lab.py: GPU instance ids 7 .. 13 */

typedef struct Options {
        BenchRounds common;
        bool exempt_as_uids;
        bool keep_users;
} Options;

/* The user index of process n (see the top of the file). */
static size_t owner_of(size_t n)
{
        size_t device = n % DEVICES, rank = n / DEVICES;

        if (device >= LEASED_DEVICES)
                return EXEMPT_FIRST + 4 + (device - LEASED_DEVICES);
        if (rank < LESSEE_PROCESSES)
                return device;
        if (rank == LESSEE_PROCESSES)
                return EXEMPT_FIRST + device % 4;
        return VIOLATOR_FIRST + device;
}

/* The uuid of gen-lab target `device` in the snapshot (see the top of the
 * file), and its GPU's; NULL when the snapshot does not have it. */
static const char *device_uuid(const GpuSnapshot *s, size_t device, const char **ret_gpu_uuid)
{
        size_t whole = BENCH_LAB_GPUS - BENCH_LAB_MIG_GPUS, gpu, gi;

        if (device < whole) {
                gpu = device;
                gi = 0;
        } else {
                gpu = whole + (device - whole) / BENCH_LAB_MIG_INSTANCES;
                gi = FIRST_MIG_INSTANCE_GI + (device - whole) % BENCH_LAB_MIG_INSTANCES;
        }
        if (gpu >= s->n_gpus)
                return NULL;
        *ret_gpu_uuid = s->gpus[gpu].uuid;
        if (device < whole)
                return s->gpus[gpu].mig_enabled ? NULL : s->gpus[gpu].uuid;
        for (size_t i = 0; i < s->gpus[gpu].n_instances; i++)
                if (s->gpus[gpu].instances[i].gpu_instance_id == gi)
                        return s->gpus[gpu].instances[i].uuid;
        return NULL;
}

/* Is every one of our processes in the snapshot, on the device gen-lab put
 * it on, owned by the user we made it for? pids[n] is process n. */
static bool snapshot_check(const GpuSnapshot *s, const pid_t *pids, const BenchUser *users)
{
        size_t seen = 0, wrong = 0, instances = 0;

        for (size_t g = 0; g < s->n_gpus; g++) {
                const GpuDevice *d = &s->gpus[g];

                instances += d->n_instances;
                for (size_t k = 0; k < d->n_processes; k++) {
                        const GpuProcess *p = &d->processes[k];
                        const char *on = p->instance >= 0 ? d->instances[p->instance].uuid
                                                          : d->uuid,
                                   *expected = NULL, *gpu_uuid;
                        size_t n = 0;

                        seen++;
                        while (n < BENCH_LAB_PROCESSES && pids[n] != (pid_t)p->pid)
                                n++;
                        if (n < BENCH_LAB_PROCESSES)
                                expected = device_uuid(s, n % DEVICES, &gpu_uuid);
                        if (n == BENCH_LAB_PROCESSES || p->vanished || !p->command ||
                            p->uid != users[owner_of(n)].uid || !expected ||
                            strcmp(expected, on) != 0)
                                wrong++;
                }
        }
        if (s->nvml_available && s->n_gpus == BENCH_LAB_GPUS && s->nvml_errors == 0 &&
            instances == BENCH_LAB_MIG_GPUS * BENCH_LAB_MIG_INSTANCES &&
            seen == BENCH_LAB_PROCESSES && wrong == 0)
                return true;
        fprintf(stderr,
                "bench-enforce: snapshot has %zu GPUs, %zu instances, %zu processes (%zu not "
                "where and whose they should be), %u NVML errors%s%s\n",
                s->n_gpus, instances, seen, wrong, s->nvml_errors, s->message[0] ? ": " : "",
                s->message);
        return false;
}

/* The daemon configuration of the benchmark (see the top of the file). */
static int write_config(const char *path, const char *state_dir, const char *library,
                        const BenchUser *users, bool as_uids)
{
        _cleanup_fclose_ FILE *f = fopen(path, "we");

        if (!f)
                return negative_errno();
        fprintf(f,
                "state_dir: %s\nnvml_library: %s\nsample_interval: 2s\nlog_level: info\n"
                "enforcement:\n  mode: enforce\n  grace: 1h\n  kill_timeout: 10s\n"
                "  root_exempt: true\n  exempt:\n    users: [",
                state_dir, library);
        for (size_t i = EXEMPT_FIRST; i < USERS; i++)
                if (as_uids)
                        fprintf(f, "%s%u", i > EXEMPT_FIRST ? ", " : "", (unsigned)users[i].uid);
                else
                        fprintf(f, "%s%s", i > EXEMPT_FIRST ? ", " : "", users[i].name);
        fprintf(f, "]\n    executables: [/usr/bin/nvidia-smi, /usr/bin/dcgm-exporter]\n");
        if (fflush(f) != 0 || ferror(f))
                return negative_errno();
        return 0;
}

/* One manual lease of `device` to `uid` for 8 hours, written to the store
 * as the daemon's grant writes it. */
static int grant(Store *store, uid_t uid, const char *uuid, const char *gpu_uuid, bool mig)
{
        uint64_t now = now_usec(CLOCK_REALTIME);
        LeaseDevice dev = { 0 };
        StoredLease l = {
                .uid = uid,
                .kind = LEASE_MANUAL,
                .created_usec = now,
                .expires_usec = now + 8 * 3600 * USEC_PER_SEC,
                .devices = &dev,
                .n_devices = 1,
        };

        snprintf(dev.uuid, sizeof(dev.uuid), "%s", uuid);
        snprintf(dev.gpu_uuid, sizeof(dev.gpu_uuid), "%s", gpu_uuid);
        snprintf(dev.profile, sizeof(dev.profile), "%s", mig ? "1g.10gb" : "");
        return store_lease_grant(store, &l, "{\"kind\":\"manual\",\"gpus\":1}");
}

/* The WAL file's size and mtime: unchanged means nothing was written. */
static bool wal_stamp(const char *state_dir, struct stat *ret)
{
        char path[PATH_MAX];
        int k = snprintf(path, sizeof(path), "%s/" STORE_DB_NAME "-wal", state_dir);

        return k > 0 && (size_t)k < sizeof(path) && stat(path, ret) == 0;
}

static bool same_stamp(const struct stat *a, const struct stat *b)
{
        return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
               a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* The Daemon of the benchmark: just what enforcement_tick reads. */
typedef struct Bench {
        Daemon d;
        bool leases_loaded;
        bool enforcement_loaded;
} Bench;

static void bench_done(Bench *b)
{
        if (b->enforcement_loaded)
                enforcement_done(&b->d.enforcement);
        if (b->leases_loaded)
                leases_done(&b->d.leases);
        gpu_snapshot_free(b->d.snapshot);
        proc_cache_free(b->d.proc_cache);
        gpu_nvml_close(b->d.nvml);
        store_close(b->d.store);
        config_free(b->d.config);
        free(b->d.user_names);
        *b = (Bench){ 0 };
}

static double usec_between(uint64_t t0, uint64_t t1)
{
        return (double)(t1 - t0) / 1000.0;
}

/* What the two sides of the measurement work on. */
typedef struct Sides {
        Daemon *d;
        double *step_us; /* the enforcement step of the ticks with enforcement */
} Sides;

/* A BenchSide sample: one tick without enforcement, in µs. */
static int time_plain(void *userdata, size_t i, double *ret_usec)
{
        Sides *sides = userdata;
        GpuSnapshot *s = NULL;
        uint64_t t0, t1;
        int r;

        t0 = bench_now_nsec();
        r = gpu_snapshot_take(sides->d->nvml, sides->d->proc_cache, &s);
        t1 = bench_now_nsec();
        if (r < 0) {
                fprintf(stderr, "bench-enforce: gpu_snapshot_take: %s\n", strerror(-r));
                return -1;
        }
        gpu_snapshot_free(s);
        *ret_usec = usec_between(t0, t1);
        return 0;
}

/* A BenchSide sample: one tick with enforcement, in µs (the swap of
 * d->snapshot and the free of the old one untimed); the enforcement step
 * alone goes to step_us[i]. */
static int time_enforced(void *userdata, size_t i, double *ret_usec)
{
        Sides *sides = userdata;
        Daemon *d = sides->d;
        GpuSnapshot *s = NULL, *old;
        uint64_t t0, t1, t2, t3;
        int r;

        t0 = bench_now_nsec();
        r = gpu_snapshot_take(d->nvml, d->proc_cache, &s);
        t1 = bench_now_nsec();
        if (r < 0) {
                fprintf(stderr, "bench-enforce: gpu_snapshot_take: %s\n", strerror(-r));
                return -1;
        }
        old = d->snapshot;
        d->snapshot = s;
        t2 = bench_now_nsec();
        enforcement_tick(d);
        t3 = bench_now_nsec();
        gpu_snapshot_free(old);
        sides->step_us[i] = usec_between(t2, t3);
        *ret_usec = usec_between(t0, t1) + sides->step_us[i];
        return 0;
}

static bool steady(const Daemon *d, const char *when)
{
        const EnforcementState *e = &d->enforcement;

        if (e->violations_opened == VIOLATIONS && e->n_tracked == VIOLATIONS &&
            e->signals_sent == 0)
                return true;
        fprintf(stderr,
                "bench-enforce: %s: %" PRIu64 " violations opened, %zu open, %" PRIu64
                " signals sent; expected %d, %d, 0\n",
                when, e->violations_opened, e->n_tracked, e->signals_sent, VIOLATIONS,
                VIOLATIONS);
        return false;
}

/* Load the configuration, open the store, grant the leases, take the first
 * snapshot and load the daemon's lease and violation state. */
static int setup(const Options *o, const char *scratch, const pid_t *pids,
                 const BenchUser *users, Bench *b, char *state_dir, size_t state_len)
{
        _cleanup_free_ char *error = NULL;
        char config[PATH_MAX], err[256];
        Daemon *d = &b->d;
        int r;

        r = snprintf(state_dir, state_len, "%s/state", scratch);
        if (r < 0 || (size_t)r >= state_len ||
            (r = snprintf(config, sizeof(config), "%s/gpukeeper.yaml", scratch)) < 0 ||
            (size_t)r >= sizeof(config)) {
                fprintf(stderr, "bench-enforce: scratch path too long\n");
                return -1;
        }
        r = write_config(config, state_dir, o->common.library, users, o->exempt_as_uids);
        if (r < 0) {
                fprintf(stderr, "bench-enforce: cannot write %s: %s\n", config, strerror(-r));
                return -1;
        }
        r = config_load(config, &d->config, &error);
        if (r < 0) {
                fprintf(stderr, "bench-enforce: %s\n", error ? error : strerror(-r));
                return -1;
        }
        r = store_open(state_dir, &d->store, &error);
        if (r < 0) {
                fprintf(stderr, "bench-enforce: %s\n", error ? error : strerror(-r));
                return -1;
        }
        r = gpu_nvml_open(o->common.library, &d->nvml, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "bench-enforce: gpu_nvml_open: %s\n", err);
                return -1;
        }
        d->user_names = calloc(1, sizeof(*d->user_names));
        r = d->user_names ? proc_cache_new("/proc", &d->proc_cache) : -ENOMEM;
        if (r >= 0)
                r = gpu_snapshot_take(d->nvml, d->proc_cache, &d->snapshot);
        if (r < 0) {
                fprintf(stderr, "bench-enforce: cannot set up: %s\n", strerror(-r));
                return -1;
        }
        if (!snapshot_check(d->snapshot, pids, users))
                return -1;

        for (size_t dev = 0; dev < LEASED_DEVICES; dev++) {
                const char *gpu_uuid = NULL, *uuid = device_uuid(d->snapshot, dev, &gpu_uuid);

                /* snapshot_check saw every device, so this holds; a lab
                 * without the device must not reach snprintf("%s", NULL). */
                if (!uuid || !gpu_uuid) {
                        fprintf(stderr, "bench-enforce: device %zu is not in the snapshot\n", dev);
                        return -1;
                }
                r = grant(d->store, users[dev].uid, uuid, gpu_uuid,
                          dev >= BENCH_LAB_GPUS - BENCH_LAB_MIG_GPUS);
                if (r < 0) {
                        fprintf(stderr, "bench-enforce: cannot grant a lease on %s: %s\n", uuid,
                                strerror(-r));
                        return -1;
                }
        }
        r = leases_init(d);
        b->leases_loaded = r >= 0;
        if (r >= 0) {
                r = enforcement_init(d);
                b->enforcement_loaded = r >= 0;
        }
        if (r < 0)
                return -1;
        if (d->leases.n_leases != LEASED_DEVICES) {
                fprintf(stderr, "bench-enforce: %zu leases loaded, expected %d\n",
                        d->leases.n_leases, LEASED_DEVICES);
                return -1;
        }
        return 0;
}

/* The measurement proper, with the children running and the lab written. */
static int run(const Options *o, const char *scratch, const char *lab, const pid_t *pids,
               const BenchUser *users)
{
        _cleanup_(bench_done) Bench b = { 0 };
        _cleanup_free_ double *plain_us = NULL, *enforced_us = NULL, *step_us = NULL;
        size_t per_side = o->common.rounds * o->common.iterations;
        char state_dir[PATH_MAX];
        Daemon *d = &b.d;
        struct stat wal_before, wal_after;
        BenchStats plain, enforced;
        double first_us, steady_us;
        uint64_t t0, t1;

        if (setenv("GPUKEEPER_SIM_LAB", lab, 1) < 0) {
                perror("bench-enforce: setenv");
                return BENCH_EXIT_ERROR;
        }
        /* The daemon's log lines (16 new violations, leases restored) would
         * only clutter the report; errors still show. */
        log_set_max_level(LOG_LEVEL_ERROR);
        if (setup(o, scratch, pids, users, &b, state_dir, sizeof(state_dir)) < 0)
                return BENCH_EXIT_ERROR;

        plain_us = calloc(per_side, sizeof(double));
        enforced_us = calloc(per_side, sizeof(double));
        step_us = calloc(per_side, sizeof(double));
        if (!plain_us || !enforced_us || !step_us) {
                fprintf(stderr, "bench-enforce: out of memory\n");
                return BENCH_EXIT_ERROR;
        }

        /* The first enforcement tick opens every violation; the second is
         * the first steady one. Both are reported, neither is counted. */
        t0 = bench_now_nsec();
        enforcement_tick(d);
        t1 = bench_now_nsec();
        first_us = usec_between(t0, t1);
        if (!steady(d, "after the first tick"))
                return BENCH_EXIT_ERROR;
        t0 = bench_now_nsec();
        enforcement_tick(d);
        t1 = bench_now_nsec();
        steady_us = usec_between(t0, t1);
        if (!steady(d, "after the second tick") || !wal_stamp(state_dir, &wal_before)) {
                fprintf(stderr, "bench-enforce: no WAL file in %s\n", state_dir);
                return BENCH_EXIT_ERROR;
        }

        printf("bench-enforce: lab of %zu GPUs (%d in MIG mode, %d x 1g.10gb each), %d real "
               "processes of %d users; %s\n",
               d->snapshot->n_gpus, BENCH_LAB_MIG_GPUS, BENCH_LAB_MIG_INSTANCES,
               BENCH_LAB_PROCESSES, USERS,
               d->snapshot->simulated ? "NVML simulator" : "real NVML");
        printf("bench-enforce: %zu leases (6 GPUs, 10 MIG instances), %zu open violations, "
               "%zu exempt users (as %s), mode enforce\n",
               d->leases.n_leases, d->enforcement.n_tracked,
               d->config->enforcement.n_exempt_users, o->exempt_as_uids ? "uids" : "names");
        printf("bench-enforce: %zu rounds x %zu iterations per side, interleaved\n", o->common.rounds,
               o->common.iterations);

        /* Blocks of o->common.iterations; even rounds start without enforcement. */
        Sides sides = { .d = d, .step_us = step_us };
        const BenchSide both[] = {
                { .sample = time_plain, .userdata = &sides, .samples = plain_us },
                { .sample = time_enforced, .userdata = &sides, .samples = enforced_us },
        };

        if (bench_interleave(both, ELEMENTSOF(both), per_side, o->common.iterations) < 0)
                return BENCH_EXIT_ERROR;
        if (!steady(d, "after the measurement"))
                return BENCH_EXIT_ERROR;
        if (!wal_stamp(state_dir, &wal_after) || !same_stamp(&wal_before, &wal_after)) {
                fprintf(stderr, "bench-enforce: the store was written during the measurement\n");
                return BENCH_EXIT_ERROR;
        }

        printf("\n");
        bench_print_header("us");
        plain = bench_print_stats("tick without enforcement", plain_us, per_side);
        enforced = bench_print_stats("tick with enforcement", enforced_us, per_side);
        bench_print_stats("  of which enforcement_tick", step_us, per_side);
        printf("\n  first enforcement tick (opens %d violations): %.1f us; the next: %.1f us "
               "(info)\n",
               VIOLATIONS, first_us, steady_us);
        printf("  store writes during the measurement: none (WAL unchanged)\n");

        return bench_print_result(
                bench_print_ratio("with/without", &enforced, &plain, TARGET_RATIO));
}

static void help(void)
{
        printf("Usage: bench-enforce [OPTIONS]\n"
               "\n"
               "Time a sampler tick with the daemon's enforcement step against the tick alone, on\n"
               "a lab of %d GPUs (%d in MIG mode) and %d real processes of %d users, interleaved\n"
               "in the same run. Needs root: it makes the users " BENCH_USER_PREFIX "00 .. "
               BENCH_USER_PREFIX "%02d\n"
               "(useradd) and removes them at the end (userdel).\n"
               "\n",
               BENCH_LAB_GPUS, BENCH_LAB_MIG_GPUS, BENCH_LAB_PROCESSES, USERS, USERS - 1);
        bench_rounds_help();
        printf("  --exempt-as-uids   write the exempt users as uids, not names (no NSS\n"
               "                     lookups per tick)\n"
               "  --keep-users       leave the users in place for the next run\n"
               "\n"
               "Exit status: 0 target met, 2 target missed, 1 could not measure.\n");
}

/* Returns 1 to run, 0 to exit successfully (help), -1 on bad usage. */
static int parse_argv(int argc, char **argv, Options *o)
{
        const BenchOption options[] = {
                BENCH_FLAG("exempt-as-uids", &o->exempt_as_uids),
                BENCH_FLAG("keep-users", &o->keep_users),
        };

        *o = (Options){ 0 };
        return bench_parse_rounds(argc, argv, &o->common, options, ELEMENTSOF(options), help);
}

int main(int argc, char **argv)
{
        char scratch[PATH_MAX] = "", lab[PATH_MAX];
        BenchUser users[USERS] = { 0 };
        BenchChildren children = { 0 };
        Options o;
        int r, ret = BENCH_EXIT_ERROR;

        r = parse_argv(argc, argv, &o);
        if (r <= 0)
                return r == 0 ? EXIT_SUCCESS : 64;
        if (!bench_need_root("it makes users and runs processes as them"))
                return BENCH_EXIT_ERROR;

        if (bench_scratch_make(scratch, sizeof(scratch)) < 0)
                return BENCH_EXIT_ERROR;
        if (bench_lab_start(o.common.gen_lab, scratch, users, USERS, owner_of, &children, lab) < 0)
                goto finish;
        ret = run(&o, scratch, lab, children.pids, users);
finish:
        bench_lab_stop(&children, users, USERS, o.keep_users);
        bench_scratch_remove(scratch);
        return ret;
}
