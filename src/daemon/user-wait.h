/* Requests that name a user by login name (report --user, audit --user,
 * limits show|apply NAME) whose uid the resolver has not answered yet.
 * The event loop never asks NSS itself (resolver.h), and refusing with "try
 * again" would hand a slow directory's wait to every person who types a
 * name. Such a request waits here instead: a timer looks at the resolver's
 * answers every USER_WAIT_POLL_USEC while any request waits, dispatches a
 * request again once its name has an answer (found or not), and refuses it
 * with E_UNAVAILABLE when the directory has not answered within the timeout.
 * A request whose connection has gone is dropped. */
#pragma once

#include <gpukeeper/client.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "basic/time-util.h"

typedef struct Daemon Daemon;
typedef struct RequestCall RequestCall;

/* Requests waiting at once, in all and of one caller (uid). */
#define USER_WAIT_MAX 64
#define USER_WAIT_PER_UID 8
#define USER_WAIT_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define USER_WAIT_POLL_USEC (20 * USEC_PER_MSEC)

typedef struct UserWait UserWait;

typedef struct UserWaits {
        UserWait *waits;
        size_t n;
        sd_event_source *timer;
        uint64_t timeout_usec; /* USER_WAIT_TIMEOUT_USEC (tests: GK_TEST_USER_WAIT_MS) */
} UserWaits;

/* Park `call` (its op and arguments are kept) until the resolver has an
 * answer for `name`. Returns REQUEST_DEFERRED, or a request error's code
 * with *ret_error set: E_BUSY when too many requests wait already. */
int user_wait_add(Daemon *d, const RequestCall *call, const char *name,
                  gk_call_error *ret_error);

/* Drop every waiting request (the daemon stops) and the timer. */
void user_waits_done(UserWaits *w);
