/* The text view of `gpukeeper status`: one line per GPU with its health,
 * temperature, power, utilisation and memory, its MIG instances as a tree,
 * who holds each (lease, drained, use without a lease), the processes on
 * each, largest GPU memory first, and the queue below the GPUs. Kept apart from the
 * subcommand so it can be tested on JSON alone, without a daemon. */
#pragma once

#include <jansson.h>
#include <stdio.h>

#include "cli/text.h"

/* Render the result object of the daemon's "status" operation to `f`.
 * Tolerates missing or wrongly typed fields (shown as unknown, "-"), so a
 * daemon of another version still gives a readable view. Every line fits in
 * term->columns - 1 display columns (term->columns is taken as at least 80).
 * Lease ages and expiries are relative to `now` (seconds since the epoch).
 * Returns 0, or -EBADMSG when `status` is not a JSON object. */
int cli_status_render(json_t *status, FILE *f, const cli_term *term, double now);
