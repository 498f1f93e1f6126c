/* The daemon's YAML configuration (/etc/gpukeeper/gpukeeper.yaml by default;
 * documented for users in gpukeeper.yaml(5)).
 *
 * Two layers live here:
 *   - a generic, table-driven loader (config_parse_yaml): a table of
 *     ConfigKey rows says, for every key of a mapping, what it is (a scalar
 *     with its parser, a nested section with its own table, a list of
 *     mappings with a table for each item, or a section reserved for a later
 *     version) and where its value goes in the target struct. Adding a key
 *     or a section is adding a row; rules that tie several keys together go
 *     into a section's check function, which can still point at the line and
 *     column of any key it blames.
 *   - the gpukeeperd Config built on it (config_load and friends).
 *
 * Every error is one line "PATH:LINE:COL: what is wrong" (line and column
 * 1-based) that names the offending key. Nothing here logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "basic/macro.h"
#include "basic/parse.h"

#define CONFIG_DEFAULT_PATH "/etc/gpukeeper/gpukeeper.yaml"
#define CONFIG_DEFAULT_STATE_DIR "/var/lib/gpukeeper"
#define CONFIG_DEFAULT_NVML_LIBRARY "libnvidia-ml.so.1"
#define CONFIG_DEFAULT_SAMPLE_INTERVAL_USEC (2 * USEC_PER_SEC)
/* Must equal GK_DEFAULT_SOCKET in gpukeeper/client.h (the CLI's default; the
 * unit test checks). Not included from there to keep jansson out of the daemon core. */
#define CONFIG_DEFAULT_SOCKET "/run/gpukeeper/gpukeeper.sock"

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
/* bytes of a group name: groupadd stops at 32, but directories (LDAP, sssd)
 * serve longer names, and a policy must be able to name them. */
#define CONFIG_GROUP_NAME_MAX 256

/* The enforcement section. */
#define CONFIG_DEFAULT_ENFORCEMENT_GRACE_USEC (60 * USEC_PER_SEC)
#define CONFIG_DEFAULT_KILL_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define CONFIG_ENFORCEMENT_GRACE_MIN USEC_PER_SEC /* grace: 1s .. 1d */
#define CONFIG_ENFORCEMENT_GRACE_MAX USEC_PER_DAY
#define CONFIG_KILL_TIMEOUT_MIN USEC_PER_SEC /* kill_timeout: 1s .. 1h */
#define CONFIG_KILL_TIMEOUT_MAX USEC_PER_HOUR
#define CONFIG_EXEMPT_MAX 256       /* entries of exempt.users, and of exempt.executables */
#define CONFIG_USER_NAME_MAX 32     /* bytes of a user name in exempt.users */

/* The idle section. */
#define CONFIG_DEFAULT_IDLE_RELEASE_AFTER_USEC (2 * USEC_PER_HOUR)
#define CONFIG_DEFAULT_IDLE_WARN_BEFORE_USEC (15 * USEC_PER_MINUTE)
#define CONFIG_DEFAULT_IDLE_FLAG_AFTER_USEC (30 * USEC_PER_MINUTE)
#define CONFIG_IDLE_AFTER_MIN USEC_PER_SEC /* release_after, flag_after: 1s .. 30d */
#define CONFIG_IDLE_AFTER_MAX (30 * USEC_PER_DAY)

/* The alerts section. */
#define CONFIG_DEFAULT_ALERT_REPEAT_AFTER_USEC USEC_PER_HOUR
#define CONFIG_DEFAULT_ALERT_MEMORY_FRACTION 0.9
#define CONFIG_DEFAULT_ALERT_MEMORY_FOR_USEC USEC_PER_MINUTE
#define CONFIG_DEFAULT_ALERT_TEMPERATURE_C 85
#define CONFIG_DEFAULT_ALERT_TEMPERATURE_FOR_USEC USEC_PER_MINUTE
#define CONFIG_DEFAULT_ALERT_SINK_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define CONFIG_ALERT_REPEAT_AFTER_MIN USEC_PER_SEC /* repeat_after: 1s .. 30d */
#define CONFIG_ALERT_REPEAT_AFTER_MAX (30 * USEC_PER_DAY)
#define CONFIG_ALERT_MEMORY_FRACTION_MIN 0.01
#define CONFIG_ALERT_MEMORY_FRACTION_MAX 1.0
#define CONFIG_ALERT_FOR_MAX USEC_PER_DAY  /* memory_for, temperature_for: 0 .. 1d */
#define CONFIG_ALERT_TEMPERATURE_MIN 30    /* temperature_c: 30 .. 120 */
#define CONFIG_ALERT_TEMPERATURE_MAX 120
#define CONFIG_ALERT_SINK_TIMEOUT_MIN USEC_PER_SEC /* a sink's timeout: 1s .. 5m */
#define CONFIG_ALERT_SINK_TIMEOUT_MAX (5 * USEC_PER_MINUTE)
#define CONFIG_ALERT_MAX_SINKS 32       /* entries of alerts.sinks */
#define CONFIG_ALERT_SINK_NAME_MAX 32   /* bytes of a sink name */
#define CONFIG_ALERT_MAX_RECIPIENTS 32  /* entries of an email sink's `to` */
#define CONFIG_ALERT_URL_MAX 2048       /* bytes of url and smtp_url */
#define CONFIG_ALERT_ADDRESS_MAX 254    /* bytes of an email address (RFC 5321) */
#define CONFIG_ALERT_CREDENTIAL_MAX 256 /* bytes of secret, username, password */

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

/* http section: where /metrics is served (dcgm-exporter's port by default). */
#define CONFIG_DEFAULT_HTTP_LISTEN "127.0.0.1:9400"
#define CONFIG_HTTP_TOKEN_MAX 256 /* bytes of http.token */

/* history section: raw samples kept for raw_hours, then 1-minute rows kept
 * for days. */
#define CONFIG_DEFAULT_HISTORY_RAW_HOURS UINT64_C(48)
#define CONFIG_HISTORY_RAW_HOURS_MAX UINT64_C(720) /* 1 .. 30 days */
#define CONFIG_DEFAULT_HISTORY_DAYS UINT64_C(90)
#define CONFIG_HISTORY_DAYS_MAX UINT64_C(3650) /* 1 .. 10 years */

/* Files larger than this are rejected before parsing. */
#define CONFIG_FILE_MAX (UINT64_C(1) << 20)

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
        ConfigPolicyGroup *groups;            /* in file order, names unique */
        size_t n_groups;                      /* at most CONFIG_POLICY_MAX_GROUPS */
} ConfigPolicy;

typedef enum ConfigEnforcementMode {
        CONFIG_ENFORCEMENT_OBSERVE, /* detect and report violations, signal nothing */
        CONFIG_ENFORCEMENT_ENFORCE, /* SIGTERM after grace, SIGKILL after kill_timeout */
} ConfigEnforcementMode;

/* The enforcement section: what happens to processes that use a device
 * their owner holds no lease on. */
typedef struct ConfigEnforcement {
        ConfigEnforcementMode mode;
        uint64_t grace_usec;        /* from detection to SIGTERM */
        uint64_t kill_timeout_usec; /* from SIGTERM to SIGKILL */
        bool root_exempt;           /* processes of uid 0 are never violations */
        char **exempt_users;        /* as written: user names, or uids in decimal */
        size_t n_exempt_users;
        char **exempt_executables;  /* normalized absolute paths, compared with /proc/PID/exe */
        size_t n_exempt_executables;
} ConfigEnforcement;

/* The idle section. */
typedef struct ConfigIdle {
        uint64_t release_after_usec; /* a manual lease with no process and 0% utilization
                                      * this long is released */
        uint64_t warn_before_usec;   /* its holder is warned this long before; <= release_after */
        uint64_t flag_after_usec;    /* a run lease at 0% utilization this long is flagged */
        bool stop_idle_runs;         /* a flagged run lease's command is stopped */
} ConfigIdle;

/* What alerts are about; the names (config_alert_event_to_string) are those
 * of a sink's `events` filter. */
typedef enum ConfigAlertEvent {
        CONFIG_ALERT_DAEMON,          /* "daemon": started, configuration reloaded */
        CONFIG_ALERT_VIOLATION,       /* "violation": a process without a lease detected */
        CONFIG_ALERT_PROCESS_STOPPED, /* "process_stopped": signalled, killed, unkillable */
        CONFIG_ALERT_GPU_LOST,        /* "gpu_lost" */
        CONFIG_ALERT_NVML_ERROR,      /* "nvml_error" */
        CONFIG_ALERT_XID,             /* "xid" */
        CONFIG_ALERT_MEMORY,          /* "memory": memory_fraction exceeded for memory_for */
        CONFIG_ALERT_TEMPERATURE,     /* "temperature": temperature_c reached for temperature_for */
        CONFIG_ALERT_IDLE_WARNING,    /* "idle_warning" */
        CONFIG_ALERT_IDLE_RECLAIM,    /* "idle_reclaim" */
        CONFIG_ALERT_IDLE_FLAG,       /* "idle_flag" */
        _CONFIG_ALERT_MAX,
} ConfigAlertEvent;

/* Every event, as a ConfigAlertSink.events mask. */
#define CONFIG_ALERT_EVENTS_ALL ((UINT32_C(1) << _CONFIG_ALERT_MAX) - 1)

/* The event's name in the configuration ("gpu_lost"); NULL when out of range. */
const char *config_alert_event_to_string(ConfigAlertEvent e);
/* The event named `s`, or -EINVAL. */
int config_alert_event_from_string(const char *s);

typedef enum ConfigAlertSinkType {
        CONFIG_SINK_WEBHOOK,
        CONFIG_SINK_DINGTALK,
        CONFIG_SINK_SLACK,
        CONFIG_SINK_EMAIL,
        _CONFIG_SINK_TYPE_MAX,
} ConfigAlertSinkType;

/* The type's name in the configuration ("dingtalk"); NULL when out of range. */
const char *config_alert_sink_type_to_string(ConfigAlertSinkType t);

/* One entry of alerts.sinks. url, secret, smtp_url and password are secrets
 * (URLs of DingTalk and Slack carry tokens): never log them, log the name. */
typedef struct ConfigAlertSink {
        char *name;               /* [a-z0-9_-]{1,32}, unique */
        ConfigAlertSinkType type;
        char *url;                /* webhook, dingtalk, slack: an http:// or https:// URL;
                                   * NULL for email */
        char *secret;             /* dingtalk: signing secret, or NULL */
        uint32_t events;          /* 1u << ConfigAlertEvent; CONFIG_ALERT_EVENTS_ALL when
                                   * not given; never 0 */
        uint64_t timeout_usec;    /* per delivery attempt */
        char *smtp_url;           /* email: smtp:// or smtps:// URL; NULL otherwise */
        bool starttls;            /* email: require STARTTLS on smtp:// */
        char *username;           /* email: optional; set exactly when password is */
        char *password;           /* email: optional */
        char *from;               /* email: the sender address; NULL otherwise */
        char **to;                /* email: at least one recipient address */
        size_t n_to;
} ConfigAlertSink;

/* The alerts section. */
typedef struct ConfigAlerts {
        uint64_t repeat_after_usec;   /* the same condition is not alerted again before this */
        double memory_fraction;       /* GPU memory used above this fraction of the total ... */
        uint64_t memory_for_usec;     /* ... for at least this long */
        int temperature_c;            /* GPU temperature at or above this ... */
        uint64_t temperature_for_usec; /* ... for at least this long */
        ConfigAlertSink *sinks;       /* in file order, names unique */
        size_t n_sinks;               /* at most CONFIG_ALERT_MAX_SINKS */
} ConfigAlerts;

/* The env section. */
typedef struct ConfigEnv {
        uint64_t backup_interval_usec; /* one archive per interval; 0 = off */
        uint64_t backup_keep;          /* newest archives kept */
        char *backup_dir;              /* never NULL after loading (default derived from
                                        * state_dir) */
        char *conda_exe;               /* a command name (searched in PATH) or an absolute path */
        char *templates_dir;           /* absolute path */
} ConfigEnv;

/* http.listen: the text as written and the address it names. */
typedef struct ConfigListen {
        char *text;                   /* "127.0.0.1:9400", "[::1]:9400" */
        struct sockaddr_storage addr; /* AF_INET or AF_INET6, port set */
        socklen_t addr_len;
        bool loopback;                /* 127.0.0.0/8 or ::1 */
} ConfigListen;

/* The http section. token is a secret: never log it. */
typedef struct ConfigHttp {
        ConfigListen listen;
        char *token;              /* NULL: no Authorization required (loopback only) */
        bool per_process_metrics; /* per-process series on /metrics (label churn) */
} ConfigHttp;

/* The history section. */
typedef struct ConfigHistory {
        uint64_t raw_hours; /* raw samples older than this are rolled up into minutes */
        uint64_t days;      /* minute rows older than this are deleted */
} ConfigHistory;

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
        ConfigAlerts alerts; /* the alerts section */
        ConfigEnv env;       /* the env section */
        ConfigHttp http;     /* the http section */
        ConfigHistory history; /* the history section */
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

/* ---- The table-driven loader ------------------------------------------- */

typedef struct ConfigKey ConfigKey;

/* What a section's check function sees of the loader: which keys the file
 * gave, and where (see config_check_given and config_check_error). */
typedef struct ConfigCheck ConfigCheck;

/* Run once a section has been read completely (also when it was written
 * empty; not when it is absent), to apply rules that tie several keys
 * together and to fill in values derived from others. `base` is the struct
 * the section's offsets are relative to and `name` the section's dotted name
 * ("policy"). Returns 0, -ENOMEM, or what config_check_error() returned. */
typedef int (*ConfigChecker)(ConfigCheck *check, void *base, const char *name);

/* Convert the scalar `value` of `key` and store it at `field` (the target
 * struct plus key->offset). Returns 0, -ENOMEM, or -EINVAL after writing a
 * short phrase saying what is wrong (without the key name or the position,
 * which the loader adds) into problem[0..problem_len). A parser for a char *
 * field frees the previous value (the default) when it stores a new one. */
typedef int (*ConfigParser)(const ConfigKey *key, const char *value, void *field, char *problem,
                            size_t problem_len);

typedef enum ConfigKeyKind {
        CONFIG_KEY_SCALAR,      /* a scalar value converted by `parse` */
        CONFIG_KEY_SECTION,     /* a mapping described by the table `section` */
        CONFIG_KEY_LIST,        /* a list of mappings, each described by the table `section` */
        CONFIG_KEY_VALUES,      /* a list of scalars, each converted by `parse` into an
                                 * element of an array */
        CONFIG_KEY_VALUE_SET,   /* a list of scalars, all converted by `parse` into the
                                 * one field (flags: a bit mask), which is zeroed first */
} ConfigKeyKind;

/* Offsets are relative to the struct the enclosing mapping is read into:
 * the target for the top level and its sections, one array element for the
 * items of a list (and their sections). */
struct ConfigKey {
        const char *name;
        ConfigKeyKind kind;
        ConfigParser parse;       /* CONFIG_KEY_SCALAR */
        size_t offset;            /* SCALAR, VALUE_SET: the field; LIST, VALUES: the array
                                   * pointer (T *) */
        uint64_t min, max;        /* numeric parsers: inclusive range, used when max != 0 */
        double min_double, max_double; /* config_parse_double: inclusive range */
        bool required;            /* SCALAR: a mapping of this table without it is an error */
        bool secret;              /* SCALAR: messages never quote the value */
        const ConfigKey *section; /* SECTION, LIST: rows ended by one with name == NULL */
        ConfigChecker check;      /* SECTION: optional, run after the section was read */
        size_t count_offset;      /* LIST, VALUES: the element count (size_t) */
        size_t item_size;         /* LIST, VALUES: sizeof(T); VALUE_SET: size of the field */
        size_t max_items;         /* LIST, VALUES, VALUE_SET: more items are an error */
};

#define CONFIG_SCALAR(n, parser, type, field, lo, hi)                                              \
        {                                                                                          \
                .name = (n), .kind = CONFIG_KEY_SCALAR, .parse = (parser),                         \
                .offset = offsetof(type, field), .min = (lo), .max = (hi),                         \
        }
#define CONFIG_SCALAR_REQUIRED(n, parser, type, field, lo, hi)                                     \
        {                                                                                          \
                .name = (n), .kind = CONFIG_KEY_SCALAR, .parse = (parser),                         \
                .offset = offsetof(type, field), .min = (lo), .max = (hi), .required = true,       \
        }
/* A value never quoted back in error messages (URLs with tokens, passwords). */
#define CONFIG_SCALAR_SECRET(n, parser, type, field)                                               \
        {                                                                                          \
                .name = (n), .kind = CONFIG_KEY_SCALAR, .parse = (parser),                         \
                .offset = offsetof(type, field), .secret = true,                                   \
        }
/* A double read by config_parse_double, within lo..hi. */
#define CONFIG_SCALAR_DOUBLE(n, type, field, lo, hi)                                               \
        {                                                                                          \
                .name = (n), .kind = CONFIG_KEY_SCALAR, .parse = config_parse_double,              \
                .offset = offsetof(type, field), .min_double = (lo), .max_double = (hi),           \
        }
#define CONFIG_SECTION(n, table) {.name = (n), .kind = CONFIG_KEY_SECTION, .section = (table)}
#define CONFIG_SECTION_CHECKED(n, table, checker)                                                  \
        {.name = (n), .kind = CONFIG_KEY_SECTION, .section = (table), .check = (checker)}
/* `field` is a T * and `count_field` a size_t of `type`, both NULL/0 before
 * loading; `table` describes one T. */
#define CONFIG_LIST(n, table, type, field, count_field, item_type, most)                           \
        {                                                                                          \
                .name = (n), .kind = CONFIG_KEY_LIST, .section = (table),                          \
                .offset = offsetof(type, field), .count_offset = offsetof(type, count_field),      \
                .item_size = sizeof(item_type), .max_items = (most),                               \
        }
/* `field` is a T * and `count_field` a size_t of `type`, both NULL/0 before
 * loading; each item is converted by `parser` into one T (zeroed first). */
#define CONFIG_VALUES(n, parser, type, field, count_field, item_type, most)                        \
        {                                                                                          \
                .name = (n), .kind = CONFIG_KEY_VALUES, .parse = (parser),                         \
                .offset = offsetof(type, field), .count_offset = offsetof(type, count_field),      \
                .item_size = sizeof(item_type), .max_items = (most),                               \
        }
/* Every item is converted by `parser` into `field`, zeroed before the first
 * (also for an empty list); the parser combines them (sets a bit, say). */
#define CONFIG_VALUE_SET(n, parser, type, field, most)                                             \
        {                                                                                          \
                .name = (n), .kind = CONFIG_KEY_VALUE_SET, .parse = (parser),                      \
                .offset = offsetof(type, field), .item_size = sizeof(((type *)NULL)->field),       \
                .max_items = (most),                                                               \
        }
#define CONFIG_END {.name = NULL}

/* Parse the YAML file `path` against `table` (rows ended by CONFIG_END),
 * storing values into `target`. A key may appear at most once per mapping;
 * keys not present keep whatever `target` held. A section written with no
 * value ("http:" followed by nothing) is an empty section, and a list written
 * so is an empty list (of mappings or of values). A list's items are appended to its (empty) array one
 * by one, each zeroed before it is read, so that the array and its count
 * always describe what was read even when loading fails. Keys are named in
 * messages with dots and 0-based item indexes: "policy.groups[1].max_gpus",
 * "alerts.sinks[0].events[2]".
 * The file must be a
 * regular file of at most CONFIG_FILE_MAX bytes without NUL bytes, holding at
 * most one YAML document whose top level is a mapping (or nothing at all);
 * anchors, aliases and tags are rejected. Returns and reports errors like
 * config_load(); on failure `target` may have been partly updated. */
int config_parse_yaml(const char *path, const ConfigKey *table, void *target, char **ret_error);

/* For check functions: whether the file gave the key with the dotted name
 * `name` ("policy.groups[0].max_gpus"). */
bool config_check_given(const ConfigCheck *check, const char *name);

/* For check functions: record the error "PATH:LINE:COL: <fmt...>" at the
 * value of the key `name`, which the file must have given (see
 * config_check_given). Returns -EINVAL, or -ENOMEM. */
_printf_(3, 4) int config_check_error(ConfigCheck *check, const char *name, const char *fmt,
                                      ...);

/* Parsers for table rows. The field type each one writes is given. */
int config_parse_absolute_path(const ConfigKey *key, const char *value, void *field,
                               char *problem, size_t problem_len); /* char *, absolute path */
int config_parse_socket_path(const ConfigKey *key, const char *value, void *field, char *problem,
                             size_t problem_len); /* char *, absolute and fits sun_path */
int config_parse_library(const ConfigKey *key, const char *value, void *field, char *problem,
                         size_t problem_len); /* char *, a file name or an absolute path */
int config_parse_duration(const ConfigKey *key, const char *value, void *field, char *problem,
                          size_t problem_len); /* uint64_t microseconds, range-checked */
int config_parse_size(const ConfigKey *key, const char *value, void *field, char *problem,
                      size_t problem_len); /* uint64_t bytes, range-checked */
int config_parse_uint64(const ConfigKey *key, const char *value, void *field, char *problem,
                        size_t problem_len); /* uint64_t, range-checked */
int config_parse_bool(const ConfigKey *key, const char *value, void *field, char *problem,
                      size_t problem_len); /* bool */
int config_parse_log_level(const ConfigKey *key, const char *value, void *field, char *problem,
                           size_t problem_len); /* int LOG_LEVEL_* */
int config_parse_group_name(const ConfigKey *key, const char *value, void *field, char *problem,
                            size_t problem_len); /* char *, [a-z_][a-z0-9_-]*, at most 32 bytes */
int config_parse_double(const ConfigKey *key, const char *value, void *field, char *problem,
                        size_t problem_len); /* double, digits[.digits], within
                                              * min_double..max_double */
int config_parse_int(const ConfigKey *key, const char *value, void *field, char *problem,
                     size_t problem_len); /* int, a whole number >= 0, range-checked
                                           * (max at most INT_MAX) */
