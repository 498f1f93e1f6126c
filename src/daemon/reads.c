/* Requests answered by the read queue; see reads.h. */
#include "daemon/reads.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "basic/macro.h"
#include "daemon/daemon.h"
#include "daemon/request.h"
#include "daemon/server.h"
#include "proto/json-text.h"
#include "store/read-queue.h"

struct RequestRead {
        const ReadWork *work;
        void *state;
        uint64_t conn_id;
        uint32_t id;    /* the request's */
        const char *op; /* the request table's own string */
        uid_t uid;
        uint64_t person;
        json_t *result;
        RequestRead *next; /* in the line */
};

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

static void reply(Daemon *d, RequestRead *x, int r)
{
        json_t *msg;

        if (r >= 0 && x->work->finish)
                r = x->work->finish(d, x->result);
        msg = request_reply(x->id, x->op, x->uid, MIN(r, 0), TAKE_PTR(x->result), NULL);
        if (msg)
                (void)server_send(d->server, x->conn_id, msg); /* -ENOENT: it has gone */
}

static void pump_line(Daemon *d);

static void request_read_done(void *state, int r, void *userdata)
{
        RequestRead *x = state;
        Daemon *d = userdata;

        if (r == -ECANCELED) { /* the daemon stops */
                request_read_free(x);
                return;
        }
        reply(d, x, r);
        request_read_free(x);
        pump_line(d);
}

static int submit(Daemon *d, RequestRead *x)
{
        return read_queue_submit(d->reads, x->person, request_read_run, request_read_done, x, d);
}

/* Hand the queue, in order, the requests waiting in line whose person has
 * room there now; drop those whose connection has gone. */
static void pump_line(Daemon *d)
{
        ReadLine *l = &d->read_line;
        RequestRead **p = &l->head, *x;
        bool full = false;

        l->tail = NULL;
        while ((x = *p)) {
                int r = !server_peer(d->server, x->conn_id) ? -ENOENT
                        : full                              ? -ENOBUFS
                                                            : submit(d, x);

                full = full || r == -ENOBUFS; /* the next answer pumps again */
                if (r == -EBUSY || r == -ENOBUFS) { /* stays: no room for it yet */
                        l->tail = x;
                        p = &x->next;
                        continue;
                }
                *p = x->next;
                l->n--;
                if (r == -ENOMEM)
                        reply(d, x, r);
                if (r < 0)
                        request_read_free(x);
        }
}

void reads_line_free(ReadLine *l)
{
        while (l->head) {
                RequestRead *x = l->head;

                l->head = x->next;
                request_read_free(x);
        }
        l->tail = NULL;
        l->n = 0;
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
        ReadLine *l = &d->read_line;
        RequestRead *x = calloc(1, sizeof *x);
        size_t waiting = 0;
        int r = -EBUSY;

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
                .person = call->peer->person,
        };
        for (RequestRead *y = l->head; y; y = y->next)
                waiting += y->person == x->person;
        /* Behind the person's own in the line, or straight to the queue. */
        if (waiting == 0)
                r = submit(d, x);
        if (r >= 0)
                return REQUEST_DEFERRED;
        if (r == -ENOMEM) {
                request_read_free(x);
                return r;
        }
        if (waiting >= READS_WAITING_PER_PERSON || l->n >= READS_WAITING_MAX) {
                request_read_free(x);
                if (waiting >= READS_WAITING_PER_PERSON)
                        return request_error(ret_error, GK_E_BUSY,
                                             "%d of your reports and audit queries are being "
                                             "answered and %d more wait; wait for them and try "
                                             "again",
                                             READ_QUEUE_PER_OWNER, READS_WAITING_PER_PERSON);
                return request_error(ret_error, GK_E_BUSY,
                                     "%d reports and audit queries wait to be answered already; "
                                     "try again in a moment",
                                     READS_WAITING_MAX);
        }
        if (l->tail)
                l->tail->next = x;
        else
                l->head = x;
        l->tail = x;
        l->n++;
        return REQUEST_DEFERRED;
}
