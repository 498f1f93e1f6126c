/* The text view of `gpukeeper status`: one line per GPU with its health,
 * temperature, power, utilisation and memory, its MIG instances as a tree,
 * who holds each (lease, drained, use without a lease), the processes on
 * each, largest GPU memory first, and the queue below the GPUs. Kept apart from the
 * subcommand so it can be tested on JSON alone, without a daemon. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
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

/* The same view rendered as the result's text arrives (issue 16: a reply
 * of 4,096 processes is a megabyte, and fresh memory is what costs on the
 * VMs this runs on): the feed and finish of a gk_result_sink
 * (client/client-text.h). Each GPU is printed as its element arrives when
 * the result says "gpu_count" before "gpus" (gpukeeperd does): at most one
 * GPU's text is in memory then. Without a gpu_count the members are kept
 * and the view is rendered whole at the end. Prints the bytes
 * cli_status_render_text() prints for the same text, as far as the text is
 * valid: output printed before an error later in the text (-EBADMSG)
 * stays printed, as --json's does. The header and the queue are read from
 * the members before "gpus" and from all members but "gpus"
 * respectively. */
int cli_status_stream_new(FILE *f, const cli_term *term, double now, void **ret);
int cli_status_stream_feed(void *stream, const char *s, size_t len, bool last, size_t *ret_taken);
int cli_status_stream_finish(void *stream);
void cli_status_stream_free(void *stream);
