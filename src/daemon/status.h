/* The `status` and `ping` requests: answered from the latest snapshot,
 * never by calling NVML. */
#pragma once

#include <jansson.h>

#include "daemon/daemon.h"
#include "daemon/status-shape.h"

/* The shape a status request's arguments ask for. -EINVAL, with *ret_why
 * saying what it takes, for any other argument. */
int status_shape_from_args(json_t *args, StatusShape *ret, const char **ret_why);

/* Build the status result object (keys in docs/protocol.md). Returns 0 or -ENOMEM. */
int status_build(const Daemon *d, StatusShape shape, json_t **ret);

/* The same object without its last member, "fence" (strict_to_json(), which
 * reads the kernel's counters and is never cached: status-cache.h). */
int status_build_base(const Daemon *d, StatusShape shape, json_t **ret);
