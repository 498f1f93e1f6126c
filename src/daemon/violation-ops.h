/* The violations.list request: the record of unleased GPU use. */
#pragma once

#include "daemon/request.h"

/* args {"since": unix seconds (optional), "limit": N (optional, default 100)}
 * → {"violations": [...]}, newest first. Everyone may read it: status shows
 * the same marks to everyone. */
int violation_op_list(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                      gk_call_error *ret_error);
