/* The flat JSON index of json-index.h: json_scan_document() vouches for the
 * text first, then one pass without error paths lays out the tokens. Open
 * containers are an explicit stack (at most JSON_SCAN_DEPTH_MAX), each
 * level remembering its last child so the next one is linked to it. */
#include "proto/json-index.h"

#include <jansson.h>

#include <assert.h>
#include <errno.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "proto/json-scan.h"

/* A status reply has a token per 8 to 10 bytes (keys, short values, the
 * command lines make the difference); start at 8 and double, rather than
 * size for the worst case ("[1,1,...]" is a token per 2 bytes), which
 * would take 8 bytes of memory per byte. */
#define BYTES_PER_TOKEN_GUESS 8

typedef struct Level {
        JsonIndexRef container;
        JsonIndexRef last; /* the last element, or the last key in an object; 0: none yet */
        bool object;
        bool want_key; /* in an object: the next string is a key */
} Level;

static int add_token(JsonIndex *ix, size_t *cap, JsonIndexType type, JsonIndexRef *ret)
{
        if (ix->n_tokens == *cap) {
                size_t n = *cap * 2;
                JsonIndexToken *t;

                if (n > UINT32_MAX)
                        return -E2BIG;
                t = reallocarray(ix->tokens, n, sizeof *t);
                if (!t)
                        return -ENOMEM;
                ix->tokens = t;
                *cap = n;
        }
        ix->tokens[ix->n_tokens] = (JsonIndexToken){.type = type};
        *ret = (JsonIndexRef)ix->n_tokens++;
        return 0;
}

static bool is_ws_or_nul(char c)
{
        /* The NUL is the one jansson drops after a number or a word. */
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\0';
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static bool ends_number(char c)
{
        return is_ws_or_nul(c) || c == ',' || c == ']' || c == '}';
}

/* The pass over accepted text s[p..e). */
static int index_text(JsonIndex *ix, size_t p, size_t e, size_t *cap)
{
        const char *s = ix->text;
        Level stack[JSON_SCAN_DEPTH_MAX + 1];
        size_t depth = 0, arena = 0;
        int r;

        while (p < e) {
                char c = s[p];
                JsonIndexType type;
                JsonIndexRef t;
                size_t q;

                /* One switch on the byte: punctuation and space move on,
                 * the first byte of a value tells its type. */
                switch (c) {
                case ' ':
                case '\t':
                case '\n':
                case '\r':
                case '\0': /* the one jansson drops after a number or word */
                case ':':
                        p++;
                        continue;
                case ',':
                        if (stack[depth - 1].object)
                                stack[depth - 1].want_key = true;
                        p++;
                        continue;
                case '}':
                case ']':
                        assert(depth > 0);
                        depth--;
                        p++;
                        continue;
                case '{':
                        type = JSON_INDEX_OBJECT;
                        break;
                case '[':
                        type = JSON_INDEX_ARRAY;
                        break;
                case '"':
                        type = JSON_INDEX_STRING;
                        break;
                case 't':
                        type = JSON_INDEX_TRUE;
                        break;
                case 'f':
                        type = JSON_INDEX_FALSE;
                        break;
                case 'n':
                        type = JSON_INDEX_NULL;
                        break;
                default:
                        type = JSON_INDEX_INTEGER; /* or real: seen below */
                        break;
                }
                r = add_token(ix, cap, type, &t);
                if (r < 0)
                        return r;

                /* Link it into its container: keys to keys, elements to
                 * elements; an object's value follows its key and is not
                 * linked (nothing walks from value to value). */
                if (depth > 0) {
                        Level *l = &stack[depth - 1];

                        if (!l->object || l->want_key) {
                                if (l->last)
                                        ix->tokens[l->last].next = t;
                                l->last = t;
                                ix->tokens[l->container].size++;
                        }
                        l->want_key = false;
                }

                switch (type) {
                case JSON_INDEX_OBJECT:
                case JSON_INDEX_ARRAY:
                        assert(depth < ELEMENTSOF(stack));
                        ix->tokens[t].at = (uint32_t)p;
                        stack[depth++] = (Level){.container = t,
                                                 .object = type == JSON_INDEX_OBJECT,
                                                 .want_key = type == JSON_INDEX_OBJECT};
                        p++;
                        break;
                case JSON_INDEX_STRING: {
                        char *out = ix->arena + arena;
                        size_t n;

                        /* Most strings (keys, names, numbers as text) have
                         * no escape: copied while looking for the closing
                         * quote, without the decoder's calls. An escape
                         * hands the whole string to the decoder. */
                        for (q = p + 1; s[q] != '"' && s[q] != '\\'; q++)
                                *out++ = s[q];
                        if (s[q] == '"') {
                                n = q - p - 1;
                                q++;
                        } else {
                                q = json_scan_string_decode(s, e, p, ix->arena + arena, &n);
                        }
                        ix->tokens[t].at = (uint32_t)arena;
                        ix->tokens[t].size = (uint32_t)n;
                        arena += n;
                        ix->arena[arena++] = '\0';
                        p = q;
                        break;
                }
                case JSON_INDEX_TRUE:
                case JSON_INDEX_NULL:
                        p += 4;
                        break;
                case JSON_INDEX_FALSE:
                        p += 5;
                        break;
                default:
                        /* Validated: a sign, digits, then a fraction or an
                         * exponent only in a real. */
                        q = p + (s[p] == '-');
                        while (q < e && is_digit(s[q]))
                                q++;
                        if (q < e && (s[q] == '.' || s[q] == 'e' || s[q] == 'E')) {
                                ix->tokens[t].type = JSON_INDEX_REAL;
                                while (q < e && !ends_number(s[q]))
                                        q++;
                        }
                        ix->tokens[t].at = (uint32_t)p;
                        ix->tokens[t].size = (uint32_t)(q - p);
                        p = q;
                        break;
                }
        }
        assert(depth == 0);
        return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(JsonIndex *, json_index_free);

/* Index s[b..e), the value of an accepted document s[0..len). */
static int build(const char *s, size_t len, size_t b, size_t e, JsonIndex **ret)
{
        _cleanup_(json_index_freep) JsonIndex *ix = malloc(sizeof *ix);
        size_t cap = len / BYTES_PER_TOKEN_GUESS + 16;
        int r;

        if (!ix)
                return -ENOMEM;
        /* A string decodes to at most its bytes in the text, quotes
         * included, which leaves room for its NUL. */
        *ix = (JsonIndex){.text = s,
                          .len = len,
                          .tokens = reallocarray(NULL, cap, sizeof *ix->tokens),
                          .arena = malloc(e - b + 1)};
        if (!ix->tokens || !ix->arena)
                return -ENOMEM;
        ix->tokens[0] = (JsonIndexToken){.type = JSON_INDEX_NONE};
        ix->n_tokens = 1;
        r = index_text(ix, b, e, &cap);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(ix);
        return 0;
}

int json_index_build(const char *s, size_t len, unsigned max_depth, JsonIndex **ret)
{
        size_t b, e;

        assert(s || len == 0);
        assert(ret);
        if (len >= UINT32_MAX)
                return -E2BIG;
        if (!json_scan_document(s, len, max_depth, &b, &e))
                return -EBADMSG;
        return build(s, len, b, e, ret);
}

int json_index_build_scanned(const char *s, size_t len, JsonIndex **ret)
{
        size_t b = 0, e = len;

        assert(s && ret);
        if (len >= UINT32_MAX)
                return -E2BIG;
        /* The value without the whitespace around it, as the scanner gives it. */
        while (b < e && is_ws_or_nul(s[b]))
                b++;
        while (e > b && is_ws_or_nul(s[e - 1]))
                e--;
        assert(b < e && (s[b] == '{' || s[b] == '['));
        return build(s, len, b, e, ret);
}

void json_index_free(JsonIndex *ix)
{
        if (!ix)
                return;
        free(ix->tokens);
        free(ix->arena);
        free(ix);
}

JsonIndexRef json_index_get(const JsonIndex *ix, JsonIndexRef obj, const char *key)
{
        JsonIndexRef found = 0;
        size_t n;

        assert(ix && key);
        if (!json_index_is_object(ix, obj))
                return 0;
        n = strlen(key);
        for (JsonIndexRef k = json_index_first(ix, obj); k; k = json_index_next(ix, k)) {
                const JsonIndexToken *t = &ix->tokens[k];

                if (t->size == n && memcmp(ix->arena + t->at, key, n) == 0)
                        found = k + 1;
        }
        return found;
}

JsonIndexRef json_index_array_get(const JsonIndex *ix, JsonIndexRef arr, size_t i)
{
        JsonIndexRef r;

        assert(ix);
        if (!json_index_is_array(ix, arr))
                return 0;
        for (r = json_index_first(ix, arr); r && i > 0; i--)
                r = json_index_next(ix, r);
        return r;
}

bool json_index_integer(const JsonIndex *ix, JsonIndexRef r, int64_t *ret)
{
        const char *s;
        uint64_t mag = 0;
        bool neg;

        assert(ix && ret);
        if (!json_index_is_integer(ix, r))
                return false;
        s = ix->text + ix->tokens[r].at;
        neg = s[0] == '-';
        for (size_t i = neg; i < ix->tokens[r].size; i++)
                mag = mag * 10 + (uint64_t)(s[i] - '0');
        /* The scanner kept it within [INT64_MIN, INT64_MAX]. */
        *ret = neg ? -(int64_t)(mag - 1) - 1 : (int64_t)mag;
        return true;
}

bool json_index_number(const JsonIndex *ix, JsonIndexRef r, double *ret)
{
        const JsonIndexToken *t;
        char small[64], *buf;
        const char *point;
        int64_t i;

        assert(ix && ret);
        if (json_index_integer(ix, r, &i)) {
                *ret = (double)i;
                return true;
        }
        if (json_index_type(ix, r) != JSON_INDEX_REAL)
                return false;
        /* strtod() wants a NUL-terminated string with the locale's decimal
         * point, as jansson gives it (strconv.c). */
        t = &ix->tokens[r];
        buf = t->size < sizeof small ? small : malloc(t->size + 1);
        if (!buf) {
                /* No room for a long real's copy: digits beyond what a
                 * double holds never change its value by more than an ulp,
                 * but the exact answer needs them; report it unknown. */
                return false;
        }
        memcpy(buf, ix->text + t->at, t->size);
        buf[t->size] = '\0';
        point = localeconv()->decimal_point;
        if (point[0] != '.' && point[0] && !point[1]) {
                char *dot = strchr(buf, '.');

                if (dot)
                        *dot = point[0];
        }
        *ret = strtod(buf, NULL);
        if (buf != small)
                free(buf);
        return true;
}

/* Recursion is bounded by the depth the index was built with (at most
 * JSON_SCAN_DEPTH_MAX). */
json_t *json_index_to_json(const JsonIndex *ix, JsonIndexRef r)
{
        json_t *v = NULL;
        const char *s;
        int64_t i;
        double d;
        size_t n = 0;

        switch (json_index_type(ix, r)) {
        case JSON_INDEX_OBJECT:
                v = json_object();
                for (JsonIndexRef k = json_index_first(ix, r); v && k; k = json_index_next(ix, k)) {
                        json_t *m;

                        if (!(s = json_index_string(ix, k, &n)) ||
                            !(m = json_index_to_json(ix, json_index_value(ix, k))) ||
                            json_object_setn_new_nocheck(v, s, n, m) < 0) {
                                json_decref(v);
                                return NULL;
                        }
                }
                /* A key given twice replaced its first value: fewer members
                 * than keys (one count instead of a lookup per key). */
                if (v && json_object_size(v) != json_index_size(ix, r)) {
                        json_decref(v);
                        return NULL;
                }
                return v;
        case JSON_INDEX_ARRAY:
                v = json_array();
                for (JsonIndexRef e = json_index_first(ix, r); v && e; e = json_index_next(ix, e))
                        if (json_array_append_new(v, json_index_to_json(ix, e)) < 0) {
                                json_decref(v);
                                return NULL;
                        }
                return v;
        case JSON_INDEX_STRING:
                s = json_index_string(ix, r, &n);
                return json_stringn_nocheck(s, n);
        case JSON_INDEX_INTEGER:
                return json_index_integer(ix, r, &i) ? json_integer(i) : NULL;
        case JSON_INDEX_REAL:
                return json_index_number(ix, r, &d) ? json_real(d) : NULL;
        case JSON_INDEX_TRUE:
                return json_true();
        case JSON_INDEX_FALSE:
                return json_false();
        case JSON_INDEX_NULL:
                return json_null();
        case JSON_INDEX_NONE:
                break;
        }
        return NULL;
}
