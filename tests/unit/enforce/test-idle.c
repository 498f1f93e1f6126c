/* Tests of idle reclaim (src/policy/idle.c).
 *
 * A table covers every decision transition of manual and run leases
 * (including late ticks, restarts without the warned state, and a clock
 * stepped back); another table pins down what counts as busy / utilised
 * for whole GPUs, MIG instances, unknown utilisation, unhealthy or missing
 * devices and a snapshot without NVML; then idle device-time accounting,
 * and a simulated run of ticks in which an idle manual lease is warned then
 * released and a busy one is kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/idle.h"

#define M POLICY_IDLE_MANUAL
#define R POLICY_IDLE_RUN

typedef struct DecideCase {
        int line;
        PolicyIdleKind kind;
        uint64_t created, last_busy, last_utilized, warned;
        bool flagged;
        uint64_t release_after, warn_before, flag_after;
        uint64_t now;
        PolicyIdleAction expect;
} DecideCase;

static void test_decide_table(void **state)
{
        /* Times in arbitrary units; created at 1000 unless noted. Config
         * release_after 100, warn_before 20 (warn at idle 80), flag 50. */
        static const DecideCase cases[] = {
                /* Manual, never busy: idle counts from creation. */
                { __LINE__, M, 1000, 0, 0, 0, false, 100, 20, 50, 1000, POLICY_IDLE_NONE },
                { __LINE__, M, 1000, 0, 0, 0, false, 100, 20, 50, 1079, POLICY_IDLE_NONE },
                { __LINE__, M, 1000, 0, 0, 0, false, 100, 20, 50, 1080, POLICY_IDLE_WARN },
                { __LINE__, M, 1000, 0, 0, 1080, false, 100, 20, 50, 1090, POLICY_IDLE_NONE },
                { __LINE__, M, 1000, 0, 0, 1080, false, 100, 20, 50, 1099, POLICY_IDLE_NONE },
                { __LINE__, M, 1000, 0, 0, 1080, false, 100, 20, 50, 1100, POLICY_IDLE_RELEASE },
                { __LINE__, M, 1000, 0, 0, 1080, false, 100, 20, 50, 5000, POLICY_IDLE_RELEASE },
                /* A late tick (or a restart that lost the warned state):
                 * warn first, release no earlier than the warning said. */
                { __LINE__, M, 1000, 0, 0, 0, false, 100, 20, 50, 1100, POLICY_IDLE_WARN },
                { __LINE__, M, 1000, 0, 0, 0, false, 100, 20, 50, 9000, POLICY_IDLE_WARN },
                { __LINE__, M, 1000, 0, 0, 1095, false, 100, 20, 50, 1105, POLICY_IDLE_NONE },
                { __LINE__, M, 1000, 0, 0, 1095, false, 100, 20, 50, 1114, POLICY_IDLE_NONE },
                { __LINE__, M, 1000, 0, 0, 1095, false, 100, 20, 50, 1115, POLICY_IDLE_RELEASE },
                /* Busy since: counts from the last busy tick. */
                { __LINE__, M, 1000, 1090, 0, 0, false, 100, 20, 50, 1169, POLICY_IDLE_NONE },
                { __LINE__, M, 1000, 1090, 0, 0, false, 100, 20, 50, 1170, POLICY_IDLE_WARN },
                { __LINE__, M, 1000, 1090, 0, 1170, false, 100, 20, 50, 1190, POLICY_IDLE_RELEASE },
                /* Warned, then used again: the warning is withdrawn. */
                { __LINE__, M, 1000, 1090, 0, 1080, false, 100, 20, 50, 1090, POLICY_IDLE_WARN_CLEAR },
                { __LINE__, M, 1000, 1090, 0, 1080, false, 100, 20, 50, 1169, POLICY_IDLE_WARN_CLEAR },
                /* Manual leases ignore utilisation-only state and the flag. */
                { __LINE__, M, 1000, 0, 1099, 1080, true, 100, 20, 50, 1100, POLICY_IDLE_RELEASE },
                /* A last-busy time before creation (another lease's) is ignored. */
                { __LINE__, M, 1000, 900, 0, 0, false, 100, 20, 50, 1079, POLICY_IDLE_NONE },
                /* Clock stepped back behind the last busy tick: not idle at all. */
                { __LINE__, M, 1000, 2000, 0, 0, false, 100, 20, 50, 1500, POLICY_IDLE_NONE },
                { __LINE__, M, 1000, 0, 0, 1200, false, 100, 20, 50, 1150, POLICY_IDLE_NONE },
                /* warn_before 0: released without warning. */
                { __LINE__, M, 1000, 0, 0, 0, false, 100, 0, 50, 1099, POLICY_IDLE_NONE },
                { __LINE__, M, 1000, 0, 0, 0, false, 100, 0, 50, 1100, POLICY_IDLE_RELEASE },
                { __LINE__, M, 1000, 1050, 0, 1080, false, 100, 0, 50, 1100, POLICY_IDLE_WARN_CLEAR },
                /* warn_before = release_after: warned as soon as it is idle. */
                { __LINE__, M, 1000, 0, 0, 0, false, 100, 100, 50, 1000, POLICY_IDLE_WARN },
                { __LINE__, M, 1000, 0, 0, 1000, false, 100, 100, 50, 1100, POLICY_IDLE_RELEASE },
                /* warn_before above release_after is treated as equal. */
                { __LINE__, M, 1000, 0, 0, 0, false, 100, 500, 50, 1000, POLICY_IDLE_WARN },

                /* Run leases: flagged after flag_after without utilisation. */
                { __LINE__, R, 1000, 0, 0, 0, false, 100, 20, 50, 1049, POLICY_IDLE_NONE },
                { __LINE__, R, 1000, 0, 0, 0, false, 100, 20, 50, 1050, POLICY_IDLE_FLAG },
                { __LINE__, R, 1000, 0, 0, 0, true, 100, 20, 50, 1050, POLICY_IDLE_NONE },
                { __LINE__, R, 1000, 0, 0, 0, true, 100, 20, 50, 99999, POLICY_IDLE_NONE },
                { __LINE__, R, 1000, 0, 1055, 0, true, 100, 20, 50, 1060, POLICY_IDLE_FLAG_CLEAR },
                { __LINE__, R, 1000, 0, 1055, 0, false, 100, 20, 50, 1104, POLICY_IDLE_NONE },
                { __LINE__, R, 1000, 0, 1055, 0, false, 100, 20, 50, 1105, POLICY_IDLE_FLAG },
                /* A process present but at 0 %: busy is not utilised. */
                { __LINE__, R, 1000, 1049, 0, 0, false, 100, 20, 50, 1050, POLICY_IDLE_FLAG },
                /* Run leases are never warned or released. */
                { __LINE__, R, 1000, 0, 1000, 0, true, 100, 20, 50, 99999, POLICY_IDLE_NONE },
                /* flag_after 0 disables flagging; a raised flag is cleared. */
                { __LINE__, R, 1000, 0, 0, 0, false, 100, 20, 0, 99999, POLICY_IDLE_NONE },
                { __LINE__, R, 1000, 0, 0, 0, true, 100, 20, 0, 99999, POLICY_IDLE_FLAG_CLEAR },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const DecideCase *c = &cases[i];
                PolicyIdleLease l = { .kind = c->kind,
                                      .created_usec = c->created,
                                      .last_busy_usec = c->last_busy,
                                      .last_utilized_usec = c->last_utilized,
                                      .warned_usec = c->warned,
                                      .flagged = c->flagged };
                PolicyIdleConfig cfg = { c->release_after, c->warn_before, c->flag_after };
                PolicyIdleAction got = policy_idle_decide(&l, &cfg, c->now);

                if (got != c->expect)
                        fail_msg("case at line %d: got %s, expected %s", c->line,
                                 policy_idle_action_to_string(got), policy_idle_action_to_string(c->expect));
        }
}

static void test_idle_for(void **state)
{
        PolicyIdleLease m = { .kind = M, .created_usec = 100, .last_busy_usec = 150, .last_utilized_usec = 170 };
        PolicyIdleLease r = m;

        r.kind = R;
        assert_int_equal(policy_idle_for(&m, 200), 50);
        assert_int_equal(policy_idle_for(&r, 200), 30);
        assert_int_equal(policy_idle_for(&m, 140), 0);
        m.last_busy_usec = 0;
        assert_int_equal(policy_idle_for(&m, 200), 100);
}

static void test_note(void **state)
{
        PolicyIdleLease l = { .kind = M, .created_usec = 10 };

        policy_idle_note(&l, (PolicyIdleActivity){ .busy = false, .utilized = false }, 20);
        assert_int_equal(l.last_busy_usec, 0);
        assert_int_equal(l.last_utilized_usec, 0);
        policy_idle_note(&l, (PolicyIdleActivity){ .busy = true, .utilized = false }, 30);
        assert_int_equal(l.last_busy_usec, 30);
        assert_int_equal(l.last_utilized_usec, 0);
        policy_idle_note(&l, (PolicyIdleActivity){ .busy = true, .utilized = true }, 40);
        assert_int_equal(l.last_busy_usec, 40);
        assert_int_equal(l.last_utilized_usec, 40);
}

typedef struct Lab {
        GpuSnapshot snap;
        GpuDevice gpus[8];
        GpuInstance inst[2];
        GpuProcess procs[8][2];
} Lab;

/* GPU-idle: 0 %, no process.     GPU-util: 30 %, no process.
 * GPU-proc: 0 %, a process.      GPU-unk: unknown %, no process.
 * GPU-unkp: unknown %, a process. GPU-sick: unhealthy (0 %, no process).
 * GPU-mig: MIG, MIG-busy has a process, MIG-free has none. */
static Lab *lab_new(void)
{
        static const struct {
                const char *uuid;
                int util;
                int procs;
                bool healthy;
        } spec[] = {
                { "GPU-idle", 0, 0, true }, { "GPU-util", 30, 0, true }, { "GPU-proc", 0, 1, true },
                { "GPU-unk", -1, 0, true }, { "GPU-unkp", -1, 1, true }, { "GPU-sick", 0, 0, false },
                { "GPU-mig", -1, 1, true },
        };
        Lab *l = calloc(1, sizeof(*l));

        assert_non_null(l);
        l->snap.nvml_available = true;
        l->snap.gpus = l->gpus;
        l->snap.n_gpus = ELEMENTSOF(spec);
        for (size_t g = 0; g < ELEMENTSOF(spec); g++) {
                GpuDevice *d = &l->gpus[g];

                snprintf(d->uuid, sizeof(d->uuid), "%s", spec[g].uuid);
                d->utilization_gpu = spec[g].util;
                d->healthy = spec[g].healthy;
                d->processes = l->procs[g];
                d->n_processes = (size_t)spec[g].procs;
                l->procs[g][0] = (GpuProcess){ .pid = 100 + (uint32_t)g, .instance = -1, .uid = 1000 };
        }
        l->gpus[6].mig_enabled = true;
        l->gpus[6].instances = l->inst;
        l->gpus[6].n_instances = 2;
        snprintf(l->inst[0].uuid, sizeof(l->inst[0].uuid), "MIG-free");
        snprintf(l->inst[1].uuid, sizeof(l->inst[1].uuid), "MIG-busy");
        l->procs[6][0].instance = 1;
        return l;
}

static void test_activity_table(void **state)
{
        static const struct {
                int line;
                const char *uuids[3];
                size_t n;
                bool busy, utilized;
        } cases[] = {
                { __LINE__, { "GPU-idle" }, 1, false, false },
                { __LINE__, { "GPU-util" }, 1, true, true },
                { __LINE__, { "GPU-proc" }, 1, true, false },
                { __LINE__, { "GPU-unk" }, 1, false, false },
                { __LINE__, { "GPU-unkp" }, 1, true, true },
                { __LINE__, { "GPU-sick" }, 1, true, true },
                { __LINE__, { "GPU-nowhere" }, 1, true, true },
                { __LINE__, { "MIG-free" }, 1, false, false },
                { __LINE__, { "MIG-busy" }, 1, true, true },
                { __LINE__, { "GPU-mig" }, 1, true, true },
                { __LINE__, { "GPU-idle", "MIG-free" }, 2, false, false },
                { __LINE__, { "GPU-idle", "GPU-proc" }, 2, true, false },
                { __LINE__, { "GPU-idle", "GPU-proc", "GPU-util" }, 3, true, true },
                { __LINE__, { NULL }, 0, false, false },
        };
        Lab *l = lab_new();

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                PolicyIdleActivity a = policy_idle_activity(&l->snap, cases[i].uuids, cases[i].n);

                if (a.busy != cases[i].busy || a.utilized != cases[i].utilized)
                        fail_msg("case at line %d: busy %d utilized %d", cases[i].line, a.busy, a.utilized);
        }

        /* No NVML: nothing is known, so everything counts as used. */
        l->snap.nvml_available = false;
        {
                const char *idle[] = { "GPU-idle" };
                PolicyIdleActivity a = policy_idle_activity(&l->snap, idle, 1);

                assert_true(a.busy);
                assert_true(a.utilized);
        }
        free(l);
}

static void test_account(void **state)
{
        const char *uuids[] = { "GPU-idle", "GPU-util", "GPU-proc", "MIG-free", "GPU-nowhere", "GPU-unk", "GPU-sick" };
        uint64_t idle[ELEMENTSOF(uuids)] = { 0, 0, 0, 7, 0, 0, 0 };
        Lab *l = lab_new();

        assert_int_equal(policy_idle_account(&l->snap, uuids, ELEMENTSOF(uuids), 5, 10, idle), 15);
        assert_int_equal(idle[0], 5);
        assert_int_equal(idle[1], 0);
        assert_int_equal(idle[2], 0);
        assert_int_equal(idle[3], 12);
        assert_int_equal(idle[4], 0);
        assert_int_equal(idle[5], 5);
        assert_int_equal(idle[6], 0);

        /* A long gap between ticks is capped. */
        assert_int_equal(policy_idle_account(&l->snap, uuids, ELEMENTSOF(uuids), 1000, 10, idle), 30);
        assert_int_equal(idle[0], 15);
        assert_int_equal(idle[3], 22);

        assert_int_equal(policy_idle_account(&l->snap, NULL, 0, 5, 10, NULL), 0);

        l->snap.nvml_available = false;
        assert_int_equal(policy_idle_account(&l->snap, uuids, ELEMENTSOF(uuids), 5, 10, idle), 0);
        free(l);
}

/* What the daemon does each tick, over simulated time: an idle manual
 * lease is warned, then released; a busy one is left alone. */
static void test_simulated_ticks(void **state)
{
        const PolicyIdleConfig cfg = { .release_after_usec = 10, .warn_before_usec = 3, .flag_after_usec = 4 };
        const char *idle_dev[] = { "GPU-idle" }, *busy_dev[] = { "GPU-proc" }, *zero_dev[] = { "GPU-proc" };
        PolicyIdleLease idle = { .kind = M, .created_usec = 100 };
        PolicyIdleLease busy = { .kind = M, .created_usec = 100 };
        PolicyIdleLease run = { .kind = R, .created_usec = 100 };
        uint64_t warned_at = 0, released_at = 0, flagged_at = 0, idle_usec = 0;
        Lab *l = lab_new();

        for (uint64_t now = 101; now <= 130 && !released_at; now++) {
                PolicyIdleAction a;

                policy_idle_note(&idle, policy_idle_activity(&l->snap, idle_dev, 1), now);
                policy_idle_account(&l->snap, idle_dev, 1, 1, 2, &idle_usec);
                a = policy_idle_decide(&idle, &cfg, now);
                if (a == POLICY_IDLE_WARN) {
                        assert_int_equal(warned_at, 0);
                        warned_at = idle.warned_usec = now;
                } else if (a == POLICY_IDLE_RELEASE)
                        released_at = now;
                else
                        assert_int_equal(a, POLICY_IDLE_NONE);

                policy_idle_note(&busy, policy_idle_activity(&l->snap, busy_dev, 1), now);
                assert_int_equal(policy_idle_decide(&busy, &cfg, now), POLICY_IDLE_NONE);

                policy_idle_note(&run, policy_idle_activity(&l->snap, zero_dev, 1), now);
                a = policy_idle_decide(&run, &cfg, now);
                if (a == POLICY_IDLE_FLAG) {
                        flagged_at = now;
                        run.flagged = true;
                } else
                        assert_int_equal(a, POLICY_IDLE_NONE);
        }
        assert_int_equal(warned_at, 107);
        assert_int_equal(released_at, 110);
        assert_int_equal(flagged_at, 104);
        assert_int_equal(idle_usec, 10);
        free(l);
}

static void test_action_names(void **state)
{
        assert_string_equal(policy_idle_action_to_string(POLICY_IDLE_NONE), "none");
        assert_string_equal(policy_idle_action_to_string(POLICY_IDLE_WARN), "warn");
        assert_string_equal(policy_idle_action_to_string(POLICY_IDLE_WARN_CLEAR), "warn_clear");
        assert_string_equal(policy_idle_action_to_string(POLICY_IDLE_RELEASE), "release");
        assert_string_equal(policy_idle_action_to_string(POLICY_IDLE_FLAG), "flag");
        assert_string_equal(policy_idle_action_to_string(POLICY_IDLE_FLAG_CLEAR), "flag_clear");
        assert_null(policy_idle_action_to_string((PolicyIdleAction)99));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_decide_table),
                cmocka_unit_test(test_idle_for),
                cmocka_unit_test(test_note),
                cmocka_unit_test(test_activity_table),
                cmocka_unit_test(test_account),
                cmocka_unit_test(test_simulated_ticks),
                cmocka_unit_test(test_action_names),
        };

        return cmocka_run_group_tests_name("idle", tests, NULL, NULL);
}
