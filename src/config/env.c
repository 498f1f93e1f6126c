/* The env section: the backup schedule (a word or a duration), how many
 * archives are kept and where, the conda executable, the templates, and how
 * long the trash keeps a pruned environment. */
#include "config/env.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/parse.h"
#include "config/config.h" /* CONFIG_DEFAULT_STATE_DIR */
#include "config/values.h"

/* backup_schedule: a word, or a duration of CONFIG_ENV_BACKUP_INTERVAL_MIN..MAX
 * (the row's range). "off" is 0, which the daemon takes as no backups. */
static int parse_backup_schedule(const ConfigKey *key, const char *value, void *field,
                                 char *problem, size_t problem_len)
{
        static const struct {
                const char *word;
                uint64_t usec;
        } words[] = {
                {"hourly", USEC_PER_HOUR},
                {"daily", USEC_PER_DAY},
                {"weekly", 7 * USEC_PER_DAY},
                {"off", 0},
        };
        uint64_t v;

        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (strcmp(value, words[i].word) == 0) {
                        *(uint64_t *)field = words[i].usec;
                        return 0;
                }

        /* Neither a word nor anything like a duration: name both forms. A
         * number without a unit, or a duration out of range, gets the
         * duration parser's own, more precise message. */
        if (parse_duration_usec(value, &v) == -EINVAL &&
            (value[0] == '\0' || value[strspn(value, "0123456789")] != '\0')) {
                snprintf(problem, problem_len,
                         "must be hourly, daily, weekly, off, or a duration (for example 12h)");
                return -EINVAL;
        }
        return config_parse_duration(key, value, field, problem, problem_len);
}

/* trash_retention: "off" (0: the sweep removes nothing), or a duration in
 * the row's range. */
static int parse_trash_retention(const ConfigKey *key, const char *value, void *field,
                                 char *problem, size_t problem_len)
{
        uint64_t v;

        if (strcmp(value, "off") == 0) {
                *(uint64_t *)field = 0;
                return 0;
        }
        if (parse_duration_usec(value, &v) == -EINVAL &&
            (value[0] == '\0' || value[strspn(value, "0123456789")] != '\0')) {
                snprintf(problem, problem_len, "must be off or a duration (for example 30d)");
                return -EINVAL;
        }
        return config_parse_duration(key, value, field, problem, problem_len);
}

/* conda_exe: a bare name is looked up in PATH when it is run; a name with a
 * '/' must be absolute, since a relative one would be resolved against the
 * daemon's working directory. */
static int parse_conda_exe(const ConfigKey *key, const char *value, void *field, char *problem,
                           size_t problem_len)
{
        int r = config_check_path(value, false, PATH_MAX - 1, problem, problem_len);

        if (r < 0)
                return r;
        if ((value[0] != '/' && strchr(value, '/')) || strcmp(value, ".") == 0 ||
            strcmp(value, "..") == 0) {
                snprintf(problem, problem_len,
                         "must be a command name (looked up in PATH) or an absolute path");
                return -EINVAL;
        }
        return config_store_string(value, field);
}

const ConfigKey config_env_table[] = {
        CONFIG_SCALAR("backup_schedule", parse_backup_schedule, ConfigEnv,
                      backup_interval_usec, CONFIG_ENV_BACKUP_INTERVAL_MIN,
                      CONFIG_ENV_BACKUP_INTERVAL_MAX),
        CONFIG_SCALAR("backup_keep", config_parse_uint64, ConfigEnv, backup_keep,
                      CONFIG_ENV_BACKUP_KEEP_MIN, CONFIG_ENV_BACKUP_KEEP_MAX),
        CONFIG_SCALAR("backup_dir", config_parse_absolute_path, ConfigEnv, backup_dir, 0, 0),
        CONFIG_SCALAR("conda_exe", parse_conda_exe, ConfigEnv, conda_exe, 0, 0),
        CONFIG_SCALAR("templates_dir", config_parse_absolute_path, ConfigEnv, templates_dir,
                      0, 0),
        CONFIG_SCALAR("trash_retention", parse_trash_retention, ConfigEnv, trash_retention_usec,
                      CONFIG_ENV_TRASH_RETENTION_MIN, CONFIG_ENV_TRASH_RETENTION_MAX),
        CONFIG_END,
};

int config_env_init(ConfigEnv *s)
{
        *s = (ConfigEnv){
                .backup_interval_usec = CONFIG_DEFAULT_ENV_BACKUP_INTERVAL_USEC,
                .backup_keep = CONFIG_DEFAULT_ENV_BACKUP_KEEP,
                .backup_dir = strdup(CONFIG_DEFAULT_ENV_BACKUP_DIR),
                .conda_exe = strdup(CONFIG_DEFAULT_CONDA_EXE),
                .templates_dir = strdup(CONFIG_DEFAULT_TEMPLATES_DIR),
                .trash_retention_usec = CONFIG_DEFAULT_ENV_TRASH_RETENTION_USEC,
        };
        if (!s->backup_dir || !s->conda_exe || !s->templates_dir)
                return -ENOMEM;
        return 0;
}

void config_env_done(ConfigEnv *s)
{
        free(s->backup_dir);
        free(s->conda_exe);
        free(s->templates_dir);
}
