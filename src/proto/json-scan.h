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
 * replies are such text. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

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

/* Writes s[0..len), a value the scanner accepted (a document's value or a
 * member's value), to `f` as jansson's JSON_INDENT(2) | JSON_PRESERVE_ORDER
 * dump of it (see above for when that holds), without a final newline; the
 * caller checks ferror(f). Writes in runs with fwrite_unlocked(): a caller
 * that shares `f` between threads locks it around the call. */
void json_scan_write_indented(FILE *f, const char *s, size_t len);
