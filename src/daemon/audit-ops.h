/* The audit.list request: the audit trail (schema in gpukeeperd(8)). */
#pragma once

#include "daemon/request.h"

/* args {"since": unix seconds, "user": uid, "action": "lease" or
 * "lease.release", "limit": N (default 100, at most 10000)}, all optional
 * → {"records": [...]}, newest first. Admins see every record; others only
 * records of their own uid, and asking for another user's is refused. */
int audit_op_list(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                  gk_call_error *ret_error);
