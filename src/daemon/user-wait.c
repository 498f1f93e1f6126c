/* Requests waiting for a user name's uid; see user-wait.h. */
#include "daemon/user-wait.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "basic/log.h"
#include "basic/macro.h"
#include "daemon/daemon.h"
#include "daemon/request.h"
#include "daemon/resolver.h"
#include "daemon/server.h"
#include "proto/proto.h"

struct UserWait {
        uint64_t conn_id;
        uint32_t id;    /* the request's */
        uid_t uid;      /* the caller's */
        const char *op; /* the request table's own string */
        json_t *args;   /* a reference; NULL when the request had none */
        char name[RESOLVER_NAME_MAX];
        uint64_t since_usec; /* CLOCK_MONOTONIC when it began to wait */
};

static void user_wait_clear(UserWait *w)
{
        json_decref(w->args);
        w->args = NULL;
}

/* Append `u` to the table (its reference to the arguments moves in). */
static int waits_push(UserWaits *w, const UserWait *u)
{
        UserWait *grown = reallocarray(w->waits, w->n + 1, sizeof *grown);

        if (!grown)
                return -ENOMEM;
        w->waits = grown;
        w->waits[w->n++] = *u;
        return 0;
}

/* Every waiting request once: dispatched again when its name has an answer,
 * refused when its time is up, kept otherwise. */
static int on_user_wait_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
        Daemon *d = userdata;
        UserWaits *w = &d->user_waits;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        _cleanup_free_ UserWait *batch = TAKE_PTR(w->waits);
        size_t n = w->n;

        (void)usec;
        w->n = 0;
        for (size_t i = 0; i < n; i++) {
                UserWait *u = &batch[i];
                const Peer *peer = server_peer(d->server, u->conn_id);
                json_t *reply = NULL;
                bool deferred = false;
                uint32_t uid;

                if (!peer)
                        ; /* the caller has gone */
                else if (resolver_user_uid(d->resolver, u->name, 0, u->since_usec, &uid) !=
                         -EAGAIN) {
                        /* The handler runs again from the start; a wait it
                         * asks for keeps this one's start. */
                        reply = request_dispatch(d, peer, u->id, u->op, u->args, u->since_usec,
                                                 &deferred);
                } else if (now - u->since_usec >= w->timeout_usec)
                        reply = proto_reply_error(
                                u->id, GK_E_UNAVAILABLE,
                                "the user database has not answered for user '%s' within "
                                "%g s; try again later",
                                u->name, (double)w->timeout_usec / USEC_PER_SEC);
                else if (waits_push(w, u) >= 0)
                        continue; /* still waiting: back into the table */
                else
                        reply = proto_reply_error(u->id, GK_E_INTERNAL, "out of memory");
                if (reply)
                        (void)server_send(d->server, u->conn_id, reply);
                user_wait_clear(u);
        }
        if (w->n > 0) {
                (void)sd_event_source_set_time_relative(source, USER_WAIT_POLL_USEC);
                (void)sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
        }
        return 0;
}

static int arm_timer(Daemon *d)
{
        UserWaits *w = &d->user_waits;
        int enabled = SD_EVENT_OFF;

        if (!w->timer)
                return sd_event_add_time_relative(d->event, &w->timer, CLOCK_MONOTONIC,
                                                  USER_WAIT_POLL_USEC, 0, on_user_wait_timer, d);
        if (sd_event_source_get_enabled(w->timer, &enabled) >= 0 && enabled != SD_EVENT_OFF)
                return 0; /* it fires soon anyway */
        (void)sd_event_source_set_time_relative(w->timer, USER_WAIT_POLL_USEC);
        return sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
}

int user_wait_add(Daemon *d, const RequestCall *call, const char *name,
                  gk_call_error *ret_error)
{
        UserWaits *w = &d->user_waits;
        UserWait u = {
                .conn_id = call->peer->conn_id,
                .id = call->id,
                .uid = call->peer->uid,
                .op = call->op,
                .since_usec = call->since_usec ? call->since_usec : now_usec(CLOCK_MONOTONIC),
        };
        size_t mine = 0;
        int r;

        for (size_t i = 0; i < w->n; i++)
                mine += w->waits[i].uid == call->peer->uid;
        if (w->n >= USER_WAIT_MAX || mine >= USER_WAIT_PER_UID)
                return request_error(ret_error, GK_E_BUSY,
                                     "too many requests wait for the user database already; "
                                     "try again in a moment");
        r = arm_timer(d);
        if (r < 0)
                return r;
        string_copy(u.name, sizeof u.name, name);
        u.args = json_incref(call->args);
        r = waits_push(w, &u);
        if (r < 0)
                user_wait_clear(&u);
        return r < 0 ? r : REQUEST_DEFERRED;
}

void user_waits_done(UserWaits *w)
{
        for (size_t i = 0; i < w->n; i++)
                user_wait_clear(&w->waits[i]);
        free(w->waits);
        w->waits = NULL;
        w->n = 0;
        w->timer = sd_event_source_disable_unref(w->timer);
}
