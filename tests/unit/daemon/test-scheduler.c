/* Unit tests for the scheduler (daemon/leases.c) and the violation state
 * machine (daemon/enforcement.c), through the daemon's seams: the clock
 * (DaemonClock: time advanced and the wall clock stepped without waiting),
 * a hand-made snapshot instead of a sampler tick, and a real store in a
 * temporary directory. No socket: replies to clients are dropped
 * (leases.c's send_to without a server). Edge cases without timing. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "basic/proc.h"
#include "daemon/daemon.h"
#include "daemon/enforcement.h"
#include "daemon/leases.h"
#include "gpu/nvml-abi.h"
#include "store/lease-store.h"
#include "store/violation-store.h"

#define GPU_A "GPU-aaaaaaaa-0000-0000-0000-000000000000"
#define GPU_B "GPU-bbbbbbbb-0000-0000-0000-000000000000"
#define HOUR (3600 * USEC_PER_SEC)

typedef struct Fixture {
        char dir[64];
        Daemon d;
        UserMemo names;
} Fixture;

static GpuSnapshot *make_snapshot(void)
{
        GpuSnapshot *s = calloc(1, sizeof *s);
        const char *uuids[] = {GPU_A, GPU_B};

        assert_non_null(s);
        s->nvml_available = true;
        s->n_gpus = 2;
        s->gpus = calloc(2, sizeof *s->gpus);
        assert_non_null(s->gpus);
        for (unsigned i = 0; i < 2; i++) {
                GpuDevice *g = &s->gpus[i];

                g->index = i;
                snprintf(g->uuid, sizeof g->uuid, "%s", uuids[i]);
                snprintf(g->pci_bus_id, sizeof g->pci_bus_id, "00000000:0%u:00.0", i + 7);
                g->numa_node = -1;
                g->memory_total_bytes = UINT64_C(80) << 30;
                g->memory_used_bytes = 0;
                g->utilization_gpu = 50;
                g->healthy = true;
        }
        return s;
}

/* A process of `uid` on GPU `index` of the snapshot. */
static void add_process(GpuSnapshot *s, unsigned index, pid_t pid, uid_t uid)
{
        GpuDevice *g = &s->gpus[index];
        GpuProcess *p = reallocarray(g->processes, g->n_processes + 1, sizeof *p);
        uint64_t start = 0;

        assert_non_null(p);
        g->processes = p;
        assert_int_equal(proc_start_time(pid, &start), 0);
        p[g->n_processes++] = (GpuProcess){.pid = (uint32_t)pid, .memory_used_bytes = 1 << 20,
                                           .instance = -1, .uid = uid, .start_time = start,
                                           .gpu_instance_id = NVML_INSTANCE_ID_NONE,
                                           .compute_instance_id = NVML_INSTANCE_ID_NONE,
                                           .command = strdup("test")};
}

/* The process list of GPU `index` emptied (the processes left NVML). */
static void clear_processes(GpuSnapshot *s, unsigned index)
{
        GpuDevice *g = &s->gpus[index];

        for (size_t i = 0; i < g->n_processes; i++)
                free(g->processes[i].command);
        g->n_processes = 0;
}

static int setup(void **state)
{
        Fixture *f = calloc(1, sizeof *f);
        char *error = NULL;

        assert_non_null(f);
        snprintf(f->dir, sizeof f->dir, "/tmp/gk-test-sched-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        assert_int_equal(config_new_defaults(&f->d.config), 0);
        free(f->d.config->state_dir);
        f->d.config->state_dir = strdup(f->dir);
        f->d.config->policy.reconnect_grace_usec = 10 * USEC_PER_SEC;
        assert_int_equal(sd_event_new(&f->d.event), 0);
        assert_int_equal(store_open(f->dir, &f->d.store, &error), 0);
        f->d.user_names = &f->names;
        f->d.snapshot = make_snapshot();
        assert_int_equal(leases_init(&f->d), 0);
        assert_int_equal(enforcement_init(&f->d), 0);
        *state = f;
        return 0;
}

/* Stop as gpukeeperd would stop (memory freed, store kept). */
static void stop_daemon(Fixture *f)
{
        enforcement_done(&f->d.enforcement);
        leases_done(&f->d.leases);
        store_close(f->d.store);
        f->d.store = NULL;
}

/* Start again on the same store, as after a restart. */
static void restart_daemon(Fixture *f)
{
        char *error = NULL;

        stop_daemon(f);
        assert_int_equal(store_open(f->dir, &f->d.store, &error), 0);
        assert_int_equal(leases_init(&f->d), 0);
        assert_int_equal(enforcement_init(&f->d), 0);
}

static int teardown(void **state)
{
        Fixture *f = *state;
        char cmd[128];

        stop_daemon(f);
        gpu_snapshot_free(f->d.snapshot);
        config_free(f->d.config);
        sd_event_unref(f->d.event);
        snprintf(cmd, sizeof cmd, "%s/%s", f->dir, STORE_DB_NAME);
        unlink(cmd);
        snprintf(cmd, sizeof cmd, "%s/%s-wal", f->dir, STORE_DB_NAME);
        unlink(cmd);
        snprintf(cmd, sizeof cmd, "%s/%s-shm", f->dir, STORE_DB_NAME);
        unlink(cmd);
        rmdir(f->dir);
        free(f);
        return 0;
}

/* Let due timers run (after the clock was advanced). */
static void run_due(Fixture *f)
{
        for (int i = 0; i < 8; i++)
                assert_true(sd_event_run(f->d.event, 0) >= 0);
}

static uint64_t enqueue_manual(Fixture *f, uid_t uid, uint64_t conn_id, uint64_t duration)
{
        QueueEntry *e = calloc(1, sizeof *e);

        assert_non_null(e);
        *e = (QueueEntry){.conn_id = conn_id, .msg_id = 1, .uid = uid, .pid = getpid(),
                          .kind = LEASE_MANUAL, .duration_usec = duration, .n_gpus = 1};
        return leases_enqueue(&f->d, e);
}

static size_t leases_of(Fixture *f, uid_t uid)
{
        size_t n = 0;

        for (Lease *l = f->d.leases.leases; l; l = l->next)
                n += l->rec.uid == uid;
        return n;
}

/* ---- the scheduler ---- */

static void test_fifo_grant_wait_and_release(void **state)
{
        Fixture *f = *state;

        enqueue_manual(f, 1001, 11, HOUR);
        enqueue_manual(f, 1002, 12, HOUR);
        enqueue_manual(f, 1003, 13, HOUR);
        leases_schedule(&f->d);
        /* Two GPUs: the first two in arrival order, the third waits. */
        assert_int_equal(f->d.leases.n_leases, 2);
        assert_int_equal(leases_of(f, 1001), 1);
        assert_int_equal(leases_of(f, 1002), 1);
        assert_int_equal(f->d.leases.queue_len, 1);
        assert_int_equal(f->d.leases.queue->uid, 1003);

        assert_int_equal(leases_end(&f->d, f->d.leases.leases, false, "released by its holder",
                                    1001),
                         0);
        leases_schedule(&f->d);
        assert_int_equal(leases_of(f, 1003), 1);
        assert_int_equal(f->d.leases.queue_len, 0);
}

static void test_expiry_follows_time_not_the_wall_clock(void **state)
{
        Fixture *f = *state;

        enqueue_manual(f, 1001, 11, HOUR);
        leases_schedule(&f->d);
        assert_int_equal(f->d.leases.n_leases, 1);

        /* NTP steps the clock two hours ahead: nothing expires. */
        f->d.clock.wall_step_usec = 2 * (int64_t)HOUR;
        leases_schedule(&f->d);
        run_due(f);
        assert_int_equal(f->d.leases.n_leases, 1);

        f->d.clock.advance_usec = HOUR - 60 * USEC_PER_SEC;
        leases_schedule(&f->d);
        run_due(f);
        assert_int_equal(f->d.leases.n_leases, 1);

        f->d.clock.advance_usec = HOUR + USEC_PER_SEC;
        leases_schedule(&f->d);
        run_due(f);
        assert_int_equal(f->d.leases.n_leases, 0);
}

static void test_restart_rebases_expiry_once(void **state)
{
        Fixture *f = *state;

        enqueue_manual(f, 1001, 11, HOUR);
        leases_schedule(&f->d);
        /* Half an hour passes by both clocks, then a restart. */
        f->d.clock.advance_usec = HOUR / 2;
        restart_daemon(f);
        assert_int_equal(f->d.leases.n_leases, 1);
        f->d.clock.advance_usec = HOUR - 10 * USEC_PER_SEC;
        leases_schedule(&f->d);
        run_due(f);
        assert_int_equal(f->d.leases.n_leases, 1);
        f->d.clock.advance_usec = HOUR + 10 * USEC_PER_SEC;
        leases_schedule(&f->d);
        run_due(f);
        assert_int_equal(f->d.leases.n_leases, 0);
}

static void test_run_lease_kept_while_its_client_lives(void **state)
{
        Fixture *f = *state;
        uint64_t start = 0;
        QueueEntry *e = calloc(1, sizeof *e);
        pid_t child;
        int status;

        /* A run lease of a live client (this process), and one of a client
         * that has exited by the restart. */
        assert_int_equal(proc_start_time(getpid(), &start), 0);
        *e = (QueueEntry){.conn_id = 21, .msg_id = 1, .uid = 1001, .pid = getpid(),
                          .pid_start_time = start, .kind = LEASE_RUN, .n_gpus = 1};
        leases_enqueue(&f->d, e);
        child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                pause();
                _exit(0);
        }
        e = calloc(1, sizeof *e);
        assert_int_equal(proc_start_time(child, &start), 0);
        *e = (QueueEntry){.conn_id = 22, .msg_id = 1, .uid = 1002, .pid = child,
                          .pid_start_time = start, .kind = LEASE_RUN, .n_gpus = 1};
        leases_enqueue(&f->d, e);
        leases_schedule(&f->d);
        assert_int_equal(f->d.leases.n_leases, 2);
        kill(child, SIGKILL);
        assert_int_equal(waitpid(child, &status, 0), child);

        restart_daemon(f);
        /* The dead client's lease goes at once, the live one's stays past
         * the reconnect grace while its client lives. */
        assert_int_equal(leases_of(f, 1002), 0);
        assert_int_equal(leases_of(f, 1001), 1);
        f->d.clock.advance_usec += 3 * f->d.config->policy.reconnect_grace_usec;
        leases_schedule(&f->d);
        run_due(f);
        assert_int_equal(leases_of(f, 1001), 1);
}

static void test_no_grant_on_an_incomplete_process_list(void **state)
{
        Fixture *f = *state;

        f->d.snapshot->gpus[0].processes_incomplete = true;
        f->d.snapshot->gpus[1].processes_incomplete = true;
        enqueue_manual(f, 1001, 11, HOUR);
        leases_schedule(&f->d);
        assert_int_equal(f->d.leases.n_leases, 0);
        assert_int_equal(f->d.leases.queue_len, 1);
        f->d.snapshot->gpus[1].processes_incomplete = false;
        leases_schedule(&f->d);
        assert_int_equal(f->d.leases.n_leases, 1);
        assert_string_equal(f->d.leases.leases->rec.devices[0].uuid, GPU_B);
}

static void test_locked_store_keeps_the_request_queued(void **state)
{
        Fixture *f = *state;
        char path[128];
        sqlite3 *other = NULL;

        snprintf(path, sizeof path, "%s/%s", f->dir, STORE_DB_NAME);
        assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
        assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

        enqueue_manual(f, 1001, 11, HOUR);
        leases_schedule(&f->d);
        assert_int_equal(f->d.leases.n_leases, 0);
        assert_int_equal(f->d.leases.queue_len, 1);
        assert_true(f->d.leases.store_busy);
        assert_non_null(strstr(f->d.leases.queue->last_reason, "locked"));

        assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(other);
        /* The retry timer (100 ms) grants it; wait for that event. */
        for (int i = 0; i < 100 && f->d.leases.n_leases == 0; i++)
                assert_true(sd_event_run(f->d.event, 50 * USEC_PER_MSEC) >= 0);
        assert_int_equal(f->d.leases.n_leases, 1);
        assert_int_equal(f->d.leases.queue_len, 0);
}

/* ---- the violation state machine ---- */

/* A process of ours (root) that stays until signalled. */
static pid_t spawn_victim(void)
{
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                for (;;)
                        pause();
        }
        return pid;
}

static bool reaped(pid_t pid)
{
        int status;

        return waitpid(pid, &status, WNOHANG) == pid;
}

static void enforce_config(Fixture *f, uint64_t grace)
{
        f->d.config->enforcement.mode = CONFIG_ENFORCEMENT_ENFORCE;
        f->d.config->enforcement.grace_usec = grace;
        f->d.config->enforcement.kill_timeout_usec = HOUR;
        f->d.config->enforcement.root_exempt = false;
}

static void test_grace_measured_on_the_boot_clock(void **state)
{
        Fixture *f = *state;
        pid_t victim = spawn_victim();
        TrackedViolation *t;
        int status;

        enforce_config(f, HOUR);
        add_process(f->d.snapshot, 0, victim, getuid());
        enforcement_tick(&f->d);
        assert_int_equal(f->d.enforcement.n_tracked, 1);
        t = f->d.enforcement.tracked;
        assert_true(t->rec.warned_usec > 0);

        /* Wall-clock steps either way: no SIGTERM. */
        f->d.clock.wall_step_usec = 2 * (int64_t)HOUR;
        enforcement_tick(&f->d);
        f->d.clock.wall_step_usec = -2 * (int64_t)HOUR;
        enforcement_tick(&f->d);
        assert_int_equal(t->rec.term_usec, 0);
        assert_false(reaped(victim));

        /* An hour passing: SIGTERM, once, written before it was sent. */
        f->d.clock.advance_usec = HOUR;
        enforcement_tick(&f->d);
        assert_true(t->rec.term_usec > 0);
        assert_int_equal(waitpid(victim, &status, 0), victim);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
        assert_int_equal(f->d.enforcement.signals_sent, 1);

        /* Gone from NVML after the SIGTERM: closed as stopped. */
        clear_processes(f->d.snapshot, 0);
        enforcement_tick(&f->d);
        assert_int_equal(f->d.enforcement.n_tracked, 0);
        assert_int_equal(f->d.enforcement.signals_sent, 1);
}

static void test_restart_during_grace_resumes_on_time(void **state)
{
        Fixture *f = *state;
        pid_t victim = spawn_victim();
        int status;

        enforce_config(f, 60 * USEC_PER_SEC);
        add_process(f->d.snapshot, 0, victim, getuid());
        enforcement_tick(&f->d);
        f->d.clock.advance_usec = 30 * USEC_PER_SEC;
        restart_daemon(f);
        assert_int_equal(f->d.enforcement.n_tracked, 1);

        /* 30 s were used before the restart: 29 more are not enough... */
        f->d.clock.advance_usec = 59 * USEC_PER_SEC;
        enforcement_tick(&f->d);
        assert_int_equal(f->d.enforcement.tracked->rec.term_usec, 0);
        assert_false(reaped(victim));
        /* ...and the 60th second is. */
        f->d.clock.advance_usec = 61 * USEC_PER_SEC;
        enforcement_tick(&f->d);
        assert_true(f->d.enforcement.tracked->rec.term_usec > 0);
        assert_int_equal(waitpid(victim, &status, 0), victim);
}

static void test_unlisted_on_incomplete_list_is_not_closed(void **state)
{
        Fixture *f = *state;
        pid_t victim = spawn_victim();
        int status;

        enforce_config(f, HOUR);
        add_process(f->d.snapshot, 0, victim, getuid());
        enforcement_tick(&f->d);
        assert_int_equal(f->d.enforcement.n_tracked, 1);

        /* Cut from a list that overflowed: not "left", still open. */
        clear_processes(f->d.snapshot, 0);
        f->d.snapshot->gpus[0].processes_incomplete = true;
        enforcement_tick(&f->d);
        assert_int_equal(f->d.enforcement.n_tracked, 1);

        /* A complete list without it: closed ("left": it still runs). */
        f->d.snapshot->gpus[0].processes_incomplete = false;
        enforcement_tick(&f->d);
        assert_int_equal(f->d.enforcement.n_tracked, 0);
        kill(victim, SIGKILL);
        assert_int_equal(waitpid(victim, &status, 0), victim);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_fifo_grant_wait_and_release, setup, teardown),
                cmocka_unit_test_setup_teardown(test_expiry_follows_time_not_the_wall_clock, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_restart_rebases_expiry_once, setup, teardown),
                cmocka_unit_test_setup_teardown(test_run_lease_kept_while_its_client_lives, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_no_grant_on_an_incomplete_process_list, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_locked_store_keeps_the_request_queued, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_grace_measured_on_the_boot_clock, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_restart_during_grace_resumes_on_time, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_unlisted_on_incomplete_list_is_not_closed,
                                                setup, teardown),
        };

        return cmocka_run_group_tests_name("scheduler", tests, NULL, NULL);
}
