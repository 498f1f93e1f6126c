/* Repaired JSON strings; see json-text.h. */
#include "proto/json-text.h"

#include "basic/macro.h"
#include "basic/utf8.h"

json_t *json_text(const char *text)
{
        _cleanup_free_ char *clean = NULL;

        if (!text)
                return json_null();
        clean = utf8_sanitize(text);
        return clean ? json_string(clean) : NULL;
}

json_t *json_text_or_null(const char *text)
{
        return json_text(text && text[0] ? text : NULL);
}
