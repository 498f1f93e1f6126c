/* Tests of the per-user limits decision (src/policy/limits.c).
 *
 * Table tests pin the rules down (the issue's example: default, a phd
 * group, per_gpu added per held GPU; sources; saturation). The exhaustive
 * test walks every combination of: each value of default, of two groups and
 * of per_gpu being unset / a number / infinity (per_gpu: unset / a number),
 * membership in none, either or both groups, and 0..3 GPUs held, for each
 * resource, and compares with a reference written independently from the
 * rules in policy/limits-policy.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/limits-policy.h"

#define G (UINT64_C(1) << 30)
#define INF POLICY_LIMIT_INFINITY

static void test_issue_example(void **state)
{
        /* limits: default {cpu: 400%, memory: 64G, tasks: 4096},
         *         groups {phd: {cpu: 800%, memory: 128G}}, per_gpu {cpu: 800%, memory: 120G} */
        PolicyLimitGroup groups[] = {{"phd", {800, 128 * G, 0}}};
        PolicyLimitRules rules = {
                .defaults = {400, 64 * G, 4096},
                .groups = groups,
                .n_groups = 1,
                .per_gpu = {800, 120 * G, 0},
        };
        const char *alice[] = {"users"}, *bob[] = {"users", "phd"};
        PolicyUserLimits l;

        policy_limits_decide(&rules, alice, 1, 0, &l);
        assert_int_equal(l.limit[POLICY_LIMIT_CPU].value, 400);
        assert_int_equal(l.limit[POLICY_LIMIT_CPU].source, POLICY_LIMIT_FROM_DEFAULT);
        assert_int_equal(l.limit[POLICY_LIMIT_MEMORY].value, 64 * G);
        assert_int_equal(l.limit[POLICY_LIMIT_TASKS].value, 4096);

        policy_limits_decide(&rules, alice, 1, 2, &l);
        assert_int_equal(l.limit[POLICY_LIMIT_CPU].value, 400 + 2 * 800);
        assert_int_equal(l.limit[POLICY_LIMIT_MEMORY].value, 64 * G + 240 * G);
        assert_int_equal(l.limit[POLICY_LIMIT_TASKS].value, 4096); /* no per_gpu tasks */
        assert_int_equal(l.limit[POLICY_LIMIT_MEMORY].n_gpus, 2);
        assert_int_equal(l.limit[POLICY_LIMIT_MEMORY].per_gpu, 120 * G);

        policy_limits_decide(&rules, bob, 2, 1, &l);
        assert_int_equal(l.limit[POLICY_LIMIT_CPU].value, 1600);
        assert_int_equal(l.limit[POLICY_LIMIT_CPU].source, POLICY_LIMIT_FROM_GROUP);
        assert_string_equal(l.limit[POLICY_LIMIT_CPU].group, "phd");
        assert_int_equal(l.limit[POLICY_LIMIT_MEMORY].value, 248 * G);
        /* phd does not give tasks: the default's */
        assert_int_equal(l.limit[POLICY_LIMIT_TASKS].source, POLICY_LIMIT_FROM_DEFAULT);
        assert_int_equal(l.limit[POLICY_LIMIT_TASKS].value, 4096);
}

static void test_nothing_configured(void **state)
{
        PolicyLimitRules rules = {0};
        PolicyUserLimits l;

        policy_limits_decide(&rules, NULL, 0, 5, &l);
        for (int r = 0; r < _POLICY_LIMIT_MAX; r++) {
                assert_true(l.limit[r].value == INF);
                assert_int_equal(l.limit[r].source, POLICY_LIMIT_FROM_NONE);
        }
}

static void test_first_group_in_file_order(void **state)
{
        PolicyLimitGroup groups[] = {{"staff", {200, 0, 0}}, {"phd", {800, 8 * G, 0}}};
        PolicyLimitRules rules = {.defaults = {100, G, 10}, .groups = groups, .n_groups = 2};
        const char *both[] = {"phd", "staff"}; /* the user's own order does not matter */
        PolicyUserLimits l;

        policy_limits_decide(&rules, both, 2, 0, &l);
        assert_int_equal(l.limit[POLICY_LIMIT_CPU].value, 200);
        assert_string_equal(l.limit[POLICY_LIMIT_CPU].group, "staff");
        /* staff gives no memory: the next group that does */
        assert_int_equal(l.limit[POLICY_LIMIT_MEMORY].value, 8 * G);
        assert_string_equal(l.limit[POLICY_LIMIT_MEMORY].group, "phd");
        assert_int_equal(l.limit[POLICY_LIMIT_TASKS].source, POLICY_LIMIT_FROM_DEFAULT);
}

static void test_infinity_and_saturation(void **state)
{
        PolicyLimitGroup groups[] = {{"admins", {INF, INF, INF}}};
        PolicyLimitRules rules = {
                .defaults = {100, INF - 5, 10},
                .groups = groups,
                .n_groups = 1,
                .per_gpu = {UINT64_MAX / 2, 10, 0},
        };
        const char *admin[] = {"admins"}, *none[] = {NULL};
        PolicyUserLimits l;

        policy_limits_decide(&rules, admin, 1, 3, &l);
        for (int r = 0; r < _POLICY_LIMIT_MAX; r++)
                assert_true(l.limit[r].value == INF);

        policy_limits_decide(&rules, none, 1, 3, &l);
        assert_true(l.limit[POLICY_LIMIT_CPU].value == INF);    /* overflow saturates */
        assert_true(l.limit[POLICY_LIMIT_MEMORY].value == INF); /* sum reaching INF */
        assert_int_equal(l.limit[POLICY_LIMIT_TASKS].value, 10);
}

static void test_same_values(void **state)
{
        PolicyLimitGroup groups[] = {{"phd", {300, 0, 0}}};
        PolicyLimitRules a = {.defaults = {300, G, 5}}, b = {.defaults = {100, G, 5},
                                                              .groups = groups, .n_groups = 1};
        const char *phd[] = {"phd"};
        PolicyUserLimits la, lb;

        policy_limits_decide(&a, NULL, 0, 0, &la);
        policy_limits_decide(&b, phd, 1, 0, &lb);
        assert_true(policy_limits_same_values(&la, &lb));
        policy_limits_decide(&b, phd, 1, 0, &lb);
        policy_limits_decide(&a, NULL, 0, 1, &la);
        assert_true(policy_limits_same_values(&la, &lb)); /* no per_gpu: GPUs change nothing */
        b.per_gpu.tasks = 1;
        policy_limits_decide(&b, phd, 1, 1, &lb);
        assert_false(policy_limits_same_values(&la, &lb));
}

static void test_names(void **state)
{
        assert_string_equal(policy_limit_resource_to_string(POLICY_LIMIT_CPU), "cpu");
        assert_string_equal(policy_limit_resource_to_string(POLICY_LIMIT_MEMORY), "memory");
        assert_string_equal(policy_limit_resource_to_string(POLICY_LIMIT_TASKS), "tasks");
        assert_string_equal(policy_limit_source_to_string(POLICY_LIMIT_FROM_NONE), "none");
        assert_string_equal(policy_limit_source_to_string(POLICY_LIMIT_FROM_DEFAULT), "default");
        assert_string_equal(policy_limit_source_to_string(POLICY_LIMIT_FROM_GROUP), "group");
}

/* The reference: the rules of limits.h, written as a list of candidates. */
static void reference(const uint64_t def, const uint64_t g[2], const bool member[2],
                      uint64_t per_gpu, unsigned n, uint64_t *ret_value, int *ret_source,
                      int *ret_group)
{
        uint64_t base = INF;
        int source = POLICY_LIMIT_FROM_NONE, group = -1;

        if (member[0] && g[0] != 0) {
                base = g[0], source = POLICY_LIMIT_FROM_GROUP, group = 0;
        } else if (member[1] && g[1] != 0) {
                base = g[1], source = POLICY_LIMIT_FROM_GROUP, group = 1;
        } else if (def != 0) {
                base = def, source = POLICY_LIMIT_FROM_DEFAULT;
        }
        *ret_source = source;
        *ret_group = group;
        if (base == INF)
                *ret_value = INF;
        else if (per_gpu == 0)
                *ret_value = base;
        else {
                /* small numbers: no overflow in this table */
                *ret_value = base + per_gpu * n;
        }
}

static void test_exhaustive(void **state)
{
        const uint64_t choices[] = {0, 7, INF};          /* unset, a number, infinity */
        const uint64_t per_gpu_choices[] = {0, 3};       /* unset, a number */
        const char *names[] = {"g0", "g1"};
        unsigned cases = 0;

        for (int res = 0; res < _POLICY_LIMIT_MAX; res++)
        for (size_t di = 0; di < 3; di++)
        for (size_t g0 = 0; g0 < 3; g0++)
        for (size_t g1 = 0; g1 < 3; g1++)
        for (size_t pi = 0; pi < 2; pi++)
        for (unsigned mask = 0; mask < 4; mask++)
        for (unsigned n = 0; n <= 3; n++) {
                PolicyLimitGroup groups[2] = {{(char *)"g0", {0}}, {(char *)"g1", {0}}};
                PolicyLimitRules rules = {.groups = groups, .n_groups = 2};
                uint64_t *slot[4];
                const char *member_names[2];
                size_t n_member = 0;
                bool member[2] = {mask & 1, mask & 2};
                uint64_t g[2] = {choices[g0], choices[g1]}, want;
                int want_source, want_group;
                PolicyUserLimits l;

                slot[0] = res == POLICY_LIMIT_CPU ? &rules.defaults.cpu_percent
                        : res == POLICY_LIMIT_MEMORY ? &rules.defaults.memory_bytes
                                                     : &rules.defaults.tasks;
                slot[1] = res == POLICY_LIMIT_CPU ? &groups[0].values.cpu_percent
                        : res == POLICY_LIMIT_MEMORY ? &groups[0].values.memory_bytes
                                                     : &groups[0].values.tasks;
                slot[2] = res == POLICY_LIMIT_CPU ? &groups[1].values.cpu_percent
                        : res == POLICY_LIMIT_MEMORY ? &groups[1].values.memory_bytes
                                                     : &groups[1].values.tasks;
                slot[3] = res == POLICY_LIMIT_CPU ? &rules.per_gpu.cpu_percent
                        : res == POLICY_LIMIT_MEMORY ? &rules.per_gpu.memory_bytes
                                                     : &rules.per_gpu.tasks;
                *slot[0] = choices[di];
                *slot[1] = g[0];
                *slot[2] = g[1];
                *slot[3] = per_gpu_choices[pi];
                /* the user lists its groups in the reverse of the file's order */
                if (member[1])
                        member_names[n_member++] = names[1];
                if (member[0])
                        member_names[n_member++] = names[0];

                policy_limits_decide(&rules, member_names, n_member, n, &l);
                reference(choices[di], g, member, per_gpu_choices[pi], n, &want, &want_source,
                          &want_group);
                assert_true(l.limit[res].value == want);
                assert_int_equal(l.limit[res].source, want_source);
                if (want_group >= 0)
                        assert_string_equal(l.limit[res].group, names[want_group]);
                assert_int_equal(l.limit[res].n_gpus, n);
                assert_true(l.limit[res].per_gpu == per_gpu_choices[pi]);
                /* the other resources are untouched by this one's values */
                for (int o = 0; o < _POLICY_LIMIT_MAX; o++)
                        if (o != res)
                                assert_true(l.limit[o].value == INF);
                cases++;
        }
        assert_int_equal(cases, 3 * 3 * 3 * 3 * 2 * 4 * 4);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_issue_example),
                cmocka_unit_test(test_nothing_configured),
                cmocka_unit_test(test_first_group_in_file_order),
                cmocka_unit_test(test_infinity_and_saturation),
                cmocka_unit_test(test_same_values),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_exhaustive),
        };

        return cmocka_run_group_tests_name("policy-limits", tests, NULL, NULL);
}
