/* Tests of shared leases' placement (policy/share.c and the shared form of
 * policy_allocate) and of the budget timeline (policy_budget_step).
 *
 * Table tests pin down the issue's lab (one 80 GiB GPU holding 20/20/30
 * GiB, a fourth 20 GiB request waits and starts when one releases), best
 * fit, the exclusion of whole-GPU and shared leases on one GPU, whole-GPU
 * requests taking non-shareable GPUs first, and every impossible form.
 *
 * The property test runs random labs through random sequences of grants
 * and releases of whole and shared leases and checks every decision against
 * a model of its own: no GPU ever holds a whole lease together with a
 * shared one or two whole ones, budgets never add up past a GPU's capacity,
 * a lone shared request gets the best fit and waits only when nothing fits.
 * A failure prints the seed; POLICY_SEED=<n> replays that scenario.
 *
 * The usage history's attribution (policy_share_attribute): each holder's
 * processes count for its own leases only, split by budget when one user
 * holds two slices, never twice, and nothing for processes of others or of
 * vanished owners. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "policy/allocate.h"
#include "policy/share.h"

#define GIB (UINT64_C(1) << 30)
#define LAB_MAX 8
#define MAX_LEASES 64

typedef struct Lab {
        PolicyDevice d[LAB_MAX];
        char uuid[LAB_MAX][32];
        char bus[LAB_MAX][32];
        size_t n;
} Lab;

static size_t lab_add(Lab *l, uint64_t share_capacity)
{
        size_t i = l->n++;

        assert_true(i < LAB_MAX);
        snprintf(l->uuid[i], sizeof l->uuid[i], "GPU-%02zu", i);
        snprintf(l->bus[i], sizeof l->bus[i], "00000000:%02zx:00.0", i + 1);
        l->d[i] = (PolicyDevice){.uuid = l->uuid[i],
                                 .parent_uuid = l->uuid[i],
                                 .pci_bus_id = l->bus[i],
                                 .numa_node = -1,
                                 .healthy = true,
                                 .utilization_pct = -1,
                                 .share_capacity_bytes = share_capacity};
        return i;
}

static const PolicyLimits limits = {.unleased_memory_max = 512u << 20};

/* Allocate a queue of requests by one user without a cap. */
static void allocate(Lab *l, const PolicyRequest *q, size_t n, PolicyDecision *ret)
{
        PolicyUserUsage u[4] = {{.uid = 1000}, {.uid = 1001}, {.uid = 1002}, {.uid = 1003}};

        assert_int_equal(policy_allocate(l->d, l->n, q, n, u, 4, &limits, ret), 0);
}

static void share_on(Lab *l, size_t i, uint64_t bytes)
{
        l->d[i].shared_budget_bytes += bytes;
        l->d[i].shared_leases++;
}

/* The issue's lab: 80 GiB, 1 GiB reserve; 20/20/30 fit, a fourth 20 waits. */
static void test_issue_lab(void **state)
{
        Lab l = {};
        PolicyDecision dec[4];
        PolicyRequest q[4];

        lab_add(&l, 79 * GIB);
        for (int i = 0; i < 4; i++)
                q[i] = (PolicyRequest){.id = (uint64_t)i + 1, .uid = (uid_t)(1000 + i),
                                       .share_bytes = (i == 2 ? 30 : 20) * GIB};
        allocate(&l, q, 4, dec);
        for (int i = 0; i < 3; i++) {
                assert_int_equal(dec[i].verdict, POLICY_GRANT);
                assert_int_equal(dec[i].n_devices, 1);
                assert_int_equal(dec[i].devices[0], 0);
        }
        assert_int_equal(dec[3].verdict, POLICY_WAIT);
        assert_string_equal(dec[3].reason,
                            "waiting for 20 GiB on a shared GPU: 9 GiB free on one at most");
        policy_decisions_free(dec, 4);

        /* The three are granted; one 20 releases: the fourth starts. */
        share_on(&l, 0, 20 * GIB);
        share_on(&l, 0, 30 * GIB);
        allocate(&l, &q[3], 1, dec);
        assert_int_equal(dec[0].verdict, POLICY_GRANT);
        policy_decisions_free(dec, 1);

        /* A whole-GPU request never shares it. */
        q[0] = (PolicyRequest){.id = 9, .uid = 1000, .n_gpus = 1};
        allocate(&l, q, 1, dec);
        assert_int_equal(dec[0].verdict, POLICY_WAIT);
        assert_string_equal(dec[0].reason, "waiting for a GPU");
        policy_decisions_free(dec, 1);
}

static void test_best_fit_and_whole(void **state)
{
        Lab l = {};
        PolicyDecision dec[3];
        PolicyRequest q[3];

        lab_add(&l, 0);         /* 0: not shareable */
        lab_add(&l, 79 * GIB);  /* 1: empty shareable */
        lab_add(&l, 79 * GIB);  /* 2: 40 GiB promised */
        lab_add(&l, 47 * GIB);  /* 3: 20 GiB promised: 27 free */
        share_on(&l, 2, 40 * GIB);
        share_on(&l, 3, 20 * GIB);

        /* 20 GiB: GPU 3 leaves 7, GPU 2 leaves 19, GPU 1 leaves 59. */
        q[0] = (PolicyRequest){.id = 1, .uid = 1000, .share_bytes = 20 * GIB};
        /* 30 GiB: only GPUs 1 and 2 take it now; 2 leaves 9. */
        q[1] = (PolicyRequest){.id = 2, .uid = 1001, .n_gpus = 1, .share_bytes = 30 * GIB};
        /* A whole GPU: the non-shareable one first. */
        q[2] = (PolicyRequest){.id = 3, .uid = 1002, .n_gpus = 1};
        allocate(&l, q, 3, dec);
        assert_int_equal(dec[0].verdict, POLICY_GRANT);
        assert_int_equal(dec[0].devices[0], 3);
        assert_int_equal(dec[1].verdict, POLICY_GRANT);
        assert_int_equal(dec[1].devices[0], 2);
        assert_int_equal(dec[2].verdict, POLICY_GRANT);
        assert_int_equal(dec[2].devices[0], 0);
        policy_decisions_free(dec, 3);

        /* With GPU 0 leased, a whole GPU goes to the empty shareable one,
         * never to one with shared leases. */
        l.d[0].leased = true;
        q[0] = (PolicyRequest){.id = 4, .uid = 1002, .n_gpus = 1};
        allocate(&l, q, 1, dec);
        assert_int_equal(dec[0].verdict, POLICY_GRANT);
        assert_int_equal(dec[0].devices[0], 1);
        policy_decisions_free(dec, 1);

        /* A shared request never goes to a whole-leased GPU. */
        l.d[1].leased = true;
        q[0] = (PolicyRequest){.id = 5, .uid = 1000, .share_bytes = 30 * GIB};
        allocate(&l, q, 1, dec);
        assert_int_equal(dec[0].verdict, POLICY_GRANT);
        assert_int_equal(dec[0].devices[0], 2);
        policy_decisions_free(dec, 1);
        q[0].share_bytes = 40 * GIB;
        allocate(&l, q, 1, dec);
        assert_int_equal(dec[0].verdict, POLICY_WAIT);
        policy_decisions_free(dec, 1);
}

/* FIFO: a waiting shared request keeps the shareable GPUs it could use
 * from later requests, shared or whole. */
static void test_fifo(void **state)
{
        Lab l = {};
        PolicyDecision dec[3];
        PolicyRequest q[3];

        lab_add(&l, 79 * GIB);
        lab_add(&l, 0);
        share_on(&l, 0, 60 * GIB);
        q[0] = (PolicyRequest){.id = 1, .uid = 1000, .share_bytes = 30 * GIB};
        q[1] = (PolicyRequest){.id = 2, .uid = 1001, .share_bytes = 10 * GIB};
        q[2] = (PolicyRequest){.id = 3, .uid = 1002, .n_gpus = 1};
        allocate(&l, q, 3, dec);
        assert_int_equal(dec[0].verdict, POLICY_WAIT);
        assert_int_equal(dec[1].verdict, POLICY_WAIT);
        assert_string_equal(dec[1].reason, "waiting for 10 GiB on a shared GPU: 0 B free on "
                                           "one at most, more kept for earlier requests");
        assert_int_equal(dec[2].verdict, POLICY_GRANT);
        assert_int_equal(dec[2].devices[0], 1);
        policy_decisions_free(dec, 3);
}

static void expect_impossible(Lab *l, const PolicyRequest *r, const char *reason)
{
        char buf[160];
        PolicyDecision dec;

        assert_int_equal(policy_check_request(l->d, l->n, r, NULL, buf, sizeof buf),
                         POLICY_IMPOSSIBLE);
        assert_string_equal(buf, reason);
        allocate(l, r, 1, &dec);
        assert_int_equal(dec.verdict, POLICY_IMPOSSIBLE);
        assert_string_equal(dec.reason, reason);
}

static void test_impossible(void **state)
{
        Lab l = {};
        const char *named[] = {"GPU-00"};
        PolicyRequest r = {.id = 1, .uid = 1000, .share_bytes = 4 * GIB};
        char buf[160];

        lab_add(&l, 0);
        expect_impossible(&l, &r, "no GPU here is shareable (the admin lists them in sharing: "
                                  "gpus or models of gpukeeper.yaml)");
        lab_add(&l, 47 * GIB);
        r.share_bytes = 48 * GIB;
        expect_impossible(&l, &r, "asks for 48 GiB of a shared GPU, the largest shared GPU "
                                  "takes 47 GiB");
        r.share_bytes = 1000;
        expect_impossible(&l, &r, "a shared lease's budget is at least 1 MiB");
        r = (PolicyRequest){.id = 1, .uid = 1000, .share_bytes = 4 * GIB, .n_gpus = 2};
        expect_impossible(&l, &r, "a shared lease is a slice of one GPU: --share goes without "
                                  "--gpus N, --device and --mig");
        r = (PolicyRequest){.id = 1, .uid = 1000, .share_bytes = 4 * GIB, .named = named,
                            .n_named = 1};
        expect_impossible(&l, &r, "a shared lease is a slice of one GPU: --share goes without "
                                  "--gpus N, --device and --mig");
        r = (PolicyRequest){.id = 1, .uid = 1000, .share_bytes = 4 * GIB};
        assert_int_equal(policy_check_request(l.d, l.n, &r, NULL, buf, sizeof buf), 0);
}

static void test_budget_timeline(void **state)
{
        PolicyBudgetState s = {};
        const uint64_t grace = 10, kill = 5;

        assert_int_equal(policy_budget_step(&s, 10, 20, 100, grace, kill, true), 0);
        assert_int_equal(policy_budget_step(&s, 20, 20, 101, grace, kill, true), 0);
        assert_int_equal(policy_budget_step(&s, 21, 20, 102, grace, kill, true),
                         POLICY_BUDGET_NOTICE);
        assert_int_equal(policy_budget_step(&s, 30, 20, 111, grace, kill, true), 0);
        /* Back under before the grace: cancelled, and a new excess starts over. */
        assert_int_equal(policy_budget_step(&s, 19, 20, 111, grace, kill, true),
                         POLICY_BUDGET_CLEARED);
        assert_false(s.over);
        assert_int_equal(policy_budget_step(&s, 25, 20, 120, grace, kill, true),
                         POLICY_BUDGET_NOTICE);
        assert_int_equal(policy_budget_step(&s, 25, 20, 129, grace, kill, true), 0);
        assert_int_equal(policy_budget_step(&s, 25, 20, 130, grace, kill, true),
                         POLICY_BUDGET_SIGTERM);
        assert_int_equal(policy_budget_step(&s, 25, 20, 134, grace, kill, true), 0);
        assert_int_equal(policy_budget_step(&s, 25, 20, 135, grace, kill, true),
                         POLICY_BUDGET_SIGKILL);
        assert_int_equal(policy_budget_step(&s, 25, 20, 200, grace, kill, true), 0);
        assert_int_equal(policy_budget_step(&s, 0, 20, 201, grace, kill, true),
                         POLICY_BUDGET_CLEARED);

        /* Grace 0: notice and SIGTERM at once. */
        s = (PolicyBudgetState){};
        assert_int_equal(policy_budget_step(&s, 25, 20, 300, 0, kill, true),
                         POLICY_BUDGET_NOTICE | POLICY_BUDGET_SIGTERM);
        /* Observe mode: notices only. */
        s = (PolicyBudgetState){};
        assert_int_equal(policy_budget_step(&s, 25, 20, 300, 0, 0, false), POLICY_BUDGET_NOTICE);
        assert_int_equal(policy_budget_step(&s, 25, 20, 900, 0, 0, false), 0);
        assert_int_equal(policy_budget_step(&s, 2, 20, 901, 0, 0, false), POLICY_BUDGET_CLEARED);
}

/* ---- property test ---- */

typedef struct ModelLease {
        bool active;
        bool shared;
        uint64_t bytes;
        size_t dev[2];
        size_t n;
} ModelLease;

static uint64_t rnd_state;

static uint64_t rnd(void)
{
        rnd_state ^= rnd_state << 13;
        rnd_state ^= rnd_state >> 7;
        rnd_state ^= rnd_state << 17;
        return rnd_state;
}

static uint64_t rnd_below(uint64_t n)
{
        return rnd() % n;
}

/* The lab's sharing state from the model. */
static void model_apply(Lab *l, const ModelLease *m, size_t n_m)
{
        for (size_t i = 0; i < l->n; i++) {
                l->d[i].leased = false;
                l->d[i].shared_budget_bytes = 0;
                l->d[i].shared_leases = 0;
        }
        for (size_t k = 0; k < n_m; k++) {
                if (!m[k].active)
                        continue;
                for (size_t j = 0; j < m[k].n; j++) {
                        PolicyDevice *d = &l->d[m[k].dev[j]];

                        if (m[k].shared)
                                share_on(l, m[k].dev[j], m[k].bytes);
                        else {
                                assert_false(d->leased);
                                d->leased = true;
                        }
                }
        }
}

static void check_invariants(const Lab *l, uint64_t seed)
{
        for (size_t i = 0; i < l->n; i++) {
                const PolicyDevice *d = &l->d[i];

                if ((d->leased && d->shared_leases > 0) ||
                    d->shared_budget_bytes > d->share_capacity_bytes ||
                    (d->shared_leases > 0 && d->share_capacity_bytes == 0)) {
                        fprintf(stderr, "seed %" PRIu64 ": device %zu leased %d shared %u "
                                        "budget %" PRIu64 " capacity %" PRIu64 "\n",
                                seed, i, d->leased, d->shared_leases, d->shared_budget_bytes,
                                d->share_capacity_bytes);
                        fail();
                }
        }
}

/* The best leftover a lone shared request could get, or UINT64_MAX. */
static uint64_t best_leftover(const Lab *l, uint64_t want)
{
        uint64_t best = UINT64_MAX;

        for (size_t i = 0; i < l->n; i++) {
                const PolicyDevice *d = &l->d[i];
                uint64_t f = policy_share_free(d, 0);

                if (d->leased || !d->healthy || d->drained || d->share_capacity_bytes == 0 ||
                    f < want)
                        continue;
                if (f - want < best)
                        best = f - want;
        }
        return best;
}

static void run_scenario(uint64_t seed)
{
        Lab l = {};
        ModelLease m[MAX_LEASES] = {};
        size_t n_dev = 2 + rnd_below(5);

        rnd_state = seed * 2654435761u + 1;
        for (size_t i = 0; i < n_dev; i++)
                lab_add(&l, rnd_below(3) ? (8 + rnd_below(73)) * GIB : 0);
        for (int step = 0; step < 200; step++) {
                PolicyRequest q[4];
                PolicyDecision dec[4];
                size_t n_q = 1 + rnd_below(4), free_slot = 0;
                uint64_t lone_best = 0;

                /* Release a random lease sometimes. */
                if (rnd_below(3) == 0) {
                        size_t k = rnd_below(MAX_LEASES);

                        m[k].active = false;
                }
                model_apply(&l, m, MAX_LEASES);
                for (size_t k = 0; k < n_q; k++) {
                        bool shared = rnd_below(3) != 0;

                        q[k] = (PolicyRequest){.id = (uint64_t)step * 8 + k,
                                               .uid = (uid_t)(1000 + rnd_below(4))};
                        if (shared)
                                q[k].share_bytes = (1 + rnd_below(40)) * GIB;
                        else
                                q[k].n_gpus = 1 + (unsigned)rnd_below(2);
                }
                if (n_q == 1 && q[0].share_bytes)
                        lone_best = best_leftover(&l, q[0].share_bytes);
                allocate(&l, q, n_q, dec);
                for (size_t k = 0; k < n_q; k++) {
                        if (dec[k].verdict == POLICY_WAIT && n_q == 1 && q[0].share_bytes &&
                            lone_best != UINT64_MAX) {
                                fprintf(stderr, "seed %" PRIu64 ": a lone shared request "
                                                "waits though it fits\n", seed);
                                fail();
                        }
                        if (dec[k].verdict != POLICY_GRANT)
                                continue;
                        while (free_slot < MAX_LEASES && m[free_slot].active)
                                free_slot++;
                        if (free_slot == MAX_LEASES)
                                break;
                        m[free_slot] = (ModelLease){.active = true,
                                                    .shared = q[k].share_bytes > 0,
                                                    .bytes = q[k].share_bytes,
                                                    .n = dec[k].n_devices};
                        assert_true(dec[k].n_devices >= 1 && dec[k].n_devices <= 2);
                        for (size_t j = 0; j < dec[k].n_devices; j++)
                                m[free_slot].dev[j] = dec[k].devices[j];
                        if (n_q == 1 && q[0].share_bytes) {
                                const PolicyDevice *d = &l.d[dec[k].devices[0]];

                                if (policy_share_free(d, 0) - q[0].share_bytes != lone_best) {
                                        fprintf(stderr, "seed %" PRIu64 ": not the best fit\n",
                                                seed);
                                        fail();
                                }
                        }
                }
                policy_decisions_free(dec, n_q);
                model_apply(&l, m, MAX_LEASES);
                check_invariants(&l, seed);
        }
}

static GpuProcess proc(uint32_t pid, uid_t uid, uint64_t mib)
{
        return (GpuProcess){.pid = pid, .uid = uid, .instance = -1,
                            .memory_used_bytes = mib == UINT64_MAX ? GPU_VALUE_UNKNOWN
                                                                   : mib << 20};
}

static void test_attribute(void **state)
{
        (void)state;
        /* The issue's lab: three users, budgets 20/20/30 GiB; a fourth
         * user's process (a violation) and a vanished one count for nobody. */
        GpuProcess p[] = {
                proc(1, 1001, 10 * 1024), proc(2, 1002, 15 * 1024), proc(3, 1003, 20 * 1024),
                proc(4, 1003, 5 * 1024),  proc(5, 1004, 7 * 1024),  proc(6, 1001, UINT64_MAX),
                proc(7, 1002, 3 * 1024),
        };
        PolicyShareSlice s[] = {
                {.uid = 1001, .budget_bytes = 20 * GIB, .used_bytes = 99, .busy = true},
                {.uid = 1002, .budget_bytes = 20 * GIB},
                {.uid = 1003, .budget_bytes = 30 * GIB},
                {.uid = 1005, .budget_bytes = 1 * GIB, .used_bytes = 7, .busy = true},
        };

        p[6].vanished = true; /* gone before /proc could be read: owner unknown */
        policy_share_attribute(s, 4, p, 7);
        assert_int_equal(s[0].used_bytes, 10 * GIB); /* unknown memory adds nothing */
        assert_true(s[0].busy);
        assert_int_equal(s[1].used_bytes, 15 * GIB);
        assert_int_equal(s[2].used_bytes, 25 * GIB);
        assert_true(s[2].busy);
        assert_int_equal(s[3].used_bytes, 0); /* no process: reset, idle */
        assert_false(s[3].busy);

        /* An owner carried from an earlier snapshot still counts. */
        p[6].owner_from_earlier = true;
        policy_share_attribute(s, 2, p, 7);
        assert_int_equal(s[1].used_bytes, 18 * GIB);

        /* One user with two slices (10 and 30 GiB) holding 10 GiB + 1 byte:
         * split 1:3 by budget, the rest to the last, summing exactly. */
        GpuProcess q[] = {proc(1, 1001, 10 * 1024), proc(2, 1002, 1)};
        PolicyShareSlice two[] = {
                {.uid = 1001, .budget_bytes = 10 * GIB},
                {.uid = 1002, .budget_bytes = 5 * GIB},
                {.uid = 1001, .budget_bytes = 30 * GIB},
        };
        q[0].memory_used_bytes += 1;
        policy_share_attribute(two, 3, q, 2);
        assert_int_equal(two[0].used_bytes, (10 * GIB + 1) / 4);
        assert_int_equal(two[2].used_bytes, 10 * GIB + 1 - (10 * GIB + 1) / 4);
        assert_int_equal(two[0].used_bytes + two[2].used_bytes, 10 * GIB + 1);
        assert_true(two[0].busy && two[2].busy);
        assert_int_equal(two[1].used_bytes, 1 << 20);

        /* No processes at all: everyone idle at 0. */
        policy_share_attribute(two, 3, NULL, 0);
        for (size_t i = 0; i < 3; i++) {
                assert_int_equal(two[i].used_bytes, 0);
                assert_false(two[i].busy);
        }
}

static void test_property(void **state)
{
        const char *env = getenv("POLICY_SEED");

        if (env) {
                run_scenario(strtoull(env, NULL, 10));
                return;
        }
        for (uint64_t seed = 1; seed <= 400; seed++)
                run_scenario(seed);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_issue_lab),
                cmocka_unit_test(test_best_fit_and_whole),
                cmocka_unit_test(test_fifo),
                cmocka_unit_test(test_impossible),
                cmocka_unit_test(test_budget_timeline),
                cmocka_unit_test(test_attribute),
                cmocka_unit_test(test_property),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
