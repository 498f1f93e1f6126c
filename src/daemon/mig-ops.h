/* MIG in the daemon (issue 13): the MIG view of every GPU (mode, profiles,
 * placements, GPU instances) read from NVML on the sampler tick, the
 * requests mig.show / mig.export / mig.apply / mig.assert, the apply job
 * that drains and re-carves GPUs as their leases end, re-asserting the
 * stored layout at start and when a GPU comes back, and on-demand
 * instances (mig.dynamic): created for the queue's head, destroyed when
 * their lease ends unless mig.keep_dynamic.
 *
 * Every NVML call here runs on the sampler tick or in an admin's apply
 * request, never on an ordinary request path. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "daemon/request.h"
#include "policy/allocate.h"

typedef struct MigState MigState;

int mig_ops_new(MigState **ret);
void mig_ops_free(MigState *m);

/* After every sampler tick (and once at start): refresh the view, advance
 * an apply job, start one for the stored layout when due, create on-demand
 * instances for the queue's head and destroy idle ones. May take a new
 * snapshot and reschedule the queue when it changed the layout. */
void mig_ops_tick(Daemon *d);

/* Is this GPU drained by an apply waiting to re-carve it? */
bool mig_ops_draining(const Daemon *d, const char *gpu_uuid);

/* Placeholders for instances that on-demand creation could still make:
 * drained PolicyDevices (never granted) that keep a MIG request queued
 * instead of impossible. Writes at most `max`, returns how many; with
 * `ret` NULL, returns how many there are (to size the array). The
 * strings live until the next mig_ops_tick. */
size_t mig_ops_virtual_devices(const Daemon *d, PolicyDevice *ret, size_t max);

/* Per-GPU MIG summary for status, metrics and the dashboard: free memory
 * slices and instances made on demand; NULL when the GPU has no MIG view. */
json_t *mig_ops_gpu_json(const Daemon *d, const char *gpu_uuid);
/* Counts for metrics: -1 when unknown. */
int mig_ops_free_slices(const Daemon *d, const char *gpu_uuid);
int mig_ops_on_demand_count(const Daemon *d, const char *gpu_uuid);

int mig_op_show(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                gk_call_error *ret_error);
int mig_op_export(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                  gk_call_error *ret_error);
int mig_op_apply(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                 gk_call_error *ret_error);
int mig_op_assert(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                  gk_call_error *ret_error);
