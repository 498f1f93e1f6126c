/* Repaired JSON strings; see json-text.h. */
#include "proto/json-text.h"

#include "basic/macro.h"
#include "basic/utf8.h"

json_t *json_text(const char *text)
{
        _cleanup_free_ char *clean = NULL;
        const unsigned char *p = (const unsigned char *)text;

        if (!text)
                return json_null();
        /* Nearly every string (command lines, names, UUIDs) is ASCII, which
         * is valid UTF-8 as it is: one copy into the JSON string, without
         * the repaired copy and jansson's second validation. */
        while (*p && *p < 0x80)
                p++;
        if (!*p)
                return json_string_nocheck(text);
        clean = utf8_sanitize(text);
        return clean ? json_string(clean) : NULL;
}

json_t *json_text_or_null(const char *text)
{
        return json_text(text && text[0] ? text : NULL);
}
