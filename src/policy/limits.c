/* Per-user limits: which base value and how much per GPU applies to a user,
 * resource by resource (see policy/limits-policy.h). */
#include "policy/limits-policy.h"

#include <assert.h>
#include <string.h>

#include "basic/macro.h"

const char *policy_limit_resource_to_string(PolicyLimitResource r)
{
        static const char *const names[_POLICY_LIMIT_MAX] = {
                [POLICY_LIMIT_CPU] = "cpu",
                [POLICY_LIMIT_MEMORY] = "memory",
                [POLICY_LIMIT_TASKS] = "tasks",
        };

        assert(r >= 0 && r < _POLICY_LIMIT_MAX);
        return names[r];
}

const char *policy_limit_source_to_string(PolicyLimitSource s)
{
        switch (s) {
        case POLICY_LIMIT_FROM_DEFAULT:
                return "default";
        case POLICY_LIMIT_FROM_GROUP:
                return "group";
        case POLICY_LIMIT_FROM_NONE:
        default:
                return "none";
        }
}

uint64_t policy_limit_values_get(const PolicyLimitValues *v, PolicyLimitResource r)
{
        assert(v);
        switch (r) {
        case POLICY_LIMIT_CPU:
                return v->cpu_percent;
        case POLICY_LIMIT_MEMORY:
                return v->memory_bytes;
        case POLICY_LIMIT_TASKS:
                return v->tasks;
        default:
                assert(!"unknown limit resource");
                return POLICY_LIMIT_UNSET;
        }
}

static bool member_of(const char *group, const char *const *names, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (names[i] && strcmp(names[i], group) == 0)
                        return true;
        return false;
}

/* base + per_gpu * n, saturating to INFINITY (which is never a real limit). */
static uint64_t add_per_gpu(uint64_t base, uint64_t per_gpu, unsigned n)
{
        uint64_t extra;

        if (base == POLICY_LIMIT_INFINITY)
                return POLICY_LIMIT_INFINITY;
        if (per_gpu == POLICY_LIMIT_UNSET || per_gpu == POLICY_LIMIT_INFINITY || n == 0)
                return per_gpu == POLICY_LIMIT_INFINITY && n > 0 ? POLICY_LIMIT_INFINITY : base;
        if (__builtin_mul_overflow(per_gpu, (uint64_t)n, &extra) ||
            __builtin_add_overflow(base, extra, &extra) || extra == POLICY_LIMIT_INFINITY)
                return POLICY_LIMIT_INFINITY;
        return extra;
}

void policy_limits_decide(const PolicyLimitRules *rules, const char *const *group_names,
                          size_t n_group_names, unsigned n_gpus, PolicyUserLimits *ret)
{
        assert(rules);
        assert(group_names || n_group_names == 0);
        assert(ret);

        for (int r = 0; r < _POLICY_LIMIT_MAX; r++) {
                PolicyUserLimit *l = &ret->limit[r];
                uint64_t v = policy_limit_values_get(&rules->defaults, r);

                *l = (PolicyUserLimit){
                        .base = POLICY_LIMIT_INFINITY,
                        .source = POLICY_LIMIT_FROM_NONE,
                        .per_gpu = policy_limit_values_get(&rules->per_gpu, r),
                        .n_gpus = n_gpus,
                };
                if (v != POLICY_LIMIT_UNSET) {
                        l->base = v;
                        l->source = POLICY_LIMIT_FROM_DEFAULT;
                }
                for (size_t i = 0; i < rules->n_groups; i++) {
                        const PolicyLimitGroup *g = &rules->groups[i];
                        uint64_t gv = policy_limit_values_get(&g->values, r);

                        if (gv == POLICY_LIMIT_UNSET || !g->group ||
                            !member_of(g->group, group_names, n_group_names))
                                continue;
                        l->base = gv;
                        l->source = POLICY_LIMIT_FROM_GROUP;
                        l->group = g->group;
                        break;
                }
                l->value = add_per_gpu(l->base, l->per_gpu, n_gpus);
        }
}

bool policy_limits_same_values(const PolicyUserLimits *a, const PolicyUserLimits *b)
{
        for (int r = 0; r < _POLICY_LIMIT_MAX; r++)
                if (a->limit[r].value != b->limit[r].value)
                        return false;
        return true;
}
