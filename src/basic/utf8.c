/* UTF-8 validation and repair; see utf8.h. */
#include "basic/utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t utf8_sequence_length(const unsigned char *s, size_t left)
{
        uint32_t cp;
        size_t n;

        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xC2 && s[0] <= 0xDF)
                n = 2, cp = s[0] & 0x1F;
        else if (s[0] >= 0xE0 && s[0] <= 0xEF)
                n = 3, cp = s[0] & 0x0F;
        else if (s[0] >= 0xF0 && s[0] <= 0xF4)
                n = 4, cp = s[0] & 0x07;
        else
                return 0;
        if (n > left)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xC0) != 0x80)
                        return 0;
                cp = cp << 6 | (s[i] & 0x3F);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
                return 0;
        return n;
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
