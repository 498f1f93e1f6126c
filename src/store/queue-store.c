/* Places of waiting run requests across restarts; see queue-store.h. */
#include "store/queue-store.h"

#include <errno.h>
#include <stdlib.h>

/* More than the daemon's whole queue ever holds: a bound on what is read. */
#define QUEUE_PLACES_MAX 4096

int store_queue_place_add(Store *s, const StoredQueuePlace *p)
{
        return store_exec(s,
                          "INSERT OR REPLACE INTO queue_places (request_id, uid, pid, "
                          "pid_start_time, since_usec) VALUES (?, ?, ?, ?, ?)",
                          STORE_ARGS(STORE_INT(p->request_id), STORE_INT(p->uid),
                                     STORE_INT(p->pid), STORE_INT(p->pid_start_time),
                                     STORE_INT(p->since_usec)));
}

int store_queue_place_remove(Store *s, uint64_t request_id)
{
        return store_exec(s, "DELETE FROM queue_places WHERE request_id = ?",
                          STORE_ARGS(STORE_INT(request_id)));
}

int store_queue_places_load(Store *s, StoredQueuePlace **ret, size_t *ret_n)
{
        sqlite3_stmt *st = NULL;
        StoredQueuePlace *list = NULL;
        size_t n = 0;
        int r, rc;

        r = store_statement(s,
                            "SELECT request_id, uid, pid, pid_start_time, since_usec "
                            "FROM queue_places "
                            "ORDER BY request_id",
                            &st);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < QUEUE_PLACES_MAX) {
                StoredQueuePlace *grown = realloc(list, (n + 1) * sizeof *list);

                if (!grown) {
                        sqlite3_reset(st);
                        free(list);
                        return -ENOMEM;
                }
                list = grown;
                list[n++] = (StoredQueuePlace){
                        .request_id = (uint64_t)sqlite3_column_int64(st, 0),
                        .uid = (uid_t)sqlite3_column_int64(st, 1),
                        .pid = (pid_t)sqlite3_column_int64(st, 2),
                        .pid_start_time = (uint64_t)sqlite3_column_int64(st, 3),
                        .since_usec = (uint64_t)sqlite3_column_int64(st, 4),
                };
        }
        sqlite3_reset(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
                free(list);
                return store_errno_from_sqlite(rc);
        }
        *ret = list;
        *ret_n = n;
        return 0;
}
