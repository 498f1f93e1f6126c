/* Tests of the MIG placement planner (src/policy/mig-place.c).
 *
 * Table tests pin the rules down on the H100 / A100 placement table
 * (NVIDIA MIG user guide, `nvidia-smi mig -lgipp`): the placement that
 * leaves the most choices, keeping the largest future profile, per-profile instance
 * limits, ineligible GPUs, destroying idle on-demand instances only when
 * nothing fits and never a leased one, and -EINVAL for malformed input.
 *
 * The property test runs random request / release sequences on random
 * machines and checks every decision against an independent brute force:
 * a placement the planner returns is valid (allowed start, no overlap once
 * its destroy list is gone, under the instance limit, destroys only
 * destroyable instances), and the planner refuses only when the brute
 * force finds no placement either without destroying a leased instance.
 * A failure prints the seed; MIG_SEED=<n> replays that one sequence. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/mig-place.h"

/* H100 80GB: index order of NVML_GPU_INSTANCE_PROFILE_* (1g, 2g, 3g, 4g, 7g, 1g+me, 1g.20gb). */
static const PolicyMigProfile h100[] = {
        { "1g.10gb", 1, 0x7F, 7 }, { "2g.20gb", 2, 0x15, 3 }, { "3g.40gb", 4, 0x11, 2 },
        { "4g.40gb", 4, 0x01, 1 }, { "7g.80gb", 8, 0x01, 1 }, { "1g.10gb+me", 1, 0x7F, 1 },
        { "1g.20gb", 2, 0x55, 4 },
};
enum { P1G, P2G, P3G, P4G, P7G, P1GME, P1G20 };
#define NP (sizeof(h100) / sizeof(h100[0]))

static PolicyMigGpu gpu(const PolicyMigInstance *in, size_t n, bool eligible)
{
        return (PolicyMigGpu) { .profiles = h100, .n_profiles = NP, .instances = in,
                                .n_instances = n, .eligible = eligible };
}

static void test_empty_gpu(void **state)
{
        PolicyMigGpu g = gpu(NULL, 0, true);
        PolicyMigPlan plan;

        assert_int_equal(policy_mig_place(&g, 1, "7g.80gb", &plan), 1);
        assert_int_equal(plan.start, 0);
        assert_int_equal(plan.profile, P7G);
        assert_int_equal(plan.n_destroy, 0);
        /* A 3g on an empty GPU goes to slice 4: 4g.40gb at 0 stays possible. */
        assert_int_equal(policy_mig_place(&g, 1, "3g.40gb", &plan), 1);
        assert_int_equal(plan.start, 4);
        /* A 1g goes to the end, keeping 4g.40gb at 0 possible. */
        assert_int_equal(policy_mig_place(&g, 1, "1g.10gb", &plan), 1);
        assert_true(plan.start >= 4);
        assert_int_equal(policy_mig_place(&g, 1, "5g.50gb", &plan), 0);
}

/* Rule 1 first: the placement that leaves its GPU the most choices. An
 * empty H100 has 25 placements over the 7 profiles; a 1g.10gb at slice 6
 * leaves 20 there, while on a GPU whose slices 4-7 hold a 3g.40gb the best
 * 1g leaves 8. Ties inside one GPU go to the start that keeps larger
 * profiles possible (4g.40gb at 0). */
static void test_choice_keeps_options(void **state)
{
        PolicyMigInstance b[] = { { P3G, 4, false } };
        PolicyMigGpu g[] = { gpu(NULL, 0, true), gpu(b, 1, true) };
        PolicyMigPlan plan;

        assert_int_equal(policy_mig_place(g, 2, "1g.10gb", &plan), 1);
        assert_int_equal(plan.gpu, 0);
        assert_int_equal(plan.start, 6);
        assert_int_equal(policy_mig_place(g, 2, "2g.20gb", &plan), 1);
        assert_int_equal(plan.gpu, 0);
        assert_int_equal(plan.start, 4);
        /* 7g only fits the empty one; 4g.40gb at 0 fits both, the empty one keeps more. */
        assert_int_equal(policy_mig_place(g, 2, "7g.80gb", &plan), 1);
        assert_int_equal(plan.gpu, 0);
        assert_int_equal(policy_mig_place(&g[1], 1, "4g.40gb", &plan), 1);
        assert_int_equal(plan.start, 0);
        /* Mirror-image GPUs tie on every rule: the lower index wins. */
        {
                PolicyMigInstance x[] = { { P3G, 4, false } };
                PolicyMigGpu two[] = { gpu(x, 1, true), gpu(x, 1, true) };

                assert_int_equal(policy_mig_place(two, 2, "1g.10gb", &plan), 1);
                assert_int_equal(plan.gpu, 0);
        }
}

static void test_limits_and_eligibility(void **state)
{
        PolicyMigInstance me[] = { { P1GME, 0, false } };
        PolicyMigInstance full[] = { { P1G, 0, false }, { P1G, 1, false }, { P1G, 2, false },
                                     { P1G, 3, false }, { P1G, 4, false }, { P1G, 5, false },
                                     { P1G, 6, false } };
        PolicyMigGpu g = gpu(me, 1, true), f = gpu(full, 7, true), off = gpu(NULL, 0, false);
        PolicyMigPlan plan;

        /* One 1g.10gb+me per GPU. */
        assert_int_equal(policy_mig_place(&g, 1, "1g.10gb+me", &plan), 0);
        assert_int_equal(policy_mig_place(&g, 1, "1g.10gb", &plan), 1);
        /* Seven 1g fill an H100: slice 7 takes no 1g. */
        assert_int_equal(policy_mig_place(&f, 1, "1g.10gb", &plan), 0);
        assert_int_equal(policy_mig_place(&off, 1, "1g.10gb", &plan), 0);
}

static void test_destroy_idle_never_leased(void **state)
{
        PolicyMigInstance leased[] = { { P3G, 0, false }, { P3G, 4, false } };
        PolicyMigInstance idle[] = { { P3G, 0, false }, { P1G, 4, true }, { P1G, 5, true },
                                     { P1G20, 6, false } };
        PolicyMigGpu g1 = gpu(leased, 2, true), g2 = gpu(idle, 4, true);
        PolicyMigPlan plan;

        assert_int_equal(policy_mig_place(&g1, 1, "2g.20gb", &plan), 0);
        /* 2g at 4 needs both idle 1g gone; 1g.20gb at 6 is leased and stays. */
        assert_int_equal(policy_mig_place(&g2, 1, "2g.20gb", &plan), 1);
        assert_int_equal(plan.start, 4);
        assert_int_equal(plan.n_destroy, 2);
        assert_int_equal(plan.destroy[0], 1);
        assert_int_equal(plan.destroy[1], 2);
        /* A 1g needs no destruction at all? No slice is free: destroy just one. */
        assert_int_equal(policy_mig_place(&g2, 1, "1g.10gb", &plan), 1);
        assert_int_equal(plan.n_destroy, 1);
        /* Prefer a GPU where nothing must go. */
        {
                PolicyMigGpu two[] = { g2, gpu(NULL, 0, true) };

                assert_int_equal(policy_mig_place(two, 2, "1g.10gb", &plan), 1);
                assert_int_equal(plan.gpu, 1);
                assert_int_equal(plan.n_destroy, 0);
        }
}

static void test_invalid(void **state)
{
        PolicyMigInstance overlap[] = { { P3G, 0, false }, { P1G, 2, false } };
        PolicyMigInstance badstart[] = { { P3G, 2, false } };
        PolicyMigInstance badprof[] = { { 99, 0, false } };
        PolicyMigProfile wide[] = { { "x", 9, 0x01, 1 } };
        PolicyMigProfile tail[] = { { "x", 4, 0x20, 1 } };
        PolicyMigGpu g = gpu(overlap, 2, true);
        PolicyMigPlan plan;

        assert_int_equal(policy_mig_place(&g, 1, "1g.10gb", &plan), -EINVAL);
        g = gpu(badstart, 1, true);
        assert_int_equal(policy_mig_place(&g, 1, "1g.10gb", &plan), -EINVAL);
        g = gpu(badprof, 1, true);
        assert_int_equal(policy_mig_place(&g, 1, "1g.10gb", &plan), -EINVAL);
        g = (PolicyMigGpu) { .profiles = wide, .n_profiles = 1, .eligible = true };
        assert_int_equal(policy_mig_place(&g, 1, "x", &plan), -EINVAL);
        g = (PolicyMigGpu) { .profiles = tail, .n_profiles = 1, .eligible = true };
        assert_int_equal(policy_mig_place(&g, 1, "x", &plan), -EINVAL);
        assert_int_equal(policy_mig_place(NULL, 1, "x", &plan), -EINVAL);
        assert_int_equal(policy_mig_place(&g, 1, NULL, &plan), -EINVAL);
        assert_int_equal(policy_mig_place(NULL, 0, "x", &plan), 0);
}

static void test_pack(void **state)
{
        /* all-balanced on an H100: 2 x 1g.10gb, 1 x 2g.20gb, 1 x 3g.40gb (7 slices). */
        unsigned add[] = { P1G, P1G, P2G, P3G }, starts[4];
        PolicyMigGpu g = gpu(NULL, 0, true);
        unsigned used = 0;

        assert_int_equal(policy_mig_pack(&g, add, 4, starts), 1);
        for (size_t i = 0; i < 4; i++) {
                unsigned m = ((1u << h100[add[i]].size) - 1) << starts[i];

                assert_true(h100[add[i]].starts & (1u << starts[i]));
                assert_int_equal(used & m, 0);
                used |= m;
        }
        /* Around a kept 3g at 0 the rest cannot take another 3g and a 2g and two 1g. */
        {
                PolicyMigInstance kept[] = { { P3G, 0, false } };
                unsigned more[] = { P3G, P2G, P1G }, s3[3];
                PolicyMigGpu k = gpu(kept, 1, true);

                assert_int_equal(policy_mig_pack(&k, more, 3, s3), 0);
                assert_int_equal(policy_mig_pack(&k, more, 2, s3), 0);
                assert_int_equal(policy_mig_pack(&k, more + 1, 2, s3), 1);
        }
        /* Eight 1g never fit; seven do. */
        {
                unsigned seven[7] = { 0 }, s7[8], eight[8] = { 0 };

                assert_int_equal(policy_mig_pack(&g, seven, 7, s7), 1);
                assert_int_equal(policy_mig_pack(&g, eight, 8, s7), 0);
        }
        assert_int_equal(policy_mig_pack(&g, (unsigned[]) { 99 }, 1, starts), -EINVAL);
}

/* ---- property test ---- */

#define PT_GPUS 4

typedef struct Machine {
        PolicyMigInstance in[PT_GPUS][POLICY_MIG_MAX_INSTANCES];
        size_t n[PT_GPUS];
        bool eligible[PT_GPUS];
        PolicyMigGpu g[PT_GPUS];
} Machine;

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return (uint32_t)(rng_state % n);
}

static void machine_views(Machine *m)
{
        for (size_t i = 0; i < PT_GPUS; i++)
                m->g[i] = gpu(m->in[i], m->n[i], m->eligible[i]);
}

/* Independent brute force: can profile p go on GPU g when only destroyable
 * instances may be removed? Written from the rules, not from the planner:
 * try every start; the instances in the way must all be destroyable, and
 * the non-destroyable instances of p that remain must be under the limit. */
static bool brute_fits(const Machine *m, size_t g, unsigned p)
{
        const PolicyMigProfile *pr = &h100[p];

        if (!m->eligible[g])
                return false;
        for (unsigned s = 0; s + pr->size <= 8; s++) {
                unsigned kept_of_p = 0;
                bool blocked = false;

                if (!(pr->starts & (1u << s)))
                        continue;
                for (size_t i = 0; i < m->n[g]; i++) {
                        const PolicyMigInstance *in = &m->in[g][i];
                        unsigned a = in->start, b = in->start + h100[in->profile].size;
                        bool overlaps = s < b && a < s + pr->size;

                        if (overlaps && !in->destroyable)
                                blocked = true;
                        if (in->profile == p && !in->destroyable)
                                kept_of_p++;
                }
                if (!blocked && kept_of_p < pr->max_instances)
                        return true;
        }
        return false;
}

/* The plan is valid: allowed start, destroys only destroyable instances,
 * no overlap with what is left, under the profile's limit. */
static void check_plan(const Machine *m, unsigned p, const PolicyMigPlan *plan)
{
        size_t g = plan->gpu;
        unsigned used = 0, count = 0;
        bool gone[POLICY_MIG_MAX_INSTANCES] = {};

        assert_true(g < PT_GPUS);
        assert_true(m->eligible[g]);
        assert_int_equal(plan->profile, p);
        assert_true(h100[p].starts & (1u << plan->start));
        for (size_t k = 0; k < plan->n_destroy; k++) {
                assert_true(plan->destroy[k] < m->n[g]);
                assert_true(m->in[g][plan->destroy[k]].destroyable);
                gone[plan->destroy[k]] = true;
        }
        for (size_t i = 0; i < m->n[g]; i++) {
                if (gone[i])
                        continue;
                used |= ((1u << h100[m->in[g][i].profile].size) - 1) << m->in[g][i].start;
                count += m->in[g][i].profile == p;
        }
        assert_int_equal(used & (((1u << h100[p].size) - 1) << plan->start), 0);
        assert_true(count < h100[p].max_instances);
}

static void apply_plan(Machine *m, unsigned p, const PolicyMigPlan *plan, bool on_demand)
{
        size_t g = plan->gpu, w = 0;
        bool gone[POLICY_MIG_MAX_INSTANCES] = {};

        for (size_t k = 0; k < plan->n_destroy; k++)
                gone[plan->destroy[k]] = true;
        for (size_t i = 0; i < m->n[g]; i++)
                if (!gone[i])
                        m->in[g][w++] = m->in[g][i];
        m->n[g] = w;
        /* Granted right away: leased, so not destroyable while held. */
        m->in[g][m->n[g]++] = (PolicyMigInstance) { p, plan->start, false };
        (void)on_demand;
}

static void run_sequence(uint64_t seed)
{
        Machine m = {};
        char msg[64];

        rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
        snprintf(msg, sizeof(msg), "MIG_SEED=%llu", (unsigned long long)seed);
        for (size_t g = 0; g < PT_GPUS; g++)
                m.eligible[g] = rnd(8) != 0;
        for (unsigned step = 0; step < 60; step++) {
                size_t g = rnd(PT_GPUS);

                machine_views(&m);
                if (rnd(3) == 0 && m.n[g] > 0) {
                        /* A lease ends: its instance becomes idle (destroyable) or is destroyed. */
                        size_t i = rnd((uint32_t)m.n[g]);

                        if (rnd(2) == 0)
                                m.in[g][i].destroyable = true;
                        else {
                                m.in[g][i] = m.in[g][m.n[g] - 1];
                                m.n[g]--;
                        }
                        continue;
                }
                unsigned p = rnd(NP);
                PolicyMigPlan plan;
                bool any = false;
                int r = policy_mig_place(m.g, PT_GPUS, h100[p].name, &plan);

                for (size_t k = 0; k < PT_GPUS; k++)
                        any |= brute_fits(&m, k, p);
                if (r != (any ? 1 : 0))
                        fail_msg("%s step %u: planner says %d for %s, brute force %d", msg, step, r,
                                 h100[p].name, any);
                if (r == 1) {
                        check_plan(&m, p, &plan);
                        apply_plan(&m, p, &plan, true);
                }
        }
}

static void test_property(void **state)
{
        const char *only = getenv("MIG_SEED");

        if (only) {
                run_sequence(strtoull(only, NULL, 10));
                return;
        }
        for (uint64_t seed = 1; seed <= 3000; seed++)
                run_sequence(seed);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_empty_gpu),
                cmocka_unit_test(test_choice_keeps_options),
                cmocka_unit_test(test_limits_and_eligibility),
                cmocka_unit_test(test_destroy_idle_never_leased),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_pack),
                cmocka_unit_test(test_property),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
