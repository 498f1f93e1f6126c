/* Refusal bursts in the audit; see refusals.h. */
#include "daemon/refusals.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "daemon/daemon.h"

static void write_row(Daemon *d, uid_t uid, const char *action, const char *subject,
                      const char *reason, uint64_t repeated, uint64_t since_wall)
{
        _cleanup_free_ char *detail = NULL;
        json_t *o;

        if (repeated > 0)
                o = json_pack("{s:s, s:I, s:f}", "reason", reason, "repeated",
                              (json_int_t)repeated, "since", since_wall / 1e6);
        else
                o = json_pack("{s:s}", "reason", reason);
        if (o)
                detail = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        (void)store_audit(d->store, uid, action, subject[0] ? subject : NULL, detail);
}

static void close_burst(Daemon *d, RefusalBurst *b)
{
        if (b->repeated > 0)
                write_row(d, b->uid, b->action, b->subject, b->reason, b->repeated,
                          b->start_wall_usec);
        *b = (RefusalBurst){0};
}

void refusals_audit(Daemon *d, uid_t uid, const char *action, const char *subject,
                    const char *reason)
{
        RefusalState *s = &d->refusals;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        RefusalBurst *b = NULL, *free_slot = NULL, *oldest = NULL;

        for (size_t i = 0; i < REFUSALS_MAX; i++) {
                RefusalBurst *x = &s->bursts[i];

                if (x->start_usec == 0) {
                        free_slot = free_slot ?: x;
                        continue;
                }
                if (x->uid == uid && strcmp(x->action, action) == 0) {
                        b = x;
                        break;
                }
                if (!oldest || x->start_usec < oldest->start_usec)
                        oldest = x;
        }
        if (b && now - b->start_usec < REFUSALS_BURST_USEC) {
                b->repeated++;
                d->audit_suppressed++;
                snprintf(b->subject, sizeof b->subject, "%s", subject ?: "");
                snprintf(b->reason, sizeof b->reason, "%s", reason ?: "");
                return;
        }
        if (b)
                close_burst(d, b);
        else if (free_slot)
                b = free_slot;
        else {
                b = oldest;
                close_burst(d, b);
        }
        write_row(d, uid, action, subject ?: "", reason ?: "", 0, 0);
        b->uid = uid;
        snprintf(b->action, sizeof b->action, "%s", action);
        b->start_usec = now ?: 1;
        b->start_wall_usec = now_usec(CLOCK_REALTIME);
}

void refusals_flush(Daemon *d, bool all)
{
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        for (size_t i = 0; i < REFUSALS_MAX; i++) {
                RefusalBurst *b = &d->refusals.bursts[i];

                if (b->start_usec && (all || now - b->start_usec >= REFUSALS_BURST_USEC))
                        close_burst(d, b);
        }
}
