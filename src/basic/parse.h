/* Strict parsers for the values people write in configuration files and on
 * command lines: durations ("1h30m"), sizes ("512M"), unsigned integers and
 * booleans, plus the inverse of the duration parser for output.
 *
 * All parsers accept the whole string or nothing: no leading or trailing
 * whitespace, no signs, no trailing junk. They return 0 and store the value,
 * or a negative errno and leave *ret untouched:
 *   -EINVAL  empty, malformed, or missing a required unit
 *   -ERANGE  well-formed but does not fit in 64 bits */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/time-util.h"

#define USEC_PER_MINUTE (UINT64_C(60) * USEC_PER_SEC)
#define USEC_PER_HOUR (UINT64_C(60) * USEC_PER_MINUTE)
#define USEC_PER_DAY (UINT64_C(24) * USEC_PER_HOUR)

/* Enough for any uint64_t microsecond count, e.g. "213503982d8h1m49s551ms615us". */
#define FORMAT_DURATION_MAX 32

/* Parse a duration into microseconds. The grammar is one or more
 * <digits><unit> components with units d, h, m, s, ms, us, each used at most
 * once and from the largest to the smallest ("1h30m", "2m30s", "1s500ms").
 * A bare number is -EINVAL: a unit is required, so "30" is never silently
 * read as seconds or as microseconds. Fractions ("1.5h") are -EINVAL. */
int parse_duration_usec(const char *s, uint64_t *ret);

/* Parse a size in bytes: <digits> optionally followed by one of the binary
 * multipliers K, M, G, T, P, E (powers of 1024: 1K = 1024), optionally
 * followed by "B" or "iB". "10G", "10GB" and "10GiB" all mean 10 GiB; a plain
 * number or "<digits>B" is bytes. Unit letters are upper case only, so that
 * "m" (metre? milli?) and "b" (bit) are not silently accepted. */
int parse_size_bytes(const char *s, uint64_t *ret);

/* Parse a decimal unsigned 64-bit integer (digits only). */
int parse_uint64(const char *s, uint64_t *ret);

/* Parse true/false, yes/no, on/off, 1/0 (case-insensitive). */
int parse_bool(const char *s, bool *ret);

/* Write `usec` as the canonical duration string the parser reads back to the
 * same value: components from days down to microseconds, zero components
 * omitted ("2h", "1h30m", "45s", "1s500ms"); 0 is "0s". Returns the string
 * length, or -ENOBUFS when `len` (including the NUL) is too small, in which
 * case buf holds a truncated, NUL-terminated string if len > 0. */
int format_duration(char *buf, size_t len, uint64_t usec);

/* The form messages for people use ("45s", "12m", "4h", "6h30m", "1d"):
 * format_duration of `usec` rounded down to whole seconds under a minute,
 * to whole minutes under a day and to whole hours from a day on, so a
 * message never says "0 min" of 45 seconds nor "14400 s" of four hours.
 * Under a second is "0s". Same returns as format_duration. */
int format_duration_short(char *buf, size_t len, uint64_t usec);

/* Enough for any size format_size() writes ("16383.9 PiB"). */
#define FORMAT_SIZE_MAX 24

/* A size for people, in binary units: whole numbers when exact ("20 GiB",
 * "512 MiB"), else one decimal ("1.5 GiB"); below 1 MiB in KiB or bytes.
 * Returns the string length, or -ENOBUFS as format_duration does. */
int format_size(char *buf, size_t len, uint64_t bytes);
