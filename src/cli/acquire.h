/* Asking the daemon for a lease and waiting in its queue, shared by
 * `gpukeeper run` and `gpukeeper lease acquire`: queue positions go to
 * stderr as they change, and SIGINT, SIGTERM or SIGHUP while waiting leave
 * the queue (the connection is abandoned, which is how the daemon learns). */
#pragma once

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>

#include "cli/cli.h"

/* Block SIGINT, SIGTERM, SIGHUP (and the signals in `extra`, may be NULL)
 * and return a signalfd (close-on-exec, non-blocking) for the first three,
 * storing the mask as it was before in *ret_old_mask. -errno on failure. */
int cli_signals_block(const sigset_t *extra, sigset_t *ret_old_mask);

/* Call lease.acquire with `args` (stolen) on *client. While the request
 * waits, "gpukeeper: queued, position P of N (REASON)" goes to stderr once
 * per change. With `requeue` (run leases), losing the connection is not the
 * end: *client is replaced by a new connection once the daemon takes
 * connections again (tried every 0.5 s) and the request is made again,
 * from the back of the new daemon's queue, unless the old daemon had
 * granted it: that run lease of ours is re-attached instead. A manual lease
 * has no such owner to recognise it by, so lease acquire does not re-queue. Returns CLI_EXIT_OK with
 * the lease object in *ret_lease and, in *ret_waited_sec, how long it
 * waited when it was queued (else -1); 128 + N when signal N arrived on
 * `sfd` while waiting (one line printed); any other exit code after
 * printing why. *client may be NULL afterwards. */
int cli_acquire(cli_context *ctx, gk_client **client, json_t *args, int sfd, bool requeue,
                json_t **ret_lease, double *ret_waited_sec);
