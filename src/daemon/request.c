/* Operation table and dispatch; see request.h. Handlers return 0 with a
 * result, a positive gk_error with a message, or -errno (an internal error,
 * logged here once). */
#include "daemon/request.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "basic/log.h"
#include "daemon/lease-ops.h"
#include "daemon/mig-ops.h"
#include "daemon/status.h"
#include "daemon/report-ops.h"
#include "daemon/slurm-ops.h"
#include "daemon/sampler.h"
#include "daemon/violation-ops.h"
#include "daemon/audit-ops.h"
#include "daemon/env-backup.h"
#include "daemon/limits-ops.h"
#include "daemon/resolver.h"
#include "daemon/user-wait.h"
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

int request_parse_user(Daemon *d, const RequestCall *call, json_t *user, uid_t *ret,
                       gk_call_error *ret_error)
{
        const char *name = json_string_value(user);
        uint32_t uid;
        int r;

        if (json_is_integer(user) && json_integer_value(user) >= 0 &&
            json_integer_value(user) < (json_int_t)UINT32_MAX) {
                *ret = (uid_t)json_integer_value(user);
                return 0;
        }
        if (!name || json_string_length(user) == 0 || strlen(name) != json_string_length(user))
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'user' must be a user name or a numeric user id");
        if (json_string_length(user) >= RESOLVER_NAME_MAX)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'user' is longer than %d bytes, longer than any user name "
                                     "gpukeeperd takes",
                                     RESOLVER_NAME_MAX - 1);
        /* "No such user" from a lookup begun before the request would
         * refuse a user created a moment ago. */
        assert(d->resolver && d->server);
        r = resolver_user_uid(d->resolver, name, DAEMON_USER_NAME_WAIT_USEC,
                              call->since_usec ? call->since_usec : now_usec(CLOCK_MONOTONIC),
                              &uid);
        if (r == -EAGAIN)
                return user_wait_add(d, call, name, ret_error);
        if (r == -ENOENT)
                return request_error(ret_error, GK_E_NOT_FOUND, "no such user '%s'", name);
        if (r < 0)
                return request_error(ret_error, GK_E_UNAVAILABLE, "cannot look up user '%s': %s",
                                     name, strerror(-r));
        *ret = (uid_t)uid;
        return 0;
}

bool peer_in_group(const Peer *peer, gid_t gid)
{
        if (peer->gid == gid)
                return true;
        for (size_t i = 0; i < peer->n_groups; i++)
                if (peer->groups[i] == gid)
                        return true;
        return false;
}

bool peer_is_admin(const Peer *peer)
{
        /* Decided at connect time from the resolver's answer (server.c):
         * no NSS lookup on the request path. */
        return peer->uid == 0 || peer->admin;
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
        o = json_pack("{s:s, s:i, s:s}", "version", GK_VERSION, "protocol", GK_PROTO_VERSION,
                      "backend", config_backend_to_string(d->config->backend));
        if (!o)
                return -ENOMEM;
        *ret_result = o;
        return 0;
}

static int handle_status(Daemon *d, const RequestCall *call, json_t *args,
                         json_t **ret_result, gk_call_error *ret_error)
{
        StatusShape shape;
        const char *why;

        if (status_shape_from_args(args, &shape, &why) < 0)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT, "%s", why);
        return status_build(d, shape, ret_result);
}

#if GK_TEST_HOOKS
/* Test hooks (meson -Dtest_hooks=true, for the test suite; root only):
 * `debug.clock` steps the daemon's wall clock by `wall_step_sec` (as NTP
 * does: deadlines must not move) and lets `advance_sec` pass on both
 * clocks; `debug.tick` runs one sampler tick now. Tests wait for these
 * replies instead of sleeping through sample intervals and graces. */
static int debug_root_only(const RequestCall *call, gk_call_error *ret_error)
{
        if (call->peer->uid != 0)
                return request_error(ret_error, GK_E_PERMISSION, "debug requests are root's");
        return 0;
}

static int handle_debug_clock(Daemon *d, const RequestCall *call, json_t *args,
                              json_t **ret_result, gk_call_error *ret_error)
{
        json_t *step = args ? json_object_get(args, "wall_step_sec") : NULL;
        json_t *advance = args ? json_object_get(args, "advance_sec") : NULL;
        const json_int_t limit = 10LL * 365 * 24 * 3600;
        int r;

        r = debug_root_only(call, ret_error);
        if (r != 0)
                return r;
        if ((step && !json_is_integer(step)) || (advance && !json_is_integer(advance)) ||
            (step && llabs(json_integer_value(step)) > limit) ||
            (advance && (json_integer_value(advance) < 0 || json_integer_value(advance) > limit)))
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'wall_step_sec' is an integer (+/- 10 years), "
                                     "'advance_sec' one from 0 to 10 years");
        if (step)
                d->clock.wall_step_usec += (int64_t)json_integer_value(step) * (int64_t)USEC_PER_SEC;
        if (advance)
                d->clock.advance_usec += (uint64_t)json_integer_value(advance) * USEC_PER_SEC;
        log_warning("Test clock: wall step %" PRId64 " s, advanced %" PRIu64 " s.",
                   d->clock.wall_step_usec / (int64_t)USEC_PER_SEC,
                   d->clock.advance_usec / USEC_PER_SEC);
        leases_schedule(d); /* re-arms the lease timer on the new clock */
        (void)env_trash_arm(d); /* and the trash sweep (issue 17 item 7) */
        *ret_result = json_pack("{s:I, s:I}", "wall_usec", (json_int_t)daemon_wall(d),
                                "boot_usec", (json_int_t)daemon_boot(d));
        return *ret_result ? 0 : -ENOMEM;
}

static int handle_debug_tick(Daemon *d, const RequestCall *call, json_t *args,
                             json_t **ret_result, gk_call_error *ret_error)
{
        int r;

        r = debug_root_only(call, ret_error);
        if (r == 0)
                r = no_arguments(args, ret_error);
        if (r != 0)
                return r;
        r = sampler_run_tick(d);
        if (r < 0)
                return r;
        *ret_result = json_pack("{s:I}", "taken_usec", (json_int_t)d->snapshot->taken_usec);
        return *ret_result ? 0 : -ENOMEM;
}

/* `debug.spin` {"ms": N}: hold the event loop for N ms (1-1000), as a
 * costly request would; for tests of the server's fairness between
 * connections (server.c: one request of a connection per turn). */
static int handle_debug_spin(Daemon *d, const RequestCall *call, json_t *args,
                             json_t **ret_result, gk_call_error *ret_error)
{
        json_t *ms = args ? json_object_get(args, "ms") : NULL;
        uint64_t until;
        int r;

        (void)d;
        r = debug_root_only(call, ret_error);
        if (r != 0)
                return r;
        if (!json_is_integer(ms) || json_integer_value(ms) < 1 || json_integer_value(ms) > 1000 ||
            json_object_size(args) != 1)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'ms' (1 to 1000) is the only argument");
        until = now_usec(CLOCK_MONOTONIC) + (uint64_t)json_integer_value(ms) * USEC_PER_MSEC;
        while (now_usec(CLOCK_MONOTONIC) < until)
                ;
        *ret_result = json_object();
        return *ret_result ? 0 : -ENOMEM;
}

/* `debug.store_fault` {"io_error": true|false}: while set, every write of the
 * state database fails with EIO (the store's fault seam, fault-vfs.h), as a
 * failing disk would; false clears it. */
static int handle_debug_store_fault(Daemon *d, const RequestCall *call, json_t *args,
                                    json_t **ret_result, gk_call_error *ret_error)
{
        json_t *io = args ? json_object_get(args, "io_error") : NULL;
        int r;

        r = debug_root_only(call, ret_error);
        if (r != 0)
                return r;
        if (!json_is_boolean(io) || json_object_size(args) != 1)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'io_error' (true or false) is the only argument");
        r = store_set_fault(d->store, json_is_true(io) ? STORE_FAULT_IO_ERROR : STORE_FAULT_NONE);
        if (r < 0)
                return r;
        log_warning("Test fault: state database writes %s.",
                    json_is_true(io) ? "fail with EIO" : "work again");
        *ret_result = json_pack("{s:b, s:I}", "io_error", json_is_true(io), "failed_so_far",
                                (json_int_t)store_faults_injected(d->store));
        return *ret_result ? 0 : -ENOMEM;
}
#endif

static const struct {
        const char *op;
        RequestHandler handler;
} request_table[] = {
#if GK_TEST_HOOKS
        {"debug.clock", handle_debug_clock},
        {"debug.tick", handle_debug_tick},
        {"debug.store_fault", handle_debug_store_fault},
        {"debug.spin", handle_debug_spin},
#endif
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
        {"slurm.prolog", slurm_op_prolog},
        {"slurm.epilog", slurm_op_epilog},
        {"slurm.step", slurm_op_step},
        {"slurm.reconcile", slurm_op_reconcile},
        {"mig.show", mig_op_show},
        {"mig.export", mig_op_export},
        {"mig.apply", mig_op_apply},
        {"mig.assert", mig_op_assert},
        {"audit.list", audit_op_list},
        {"env.config", env_op_config},
        {"limits.show", limits_op_show},
        {"limits.apply", limits_op_apply},
};

json_t *request_reply(uint32_t id, const char *op, uid_t uid, int r, json_t *result,
                      const gk_call_error *error)
{
        if (r == 0)
                return proto_reply_ok(id, result);
        json_decref(result);
        if (r > 0)
                return proto_reply_error(id, r, "%s", error->message);
        if (r == -EBUSY)
                /* Another program holds a lock on the state database
                 * (store.h): a short wait, then this answer, rather than
                 * freezing every client behind it. */
                return proto_reply_error(id, GK_E_BUSY,
                                         "the state database is locked by another program; "
                                         "try '%s' again in a moment",
                                         op);
        log_error_errno(r, "Request '%s' from uid %u failed", op, (unsigned)uid);
        return proto_reply_error(id, GK_E_INTERNAL, "gpukeeperd failed to answer '%s': %s (see its log)",
                                 op, strerror(-r));
}

json_t *request_dispatch(Daemon *d, const Peer *peer, uint32_t id, const char *op, json_t *args,
                         uint64_t since_usec, bool *ret_deferred)
{
        RequestCall call = {.peer = peer, .id = id, .args = args, .since_usec = since_usec};
        gk_call_error error = {};
        json_t *result = NULL;
        int r;

        *ret_deferred = false;
        for (size_t i = 0; i < ELEMENTSOF(request_table); i++) {
                if (strcmp(request_table[i].op, op) != 0)
                        continue;
                call.op = request_table[i].op;
                r = request_table[i].handler(d, &call, args, &result, &error);
                if (r == REQUEST_DEFERRED) {
                        *ret_deferred = true;
                        return NULL;
                }
                return request_reply(id, call.op, peer->uid, r, result, &error);
        }
        return proto_reply_error(id, GK_E_UNKNOWN_OP,
                                 "unknown operation '%s' (this gpukeeperd is version %s)", op,
                                 GK_VERSION);
}
