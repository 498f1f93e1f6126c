/* Per-user limits in the daemon: which backend applies them (chosen at start
 * and at reload from limits.backend), the user's limits.groups from the
 * resolver's cache (daemon/resolver.h: the loop never calls NSS; a user
 * whose groups have no answer yet is "groups pending" and gets its limits
 * when the answer comes), what was applied to each user and
 * whether it took, the hooks leases call at grant and release (the per_gpu
 * part follows the GPUs a user holds), and the requests `limits.show` and
 * `limits.apply`. A limit that cannot be applied is logged, raised as a
 * "daemon" alert, recorded in the audit trail and shown as failed by
 * `gpukeeper limits show`; it is never reported as applied. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "config/limits-config.h"
#include "policy/limits-policy.h"

typedef struct Daemon Daemon;
typedef struct RequestCall RequestCall;
typedef struct LimitsCgroupfs LimitsCgroupfs;
typedef struct gk_call_error gk_call_error;

/* Users whose applied limits are remembered (each one a few hundred bytes). */
#define LIMITS_OPS_MAX_USERS 65536

typedef enum LimitsApplyState {
        LIMITS_NOT_APPLIED, /* nothing sent for these values yet */
        LIMITS_PENDING,     /* a D-Bus call is in flight */
        LIMITS_APPLIED,     /* the backend took every value */
        LIMITS_FAILED,      /* it did not: `error` says why */
} LimitsApplyState;

typedef struct LimitsUser {
        Daemon *daemon; /* for the D-Bus reply */
        uid_t uid;
        PolicyUserLimits limits; /* the values last sent (group pointers not kept) */
        LimitsApplyState state;
        char error[512];
        uint64_t changed_usec; /* wall time of the last state change */
        sd_bus_slot *slot;     /* the call in flight */
        bool groups_pending;   /* the resolver has no answer for the user's groups yet:
                                * nothing applied until it has (limits_ops_tick) */
} LimitsUser;

typedef struct LimitsState {
        bool enabled;                /* the config has a limits section */
        ConfigLimitsBackend backend; /* SYSTEMD or CGROUPFS once started */
        char detail[256];            /* what the backend found ("v1 cpu,memory,pids") */
        char unavailable[256];       /* why the backend cannot be used; "" when it can */
        sd_bus *bus;
        LimitsCgroupfs *fs;
        LimitsUser **users;
        size_t n_users;
        uint64_t groups_generation; /* resolver_groups_generation() last looked at */
} LimitsState;

/* Pick and open the backend, then apply the limits of every user holding a
 * lease. A backend that cannot be opened is logged and alerted, not fatal:
 * every apply then fails with its reason. Returns 0 or -ENOMEM. */
int limits_ops_start(Daemon *d);
/* After a reload: close, start again with the new config, re-apply the
 * users known so far. */
void limits_ops_reload(Daemon *d);
void limits_ops_done(LimitsState *s);

/* A lease of `uid` was granted or ended: apply the user's limits again when
 * they changed (the per_gpu part). `run_pid` > 0 is a `gpukeeper run` client
 * just granted: with cgroupfs it is moved into the user's cgroups (its
 * command is forked after the grant, inside them). */
void limits_ops_user_changed(Daemon *d, uid_t uid, pid_t run_pid);

/* After each sample: when the resolver has new answers about users' groups
 * (resolver_user_groups; the groups are never looked up on the loop), work
 * out again the limits of every known user and apply what changed; users
 * whose groups were pending get their limits now. */
void limits_ops_tick(Daemon *d);

/* Requests: `limits.show` {user?} and `limits.apply` {user, pid?} (admins). */
int limits_op_show(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                   gk_call_error *ret_error);
int limits_op_apply(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                    gk_call_error *ret_error);
