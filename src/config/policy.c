/* The policy section: its keys, and the check that lets groups inherit
 * what they leave out and keeps every default_duration within its
 * max_duration. */
#include "config/policy.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/parse.h"
#include "config/values.h"

/* Room for "policy.groups[INDEX]" (a size_t index, as far as the compiler
 * knows), and for that plus ".default_duration". */
#define POLICY_PREFIX_MAX 40
#define POLICY_NAME_MAX 64

/* How a check message names the value of `key` ("default_duration") that
 * applies at `prefix` ("policy" or "policy.groups[1]"): given right there,
 * inherited from the policy level, or the built-in default. */
static void describe_duration(const ConfigCheck *check, const char *prefix, const char *key,
                              uint64_t usec, char *buf, size_t len)
{
        char given[POLICY_NAME_MAX], inherited[POLICY_NAME_MAX], v[FORMAT_DURATION_MAX];

        (void)format_duration(v, sizeof v, usec);
        snprintf(given, sizeof given, "%s.%s", prefix, key);
        snprintf(inherited, sizeof inherited, "policy.%s", key);
        if (config_check_given(check, given))
                snprintf(buf, len, "'%s' (%s)", given, v);
        else if (strcmp(prefix, "policy") != 0 && config_check_given(check, inherited))
                snprintf(buf, len, "%s (%s, from '%s')", key, v, inherited);
        else
                snprintf(buf, len, "%s (%s, the default)", key, v);
}

/* default_duration must not exceed max_duration in the limits that apply at
 * `prefix`. The key given at `prefix` is blamed (default_duration when both
 * are): a limit pair the file did not touch there is one that was already
 * checked, or a pair of defaults. */
static int check_durations(ConfigCheck *check, const char *prefix, const ConfigPolicyLimits *lim)
{
        char name[POLICY_NAME_MAX], other[POLICY_NAME_MAX * 2], v[FORMAT_DURATION_MAX];

        if (lim->default_duration_usec <= lim->max_duration_usec)
                return 0;

        snprintf(name, sizeof name, "%s.default_duration", prefix);
        if (config_check_given(check, name)) {
                (void)format_duration(v, sizeof v, lim->default_duration_usec);
                describe_duration(check, prefix, "max_duration", lim->max_duration_usec, other,
                                  sizeof other);
                return config_check_error(check, name, "'%s' (%s) must not be longer than %s",
                                          name, v, other);
        }

        snprintf(name, sizeof name, "%s.max_duration", prefix);
        (void)format_duration(v, sizeof v, lim->max_duration_usec);
        describe_duration(check, prefix, "default_duration", lim->default_duration_usec, other,
                          sizeof other);
        return config_check_error(check, name, "'%s' (%s) must not be shorter than %s", name, v,
                                  other);
}

/* The policy section's check: runs once the whole section is read, so that
 * groups inherit policy-level values written after them just as well. */
int config_policy_check(ConfigCheck *check, void *base, const char *name)
{
        ConfigPolicy *p = base;
        int r;

        assert(strcmp(name, "policy") == 0);

        r = check_durations(check, "policy", &p->limits);
        if (r < 0)
                return r;

        for (size_t i = 0; i < p->n_groups; i++) {
                ConfigPolicyGroup *g = &p->groups[i];
                char prefix[POLICY_PREFIX_MAX], key[POLICY_NAME_MAX];

                snprintf(prefix, sizeof prefix, "policy.groups[%zu]", i);

                for (size_t j = 0; j < i; j++)
                        if (strcmp(p->groups[j].group, g->group) == 0) {
                                snprintf(key, sizeof key, "%s.group", prefix);
                                return config_check_error(
                                        check, key,
                                        "duplicate group '%s' in '%s' (first given in "
                                        "'policy.groups[%zu]')",
                                        g->group, prefix, j);
                        }

                snprintf(key, sizeof key, "%s.max_gpus", prefix);
                if (!config_check_given(check, key))
                        g->limits.max_gpus = p->limits.max_gpus;
                snprintf(key, sizeof key, "%s.default_duration", prefix);
                if (!config_check_given(check, key))
                        g->limits.default_duration_usec = p->limits.default_duration_usec;
                snprintf(key, sizeof key, "%s.max_duration", prefix);
                if (!config_check_given(check, key))
                        g->limits.max_duration_usec = p->limits.max_duration_usec;

                r = check_durations(check, prefix, &g->limits);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* One entry of policy.groups; offsets are relative to the ConfigPolicyGroup. */
static const ConfigKey policy_group_table[] = {
        CONFIG_SCALAR_REQUIRED("group", config_parse_group_name, ConfigPolicyGroup, group, 0, 0),
        CONFIG_SCALAR("max_gpus", config_parse_uint64, ConfigPolicyGroup, limits.max_gpus, 0,
                      CONFIG_POLICY_MAX_GPUS),
        CONFIG_SCALAR("default_duration", config_parse_duration, ConfigPolicyGroup,
                      limits.default_duration_usec, CONFIG_POLICY_DURATION_MIN,
                      CONFIG_POLICY_DURATION_MAX),
        CONFIG_SCALAR("max_duration", config_parse_duration, ConfigPolicyGroup,
                      limits.max_duration_usec, CONFIG_POLICY_DURATION_MIN,
                      CONFIG_POLICY_DURATION_MAX),
        CONFIG_END,
};

const ConfigKey config_policy_table[] = {
        CONFIG_SCALAR("max_gpus", config_parse_uint64, ConfigPolicy, limits.max_gpus, 0,
                      CONFIG_POLICY_MAX_GPUS),
        CONFIG_SCALAR("default_duration", config_parse_duration, ConfigPolicy,
                      limits.default_duration_usec, CONFIG_POLICY_DURATION_MIN,
                      CONFIG_POLICY_DURATION_MAX),
        CONFIG_SCALAR("max_duration", config_parse_duration, ConfigPolicy,
                      limits.max_duration_usec, CONFIG_POLICY_DURATION_MIN,
                      CONFIG_POLICY_DURATION_MAX),
        CONFIG_SCALAR("unleased_memory_limit", config_parse_size, ConfigPolicy,
                      unleased_memory_limit_bytes, 0, 0),
        CONFIG_SCALAR("reconnect_grace", config_parse_duration, ConfigPolicy,
                      reconnect_grace_usec, CONFIG_POLICY_RECONNECT_GRACE_MIN,
                      CONFIG_POLICY_RECONNECT_GRACE_MAX),
        CONFIG_LIST("groups", policy_group_table, ConfigPolicy, groups, n_groups,
                    ConfigPolicyGroup, CONFIG_POLICY_MAX_GROUPS),
        CONFIG_SCALAR("expiry_warning", config_parse_duration, ConfigPolicy, expiry_warning_usec,
                      0, CONFIG_POLICY_EXPIRY_WARNING_MAX),
        CONFIG_END,
};

int config_policy_init(ConfigPolicy *s)
{
        *s = (ConfigPolicy){
                .limits = {
                        .max_gpus = CONFIG_DEFAULT_MAX_GPUS,
                        .default_duration_usec = CONFIG_DEFAULT_DEFAULT_DURATION_USEC,
                        .max_duration_usec = CONFIG_DEFAULT_MAX_DURATION_USEC,
                },
                .unleased_memory_limit_bytes = CONFIG_DEFAULT_UNLEASED_MEMORY_LIMIT_BYTES,
                .reconnect_grace_usec = CONFIG_DEFAULT_RECONNECT_GRACE_USEC,
                .expiry_warning_usec = CONFIG_DEFAULT_EXPIRY_WARNING_USEC,
        };
        return 0;
}

void config_policy_done(ConfigPolicy *s)
{
        for (size_t i = 0; i < s->n_groups; i++)
                free(s->groups[i].group);
        free(s->groups);
}
