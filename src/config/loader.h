/* The generic, table-driven YAML loader behind gpukeeper.yaml(5)
 * (config_parse_yaml): a table of ConfigKey rows says, for every key of a
 * mapping, what it is (a scalar with its parser, a nested section with its
 * own table, a list of mappings with a table for each item, a list of
 * values) and where its value goes in the target struct. Adding a key or a
 * section is adding a row; rules that tie several keys together go into a
 * section's check function, which can still point at the line and column of
 * any key it blames.
 *
 * Nothing here knows gpukeeperd's keys (those are config.c and one file per
 * section); the row parsers are in config/values.h. Every error is one line
 * "PATH:LINE:COL: what is wrong" (line and column 1-based) that names the
 * offending key. Nothing here logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/macro.h"

/* Files larger than this are rejected before parsing. */
#define CONFIG_FILE_MAX (UINT64_C(1) << 20)
/* Errors reported for one file at most: the walk goes on after an unknown
 * or duplicate key, a bad value or a missing key, and stops at a YAML
 * syntax error (libyaml cannot go on), an anchor, alias, tag or complex
 * key, or after this many. */
#define CONFIG_MAX_ERRORS 20

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
        CONFIG_KEY_NAMED,       /* a mapping of names to mappings ("groups: {phd: {...}}"):
                                 * each entry an item of an array, its name converted by
                                 * `parse` into the item's name_offset, its value read by
                                 * the table `section` */
} ConfigKeyKind;

/* Offsets are relative to the struct the enclosing mapping is read into:
 * the target for the top level and its sections, one array element for the
 * items of a list (and their sections). */
struct ConfigKey {
        const char *name;
        ConfigKeyKind kind;
        ConfigParser parse;       /* CONFIG_KEY_SCALAR */
        size_t offset;            /* SCALAR, VALUE_SET: the field; LIST, VALUES: the array
                                   * pointer (T *); SECTION: the struct its table is
                                   * relative to (0: the enclosing one) */
        uint64_t min, max;        /* numeric parsers: inclusive range, used when max != 0 */
        double min_double, max_double; /* config_parse_double: inclusive range */
        bool required;            /* SCALAR: a mapping of this table without it is an error */
        bool secret;              /* SCALAR: messages never quote the value */
        const ConfigKey *section; /* SECTION, LIST: rows ended by one with name == NULL */
        ConfigChecker check;      /* SECTION: optional, run after the section was read */
        size_t count_offset;      /* LIST, VALUES: the element count (size_t) */
        size_t item_size;         /* LIST, VALUES: sizeof(T); VALUE_SET: size of the field */
        size_t max_items;         /* LIST, VALUES, VALUE_SET, NAMED: more items are an error */
        size_t name_offset;       /* NAMED: the item's char * name */
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
/* A section read into `field` of `type` (a struct of its own, ConfigPolicy in
 * Config): the section's table, and its checker's `base`, are relative to
 * that field. `checker` may be NULL. This is how the root table names the
 * sections of src/config/<section>.c. */
#define CONFIG_SECTION_AT(n, table, checker, type, field)                                          \
        {                                                                                          \
                .name = (n), .kind = CONFIG_KEY_SECTION, .section = (table), .check = (checker),   \
                .offset = offsetof(type, field),                                                   \
        }
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
/* `field` is a T * and `count_field` a size_t of `type`, both NULL/0 before
 * loading; each key of the mapping is one T, its name converted by `parser`
 * into T's char * `name_field`, its value (a mapping) read by `table`. Names
 * appear in messages as "section.NAME.key". */
#define CONFIG_NAMED(n, parser, table, type, field, count_field, item_type, name_field, most)     \
        {                                                                                          \
                .name = (n), .kind = CONFIG_KEY_NAMED, .parse = (parser), .section = (table),      \
                .offset = offsetof(type, field), .count_offset = offsetof(type, count_field),      \
                .item_size = sizeof(item_type), .max_items = (most),                               \
                .name_offset = offsetof(item_type, name_field),                                    \
        }
#define CONFIG_END {.name = NULL}

/* Parse the YAML file `path` against `table` (rows ended by CONFIG_END),
 * storing values into `target`. A key may appear at most once per mapping;
 * keys not present keep whatever `target` held. A section written with no
 * value ("http:" followed by nothing) is an empty section, and a list written
 * so is an empty list (of mappings or of values). A list's items are
 * appended to its (empty) array one by one, each zeroed before it is read,
 * so that the array and its count always describe what was read even when
 * loading fails. Keys are named in messages with dots and 0-based item
 * indexes: "policy.groups[1].max_gpus", "alerts.sinks[0].events[2]".
 * The file must be a regular file of at most CONFIG_FILE_MAX bytes without
 * NUL bytes, holding at most one YAML document whose top level is a mapping
 * (or nothing at all);
 * anchors, aliases and tags are rejected. Returns and reports errors like
 * config_load(), except that *ret_error holds every error found (see
 * CONFIG_MAX_ERRORS), one "PATH:LINE:COL: ..." a line, in file order, with
 * no final newline; on failure `target` may have been partly updated. */
int config_parse_yaml(const char *path, const ConfigKey *table, void *target, char **ret_error);

/* For check functions: whether the file gave the key with the dotted name
 * `name` ("policy.groups[0].max_gpus"). */
bool config_check_given(const ConfigCheck *check, const char *name);

/* For check functions: record the error "PATH:LINE:COL: <fmt...>" at the
 * value of the key `name`, which the file must have given (see
 * config_check_given). Returns -EINVAL, or -ENOMEM. */
_printf_(3, 4) int config_check_error(ConfigCheck *check, const char *name, const char *fmt,
                                      ...);

