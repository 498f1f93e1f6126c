/* The policy section of gpukeeper.yaml(5): how many devices a user may hold
 * and for how long, at the policy level and per Unix group. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/parse.h"
#include "config/loader.h"

/* The policy section (see gpukeeper.yaml(5) for what each key means). */
#define CONFIG_DEFAULT_MAX_GPUS UINT64_C(0) /* no limit */
#define CONFIG_DEFAULT_DEFAULT_DURATION_USEC (4 * USEC_PER_HOUR)
#define CONFIG_DEFAULT_MAX_DURATION_USEC (24 * USEC_PER_HOUR)
#define CONFIG_DEFAULT_UNLEASED_MEMORY_LIMIT_BYTES (UINT64_C(1) << 30)
#define CONFIG_DEFAULT_RECONNECT_GRACE_USEC (60 * USEC_PER_SEC)
#define CONFIG_POLICY_MAX_GPUS UINT64_C(1024) /* largest max_gpus */
/* Lease durations (default_duration, max_duration): 1m .. 365d. */
#define CONFIG_POLICY_DURATION_MIN USEC_PER_MINUTE
#define CONFIG_POLICY_DURATION_MAX (365 * USEC_PER_DAY)
/* reconnect_grace: 1s .. 1h. */
#define CONFIG_POLICY_RECONNECT_GRACE_MIN USEC_PER_SEC
#define CONFIG_POLICY_RECONNECT_GRACE_MAX USEC_PER_HOUR
#define CONFIG_POLICY_MAX_GROUPS 64 /* entries of policy.groups */
/* expiry_warning: 0s (none) .. 1d, default 15m. */
#define CONFIG_DEFAULT_EXPIRY_WARNING_USEC (15 * USEC_PER_MINUTE)
#define CONFIG_POLICY_EXPIRY_WARNING_MAX USEC_PER_DAY

/* What a user may hold: at the policy level, or for the members of a group. */
typedef struct ConfigPolicyLimits {
        uint64_t max_gpus; /* devices held at once (a MIG instance is one); 0 = no limit */
        uint64_t default_duration_usec; /* a manual lease's length when none is asked for */
        uint64_t max_duration_usec;     /* longest manual lease, and how far it may be extended */
} ConfigPolicyLimits;

/* One entry of policy.groups. */
typedef struct ConfigPolicyGroup {
        char *group;               /* a Unix group name; never NULL after loading */
        ConfigPolicyLimits limits; /* already merged with the policy-level values after loading */
} ConfigPolicyGroup;

typedef struct ConfigPolicy {
        ConfigPolicyLimits limits;            /* policy-level values */
        uint64_t unleased_memory_limit_bytes; /* skip devices where processes without a lease
                                               * hold more GPU memory than this */
        uint64_t reconnect_grace_usec;        /* after a restart, how long `gpukeeper run`
                                               * clients have to re-attach */
        uint64_t expiry_warning_usec;         /* warn a manual lease's holder this long
                                               * before it expires; 0 = never */
        ConfigPolicyGroup *groups;            /* in file order, names unique */
        size_t n_groups;                      /* at most CONFIG_POLICY_MAX_GROUPS */
} ConfigPolicy;

/* The section's keys, relative to a ConfigPolicy (the root table in config.c
 * reads it into Config.policy). */
extern const ConfigKey config_policy_table[];
/* The section's ConfigChecker: rules that tie its keys together. */
int config_policy_check(ConfigCheck *check, void *base, const char *name);
/* Fill in the built-in defaults. Returns 0 or -ENOMEM. */
int config_policy_init(ConfigPolicy *s);
/* Free what the section holds (not `s` itself). */
void config_policy_done(ConfigPolicy *s);
