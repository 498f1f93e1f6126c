/* UTF-8 validation. Command lines, user names and NVML strings are bytes
 * from outside; JSON needs valid UTF-8, so they are repaired at the edge. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What utf8_decode() stores for a malformed sequence. */
#define UTF8_INVALID UINT32_MAX

/* Decode the character at s (left >= 1 bytes available; a NUL-terminated
 * string may pass SIZE_MAX, since a NUL never continues a sequence). Returns
 * the bytes it spans, at least 1, and stores its code point in *ret_cp, or
 * UTF8_INVALID for a malformed sequence (overlong, surrogate, above
 * U+10FFFF, truncated), which then spans the bytes up to the first one that
 * does not continue it. The one UTF-8 decoder: the functions below and the
 * CLI's text layout use it. */
size_t utf8_decode(const char *s, size_t left, uint32_t *ret_cp);

/* Whether s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, ≤ U+10FFFF). */
bool utf8_is_valid(const char *s, size_t len);

/* Length of the well-formed UTF-8 sequence starting at s (at most `left`
 * bytes available, left >= 1), or 0 when the bytes there are not one
 * (overlong forms, surrogates and code points above U+10FFFF included). */
size_t utf8_sequence_length(const unsigned char *s, size_t left);

/* A malloc'd copy of the NUL-terminated `s` in which every byte that is not
 * part of a well-formed sequence is replaced by U+FFFD. NULL on ENOMEM. */
char *utf8_sanitize(const char *s);

/* A malloc'd copy of the NUL-terminated `s` in which every byte that is not
 * part of a well-formed sequence is written as the four characters \xNN
 * (lowercase hex), so that a name made of arbitrary bytes stays readable and
 * distinct from others in JSON. Valid UTF-8 is copied unchanged. NULL on ENOMEM. */
char *utf8_escape_invalid(const char *s);
