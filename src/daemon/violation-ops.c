/* violations.list; see violation-ops.h. */
#include "daemon/violation-ops.h"

#include <errno.h>

#include "basic/time-util.h"
#include "daemon/daemon.h"
#include "daemon/enforcement.h"

#define VIOLATIONS_LIST_MAX 10000
/* Unix seconds far beyond any real date (year ~5000), so the conversion to
 * microseconds cannot overflow. */
#define VIOLATIONS_SINCE_MAX 1e11

int violation_op_list(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                      gk_call_error *ret_error)
{
        json_t *since = args ? json_object_get(args, "since") : NULL;
        json_t *limit = args ? json_object_get(args, "limit") : NULL;
        StoredViolation *list = NULL;
        json_t *array;
        size_t n = 0;
        double since_sec = 0;
        int r;

        if (args && json_object_size(args) > (size_t)(since != NULL) + (limit != NULL))
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "violations.list takes 'since' and 'limit' only");
        if (since && (!json_is_number(since) || json_number_value(since) < 0 ||
                      json_number_value(since) > VIOLATIONS_SINCE_MAX))
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'since' must be a unix time in seconds");
        if (limit && (!json_is_integer(limit) || json_integer_value(limit) < 1 ||
                      json_integer_value(limit) > VIOLATIONS_LIST_MAX))
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'limit' must be from 1 to %d", VIOLATIONS_LIST_MAX);
        if (since)
                since_sec = json_number_value(since);

        r = store_violations_list(d->store, (uint64_t)(since_sec * USEC_PER_SEC),
                                  limit ? (size_t)json_integer_value(limit) : 100, &list, &n);
        if (r < 0)
                return r;
        array = json_array();
        for (size_t i = 0; array && i < n; i++)
                if (json_array_append_new(array, enforcement_violation_json(d, &list[i])) < 0) {
                        json_decref(array);
                        array = NULL;
                }
        stored_violations_free(list, n);
        if (!array)
                return -ENOMEM;
        /* Strict mode: the fence's refused opens (counters kept by the
         * kernel since the fence was loaded; `since` does not apply). */
        {
                json_t *fence = strict_to_json(d);

                *ret_result = json_pack("{s:o, s:O}", "violations", array, "fence_denied",
                                        fence ? json_object_get(fence, "denied") : json_null());
                json_decref(fence);
        }
        return *ret_result ? 0 : -ENOMEM;
}
