/* gpukeeperd's configuration: the root table of gpukeeper.yaml (top-level
 * keys and one row per section), defaults, loading and freeing. The walker
 * is config/loader.c; each section's keys and checks are in its own file
 * (see config.h for how to add one). */
#include "config/config.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/log.h"
#include "basic/macro.h"

/* Every key of gpukeeper.yaml. Keep in sync with docs/gpukeeper.yaml.5 and
 * packaging/gpukeeper.yaml. A section is one CONFIG_SECTION_AT row. */
static const ConfigKey config_table[] = {
        CONFIG_SCALAR("socket", config_parse_socket_path, Config, socket_path, 0, 0),
        CONFIG_SCALAR("state_dir", config_parse_absolute_path, Config, state_dir, 0, 0),
        CONFIG_SCALAR("nvml_library", config_parse_library, Config, nvml_library, 0, 0),
        CONFIG_SCALAR("sample_interval", config_parse_duration, Config, sample_interval_usec,
                      100 * USEC_PER_MSEC, USEC_PER_HOUR),
        CONFIG_SCALAR("log_level", config_parse_log_level, Config, log_level, 0, 0),
        CONFIG_SECTION_AT("policy", config_policy_table, config_policy_check, Config, policy),
        CONFIG_SECTION_AT("enforcement", config_enforcement_table, NULL, Config, enforcement),
        CONFIG_SECTION_AT("idle", config_idle_table, config_idle_check, Config, idle),
        CONFIG_SECTION_AT("alerts", config_alerts_table, config_alerts_check, Config, alerts),
        CONFIG_SECTION_AT("env", config_env_table, NULL, Config, env),
        CONFIG_SECTION_AT("onboarding", config_onboarding_table, NULL, Config, onboarding),
        CONFIG_SECTION_AT("http", config_http_table, config_http_check, Config, http),
        CONFIG_SECTION_AT("history", config_history_table, NULL, Config, history),
        CONFIG_SCALAR("backend", config_parse_backend, Config, backend, 0, 0),
        CONFIG_SECTION_AT("slurm", config_slurm_table, NULL, Config, slurm),
        CONFIG_SECTION_AT("mig", config_mig_table, NULL, Config, mig),
        CONFIG_SECTION_AT("limits", config_limits_table, config_limits_check, Config, limits),
        CONFIG_SECTION_AT("sharing", config_sharing_table, NULL, Config, sharing),
        CONFIG_END,
};

void config_free(Config *c)
{
        if (!c)
                return;
        free(c->path);
        free(c->socket_path);
        free(c->state_dir);
        free(c->nvml_library);
        config_policy_done(&c->policy);
        config_enforcement_done(&c->enforcement);
        config_idle_done(&c->idle);
        config_alerts_done(&c->alerts);
        config_env_done(&c->env);
        config_onboarding_done(&c->onboarding);
        config_http_done(&c->http);
        config_history_done(&c->history);
        config_slurm_done(&c->slurm);
        config_mig_done(&c->mig);
        config_limits_done(&c->limits);
        config_sharing_done(&c->sharing);
        free(c);
}

int config_new_defaults(Config **ret)
{
        _cleanup_(config_freep) Config *c = NULL;
        int r;

        assert(ret);

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->socket_path = strdup(CONFIG_DEFAULT_SOCKET);
        c->state_dir = strdup(CONFIG_DEFAULT_STATE_DIR);
        c->nvml_library = strdup(CONFIG_DEFAULT_NVML_LIBRARY);
        if (!c->socket_path || !c->state_dir || !c->nvml_library)
                return -ENOMEM;
        c->sample_interval_usec = CONFIG_DEFAULT_SAMPLE_INTERVAL_USEC;
        c->log_level = LOG_LEVEL_INFO;
        r = config_onboarding_init(&c->onboarding);
        if (r < 0)
                return r;
        if ((r = config_policy_init(&c->policy)) < 0 ||
            (r = config_enforcement_init(&c->enforcement)) < 0 ||
            (r = config_idle_init(&c->idle)) < 0 || (r = config_alerts_init(&c->alerts)) < 0 ||
            (r = config_env_init(&c->env)) < 0 || (r = config_http_init(&c->http)) < 0 ||
            (r = config_history_init(&c->history)) < 0 || (r = config_slurm_init(&c->slurm)) < 0 ||
            (r = config_mig_init(&c->mig)) < 0 || (r = config_limits_init(&c->limits)) < 0 ||
            (r = config_sharing_init(&c->sharing)) < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}

/* STATE_DIR/env-backups, without doubling the '/' of a state_dir that ends
 * in one ("/" or "/srv/gk/"). */
static int derive_backup_dir(const char *state_dir, char **ret)
{
        size_t n = strlen(state_dir);
        char *s;

        while (n > 0 && state_dir[n - 1] == '/')
                n--;
        if (asprintf(&s, "%.*s/%s", (int)n, state_dir, CONFIG_ENV_BACKUP_DIR_NAME) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int config_load(const char *path, Config **ret, char **ret_error)
{
        _cleanup_(config_freep) Config *c = NULL;
        int r;

        assert(path);
        assert(ret);

        r = config_new_defaults(&c);
        if (r < 0)
                return r;
        c->path = strdup(path);
        if (!c->path)
                return -ENOMEM;

        /* NULL until the file gives env.backup_dir: the default depends on
         * state_dir, which may come later in the file or not at all. */
        free(c->env.backup_dir);
        c->env.backup_dir = NULL;

        r = config_parse_yaml(path, config_table, c, ret_error);
        if (r < 0)
                return r;

        if (!c->env.backup_dir) {
                r = derive_backup_dir(c->state_dir, &c->env.backup_dir);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(c);
        return 0;
}

const ConfigPolicyLimits *config_policy_limits(const Config *c, const char *const *group_names,
                                               size_t n)
{
        assert(c);
        assert(group_names || n == 0);

        for (size_t i = 0; i < c->policy.n_groups; i++)
                for (size_t j = 0; j < n; j++)
                        if (group_names[j] &&
                            strcmp(c->policy.groups[i].group, group_names[j]) == 0)
                                return &c->policy.groups[i].limits;
        return &c->policy.limits;
}
