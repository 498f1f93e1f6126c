/* Refusal bursts in the audit; see refusals.h. */
#include "daemon/refusals.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "daemon/daemon.h"

static void write_row(Daemon *d, uid_t uid, const char *action, const RefusalReason *r,
                      bool various, uint64_t since_wall)
{
        _cleanup_free_ char *detail = NULL;
        json_t *o;

        if (various)
                o = json_pack("{s:s, s:I, s:f, s:b}", "reason", r->text, "repeated",
                              (json_int_t)r->repeated, "since", since_wall / 1e6, "various", 1);
        else if (r->repeated > 0)
                o = json_pack("{s:s, s:I, s:f}", "reason", r->text, "repeated",
                              (json_int_t)r->repeated, "since", since_wall / 1e6);
        else
                o = json_pack("{s:s}", "reason", r->text);
        if (o)
                detail = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        (void)store_audit(d->store, uid, action, r->subject[0] ? r->subject : NULL, detail);
}

static void reason_set(RefusalReason *r, const char *subject, const char *text)
{
        snprintf(r->subject, sizeof r->subject, "%s", subject ?: "");
        snprintf(r->text, sizeof r->text, "%s", text ?: "");
}

static void close_burst(Daemon *d, RefusalBurst *b)
{
        for (size_t i = 0; i < b->n_reasons; i++)
                if (b->reasons[i].repeated > 0)
                        write_row(d, b->uid, b->action, &b->reasons[i], false, b->start_wall_usec);
        if (b->various.repeated > 0)
                write_row(d, b->uid, b->action, &b->various, true, b->start_wall_usec);
        *b = (RefusalBurst){0};
}

/* The first refusal of a reason in burst `b`: recorded at once. */
static void record_first(Daemon *d, RefusalBurst *b, const char *subject, const char *text)
{
        RefusalReason *r = &b->reasons[b->n_reasons++];

        reason_set(r, subject, text);
        write_row(d, b->uid, b->action, r, false, 0);
}

void refusals_audit(Daemon *d, uid_t uid, const char *action, const char *subject,
                    const char *reason)
{
        RefusalState *s = &d->refusals;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        RefusalBurst *b = NULL, *free_slot = NULL, *oldest = NULL;
        char text[sizeof b->reasons[0].text];

        /* Compared as it is kept (cut to the slot). */
        snprintf(text, sizeof text, "%s", reason ?: "");
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
                for (size_t i = 0; i < b->n_reasons; i++)
                        if (strcmp(b->reasons[i].text, text) == 0) {
                                b->reasons[i].repeated++;
                                reason_set(&b->reasons[i], subject, text);
                                d->audit_suppressed++;
                                return;
                        }
                if (b->n_reasons < REFUSALS_REASONS) {
                        record_first(d, b, subject, text);
                        return;
                }
                b->various.repeated++;
                reason_set(&b->various, subject, text);
                d->audit_suppressed++;
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
        b->uid = uid;
        snprintf(b->action, sizeof b->action, "%s", action);
        b->start_usec = now ?: 1;
        b->start_wall_usec = now_usec(CLOCK_REALTIME);
        record_first(d, b, subject, text);
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
