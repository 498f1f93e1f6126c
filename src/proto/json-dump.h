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
