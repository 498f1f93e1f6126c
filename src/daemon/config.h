/* The daemon's YAML configuration (/etc/gpukeeper/gpukeeper.yaml by default;
 * documented for users in gpukeeper.yaml(5)).
 *
 * Two layers live here:
 *   - a generic, table-driven loader (config_parse_yaml): a table of
 *     ConfigKey rows says, for every key of a mapping, what it is (a scalar
 *     with its parser, a nested section with its own table, or a section
 *     reserved for a later version) and where its value goes in the target
 *     struct. Adding a key or a section is adding a row.
 *   - the gpukeeperd Config built on it (config_load and friends).
 *
 * Every error is one line "PATH:LINE:COL: what is wrong" (line and column
 * 1-based) that names the offending key. Nothing here logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/parse.h"

#define CONFIG_DEFAULT_PATH "/etc/gpukeeper/gpukeeper.yaml"
#define CONFIG_DEFAULT_STATE_DIR "/var/lib/gpukeeper"
#define CONFIG_DEFAULT_NVML_LIBRARY "libnvidia-ml.so.1"
#define CONFIG_DEFAULT_SAMPLE_INTERVAL_USEC (2 * USEC_PER_SEC)
/* Must equal GK_DEFAULT_SOCKET in gpukeeper/client.h (the CLI's default; the
 * unit test checks). Not included from there to keep jansson out of the daemon core. */
#define CONFIG_DEFAULT_SOCKET "/run/gpukeeper/gpukeeper.sock"

/* Files larger than this are rejected before parsing. */
#define CONFIG_FILE_MAX (UINT64_C(1) << 20)

typedef struct Config {
        char *path;         /* the file this was loaded from; NULL for built-in defaults */
        char *socket_path;  /* socket */
        char *state_dir;    /* state_dir */
        char *nvml_library; /* nvml_library */
        uint64_t sample_interval_usec; /* sample_interval */
        int log_level;      /* log_level, one of LOG_LEVEL_* from basic/log.h */
} Config;

/* A Config holding every default; path is NULL. Returns 0 or -ENOMEM. */
int config_new_defaults(Config **ret);

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
        CONFIG_KEY_UNSUPPORTED, /* a name reserved for a later version: any use is an error */
} ConfigKeyKind;

struct ConfigKey {
        const char *name;
        ConfigKeyKind kind;
        ConfigParser parse;       /* CONFIG_KEY_SCALAR */
        size_t offset;            /* CONFIG_KEY_SCALAR: offset of the field in the target struct */
        uint64_t min, max;        /* numeric parsers: inclusive range, used when max != 0 */
        const ConfigKey *section; /* CONFIG_KEY_SECTION: rows ended by one with name == NULL */
};

#define CONFIG_SCALAR(n, parser, type, field, lo, hi)                                              \
        {                                                                                          \
                .name = (n), .kind = CONFIG_KEY_SCALAR, .parse = (parser),                         \
                .offset = offsetof(type, field), .min = (lo), .max = (hi),                         \
        }
#define CONFIG_SECTION(n, table) {.name = (n), .kind = CONFIG_KEY_SECTION, .section = (table)}
#define CONFIG_UNSUPPORTED(n) {.name = (n), .kind = CONFIG_KEY_UNSUPPORTED}
#define CONFIG_END {.name = NULL}

/* Parse the YAML file `path` against `table` (rows ended by CONFIG_END),
 * storing values into `target`. A key may appear at most once per mapping;
 * keys not present keep whatever `target` held. A section written with no
 * value ("http:" followed by nothing) is an empty section. The file must be a
 * regular file of at most CONFIG_FILE_MAX bytes without NUL bytes, holding at
 * most one YAML document whose top level is a mapping (or nothing at all);
 * anchors, aliases and tags are rejected. Returns and reports errors like
 * config_load(); on failure `target` may have been partly updated. */
int config_parse_yaml(const char *path, const ConfigKey *table, void *target, char **ret_error);

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
