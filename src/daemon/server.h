/* The Unix socket server: accepts connections from anyone (mode 0666),
 * identifies each peer by SO_PEERCRED, decodes framed requests, and queues
 * replies without ever blocking the event loop. */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "basic/time-util.h"
#include "daemon/daemon.h"

/* Maximum connections at once, in total and per uid. Beyond them a new
 * connection gets an E_BUSY reply and is closed. */
#define SERVER_MAX_CONNECTIONS 1024
#define SERVER_MAX_CONNECTIONS_PER_UID 128
/* A frame that has started must complete within this time, so a client that
 * sends half a message cannot pin memory forever. */
#define SERVER_PARTIAL_FRAME_TIMEOUT_USEC (10 * USEC_PER_SEC)

/* Bind `socket_path` (its directory is created 0755 if missing; a stale
 * socket left by a previous run is replaced, anything else there is refused)
 * and start accepting on d->event. Returns 0 or -errno, having logged why. */
int server_new(Daemon *d, const char *socket_path, Server **ret);

/* Close every connection and the listening socket, and unlink the socket. */
void server_free(Server *s);

/* Queue `msg` (stolen) on connection `conn_id`. Returns -ENOENT when that
 * connection is gone. Never frees a connection synchronously (callers may be
 * inside that connection's own handler): a connection that cannot take the
 * message is closed from the event loop instead. */
int server_send(Server *s, uint64_t conn_id, json_t *msg);
