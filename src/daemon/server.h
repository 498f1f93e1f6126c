/* The Unix socket server: accepts connections from anyone (mode 0666),
 * identifies each peer by SO_PEERCRED, decodes framed requests, and queues
 * replies without ever blocking the event loop. */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "basic/time-util.h"
#include "daemon/daemon.h"

/* Maximum connections at once, in total and per person. Beyond them a new
 * connection gets an E_BUSY reply and is closed. A person is a uid, except
 * that every uid of an /etc/subuid range counts as its owner (with uidmap one
 * account connects as many host uids), whether the line names the owner by
 * uid or by login name (resolved by the resolver thread; until it answers,
 * the range counts as one person of its own). The last
 * SERVER_RESERVED_CONNECTIONS are kept for root, admins and people who hold
 * a lease (so a `run` client can always re-attach), and someone whose run
 * lease waits for its client to re-attach may go past the per-person cap by
 * one connection per such lease. */
#define SERVER_MAX_CONNECTIONS 1024
#define SERVER_RESERVED_CONNECTIONS 128
#define SERVER_MAX_CONNECTIONS_PER_PERSON 64
/* A connection with nothing in flight (no partial frame, no reply queued, no
 * queued request, no run lease attached) is closed after this long. */
#define SERVER_IDLE_TIMEOUT_USEC (60 * USEC_PER_SEC)
/* A frame that has started must complete within this time, so a client that
 * sends half a message cannot pin memory forever. */
#define SERVER_PARTIAL_FRAME_TIMEOUT_USEC (10 * USEC_PER_SEC)
/* The socket send buffer a connection starts with (net.core.wmem_default,
 * 208 KiB), and the most it is raised to for a reply queued above it: a
 * status of 4,096 processes (~1 MB) leaves in one sendmsg() instead of
 * four wakeups. The kernel then holds what user space held before. */
#define SERVER_SNDBUF_DEFAULT (208u * 1024u)
#define SERVER_SNDBUF_MAX (2u * 1024u * 1024u)
/* The priority of the source that takes pipelined requests already read
 * (server.c): after everything else the loop has pending. Every other
 * source of the daemon has SD_EVENT_PRIORITY_NORMAL (0). */
#define SERVER_RESUME_PRIORITY (SD_EVENT_PRIORITY_NORMAL + 10)

/* Bind `socket_path` (its directory is created 0755 if missing; a stale
 * socket left by a previous run is replaced, anything else there is refused)
 * and start accepting on d->event. Returns 0 or -errno, having logged why. */
int server_new(Daemon *d, const char *socket_path, Server **ret);

/* Shorten the idle timeout (tests; the daemon's GK_TEST_IDLE_TIMEOUT_MS). */
void server_set_idle_timeout(Server *s, uint64_t usec);

/* The owners of /etc/subuid ranges (as last read) given by login name, up to
 * `max` of them, borrowed until the next connection is accepted; for the
 * resolver's set of names (daemon_resolver_update). NULL `s` gives 0. */
size_t server_subuid_owner_names(const Server *s, const char **names, size_t max);

/* Connections refused since the start (for /metrics). */
uint64_t server_refused_total(const Server *s);

/* Close every connection and the listening socket, and unlink the socket. */
void server_free(Server *s);

/* The peer of connection `conn_id`, borrowed until the loop next runs; NULL
 * when that connection is gone (or failing). For requests dispatched again
 * later (user-wait.h). */
const Peer *server_peer(Server *s, uint64_t conn_id);

/* Queue `msg` (stolen) on connection `conn_id`. Returns -ENOENT when that
 * connection is gone. Never frees a connection synchronously (callers may be
 * inside that connection's own handler): a connection that cannot take the
 * message is closed from the event loop instead. */
int server_send(Server *s, uint64_t conn_id, json_t *msg);
/* The same for a message already written as JSON text (`len` bytes, as
 * proto_dump() would write it; borrowed): leases.c's acquire reply. */
int server_send_text(Server *s, uint64_t conn_id, const char *json, size_t len);
