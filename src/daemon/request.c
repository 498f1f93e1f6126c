/* Operation table and dispatch; see request.h. Handlers return 0 with a
 * result, a positive gk_error with a message, or -errno (an internal error,
 * logged here once). */
#include "daemon/request.h"

#include <errno.h>
#include <string.h>

#include "basic/log.h"
#include "daemon/status.h"
#include "proto/proto.h"

typedef int (*RequestHandler)(Daemon *d, const Peer *peer, json_t *args, json_t **ret_result,
                              gk_call_error *ret_error);

static int no_arguments(json_t *args, gk_call_error *ret_error)
{
        if (args && json_object_size(args) > 0) {
                ret_error->code = GK_E_INVALID_ARGUMENT;
                snprintf(ret_error->message, sizeof ret_error->message,
                         "this operation takes no arguments");
                return GK_E_INVALID_ARGUMENT;
        }
        return 0;
}

static int handle_ping(Daemon *d, const Peer *peer, json_t *args, json_t **ret_result,
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

static int handle_status(Daemon *d, const Peer *peer, json_t *args, json_t **ret_result,
                         gk_call_error *ret_error)
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
};

json_t *request_dispatch(Daemon *d, const Peer *peer, uint32_t id, const char *op, json_t *args)
{
        gk_call_error error = {};
        json_t *result = NULL;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(request_table); i++) {
                if (strcmp(request_table[i].op, op) != 0)
                        continue;
                r = request_table[i].handler(d, peer, args, &result, &error);
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
