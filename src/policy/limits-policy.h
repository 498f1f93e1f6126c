/* Per-user CPU / memory / tasks limits: the pure decision of what applies to
 * one user (the `limits:` section of gpukeeper.yaml(5)).
 *
 * A user's limit for each resource is its base value plus per_gpu times the
 * number of GPUs the user holds right now (a MIG instance counts as one, as
 * in policy.max_gpus). The base is that of the first entry of limits.groups,
 * in file order, among the user's groups that gives the resource, else
 * limits.default's, else none (no limit). Each resource is decided on its own
 * and the answer says where its value came from, for `gpukeeper limits show`.
 * Nothing here does I/O; src/limits/ applies the result. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A value that was not given (in a group: inherit; in default: no limit). */
#define POLICY_LIMIT_UNSET UINT64_C(0)
/* "infinity": no limit (also the result when nothing gives a value). */
#define POLICY_LIMIT_INFINITY UINT64_MAX

typedef enum PolicyLimitResource {
        POLICY_LIMIT_CPU,    /* percent of one CPU (400 = four CPUs' worth of time) */
        POLICY_LIMIT_MEMORY, /* bytes */
        POLICY_LIMIT_TASKS,  /* processes and threads */
        _POLICY_LIMIT_MAX,
} PolicyLimitResource;

/* One set of values; each POLICY_LIMIT_UNSET, POLICY_LIMIT_INFINITY or a number. */
typedef struct PolicyLimitValues {
        uint64_t cpu_percent;
        uint64_t memory_bytes;
        uint64_t tasks;
} PolicyLimitValues;

typedef struct PolicyLimitGroup {
        char *group; /* a Unix group name */
        PolicyLimitValues values;
} PolicyLimitGroup;

/* What the configuration says. per_gpu is never INFINITY (the config refuses it). */
typedef struct PolicyLimitRules {
        PolicyLimitValues defaults;
        PolicyLimitGroup *groups; /* file order */
        size_t n_groups;
        PolicyLimitValues per_gpu;
} PolicyLimitRules;

typedef enum PolicyLimitSource {
        POLICY_LIMIT_FROM_NONE,    /* nothing gives it: no limit */
        POLICY_LIMIT_FROM_DEFAULT, /* limits.default */
        POLICY_LIMIT_FROM_GROUP,   /* limits.groups.NAME */
} PolicyLimitSource;

/* One resource's answer. */
typedef struct PolicyUserLimit {
        uint64_t value;           /* what applies: base + per_gpu * n_gpus, or INFINITY */
        uint64_t base;            /* the base value (INFINITY when none) */
        PolicyLimitSource source; /* where the base came from */
        const char *group;        /* FROM_GROUP: the group's name (points into the rules) */
        uint64_t per_gpu;         /* per_gpu's value, UNSET when not given */
        unsigned n_gpus;          /* GPUs held */
} PolicyUserLimit;

typedef struct PolicyUserLimits {
        PolicyUserLimit limit[_POLICY_LIMIT_MAX];
} PolicyUserLimits;

/* "cpu", "memory", "tasks". */
const char *policy_limit_resource_to_string(PolicyLimitResource r);
/* "none", "default", "group". */
const char *policy_limit_source_to_string(PolicyLimitSource s);

/* The value of resource `r` in `v`. */
uint64_t policy_limit_values_get(const PolicyLimitValues *v, PolicyLimitResource r);

/* The limits of a user who is a member of the groups `group_names[0..n)`
 * (NULL entries are skipped) and holds `n_gpus` GPUs. Sums saturate to
 * POLICY_LIMIT_INFINITY. Never fails. */
void policy_limits_decide(const PolicyLimitRules *rules, const char *const *group_names,
                          size_t n_group_names, unsigned n_gpus, PolicyUserLimits *ret);

/* Whether two answers apply the same values (sources aside). */
bool policy_limits_same_values(const PolicyUserLimits *a, const PolicyUserLimits *b);
