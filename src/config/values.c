/* The row parsers of config/values.h: the value kinds every section uses.
 * Their problem phrases never repeat the value (the loader quotes it, unless
 * the row is secret). */
#include "config/values.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "basic/log.h"
#include "basic/macro.h"
#include "basic/parse.h"

bool config_has_control_chars(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

/* Store a copy of `value` in the char * at `field`, replacing what was there. */
int config_store_string(const char *value, void *field)
{
        char *copy = strdup(value);
        char **p = field;

        if (!copy)
                return -ENOMEM;
        free(*p);
        *p = copy;
        return 0;
}

/* Common checks for every path-like value; returns 0 or -EINVAL with `problem` set. */
int config_check_path(const char *value, bool absolute, size_t max, char *problem,
                      size_t problem_len)
{
        if (value[0] == '\0') {
                snprintf(problem, problem_len, "must not be empty");
                return -EINVAL;
        }
        if (config_has_control_chars(value)) {
                snprintf(problem, problem_len, "must not contain control characters");
                return -EINVAL;
        }
        if (absolute && value[0] != '/') {
                snprintf(problem, problem_len, "must be an absolute path (starting with '/')");
                return -EINVAL;
        }
        if (strlen(value) > max) {
                snprintf(problem, problem_len, "is too long (at most %zu bytes)", max);
                return -EINVAL;
        }
        return 0;
}

int config_parse_absolute_path(const ConfigKey *key, const char *value, void *field,
                               char *problem, size_t problem_len)
{
        int r = config_check_path(value, true, PATH_MAX - 1, problem, problem_len);
        return r < 0 ? r : config_store_string(value, field);
}

int config_parse_socket_path(const ConfigKey *key, const char *value, void *field, char *problem,
                             size_t problem_len)
{
        /* sun_path must hold the path and its terminating NUL. */
        int r = config_check_path(value, true, sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1,
                           problem, problem_len);
        return r < 0 ? r : config_store_string(value, field);
}

int config_parse_library(const ConfigKey *key, const char *value, void *field, char *problem,
                         size_t problem_len)
{
        /* dlopen() searches the library path for a bare name but resolves a
         * name with a slash relative to the working directory, which for a
         * root daemon must never be what the admin meant. */
        int r;

        if (value[0] != '/' && strchr(value, '/')) {
                snprintf(problem, problem_len,
                         "must be a library file name (found the way dlopen() searches) or an "
                         "absolute path");
                return -EINVAL;
        }
        r = config_check_path(value, false, PATH_MAX - 1, problem, problem_len);
        return r < 0 ? r : config_store_string(value, field);
}

/* Write "must be between A and B" for a range that applies (key->max != 0). */
static bool check_range(const ConfigKey *key, uint64_t v, const char *lo, const char *hi,
                        char *problem, size_t problem_len)
{
        if (key->max == 0 || (v >= key->min && v <= key->max))
                return true;
        snprintf(problem, problem_len, "must be between %s and %s", lo, hi);
        return false;
}

int config_parse_duration(const ConfigKey *key, const char *value, void *field, char *problem,
                          size_t problem_len)
{
        char lo[FORMAT_DURATION_MAX], hi[FORMAT_DURATION_MAX];
        uint64_t v;
        int r;

        r = parse_duration_usec(value, &v);
        if (r == -ERANGE) {
                snprintf(problem, problem_len, "too large");
                return -EINVAL;
        }
        if (r < 0) {
                if (value[0] != '\0' && value[strspn(value, "0123456789")] == '\0')
                        snprintf(problem, problem_len,
                                 "a unit is required (for example 30s, 5m or 2h)");
                else
                        snprintf(problem, problem_len,
                                 "not a duration (write a number and a unit, d h m s ms us, "
                                 "largest first: 30s, 5m, 1h30m)");
                return -EINVAL;
        }

        (void)format_duration(lo, sizeof lo, key->min);
        (void)format_duration(hi, sizeof hi, key->max);
        if (!check_range(key, v, lo, hi, problem, problem_len))
                return -EINVAL;

        *(uint64_t *)field = v;
        return 0;
}

/* parse_size_bytes() and parse_uint64() results with a range check in bytes. */
static int store_number(const ConfigKey *key, int r, uint64_t v, const char *what,
                        const char *unit, void *field, char *problem, size_t problem_len)
{
        char lo[24], hi[32];

        if (r == -ERANGE) {
                snprintf(problem, problem_len, "too large");
                return -EINVAL;
        }
        if (r < 0) {
                snprintf(problem, problem_len, "not %s", what);
                return -EINVAL;
        }

        snprintf(lo, sizeof lo, "%" PRIu64, key->min);
        snprintf(hi, sizeof hi, "%" PRIu64 "%s", key->max, unit);
        if (!check_range(key, v, lo, hi, problem, problem_len))
                return -EINVAL;

        *(uint64_t *)field = v;
        return 0;
}

int config_parse_size(const ConfigKey *key, const char *value, void *field, char *problem,
                      size_t problem_len)
{
        uint64_t v = 0;
        int r = parse_size_bytes(value, &v);

        return store_number(key, r, v,
                            "a size (write bytes or a number with K, M, G, T, P or E: 512M, 10G)",
                            " bytes", field, problem, problem_len);
}

int config_parse_uint64(const ConfigKey *key, const char *value, void *field, char *problem,
                        size_t problem_len)
{
        uint64_t v = 0;
        int r = parse_uint64(value, &v);

        return store_number(key, r, v, "a non-negative whole number", "", field, problem,
                            problem_len);
}

int config_parse_bool(const ConfigKey *key, const char *value, void *field, char *problem,
                      size_t problem_len)
{
        if (parse_bool(value, field) < 0) {
                snprintf(problem, problem_len, "must be true or false (or yes/no, on/off, 1/0)");
                return -EINVAL;
        }
        return 0;
}

int config_parse_log_level(const ConfigKey *key, const char *value, void *field, char *problem,
                           size_t problem_len)
{
        int level = log_level_from_string(value);

        if (level < 0) {
                snprintf(problem, problem_len, "must be one of error, warning, info, debug");
                return -EINVAL;
        }
        *(int *)field = level;
        return 0;
}

int config_parse_group_name(const ConfigKey *key, const char *value, void *field, char *problem,
                            size_t problem_len)
{
        /* The portable name rule of useradd/groupadd (shadow's NAME_REGEX without
         * the trailing '$' of Samba machine accounts), so that a typo such as
         * "Students" is an error here rather than a group that never matches. */
        size_t n = strlen(value);

        if (n == 0 || n > CONFIG_GROUP_NAME_MAX ||
            !((value[0] >= 'a' && value[0] <= 'z') || value[0] == '_') ||
            value[strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_-")] != '\0') {
                snprintf(problem, problem_len,
                         "must be a group name: a lower-case letter or '_', then lower-case "
                         "letters, digits, '_' or '-', at most %d characters",
                         CONFIG_GROUP_NAME_MAX);
                return -EINVAL;
        }
        return config_store_string(value, field);
}

int config_parse_int(const ConfigKey *key, const char *value, void *field, char *problem,
                     size_t problem_len)
{
        uint64_t v;
        int r;

        /* Without an upper bound the value might not fit. */
        assert(key->max != 0 && key->max <= INT_MAX);

        r = config_parse_uint64(key, value, &v, problem, problem_len);
        if (r < 0)
                return r;
        *(int *)field = (int)v;
        return 0;
}

/* Most digits config_parse_double accepts: their value, and 10 to the power
 * of the number after the point, are then exact doubles (below 2^53), so
 * that one division gives the correctly rounded result. */
#define DOUBLE_DIGITS_MAX 15

int config_parse_double(const ConfigKey *key, const char *value, void *field, char *problem,
                        size_t problem_len)
{
        /* Decimal digits with an optional fraction, converted by hand rather
         * than with strtod(), which would also take signs, exponents, hex,
         * "inf" and "nan", and would follow the locale's decimal point. */
        static const double pow10[DOUBLE_DIGITS_MAX + 1] = {
                1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
        };
        size_t n_int = strspn(value, "0123456789"), n_frac = 0, digits;
        uint64_t m = 0;
        double v;

        if (value[n_int] == '.') {
                n_frac = strspn(value + n_int + 1, "0123456789");
                if (n_frac == 0 || value[n_int + 1 + n_frac] != '\0')
                        n_int = 0; /* "1." and "1.x": malformed */
        } else if (value[n_int] != '\0')
                n_int = 0;
        if (n_int == 0) {
                snprintf(problem, problem_len,
                         "not a number (write digits with an optional fraction: 0.9, 1)");
                return -EINVAL;
        }
        digits = n_int + n_frac;
        if (digits > DOUBLE_DIGITS_MAX) {
                snprintf(problem, problem_len, "too many digits (at most %d)",
                         DOUBLE_DIGITS_MAX);
                return -EINVAL;
        }
        for (const char *p = value; *p; p++)
                if (*p != '.')
                        m = m * 10 + (uint64_t)(*p - '0');
        v = (double)m / pow10[n_frac];

        if (!(v >= key->min_double && v <= key->max_double)) {
                snprintf(problem, problem_len, "must be between %g and %g", key->min_double,
                         key->max_double);
                return -EINVAL;
        }
        *(double *)field = v;
        return 0;
}

/* "must be one of a, b, c" for the names in names[0..n). */
void config_problem_one_of(const char *const *names, size_t n, char *problem,
                           size_t problem_len)
{
        size_t o = (size_t)snprintf(problem, problem_len, "must be one of");

        for (size_t i = 0; i < n && o < problem_len; i++)
                o += (size_t)snprintf(problem + o, problem_len - o, "%s %s", i ? "," : "",
                                      names[i]);
}

/* Whether `value` has a space or a control character (not allowed unescaped in a URL). */
bool config_has_space_or_control(const char *value)
{
        return config_has_control_chars(value) || strchr(value, ' ');
}
