/* JSON text checked and re-spaced without building a tree (issue 16).
 *
 * jansson has no streaming API: json_loadb() builds a tree (a malloc per
 * value, about 10 ns a byte), which is what `gpukeeper status --json` spent
 * most of its time on just to print the daemon's reply again. The scanner
 * here validates text exactly as json_loadb(text, len, 0, NULL) accepts it
 * (a top-level object or array; strings of valid UTF-8 with jansson's
 * escapes, surrogate pairs and no \u0000; its number grammar, 64-bit
 * integers and reals that do not overflow a double; true/false/null; space,
 * tab, CR and LF between tokens; nothing after the value; and jansson's
 * quirk of skipping one NUL byte right after a number or a word), with containers
 * nested at most `max_depth` deep (PROTO_MAX_DEPTH for messages, as
 * proto.c's depth check before jansson). It allocates nothing, does not
 * recurse and takes time linear in the text.
 *
 * Like json_loadb() without JSON_REJECT_DUPLICATES it does not look for a
 * key given twice in one object (that needs memory per object); the client
 * library's parsed path rejects such messages. jansson cannot write one, so
 * the daemon's replies hold none.
 *
 * The writer prints accepted text as json_dumpf(JSON_INDENT(2) |
 * JSON_PRESERVE_ORDER) prints the parsed value, by re-spacing: strings and
 * numbers are copied as they stand. That equals jansson's output only for
 * text jansson itself wrote (its escapes: \" \\ \b \f \n \r \t and \u00XX
 * for other control characters, nothing else escaped; integers in decimal,
 * reals as %.17g with ".0" where that has no '.' or 'e'). The daemon's
 * replies are such text.
 *
 * The stream scanner (JsonScanStream, below) does both at once for a value
 * that arrives in pieces, for the client's --json views. */
#pragma once

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The deepest `max_depth` the functions below take. */
#define JSON_SCAN_DEPTH_MAX 64u

/* Whether s[0..len) is a JSON document json_loadb(s, len, 0, NULL) accepts
 * whose containers nest at most max_depth (1..JSON_SCAN_DEPTH_MAX) deep (a
 * top-level "{}" is 1). On success, when ret_begin/ret_end are not NULL, the
 * value's bytes without the whitespace around it are s[*ret_begin..*ret_end). */
bool json_scan_document(const char *s, size_t len, unsigned max_depth, size_t *ret_begin,
                        size_t *ret_end);

/* One member of a top-level object, pointing into the scanned text. */
typedef struct JsonScanMember {
        const char *key; /* between the quotes, escapes not decoded */
        size_t key_len;
        const char *value; /* the value's text, validated */
        size_t value_len;
} JsonScanMember;

/* Walks the members of a document that is one object, validating as it
 * goes: the document is accepted (as json_scan_document() would) exactly when
 * json_scan_members_next() returns 0 after the last member. Fields are private. */
typedef struct JsonScanMembers {
        const char *s;
        size_t len;
        size_t pos;
        unsigned max_depth;
        int state; /* 0 before '{', 1 inside, 2 done, -1 failed */
} JsonScanMembers;

void json_scan_members_init(JsonScanMembers *it, const char *s, size_t len, unsigned max_depth);
/* 1 and *ret filled: the next member; 0: the object ended and nothing but
 * whitespace follows it; -EBADMSG: the text is not such a document (or
 * nests too deep). After 0 or -EBADMSG it keeps returning the same. */
int json_scan_members_next(JsonScanMembers *it, JsonScanMember *ret);

/* Whether the member's key, its escapes decoded, is the NUL-terminated `key`. */
bool json_scan_key_is(const JsonScanMember *m, const char *key);
/* Whether two members' keys are the same string once decoded. */
bool json_scan_keys_equal(const JsonScanMember *a, const JsonScanMember *b);

/* Decodes the string whose opening quote is at s[p], inside text the
 * scanner accepted: its characters, escapes (\uXXXX and surrogate pairs
 * included) decoded to UTF-8, go to `out`, which has room for the string's
 * bytes in the text (never more are written; no NUL is added), their count
 * to *ret_len. Returns the byte after the closing quote. The decoded string
 * holds no NUL byte: the scanner refuses \u0000, as jansson does. */
size_t json_scan_string_decode(const char *s, size_t len, size_t p, char *out, size_t *ret_len);

/* The whitespace json-scan (and jansson) allows between tokens: space,
 * tab, LF, CR. Inline, for the scanner and the index, which skip it once
 * per token. */
static inline bool json_scan_is_ws(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The first byte at or after s[p] that is not such whitespace (len when
 * none is). */
static inline size_t json_scan_skip_ws(const char *s, size_t len, size_t p)
{
        while (p < len && json_scan_is_ws(s[p]))
                p++;
        return p;
}

/* The scanner's pieces, for json-index.c, which validates and indexes in
 * one pass. Each takes the value's first byte at s[p] (p < len) and returns
 * the byte after it, or 0 where jansson refuses it: a string (its opening
 * quote at s[p]; *ret_plain says whether its bytes between the quotes are
 * all ASCII from 0x20 without an escape, so that they are its decoded text), a
 * number (its sign or first digit), true, false or null. */
size_t json_scan_string_end_slow(const char *s, size_t len, size_t p, bool *ret_plain);
size_t json_scan_number_end(const char *s, size_t len, size_t p);

/* Most numbers of a reply (pids, byte counts) are plain integers: "0", or
 * 1 to 18 digits without a leading zero, followed (within s[0..len)) by
 * neither a digit, a fraction nor an exponent. Such a one is always in
 * int64_t's range: what json_scan_number_end() takes as an integer. The
 * byte after it, or 0 for any other number (json_scan_number_end()
 * judges it). Inline: the index and the --json writer meet thousands. */
static inline size_t json_scan_plain_integer_end(const char *s, size_t len, size_t p)
{
        size_t e = p;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* Eight bytes at a time: the high bit of a byte of `stop` is set
         * where the byte is not a digit (below '0': x - '0' borrows; above
         * '9': x + 0x46 reaches 0x80). A borrow or carry runs on only from
         * a byte that is not a digit, so the lowest such byte is found
         * exactly. */
        while (len - e >= 8) {
                uint64_t x, stop;

                memcpy(&x, s + e, 8);
                stop = ((x - UINT64_C(0x3030303030303030)) | (x + UINT64_C(0x4646464646464646))) &
                       UINT64_C(0x8080808080808080);
                if (stop) {
                        e += (size_t)__builtin_ctzll(stop) / 8;
                        goto found;
                }
                e += 8;
        }
#endif
        while (e < len && s[e] >= '0' && s[e] <= '9')
                e++;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
found:
#endif
        if (e == p || e == len || e - p > 18 || (s[p] == '0' && e - p > 1) || s[e] == '.' ||
            s[e] == 'e' || s[e] == 'E')
                return 0;
        return e;
}

/* Most strings of a reply (keys, names) are short and plain: one 16-byte
 * look finds their closing quote, inline (issue 16, eighth pass: 56,000
 * strings in a status of 4,096 processes); the rest takes the loop. */
#ifdef __SSE2__
/* Bit k set when s[k] (k < 16) ends a plain run of a string: a quote, a
 * backslash, a control character or a byte of 0x80 and up (as signed
 * bytes those are negative: one compare finds them and the controls). */
static inline unsigned json_scan_plain_stops16(const char *s)
{
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
        __m128i m = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                                 _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                              _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));

        return (unsigned)_mm_movemask_epi8(m);
}
#endif

static inline size_t json_scan_string_end(const char *s, size_t len, size_t p, bool *ret_plain)
{
#ifdef __SSE2__
        if (len - p > 16) {
                unsigned bits = json_scan_plain_stops16(s + p + 1);

                if (bits != 0) {
                        size_t q = p + 1 + (size_t)__builtin_ctz(bits);

                        if (s[q] == '"') {
                                *ret_plain = true;
                                return q + 1;
                        }
                }
        }
#endif
        return json_scan_string_end_slow(s, len, p, ret_plain);
}
/* true, false or null at s[p]: the byte after it, or 0. (jansson reads a run
 * of letters as one word; anything but a delimiter after a value fails later
 * anyway, so matching the word alone accepts the same texts.) Inline: the
 * index meets four per process of a status. */
static inline size_t json_scan_literal_end(const char *s, size_t len, size_t p)
{
        size_t n = len - p;

        switch (s[p]) {
        case 't':
                return n >= 4 && memcmp(s + p, "true", 4) == 0 ? p + 4 : 0;
        case 'f':
                return n >= 5 && memcmp(s + p, "false", 5) == 0 ? p + 5 : 0;
        case 'n':
                return n >= 4 && memcmp(s + p, "null", 4) == 0 ? p + 4 : 0;
        default:
                return 0;
        }
}

/* Writes s[0..len), a value the scanner accepted (a document's value or a
 * member's value), to `f` as jansson's JSON_INDENT(2) | JSON_PRESERVE_ORDER
 * dump of it (see above for when that holds), without a final newline; the
 * caller checks ferror(f). Writes in runs with fwrite_unlocked(): a caller
 * that shares `f` between threads locks it around the call. */
void json_scan_write_indented(FILE *f, const char *s, size_t len);

/* ---- A value that arrives in pieces ---------------------------------------------------- */

/* Bytes the writers gather before they hand them to stdio: a multiple of
 * the page size, so that each full buffer goes out in one write(2). */
#define JSON_SCAN_OUT_SIZE (32u * 1024u)

/* The writers' output buffer. Fields are private. */
typedef struct JsonScanOut {
        FILE *f;
        size_t n;
        char buf[JSON_SCAN_OUT_SIZE];
} JsonScanOut;

/* The scanner and the writer in one pass over a value that arrives in
 * pieces (the client reading a large reply through a small buffer, issue
 * 16): each piece is checked as json_scan_members_next() checks a member's
 * value and written as json_scan_write_indented() writes it, a token at a
 * time, so the value never needs to be in memory whole. What is written
 * before the value turns out invalid stays written: callers that must not
 * print a partial value use the two functions above. Fields are private. */
typedef struct JsonScanStream {
        uint64_t objects; /* bit i: the container at level i is an object */
        unsigned level;   /* containers open inside the value */
        unsigned depth;   /* containers open around it */
        unsigned max_depth;
        int state;
        JsonScanOut out;
} JsonScanStream;

/* Starts a value nested inside `depth` containers (0 for a document's
 * value), accepted while containers nest at most max_depth deep
 * (1..JSON_SCAN_DEPTH_MAX, depth < max_depth), written to `f`. */
void json_scan_stream_init(JsonScanStream *st, FILE *f, unsigned depth, unsigned max_depth);

/* Scans and writes the next bytes of the value, s[0..len): the bytes not
 * taken last time, followed by new ones. `last`: nothing follows s[0..len)
 * (the verdict is then exactly the one-pass scanner's for that text).
 *   1  the value is complete: it ended at s[*ret_consumed] (what follows is
 *      the caller's: whitespace and the enclosing container's rest)
 *   0  more is needed: s[0..*ret_consumed) was taken; present the rest
 *      again, in front of the bytes that follow it (a token is taken whole,
 *      so the rest can be as long as the longest string)
 *   -EBADMSG  json_loadb() would refuse the text (or it nests too deep);
 *      the stream stays failed.
 * Output is buffered: json_scan_stream_flush() writes the rest to `f`. */
int json_scan_stream_feed(JsonScanStream *st, const char *s, size_t len, bool last,
                          size_t *ret_consumed);

/* Writes what the stream holds of its output to its file. */
void json_scan_stream_flush(JsonScanStream *st);
