/* Places of waiting `gpukeeper run` requests, kept across daemon restarts.
 *
 * The queue itself lives in memory (its requests belong to connections), but
 * a restart must not send every waiting `run` to the back (issue 10 item
 * 17): each run request's place (its request id, the FIFO order) is written
 * here with the client's pid and start time, and when that same client asks
 * again after a restart it gets its old place back. A place is removed when
 * the request leaves the queue. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "store/store.h"

typedef struct StoredQueuePlace {
        uint64_t request_id;
        uid_t uid;
        pid_t pid;
        uint64_t pid_start_time;
        uint64_t since_usec; /* CLOCK_REALTIME when it first queued; 0: not known */
} StoredQueuePlace;

/* Record / forget the place of run request `request_id`. Returns 0 or -errno. */
int store_queue_place_add(Store *s, const StoredQueuePlace *p);
int store_queue_place_remove(Store *s, uint64_t request_id);

/* Every recorded place, lowest request id first (malloc'd array). */
int store_queue_places_load(Store *s, StoredQueuePlace **ret, size_t *ret_n);
