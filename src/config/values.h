/* The row parsers of config/loader.h's tables (the values every section
 * uses: paths, durations, sizes, numbers, booleans), and the small checks
 * section files build their own parsers from. Each parser writes a short
 * problem phrase on -EINVAL (see ConfigParser); nothing here logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config/loader.h"

/* Largest group name (config_parse_group_name), in bytes: groupadd stops at
 * 32, but directories (LDAP, sssd) serve longer names, and a policy must be
 * able to name them. */
#define CONFIG_GROUP_NAME_MAX 256

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

/* Building blocks for a section's own parsers. */

/* Whether s holds a control character (below 0x20, or 0x7f). */
bool config_has_control_chars(const char *s);
/* Whether s holds a space or a control character (not allowed unescaped in a URL). */
bool config_has_space_or_control(const char *s);
/* Store a copy of `value` in the char * at `field`, freeing what was there.
 * Returns 0 or -ENOMEM. */
int config_store_string(const char *value, void *field);
/* The checks of every path-like value: not empty, no control characters,
 * absolute when asked, at most `max` bytes. Returns 0 or -EINVAL with
 * `problem` set. */
int config_check_path(const char *value, bool absolute, size_t max, char *problem,
                      size_t problem_len);
/* "must be one of a, b, c" for the names in names[0..n). */
void config_problem_one_of(const char *const *names, size_t n, char *problem,
                           size_t problem_len);
