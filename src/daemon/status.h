/* The `status` and `ping` requests: answered from the latest snapshot,
 * never by calling NVML. */
#pragma once

#include <jansson.h>

#include "daemon/daemon.h"

/* Build the status result object (keys in docs/protocol.md). Returns 0 or -ENOMEM. */
int status_build(const Daemon *d, json_t **ret);
