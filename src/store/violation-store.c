/* Violations in SQLite; see violation-store.h. */
#include "store/violation-store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"

void stored_violation_done(StoredViolation *v)
{
        if (!v)
                return;
        free(v->command);
        v->command = NULL;
}

void stored_violations_free(StoredViolation *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                stored_violation_done(&v[i]);
        free(v);
}

static void subject_of(int64_t id, char *buf, size_t len)
{
        snprintf(buf, len, "violation %" PRId64, id);
}

int store_violation_open(Store *s, StoredViolation *v)
{
        char subject[48], detail[256];
        int r;

        r = store_begin(s);
        if (r < 0)
                return r;
        r = store_exec(s,
                       "INSERT INTO violations (pid, start_time, uid, device_uuid, gpu_uuid, "
                       "gpu_index, memory_bytes, command, detected_usec) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       STORE_ARGS(STORE_INT(v->pid), STORE_INT(v->start_time), STORE_INT(v->uid),
                                  STORE_TEXT(v->device_uuid), STORE_TEXT(v->gpu_uuid),
                                  v->gpu_index >= 0 ? STORE_INT(v->gpu_index) : STORE_NULL,
                                  STORE_INT(v->memory_bytes), STORE_TEXT(v->command),
                                  STORE_INT(v->detected_usec)));
        if (r < 0)
                goto finish;
        v->id = sqlite3_last_insert_rowid(store_db(s));
        subject_of(v->id, subject, sizeof subject);
        /* The device is in the violation row; NVML's uuid text is not put
         * into JSON unescaped. */
        snprintf(detail, sizeof detail, "{\"pid\":%d}", (int)v->pid);
        r = store_audit(s, v->uid, "violation.detected", subject, detail);
finish:
        r = store_finish(s, r);
        if (r < 0)
                v->id = 0;
        return r;
}

int store_violation_step(Store *s, int64_t id, ViolationStep step, uint64_t usec)
{
        static const struct {
                const char *sql;
                const char *action;
        } steps[] = {
                [VIOLATION_WARNED] = {"UPDATE violations SET warned_usec = ? WHERE id = ?",
                                      "violation.warned"},
                [VIOLATION_SIGTERM] = {"UPDATE violations SET term_usec = ? WHERE id = ?",
                                       "violation.sigterm"},
                [VIOLATION_SIGKILL] = {"UPDATE violations SET kill_usec = ? WHERE id = ?",
                                       "violation.sigkill"},
        };
        char subject[48];

        subject_of(id, subject, sizeof subject);
        return store_exec_audited(s, steps[step].sql, STORE_ARGS(STORE_INT(usec), STORE_INT(id)),
                                  false, -1, steps[step].action, subject, NULL);
}

int store_violation_close(Store *s, int64_t id, const char *outcome, uint64_t usec)
{
        char subject[48], detail[64];

        subject_of(id, subject, sizeof subject);
        snprintf(detail, sizeof detail, "{\"outcome\":\"%s\"}", outcome);
        return store_exec_audited(s,
                                  "UPDATE violations SET ended_usec = ?, outcome = ? "
                                  "WHERE id = ? AND ended_usec IS NULL",
                                  STORE_ARGS(STORE_INT(usec), STORE_TEXT(outcome), STORE_INT(id)),
                                  false, -1, "violation.ended", subject, detail);
}

#define VIOLATION_COLUMNS                                                                          \
        "id, pid, start_time, uid, device_uuid, gpu_uuid, gpu_index, memory_bytes, command, "     \
        "detected_usec, warned_usec, term_usec, kill_usec, ended_usec, outcome"

static int load_rows(sqlite3_stmt *st, size_t limit, StoredViolation **ret, size_t *ret_n)
{
        StoredViolation *list = NULL;
        size_t n = 0;
        int rc, r = 0;

        while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                StoredViolation *grown = realloc(list, (n + 1) * sizeof *list), *v;
                const unsigned char *text;

                if (!grown) {
                        r = -ENOMEM;
                        break;
                }
                list = grown;
                v = &list[n++];
                *v = (StoredViolation){
                        .id = sqlite3_column_int64(st, 0),
                        .pid = (pid_t)sqlite3_column_int64(st, 1),
                        .start_time = (uint64_t)sqlite3_column_int64(st, 2),
                        .uid = (uid_t)sqlite3_column_int64(st, 3),
                        .gpu_index = sqlite3_column_type(st, 6) == SQLITE_NULL
                                             ? -1
                                             : sqlite3_column_int(st, 6),
                        .memory_bytes = (uint64_t)sqlite3_column_int64(st, 7),
                        .detected_usec = (uint64_t)sqlite3_column_int64(st, 9),
                        .warned_usec = (uint64_t)sqlite3_column_int64(st, 10),
                        .term_usec = (uint64_t)sqlite3_column_int64(st, 11),
                        .kill_usec = (uint64_t)sqlite3_column_int64(st, 12),
                        .ended_usec = (uint64_t)sqlite3_column_int64(st, 13),
                };
                snprintf(v->device_uuid, sizeof v->device_uuid, "%s",
                         (const char *)sqlite3_column_text(st, 4));
                snprintf(v->gpu_uuid, sizeof v->gpu_uuid, "%s",
                         (const char *)sqlite3_column_text(st, 5));
                text = sqlite3_column_text(st, 14);
                snprintf(v->outcome, sizeof v->outcome, "%s", text ? (const char *)text : "");
                text = sqlite3_column_text(st, 8);
                if (text && !(v->command = strdup((const char *)text))) {
                        r = -ENOMEM;
                        break;
                }
        }
        if (r >= 0 && n < limit && rc != SQLITE_DONE)
                r = store_errno_from_sqlite(rc);
        sqlite3_reset(st);
        if (r < 0) {
                stored_violations_free(list, n);
                return r;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

int store_violations_load_open(Store *s, StoredViolation **ret, size_t *ret_n)
{
        sqlite3_stmt *st = NULL;
        int r;

        r = store_statement(s,
                            "SELECT " VIOLATION_COLUMNS " FROM violations "
                            "WHERE ended_usec IS NULL ORDER BY id",
                            &st);
        if (r < 0)
                return r;
        return load_rows(st, SIZE_MAX, ret, ret_n);
}

int store_violations_list(Store *s, uint64_t since_usec, size_t limit, StoredViolation **ret,
                          size_t *ret_n)
{
        sqlite3_stmt *st = NULL;
        int r;

        r = store_statement(s,
                            "SELECT " VIOLATION_COLUMNS " FROM violations "
                            "WHERE detected_usec >= ? ORDER BY detected_usec DESC, id DESC",
                            &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)since_usec);
        return load_rows(st, limit, ret, ret_n);
}
