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

/* The tokens a build of part of its text (json_index_rebuild_taking(),
 * json_index_rebuild_value()) starts with, at most: the array grows when
 * the text needs more. */
#define PARTIAL_TOKENS 512u

/* From this length on the two blocks span several fresh pages: they are
 * populated at once (basic/prefault.h) rather than a fault per page. */
#define PREFAULT_FROM (16u * 1024u)

/* Bytes the arena holds past the text's length: a plain string of up to
 * 16 bytes is copied as 16 (one load, one store), which may run this far
 * past its end. */
#define ARENA_SLACK 17u
#define SHORT_COPY 16u

/* An open container: its token, its last child so far (0: none yet), how
 * many children it has (written into its token when it closes) and
 * whether it is an object. */
typedef struct Level {
        JsonIndexRef container;
        JsonIndexRef last;
        uint32_t count;
        bool object;
} Level;

/* The pass's state. It lives in index_text() and is handed only to the
 * inline steps below (grow() takes the index, not the builder), so the
 * compiler keeps its fields in registers: the pass runs once per token of
 * a reply (issue 16, tenth pass: 46,000 tokens in a status of 4,096
 * processes; the fields in memory cost a third of its instructions). */
typedef struct Builder {
        JsonIndex *ix;
        const char *s;
        size_t len;
        JsonIndexToken *tok; /* ix->tokens */
        size_t n, cap;       /* tokens used, allocated */
        char *arena;         /* ix->arena */
        size_t used;         /* arena bytes used */
        Level cur;           /* the innermost open container (none at the top) */
        const JsonIndexTake *take; /* NULL: none */
} Builder;

/* ix->tokens, holding n tokens, doubled. */
static __attribute__((noinline)) int grow(JsonIndex *ix, size_t n)
{
        JsonIndexToken *grown;

        if (n * 2 > UINT32_MAX)
                return -E2BIG;
        grown = reallocarray(ix->tokens, n * 2, sizeof *grown);
        if (!grown)
                return -ENOMEM;
        ix->tokens = grown;
        ix->tokens_cap = n * 2;
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
        JsonIndexRef t;

        if (b->n == b->cap) {
                int r = grow(b->ix, b->n);

                if (r < 0)
                        return r;
                b->tok = b->ix->tokens;
                b->cap = b->ix->tokens_cap;
        }
        t = (JsonIndexRef)b->n++;
        b->tok[t] = (JsonIndexToken){.type = type};
        if (linked) {
                if (b->cur.last)
                        b->tok[b->cur.last].next = t;
                b->cur.last = t;
                b->cur.count++;
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
        char *out = b->arena + b->used;
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
        b->tok[t].at = (uint32_t)b->used;
        b->tok[t].size = (uint32_t)n;
        out[n] = '\0';
        b->used += n + 1;
        *p = q;
        return 0;
}

/* A number, true, false or null at s[*p]; *p moved past it. */
static inline __attribute__((always_inline)) int add_scalar(Builder *b, size_t *p, bool linked)
{
        JsonIndexType type;
        JsonIndexRef t;
        size_t q = json_index_scalar_end(b->s, b->len, *p, &type);
        int r;

        if (q == 0)
                return -EBADMSG;
        r = add_token(b, type, linked, &t);
        if (r < 0)
                return r;
        b->tok[t].at = (uint32_t)*p;
        b->tok[t].size = (uint32_t)(q - *p);
        *p = json_index_after_scalar(b->s, b->len, q);
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

/* Whether the member whose value starts at s[p] is the one b->take
 * reads: an array in the top-level object under its key (the key just
 * added, b->cur.last). */
static bool taken_here(const Builder *b, unsigned depth, size_t p)
{
        const JsonIndexToken *k;

        if (!b->take || depth != 1 || !b->cur.object || b->s[p] != '[')
                return false;
        k = &b->tok[b->cur.last];
        return k->size == b->take->key_len &&
               memcmp(b->arena + k->at, b->take->key, b->take->key_len) == 0;
}

/* The pass: json_scan_document()'s walk (a top-level object or array,
 * nothing after it but whitespace), laying out tokens as it goes. The
 * innermost open container is b->cur, the ones around it on `outer`. With
 * ret_end (json_index_rebuild_value()) anything may follow the value:
 * where it ends goes to *ret_end. */
static int index_text(Builder *b, unsigned max_depth, size_t *ret_end)
{
        const char *s = b->s;
        size_t len = b->len, p = json_scan_skip_ws(s, len, 0);
        Level outer[JSON_SCAN_DEPTH_MAX];
        unsigned depth = 0; /* containers open; b->cur is the innermost when > 0 */
        int r;

        if (p >= len || (s[p] != '{' && s[p] != '['))
                return -EBADMSG;
        for (;;) {
                bool linked = depth > 0 && !b->cur.object;
                char c;

                /* A value at or after s[p]. */
                p = json_scan_skip_ws(s, len, p);
                if (p >= len)
                        return -EBADMSG;
                c = s[p];
                if (c == '{' || c == '[') {
                        char close = c == '{' ? '}' : ']';
                        JsonIndexRef t;

                        if (depth + 1 > max_depth)
                                return -EBADMSG;
                        if (taken_here(b, depth, p)) {
                                /* Read by the caller; here an empty array. */
                                ssize_t end = b->take->read(b->take->userdata, s, len, p,
                                                            max_depth - depth);

                                if (end < 0)
                                        return (int)end;
                                r = add_token(b, JSON_INDEX_ARRAY, false, &t);
                                if (r < 0)
                                        return r;
                                b->tok[t].at = (uint32_t)p;
                                p = (size_t)end;
                                goto after_value;
                        }
                        r = add_token(b, c == '{' ? JSON_INDEX_OBJECT : JSON_INDEX_ARRAY, linked,
                                      &t);
                        if (r < 0)
                                return r;
                        b->tok[t].at = (uint32_t)p;
                        p = json_scan_skip_ws(s, len, p + 1);
                        if (p < len && s[p] == close)
                                p++; /* empty: a complete value */
                        else {
                                if (depth > 0)
                                        outer[depth - 1] = b->cur;
                                depth++;
                                b->cur = (Level){.container = t, .object = c == '{'};
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

        after_value:
                /* After a value: close what ends here, then the next element. */
                for (;;) {
                        if (depth == 0 && ret_end) {
                                *ret_end = p;
                                return 0;
                        }
                        if (depth == 0)
                                return json_scan_skip_ws(s, len, p) == len ? 0 : -EBADMSG;
                        /* A comma right after the value is the common case. */
                        if (p >= len || s[p] != ',') {
                                p = json_scan_skip_ws(s, len, p);
                                if (p >= len)
                                        return -EBADMSG;
                        }
                        if (s[p] == ',') {
                                p++;
                                if (b->cur.object) {
                                        r = add_key(b, &p);
                                        if (r < 0)
                                                return r;
                                }
                                break;
                        }
                        if (s[p] != (b->cur.object ? '}' : ']'))
                                return -EBADMSG;
                        p++;
                        b->tok[b->cur.container].size = b->cur.count;
                        if (--depth > 0)
                                b->cur = outer[depth - 1];
                }
        }
}

DEFINE_TRIVIAL_CLEANUP_FUNC(JsonIndex *, json_index_free);

/* *block replaced by one of `bytes` when *size is less (what it held is
 * not needed: a new block, not realloc()'s copy of the old into fresh
 * pages), populated at once when large. */
static void *replace_block(void *block, size_t *size, size_t bytes, bool populate)
{
        if (bytes <= *size)
                return block;
        free(block);
        *size = 0;
        block = malloc(bytes);
        if (!block)
                return NULL;
        *size = bytes;
        if (populate && bytes >= PREFAULT_FROM)
                prefault_range(block, bytes);
        return block;
}

/* Room in ix for a text of `len` bytes: at least `tokens` tokens, and an
 * arena of the text's length plus ARENA_SLACK (short strings are copied 16
 * bytes at a time); new blocks populated when the text will fill them
 * (`populate`). */
static int reserve(JsonIndex *ix, size_t tokens, size_t len, bool populate)
{
        size_t token_bytes = ix->tokens_cap * sizeof *ix->tokens;

        if (tokens > SIZE_MAX / sizeof *ix->tokens)
                return -ENOMEM;
        ix->tokens = replace_block(ix->tokens, &token_bytes, tokens * sizeof *ix->tokens, populate);
        ix->tokens_cap = token_bytes / sizeof *ix->tokens;
        ix->arena = replace_block(ix->arena, &ix->arena_size, len + ARENA_SLACK, populate);
        return ix->tokens && ix->arena ? 0 : -ENOMEM;
}

/* json_index_rebuild() and its variants: with ret_end, the value at the
 * start of s, whatever follows it. */
static int rebuild(JsonIndex *ix, const char *s, size_t len, unsigned max_depth,
                   const JsonIndexTake *take, size_t *ret_end)
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
        /* Where not all of the text is indexed (what a reader takes, most
         * of a GPU's text; or only the value at its start, a row's
         * violation within a GPU's text) a few tokens to start with and
         * the arena left to fault in as used. */
        if (take || ret_end)
                r = reserve(ix, MIN(len / BYTES_PER_TOKEN_GUESS, (size_t)PARTIAL_TOKENS) + 16, len,
                            false);
        else
                r = reserve(ix, len / BYTES_PER_TOKEN_GUESS + 16, len, true);
        if (r < 0)
                return r;
        ix->tokens[0] = (JsonIndexToken){.type = JSON_INDEX_NONE};
        b = (Builder){.ix = ix, .s = s, .len = len, .tok = ix->tokens, .n = 1,
                      .cap = ix->tokens_cap, .arena = ix->arena, .take = take};
        r = index_text(&b, max_depth, ret_end);
        /* grow() may have replaced the array (ix holds the new one). */
        ix->n_tokens = r < 0 ? 1 : b.n;
        return r;
}

int json_index_rebuild(JsonIndex *ix, const char *s, size_t len, unsigned max_depth)
{
        return rebuild(ix, s, len, max_depth, NULL, NULL);
}

int json_index_rebuild_taking(JsonIndex *ix, const char *s, size_t len, unsigned max_depth,
                              const JsonIndexTake *take)
{
        assert(take && take->key && take->read);
        return rebuild(ix, s, len, max_depth, take, NULL);
}

int json_index_rebuild_value(JsonIndex *ix, const char *s, size_t len, size_t p,
                             unsigned max_depth, size_t *ret_end)
{
        size_t end = 0;
        int r;

        assert(ret_end && p <= len);
        /* The text from the value on: the blocks' size follows from it. */
        r = rebuild(ix, s + p, len - p, max_depth, NULL, &end);
        if (r == 0)
                *ret_end = p + end;
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
        assert(ix && ret);
        if (!json_index_is_integer(ix, r))
                return false;
        *ret = json_index_integer_text(ix->text + ix->tokens[r].at, ix->tokens[r].size);
        return true;
}

bool json_index_number_of_text(const char *text, size_t len, JsonIndexType type, double *ret)
{
        char small[64], *buf;
        const char *point;

        assert(text && ret);
        if (type == JSON_INDEX_INTEGER) {
                *ret = (double)json_index_integer_text(text, len);
                return true;
        }
        if (type != JSON_INDEX_REAL)
                return false;
        /* strtod() wants a NUL-terminated string with the locale's decimal
         * point, as jansson gives it (strconv.c). */
        buf = len < sizeof small ? small : malloc(len + 1);
        if (!buf) {
                /* No room for a long real's copy: digits beyond what a
                 * double holds never change its value by more than an ulp,
                 * but the exact answer needs them; report it unknown. */
                return false;
        }
        memcpy(buf, text, len);
        buf[len] = '\0';
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

bool json_index_number(const JsonIndex *ix, JsonIndexRef r, double *ret)
{
        assert(ix && ret);
        if (!json_index_is_number(ix, r))
                return false;
        return json_index_number_of_text(ix->text + ix->tokens[r].at, ix->tokens[r].size,
                                         json_index_type(ix, r), ret);
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
