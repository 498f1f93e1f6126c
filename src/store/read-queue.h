/* Queries whose cost grows with history, in a thread of their own.
 *
 * A report sums every lease of its period and an audit query of a non-admin
 * walks every record of the period to find the caller's; the dashboard's
 * usage and history read as much. Nothing deletes a lease, so with a year of
 * `gpukeeper run` in loops each is a million rows and a quarter of a second,
 * and anyone can ask for them (the socket, the HTTP API on localhost). On the
 * daemon's event loop that time is every other client's.
 *
 * A ReadQueue runs such queries one at a time, in order, in one thread, on a
 * connection of its own that can only read (store_open_reader), each inside
 * one read transaction, so several statements see one snapshot that holds
 * every commit made before the query began. Its answer comes back on the
 * event loop: `done` is called there. Each job has an owner (a person, or
 * the HTTP listener); an owner has at most READ_QUEUE_PER_OWNER jobs queued
 * or running, and there are at most READ_QUEUE_MAX, so one caller cannot
 * make everyone else's answers wait long.
 *
 * A read transaction pins the WAL (no checkpoint copies past what it sees,
 * and the WAL cannot start over meanwhile): before each job the thread
 * keeps out of one while the WAL holds a backlog no checkpoint has copied
 * (store_wal_backlog), for a second at most, so reads back to back cannot
 * let the WAL grow without bound under steady commits. */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

#include "store/store.h"

#define READ_QUEUE_MAX 64
#define READ_QUEUE_PER_OWNER 2

typedef struct ReadQueue ReadQueue;

/* In the queue's thread, inside one read transaction on `reader`: the query,
 * its answer kept in `state`. Returns 0 or -errno. Touches nothing but
 * `reader` and `state`. */
typedef int (*ReadRunFunc)(Store *reader, void *state);
/* On the event loop, exactly once per job: `r` is run's answer, or the
 * store's error when the transaction could not begin, or -ECANCELED when
 * the queue is freed before the job ran or was answered (then `done` must
 * only free `state`). `done` owns `state` from then on. */
typedef void (*ReadDoneFunc)(void *state, int r, void *userdata);

/* Open a reader on `store` and start the thread; answers are delivered on
 * `event`. Returns 0 or -errno. */
int read_queue_new(Store *store, sd_event *event, ReadQueue **ret);

/* Queue a job of `owner`. Returns 0, -EBUSY when `owner` has
 * READ_QUEUE_PER_OWNER jobs already, -ENOBUFS when the queue holds
 * READ_QUEUE_MAX, or -ENOMEM; on failure `done` is not called and `state`
 * stays the caller's. */
int read_queue_submit(ReadQueue *q, uint64_t owner, ReadRunFunc run, ReadDoneFunc done,
                      void *state, void *userdata);

/* Stop the thread (interrupting the query it runs: sqlite3_interrupt), call
 * `done` with -ECANCELED for every job not answered yet, close the reader.
 * NULL is fine. Before the store is closed. */
void read_queue_free(ReadQueue *q);
