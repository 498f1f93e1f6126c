/* Request dispatch: one table row per operation. Each handler gets the
 * caller's identity as the kernel reported it (SO_PEERCRED), never as the
 * message claims. */
#pragma once

#include <gpukeeper/client.h>
#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/daemon.h"

typedef struct Peer {
        pid_t pid;
        uid_t uid;
        gid_t gid;
} Peer;

/* Answer request `op` with `args` (borrowed; NULL when absent) and return
 * the reply message to send, or NULL when out of memory. */
json_t *request_dispatch(Daemon *d, const Peer *peer, uint32_t id, const char *op, json_t *args);
