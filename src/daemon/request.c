/* Operation table and dispatch; see request.h. Handlers return 0 with a
 * result, a positive gk_error with a message, or -errno (an internal error,
 * logged here once). */
#include "daemon/request.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "basic/log.h"
#include "basic/user-util.h"
#include "daemon/lease-ops.h"
#include "daemon/status.h"
#include "daemon/report-ops.h"
#include "daemon/violation-ops.h"
#include "daemon/audit-ops.h"
#include "proto/proto.h"

int request_error(gk_call_error *ret_error, int code, const char *fmt, ...)
{
        va_list ap;

        ret_error->code = code;
        va_start(ap, fmt);
        vsnprintf(ret_error->message, sizeof ret_error->message, fmt, ap);
        va_end(ap);
        return code;
}

bool peer_is_admin(const Peer *peer)
{
        gid_t admin;

        if (peer->uid == 0)
                return true;
        if (group_gid_from_name(ADMIN_GROUP, &admin) < 0)
                return false;
        if (peer->gid == admin)
                return true;
        for (size_t i = 0; i < peer->n_groups; i++)
                if (peer->groups[i] == admin)
                        return true;
        return false;
}

static int no_arguments(json_t *args, gk_call_error *ret_error)
{
        if (args && json_object_size(args) > 0)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "this operation takes no arguments");
        return 0;
}

static int handle_ping(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                       gk_call_error *ret_error)
{
        json_t *o;
        int r;

        r = no_arguments(args, ret_error);
        if (r != 0)
                return r;
        o = json_pack("{s:s, s:i}", "version", GK_VERSION, "protocol", GK_PROTO_VERSION);
        if (!o)
                return -ENOMEM;
        *ret_result = o;
        return 0;
}

static int handle_status(Daemon *d, const RequestCall *call, json_t *args,
                         json_t **ret_result, gk_call_error *ret_error)
{
        int r;

        r = no_arguments(args, ret_error);
        if (r != 0)
                return r;
        return status_build(d, ret_result);
}

static const struct {
        const char *op;
        RequestHandler handler;
} request_table[] = {
        {"ping", handle_ping},
        {"status", handle_status},
        {"lease.acquire", lease_op_acquire},
        {"lease.attach", lease_op_attach},
        {"lease.release", lease_op_release},
        {"lease.extend", lease_op_extend},
        {"lease.list", lease_op_list},
        {"lease.env", lease_op_env},
        {"queue.list", lease_op_queue},
        {"admin.drain", lease_op_drain},
        {"admin.undrain", lease_op_undrain},
        {"violations.list", violation_op_list},
        {"report", report_op},
        {"audit.list", audit_op_list},
};

json_t *request_dispatch(Daemon *d, const Peer *peer, uint32_t id, const char *op, json_t *args,
                         bool *ret_deferred)
{
        RequestCall call = {.peer = peer, .id = id};
        gk_call_error error = {};
        json_t *result = NULL;
        int r;

        *ret_deferred = false;
        for (size_t i = 0; i < ELEMENTSOF(request_table); i++) {
                if (strcmp(request_table[i].op, op) != 0)
                        continue;
                r = request_table[i].handler(d, &call, args, &result, &error);
                if (r == REQUEST_DEFERRED) {
                        *ret_deferred = true;
                        return NULL;
                }
                if (r == 0)
                        return proto_reply_ok(id, result);
                if (r > 0)
                        return proto_reply_error(id, r, "%s", error.message);
                log_error_errno(r, "Request '%s' from uid %u failed", op, (unsigned)peer->uid);
                return proto_reply_error(id, GK_E_INTERNAL,
                                         "gpukeeperd failed to answer '%s': %s (see its log)", op,
                                         strerror(-r));
        }
        return proto_reply_error(id, GK_E_UNKNOWN_OP,
                                 "unknown operation '%s' (this gpukeeperd is version %s)", op,
                                 GK_VERSION);
}
