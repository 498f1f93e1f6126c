/* The report request: usage per user over a window, from the history. */
#pragma once

#include "daemon/request.h"

/* args {"since_sec": unix seconds (optional, default 30 days ago),
 *       "user": uid (optional: only that user's row)}
 * → {"since_sec", "until_sec",
 *    "users": [{"uid", "user", "leased_device_hours", "busy_device_hours",
 *               "idle_share", "memory_gib_hours", "leases",
 *               "queue_wait_mean_sec", "queue_wait_p95_sec", "violations"}],
 *    "totals": {"leased_device_hours", "busy_device_hours",
 *               "idle_leased_device_hours", "unleased_busy_device_hours",
 *               "memory_gib_hours", "violations", "waste_device_hours"}}
 * where waste = leased-but-idle + unleased busy device-hours. Everyone may
 * read it: status shows who holds what to everyone. */
int report_op(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
              gk_call_error *ret_error);
