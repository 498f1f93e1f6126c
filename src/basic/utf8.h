/* UTF-8 validation. Command lines, user names and NVML strings are bytes
 * from outside; JSON needs valid UTF-8, so they are repaired at the edge. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Whether s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, ≤ U+10FFFF). */
bool utf8_is_valid(const char *s, size_t len);

/* A malloc'd copy of the NUL-terminated `s` in which every byte that is not
 * part of a well-formed sequence is replaced by U+FFFD. NULL on ENOMEM. */
char *utf8_sanitize(const char *s);

/* A malloc'd copy of the NUL-terminated `s` in which every byte that is not
 * part of a well-formed sequence is written as the four characters \xNN
 * (lowercase hex), so that a name made of arbitrary bytes stays readable and
 * distinct from others in JSON. Valid UTF-8 is copied unchanged. NULL on ENOMEM. */
char *utf8_escape_invalid(const char *s);
