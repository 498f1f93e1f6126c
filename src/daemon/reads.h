/* Requests answered by the store's read queue (store/read-queue.h):
 * `report` and `audit.list`, whose cost grows with history.
 *
 * The handler checks the request on the loop (arguments, rights, user
 * names) and hands reads_submit() a ReadWork and its state: the query runs
 * in the queue's thread, the loop adds what only it knows (user names) and
 * sends the reply, after any replies to later requests on the connection.
 * The owner is the caller's person (Peer.person): two at most in the queue;
 * the person's next ones wait in the daemon's line, in order, and go to the
 * queue as the person's earlier ones are answered (so each person's
 * requests take their turn among everyone's). A person has at most
 * READS_WAITING_PER_PERSON in the line and the line holds READS_WAITING_MAX;
 * beyond that a request is answered E_BUSY at once. A request whose
 * connection has gone is dropped from the line, its reply if it was read
 * already. */
#pragma once

#include <gpukeeper/client.h>
#include <jansson.h>
#include <stddef.h>

#include "store/store.h"

typedef struct Daemon Daemon;
typedef struct RequestCall RequestCall;

#define READS_WAITING_PER_PERSON 6
#define READS_WAITING_MAX 64

typedef struct RequestRead RequestRead;
typedef struct ReadLine {
        RequestRead *head, *tail;
        size_t n;
} ReadLine;

typedef struct ReadWork {
        /* In the queue's thread, inside one read transaction on `reader`:
         * the result in *ret_result, or -errno. Touches nothing of the
         * Daemon. */
        int (*run)(Store *reader, const void *state, json_t **ret_result);
        /* On the event loop, with run's result: what only the loop can add
         * (user names, from the resolver's cache). 0 or -errno. May be
         * NULL. */
        int (*finish)(Daemon *d, json_t *result);
} ReadWork;

/* Set "user" of every object of `array` whose "uid" is >= 0 to that
 * uid's login name (null when it has none yet), for finish functions.
 * 0 or -ENOMEM. */
int reads_name_users(Daemon *d, json_t *array);

/* Queue `work` for request `call` (or put it in line); `state` (malloc'd;
 * freed once the reply is out or dropped) moves in, also on failure.
 * Returns REQUEST_DEFERRED, E_BUSY with *ret_error set, or -ENOMEM. */
int reads_submit(Daemon *d, const RequestCall *call, const ReadWork *work, void *state,
                 gk_call_error *ret_error);

/* Drop every request in line, unanswered (the daemon stops). */
void reads_line_free(ReadLine *l);
