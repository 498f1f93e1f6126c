/* A flat, read-only index over JSON text (issue 16, fifth pass).
 *
 * The CLI's text views read a few members of every object of a reply
 * (`gpukeeper status` at 4,096 processes: 1.5 MB of JSON). jansson's tree
 * costs a malloc per value and a hashtable per object, about 200
 * instructions a byte before the view reads anything. The index is one
 * array of tokens built in one pass that also checks the text as json-scan.h
 * does (so exactly the texts json_loadb(text, len, 0) takes, within a depth): each
 * value is a token (its type, its count of members or elements, a link to
 * the next value in its container), and every string, keys included, is
 * decoded once into a side arena, NUL-terminated (json-scan refuses
 * \u0000, so no decoded string holds a NUL). Numbers are read from the text
 * when asked for: integers exactly as jansson reads them (int64_t), reals as
 * a double.
 *
 * Values are named by a JsonIndexRef. Ref 0 is "no value": every accessor
 * takes it and answers as for a missing member (not an object, size 0,
 * NULL), so lookups chain without checks, as json_object_get() on NULL does.
 *
 * A container's children follow it: an array's first element is the token
 * after the array, an object's first key the token after the object, and a
 * key's value the token after the key; json_index_next() goes from an
 * element to the next one, or from a key to the next key. Member lookup is
 * a linear scan of the keys (the objects of a reply are small) and, as
 * jansson keeps the last value of a key given twice, finds the last match.
 *
 * Building allocates three blocks (the index, the token array, grown
 * geometrically, and the arena of at most the text's length), does not
 * recurse and takes time linear in the text.
 *
 * A caller that reads one large array of the text in its own way (the text
 * view of `gpukeeper status`, a GPU's thousands of process rows) has the
 * index hand that member to it in the same pass (json_index_rebuild_taking(),
 * issue 16, tenth pass) and checks it with the index's own pieces
 * (json_index_scalar_end(), json_scan_string_end(), and
 * json_index_rebuild_value() for a container inside it), so the text is
 * still accepted exactly when jansson takes it. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/json-scan.h"

typedef enum JsonIndexType {
        JSON_INDEX_NONE, /* ref 0: no value */
        JSON_INDEX_OBJECT,
        JSON_INDEX_ARRAY,
        JSON_INDEX_STRING,
        JSON_INDEX_INTEGER,
        JSON_INDEX_REAL,
        JSON_INDEX_TRUE,
        JSON_INDEX_FALSE,
        JSON_INDEX_NULL,
} JsonIndexType;

typedef uint32_t JsonIndexRef;

/* One value. Fields are private to json-index.c and the inline accessors. */
typedef struct JsonIndexToken {
        uint32_t type; /* JsonIndexType */
        uint32_t next; /* next element, or next key in an object; 0: the last */
        uint32_t size; /* containers: members or elements; strings: bytes; numbers: text bytes */
        uint32_t at;   /* strings: offset in the arena; others: offset in the text */
} JsonIndexToken;

typedef struct JsonIndex {
        const char *text; /* borrowed: numbers are read from it */
        size_t len;
        JsonIndexToken *tokens; /* tokens[0] is the JSON_INDEX_NONE of ref 0 */
        size_t n_tokens;
        char *arena; /* decoded strings, each NUL-terminated */
        size_t tokens_cap, arena_size; /* what the two blocks hold, for json_index_rebuild() */
} JsonIndex;

/* Index s[0..len) when it is a document json_scan_document(s, len,
 * max_depth) accepts, checking it in the same pass (so nothing is accepted
 * that jansson does not take). The text is borrowed (numbers are read from
 * it) and must outlive the index. Returns 0 and *ret, -EBADMSG when the
 * text is refused, -E2BIG when it is 4 GiB or longer, or -ENOMEM. */
int json_index_build(const char *s, size_t len, unsigned max_depth, JsonIndex **ret);

/* json_index_build() into an index built before, whose blocks are reused
 * where they are large enough (the text view of `gpukeeper status` indexes
 * each GPU's part of the reply in turn). The previous text is forgotten;
 * after a failure ix holds nothing to read: it may be rebuilt or freed. */
int json_index_rebuild(JsonIndex *ix, const char *s, size_t len, unsigned max_depth);

/* A member of the top-level object whose array value the caller reads
 * itself, in the pass that indexes the rest (the text view of `gpukeeper
 * status` reads a GPU's processes so: thousands of rows it would otherwise
 * index and then read again). In the index the member's value is an empty
 * array. */
typedef struct JsonIndexTake {
        const char *key; /* the member's key, as decoded */
        size_t key_len;
        /* Reads the array whose '[' is at s[p] (p < len), checking it as
         * the index would, its containers nested at most `depth` deep (the
         * array counts as one): returns the byte after its ']', -EBADMSG
         * for text the index would refuse, or another negative errno. Called
         * for every member under the key (jansson keeps the last). */
        ssize_t (*read)(void *userdata, const char *s, size_t len, size_t p, unsigned depth);
        void *userdata;
} JsonIndexTake;

/* json_index_rebuild(), with take->read() reading the value of the member
 * `take` names (see JsonIndexTake). */
int json_index_rebuild_taking(JsonIndex *ix, const char *s, size_t len, unsigned max_depth,
                              const JsonIndexTake *take);

/* Indexes the object or array at s[p] (after any whitespace), nested at
 * most max_depth deep, whatever text follows it: 0 and the byte after it
 * in *ret_end, or json_index_rebuild()'s errors. The index's text is s +
 * p: its root is the value. For a JsonIndexTake reader's nested values. */
int json_index_rebuild_value(JsonIndex *ix, const char *s, size_t len, size_t p,
                             unsigned max_depth, size_t *ret_end);

/* A number, true, false or null at s[p] (p < len), as the index reads one:
 * its type in *ret_type and the byte after it, or 0 where jansson refuses
 * it. Inline: the index meets one per value of a reply. */
static inline __attribute__((always_inline)) size_t
json_index_scalar_end(const char *s, size_t len, size_t p, JsonIndexType *ret_type)
{
        bool digit = s[p] >= '0' && s[p] <= '9';
        size_t q;

        if (digit && (q = json_scan_plain_integer_end(s, len, p)) != 0) {
                *ret_type = JSON_INDEX_INTEGER;
                return q;
        }
        if (s[p] == '-' || digit) {
                size_t k = p + (s[p] == '-');

                q = json_scan_number_end(s, len, p);
                /* A fraction or an exponent makes it a real. */
                while (k < q && s[k] >= '0' && s[k] <= '9')
                        k++;
                *ret_type = k < q ? JSON_INDEX_REAL : JSON_INDEX_INTEGER;
                return q;
        }
        *ret_type = s[p] == 't'   ? JSON_INDEX_TRUE
                    : s[p] == 'f' ? JSON_INDEX_FALSE
                                  : JSON_INDEX_NULL;
        return json_scan_literal_end(s, len, p);
}

/* Where the text goes on after a number or a word that ends at s[q]:
 * jansson's lexer reads one byte past it and puts it back, and a NUL put
 * back is lost. */
static inline size_t json_index_after_scalar(const char *s, size_t len, size_t q)
{
        return q < len && s[q] == '\0' ? q + 1 : q;
}

/* The value of an integer's text, that of a JSON_INDEX_INTEGER (the
 * scanner kept it within int64_t): for values read without an index (a
 * JsonIndexTake reader). Inline: a few per process of a status. */
static inline int64_t json_index_integer_text(const char *text, size_t len)
{
        uint64_t mag = 0;
        bool neg = len > 0 && text[0] == '-';

        for (size_t i = neg; i < len; i++)
                mag = mag * 10 + (uint64_t)(text[i] - '0');
        return neg ? -(int64_t)(mag - 1) - 1 : (int64_t)mag;
}

/* The value of a number's text (a JSON_INDEX_INTEGER's or _REAL's) as
 * json_index_number() reads it, into *ret; false for another type, or a
 * real too long to copy. */
bool json_index_number_of_text(const char *text, size_t len, JsonIndexType type, double *ret);

/* Frees ix and what it holds; NULL is fine. */
void json_index_free(JsonIndex *ix);

/* The document's value: an object or an array. */
static inline JsonIndexRef json_index_root(const JsonIndex *ix)
{
        (void)ix;
        return 1;
}

static inline JsonIndexType json_index_type(const JsonIndex *ix, JsonIndexRef r)
{
        return (JsonIndexType)ix->tokens[r].type;
}

/* json_index_is_object(ix, r), _is_array, _is_string, _is_integer (a
 * number without a fraction or exponent, as jansson tells them apart),
 * _is_true, _is_false, _is_null: whether value r is one. */
#define JSON_INDEX_DEFINE_IS(what, type)                                                           \
        static inline bool json_index_is_##what(const JsonIndex *ix, JsonIndexRef r)               \
        {                                                                                          \
                return json_index_type(ix, r) == (type);                                           \
        }
JSON_INDEX_DEFINE_IS(object, JSON_INDEX_OBJECT)
JSON_INDEX_DEFINE_IS(array, JSON_INDEX_ARRAY)
JSON_INDEX_DEFINE_IS(string, JSON_INDEX_STRING)
JSON_INDEX_DEFINE_IS(integer, JSON_INDEX_INTEGER)
JSON_INDEX_DEFINE_IS(true, JSON_INDEX_TRUE)
JSON_INDEX_DEFINE_IS(false, JSON_INDEX_FALSE)
JSON_INDEX_DEFINE_IS(null, JSON_INDEX_NULL)

/* An integer or a real. */
static inline bool json_index_is_number(const JsonIndex *ix, JsonIndexRef r)
{
        return json_index_is_integer(ix, r) || json_index_type(ix, r) == JSON_INDEX_REAL;
}

/* Members of an object, elements of an array; 0 for anything else. */
static inline size_t json_index_size(const JsonIndex *ix, JsonIndexRef r)
{
        JsonIndexType t = json_index_type(ix, r);

        return t == JSON_INDEX_OBJECT || t == JSON_INDEX_ARRAY ? ix->tokens[r].size : 0;
}

/* An array's first element or an object's first key; 0 when it is empty or
 * not a container. */
static inline JsonIndexRef json_index_first(const JsonIndex *ix, JsonIndexRef r)
{
        return json_index_size(ix, r) > 0 ? r + 1 : 0;
}

/* The element after `r` in its array, or the key after the key `r` in its
 * object; 0 after the last (and for ref 0). */
static inline JsonIndexRef json_index_next(const JsonIndex *ix, JsonIndexRef r)
{
        return ix->tokens[r].next;
}

/* The value of the key `key` (a ref json_index_first/next gave in an object). */
static inline JsonIndexRef json_index_value(const JsonIndex *ix, JsonIndexRef key)
{
        (void)ix;
        return key == 0 ? 0 : key + 1;
}

/* A string's decoded bytes, NUL-terminated, its length in *ret_len when
 * that is not NULL; NULL when `r` is not a string. Valid while ix lives. */
static inline const char *json_index_string(const JsonIndex *ix, JsonIndexRef r, size_t *ret_len)
{
        if (!json_index_is_string(ix, r))
                return NULL;
        if (ret_len)
                *ret_len = ix->tokens[r].size;
        return ix->arena + ix->tokens[r].at;
}

/* A number's text as it stands in the document (not NUL-terminated), its
 * length in *ret_len; NULL when `r` is not a number. */
static inline const char *json_index_number_text(const JsonIndex *ix, JsonIndexRef r,
                                                 size_t *ret_len)
{
        if (!json_index_is_number(ix, r))
                return NULL;
        *ret_len = ix->tokens[r].size;
        return ix->text + ix->tokens[r].at;
}

/* Where container `r` (an object or array) starts in the text: its bracket,
 * with the bytes from there to the text's end in *ret_left; NULL when `r`
 * is not a container. For handing one member to a parser of its own
 * (json_loadb() with JSON_DISABLE_EOF_CHECK stops after it). */
static inline const char *json_index_container_text(const JsonIndex *ix, JsonIndexRef r,
                                                    size_t *ret_left)
{
        if (!json_index_is_object(ix, r) && !json_index_is_array(ix, r))
                return NULL;
        *ret_left = ix->len - ix->tokens[r].at;
        return ix->text + ix->tokens[r].at;
}

/* The value of the last member of object `obj` named `key`; 0 when there is
 * none or `obj` is not an object. Linear in the object's members. */
JsonIndexRef json_index_get(const JsonIndex *ix, JsonIndexRef obj, const char *key);

/* Element i of an array (walks from the first: O(i)); 0 past the end. */
JsonIndexRef json_index_array_get(const JsonIndex *ix, JsonIndexRef arr, size_t i);

/* An integer's value, exactly (the scanner kept it within int64_t), into
 * *ret; false (*ret untouched) when `r` is not an integer. */
bool json_index_integer(const JsonIndex *ix, JsonIndexRef r, int64_t *ret);

/* A number's value as json_number_value() gives it (an integer converted,
 * a real as strtod() reads it, in any LC_NUMERIC) into *ret; false (*ret
 * untouched) when `r` is not a number. */
bool json_index_number(const JsonIndex *ix, JsonIndexRef r, double *ret);

/* Value `r` as a jansson tree, the one json_loadb(text, len,
 * JSON_REJECT_DUPLICATES) builds from the indexed text: the same types and
 * values (numbers read and strings decoded as jansson does), members in
 * the text's order (issue 16, sixth pass: proto.c parses messages so).
 * NULL when an object has a key twice (jansson refuses that text with
 * JSON_REJECT_DUPLICATES) or out of memory. A new reference. */
json_t *json_index_to_json(const JsonIndex *ix, JsonIndexRef r);
