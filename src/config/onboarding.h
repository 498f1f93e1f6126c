/* The onboarding section of gpukeeper.yaml(5): what `gpukeeper user add`
 * and `gpukeeper user remove` (src/onboard/, src/cli/user.c) read from the
 * daemon's configuration: the welcome text shown to an admin after an
 * account is set up, the login shell of accounts it creates, the GPUs each
 * onboarding Jupyter kernel leases, and where `user remove` keeps the
 * backups of a removed user's environment specs. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "config/loader.h"

#define CONFIG_DEFAULT_ONBOARDING_SHELL "/bin/bash"
#define CONFIG_DEFAULT_ONBOARDING_KERNEL_GPUS UINT64_C(1)
#define CONFIG_ONBOARDING_KERNEL_GPUS_MIN UINT64_C(1) /* kernel_gpus: 1 .. 64 */
#define CONFIG_ONBOARDING_KERNEL_GPUS_MAX UINT64_C(64)
/* The directory, below state_dir, that backup_dir defaults to. */
#define CONFIG_ONBOARDING_BACKUP_DIR_NAME "backups/users"

typedef struct ConfigOnboarding {
        char *welcome;        /* a text file with {{placeholders}}; NULL: the built-in text */
        char *shell;          /* login shell of accounts `user add` creates; absolute */
        uint64_t kernel_gpus; /* GPUs each onboarding Jupyter kernel leases */
        char *backup_dir;     /* NULL: STATE_DIR/backups/users (config_onboarding_backup_dir) */
} ConfigOnboarding;

extern const ConfigKey config_onboarding_table[];
int config_onboarding_init(ConfigOnboarding *s);
void config_onboarding_done(ConfigOnboarding *s);

/* Where `user remove` writes its backups: backup_dir when the file gives
 * one, else STATE_DIR/backups/users for `state_dir`. Returns 0 and a heap
 * string, or -ENOMEM. */
int config_onboarding_backup_dir(const ConfigOnboarding *s, const char *state_dir, char **ret);
