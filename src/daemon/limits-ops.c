/* Per-user limits in the daemon; see limits-ops.h. */
#include "daemon/limits-ops.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "basic/log.h"
#include "basic/macro.h"
#include "basic/time-util.h"
#include "daemon/daemon.h"
#include "daemon/request.h"
#include "daemon/resolver.h"
#include "limits/limits-cgroupfs.h"
#include "limits/limits-systemd.h"
#include "store/store.h"

/* How long systemd has to answer SetUnitProperties. */
#define LIMITS_DBUS_TIMEOUT_USEC (5 * USEC_PER_SEC)

static const char *state_to_string(LimitsApplyState s)
{
        switch (s) {
        case LIMITS_PENDING:
                return "pending";
        case LIMITS_APPLIED:
                return "applied";
        case LIMITS_FAILED:
                return "failed";
        case LIMITS_NOT_APPLIED:
        default:
                return "not applied";
        }
}

/* The names of the limits.groups entries `uid` is a member of (primary or
 * supplementary), in *ret_names[0..*ret_n) pointing into the config, from
 * the resolver's cache: the user's gids (resolver_user_groups) and each
 * group's gid (resolver_lookup; daemon_resolver_update lists them). A user
 * without a passwd entry is a member of none. *ret_pending is true when an
 * answer that could change the result has not come yet: the user's groups,
 * or the gid of a group of the config (a failed or missing lookup). */
static int user_limit_groups(const Daemon *d, uid_t uid, const char ***ret_names, size_t *ret_n,
                             bool *ret_pending)
{
        const PolicyLimitRules *rules = &d->config->limits.rules;
        _cleanup_free_ uint32_t *gids = NULL;
        const char **names;
        size_t n_gids = 0, n = 0;
        int r;

        *ret_names = NULL;
        *ret_n = 0;
        *ret_pending = false;
        if (rules->n_groups == 0)
                return 0;
        if (!d->resolver) {
                *ret_pending = true; /* nothing to ask: never NSS on the loop */
                return 0;
        }
        r = resolver_user_groups(d->resolver, uid, DAEMON_USER_NAME_WAIT_USEC, &gids, &n_gids);
        if (r == -ENOENT)
                return 0;
        if (r == -EAGAIN) {
                *ret_pending = true;
                return 0;
        }
        if (r < 0)
                return r;
        names = calloc(rules->n_groups, sizeof *names);
        if (!names)
                return -ENOMEM;
        for (size_t i = 0; i < rules->n_groups; i++) {
                uint32_t gid;

                r = resolver_lookup(d->resolver, RESOLVER_GROUP, rules->groups[i].group, &gid);
                if (r == -ENOENT)
                        continue;
                if (r < 0) {
                        *ret_pending = true;
                        continue;
                }
                for (size_t j = 0; j < n_gids; j++)
                        if (gids[j] == gid) {
                                names[n++] = rules->groups[i].group;
                                break;
                        }
        }
        *ret_names = names;
        *ret_n = n;
        return 0;
}

static int decide(const Daemon *d, uid_t uid, PolicyUserLimits *ret, json_t **ret_groups,
                  bool *ret_pending)
{
        _cleanup_free_ const char **names = NULL;
        size_t n = 0;
        int r;

        r = user_limit_groups(d, uid, &names, &n, ret_pending);
        if (r < 0)
                return r;
        policy_limits_decide(&d->config->limits.rules, names, n, leases_held_by(d, uid), ret);
        if (ret_groups) {
                json_t *a = json_array();

                for (size_t i = 0; a && i < n; i++)
                        json_array_append_new(a, json_string(names[i]));
                if (!a)
                        return -ENOMEM;
                *ret_groups = a;
        }
        return 0;
}

static LimitsUser *find_user(LimitsState *s, uid_t uid)
{
        for (size_t i = 0; i < s->n_users; i++)
                if (s->users[i]->uid == uid)
                        return s->users[i];
        return NULL;
}

static LimitsUser *get_user(Daemon *d, uid_t uid)
{
        LimitsState *s = &d->limits;
        LimitsUser *u = find_user(s, uid), **grown;

        if (u)
                return u;
        if (s->n_users >= LIMITS_OPS_MAX_USERS)
                return NULL;
        grown = reallocarray(s->users, s->n_users + 1, sizeof *s->users);
        if (!grown)
                return NULL;
        s->users = grown;
        u = calloc(1, sizeof *u);
        if (!u)
                return NULL;
        *u = (LimitsUser){.daemon = d, .uid = uid};
        s->users[s->n_users++] = u;
        return u;
}

static void set_failed(Daemon *d, LimitsUser *u, const char *why)
{
        char text[768];

        u->state = LIMITS_FAILED;
        u->changed_usec = daemon_wall(d);
        snprintf(u->error, sizeof u->error, "%s", why);
        snprintf(text, sizeof text, "Per-user limits of uid %u NOT applied (%s backend): %s",
                 (unsigned)u->uid, config_limits_backend_to_string(d->limits.backend), why);
        log_error("%s", text);
        store_audit(d->store, (int64_t)u->uid, "limits.failed",
                    config_limits_backend_to_string(d->limits.backend), why);
        daemon_alert(d, CONFIG_ALERT_DAEMON, "limits", "per-user limits not applied", text,
                     NULL);
}

static void set_applied(Daemon *d, LimitsUser *u)
{
        char v[_POLICY_LIMIT_MAX][32];

        for (int r = 0; r < _POLICY_LIMIT_MAX; r++)
                config_limits_format(r, u->limits.limit[r].value, v[r], sizeof v[r]);
        u->state = LIMITS_APPLIED;
        u->error[0] = '\0';
        u->changed_usec = daemon_wall(d);
        log_info("Limits of uid %u applied (%s): cpu %s, memory %s, tasks %s.", (unsigned)u->uid,
                 config_limits_backend_to_string(d->limits.backend), v[0], v[1], v[2]);
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        LimitsUser *u = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        u->slot = sd_bus_slot_unref(u->slot);
        if (e) {
                char why[512];

                snprintf(why, sizeof why, "systemd refused SetUnitProperties on user-%u.slice: %s",
                         (unsigned)u->uid, e->message ? e->message : e->name);
                set_failed(u->daemon, u, why);
        } else
                set_applied(u->daemon, u);
        return 0;
}

/* Send or write the user's current limits. `force`: even when the same
 * values were applied already (limits.apply, a reload). */
static void apply_user(Daemon *d, LimitsUser *u, const PolicyUserLimits *limits, bool force)
{
        LimitsState *s = &d->limits;
        char why[1024];
        int r;

        if (!force && (u->state == LIMITS_APPLIED || u->state == LIMITS_PENDING) &&
            policy_limits_same_values(&u->limits, limits))
                return;
        u->limits = *limits;
        for (int i = 0; i < _POLICY_LIMIT_MAX; i++)
                u->limits.limit[i].group = NULL; /* the config may be reloaded */
        if (s->unavailable[0]) {
                set_failed(d, u, s->unavailable);
                return;
        }
        if (s->backend == CONFIG_LIMITS_CGROUPFS) {
                r = limits_cgroupfs_apply(s->fs, u->uid, limits, why, sizeof why);
                if (r < 0)
                        set_failed(d, u, why);
                else
                        set_applied(d, u);
                return;
        }

        {
                sd_bus_message *m = NULL;

                u->slot = sd_bus_slot_unref(u->slot); /* a newer call replaces one in flight */
                r = limits_systemd_message(s->bus, u->uid, limits, &m);
                if (r >= 0)
                        r = sd_bus_call_async(s->bus, &u->slot, m, on_reply, u,
                                              LIMITS_DBUS_TIMEOUT_USEC);
                sd_bus_message_unref(m);
                if (r < 0) {
                        snprintf(why, sizeof why, "cannot call systemd's SetUnitProperties: %s",
                                 strerror(-r));
                        set_failed(d, u, why);
                        return;
                }
                u->state = LIMITS_PENDING;
                u->changed_usec = daemon_wall(d);
        }
}

static int apply_uid(Daemon *d, uid_t uid, bool force, LimitsUser **ret)
{
        PolicyUserLimits limits;
        LimitsUser *u;
        bool pending;
        int r;

        r = decide(d, uid, &limits, NULL, &pending);
        if (r < 0)
                return r;
        u = get_user(d, uid);
        if (!u)
                return -ENOMEM;
        if (pending != u->groups_pending)
                log_info("Groups of uid %u for its limits: %s.", (unsigned)uid,
                         pending ? "waiting for the group database"
                                 : "answered, applying its limits");
        u->groups_pending = pending;
        /* Limits of the wrong group are worse than a moment without: the
         * answer comes to limits_ops_tick, which applies them then. */
        if (!pending)
                apply_user(d, u, &limits, force);
        if (ret)
                *ret = u;
        return 0;
}

void limits_ops_tick(Daemon *d)
{
        LimitsState *s = &d->limits;
        uint64_t generation;
        bool news;

        if (!s->enabled || !d->resolver)
                return;
        generation = resolver_groups_generation(d->resolver);
        news = generation != s->groups_generation;
        s->groups_generation = generation;
        for (size_t i = 0; i < s->n_users; i++) {
                LimitsUser *u = s->users[i];
                int r;

                /* New answers: everyone known (apply_user sends only what
                 * changed); otherwise only those still waiting, whose group
                 * gid may have come through resolver_lookup. */
                if (!news && !u->groups_pending)
                        continue;
                r = apply_uid(d, u->uid, false, NULL);
                if (r == -ENOMEM)
                        log_error_errno(r, "Cannot work out the limits of uid %u",
                                        (unsigned)u->uid);
        }
}

void limits_ops_user_changed(Daemon *d, uid_t uid, pid_t run_pid)
{
        LimitsState *s = &d->limits;
        char why[512];
        int r;

        if (!s->enabled)
                return;
        r = apply_uid(d, uid, false, NULL);
        if (r < 0)
                log_error_errno(r, "Cannot work out the limits of uid %u", (unsigned)uid);
        if (run_pid <= 0 || s->backend != CONFIG_LIMITS_CGROUPFS || !s->fs)
                return;
        /* In strict mode the run already sits in its lease's cgroup v2 (the
         * fence); a process has one v2 cgroup, so only v1 hierarchies move. */
        if (d->strict.fence)
                for (int i = 0; i < _POLICY_LIMIT_MAX; i++)
                        if (s->fs->mount[i] && s->fs->v2[i]) {
                                log_warning("gpukeeper run (pid %d) of uid %u keeps its strict "
                                            "mode lease cgroup: the user's %s limit (cgroup v2) "
                                            "does not hold it.",
                                            (int)run_pid, (unsigned)uid,
                                            policy_limit_resource_to_string(i));
                                break;
                        }
        r = limits_cgroupfs_attach(s->fs, uid, run_pid, !d->strict.fence, why, sizeof why);
        if (r < 0) {
                char text[768];

                snprintf(text, sizeof text,
                         "gpukeeper run (pid %d) of uid %u is NOT under the user's limits: %s",
                         (int)run_pid, (unsigned)uid, why);
                log_error("%s", text);
                store_audit(d->store, (int64_t)uid, "limits.attach_failed", "run", why);
                daemon_alert(d, CONFIG_ALERT_DAEMON, "limits", "run not under limits", text,
                             NULL);
        }
}

int limits_ops_start(Daemon *d)
{
        LimitsState *s = &d->limits;
        const ConfigLimits *c = &d->config->limits;
        int r;

        *s = (LimitsState){.users = s->users, .n_users = s->n_users};
        s->enabled = c->enabled;
        if (!s->enabled)
                return 0;
        s->backend = c->backend;
        if (s->backend == CONFIG_LIMITS_AUTO)
                s->backend = sd_booted() > 0 ? CONFIG_LIMITS_SYSTEMD : CONFIG_LIMITS_CGROUPFS;

        if (s->backend == CONFIG_LIMITS_SYSTEMD) {
                r = sd_bus_open_system(&s->bus);
                if (r >= 0)
                        r = sd_bus_attach_event(s->bus, d->event, SD_EVENT_PRIORITY_NORMAL);
                if (r < 0) {
                        snprintf(s->unavailable, sizeof s->unavailable,
                                 "cannot connect to systemd on the system bus: %s", strerror(-r));
                        s->bus = sd_bus_flush_close_unref(s->bus);
                } else {
                        const char *address = NULL;

                        (void)sd_bus_get_address(s->bus, &address);
                        snprintf(s->detail, sizeof s->detail, "SetUnitProperties on %s",
                                 address ? address : "the system bus");
                }
        } else {
                char why[256] = "";

                r = limits_cgroupfs_discover("/proc/self/mountinfo", c->cgroupfs_parent, &s->fs,
                                             why, sizeof why);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        snprintf(s->unavailable, sizeof s->unavailable, "%s", why);
                else
                        limits_cgroupfs_describe(s->fs, s->detail, sizeof s->detail);
        }
        if (s->unavailable[0]) {
                log_error("Per-user limits cannot be applied (%s backend): %s",
                          config_limits_backend_to_string(s->backend), s->unavailable);
                daemon_alert(d, CONFIG_ALERT_DAEMON, "limits", "per-user limits unavailable",
                             s->unavailable, NULL);
        } else
                log_info("Per-user limits through %s (%s).",
                         config_limits_backend_to_string(s->backend), s->detail);

        /* Everyone holding a lease now, and everyone applied before a reload. */
        for (const Lease *l = d->leases.leases; l; l = l->next)
                if (!find_user(s, l->rec.uid) && !get_user(d, l->rec.uid))
                        return -ENOMEM;
        for (size_t i = 0; i < s->n_users; i++) {
                r = apply_uid(d, s->users[i]->uid, true, NULL);
                if (r == -ENOMEM)
                        return r;
        }
        return 0;
}

static void close_backend(LimitsState *s)
{
        for (size_t i = 0; i < s->n_users; i++)
                s->users[i]->slot = sd_bus_slot_unref(s->users[i]->slot);
        s->bus = sd_bus_flush_close_unref(s->bus);
        limits_cgroupfs_free(s->fs);
        s->fs = NULL;
}

void limits_ops_reload(Daemon *d)
{
        int r;

        close_backend(&d->limits);
        r = limits_ops_start(d);
        if (r < 0)
                log_error_errno(r, "Cannot re-apply the per-user limits after reload");
}

void limits_ops_done(LimitsState *s)
{
        close_backend(s);
        for (size_t i = 0; i < s->n_users; i++)
                free(s->users[i]);
        free(s->users);
        *s = (LimitsState){};
}

static json_t *limit_json(PolicyLimitResource r, const PolicyUserLimit *l)
{
        char value[32], base[32], per_gpu[32];

        config_limits_format(r, l->value, value, sizeof value);
        config_limits_format(r, l->base, base, sizeof base);
        config_limits_format(r, l->per_gpu, per_gpu, sizeof per_gpu);
        return json_pack("{s:s, s:s, s:s, s:s?, s:s, s:i, s:o}", "value", value, "base", base,
                         "from", policy_limit_source_to_string(l->source), "group", l->group,
                         "per_gpu", per_gpu, "gpus", (int)l->n_gpus, "raw",
                         l->value == POLICY_LIMIT_INFINITY ? json_null()
                                                           : json_integer((json_int_t)l->value));
}

/* The reply of both requests for `uid`. */
static int user_json(Daemon *d, uid_t uid, json_t **ret)
{
        LimitsState *s = &d->limits;
        PolicyUserLimits limits;
        LimitsUser *u = find_user(s, uid);
        json_t *groups = NULL, *o, *lims;
        const char *state;
        int r;

        bool pending = false;

        r = decide(d, uid, &limits, &groups, &pending);
        if (r < 0)
                return r;
        lims = json_object();
        for (int i = 0; lims && i < _POLICY_LIMIT_MAX; i++)
                json_object_set_new(lims, policy_limit_resource_to_string(i),
                                    limit_json(i, &limits.limit[i]));
        /* What the backend holds for these values: applied only when the
         * values now due are the ones it confirmed. */
        if (!s->enabled)
                state = "disabled";
        else if (pending)
                state = "groups pending"; /* what is due is not known yet */
        else if (!u)
                state = "not applied";
        else if (!policy_limits_same_values(&u->limits, &limits) && u->state != LIMITS_FAILED)
                state = "not applied";
        else
                state = state_to_string(u->state);
        o = json_pack("{s:i, s:s?, s:o, s:i, s:o, s:b, s:s, s:s, s:s, s:b, s:s?, s:I}", "uid",
                      (int)uid, "user", daemon_user_name(d, uid), "groups", groups, "gpus",
                      (int)leases_held_by(d, uid), "limits", lims, "enabled", s->enabled,
                      "backend",
                      s->enabled ? config_limits_backend_to_string(s->backend) : "none",
                      "backend_detail", s->unavailable[0] ? s->unavailable : s->detail, "state",
                      state, "applied", strcmp(state, "applied") == 0, "error",
                      u && u->state == LIMITS_FAILED ? u->error : NULL, "changed_usec",
                      (json_int_t)(u ? u->changed_usec : 0));
        if (!o || json_object_set_new(o, "groups_pending", json_boolean(pending)) < 0) {
                json_decref(o);
                return -ENOMEM;
        }
        *ret = o;
        return 0;
}

int limits_op_show(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                   gk_call_error *ret_error)
{
        json_t *user = args ? json_object_get(args, "user") : NULL;
        uid_t uid = call->peer->uid;
        int r;

        if (args && json_object_size(args) > (size_t)(user != NULL))
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "limits.show takes 'user' only");
        if (user) {
                r = request_parse_user(d, call, user, &uid, ret_error);
                if (r != 0)
                        return r;
                if (uid != call->peer->uid && !peer_is_admin(call->peer))
                        return request_error(ret_error, GK_E_PERMISSION,
                                             "only root and members of " ADMIN_GROUP
                                             " may see other users' limits");
        }
        return user_json(d, uid, ret_result);
}

int limits_op_apply(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                    gk_call_error *ret_error)
{
        json_t *user = args ? json_object_get(args, "user") : NULL;
        json_t *pid = args ? json_object_get(args, "pid") : NULL;
        LimitsUser *u = NULL;
        uid_t uid;
        int r;

        if (!peer_is_admin(call->peer))
                return request_error(ret_error, GK_E_PERMISSION,
                                     "only root and members of " ADMIN_GROUP
                                     " may apply limits");
        if (!user || json_object_size(args) > 1 + (size_t)(pid != NULL))
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "limits.apply takes 'user' (required) and 'pid' only");
        if (pid && (!json_is_integer(pid) || json_integer_value(pid) <= 0 ||
                    json_integer_value(pid) > INT32_MAX))
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'pid' must be a process id");
        if (pid && call->peer->uid != 0)
                return request_error(ret_error, GK_E_PERMISSION,
                                     "only root may move a process under a user's limits");
        r = request_parse_user(d, call, user, &uid, ret_error);
        if (r != 0)
                return r;
        if (!d->limits.enabled)
                return request_error(ret_error, GK_E_UNAVAILABLE,
                                     "no limits section in %s: per-user limits are off",
                                     d->config_path ? d->config_path : "the configuration");
        r = apply_uid(d, uid, true, &u);
        if (r < 0)
                return r;
        if (pid)
                limits_ops_user_changed(d, uid, (pid_t)json_integer_value(pid));
        store_audit(d->store, (int64_t)call->peer->uid, "limits.apply",
                    daemon_user_name(d, uid) ?: "-", state_to_string(u->state));
        return user_json(d, uid, ret_result);
}
