/* Audit-table queries; see audit-store.h. */
#include "store/audit-store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"

void stored_alerts_free(StoredAlert *a, size_t n)
{
        if (!a)
                return;
        for (size_t i = 0; i < n; i++) {
                free(a[i].action);
                free(a[i].subject);
                free(a[i].detail);
        }
        free(a);
}

/* A copy of text column `col`, NULL for SQL NULL; -ENOMEM when the copy fails. */
static int column_dup(sqlite3_stmt *st, int col, char **ret)
{
        const char *t = (const char *)sqlite3_column_text(st, col);

        *ret = NULL;
        if (!t)
                return 0;
        *ret = strdup(t);
        return *ret ? 0 : -ENOMEM;
}

int store_alerts_recent(Store *s, uint64_t since_usec, unsigned limit, StoredAlert **ret,
                        size_t *ret_n)
{
        /* The action condition is the partial index audit_alerts's, word
         * for word (migration 14): only the alert rows are read. */
        static const char sql[] =
            "SELECT ts_usec, action, subject, detail FROM audit"
            " WHERE ts_usec >= ?1 AND (action = 'alert.sent' OR action = 'alert.failed')"
            " ORDER BY ts_usec DESC LIMIT ?2";
        StoredAlert *a = NULL;
        sqlite3_stmt *st;
        size_t n = 0;
        int r, rc = SQLITE_DONE;

        r = store_statement(s, sql, &st);
        if (r < 0)
                return r;
        a = calloc(MAX(limit, 1u), sizeof *a);
        if (!a) {
                sqlite3_reset(st);
                return -ENOMEM;
        }
        if (sqlite3_bind_int64(st, 1, (sqlite3_int64)since_usec) != SQLITE_OK ||
            sqlite3_bind_int64(st, 2, (sqlite3_int64)limit) != SQLITE_OK) {
                r = -EIO;
                goto fail;
        }
        while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                StoredAlert *x = &a[n++];

                x->at_usec = (uint64_t)sqlite3_column_int64(st, 0);
                if ((r = column_dup(st, 1, &x->action)) < 0 ||
                    (r = column_dup(st, 2, &x->subject)) < 0 ||
                    (r = column_dup(st, 3, &x->detail)) < 0)
                        goto fail;
        }
        if (n < limit && rc != SQLITE_DONE) {
                r = store_errno_from_sqlite(rc);
                goto fail;
        }
        sqlite3_reset(st);
        *ret = a;
        *ret_n = n;
        return 0;
fail:
        sqlite3_reset(st);
        stored_alerts_free(a, n);
        return r;
}

int store_audit_prune(Store *s, uint64_t before_usec, unsigned max_rows)
{
        /* By ts_usec (indexed), not by id: ids follow insertion, and what the
         * retention promises is about age. */
        static const char sql[] =
            "DELETE FROM audit WHERE id IN"
            " (SELECT id FROM audit WHERE ts_usec < ?1 ORDER BY ts_usec LIMIT ?2)";

        return store_exec(s, sql, STORE_ARGS(STORE_INT(before_usec), STORE_INT(max_rows)));
}

void stored_audit_free(StoredAuditRecord *a, size_t n)
{
        if (!a)
                return;
        for (size_t i = 0; i < n; i++) {
                free(a[i].action);
                free(a[i].subject);
                free(a[i].detail);
        }
        free(a);
}

int store_audit_list(Store *s, uint64_t since_usec, int64_t uid, const char *action,
                     unsigned limit, StoredAuditRecord **ret, size_t *ret_n)
{
        /* ?3 < 0: every uid. The action matches whole or as a dotted prefix;
         * substr() rather than LIKE, so '_' and '%' in it mean themselves. */
        static const char sql[] =
            "SELECT id, ts_usec, uid, action, subject, detail FROM audit"
            " WHERE ts_usec >= ?1 AND (?3 < 0 OR uid = ?3)"
            " AND (?4 IS NULL OR action = ?4 OR substr(action, 1, length(?4) + 1) = ?4 || '.')"
            " ORDER BY ts_usec DESC, id DESC LIMIT ?2";
        StoredAuditRecord *a = NULL;
        sqlite3_stmt *st;
        size_t n = 0;
        int r, rc = SQLITE_DONE;

        r = store_statement(s, sql, &st);
        if (r < 0)
                return r;
        a = calloc(MAX(limit, 1u), sizeof *a);
        if (!a) {
                sqlite3_reset(st);
                return -ENOMEM;
        }
        if (sqlite3_bind_int64(st, 1, (sqlite3_int64)since_usec) != SQLITE_OK ||
            sqlite3_bind_int64(st, 2, (sqlite3_int64)limit) != SQLITE_OK ||
            sqlite3_bind_int64(st, 3, (sqlite3_int64)uid) != SQLITE_OK ||
            (action ? sqlite3_bind_text(st, 4, action, -1, SQLITE_TRANSIENT)
                    : sqlite3_bind_null(st, 4)) != SQLITE_OK) {
                r = -EIO;
                goto fail;
        }
        while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                StoredAuditRecord *x = &a[n++];

                x->id = sqlite3_column_int64(st, 0);
                x->at_usec = (uint64_t)sqlite3_column_int64(st, 1);
                x->uid = sqlite3_column_int64(st, 2);
                if ((r = column_dup(st, 3, &x->action)) < 0 ||
                    (r = column_dup(st, 4, &x->subject)) < 0 ||
                    (r = column_dup(st, 5, &x->detail)) < 0)
                        goto fail;
        }
        if (n < limit && rc != SQLITE_DONE) {
                r = store_errno_from_sqlite(rc);
                goto fail;
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        *ret = a;
        *ret_n = n;
        return 0;
fail:
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        stored_audit_free(a, n);
        return r;
}
