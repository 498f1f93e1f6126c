/* The limits section: its keys (cpu as a percentage of one CPU, memory as a
 * size, tasks as a count, each also "infinity"), the groups mapping keyed by
 * Unix group name, the backend and the cgroupfs parent, and the check that
 * per_gpu stays finite. */
#include "config/limits-config.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/parse.h"
#include "config/values.h"

static bool is_infinity(const char *value)
{
        return strcmp(value, "infinity") == 0;
}

/* "400%" (of one CPU), or "infinity". */
static int parse_cpu(const ConfigKey *key, const char *value, void *field, char *problem,
                     size_t problem_len)
{
        const char *hint = "a percentage of one CPU from 1% to 100000% (400% = four CPUs), "
                           "or infinity";
        size_t n = strlen(value);
        char digits[32];
        uint64_t v;

        if (is_infinity(value)) {
                *(uint64_t *)field = POLICY_LIMIT_INFINITY;
                return 0;
        }
        if (n < 2 || n >= sizeof digits || value[n - 1] != '%') {
                snprintf(problem, problem_len, "must be %s", hint);
                return -EINVAL;
        }
        memcpy(digits, value, n - 1);
        digits[n - 1] = '\0';
        if (parse_uint64(digits, &v) < 0 || v < 1 || v > CONFIG_LIMITS_CPU_MAX) {
                snprintf(problem, problem_len, "must be %s", hint);
                return -EINVAL;
        }
        *(uint64_t *)field = v;
        return 0;
}

static int parse_memory(const ConfigKey *key, const char *value, void *field, char *problem,
                        size_t problem_len)
{
        uint64_t v;

        if (is_infinity(value)) {
                *(uint64_t *)field = POLICY_LIMIT_INFINITY;
                return 0;
        }
        if (parse_size_bytes(value, &v) < 0 || v < CONFIG_LIMITS_MEMORY_MIN ||
            v > CONFIG_LIMITS_MEMORY_MAX) {
                snprintf(problem, problem_len,
                         "must be a size from 1M to 1E (512M, 64G), or infinity");
                return -EINVAL;
        }
        *(uint64_t *)field = v;
        return 0;
}

static int parse_tasks(const ConfigKey *key, const char *value, void *field, char *problem,
                       size_t problem_len)
{
        uint64_t v;

        if (is_infinity(value)) {
                *(uint64_t *)field = POLICY_LIMIT_INFINITY;
                return 0;
        }
        if (parse_uint64(value, &v) < 0 || v < 1 || v > CONFIG_LIMITS_TASKS_MAX) {
                snprintf(problem, problem_len,
                         "must be a number of processes and threads from 1 to %" PRIu64
                         ", or infinity",
                         CONFIG_LIMITS_TASKS_MAX);
                return -EINVAL;
        }
        *(uint64_t *)field = v;
        return 0;
}

static int parse_backend(const ConfigKey *key, const char *value, void *field, char *problem,
                         size_t problem_len)
{
        static const char *const names[] = {"auto", "systemd", "cgroupfs"};

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcmp(value, names[i]) == 0) {
                        *(ConfigLimitsBackend *)field = (ConfigLimitsBackend)i;
                        return 0;
                }
        config_problem_one_of(names, ELEMENTSOF(names), problem, problem_len);
        return -EINVAL;
}

/* A relative path of plain components: no "..", ".", empty components or
 * control characters (it is joined to each hierarchy's root as root). */
static int parse_parent(const ConfigKey *key, const char *value, void *field, char *problem,
                        size_t problem_len)
{
        _cleanup_free_ char *copy = NULL;
        char *save = NULL;
        int r;

        r = config_check_path(value, false, CONFIG_LIMITS_CGROUPFS_PARENT_MAX, problem,
                              problem_len);
        if (r < 0)
                return r;
        if (value[0] == '/' || value[strlen(value) - 1] == '/' || strstr(value, "//")) {
                snprintf(problem, problem_len,
                         "must be a relative path below each cgroup hierarchy's root "
                         "(gpukeeper.slice), without leading, trailing or double '/'");
                return -EINVAL;
        }
        copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save))
                if (strcmp(c, ".") == 0 || strcmp(c, "..") == 0) {
                        snprintf(problem, problem_len, "must not contain '.' or '..'");
                        return -EINVAL;
                }
        return config_store_string(value, field);
}

static const ConfigKey values_table[] = {
        CONFIG_SCALAR("cpu", parse_cpu, PolicyLimitValues, cpu_percent, 0, 0),
        CONFIG_SCALAR("memory", parse_memory, PolicyLimitValues, memory_bytes, 0, 0),
        CONFIG_SCALAR("tasks", parse_tasks, PolicyLimitValues, tasks, 0, 0),
        CONFIG_END,
};

static const ConfigKey group_table[] = {
        CONFIG_SCALAR("cpu", parse_cpu, PolicyLimitGroup, values.cpu_percent, 0, 0),
        CONFIG_SCALAR("memory", parse_memory, PolicyLimitGroup, values.memory_bytes, 0, 0),
        CONFIG_SCALAR("tasks", parse_tasks, PolicyLimitGroup, values.tasks, 0, 0),
        CONFIG_END,
};

const ConfigKey config_limits_table[] = {
        CONFIG_SECTION_AT("default", values_table, NULL, ConfigLimits, rules.defaults),
        CONFIG_NAMED("groups", config_parse_group_name, group_table, ConfigLimits, rules.groups,
                     rules.n_groups, PolicyLimitGroup, group, CONFIG_LIMITS_MAX_GROUPS),
        CONFIG_SECTION_AT("per_gpu", values_table, NULL, ConfigLimits, rules.per_gpu),
        CONFIG_SCALAR("backend", parse_backend, ConfigLimits, backend, 0, 0),
        CONFIG_SCALAR("cgroupfs_parent", parse_parent, ConfigLimits, cgroupfs_parent, 0, 0),
        CONFIG_END,
};

int config_limits_check(ConfigCheck *check, void *base, const char *name)
{
        ConfigLimits *s = base;

        assert(strcmp(name, "limits") == 0);
        s->enabled = true;
        /* Named here, not through policy/: the config library links nothing above basic/. */
        const struct {
                const char *key;
                uint64_t v;
        } per_gpu[] = {
                {"limits.per_gpu.cpu", s->rules.per_gpu.cpu_percent},
                {"limits.per_gpu.memory", s->rules.per_gpu.memory_bytes},
                {"limits.per_gpu.tasks", s->rules.per_gpu.tasks},
        };

        for (size_t i = 0; i < ELEMENTSOF(per_gpu); i++)
                if (per_gpu[i].v == POLICY_LIMIT_INFINITY)
                        return config_check_error(
                                check, per_gpu[i].key,
                                "'%s' must be a number: infinity per GPU would lift the limit "
                                "for anyone holding a GPU (write infinity in default or a "
                                "group instead)",
                                per_gpu[i].key);
        return 0;
}

int config_limits_init(ConfigLimits *s)
{
        *s = (ConfigLimits){.backend = CONFIG_LIMITS_AUTO};
        s->cgroupfs_parent = strdup(CONFIG_DEFAULT_LIMITS_CGROUPFS_PARENT);
        return s->cgroupfs_parent ? 0 : -ENOMEM;
}

void config_limits_done(ConfigLimits *s)
{
        for (size_t i = 0; i < s->rules.n_groups; i++)
                free(s->rules.groups[i].group);
        free(s->rules.groups);
        free(s->cgroupfs_parent);
        *s = (ConfigLimits){};
}

const char *config_limits_backend_to_string(ConfigLimitsBackend b)
{
        switch (b) {
        case CONFIG_LIMITS_SYSTEMD:
                return "systemd";
        case CONFIG_LIMITS_CGROUPFS:
                return "cgroupfs";
        case CONFIG_LIMITS_AUTO:
        default:
                return "auto";
        }
}

void config_limits_format(PolicyLimitResource r, uint64_t v, char *buf, size_t len)
{
        static const char units[] = "KMGTPE";

        if (v == POLICY_LIMIT_UNSET) {
                snprintf(buf, len, "-");
                return;
        }
        if (v == POLICY_LIMIT_INFINITY) {
                snprintf(buf, len, "infinity");
                return;
        }
        switch (r) {
        case POLICY_LIMIT_CPU:
                snprintf(buf, len, "%" PRIu64 "%%", v);
                return;
        case POLICY_LIMIT_MEMORY: {
                int u = -1;

                /* the largest unit that divides it exactly: 64G, 1536M */
                while (u + 1 < (int)sizeof units - 1 && v % 1024 == 0 && v >= 1024) {
                        v /= 1024;
                        u++;
                }
                if (u < 0)
                        snprintf(buf, len, "%" PRIu64, v);
                else
                        snprintf(buf, len, "%" PRIu64 "%c", v, units[u]);
                return;
        }
        case POLICY_LIMIT_TASKS:
        default:
                snprintf(buf, len, "%" PRIu64, v);
                return;
        }
}
