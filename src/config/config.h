/* The daemon's YAML configuration (/etc/gpukeeper/gpukeeper.yaml by default;
 * documented for users in gpukeeper.yaml(5)): the Config struct gpukeeperd
 * runs on, and config_load and friends.
 *
 * src/config/ holds three layers:
 *   - config/loader.h: the generic, table-driven YAML walker (ConfigKey rows,
 *     config_parse_yaml, the check API), which knows no gpukeeperd key;
 *   - config/values.h: the row parsers every section uses (paths, durations,
 *     sizes, numbers, booleans);
 *   - one file per section (policy, enforcement, idle, alerts, env, http,
 *     history): its struct and limits in config/<section>.h, its ConfigKey
 *     table, parsers and check in config/<section>.c;
 * and this file and config.c: the root table (top-level keys and one row
 * per section), the Config struct and defaults, loading and freeing.
 *
 * Adding a section "foo" (foo: in gpukeeper.yaml):
 *   1. src/config/foo.h: "typedef struct ConfigFoo {...} ConfigFoo;", its
 *      CONFIG_FOO_* defaults and limits, and the declarations
 *        extern const ConfigKey config_foo_table[];   (offsets relative to ConfigFoo)
 *        int config_foo_check(ConfigCheck *, void *base, const char *name);  (optional)
 *        int config_foo_init(ConfigFoo *s);   (defaults; 0 or -ENOMEM)
 *        void config_foo_done(ConfigFoo *s);  (frees what it holds)
 *   2. src/config/foo.c: the table (CONFIG_SCALAR(..., ConfigFoo, field, ...)),
 *      its own parsers (built from config/values.h), the check, init, done;
 *      add it to src/config/meson.build.
 *   3. Here: #include "config/foo.h" and a "ConfigFoo foo;" member of Config.
 *   4. config.c: one row in config_table,
 *        CONFIG_SECTION_AT("foo", config_foo_table, config_foo_check, Config, foo),
 *      and one line each in config_new_defaults() and config_free().
 *   5. docs/gpukeeper.yaml.5, packaging/gpukeeper.yaml, tests/unit/config/.
 * Nothing under src/config/ includes a daemon header or logs.
 *
 * Every error is one line "PATH:LINE:COL: what is wrong" (line and column
 * 1-based) that names the offending key; secret values are never quoted. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/macro.h"
#include "basic/parse.h"
#include "config/loader.h"
#include "config/values.h"

#define CONFIG_DEFAULT_PATH "/etc/gpukeeper/gpukeeper.yaml"
#define CONFIG_DEFAULT_STATE_DIR "/var/lib/gpukeeper"
#define CONFIG_DEFAULT_NVML_LIBRARY "libnvidia-ml.so.1"
#define CONFIG_DEFAULT_SAMPLE_INTERVAL_USEC (2 * USEC_PER_SEC)
/* Must equal GK_DEFAULT_SOCKET in gpukeeper/client.h (the CLI's default; the
 * unit test checks). Not included from there to keep jansson out of the daemon core. */
#define CONFIG_DEFAULT_SOCKET "/run/gpukeeper/gpukeeper.sock"

/* One header per section (keep in the order of Config's members). */
#include "config/policy.h"
#include "config/enforcement.h"
#include "config/idle.h"
#include "config/mig.h"
#include "config/alerts.h"
#include "config/env.h"
#include "config/onboarding.h"
#include "config/http.h"
#include "config/history.h"
#include "config/slurm.h"
#include "config/limits-config.h"
#include "config/sharing.h"

typedef struct Config {
        char *path;         /* the file this was loaded from; NULL for built-in defaults */
        char *socket_path;  /* socket */
        char *state_dir;    /* state_dir */
        char *nvml_library; /* nvml_library */
        uint64_t sample_interval_usec; /* sample_interval */
        int log_level;      /* log_level, one of LOG_LEVEL_* from basic/log.h */
        ConfigPolicy policy; /* the policy section */
        ConfigEnforcement enforcement; /* the enforcement section */
        ConfigIdle idle;     /* the idle section */
        ConfigMig mig;       /* the mig section */
        ConfigAlerts alerts; /* the alerts section */
        ConfigEnv env;       /* the env section */
        ConfigOnboarding onboarding; /* the onboarding section (gpukeeper user add/remove) */
        ConfigHttp http;     /* the http section */
        ConfigHistory history; /* the history section */
        ConfigBackend backend; /* backend */
        ConfigSlurm slurm;     /* the slurm section */
        ConfigLimits limits;   /* the limits section (config/limits-config.h) */
        ConfigSharing sharing; /* the sharing section (shared leases with memory budgets) */
} Config;

/* A Config holding every default; path is NULL. Returns 0 or -ENOMEM. */
int config_new_defaults(Config **ret);

/* The limits that apply to a user who is a member of the groups named in
 * `group_names` (primary and supplementary; may be NULL when n is 0): those
 * of the first policy.groups entry, in file order, whose group is among
 * them, else policy.limits. Never NULL; points into `c`. */
const ConfigPolicyLimits *config_policy_limits(const Config *c, const char *const *group_names,
                                               size_t n);

/* Parse `path` on top of the defaults. When the file does not give
 * env.backup_dir, it becomes STATE_DIR/env-backups for the state_dir the
 * file gives (whatever the order of the keys), else the default. On failure returns -EINVAL for
 * anything wrong with the file's type, size or content, or -errno when it
 * cannot be opened or read, leaves *ret untouched, and, if ret_error is not
 * NULL, stores a malloc'd one-line message "PATH:LINE:COL: what is wrong"
 * ("PATH: No such file or directory" for I/O errors); *ret_error is NULL only
 * on -ENOMEM. */
int config_load(const char *path, Config **ret, char **ret_error);

/* Free a Config; accepts NULL. */
void config_free(Config *c);

static inline void config_freep(Config **c)
{
        config_free(*c);
}

