/* The onboarding section: the welcome text file, the shell of new
 * accounts, the GPUs of onboarding kernels and the backup directory of
 * `user remove`; see onboarding.h. */
#include "config/onboarding.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "config/values.h"

const ConfigKey config_onboarding_table[] = {
        CONFIG_SCALAR("welcome", config_parse_absolute_path, ConfigOnboarding, welcome, 0, 0),
        CONFIG_SCALAR("shell", config_parse_absolute_path, ConfigOnboarding, shell, 0, 0),
        CONFIG_SCALAR("kernel_gpus", config_parse_uint64, ConfigOnboarding, kernel_gpus,
                      CONFIG_ONBOARDING_KERNEL_GPUS_MIN, CONFIG_ONBOARDING_KERNEL_GPUS_MAX),
        CONFIG_SCALAR("backup_dir", config_parse_absolute_path, ConfigOnboarding, backup_dir,
                      0, 0),
        CONFIG_END,
};

int config_onboarding_init(ConfigOnboarding *s)
{
        *s = (ConfigOnboarding){
                .shell = strdup(CONFIG_DEFAULT_ONBOARDING_SHELL),
                .kernel_gpus = CONFIG_DEFAULT_ONBOARDING_KERNEL_GPUS,
        };
        return s->shell ? 0 : -ENOMEM;
}

void config_onboarding_done(ConfigOnboarding *s)
{
        free(s->welcome);
        free(s->shell);
        free(s->backup_dir);
}

int config_onboarding_backup_dir(const ConfigOnboarding *s, const char *state_dir, char **ret)
{
        size_t n;
        char *p;

        if (s->backup_dir) {
                p = strdup(s->backup_dir);
                if (!p)
                        return -ENOMEM;
                *ret = p;
                return 0;
        }
        /* Without doubling the '/' of a state_dir that ends in one. */
        n = strlen(state_dir);
        while (n > 0 && state_dir[n - 1] == '/')
                n--;
        if (asprintf(&p, "%.*s/%s", (int)n, state_dir, CONFIG_ONBOARDING_BACKUP_DIR_NAME) < 0)
                return -ENOMEM;
        *ret = p;
        return 0;
}
