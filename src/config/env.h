/* The env section of gpukeeper.yaml(5): scheduled backups of every user's
 * conda environments, the conda executable, the templates directory and
 * how long pruned environments stay in the trash. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/parse.h"
#include "config/loader.h"

/* The env section: scheduled backups of every user's conda environments. */
#define CONFIG_DEFAULT_ENV_BACKUP_INTERVAL_USEC USEC_PER_DAY /* "daily" */
#define CONFIG_DEFAULT_ENV_BACKUP_KEEP UINT64_C(14)
/* The directory, below state_dir, that backup_dir defaults to. */
#define CONFIG_ENV_BACKUP_DIR_NAME "env-backups"
#define CONFIG_DEFAULT_ENV_BACKUP_DIR CONFIG_DEFAULT_STATE_DIR "/" CONFIG_ENV_BACKUP_DIR_NAME
#define CONFIG_DEFAULT_CONDA_EXE "conda"
#define CONFIG_DEFAULT_TEMPLATES_DIR "/etc/gpukeeper/templates"
#define CONFIG_ENV_BACKUP_INTERVAL_MIN USEC_PER_MINUTE /* a backup_schedule duration: */
#define CONFIG_ENV_BACKUP_INTERVAL_MAX (30 * USEC_PER_DAY) /* 1m .. 30d */
#define CONFIG_ENV_BACKUP_KEEP_MIN UINT64_C(1) /* backup_keep: 1 .. 10000 */
#define CONFIG_ENV_BACKUP_KEEP_MAX UINT64_C(10000)
/* trash_retention: how long a pruned environment stays in its owner's trash
 * before the daemon's daily sweep removes it; "off" (0) keeps it for ever. */
#define CONFIG_DEFAULT_ENV_TRASH_RETENTION_USEC (30 * USEC_PER_DAY)
#define CONFIG_ENV_TRASH_RETENTION_MIN USEC_PER_HOUR       /* 1h .. 3650d */
#define CONFIG_ENV_TRASH_RETENTION_MAX (3650 * USEC_PER_DAY)

/* The env section. */
typedef struct ConfigEnv {
        uint64_t backup_interval_usec; /* one archive per interval; 0 = off */
        uint64_t backup_keep;          /* newest archives kept */
        char *backup_dir;              /* never NULL after loading (default derived from
                                        * state_dir) */
        char *conda_exe;               /* a command name (searched in PATH) or an absolute path */
        char *templates_dir;           /* absolute path */
        uint64_t trash_retention_usec; /* trash entries older than this are removed; 0 = never */
} ConfigEnv;

/* The section's keys, relative to a ConfigEnv (the root table in config.c
 * reads it into Config.env). */
extern const ConfigKey config_env_table[];
/* Fill in the built-in defaults. Returns 0 or -ENOMEM. */
int config_env_init(ConfigEnv *s);
/* Free what the section holds (not `s` itself). */
void config_env_done(ConfigEnv *s);
