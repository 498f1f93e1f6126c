/* Shared leases in the daemon (issue 14): what a shared lease shows
 * (budget, use, the CUDA environment hints) and the enforcement of its
 * memory budget after every sampler tick.
 *
 * NVML's per-process memory is the authority: a budget group is the
 * shared leases of one user on one GPU (policy/share.h), its use the sum
 * of the memory NVML reports for that user's processes on that GPU. Over
 * budget → a notice at once (terminal message, alert of event violation,
 * audit lease.over_budget); still over after sharing.grace → SIGTERM to
 * those processes (pidfd, start time and uid checked, enforce/signal.c);
 * enforcement.kill_timeout later → SIGKILL; back under before SIGTERM
 * cancels it. In enforcement mode observe only the notice is given. The
 * timeline lives in memory on the boot clock: after a restart an excess is
 * noticed again and its grace starts over. */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "daemon/leases.h"
#include "proto/json-dump.h"

typedef struct Daemon Daemon;

/* The memory NVML reports for the processes of `l`'s owner on `l`'s GPU in
 * the latest snapshot; 0 for a lease that is not shared. */
uint64_t share_ops_used(const Daemon *d, const Lease *l);

/* The budget of `l`'s group: its owner's shared leases on its GPU. */
uint64_t share_ops_group_budget(const Daemon *d, const Lease *l);

/* The extra CUDA environment of a shared lease (documented in
 * gpukeeper(1), SHARED LEASES): PYTORCH_CUDA_ALLOC_CONF,
 * TF_FORCE_GPU_ALLOW_GROWTH, XLA_PYTHON_CLIENT_PREALLOCATE,
 * XLA_PYTHON_CLIENT_MEM_FRACTION, GPUKEEPER_MEMORY_BUDGET and
 * GPUKEEPER_MEMORY_FRACTION. An empty object for other leases; NULL on OOM. */
json_t *share_ops_env(const Daemon *d, const Lease *l);

/* Add the shared-lease keys to a lease's JSON (share_bytes,
 * memory_used_bytes, over_budget, share_env; null / false / {} for a
 * whole-device lease). Returns 0 or -ENOMEM. */
int share_ops_lease_json(const Daemon *d, const Lease *l, json_t *o);
/* The same members as text, each preceded by a comma, as json-dump.h's
 * writer dumps them after lease_to_json()'s others (leases.c's
 * lease_reply_text); an error stays in `o` (json-dump.h). */
void share_ops_lease_write(const Daemon *d, const Lease *l, JsonOut *o);

/* Check every budget group against the latest snapshot and act. */
void share_ops_tick(Daemon *d);
