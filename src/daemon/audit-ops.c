/* audit.list; see audit-ops.h. */
#include "daemon/audit-ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/time-util.h"
#include "daemon/reads.h"
#include "proto/json-text.h"
#include "store/audit-store.h"

#define AUDIT_LIST_MAX 10000
#define AUDIT_ACTION_MAX 64
/* Unix seconds far beyond any real date, so microseconds cannot overflow. */
#define AUDIT_SINCE_MAX 1e11

/* An action filter: "lease", "lease.release": lower-case letters, digits,
 * '_' and dots, as the daemon's own action names are. */
static bool action_valid(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > AUDIT_ACTION_MAX || s[0] == '.' || s[n - 1] == '.')
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
                      *s == '.'))
                        return false;
        return true;
}

typedef struct AuditRead {
        uint64_t since_usec;
        int64_t uid; /* -1: everyone's */
        unsigned limit;
        bool has_action;
        char action[AUDIT_ACTION_MAX + 1];
} AuditRead;

/* A record; "user" is null until audit_read_finish() names it. */
static json_t *record_json(const StoredAuditRecord *x)
{
        json_t *detail = NULL;

        if (x->detail)
                detail = json_loads(x->detail, JSON_DECODE_ANY, NULL);
        return json_pack("{s:I, s:f, s:I, s:n, s:s, s:o, s:o}", "id", (json_int_t)x->id, "at",
                         (double)x->at_usec / USEC_PER_SEC, "uid", (json_int_t)x->uid, "user",
                         "action", x->action ? x->action : "", "subject",
                         x->subject ? json_text(x->subject) : json_null(), "detail",
                         detail ? detail : json_null());
}

/* In the reader thread (reads.h). */
static int audit_read_run(Store *reader, const void *state, json_t **ret_result)
{
        const AuditRead *a = state;
        StoredAuditRecord *list = NULL;
        json_t *array;
        size_t n = 0;
        int r;

        r = store_audit_list(reader, a->since_usec, a->uid, a->has_action ? a->action : NULL,
                             a->limit, &list, &n);
        if (r < 0)
                return r;
        array = json_array();
        for (size_t i = 0; array && i < n; i++)
                if (json_array_append_new(array, record_json(&list[i])) < 0) {
                        json_decref(array);
                        array = NULL;
                }
        stored_audit_free(list, n);
        if (!array)
                return -ENOMEM;
        *ret_result = json_pack("{s:o}", "records", array);
        return *ret_result ? 0 : -ENOMEM;
}

/* On the loop: the names of the records' users. */
static int audit_read_finish(Daemon *d, json_t *result)
{
        return reads_name_users(d, json_object_get(result, "records"));
}

static const ReadWork audit_read = {
        .run = audit_read_run,
        .finish = audit_read_finish,
};

int audit_op_list(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                  gk_call_error *ret_error)
{
        json_t *since = args ? json_object_get(args, "since") : NULL;
        json_t *user = args ? json_object_get(args, "user") : NULL;
        json_t *action = args ? json_object_get(args, "action") : NULL;
        json_t *limit = args ? json_object_get(args, "limit") : NULL;
        bool admin = peer_is_admin(call->peer);
        int64_t uid = admin ? -1 : (int64_t)call->peer->uid;
        AuditRead *a;
        int r;

        if (args && json_object_size(args) >
                        (size_t)(since != NULL) + (user != NULL) + (action != NULL) + (limit != NULL))
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "audit.list takes 'since', 'user', 'action' and 'limit' only");
        if (since && (!json_is_number(since) || json_number_value(since) < 0 ||
                      json_number_value(since) > AUDIT_SINCE_MAX))
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'since' must be a unix time in seconds");
        if (limit && (!json_is_integer(limit) || json_integer_value(limit) < 1 ||
                      json_integer_value(limit) > AUDIT_LIST_MAX))
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'limit' must be from 1 to %d", AUDIT_LIST_MAX);
        if (action && (!json_is_string(action) || !action_valid(json_string_value(action))))
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'action' must be an action name such as 'lease' or "
                                     "'lease.release'");
        if (user) {
                uid_t u;

                r = request_parse_user(d, call, user, &u, ret_error);
                if (r != 0)
                        return r;
                if (!admin && u != call->peer->uid)
                        return request_error(ret_error, GK_E_PERMISSION,
                                             "only admins (root, group " ADMIN_GROUP
                                             ") may read other users' audit records");
                uid = (int64_t)u;
        }

        a = calloc(1, sizeof *a);
        if (!a)
                return -ENOMEM;
        *a = (AuditRead){
                .since_usec = since ? (uint64_t)(json_number_value(since) * USEC_PER_SEC) : 0,
                .uid = uid,
                .limit = limit ? (unsigned)json_integer_value(limit) : 100,
                .has_action = action != NULL,
        };
        if (action)
                string_copy(a->action, sizeof a->action, json_string_value(action));
        return reads_submit(d, call, &audit_read, a, ret_error);
}
