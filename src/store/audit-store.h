/* Queries on the audit table for readers outside the daemon's request code
 * (the dashboard's /api/status): alerts delivered or given up on. Writing
 * audit records is store_audit() in store.h. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* One audit record of an alert (action alert.sent or alert.failed). */
typedef struct StoredAlert {
        uint64_t at_usec; /* ts_usec of the record */
        char *action;     /* "alert.sent" or "alert.failed" */
        char *subject;    /* the alert's key; may be NULL */
        char *detail;     /* a JSON text as recorded, or NULL */
} StoredAlert;

/* The audit records of alerts delivered or given up on at or after
 * `since_usec`, newest first, at most `limit`: one indexed range scan with a
 * LIMIT. On success *ret (free with stored_alerts_free) holds *ret_n
 * records. Returns 0 or a negative errno. */
int store_alerts_recent(Store *s, uint64_t since_usec, unsigned limit, StoredAlert **ret,
                        size_t *ret_n);

void stored_alerts_free(StoredAlert *a, size_t n);

/* Delete audit records older than `before_usec`, oldest first, at most
 * `max_rows` of them (so one call stays short; call again on the next tick).
 * Records at or after `before_usec` are never touched. Returns 0 or a
 * negative errno. */
int store_audit_prune(Store *s, uint64_t before_usec, unsigned max_rows);

/* One audit record, as `gpukeeper audit` shows it (schema: gpukeeperd(8)). */
typedef struct StoredAuditRecord {
        int64_t id;
        uint64_t at_usec;
        int64_t uid;   /* who acted; -1: the daemon itself */
        char *action;  /* "lease.acquire", "violation.sigterm", ... */
        char *subject; /* may be NULL */
        char *detail;  /* a JSON text as recorded, or NULL */
} StoredAuditRecord;

/* Audit records at or after `since_usec`, newest first, at most `limit`:
 * only those of `uid` when uid >= 0, only those whose action is `action` or
 * starts with `action` and a dot ("lease" matches "lease.release") when
 * `action` is non-NULL. On success *ret (free with stored_audit_free) holds
 * *ret_n records. Returns 0 or a negative errno. */
int store_audit_list(Store *s, uint64_t since_usec, int64_t uid, const char *action,
                     unsigned limit, StoredAuditRecord **ret, size_t *ret_n);

void stored_audit_free(StoredAuditRecord *a, size_t n);
