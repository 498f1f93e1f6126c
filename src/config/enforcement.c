/* The enforcement section: the mode, the two timeouts and the exempt users
 * and executables (names and paths checked as the kernel will show them). */
#include "config/enforcement.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/parse.h"
#include "basic/strv.h"
#include "config/values.h"

static int parse_enforcement_mode(const ConfigKey *key, const char *value, void *field,
                                  char *problem, size_t problem_len)
{
        ConfigEnforcementMode *mode = field;

        if (strcmp(value, "observe") == 0)
                *mode = CONFIG_ENFORCEMENT_OBSERVE;
        else if (strcmp(value, "enforce") == 0)
                *mode = CONFIG_ENFORCEMENT_ENFORCE;
        else if (strcmp(value, "strict") == 0)
                *mode = CONFIG_ENFORCEMENT_STRICT;
        else {
                snprintf(problem, problem_len, "must be observe, enforce or strict");
                return -EINVAL;
        }
        return 0;
}

/* An exempt user: a uid in decimal, or a name. The name rule is looser than
 * the one for group names, since exempt accounts are often system or
 * directory accounts ("nvidia-persistenced", "svc.render"); digits alone are
 * a uid, never a name. */
static int parse_exempt_user(const ConfigKey *key, const char *value, void *field,
                             char *problem, size_t problem_len)
{
        size_t n = strlen(value);
        uint64_t uid;

        if (n > 0 && value[strspn(value, "0123456789")] == '\0') {
                /* (uid_t) -1 means "no uid" to the kernel. */
                if (parse_uint64(value, &uid) < 0 || uid >= UINT32_MAX) {
                        snprintf(problem, problem_len, "not a uid (at most %" PRIu32 ")",
                                 UINT32_MAX - 1);
                        return -EINVAL;
                }
                return config_store_string(value, field);
        }
        if (n == 0 || n > CONFIG_USER_NAME_MAX || value[0] == '-' || value[0] == '.' ||
            value[strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789._-")] != '\0') {
                snprintf(problem, problem_len,
                         "must be a user name (letters, digits, '.', '_' or '-', not starting "
                         "with '-' or '.', at most %d characters) or a numeric uid",
                         CONFIG_USER_NAME_MAX);
                return -EINVAL;
        }
        return config_store_string(value, field);
}

/* An absolute path as the kernel shows it in /proc/PID/exe: anything else
 * (".", "..", "//", a trailing '/') would never match and silently exempt
 * nothing. */
static int parse_executable(const ConfigKey *key, const char *value, void *field,
                            char *problem, size_t problem_len)
{
        int r = config_check_path(value, true, PATH_MAX - 1, problem, problem_len);

        if (r < 0)
                return r;
        for (const char *p = value; *p; p++) {
                size_t len;

                if (*p != '/')
                        continue;
                len = strcspn(p + 1, "/");
                if (len == 0 || (len == 1 && p[1] == '.') ||
                    (len == 2 && p[1] == '.' && p[2] == '.')) {
                        snprintf(problem, problem_len,
                                 "must be a normalized absolute path (no empty, '.' or '..' "
                                 "components, no trailing '/')");
                        return -EINVAL;
                }
        }
        return config_store_string(value, field);
}

static const ConfigKey enforcement_exempt_table[] = {
        CONFIG_VALUES("users", parse_exempt_user, ConfigEnforcement, exempt_users,
                      n_exempt_users, char *, CONFIG_EXEMPT_MAX),
        CONFIG_VALUES("executables", parse_executable, ConfigEnforcement, exempt_executables,
                      n_exempt_executables, char *, CONFIG_EXEMPT_MAX),
        CONFIG_END,
};

const ConfigKey config_enforcement_table[] = {
        CONFIG_SCALAR("mode", parse_enforcement_mode, ConfigEnforcement, mode, 0, 0),
        CONFIG_SCALAR("grace", config_parse_duration, ConfigEnforcement, grace_usec,
                      CONFIG_ENFORCEMENT_GRACE_MIN, CONFIG_ENFORCEMENT_GRACE_MAX),
        CONFIG_SCALAR("kill_timeout", config_parse_duration, ConfigEnforcement,
                      kill_timeout_usec, CONFIG_KILL_TIMEOUT_MIN,
                      CONFIG_KILL_TIMEOUT_MAX),
        CONFIG_SCALAR("root_exempt", config_parse_bool, ConfigEnforcement, root_exempt, 0, 0),
        CONFIG_SECTION("exempt", enforcement_exempt_table),
        /* strict mode (src/isolate) */
        CONFIG_SCALAR("fence_cgroup", config_parse_absolute_path, ConfigEnforcement,
                      fence_cgroup, 0, 0),
        CONFIG_SCALAR("fence_pin_dir", config_parse_absolute_path, ConfigEnforcement,
                      fence_pin_dir, 0, 0),
        CONFIG_SCALAR("mig_minors", config_parse_absolute_path, ConfigEnforcement, mig_minors,
                      0, 0),
        CONFIG_SCALAR("proc_devices", config_parse_absolute_path, ConfigEnforcement,
                      proc_devices, 0, 0),
        CONFIG_END,
};

int config_enforcement_init(ConfigEnforcement *s)
{
        *s = (ConfigEnforcement){
                .mode = CONFIG_ENFORCEMENT_ENFORCE,
                .grace_usec = CONFIG_DEFAULT_ENFORCEMENT_GRACE_USEC,
                .kill_timeout_usec = CONFIG_DEFAULT_KILL_TIMEOUT_USEC,
                .root_exempt = true,
                .fence_pin_dir = strdup(CONFIG_DEFAULT_FENCE_PIN_DIR),
                .mig_minors = strdup(CONFIG_DEFAULT_MIG_MINORS),
                .proc_devices = strdup(CONFIG_DEFAULT_PROC_DEVICES),
        };
        if (!s->fence_pin_dir || !s->mig_minors || !s->proc_devices)
                return -ENOMEM;
        return 0;
}

void config_enforcement_done(ConfigEnforcement *s)
{
        strv_free_n(s->exempt_users, s->n_exempt_users);
        strv_free_n(s->exempt_executables, s->n_exempt_executables);
        free(s->fence_cgroup);
        free(s->fence_pin_dir);
        free(s->mig_minors);
        free(s->proc_devices);
}
