/* The flat JSON index of json-index.h, checked and laid out in one pass:
 * the structure is walked here, with the open containers on an explicit
 * stack (at most max_depth), each level remembering its last child so that
 * the next one is linked to it; every string, number and word is checked by
 * json-scan's own pieces. The texts accepted are json_scan_document()'s,
 * which the json-scan test checks on every text it generates. */
#include "proto/json-index.h"

#include <jansson.h>

#include <assert.h>
#include <errno.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/prefault.h"
#include "proto/json-scan.h"

/* A status reply has a token per 8 to 10 bytes (keys, short values, the
 * command lines make the difference); start at 8 and double, rather than
 * size for the worst case ("[1,1,...]" is a token per 2 bytes), which
 * would take 8 bytes of memory per byte. */
#define BYTES_PER_TOKEN_GUESS 8

/* From this length on the two blocks span several fresh pages: they are
 * populated at once (basic/prefault.h) rather than a fault per page. */
#define PREFAULT_FROM (16u * 1024u)

/* Bytes the arena holds past the text's length: a plain string of up to
 * 16 bytes is copied as 16 (one load, one store), which may run this far
 * past its end. */
#define ARENA_SLACK 17u
#define SHORT_COPY 16u

typedef struct Level {
        JsonIndexRef container;
        JsonIndexRef last; /* the last element, or the last key in an object; 0: none yet */
        bool object;
} Level;

typedef struct Builder {
        JsonIndex *ix;
        const char *s;
        size_t len;
        size_t cap;   /* tokens allocated */
        size_t arena; /* arena bytes used */
        unsigned depth;
        Level stack[JSON_SCAN_DEPTH_MAX];
} Builder;

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

/* Room for one more token: the array doubled. */
static __attribute__((noinline)) int grow(Builder *b)
{
        size_t n = b->cap * 2;
        JsonIndexToken *grown;

        if (n > UINT32_MAX)
                return -E2BIG;
        grown = reallocarray(b->ix->tokens, n, sizeof *grown);
        if (!grown)
                return -ENOMEM;
        b->ix->tokens = grown;
        b->cap = n;
        return 0;
}

/* A new last token of `type`. When `linked` (an array's element or an
 * object's key; an object's value follows its key and is not linked, as
 * nothing walks from value to value) it is counted in the innermost open
 * container and linked after that one's last child. Inline, as the
 * functions below: they run once per token of the text. */
static inline __attribute__((always_inline)) int add_token(Builder *b, JsonIndexType type,
                                                           bool linked, JsonIndexRef *ret)
{
        JsonIndex *ix = b->ix;
        JsonIndexRef t;

        if (ix->n_tokens == b->cap) {
                int r = grow(b);

                if (r < 0)
                        return r;
        }
        t = (JsonIndexRef)ix->n_tokens++;
        ix->tokens[t] = (JsonIndexToken){.type = type};
        if (linked && b->depth > 0) {
                Level *l = &b->stack[b->depth - 1];

                if (l->last)
                        ix->tokens[l->last].next = t;
                l->last = t;
                ix->tokens[l->container].size++;
        }
        *ret = t;
        return 0;
}

/* The string whose quote is at s[*p]: checked, decoded into the arena
 * (NUL-terminated), *p moved past it. A string takes at most its bytes in
 * the text, quotes included, of the arena: the text's length is room for
 * all of them. */
static inline __attribute__((always_inline)) int add_string(Builder *b, size_t *p, bool linked)
{
        JsonIndex *ix = b->ix;
        char *out = ix->arena + b->arena;
        JsonIndexRef t;
        bool plain;
        size_t q = json_scan_string_end(b->s, b->len, *p, &plain), n;
        int r;

        if (q == 0)
                return -EBADMSG;
        r = add_token(b, JSON_INDEX_STRING, linked, &t);
        if (r < 0)
                return r;
        if (plain) {
                n = q - *p - 2;
                /* The arena's offset is at most the text's (a string takes
                 * fewer bytes there than in the text), so out + 16 is
                 * within its slack; the text must have the 16 bytes. */
                if (n <= SHORT_COPY && *p + 1 + SHORT_COPY <= b->len)
                        memcpy(out, b->s + *p + 1, SHORT_COPY);
                else
                        memcpy(out, b->s + *p + 1, n);
        } else
                (void)json_scan_string_decode(b->s, b->len, *p, out, &n);
        ix->tokens[t].at = (uint32_t)b->arena;
        ix->tokens[t].size = (uint32_t)n;
        out[n] = '\0';
        b->arena += n + 1;
        *p = q;
        return 0;
}

/* A number, true, false or null at s[*p]; *p moved past it. */
static inline __attribute__((always_inline)) int add_scalar(Builder *b, size_t *p, bool linked)
{
        const char *s = b->s;
        JsonIndexType type;
        JsonIndexRef t;
        size_t q;
        int r;

        if ((q = json_scan_plain_integer_end(s, b->len, *p)) != 0)
                type = JSON_INDEX_INTEGER;
        else if (s[*p] == '-' || is_digit(s[*p])) {
                size_t k = *p + (s[*p] == '-');

                q = json_scan_number_end(s, b->len, *p);
                /* A fraction or an exponent makes it a real. */
                while (k < q && is_digit(s[k]))
                        k++;
                type = k < q ? JSON_INDEX_REAL : JSON_INDEX_INTEGER;
        } else {
                q = json_scan_literal_end(s, b->len, *p);
                type = s[*p] == 't' ? JSON_INDEX_TRUE
                       : s[*p] == 'f' ? JSON_INDEX_FALSE
                                      : JSON_INDEX_NULL;
        }
        if (q == 0)
                return -EBADMSG;
        r = add_token(b, type, linked, &t);
        if (r < 0)
                return r;
        b->ix->tokens[t].at = (uint32_t)*p;
        b->ix->tokens[t].size = (uint32_t)(q - *p);
        /* jansson's lexer reads one byte past a number or a word and puts
         * it back; a NUL put back is lost. */
        if (q < b->len && s[q] == '\0')
                q++;
        *p = q;
        return 0;
}

/* A key at or after s[*p] and its colon; *p moved past the colon. */
static inline __attribute__((always_inline)) int add_key(Builder *b, size_t *p)
{
        size_t q = json_scan_skip_ws(b->s, b->len, *p);
        int r;

        if (q >= b->len || b->s[q] != '"')
                return -EBADMSG;
        r = add_string(b, &q, true);
        if (r < 0)
                return r;
        q = json_scan_skip_ws(b->s, b->len, q);
        if (q >= b->len || b->s[q] != ':')
                return -EBADMSG;
        *p = q + 1;
        return 0;
}

/* The pass: json_scan_document()'s walk (a top-level object or array,
 * nothing after it but whitespace), laying out tokens as it goes. */
static int index_text(Builder *b, unsigned max_depth)
{
        const char *s = b->s;
        size_t len = b->len, p = json_scan_skip_ws(s, len, 0);
        int r;

        if (p >= len || (s[p] != '{' && s[p] != '['))
                return -EBADMSG;
        for (;;) {
                bool linked = b->depth > 0 && !b->stack[b->depth - 1].object;
                char c;

                /* A value at or after s[p]. */
                p = json_scan_skip_ws(s, len, p);
                if (p >= len)
                        return -EBADMSG;
                c = s[p];
                if (c == '{' || c == '[') {
                        char close = c == '{' ? '}' : ']';
                        JsonIndexRef t;

                        if (b->depth + 1 > max_depth)
                                return -EBADMSG;
                        r = add_token(b, c == '{' ? JSON_INDEX_OBJECT : JSON_INDEX_ARRAY, linked,
                                      &t);
                        if (r < 0)
                                return r;
                        b->ix->tokens[t].at = (uint32_t)p;
                        p = json_scan_skip_ws(s, len, p + 1);
                        if (p < len && s[p] == close)
                                p++; /* empty: a complete value */
                        else {
                                b->stack[b->depth++] = (Level){.container = t, .object = c == '{'};
                                if (c == '{') {
                                        r = add_key(b, &p);
                                        if (r < 0)
                                                return r;
                                }
                                continue;
                        }
                } else {
                        r = c == '"' ? add_string(b, &p, linked) : add_scalar(b, &p, linked);
                        if (r < 0)
                                return r;
                }

                /* After a value: close what ends here, then the next element. */
                for (;;) {
                        const Level *l;

                        if (b->depth == 0)
                                return json_scan_skip_ws(s, len, p) == len ? 0 : -EBADMSG;
                        l = &b->stack[b->depth - 1];
                        p = json_scan_skip_ws(s, len, p);
                        if (p >= len)
                                return -EBADMSG;
                        if (s[p] == (l->object ? '}' : ']')) {
                                p++;
                                b->depth--;
                                continue;
                        }
                        if (s[p] != ',')
                                return -EBADMSG;
                        p++;
                        if (l->object) {
                                r = add_key(b, &p);
                                if (r < 0)
                                        return r;
                        }
                        break;
                }
        }
}

DEFINE_TRIVIAL_CLEANUP_FUNC(JsonIndex *, json_index_free);

/* *block replaced by one of `bytes` when *size is less (what it held is
 * not needed: a new block, not realloc()'s copy of the old into fresh
 * pages), populated at once when large. */
static void *replace_block(void *block, size_t *size, size_t bytes)
{
        if (bytes <= *size)
                return block;
        free(block);
        *size = 0;
        block = malloc(bytes);
        if (!block)
                return NULL;
        *size = bytes;
        if (bytes >= PREFAULT_FROM)
                prefault_range(block, bytes);
        return block;
}

/* Room in ix for a text of `len` bytes: at least `tokens` tokens, and an
 * arena of the text's length plus ARENA_SLACK (short strings are copied 16
 * bytes at a time). */
static int reserve(JsonIndex *ix, size_t tokens, size_t len)
{
        size_t token_bytes = ix->tokens_cap * sizeof *ix->tokens;

        if (tokens > SIZE_MAX / sizeof *ix->tokens)
                return -ENOMEM;
        ix->tokens = replace_block(ix->tokens, &token_bytes, tokens * sizeof *ix->tokens);
        ix->tokens_cap = token_bytes / sizeof *ix->tokens;
        ix->arena = replace_block(ix->arena, &ix->arena_size, len + ARENA_SLACK);
        return ix->tokens && ix->arena ? 0 : -ENOMEM;
}

int json_index_rebuild(JsonIndex *ix, const char *s, size_t len, unsigned max_depth)
{
        Builder b;
        int r;

        assert(ix);
        assert(s || len == 0);
        assert(max_depth >= 1 && max_depth <= JSON_SCAN_DEPTH_MAX);
        ix->text = s;
        ix->len = len;
        ix->n_tokens = 0;
        if (len >= UINT32_MAX)
                return -E2BIG;
        r = reserve(ix, len / BYTES_PER_TOKEN_GUESS + 16, len);
        if (r < 0)
                return r;
        b = (Builder){.ix = ix, .s = s, .len = len, .cap = ix->tokens_cap};
        ix->tokens[0] = (JsonIndexToken){.type = JSON_INDEX_NONE};
        ix->n_tokens = 1;
        r = index_text(&b, max_depth);
        /* grow() may have made the array larger. */
        ix->tokens_cap = b.cap;
        if (r < 0)
                ix->n_tokens = 1;
        return r;
}

int json_index_build(const char *s, size_t len, unsigned max_depth, JsonIndex **ret)
{
        _cleanup_(json_index_freep) JsonIndex *ix = NULL;
        int r;

        assert(ret);
        ix = calloc(1, sizeof *ix);
        if (!ix)
                return -ENOMEM;
        r = json_index_rebuild(ix, s, len, max_depth);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(ix);
        return 0;
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
