/* Request handlers for leases, the queue and drains (ops lease.*, queue.list,
 * admin.*). Contracts of the ops: docs/protocol.md. */
#pragma once

#include "daemon/request.h"

int lease_op_acquire(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                     gk_call_error *ret_error);
int lease_op_attach(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                    gk_call_error *ret_error);
int lease_op_release(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                     gk_call_error *ret_error);
int lease_op_extend(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                    gk_call_error *ret_error);
int lease_op_list(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                  gk_call_error *ret_error);
int lease_op_env(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                 gk_call_error *ret_error);
int lease_op_queue(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                   gk_call_error *ret_error);
int lease_op_drain(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                   gk_call_error *ret_error);
int lease_op_undrain(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                     gk_call_error *ret_error);
