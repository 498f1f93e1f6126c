/* Strict value parsers shared by the daemon's configuration and the CLI; see
 * parse.h for the accepted grammars. Hand-written rather than strtoull(),
 * which accepts leading whitespace, a sign (and wraps negative numbers), and
 * hex/octal prefixes depending on the base. */
#include "basic/parse.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "basic/macro.h"

/* Consume one or more decimal digits at *p. Returns -EINVAL if there is no
 * digit. On overflow all digits are still consumed (so the caller can tell
 * "malformed" from "too large" by looking at what follows) and *overflow is
 * set. */
static int parse_digits(const char **p, uint64_t *ret, bool *overflow)
{
        const char *s = *p;
        uint64_t v = 0;

        if (*s < '0' || *s > '9')
                return -EINVAL;

        for (; *s >= '0' && *s <= '9'; s++) {
                unsigned d = (unsigned)(*s - '0');

                if (v > (UINT64_MAX - d) / 10)
                        *overflow = true;
                else
                        v = v * 10 + d;
        }

        *p = s;
        *ret = v;
        return 0;
}

int parse_uint64(const char *s, uint64_t *ret)
{
        bool overflow = false;
        uint64_t v;

        assert(s);
        assert(ret);

        if (parse_digits(&s, &v, &overflow) < 0 || *s != '\0')
                return -EINVAL;
        if (overflow)
                return -ERANGE;

        *ret = v;
        return 0;
}

int parse_bool(const char *s, bool *ret)
{
        static const char *const yes[] = {"1", "yes", "true", "on"};
        static const char *const no[] = {"0", "no", "false", "off"};

        assert(s);
        assert(ret);

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        return -EINVAL;
}

/* Largest unit first: the parser requires this order and the formatter
 * produces it. duration_unit_at() keeps the longest matching suffix, so "ms"
 * is read as milliseconds and not as minutes followed by junk. */
static const struct {
        const char *suffix;
        uint64_t usec;
} duration_units[] = {
        {"d", USEC_PER_DAY}, {"h", USEC_PER_HOUR},  {"m", USEC_PER_MINUTE},
        {"s", USEC_PER_SEC}, {"ms", USEC_PER_MSEC}, {"us", 1},
};

/* Index of the longest unit suffix at the start of `s`, or -1. */
static int duration_unit_at(const char *s)
{
        int best = -1;
        size_t best_len = 0;

        for (size_t i = 0; i < ELEMENTSOF(duration_units); i++) {
                size_t n = strlen(duration_units[i].suffix);

                if (n > best_len && strncmp(s, duration_units[i].suffix, n) == 0) {
                        best = (int)i;
                        best_len = n;
                }
        }
        return best;
}

int parse_duration_usec(const char *s, uint64_t *ret)
{
        uint64_t total = 0;
        bool overflow = false;
        int last_unit = -1;

        assert(s);
        assert(ret);

        if (*s == '\0')
                return -EINVAL;

        while (*s != '\0') {
                uint64_t n;
                int u;

                if (parse_digits(&s, &n, &overflow) < 0)
                        return -EINVAL;

                u = duration_unit_at(s);
                if (u < 0 || u <= last_unit)
                        return -EINVAL; /* no unit, unknown unit, repeated or out of order */
                s += strlen(duration_units[u].suffix);
                last_unit = u;

                if (n > UINT64_MAX / duration_units[u].usec)
                        overflow = true;
                else if (total > UINT64_MAX - n * duration_units[u].usec)
                        overflow = true;
                else
                        total += n * duration_units[u].usec;
        }

        if (overflow)
                return -ERANGE;

        *ret = total;
        return 0;
}

int parse_size_bytes(const char *s, uint64_t *ret)
{
        static const char multipliers[] = "KMGTPE";
        bool overflow = false;
        unsigned shift = 0;
        uint64_t n;

        assert(s);
        assert(ret);

        if (parse_digits(&s, &n, &overflow) < 0)
                return -EINVAL;

        if (*s != '\0') {
                const char *m = strchr(multipliers, *s);

                if (m) {
                        shift = 10 * (unsigned)(m - multipliers + 1);
                        s++;
                        if (strcmp(s, "iB") == 0)
                                s += 2;
                }
                /* "B" is allowed after a multiplier or after plain bytes;
                 * "iB" only after a multiplier (handled above). */
                if (strcmp(s, "B") == 0)
                        s++;
                if (*s != '\0')
                        return -EINVAL;
        }

        if (overflow || (shift > 0 && n > (UINT64_MAX >> shift)))
                return -ERANGE;

        *ret = n << shift;
        return 0;
}

int format_duration(char *buf, size_t len, uint64_t usec)
{
        size_t used = 0;

        assert(buf || len == 0);

        if (len == 0)
                return -ENOBUFS;
        if (usec == 0) {
                int k = snprintf(buf, len, "0s");
                return (size_t)k < len ? k : -ENOBUFS;
        }

        for (size_t i = 0; i < ELEMENTSOF(duration_units); i++) {
                uint64_t n = usec / duration_units[i].usec;
                int k;

                if (n == 0)
                        continue;
                usec -= n * duration_units[i].usec;

                k = snprintf(buf + used, len - used, "%" PRIu64 "%s", n,
                             duration_units[i].suffix);
                if (k < 0)
                        return -EIO;
                if ((size_t)k >= len - used)
                        return -ENOBUFS;
                used += (size_t)k;
        }

        return (int)used;
}

int format_duration_short(char *buf, size_t len, uint64_t usec)
{
        uint64_t unit = usec < USEC_PER_MINUTE ? USEC_PER_SEC
                        : usec < USEC_PER_DAY  ? USEC_PER_MINUTE
                                               : USEC_PER_HOUR;

        return format_duration(buf, len, usec / unit * unit);
}

int format_size(char *buf, size_t len, uint64_t bytes)
{
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        size_t u = 0;
        uint64_t scale = 1;
        int n;

        while (u + 1 < sizeof units / sizeof units[0] && bytes / scale >= 1024) {
                scale *= 1024;
                u++;
        }
        if (bytes % scale == 0)
                n = snprintf(buf, len, "%llu %s", (unsigned long long)(bytes / scale), units[u]);
        else
                n = snprintf(buf, len, "%.1f %s", (double)bytes / (double)scale, units[u]);
        if (n < 0 || (size_t)n >= len)
                return -ENOBUFS;
        return n;
}
