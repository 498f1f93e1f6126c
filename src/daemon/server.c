/* Unix socket server; see server.h.
 *
 * Each connection is served one request at a time: a turn of the event loop
 * handles at most one of its requests, and the next is taken only once the
 * previous reply has left the queue. A client that sends without reading
 * cannot make the daemon buffer without bound, and one that pipelines many
 * requests in one write (each read takes up to 4 KiB: a hundred small
 * frames) cannot hold the loop for all of them. The requests a read brought
 * beyond the first wait in the decoder, and their connection in the
 * server's resume queue: a defer source of a lower priority than every other
 * source takes the next request of the connection at the queue's head, then
 * puts the connection at the tail if it has more. Whatever else is pending
 * (a request of another connection, a timer, a signal) goes first, and
 * connections that pipeline take turns among themselves. */
#include "daemon/server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "basic/log.h"
#include "basic/parse.h"
#include "basic/ratelimit.h"
#include "basic/subid.h"
#include "basic/time-util.h"
#include "daemon/leases.h"
#include "daemon/request.h"
#include "daemon/status-cache.h"
#include "daemon/status.h"
#include "proto/proto.h"

typedef struct Connection Connection;

struct Connection {
        Server *server;
        int fd;
        Peer peer;
        sd_event_source *io;
        sd_event_source *partial_timer;
        bool resume_queued;                 /* in the server's resume queue */
        Connection *resume_prev, *resume_next;
        ProtoDecoder in;
        ProtoOutbuf out;
        bool closing; /* close once the queued bytes are out (after E_TOO_LARGE) */
        bool failed;  /* a message could not be queued: close at the next wakeup */
        size_t sndbuf;          /* what connection_size_sndbuf() asked for, 0 before */
        unsigned pending;       /* requests dispatched and not yet answered */
        uint64_t active_usec;   /* CLOCK_MONOTONIC of the last byte in or out */
        Connection *prev, *next;
};

struct Server {
        Daemon *daemon;
        char *path;
        int fd;
        sd_event_source *listen_io;
        Connection *connections;
        size_t n_connections;
        uint64_t next_conn_id;
        sd_event_source *resume_timer; /* accepting paused after EMFILE */
        sd_event_source *sweep_timer;  /* closes idle connections */
        sd_event_source *resume;       /* the next request already read (see the top) */
        Connection *resume_head, *resume_tail;
        uint64_t idle_timeout_usec;
        bool stopping; /* tearing down: closing connections releases nothing */

        SubidRange *subuid; /* /etc/subuid, re-read when it changes */
        size_t n_subuid;
        struct timespec subuid_mtime;
        uint64_t subuid_checked_usec;

        RateLimit refuse_log; /* "Refusing a connection" warnings */
        RateLimit partial_log; /* "sent half a request" warnings */
        uint64_t n_refused;
};

#define SUBUID_PATH "/etc/subuid"
#define SUBUID_RECHECK_USEC (5 * USEC_PER_SEC)

static bool connection_holds(const Server *s, uint64_t conn_id);

/* The resume queue: connections with a whole request read and not yet
 * handled, nothing queued to send (see the top of this file). */
static void resume_remove(Connection *c)
{
        Server *s = c->server;

        if (!c->resume_queued)
                return;
        if (c->resume_prev)
                c->resume_prev->resume_next = c->resume_next;
        else
                s->resume_head = c->resume_next;
        if (c->resume_next)
                c->resume_next->resume_prev = c->resume_prev;
        else
                s->resume_tail = c->resume_prev;
        c->resume_prev = c->resume_next = NULL;
        c->resume_queued = false;
        if (!s->resume_head)
                (void)sd_event_source_set_enabled(s->resume, SD_EVENT_OFF);
}

static int resume_append(Connection *c)
{
        Server *s = c->server;

        if (c->resume_queued)
                return 0;
        c->resume_prev = s->resume_tail;
        c->resume_next = NULL;
        if (s->resume_tail)
                s->resume_tail->resume_next = c;
        else
                s->resume_head = c;
        s->resume_tail = c;
        c->resume_queued = true;
        return sd_event_source_set_enabled(s->resume, SD_EVENT_ON);
}

static void connection_free(Connection *c)
{
        Server *s;

        if (!c)
                return;
        s = c->server;
        /* A client that went away gives up its run leases and queue places;
         * a daemon that stops keeps them for the restart. */
        c->failed = true; /* nothing more may be queued on it */
        if (!s->stopping && connection_holds(s, c->peer.conn_id)) {
                /* Its run leases and queue places end with it. */
                status_cache_invalidate(&s->daemon->status_cache);
                leases_connection_closed(s->daemon, c->peer.conn_id);
        }
        if (c->prev)
                c->prev->next = c->next;
        else
                s->connections = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_connections--;

        resume_remove(c);
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->partial_timer);
        proto_decoder_done(&c->in);
        proto_outbuf_done(&c->out);
        if (c->fd >= 0)
                close(c->fd);
        free(c->peer.groups);
        free(c);
}

static int connection_sent(Connection *c, int r)
{
        if (r == -EMSGSIZE)
                log_error("Reply to uid %u above %u bytes; closing the connection.",
                          (unsigned)c->peer.uid, GK_PROTO_MAX_REPLY);
        return r;
}

/* Queue a message; a message we cannot queue ends the connection. */
static int connection_send(Connection *c, json_t *msg)
{
        int r;

        if (!msg)
                return -ENOMEM;
        r = proto_outbuf_append_msg(&c->out, msg, GK_PROTO_MAX_REPLY);
        json_decref(msg);
        return connection_sent(c, r);
}

/* A status request, answered from the status cache (status-cache.h) in the
 * shape its arguments ask for, with the bytes connection_send() would queue
 * for the built reply, the cached part by reference. Returns 1 when it was
 * answered, 0 to answer it the usual way (arguments it does not take, or
 * the reply could not be made: request_dispatch() refuses, or builds and
 * reports). */
static int connection_send_status(Connection *c, uint32_t id, json_t *args)
{
        StatusReply reply;
        StatusShape shape;
        const char *why;
        int r;

        if (status_shape_from_args(args, &shape, &why) < 0 ||
            status_cache_reply(c->server->daemon, shape, id, &reply) < 0)
                return 0;
        /* proto_dump()'s limit and the queue's, as for any reply. */
        r = proto_outbuf_append_shared(&c->out, reply.head, reply.head_len, reply.body, reply.tail,
                                       reply.tail_len, GK_PROTO_MAX_REPLY);
        status_reply_done(&reply);
        r = connection_sent(c, r);
        return r < 0 ? r : 1;
}

/* A reply larger than the socket's send buffer would leave in pieces, one
 * wakeup (and one wait for the client to drain) each: 4 for a status of
 * 4,096 processes with the default 208 KiB. The buffer is raised to hold
 * what is queued, up to SERVER_SNDBUF_MAX (it only ever holds what was
 * queued, so an idle connection costs nothing more); root's
 * SO_SNDBUFFORCE passes net.core.wmem_max, SO_SNDBUF is the fallback. */
static void connection_size_sndbuf(Connection *c)
{
        size_t want = MIN(proto_outbuf_queued(&c->out), (size_t)SERVER_SNDBUF_MAX);
        int v;

        if (want <= c->sndbuf)
                return;
        /* The kernel doubles the value for its bookkeeping. */
        v = (int)(want / 2 + want / 4);
        if (setsockopt(c->fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof v) < 0)
                (void)setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
        c->sndbuf = want;
}

/* Choose what to wait for: write while bytes are queued, else take the next
 * request already read at the loop's next turn, else read (unless the
 * connection is closing); keep the partial-frame deadline armed only while
 * half a frame sits in the decoder. */
static int connection_update(Connection *c)
{
        uint32_t events = 0;
        int r;

        if (proto_outbuf_queued(&c->out) > 0)
                events |= EPOLLOUT;
        else if (c->closing)
                return -ECONNRESET; /* closing and everything sent */
        else if (proto_decoder_ready(&c->in)) {
                r = resume_append(c);
                if (r < 0)
                        return r;
        } else
                events |= EPOLLIN;

        r = sd_event_source_set_io_events(c->io, events);
        if (r < 0)
                return r;

        /* The deadline is for clients that stop mid-frame, not for our own
         * back-pressure: it runs only while we are reading. */
        if ((events & EPOLLIN) && proto_decoder_pending(&c->in) > 0) {
                int enabled = SD_EVENT_OFF;

                sd_event_source_get_enabled(c->partial_timer, &enabled);
                if (enabled == SD_EVENT_OFF) {
                        r = sd_event_source_set_time_relative(c->partial_timer,
                                                              SERVER_PARTIAL_FRAME_TIMEOUT_USEC);
                        if (r >= 0)
                                r = sd_event_source_set_enabled(c->partial_timer,
                                                                SD_EVENT_ONESHOT);
                }
        } else
                r = sd_event_source_set_enabled(c->partial_timer, SD_EVENT_OFF);
        return r;
}

static int connection_handle_frame(Connection *c, const char *frame, size_t len)
{
        ProtoRequest req = {};
        ProtoError error = {};
        bool deferred;
        json_t *reply;

        if (proto_parse_request(frame, len, &req, &error) < 0)
                return connection_send(c, proto_reply_from_error(&error));
        if (!status_cache_op_is_read_only(req.op))
                /* Before it runs: a status behind it in this read shows it. */
                status_cache_invalidate(&c->server->daemon->status_cache);
        else if (strcmp(req.op, "status") == 0) {
                int r = connection_send_status(c, req.id, req.args);

                if (r != 0) {
                        proto_request_done(&req);
                        return r < 0 ? r : 0;
                }
        }
        /* Counted from before the handler runs, since a handler may send
         * its reply itself (server_send) before it answers "deferred". A
         * request answered later (the lease queue, a user name, the
         * reader) is work in flight: on_sweep never closes its
         * connection as idle. */
        c->pending++;
        reply = request_dispatch(c->server->daemon, &c->peer, req.id, req.op, req.args, 0,
                                 &deferred);
        proto_request_done(&req);
        if (deferred)
                return 0;
        c->pending--;
        return connection_send(c, reply);
}

/* The next request the decoder holds, if a whole one is there: handled (its
 * reply queued, or deferred). One per turn (see the top of this file).
 * Returns < 0 to close. */
static int connection_handle_next(Connection *c)
{
        const char *frame;
        size_t len;
        int r;

        r = proto_decoder_next(&c->in, &frame, &len);
        if (r > 0)
                return connection_handle_frame(c, frame, len);
        if (r == -EMSGSIZE) {
                c->closing = true;
                return connection_send(
                        c, proto_reply_error(-1, GK_E_TOO_LARGE,
                                             "request of %u bytes is above the limit of %u "
                                             "bytes; closing the connection",
                                             proto_decoder_announced(&c->in),
                                             GK_PROTO_MAX_REQUEST));
        }
        if (r == -EBADMSG) {
                c->closing = true;
                return connection_send(c, proto_reply_error(-1, GK_E_MALFORMED,
                                                            "empty frame (length 0); closing "
                                                            "the connection"));
        }
        return r;
}

/* One read, unless a whole request is waiting already, then the next
 * request. Returns < 0 to close. */
static int connection_read(Connection *c)
{
        size_t space;
        void *buf;
        ssize_t n;
        int r;

        if (!proto_decoder_ready(&c->in)) {
                r = proto_decoder_read_space(&c->in, &buf, &space);
                if (r < 0)
                        return r;
                n = recv(c->fd, buf, space, MSG_DONTWAIT);
                if (n < 0)
                        return errno == EAGAIN || errno == EINTR ? 0 : negative_errno();
                if (n == 0)
                        return -ECONNRESET;
                proto_decoder_advance(&c->in, (size_t)n);
        }
        return connection_handle_next(c);
}

/* The server's socket callbacks change nothing a status shows but through
 * requests that are not read-only (invalidated at dispatch) and closing
 * connections that hold leases (connection_free): status-cache.h. */
static void server_extend_status_cache(Server *s)
{
        uint64_t iteration;

        if (sd_event_get_iteration(s->daemon->event, &iteration) >= 0)
                status_cache_extend(&s->daemon->status_cache, iteration);
}

/* A turn of connection `c`: read and handle a request (its socket said
 * `revents`) or, with `resume`, handle the next one already read (the
 * resume source); send what is queued; choose what to wait for next. A
 * hang-up closes the connection, requests read and not yet handled with
 * it (docs/protocol.md, "Connection lifecycle"). */
static void connection_turn(Connection *c, uint32_t revents, bool resume)
{
        int r = 0;

        server_extend_status_cache(c->server);
        if (c->failed) {
                connection_free(c);
                return;
        }
        c->active_usec = now_usec(CLOCK_MONOTONIC);
        /* The requests' log lines are written after their replies (log.h). */
        log_hold();
        if (resume)
                r = connection_handle_next(c);
        else if (revents & EPOLLIN)
                r = connection_read(c);
        if (r >= 0 && proto_outbuf_queued(&c->out) > SERVER_SNDBUF_DEFAULT)
                connection_size_sndbuf(c);
        if (r >= 0 && proto_outbuf_queued(&c->out) > 0)
                r = proto_outbuf_flush(&c->out, c->fd);
        if (r >= 0 && (revents & (EPOLLHUP | EPOLLERR)) && !(revents & EPOLLIN))
                r = -ECONNRESET;
        if (r >= 0)
                r = connection_update(c);
        if (r < 0) {
                if (r != -ECONNRESET && r != -EPIPE)
                        log_debug("Closing connection of uid %u: %s", (unsigned)c->peer.uid,
                                  strerror(-r));
                connection_free(c);
        }
        log_release();
}

static int on_connection_io(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
        connection_turn(userdata, revents, false);
        return 0;
}

/* The next request of the connection at the head of the resume queue; the
 * connection goes back at the tail (connection_update) if it has more. */
static int on_resume(sd_event_source *source, void *userdata)
{
        Server *s = userdata;
        Connection *c = s->resume_head;

        if (c) {
                resume_remove(c);
                connection_turn(c, 0, true);
        }
        return 0;
}

/* A repeated warning goes through `rl` (at most a few per minute); what it
 * holds back is counted in the daemon's log_suppressed (a metric) and said
 * with the next one that goes out. */
#define server_log_limited(s, rl, fmt, ...)                                                    \
        do {                                                                                   \
                uint64_t _n;                                                                   \
                if (ratelimit_below((rl), now_usec(CLOCK_MONOTONIC), &_n)) {                   \
                        if (_n > 0)                                                            \
                                log_warning(fmt " (%" PRIu64 " more like it suppressed)",      \
                                            __VA_ARGS__, _n);                                  \
                        else                                                                   \
                                log_warning(fmt, __VA_ARGS__);                                 \
                } else                                                                         \
                        (s)->daemon->log_suppressed++;                                         \
        } while (0)

static int on_partial_timeout(sd_event_source *source, uint64_t usec, void *userdata)
{
        Connection *c = userdata;
        Server *s = c->server;

        server_log_limited(s, &s->partial_log,
                           "uid %u (pid %d) sent half a request and nothing more for %us; "
                           "closing it.",
                           (unsigned)c->peer.uid, (int)c->peer.pid,
                           (unsigned)(SERVER_PARTIAL_FRAME_TIMEOUT_USEC / USEC_PER_SEC));
        connection_free(c);
        return 0;
}

/* Re-read /etc/subuid when its mtime changed (checked every few seconds at
 * most). A file that cannot be read leaves the last ranges in place. */
static void subuid_refresh(Server *s)
{
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        _cleanup_free_ char *text = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        SubidRange *ranges = NULL;
        size_t n = 0, len = 0;
        struct stat st;

        if (s->subuid_checked_usec && now - s->subuid_checked_usec < SUBUID_RECHECK_USEC)
                return;
        s->subuid_checked_usec = now;
        if (stat(SUBUID_PATH, &st) < 0) {
                if (errno == ENOENT) {
                        free(s->subuid);
                        s->subuid = NULL;
                        s->n_subuid = 0;
                }
                return;
        }
        if (st.st_mtim.tv_sec == s->subuid_mtime.tv_sec &&
            st.st_mtim.tv_nsec == s->subuid_mtime.tv_nsec)
                return;
        f = fopen(SUBUID_PATH, "re");
        if (!f)
                return;
        text = malloc(4 * 1024 * 1024);
        if (!text)
                return;
        len = fread(text, 1, 4 * 1024 * 1024 - 1, f);
        if (subid_parse(text, len, &ranges, &n) < 0)
                return;
        free(s->subuid);
        s->subuid = ranges;
        s->n_subuid = n;
        s->subuid_mtime = st.st_mtim;
        /* Owners named by login name are resolved by the resolver thread
         * (person_of() never asks NSS on the loop). */
        if (daemon_resolver_update(s->daemon) < 0)
                log_warning("Cannot add the owners of %s to the name cache; their ranges "
                            "count apart from them until it works.",
                            SUBUID_PATH);
}

size_t server_subuid_owner_names(const Server *s, const char **names, size_t max)
{
        size_t n = 0;

        for (size_t i = 0; s && i < s->n_subuid && n < max; i++) {
                uint64_t v;

                if (parse_uint64(s->subuid[i].owner, &v) == 0)
                        continue; /* by number: no lookup */
                names[n++] = s->subuid[i].owner;
        }
        return n;
}

static int subuid_owner_lookup(const char *name, uint32_t *ret_uid, void *userdata)
{
        const Server *s = userdata;

        return resolver_lookup(s->daemon->resolver, RESOLVER_USER, name, ret_uid);
}

/* Who is behind `uid` for the per-person cap: the uid itself, or for a uid
 * of a subuid range the range's owner, named by uid or by login name (the
 * name from the resolver's cache); a range whose owner has no answer yet
 * counts as one person of its own (subid_person). */
static uint64_t person_of(const Server *s, uid_t uid)
{
        return subid_person(s->subuid, s->n_subuid, uid, subuid_owner_lookup, (void *)s);
}

static size_t connections_of_person(const Server *s, uint64_t person)
{
        size_t n = 0;

        for (const Connection *c = s->connections; c; c = c->next)
                n += c->peer.person == person;
        return n;
}

/* Leases of `uid`: any at all (the reserve is open to lease holders), and run
 * leases that wait for their client to re-attach. */
static void leases_of_uid(const Server *s, uid_t uid, size_t *ret_any, size_t *ret_detached)
{
        size_t any = 0, detached = 0;

        for (const Lease *l = s->daemon->leases.leases; l; l = l->next) {
                if (l->rec.uid != uid)
                        continue;
                any++;
                detached += l->rec.kind == LEASE_RUN && l->conn_id == 0;
        }
        *ret_any = any;
        *ret_detached = detached;
}

/* Whether connection `conn_id` holds something that ends with it: a run
 * lease attached, or a request waiting in the queue. */
static bool connection_holds(const Server *s, uint64_t conn_id)
{
        for (const Lease *l = s->daemon->leases.leases; l; l = l->next)
                if (l->conn_id == conn_id)
                        return true;
        for (const QueueEntry *e = s->daemon->leases.queue; e; e = e->next)
                if (e->conn_id == conn_id)
                        return true;
        return false;
}

/* Tell a client why we let it go, without blocking. The client reads this
 * reply even when its own request could not be sent any more. */
static void refuse(int fd, int code, const char *message)
{
        _cleanup_free_ char *json = NULL, *frame = NULL;
        size_t json_len, frame_len;
        json_t *msg;

        msg = proto_reply_error(-1, code, "%s", message);
        if (msg && proto_dump(msg, GK_PROTO_MAX_REPLY, &json, &json_len) >= 0 &&
            proto_encode_frame(json, json_len, GK_PROTO_MAX_REPLY, &frame, &frame_len) >= 0)
                (void)!send(fd, frame, frame_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        json_decref(msg);
}

/* The peer's supplementary groups as the kernel saw them at connect time,
 * all of them: a buffer too small gets ERANGE with the size needed, and we
 * retry with that (the groups can change between the two calls, hence the
 * loop). Returns 0 or -errno; on failure the peer must not be served. */
static int read_peer_groups(int fd, Peer *peer)
{
        socklen_t len = 64 * sizeof(gid_t);

        for (int attempt = 0; attempt < 8; attempt++) {
                _cleanup_free_ gid_t *groups = malloc(len ? len : sizeof(gid_t));
                socklen_t got = len;

                if (!groups)
                        return -ENOMEM;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &got) < 0) {
                        if (errno != ERANGE)
                                return negative_errno();
                        if (got <= len || got > PEER_MAX_GROUPS * sizeof(gid_t))
                                return -E2BIG;
                        len = got;
                        continue;
                }
                peer->n_groups = got / sizeof(gid_t);
                peer->groups = TAKE_PTR(groups);
                return 0;
        }
        return -ERANGE;
}

/* Admin rights are decided once per connection, from the resolver's last
 * answer for ADMIN_GROUP; no answer yet means no rights (fail closed). */
static bool peer_admin(Server *s, const Peer *peer)
{
        uint32_t gid;

        if (peer->uid == 0)
                return true;
        if (resolver_lookup(s->daemon->resolver, RESOLVER_GROUP, ADMIN_GROUP, &gid) < 0)
                return false;
        return peer_in_group(peer, gid);
}

static int connection_new(Server *s, int fd, const struct ucred *cred)
{
        Connection *c;
        int r;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->server = s;
        c->fd = fd;
        c->peer = (Peer){.pid = cred->pid, .uid = cred->uid, .gid = cred->gid,
                         .conn_id = ++s->next_conn_id};
        r = read_peer_groups(fd, &c->peer);
        if (r < 0) {
                free(c);
                log_error_errno(r, "Cannot read the groups of uid %u; refusing it",
                                (unsigned)cred->uid);
                refuse(fd, GK_E_INTERNAL,
                       "gpukeeperd cannot read your supplementary groups and does not serve "
                       "you without them (see its log)");
                return -EBUSY;
        }
        c->peer.admin = peer_admin(s, &c->peer);
        subuid_refresh(s);
        c->peer.person = person_of(s, cred->uid);
        {
                /* Queue the peer's name for the resolver thread now (no
                 * wait), so replies can name it without asking NSS. */
                char name[RESOLVER_NAME_MAX];

                (void)resolver_user_name(s->daemon->resolver, cred->uid, 0, name, sizeof name);
        }
        {
                bool privileged = c->peer.admin; /* root or an admin */
                size_t leases, detached, total_cap, person_cap;
                char why[160];

                leases_of_uid(s, cred->uid, &leases, &detached);
                total_cap = privileged || leases > 0
                                    ? SERVER_MAX_CONNECTIONS
                                    : SERVER_MAX_CONNECTIONS - SERVER_RESERVED_CONNECTIONS;
                person_cap = privileged ? SERVER_MAX_CONNECTIONS
                                        : SERVER_MAX_CONNECTIONS_PER_PERSON + detached;
                why[0] = '\0';
                if (s->n_connections >= total_cap)
                        snprintf(why, sizeof why,
                                 "gpukeeperd is busy: %zu connections are open; retry in a "
                                 "moment",
                                 s->n_connections);
                else if (connections_of_person(s, c->peer.person) >= person_cap)
                        snprintf(why, sizeof why,
                                 "gpukeeperd is busy for you: you have %zu connections open "
                                 "(the limit is %zu); close some and retry",
                                 connections_of_person(s, c->peer.person), person_cap);
                if (why[0]) {
                        s->n_refused++;
                        server_log_limited(s, &s->refuse_log,
                                           "Refusing a connection of uid %u: %s.",
                                           (unsigned)cred->uid, why);
                        refuse(fd, GK_E_BUSY, why);
                        free(c->peer.groups);
                        free(c);
                        return -EBUSY;
                }
        }
        c->active_usec = now_usec(CLOCK_MONOTONIC);
        proto_decoder_init(&c->in, GK_PROTO_MAX_REQUEST);
        proto_outbuf_init(&c->out, PROTO_OUTBUF_MAX_DEFAULT);

        c->next = s->connections;
        if (c->next)
                c->next->prev = c;
        s->connections = c;
        s->n_connections++;

        r = sd_event_add_io(s->daemon->event, &c->io, fd, EPOLLIN, on_connection_io, c);
        if (r >= 0)
                r = sd_event_add_time_relative(s->daemon->event, &c->partial_timer,
                                               CLOCK_MONOTONIC, SERVER_PARTIAL_FRAME_TIMEOUT_USEC,
                                               USEC_PER_SEC / 10, on_partial_timeout, c);
        if (r >= 0)
                r = sd_event_source_set_enabled(c->partial_timer, SD_EVENT_OFF);
        if (r < 0) {
                c->fd = -1; /* the caller closes it */
                connection_free(c);
                return r;
        }
        return 0;
}

static int on_sweep(sd_event_source *source, uint64_t usec, void *userdata)
{
        Server *s = userdata;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        Connection *next;

        for (Connection *c = s->connections; c; c = next) {
                next = c->next;
                if (c->failed || proto_outbuf_queued(&c->out) > 0 ||
                    proto_decoder_pending(&c->in) > 0 ||
                    now - c->active_usec < s->idle_timeout_usec || c->pending > 0 ||
                    connection_holds(s, c->peer.conn_id))
                        continue;
                log_debug("Closing the idle connection of uid %u (pid %d).",
                          (unsigned)c->peer.uid, (int)c->peer.pid);
                connection_free(c);
        }
        (void)sd_event_source_set_time_relative(source, MAX(s->idle_timeout_usec / 4,
                                                            (uint64_t)(USEC_PER_MSEC * 50)));
        return 0;
}

void server_set_idle_timeout(Server *s, uint64_t usec)
{
        s->idle_timeout_usec = usec;
        (void)sd_event_source_set_time_relative(s->sweep_timer,
                                                MAX(usec / 4, (uint64_t)(USEC_PER_MSEC * 50)));
}

uint64_t server_refused_total(const Server *s)
{
        return s ? s->n_refused : 0;
}

static int on_resume_accepting(sd_event_source *source, uint64_t usec, void *userdata)
{
        Server *s = userdata;

        return sd_event_source_set_enabled(s->listen_io, SD_EVENT_ON);
}

/* Out of file descriptors: the pending connection stays in the backlog and
 * the listening socket stays readable, so stop watching it for a second
 * rather than spin (and log) until a descriptor is free. */
static void pause_accepting(Server *s)
{
        int r;

        log_warning("Out of file descriptors with %zu connections; pausing accept for 1 s.",
                    s->n_connections);
        r = sd_event_source_set_enabled(s->listen_io, SD_EVENT_OFF);
        if (r >= 0 && !s->resume_timer)
                r = sd_event_add_time_relative(s->daemon->event, &s->resume_timer,
                                               CLOCK_MONOTONIC, USEC_PER_SEC, USEC_PER_MSEC * 100,
                                               on_resume_accepting, s);
        else if (r >= 0) {
                r = sd_event_source_set_time_relative(s->resume_timer, USEC_PER_SEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(s->resume_timer, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_error_errno(r, "Cannot pause accepting");
}

static int on_listen(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
        Server *s = userdata;

        server_extend_status_cache(s);
        /* Bounded, so a connection storm cannot keep the loop here forever. */
        for (int i = 0; i < 64; i++) {
                _cleanup_close_ int cfd = -1;
                struct ucred cred;
                socklen_t len = sizeof cred;
                int r;

                cfd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EMFILE || errno == ENFILE)
                                pause_accepting(s);
                        else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                log_warning_errno(errno, "accept4() failed");
                        return 0;
                }
                if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                        log_warning_errno(errno, "SO_PEERCRED failed; dropping the connection");
                        continue;
                }
                r = connection_new(s, cfd, &cred);
                if (r == -EBUSY)
                        continue; /* refused and logged there */
                if (r < 0) {
                        log_error_errno(r, "Cannot set up a connection");
                        refuse(cfd, GK_E_INTERNAL,
                               "gpukeeperd could not set up this connection (see its log)");
                        continue;
                }
                TAKE_FD(cfd);
        }
        return 0;
}

/* Make room for our socket: a stale socket from an earlier run is removed;
 * a live one (another daemon answers) or any other file is refused. */
static int prepare_socket_path(const struct sockaddr_un *sa, socklen_t salen)
{
        _cleanup_close_ int probe = -1;
        struct stat st;

        if (lstat(sa->sun_path, &st) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (!S_ISSOCK(st.st_mode))
                return log_error_errno(-EEXIST, "%s exists and is not a socket; not touching it",
                                       sa->sun_path);
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0)
                return negative_errno();
        if (connect(probe, (const struct sockaddr *)sa, salen) == 0)
                return log_error_errno(-EADDRINUSE, "Another gpukeeperd is serving %s",
                                       sa->sun_path);
        if (unlink(sa->sun_path) < 0 && errno != ENOENT)
                return log_error_errno(errno, "Cannot remove the stale socket %s", sa->sun_path);
        return 0;
}

int server_new(Daemon *d, const char *socket_path, Server **ret)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_free_ char *dir = NULL;
        socklen_t salen;
        mode_t old_umask;
        Server *s;
        char *slash;
        int r;

        if (strlen(socket_path) >= sizeof sa.sun_path)
                return log_error_errno(-ENAMETOOLONG, "Socket path %s is too long", socket_path);
        strcpy(sa.sun_path, socket_path);
        salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(socket_path) + 1);

        dir = strdup(socket_path);
        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = '\0';
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        return log_error_errno(errno, "Cannot create %s", dir);
        }

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->daemon = d;
        s->fd = -1;
        s->refuse_log = RATELIMIT_INIT(60 * USEC_PER_SEC, 5);
        s->partial_log = RATELIMIT_INIT(60 * USEC_PER_SEC, 5);
        s->path = strdup(socket_path);
        if (!s->path) {
                r = -ENOMEM;
                goto fail;
        }

        r = prepare_socket_path(&sa, salen);
        if (r < 0)
                goto fail;
        s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->fd < 0) {
                r = log_error_errno(errno, "socket() failed");
                goto fail;
        }
        /* Everyone may connect (mode 0666); who they are comes from
         * SO_PEERCRED. The mode is set by bind() itself through the umask, not
         * by a later chmod() that a swapped-in symlink could redirect. */
        old_umask = umask(0111);
        r = bind(s->fd, (const struct sockaddr *)&sa, salen);
        umask(old_umask);
        if (r < 0) {
                r = log_error_errno(errno, "Cannot bind %s", socket_path);
                goto fail;
        }
        if (listen(s->fd, SOMAXCONN) < 0) {
                r = log_error_errno(errno, "listen() failed");
                goto fail;
        }
        r = sd_event_add_io(d->event, &s->listen_io, s->fd, EPOLLIN, on_listen, s);
        if (r < 0) {
                log_error_errno(r, "Cannot watch the socket");
                goto fail;
        }
        s->idle_timeout_usec = SERVER_IDLE_TIMEOUT_USEC;
        r = sd_event_add_time_relative(d->event, &s->sweep_timer, CLOCK_MONOTONIC,
                                       SERVER_IDLE_TIMEOUT_USEC / 4, USEC_PER_SEC / 10, on_sweep,
                                       s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->sweep_timer, SD_EVENT_ON);
        if (r < 0) {
                log_error_errno(r, "Cannot arm the idle-connection timer");
                goto fail;
        }
        /* Below every other source: a pipelined request waits for whatever
         * else is pending (see the top of this file). Off while the resume
         * queue is empty. */
        r = sd_event_add_defer(d->event, &s->resume, on_resume, s);
        if (r >= 0)
                r = sd_event_source_set_priority(s->resume, SERVER_RESUME_PRIORITY);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->resume, SD_EVENT_OFF);
        if (r < 0) {
                log_error_errno(r, "Cannot add the request queue's event source");
                goto fail;
        }
        /* Read /etc/subuid now, so that the resolver has the owners' names
         * before the first connection (the daemon refreshes its names once
         * this returns, see daemon_new). */
        subuid_refresh(s);
        *ret = s;
        return 0;

fail:
        server_free(s);
        return r;
}

static Connection *server_connection(Server *s, uint64_t conn_id)
{
        Connection *c = s->connections;

        while (c && c->peer.conn_id != conn_id)
                c = c->next;
        return c && !c->failed ? c : NULL;
}

const Peer *server_peer(Server *s, uint64_t conn_id)
{
        Connection *c = s ? server_connection(s, conn_id) : NULL;

        return c ? &c->peer : NULL;
}

/* After a message was queued on `c` (r: how that went), as server_send()
 * says. */
static int server_sent(Connection *c, int r)
{
        if (r >= 0)
                r = proto_outbuf_flush(&c->out, c->fd);
        if (r >= 0)
                r = connection_update(c);
        if (r < 0) {
                /* Let the event loop close it: EPOLLOUT fires at once. */
                c->failed = true;
                (void)sd_event_source_set_io_events(c->io, EPOLLOUT);
        }
        return r < 0 ? r : 0;
}

int server_send(Server *s, uint64_t conn_id, json_t *msg)
{
        Connection *c = server_connection(s, conn_id);

        if (!c) {
                json_decref(msg);
                return -ENOENT;
        }
        if (c->pending > 0 && !json_object_get(msg, "event"))
                c->pending--; /* the reply to a request answered later */
        return server_sent(c, connection_send(c, msg));
}

int server_send_text(Server *s, uint64_t conn_id, const char *json, size_t len)
{
        Connection *c = server_connection(s, conn_id);

        if (!c)
                return -ENOENT;
        if (c->pending > 0)
                c->pending--; /* always a reply */
        /* proto_dump()'s limit and the queue's, as for a built reply. */
        return server_sent(c, connection_sent(c, proto_outbuf_append(&c->out, json, len,
                                                                     GK_PROTO_MAX_REPLY)));
}

void server_free(Server *s)
{
        if (!s)
                return;
        s->stopping = true;
        while (s->connections)
                connection_free(s->connections);
        sd_event_source_disable_unref(s->listen_io);
        sd_event_source_disable_unref(s->resume_timer);
        sd_event_source_disable_unref(s->sweep_timer);
        sd_event_source_disable_unref(s->resume);
        free(s->subuid);
        if (s->fd >= 0) {
                close(s->fd);
                unlink(s->path);
        }
        free(s->path);
        free(s);
}
