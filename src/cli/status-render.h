/* The text view of `gpukeeper status`: one line per GPU with its health,
 * temperature, power, utilisation and memory, its MIG instances as a tree,
 * who holds each (lease, drained, use without a lease), the processes on
 * each, largest GPU memory first, and the queue below the GPUs. Kept apart from the
 * subcommand so it can be tested on JSON alone, without a daemon. */
#pragma once

#include <jansson.h>
#include <stdio.h>

#include "cli/text.h"
#include "proto/json-index.h"

/* Render the result object of the daemon's "status" operation to `f`.
 * Tolerates missing or wrongly typed fields (shown as unknown, "-"), so a
 * daemon of another version still gives a readable view. Every line fits in
 * term->columns - 1 display columns (term->columns is taken as at least 80).
 * Lease ages and expiries are relative to `now` (seconds since the epoch).
 * Returns 0, or -EBADMSG when `status` is not a JSON object. */
int cli_status_render(json_t *status, FILE *f, const cli_term *term, double now);

/* The same view of the result given as its JSON text s[0..len) (as the
 * client library hands it over): indexed (proto/json-index.h), never
 * parsed into a tree. -EBADMSG also when json-scan refuses the text;
 * -ENOMEM. cli_status_render() is a wrapper that dumps `status` and calls
 * this, so both paths print the same bytes. */
int cli_status_render_text(const char *text, size_t len, FILE *f, const cli_term *term, double now);

/* The same view of the result object `status`, a value in an index (of the
 * result's text, or of the whole reply as the client library hands it
 * over: gk_client_call_index()). */
int cli_status_render_index(const JsonIndex *ix, JsonIndexRef status, FILE *f,
                            const cli_term *term, double now);
