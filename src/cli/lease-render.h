/* Text views of leases and of the queue: `gpukeeper lease list`, what
 * `lease acquire` / `lease extend` print, `gpukeeper queue`, the queue below
 * the GPUs in `gpukeeper status`, and the shell lines of `lease env`. Like
 * status-render.c they take the daemon's JSON as it comes (missing or
 * wrongly typed members print as "-") and are tested without a daemon.
 * Times are relative to `now` (seconds since the epoch) so tests are fixed.
 * Lines end one column short of term->columns (taken as at least 80). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/text.h"

/* A string member of `o`, or NULL when absent, not a string or empty (an
 * empty name is as unknown as a missing one). */
const char *cli_json_str(json_t *o, const char *key);

/* A number member of `o` into *ret; false (and *ret untouched) when absent
 * or not a number. */
bool cli_json_num(json_t *o, const char *key, double *ret);

/* A number member of `o` rounded to a whole number, as text in buf, or
 * "-" when absent or not a number. Returns what to print. */
const char *cli_json_int_text(char *buf, size_t len, json_t *o, const char *key);

/* What cli_json_int_text() prints for a value that is the JSON integer
 * *integer (NULL when it is not one) and the finite number *number (NULL
 * when it is not a number): the integer in decimal, else "%.0f" of the
 * number, else "-". Returns what to print. */
const char *cli_number_text(char *buf, size_t len, const int64_t *integer, const double *number);

/* A span of time in at most two units, rounded down: "45s", "12m", "2h13m",
 * "2h", "3d4h". Negative spans are "0s". Returns buf. */
const char *cli_format_span(char *buf, size_t len, double seconds);

/* The devices of `lease` in short: "[0]" for a whole GPU with an index,
 * "[2] 3g.40gb" for a MIG instance, the UUID's first 12 characters when the
 * index is unknown; joined by ", ". Returns buf ("-" for none). */
const char *cli_lease_devices_short(char *buf, size_t len, json_t *lease);

/* The table of `lease list`: one lease per line, ID, USER, KIND, AGE,
 * EXPIRES and the devices last (they get the rest of the line). "You hold
 * no leases." (or "No leases.", with `all`) when the array is empty. Returns
 * 0, or -EBADMSG when `leases` is not an array. */
int cli_lease_list_render(json_t *leases, bool all, FILE *f, const cli_term *term, double now);

/* One lease in full, for `lease acquire` and `lease extend`: its id, kind,
 * expiry (local time and how far off) and one line per device with its
 * full UUID. Returns 0, or -EBADMSG when `lease` is not an object. */
int cli_lease_render(json_t *lease, FILE *f, const cli_term *term, double now);

/* The queue table: POS, USER, WANTS, WAITING (how long) and REASON (the rest
 * of the line), every line starting with `indent` spaces. Prints nothing for
 * an empty or missing queue; returns the number of requests shown. */
size_t cli_queue_render(json_t *queue, FILE *f, const cli_term *term, double now, size_t indent);

/* Print `s` as one word for a POSIX shell: in single quotes, each ' written
 * as '\''. */
void cli_sh_quote(FILE *f, const char *s);

/* The `export NAME='value'` lines of `lease env` for the object `env`
 * (name → string), in its order, for `eval`. Returns 0, or -EBADMSG when a
 * name is not a shell variable name or a value is not a string without NUL
 * (nothing is printed then: a daemon must never get to inject shell code). */
int cli_env_render(json_t *env, FILE *f);
