/* Request dispatch: one table row per operation. Each handler gets the
 * caller's identity as the kernel reported it (SO_PEERCRED), never as the
 * message claims. */
#pragma once

#include <gpukeeper/client.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "basic/macro.h"
#include "daemon/daemon.h"

/* Supplementary groups: all of them, as SO_PEERGROUPS reports them at
 * connect time (the kernel allows NGROUPS_MAX, 65536). A peer whose groups
 * cannot be read is refused rather than served without them: dropping a
 * group could bypass a stricter group policy. */
#define PEER_MAX_GROUPS 65536

typedef struct Peer {
        pid_t pid;
        uid_t uid;
        gid_t gid;
        gid_t *groups; /* SO_PEERGROUPS at connect time, owned by the connection */
        size_t n_groups;
        bool admin;       /* root, or in ADMIN_GROUP when it connected */
        uint64_t conn_id; /* the connection, for replies sent later */
        uint64_t person;  /* who is behind uid, for per-person bounds (subid_person) */
} Peer;

/* Whether the peer's primary or supplementary groups include `gid`. */
bool peer_in_group(const Peer *peer, gid_t gid);

/* A handler's answer meaning "no reply now": the request waits (in the lease
 * queue) and its reply is sent later through server_send(). */
#define REQUEST_DEFERRED 1000

typedef struct RequestCall {
        const Peer *peer;
        uint32_t id;    /* the request's id, for a deferred reply */
        const char *op; /* the operation (the request table's string) */
        json_t *args;   /* its arguments, borrowed; NULL when absent */
        uint64_t since_usec; /* CLOCK_MONOTONIC it came; 0: now (a request dispatched
                              * again, user-wait.h, keeps its first) */
} RequestCall;

typedef int (*RequestHandler)(Daemon *d, const RequestCall *call, json_t *args,
                              json_t **ret_result, gk_call_error *ret_error);

/* Answer request `op` with `args` (borrowed; NULL when absent), which came
 * at `since_usec` (CLOCK_MONOTONIC; 0: just now). Returns the reply message
 * to send, or NULL with *ret_deferred set when the handler will reply later
 * (NULL with *ret_deferred unset: out of memory). */
json_t *request_dispatch(Daemon *d, const Peer *peer, uint32_t id, const char *op, json_t *args,
                         uint64_t since_usec, bool *ret_deferred);

/* The reply to request `id` (`op`, from `uid`) from a handler's answer `r`:
 * 0 with `result` (stolen; NULL is an empty result), a request error's code
 * with `error`, or -errno (-EBUSY: the database is locked by another
 * program; else E_INTERNAL, logged). For replies sent later (reads.h) as
 * for request_dispatch()'s own. */
json_t *request_reply(uint32_t id, const char *op, uid_t uid, int r, json_t *result,
                      const gk_call_error *error);

/* Set a gk_call_error and return its code, for handlers:
 * `return request_error(ret_error, GK_E_NOT_FOUND, "no lease %d", id);` */
int request_error(gk_call_error *ret_error, int code, const char *fmt, ...) _printf_(3, 4);

/* A request's `user` argument: a numeric uid or a user name (the command
 * is linked statically and does no NSS lookups of its own). A name is
 * answered from the resolver's cache (resolver_user_uid); one it has no
 * answer for yet parks the whole request until it has (user-wait.h), so
 * handlers call this before anything with an effect. Returns 0 with *ret
 * set, REQUEST_DEFERRED, or the request error's code: E_NOT_FOUND for an
 * unknown name, E_BUSY when too many requests wait already,
 * E_INVALID_ARGUMENT for anything else. */
int request_parse_user(Daemon *d, const RequestCall *call, json_t *user, uid_t *ret,
                       gk_call_error *ret_error);

/* Root, or a member of the group gpukeeper-admin (by the peer's groups as
 * the kernel reported them). */
bool peer_is_admin(const Peer *peer);

#define ADMIN_GROUP "gpukeeper-admin"
