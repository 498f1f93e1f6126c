/* The text of a JSON tree as json_dumps(v, JSON_COMPACT) writes it, byte for
 * byte, without jansson's dump (issue 16, fifth pass). jansson writes each
 * token through a callback into a growing buffer and decodes every string
 * a code point at a time: ~76 k instructions for a 653-byte lease reply,
 * the largest piece of the daemon's own work on an acquire. This writes
 * ASCII strings a run at a time into one buffer.
 *
 * It covers what the daemon's replies hold and declines the rest, so that
 * the caller falls back to json_dumps() and the output never differs:
 * strings with a byte above 0x7F (jansson validates and may reject them),
 * a real whose text has no '.' decimal point where jansson would put one
 * (a locale), trees deeper than JSON_DUMP_MAX_DEPTH. */
#pragma once

#include <jansson.h>
#include <stddef.h>

#define JSON_DUMP_MAX_DEPTH 64

/* The compact text of `v` (an object or an array, as json_dumps() without
 * JSON_ENCODE_ANY) in a malloc'd, NUL-terminated *ret of *ret_len bytes.
 * Returns 0, -ENOMEM, or -EOPNOTSUPP where json_dumps() must do it (see
 * above; *ret untouched). */
int json_dump_compact(const json_t *v, char **ret, size_t *ret_len);
/* The same for json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS): every
 * object's members in jansson's key order (bytes compared, then the
 * shorter first). The daemon's audit rows hold requests written so. */
int json_dump_compact_sorted(const json_t *v, char **ret, size_t *ret_len);

/* "%" JSON_INTEGER_FORMAT of v into buf without printf's format parsing
 * (~700 instructions an integer): its length; not NUL-terminated. The
 * digits of every integer json-dump writes, and of the id in
 * proto_ok_reply_prefix(). */
#define JSON_INTEGER_TEXT_MAX 20 /* "-9223372036854775808" */
size_t json_format_integer(json_int_t v, char buf[static JSON_INTEGER_TEXT_MAX]);

/* The writer underneath, for text put together piece by piece (the lease
 * reply, daemon/leases.c): a growing buffer, zero-initialised ({0}) before
 * the first call and released with json_out_done() (or handed over by
 * json_out_finish()). Errors are sticky: the first -ENOMEM or -EOPNOTSUPP
 * (where json_dumps() must write the text instead, as above) is kept, the
 * calls after it write nothing, and json_out_finish() returns it, so a
 * writer makes its calls in a row and checks once. Each json_out_* function
 * also returns the error so far (0 when none). */
typedef struct JsonOut {
        char *buf;
        size_t len, cap;
        int error;
} JsonOut;

/* `n` bytes as they are (punctuation, keys known to need no escape). */
int json_out_raw(JsonOut *o, const char *s, size_t n);
/* json_out_raw() of a string literal. */
#define JSON_OUT_LITERAL(o, lit) json_out_raw((o), (lit), sizeof(lit) - 1)
/* A string as jansson dumps it: quoted and escaped; -EOPNOTSUPP when a
 * byte is above 0x7F. */
int json_out_string(JsonOut *o, const char *s, size_t n);
/* json_out_string() of the NUL-terminated `s`, or null when s is NULL (the
 * lease writers' strings that may be absent). */
int json_out_text(JsonOut *o, const char *s);
int json_out_integer(JsonOut *o, json_int_t v);
/* A real as jansson dumps it (precision 17); -EOPNOTSUPP for a locale's
 * decimal comma. */
int json_out_real(JsonOut *o, double v);
/* null. */
#define json_out_null(o) JSON_OUT_LITERAL((o), "null")
/* NUL-terminates the text and hands it over in *ret (malloc'd, *ret_len
 * bytes before the NUL); `o` is empty afterwards. 0, or the first error of
 * the calls before (then `o` still holds its buffer: json_out_done()). */
int json_out_finish(JsonOut *o, char **ret, size_t *ret_len);
/* Frees the buffer; `o` is empty afterwards. */
void json_out_done(JsonOut *o);
