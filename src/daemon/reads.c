/* Requests answered by the read queue; see reads.h. */
#include "daemon/reads.h"

#include <errno.h>
#include <stdlib.h>

#include "basic/macro.h"
#include "daemon/daemon.h"
#include "daemon/request.h"
#include "daemon/server.h"
#include "proto/json-text.h"
#include "store/read-queue.h"

typedef struct RequestRead {
        const ReadWork *work;
        void *state;
        uint64_t conn_id;
        uint32_t id;    /* the request's */
        const char *op; /* the request table's own string */
        uid_t uid;
        json_t *result;
} RequestRead;

static void request_read_free(RequestRead *x)
{
        json_decref(x->result);
        free(x->state);
        free(x);
}

static int request_read_run(Store *reader, void *state)
{
        RequestRead *x = state;

        return x->work->run(reader, x->state, &x->result);
}

static void request_read_done(void *state, int r, void *userdata)
{
        RequestRead *x = state;
        Daemon *d = userdata;
        json_t *reply;

        if (r != -ECANCELED) {
                if (r >= 0 && x->work->finish)
                        r = x->work->finish(d, x->result);
                reply = request_reply(x->id, x->op, x->uid, MIN(r, 0), TAKE_PTR(x->result), NULL);
                if (reply)
                        (void)server_send(d->server, x->conn_id, reply); /* -ENOENT: gone */
        }
        request_read_free(x);
}

int reads_name_users(Daemon *d, json_t *array)
{
        json_t *x;
        size_t i;

        json_array_foreach(array, i, x) {
                json_int_t uid = json_integer_value(json_object_get(x, "uid"));

                if (uid >= 0 &&
                    json_object_set_new(x, "user", json_text(daemon_user_name(d, (uid_t)uid))) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int reads_submit(Daemon *d, const RequestCall *call, const ReadWork *work, void *state,
                 gk_call_error *ret_error)
{
        RequestRead *x = calloc(1, sizeof *x);
        int r;

        if (!x) {
                free(state);
                return -ENOMEM;
        }
        *x = (RequestRead){
                .work = work,
                .state = state,
                .conn_id = call->peer->conn_id,
                .id = call->id,
                .op = call->op,
                .uid = call->peer->uid,
        };
        r = read_queue_submit(d->reads, call->peer->person, request_read_run, request_read_done,
                              x, d);
        if (r >= 0)
                return REQUEST_DEFERRED;
        request_read_free(x);
        if (r == -EBUSY)
                return request_error(ret_error, GK_E_BUSY,
                                     "%d of your reports and audit queries are being answered "
                                     "(at most %d at once); wait for them and try again",
                                     READ_QUEUE_PER_OWNER, READ_QUEUE_PER_OWNER);
        if (r == -ENOBUFS)
                return request_error(ret_error, GK_E_BUSY,
                                     "%d reports and audit queries are being answered (at most "
                                     "%d at once); try again in a moment",
                                     READ_QUEUE_MAX, READ_QUEUE_MAX);
        return r;
}
