/* Leases, drains and device usage in SQLite; see lease-store.h. */
#include "store/lease-store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "basic/macro.h"

const char *lease_kind_to_string(LeaseKind k)
{
        return k == LEASE_RUN ? "run" : k == LEASE_SLURM ? "slurm" : "manual";
}

void stored_lease_done(StoredLease *l)
{
        if (!l)
                return;
        free(l->command);
        free(l->devices);
        l->command = NULL;
        l->devices = NULL;
        l->n_devices = 0;
}

static int insert_lease_rows(Store *s, StoredLease *l, const char *request_json)
{
        bool client = l->client_pid > 0;
        int r;

        r = store_exec(s,
                       "INSERT INTO leases (uid, kind, state, created_usec, expires_usec, "
                       "client_pid, client_start_time, command, request, queue_wait_usec, "
                       "share_bytes) VALUES (?, ?, 'active', ?, ?, ?, ?, ?, ?, ?, ?)",
                       STORE_ARGS(STORE_INT(l->uid), STORE_TEXT(lease_kind_to_string(l->kind)),
                                  STORE_INT(l->created_usec),
                                  l->expires_usec ? STORE_INT(l->expires_usec) : STORE_NULL,
                                  client ? STORE_INT(l->client_pid) : STORE_NULL,
                                  client ? STORE_INT(l->client_start_time) : STORE_NULL,
                                  STORE_TEXT(l->command), STORE_TEXT(request_json),
                                  STORE_INT(l->queue_wait_usec), STORE_INT(l->share_bytes)));
        if (r < 0)
                return r;
        l->id = sqlite3_last_insert_rowid(store_db(s));
        if (l->kind == LEASE_SLURM) {
                /* The unique index leases_slurm_job refuses a second active
                 * lease of one job (a retried prolog) as a constraint. */
                r = store_exec(s, "UPDATE leases SET slurm_job_id = ? WHERE id = ?",
                               STORE_ARGS(STORE_INT(l->slurm_job_id), STORE_INT(l->id)));
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < l->n_devices; i++) {
                const LeaseDevice *dev = &l->devices[i];

                r = store_exec(s,
                               "INSERT INTO lease_devices (lease_id, position, device_uuid, "
                               "gpu_uuid, profile, share_bytes) VALUES (?, ?, ?, ?, ?, ?)",
                               STORE_ARGS(STORE_INT(l->id), STORE_INT(i), STORE_TEXT(dev->uuid),
                                          STORE_TEXT(dev->gpu_uuid),
                                          STORE_TEXT(dev->profile[0] ? dev->profile : NULL),
                                          STORE_INT(l->share_bytes)));
                if (r < 0)
                        return r;
        }
        return 0;
}

int store_lease_grant(Store *s, StoredLease *l, const char *request_json)
{
        char subject[32];
        int r;

        r = store_begin(s);
        if (r < 0)
                return r;
        r = insert_lease_rows(s, l, request_json);
        if (r >= 0) {
                snprintf(subject, sizeof subject, "lease %" PRId64, l->id);
                r = store_audit(s, l->uid, "lease.grant", subject, request_json);
        }
        r = store_finish(s, r);
        if (r < 0)
                l->id = 0;
        return r;
}

int store_lease_end(Store *s, int64_t id, bool expired, const char *reason, int64_t actor_uid,
                    uint64_t now_usec, int64_t idle_device_usec)
{
        _cleanup_free_ char *detail = NULL;
        char subject[32];
        int r;

        r = store_begin(s);
        if (r < 0)
                return r;
        r = store_exec(s,
                       "UPDATE leases SET state = ?, released_usec = ?, release_reason = ?, "
                       "idle_device_usec = coalesce(?, idle_device_usec) "
                       "WHERE id = ? AND state = 'active'",
                       STORE_ARGS(STORE_TEXT(expired ? "expired" : "released"), STORE_INT(now_usec),
                                  STORE_TEXT(reason),
                                  idle_device_usec >= 0 ? STORE_INT(idle_device_usec) : STORE_NULL,
                                  STORE_INT(id)));
        if (r < 0)
                goto finish;
        if (sqlite3_changes(store_db(s)) == 0) {
                r = -ENOENT;
                goto finish;
        }

        /* Wear levelling remembers when each device was last given back. */
        r = store_exec(s,
                       "INSERT OR REPLACE INTO device_usage (device_uuid, last_released_usec) "
                       "SELECT device_uuid, ? FROM lease_devices WHERE lease_id = ? AND active = 1",
                       STORE_ARGS(STORE_INT(now_usec), STORE_INT(id)));
        if (r < 0)
                goto finish;

        r = store_exec(s, "UPDATE lease_devices SET active = 0 WHERE lease_id = ?",
                       STORE_ARGS(STORE_INT(id)));
        if (r < 0)
                goto finish;

        snprintf(subject, sizeof subject, "lease %" PRId64, id);
        detail = store_audit_detail("reason", reason);
        r = store_audit(s, actor_uid, expired ? "lease.expire" : "lease.release", subject, detail);
finish:
        return store_finish(s, r);
}

int store_lease_extend(Store *s, int64_t id, uint64_t expires_usec, int64_t actor_uid)
{
        char subject[32], detail[64];

        snprintf(subject, sizeof subject, "lease %" PRId64, id);
        snprintf(detail, sizeof detail, "{\"expires_usec\":%" PRIu64 "}", expires_usec);
        return store_exec_audited(s,
                                  "UPDATE leases SET expires_usec = ? WHERE id = ? AND "
                                  "state = 'active' AND kind = 'manual'",
                                  STORE_ARGS(STORE_INT(expires_usec), STORE_INT(id)), true,
                                  actor_uid, "lease.extend", subject, detail);
}

int store_lease_set_idle(Store *s, int64_t id, uint64_t idle_device_usec)
{
        return store_exec(s, "UPDATE leases SET idle_device_usec = ? WHERE id = ?",
                          STORE_ARGS(STORE_INT(idle_device_usec), STORE_INT(id)));
}

int store_lease_attach(Store *s, int64_t id, pid_t pid, uint64_t start_time)
{
        return store_exec(s,
                          "UPDATE leases SET client_pid = ?, client_start_time = ? "
                          "WHERE id = ? AND state = 'active'",
                          STORE_ARGS(STORE_INT(pid), STORE_INT(start_time), STORE_INT(id)));
}

static int load_devices(Store *s, StoredLease *l)
{
        sqlite3_stmt *st = NULL;
        int r, rc;

        r = store_statement(s,
                            "SELECT device_uuid, gpu_uuid, profile FROM lease_devices "
                            "WHERE lease_id = ? ORDER BY position",
                            &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, l->id);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                LeaseDevice *dev;

                if (l->n_devices >= LEASE_MAX_DEVICES)
                        break;
                dev = realloc(l->devices, (l->n_devices + 1) * sizeof *dev);
                if (!dev) {
                        sqlite3_reset(st);
                        return -ENOMEM;
                }
                l->devices = dev;
                dev = &l->devices[l->n_devices++];
                *dev = (LeaseDevice){};
                snprintf(dev->uuid, sizeof dev->uuid, "%s",
                         (const char *)sqlite3_column_text(st, 0));
                snprintf(dev->gpu_uuid, sizeof dev->gpu_uuid, "%s",
                         (const char *)sqlite3_column_text(st, 1));
                if (sqlite3_column_type(st, 2) != SQLITE_NULL)
                        snprintf(dev->profile, sizeof dev->profile, "%s",
                                 (const char *)sqlite3_column_text(st, 2));
        }
        sqlite3_reset(st);
        return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : store_errno_from_sqlite(rc);
}

int store_leases_load_active(Store *s, StoredLease **ret, size_t *ret_n)
{
        StoredLease *leases = NULL;
        sqlite3_stmt *st = NULL;
        size_t n = 0;
        int r, rc;

        r = store_statement(
            s,
            "SELECT id, uid, kind, created_usec, expires_usec, client_pid, "
            "client_start_time, command, idle_device_usec, slurm_job_id, share_bytes FROM leases "
            "WHERE state = 'active' "
            "ORDER BY id",
            &st);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                StoredLease *grown = realloc(leases, (n + 1) * sizeof *leases), *l;
                const unsigned char *cmd;

                if (!grown) {
                        r = -ENOMEM;
                        break;
                }
                leases = grown;
                l = &leases[n++];
                *l = (StoredLease){
                    .id = sqlite3_column_int64(st, 0),
                    .uid = (uid_t)sqlite3_column_int64(st, 1),
                    .kind = strcmp((const char *)sqlite3_column_text(st, 2), "run") == 0
                                ? LEASE_RUN
                            : strcmp((const char *)sqlite3_column_text(st, 2), "slurm") == 0
                                ? LEASE_SLURM
                                : LEASE_MANUAL,
                    .created_usec = (uint64_t)sqlite3_column_int64(st, 3),
                    .expires_usec = (uint64_t)sqlite3_column_int64(st, 4),
                    .client_pid = (pid_t)sqlite3_column_int64(st, 5),
                    .client_start_time = (uint64_t)sqlite3_column_int64(st, 6),
                    .idle_device_usec = (uint64_t)sqlite3_column_int64(st, 8),
                    .slurm_job_id = (uint64_t)sqlite3_column_int64(st, 9),
                    .share_bytes = (uint64_t)sqlite3_column_int64(st, 10),
                };
                cmd = sqlite3_column_text(st, 7);
                if (cmd && !(l->command = strdup((const char *)cmd))) {
                        r = -ENOMEM;
                        break;
                }
                r = load_devices(s, l);
                if (r < 0)
                        break;
        }
        sqlite3_reset(st);
        if (r >= 0 && rc != SQLITE_DONE)
                r = store_errno_from_sqlite(rc);
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        stored_lease_done(&leases[i]);
                free(leases);
                return r;
        }
        *ret = leases;
        *ret_n = n;
        return 0;
}

int store_drain_set(Store *s, const char *uuid, bool drained, int64_t actor_uid, const char *reason)
{
        _cleanup_free_ char *detail = store_audit_detail("reason", reason);

        if (drained)
                return store_exec_audited(
                    s,
                    "INSERT OR REPLACE INTO drains (device_uuid, since_usec, uid, reason) "
                    "VALUES (?, strftime('%s','now') * 1000000, ?, ?)",
                    STORE_ARGS(STORE_TEXT(uuid), STORE_INT(actor_uid), STORE_TEXT(reason)), false,
                    actor_uid, "device.drain", uuid, detail);
        return store_exec_audited(s, "DELETE FROM drains WHERE device_uuid = ?",
                                  STORE_ARGS(STORE_TEXT(uuid)), false, actor_uid,
                                  "device.undrain", uuid, detail);
}

static int foreach_row(Store *s, const char *sql, StoreRowFn fn, void *userdata)
{
        sqlite3_stmt *st = NULL;
        int r, rc;

        r = store_statement(s, sql, &st);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                r = fn((const char *)sqlite3_column_text(st, 0),
                       (uint64_t)sqlite3_column_int64(st, 1), userdata);
                if (r < 0)
                        break;
        }
        sqlite3_reset(st);
        if (r < 0)
                return r;
        return rc == SQLITE_DONE ? 0 : store_errno_from_sqlite(rc);
}

int store_drains_foreach(Store *s, StoreRowFn fn, void *userdata)
{
        return foreach_row(s, "SELECT device_uuid, since_usec FROM drains", fn, userdata);
}

int store_device_usage_foreach(Store *s, StoreRowFn fn, void *userdata)
{
        return foreach_row(s, "SELECT device_uuid, last_released_usec FROM device_usage", fn,
                           userdata);
}

int store_drain_get(Store *s, const char *uuid, int64_t *ret_uid, char **ret_reason)
{
        sqlite3_stmt *st = NULL;
        char *reason = NULL;
        int r, rc;

        r = store_statement(s, "SELECT uid, reason FROM drains WHERE device_uuid = ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, uuid, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                const char *t = (const char *)sqlite3_column_text(st, 1);

                if (t && !(reason = strdup(t)))
                        r = -ENOMEM;
                else {
                        *ret_uid = sqlite3_column_int64(st, 0);
                        *ret_reason = reason;
                        r = 0;
                }
        } else
                r = rc == SQLITE_DONE ? -ENOENT : store_errno_from_sqlite(rc);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return r;
}
