/* The `status` and `ping` requests: answered from the latest snapshot,
 * never by calling NVML. */
#pragma once

#include <jansson.h>

#include "daemon/daemon.h"

/* Build the status result object (keys in docs/protocol.md). Returns 0 or -ENOMEM. */
int status_build(const Daemon *d, json_t **ret);

/* The same object without its last member, "fence" (strict_to_json(), which
 * reads the kernel's counters and is never cached: status-cache.h). */
int status_build_base(const Daemon *d, json_t **ret);
