/* The stored MIG layout; see mig-store.h. */
#include "store/mig-store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"

int store_mig_layout_save(Store *s, const char *config_json, int64_t uid, uint64_t now_usec,
                          const char *subject)
{
        static const char sql[] =
            "INSERT INTO mig_layout (id, config, applied_usec, uid) VALUES (1, ?1, ?2, ?3)"
            " ON CONFLICT(id) DO UPDATE SET config = excluded.config,"
            " applied_usec = excluded.applied_usec, uid = excluded.uid";

        return store_exec_audited(s, sql,
                                  STORE_ARGS(STORE_TEXT(config_json), STORE_INT(now_usec), STORE_INT(uid)),
                                  false, uid, "mig.apply", subject, config_json);
}

int store_mig_layout_load(Store *s, char **ret)
{
        static const char sql[] = "SELECT config FROM mig_layout WHERE id = 1";
        sqlite3_stmt *st;
        int r, rc;

        r = store_statement(s, sql, &st);
        if (r < 0)
                return r;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                const char *t = (const char *)sqlite3_column_text(st, 0);
                char *copy = t ? strdup(t) : NULL;

                sqlite3_reset(st);
                if (!copy)
                        return -ENOMEM;
                *ret = copy;
                return 0;
        }
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? -ENOENT : -EIO;
}
