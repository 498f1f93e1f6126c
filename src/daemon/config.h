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
#define CONFIG_GROUP_NAME_MAX 32    /* bytes of a group name */

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

typedef struct Config {
        char *path;         /* the file this was loaded from; NULL for built-in defaults */
        char *socket_path;  /* socket */
        char *state_dir;    /* state_dir */
        char *nvml_library; /* nvml_library */
        uint64_t sample_interval_usec; /* sample_interval */
        int log_level;      /* log_level, one of LOG_LEVEL_* from basic/log.h */
        ConfigPolicy policy; /* the policy section */
} Config;

/* A Config holding every default; path is NULL. Returns 0 or -ENOMEM. */
int config_new_defaults(Config **ret);

/* The limits that apply to a user who is a member of the groups named in
 * `group_names` (primary and supplementary; may be NULL when n is 0): those
 * of the first policy.groups entry, in file order, whose group is among
 * them, else policy.limits. Never NULL; points into `c`. */
const ConfigPolicyLimits *config_policy_limits(const Config *c, const char *const *group_names,
                                               size_t n);

/* Parse `path` on top of the defaults. On failure returns -EINVAL for
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
        CONFIG_KEY_UNSUPPORTED, /* a name reserved for a later version: any use is an error */
} ConfigKeyKind;

/* Offsets are relative to the struct the enclosing mapping is read into:
 * the target for the top level and its sections, one array element for the
 * items of a list (and their sections). */
struct ConfigKey {
        const char *name;
        ConfigKeyKind kind;
        ConfigParser parse;       /* CONFIG_KEY_SCALAR */
        size_t offset;            /* SCALAR: the field; LIST: the array pointer (T *) */
        uint64_t min, max;        /* numeric parsers: inclusive range, used when max != 0 */
        bool required;            /* SCALAR: a mapping of this table without it is an error */
        const ConfigKey *section; /* SECTION, LIST: rows ended by one with name == NULL */
        ConfigChecker check;      /* SECTION: optional, run after the section was read */
        size_t count_offset;      /* LIST: the element count (size_t) */
        size_t item_size;         /* LIST: sizeof(T) */
        size_t max_items;         /* LIST: more items are an error */
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
#define CONFIG_UNSUPPORTED(n) {.name = (n), .kind = CONFIG_KEY_UNSUPPORTED}
#define CONFIG_END {.name = NULL}

/* Parse the YAML file `path` against `table` (rows ended by CONFIG_END),
 * storing values into `target`. A key may appear at most once per mapping;
 * keys not present keep whatever `target` held. A section written with no
 * value ("http:" followed by nothing) is an empty section, and a list written
 * so is an empty list. A list's items are appended to its (empty) array one
 * by one, each zeroed before it is read, so that the array and its count
 * always describe what was read even when loading fails. Keys are named in
 * messages with dots and 0-based item indexes: "policy.groups[1].max_gpus".
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
