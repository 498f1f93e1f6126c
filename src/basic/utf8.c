/* UTF-8 validation and repair; see utf8.h. */
#include "basic/utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t utf8_decode(const char *s, size_t left, uint32_t *ret_cp)
{
        const unsigned char *u = (const unsigned char *)s;
        uint32_t cp, min;
        size_t n;

        if (u[0] < 0x80) {
                *ret_cp = u[0];
                return 1;
        }
        if (u[0] >= 0xc2 && u[0] <= 0xdf)
                n = 2, cp = u[0] & 0x1f, min = 0x80;
        else if (u[0] >= 0xe0 && u[0] <= 0xef)
                n = 3, cp = u[0] & 0x0f, min = 0x800;
        else if (u[0] >= 0xf0 && u[0] <= 0xf4)
                n = 4, cp = u[0] & 0x07, min = 0x10000;
        else {
                *ret_cp = UTF8_INVALID;
                return 1;
        }
        for (size_t i = 1; i < n; i++) {
                if (i >= left || (u[i] & 0xc0) != 0x80) {
                        *ret_cp = UTF8_INVALID;
                        return i;
                }
                cp = cp << 6 | (u[i] & 0x3f);
        }
        *ret_cp = cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? UTF8_INVALID : cp;
        return n;
}

size_t utf8_sequence_length(const unsigned char *s, size_t left)
{
        uint32_t cp;
        size_t n = utf8_decode((const char *)s, left, &cp);

        return cp == UTF8_INVALID ? 0 : n;
}

bool utf8_is_valid(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s;

        for (size_t i = 0; i < len;) {
                size_t n = utf8_sequence_length(p + i, len - i);

                if (n == 0)
                        return false;
                i += n;
        }
        return true;
}

/* A copy of s with each byte that is not part of a well-formed sequence
 * replaced: by U+FFFD, or with `escape` by the text \xNN. */
static char *utf8_repair(const char *s, bool escape)
{
        static const char hex[] = "0123456789abcdef";
        const unsigned char *p = (const unsigned char *)s;
        size_t len = strlen(s), o = 0;
        char *out;

        /* Worst case every byte becomes 4 (\xNN) or 3 (U+FFFD) bytes. */
        out = malloc(len * 4 + 1);
        if (!out)
                return NULL;
        for (size_t i = 0; i < len;) {
                size_t n = utf8_sequence_length(p + i, len - i);

                if (n == 0 && escape) {
                        out[o++] = '\\';
                        out[o++] = 'x';
                        out[o++] = hex[p[i] >> 4];
                        out[o++] = hex[p[i] & 0xF];
                        i++;
                } else if (n == 0) {
                        memcpy(out + o, "\xEF\xBF\xBD", 3);
                        o += 3;
                        i++;
                } else {
                        memcpy(out + o, p + i, n);
                        o += n;
                        i += n;
                }
        }
        out[o] = '\0';
        return out;
}

char *utf8_sanitize(const char *s)
{
        return utf8_repair(s, false);
}

char *utf8_escape_invalid(const char *s)
{
        return utf8_repair(s, true);
}
