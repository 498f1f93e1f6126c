/* Lease, queue and drain requests; see lease-ops.h. Every refusal that
 * concerns someone else's lease is audited. */
#include "daemon/lease-ops.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/log.h"
#include "basic/parse.h"
#include "basic/user-util.h"
#include "basic/proc.h"
#include "basic/time-util.h"
#include "daemon/idle.h"
#include "daemon/leases.h"
#include "daemon/refusals.h"
#include "proto/json-dump.h"

/* What binds an admin whose groups no policy.groups entry names: no device
 * cap and the longest duration the config accepts. The default duration
 * stays the policy's (an admin's lease without --time is no different). */
static const ConfigPolicyLimits *admin_limits(const Daemon *d, ConfigPolicyLimits *buf)
{
        *buf = (ConfigPolicyLimits){
            .max_gpus = 0,
            .default_duration_usec = d->config->policy.limits.default_duration_usec,
            .max_duration_usec = CONFIG_POLICY_DURATION_MAX,
        };
        return buf;
}

/* The policy limits of a peer: the first of policy.groups whose gid (as the
 * resolver last saw it, never an NSS call here) is among the peer's groups
 * (kernel view), else the defaults. A group of the policy that has no answer
 * yet could be the one that applies, so the request is refused as
 * unavailable rather than served under the defaults (fail closed). Admins
 * (root, group gpukeeper-admin) are not bound by the per-user caps unless a
 * policy.groups entry names one of their groups: the config then says so
 * explicitly (gpukeeper.yaml(5)). `buf` holds the admin's limits. */
static int peer_limits(const Daemon *d, const Peer *peer, ConfigPolicyLimits *buf,
                       const ConfigPolicyLimits **ret, gk_call_error *ret_error)
{
        const ConfigPolicy *p = &d->config->policy;

        for (size_t i = 0; i < p->n_groups; i++) {
                uint32_t gid;
                int r;

                r = resolver_lookup(d->resolver, RESOLVER_GROUP, p->groups[i].group, &gid);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return request_error(ret_error, GK_E_UNAVAILABLE,
                                             "the group database has not answered for group "
                                             "'%s' of the policy yet; retry in a moment",
                                             p->groups[i].group);
                if (peer_in_group(peer, (gid_t)gid)) {
                        *ret = &p->groups[i].limits;
                        return 0;
                }
        }
        *ret = peer_is_admin(peer) ? admin_limits(d, buf) : &p->limits;
        return 0;
}

/* A named device that is drained: say so, by whom and why, and that waiting
 * will not help until it is undrained (issue 17). Returns the error, or 0
 * when no named device is drained. */
static int drained_error(Daemon *d, const QueueEntry *q, gk_call_error *ret_error)
{
        for (size_t i = 0; i < q->n_named; i++) {
                _cleanup_free_ char *reason = NULL;
                const char *gpu = q->named[i], *by = "an admin";
                const GpuDevice *g = NULL;
                int64_t uid = -1;

                /* A MIG instance is drained with its GPU too. */
                for (size_t k = 0; d->snapshot && !g && k < d->snapshot->n_gpus; k++)
                        for (size_t m = 0; m < d->snapshot->gpus[k].n_instances; m++)
                                if (strcmp(d->snapshot->gpus[k].instances[m].uuid,
                                           q->named[i]) == 0)
                                        g = &d->snapshot->gpus[k];
                if (g)
                        gpu = g->uuid;
                if (!leases_is_drained(d, q->named[i], gpu))
                        continue;
                if (store_drain_get(d->store, q->named[i], &uid, &reason) == -ENOENT)
                        (void)store_drain_get(d->store, gpu, &uid, &reason);
                if (uid >= 0)
                        by = daemon_user_text(d, (uid_t)uid);
                return request_error(ret_error, GK_E_NO_CAPACITY,
                                     "%s is drained by %s%s%s%s; waiting will not help until an "
                                     "admin undrains it ('gpukeeper admin undrain %s')",
                                     q->named[i], by, reason ? " (" : "", reason ? reason : "",
                                     reason ? ")" : "", q->named[i]);
        }
        return 0;
}

/* Optional non-negative integer argument; *ret untouched when absent. */
static int arg_uint(json_t *args, const char *key, uint64_t max, uint64_t *ret,
                    gk_call_error *ret_error)
{
        json_t *v = args ? json_object_get(args, key) : NULL;

        if (!v)
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            (uint64_t)json_integer_value(v) > max)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'%s' must be an integer from 0 to %" PRIu64, key, max);
        *ret = (uint64_t)json_integer_value(v);
        return 0;
}

static int arg_bool(json_t *args, const char *key, bool *ret, gk_call_error *ret_error)
{
        json_t *v = args ? json_object_get(args, key) : NULL;

        if (!v)
                return 0;
        if (!json_is_boolean(v))
                return request_error(ret_error, GK_E_INVALID_ARGUMENT, "'%s' must be true or false",
                                     key);
        *ret = json_is_true(v);
        return 0;
}

static int arg_string(json_t *args, const char *key, size_t max, const char **ret,
                      gk_call_error *ret_error)
{
        json_t *v = args ? json_object_get(args, key) : NULL;

        if (!v)
                return 0;
        if (!json_is_string(v) || json_string_length(v) > max)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'%s' must be a string of at most %zu bytes", key, max);
        *ret = json_string_value(v);
        return 0;
}

/* Arguments must be among `allowed`, so a typo is an error, not ignored. */
static int check_keys(json_t *args, const char *const *allowed, gk_call_error *ret_error)
{
        const char *key;
        json_t *v;

        json_object_foreach(args, key, v)
        {
                bool ok = false;

                for (size_t i = 0; allowed[i]; i++)
                        ok = ok || strcmp(key, allowed[i]) == 0;
                if (!ok)
                        return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                             "unknown argument '%s'", key);
        }
        return 0;
}

/* Resolve one named device: a GPU index ("1" or 1) or a GPU/MIG uuid, to
 * the uuid of an allocatable device of the latest snapshot. */
static int resolve_device(const Daemon *d, json_t *item, char **ret, gk_call_error *ret_error)
{
        const GpuSnapshot *snap = d->snapshot;
        const char *text = json_string_value(item);
        long long index = -1;

        if (json_is_integer(item)) {
                index = json_integer_value(item);
                if (index < 0 || index >= GPU_MAX_DEVICES)
                        return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                             "there is no GPU %lld", index);
        } else if (text && text[0] >= '0' && text[0] <= '9') {
                uint64_t v;

                if (parse_uint64(text, &v) < 0 || v >= GPU_MAX_DEVICES)
                        return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                             "'%s' is neither a GPU index nor a UUID", text);
                index = (long long)v;
        } else if (!text)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "devices are named by UUID or GPU index");

        for (size_t i = 0; snap && i < snap->n_gpus; i++) {
                const GpuDevice *g = &snap->gpus[i];
                bool named = index >= 0 ? (long long)g->index == index : strcmp(g->uuid, text) == 0;

                if (named && g->mig_enabled)
                        return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                             "GPU %u is in MIG mode: ask for its instances "
                                             "(--mig PROFILE or a MIG-… UUID)",
                                             g->index);
                if (named)
                        return (*ret = strdup(g->uuid)) ? 0 : -ENOMEM;
                for (size_t k = 0; index < 0 && k < g->n_instances; k++)
                        if (strcmp(g->instances[k].uuid, text) == 0)
                                return (*ret = strdup(text)) ? 0 : -ENOMEM;
        }
        if (index >= 0)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT, "there is no GPU %lld",
                                     index);
        return request_error(ret_error, GK_E_INVALID_ARGUMENT, "there is no device %s", text);
}

static int parse_mig_items(json_t *mig, QueueEntry *e, gk_call_error *ret_error)
{
        size_t i;
        json_t *item;

        if (!json_is_array(mig) || json_array_size(mig) == 0 ||
            json_array_size(mig) > POLICY_MAX_REQUEST_ITEMS)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'mig' must be a list of 1 to %d {profile, count} items",
                                     POLICY_MAX_REQUEST_ITEMS);
        e->mig = calloc(json_array_size(mig), sizeof *e->mig);
        if (!e->mig)
                return -ENOMEM;
        json_array_foreach(mig, i, item)
        {
                json_t *profile = json_object_get(item, "profile");
                json_t *count = json_object_get(item, "count");

                if (!json_is_string(profile) || json_string_length(profile) == 0 ||
                    json_string_length(profile) >= POLICY_PROFILE_MAX ||
                    (count && (!json_is_integer(count) || json_integer_value(count) < 1 ||
                               json_integer_value(count) > LEASE_MAX_DEVICES)))
                        return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                             "MIG item %zu: needs a 'profile' such as 3g.40gb "
                                             "and a 'count' from 1 to %d",
                                             i + 1, LEASE_MAX_DEVICES);
                snprintf(e->mig[i].profile, sizeof e->mig[i].profile, "%s",
                         json_string_value(profile));
                e->mig[i].count = count ? (unsigned)json_integer_value(count) : 1;
                e->n_mig++;
        }
        return 0;
}

/* What the request asks for: exactly one of gpus / devices / mig (none: 1 GPU). */
static int parse_wants(const Daemon *d, json_t *args, QueueEntry *e, unsigned *ret_count,
                       gk_call_error *ret_error)
{
        json_t *devices = json_object_get(args, "devices"), *mig = json_object_get(args, "mig");
        uint64_t gpus = 0;
        unsigned count = 0;
        int r;

        _Static_assert(LEASE_MAX_DEVICES == GK_PROTO_MAX_LEASE_DEVICES,
                       "the store holds what the protocol lets a lease ask for");
        r = arg_uint(args, "gpus", LEASE_MAX_DEVICES, &gpus, ret_error);
        if (r != 0 || (json_object_get(args, "gpus") && gpus == 0))
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'gpus' must be an integer from 1 to %d (what one lease "
                                     "may hold)",
                                     LEASE_MAX_DEVICES);
        if ((json_object_get(args, "gpus") != NULL) + (devices != NULL) + (mig != NULL) > 1)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "ask for 'gpus', 'devices' or 'mig', not several");

        if (devices) {
                size_t i;
                json_t *item;

                if (!json_is_array(devices) || json_array_size(devices) == 0 ||
                    json_array_size(devices) > POLICY_MAX_REQUEST_ITEMS)
                        return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                             "'devices' must name 1 to %d devices",
                                             POLICY_MAX_REQUEST_ITEMS);
                e->named = calloc(json_array_size(devices), sizeof *e->named);
                if (!e->named)
                        return -ENOMEM;
                json_array_foreach(devices, i, item)
                {
                        r = resolve_device(d, item, &e->named[i], ret_error);
                        if (r != 0)
                                return r;
                        e->n_named++;
                }
                count = (unsigned)e->n_named;
        } else if (mig) {
                r = parse_mig_items(mig, e, ret_error);
                if (r != 0)
                        return r;
                for (size_t i = 0; i < e->n_mig; i++)
                        count += e->mig[i].count;
                if (count > LEASE_MAX_DEVICES)
                        return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                             "a lease holds at most %d devices",
                                             LEASE_MAX_DEVICES);
        } else {
                e->n_gpus = gpus ? (unsigned)gpus : 1;
                count = e->n_gpus;
        }
        *ret_count = count;
        return 0;
}

static void audit_refusal(Daemon *d, const Peer *peer, const char *action, const char *subject,
                          const char *why)
{
        /* One row per burst of the same refusal (refusals.h). */
        refusals_audit(d, peer->uid, action, subject, why);
}

/* The request as the grant's audit row holds it: the text of
 * json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS), through json-dump's
 * writer (~2 k instructions against jansson's ~9.5 k for an acquire's
 * arguments), jansson's dump for what the writer declines. NULL when out
 * of memory (or, as json_dumps, for no arguments). */
static char *request_text(const json_t *args)
{
        char *text;
        size_t len;

        if (args && json_dump_compact_sorted(args, &text, &len) == 0)
                return text;
        return json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
}

int lease_op_acquire(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                     gk_call_error *ret_error)
{
        static const char *const allowed[] = {"kind",         "gpus", "devices", "mig",
                                              "duration_sec", "wait", "command", "share_bytes",
                                              NULL};
        const Peer *peer = call->peer;
        ConfigPolicyLimits admin_buf;
        const ConfigPolicyLimits *limits = NULL;
        _cleanup_free_ PolicyDevice *devs = NULL;
        QueueEntry *e = NULL;
        const char *kind = NULL, *command = NULL;
        uint64_t duration_sec = 0, request_id, share_bytes = 0;
        PolicyUserUsage usage;
        PolicyRequest req;
        char reason[160];
        bool wait = true;
        size_t n_devs = 0;
        unsigned count = 0;
        int r;

        /* backend: slurm: Slurm schedules this node; the CLI goes to srun/salloc. */
        if (d->config->backend == CONFIG_BACKEND_SLURM)
                return request_error(ret_error, GK_E_SLURM_BACKEND,
                                     "this node leases GPUs through Slurm (backend: slurm): "
                                     "use srun or salloc");
        r = peer_limits(d, peer, &admin_buf, &limits, ret_error);
        if (r != 0)
                return r;
        if (!args)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT, "'kind' is required");
        r = check_keys(args, allowed, ret_error);
        if (r == 0)
                r = arg_string(args, "kind", 16, &kind, ret_error);
        if (r == 0 && (!kind || (strcmp(kind, "run") != 0 && strcmp(kind, "manual") != 0)))
                r = request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                  "'kind' must be \"run\" or \"manual\"");
        if (r == 0)
                r = arg_uint(args, "duration_sec", GK_PROTO_MAX_DURATION_SEC, &duration_sec,
                             ret_error);
        if (r == 0)
                r = arg_bool(args, "wait", &wait, ret_error);
        if (r == 0)
                r = arg_string(args, "command", LEASE_COMMAND_MAX, &command, ret_error);
        if (r == 0)
                r = arg_uint(args, "share_bytes", LEASE_SHARE_MAX, &share_bytes, ret_error);
        if (r == 0 && json_object_get(args, "share_bytes") && share_bytes == 0)
                r = request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                  "'share_bytes' must be at least 1 MiB");
        if (r != 0)
                return r;

        e = calloc(1, sizeof *e);
        if (!e)
                return -ENOMEM;
        e->kind = strcmp(kind, "run") == 0 ? LEASE_RUN : LEASE_MANUAL;
        e->conn_id = peer->conn_id;
        e->msg_id = call->id;
        e->uid = peer->uid;
        e->pid = peer->pid;
        e->no_wait = !wait;
        e->max_gpus = (unsigned)limits->max_gpus;
        e->share_bytes = share_bytes;
        if (e->kind == LEASE_RUN && json_object_get(args, "duration_sec")) {
                r = request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                  "a run lease lasts as long as its command; no duration");
                goto fail;
        }
        if (e->kind == LEASE_MANUAL) {
                e->duration_usec =
                    duration_sec ? duration_sec * USEC_PER_SEC : limits->default_duration_usec;
                if (e->duration_usec > limits->max_duration_usec) {
                        char most[FORMAT_DURATION_MAX];

                        (void)format_duration_short(most, sizeof most, limits->max_duration_usec);
                        r = request_error(ret_error, GK_E_PERMISSION,
                                          "a lease may last at most %s under your policy", most);
                        audit_refusal(d, peer, "lease.refused", NULL, ret_error->message);
                        goto fail;
                }
        }
        if ((command && !(e->command = strdup(command))) ||
            !(e->request_json = request_text(args))) {
                r = -ENOMEM;
                goto fail;
        }
        r = parse_wants(d, args, e, &count, ret_error);
        if (r != 0)
                goto fail;

        if (limits->max_gpus && count > limits->max_gpus) {
                r = request_error(ret_error, GK_E_PERMISSION,
                                  "asks for %u devices; your limit is %" PRIu64 " at once", count,
                                  limits->max_gpus);
                audit_refusal(d, peer, "lease.refused", NULL, ret_error->message);
                goto fail;
        }
        r = leases_policy_devices(d, &devs, &n_devs);
        if (r < 0)
                goto fail;
        req = (PolicyRequest){.uid = e->uid,
                              .n_gpus = e->n_gpus,
                              .named = (const char *const *)e->named,
                              .n_named = e->n_named,
                              .mig = e->mig,
                              .n_mig = e->n_mig,
                              .share_bytes = e->share_bytes};
        usage = (PolicyUserUsage){
            .uid = e->uid, .held = leases_held_by(d, e->uid), .max_devices = e->max_gpus};
        r = policy_check_request(devs, n_devs, &req, &usage, reason, sizeof reason);
        if (r < 0)
                goto fail;
        if (r != 0) {
                r = request_error(ret_error, GK_E_INVALID_ARGUMENT, "%s", reason);
                audit_refusal(d, peer, "lease.refused", NULL, reason);
                goto fail;
        }
        if (e->kind == LEASE_RUN)
                (void)proc_start_time(peer->pid, &e->pid_start_time);

        if (d->leases.queue_len >= LEASES_MAX_QUEUE ||
            leases_queued_by(d, peer->uid) >= LEASES_MAX_QUEUED_PER_UID) {
                r = request_error(ret_error, GK_E_BUSY,
                                  "too many waiting requests (at most %d per user, %d in all); "
                                  "wait for some to be served",
                                  LEASES_MAX_QUEUED_PER_UID, LEASES_MAX_QUEUE);
                goto fail;
        }
        request_id = leases_enqueue(d, TAKE_PTR(e));
        /* The devices just checked: nothing changed them since. */
        leases_schedule_devices(d, TAKE_PTR(devs), n_devs);
        for (QueueEntry *q = d->leases.queue; q; q = q->next) {
                if (q->request_id != request_id || !q->no_wait)
                        continue;
                if (d->leases.store_busy)
                        r = request_error(ret_error, GK_E_BUSY,
                                          "the state database is locked by another program; "
                                          "try again in a moment");
                else {
                        r = drained_error(d, q, ret_error);
                        if (r == 0)
                                r = request_error(ret_error, GK_E_NO_CAPACITY,
                                                  "not enough free devices now (%s)",
                                                  q->last_reason);
                }
                leases_dequeue(d, request_id);
                return r;
        }
        return REQUEST_DEFERRED;
fail:
        queue_entry_free(e);
        return r;
}

/* An admin released someone's lease: the holder is told now on their
 * terminals, and the sinks by the idle_reclaim event (a lease taken from
 * its holder), rather than learning it from a violation's SIGTERM later:
 * processes still on the devices become violations as any others. */
static void tell_holder_released(Daemon *d, const Lease *l, uid_t admin)
{
        char text[640], key[64];

        snprintf(text, sizeof text,
                 "\ngpukeeper: your lease %" PRId64 " (%s%s) was released by %s, an admin. "
                 "Processes of yours still on its GPUs now run without a lease: stop them, or "
                 "get a new lease with 'gpukeeper lease acquire'.\n",
                 l->rec.id, l->rec.devices[0].uuid, l->rec.n_devices > 1 ? ", ..." : "",
                 daemon_user_text(d, admin));
        snprintf(key, sizeof key, "admin_release:lease:%" PRId64, l->rec.id);
        idle_tell_user_terminals(l->rec.uid, text);
        daemon_alert(d, CONFIG_ALERT_IDLE_RECLAIM, key, "lease released by an admin", text + 1,
                     json_pack("{s:o}", "lease", lease_to_json(d, l)));
}

/* The active lease `id` for an operation by `peer`: own, or any for admins.
 * A refusal is audited as `denied_action`. */
static int lease_for_peer(Daemon *d, const Peer *peer, json_t *args, const char *action,
                          const char *denied_action, Lease **ret, gk_call_error *ret_error)
{
        uint64_t id = 0;
        char subject[32];
        Lease *l;
        int r;

        r = arg_uint(args, "id", INT64_MAX, &id, ret_error);
        if (r != 0)
                return r;
        if (!args || !json_object_get(args, "id"))
                return request_error(ret_error, GK_E_INVALID_ARGUMENT, "'id' is required");
        l = leases_find(d, (int64_t)id);
        if (!l)
                return request_error(ret_error, GK_E_NOT_FOUND, "there is no active lease %" PRIu64,
                                     id);
        if (l->rec.uid != peer->uid && !peer_is_admin(peer)) {
                snprintf(subject, sizeof subject, "lease %" PRIu64, id);
                r = request_error(ret_error, GK_E_PERMISSION,
                                  "lease %" PRIu64 " is not yours; only its holder or an admin "
                                  "(group " ADMIN_GROUP ") may %s it",
                                  id, action);
                audit_refusal(d, peer, denied_action, subject, ret_error->message);
                return r;
        }
        *ret = l;
        return 0;
}

int lease_op_attach(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                    gk_call_error *ret_error)
{
        static const char *const allowed[] = {"id", NULL};
        uint64_t start_time;
        Lease *l = NULL;
        int r;

        r = check_keys(args, allowed, ret_error);
        if (r == 0)
                r = lease_for_peer(d, call->peer, args, "attach to", "lease.attach_denied", &l,
                                   ret_error);
        if (r != 0)
                return r;
        if (l->rec.uid != call->peer->uid || l->rec.kind != LEASE_RUN)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "only the holder of a run lease can attach to it");
        if (l->conn_id != 0)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "lease %" PRId64 " is attached to a live client already",
                                     l->rec.id);
        if (proc_start_time(call->peer->pid, &start_time) >= 0) {
                l->rec.client_pid = call->peer->pid;
                l->rec.client_start_time = start_time;
                (void)store_lease_attach(d->store, l->rec.id, l->rec.client_pid, start_time);
        }
        l->conn_id = call->peer->conn_id;
        l->attach_deadline_usec = 0;
        log_info("Lease %" PRId64 " re-attached by pid %d.", l->rec.id, (int)call->peer->pid);
        *ret_result = json_pack("{s:o}", "lease", lease_to_json(d, l));
        return *ret_result ? 0 : -ENOMEM;
}

int lease_op_release(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                     gk_call_error *ret_error)
{
        static const char *const allowed[] = {"id", "all", NULL};
        json_t *released = json_array();
        bool all = false;
        Lease *l = NULL;
        int r;

        if (!released)
                return -ENOMEM;
        r = check_keys(args, allowed, ret_error);
        if (r == 0)
                r = arg_bool(args, "all", &all, ret_error);
        /* "id, or all": both at once is ambiguous (all, or just that one?). */
        if (r == 0 && args && json_object_get(args, "id") && json_object_get(args, "all"))
                r = request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                  "give either 'id' or 'all', not both");
        if (r == 0 && !all)
                r = lease_for_peer(d, call->peer, args, "release", "lease.release_denied", &l,
                                   ret_error);
        if (r != 0) {
                json_decref(released);
                return r;
        }
        for (Lease *it = d->leases.leases, *next; it; it = next) {
                next = it->next;
                if (all ? it->rec.uid != call->peer->uid : it != l)
                        continue;
                /* A Slurm job's lease ends with the job (epilog, reconcile):
                 * `release --all` leaves it, and only root ends it by hand. */
                if (it->rec.kind == LEASE_SLURM && (all || call->peer->uid != 0)) {
                        if (all)
                                continue;
                        json_decref(released);
                        return request_error(ret_error, GK_E_PERMISSION,
                                             "lease %" PRId64 " is Slurm job %" PRIu64
                                             "'s: it ends with the job (scancel %" PRIu64 ")",
                                             it->rec.id, it->rec.slurm_job_id,
                                             it->rec.slurm_job_id);
                }
                json_array_append_new(released, json_integer(it->rec.id));
                if (it->rec.uid != call->peer->uid)
                        tell_holder_released(d, it, call->peer->uid);
                r = leases_end(d, it, false,
                               it->rec.uid == call->peer->uid ? "released by its holder"
                                                              : "released by an admin",
                               call->peer->uid);
                if (r < 0) {
                        json_decref(released);
                        return r;
                }
        }
        leases_schedule(d);
        *ret_result = json_pack("{s:o}", "released", released);
        return *ret_result ? 0 : -ENOMEM;
}

int lease_op_extend(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                    gk_call_error *ret_error)
{
        static const char *const allowed[] = {"id", "duration_sec", NULL};
        ConfigPolicyLimits admin_buf;
        const ConfigPolicyLimits *limits;
        uint64_t duration_sec = 0, now = daemon_wall(d), expires;
        Lease *l = NULL;
        int r;

        r = check_keys(args, allowed, ret_error);
        if (r == 0)
                r = arg_uint(args, "duration_sec", GK_PROTO_MAX_DURATION_SEC, &duration_sec,
                             ret_error);
        if (r == 0 && duration_sec == 0)
                r = request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                  "'duration_sec' (at least 1) is required");
        if (r == 0)
                r = lease_for_peer(d, call->peer, args, "extend", "lease.extend_denied", &l,
                                   ret_error);
        if (r != 0)
                return r;
        if (l->rec.kind != LEASE_MANUAL)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "a run lease lasts as long as its command; only manual "
                                     "leases are extended");
        /* The caller's policy bounds the whole life of the lease, from its
         * grant: extending again and again must not get around
         * max_duration and keep a device from the queue for good. Admins
         * are not bound (docs/protocol.md). */
        r = peer_limits(d, call->peer, &admin_buf, &limits, ret_error);
        if (r != 0)
                return r;
        expires = MAX(l->rec.expires_usec, now) + duration_sec * USEC_PER_SEC;
        if (!peer_is_admin(call->peer) &&
            expires - l->rec.created_usec > limits->max_duration_usec) {
                char subject[32], would[FORMAT_DURATION_MAX], most[FORMAT_DURATION_MAX];

                (void)format_duration_short(would, sizeof would, expires - l->rec.created_usec);
                (void)format_duration_short(most, sizeof most, limits->max_duration_usec);
                r = request_error(ret_error, GK_E_PERMISSION,
                                  "the lease would then last %s from its grant; your "
                                  "policy allows at most %s (an admin can extend it "
                                  "further)",
                                  would, most);
                snprintf(subject, sizeof subject, "lease %" PRId64, l->rec.id);
                audit_refusal(d, call->peer, "lease.extend_refused", subject, ret_error->message);
                return r;
        }
        r = store_lease_extend(d->store, l->rec.id, expires, call->peer->uid);
        if (r < 0)
                return r;
        l->rec.expires_usec = expires;
        l->expires_boot = MAX(l->expires_boot, daemon_boot(d)) + duration_sec * USEC_PER_SEC;
        l->expiry_warned = false; /* warned again before the new expiry */
        leases_schedule(d);
        *ret_result = json_pack("{s:o}", "lease", lease_to_json(d, l));
        return *ret_result ? 0 : -ENOMEM;
}

int lease_op_list(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                  gk_call_error *ret_error)
{
        static const char *const allowed[] = {"all", NULL};
        json_t *list = json_array();
        bool all = false;
        int r;

        if (!list)
                return -ENOMEM;
        r = check_keys(args, allowed, ret_error);
        if (r == 0)
                r = arg_bool(args, "all", &all, ret_error);
        if (r != 0) {
                json_decref(list);
                return r;
        }
        for (const Lease *l = d->leases.leases; l; l = l->next)
                if ((all || l->rec.uid == call->peer->uid) &&
                    json_array_append_new(list, lease_to_json(d, l)) < 0) {
                        json_decref(list);
                        return -ENOMEM;
                }
        *ret_result = json_pack("{s:o}", "leases", list);
        return *ret_result ? 0 : -ENOMEM;
}

int lease_op_env(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                 gk_call_error *ret_error)
{
        static const char *const allowed[] = {"id", "uid", NULL};
        const Lease *pick = NULL;
        json_t *lease, *visible, *for_uid = args ? json_object_get(args, "uid") : NULL;
        char id[32];
        int r;

        r = check_keys(args, allowed, ret_error);
        if (r != 0)
                return r;
        if (for_uid) {
                /* Admins (the PAM module runs as root): another user's newest
                 * manual lease, the one a login shell should see. */
                json_int_t u = json_is_integer(for_uid) ? json_integer_value(for_uid) : -1;

                if (u < 0 || u >= (json_int_t)UINT32_MAX || json_object_get(args, "id"))
                        return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                             "uid must be a uid (0-4294967294), without id");
                if (!peer_is_admin(call->peer))
                        return request_error(ret_error, GK_E_PERMISSION,
                                             "only admins may ask for another user's lease");
                for (const Lease *l = d->leases.leases; l; l = l->next)
                        if (l->rec.uid == (uid_t)u && l->rec.kind == LEASE_MANUAL)
                                pick = l;
                if (!pick)
                        return request_error(ret_error, GK_E_NOT_FOUND,
                                             "uid %lld holds no interactive lease", (long long)u);
        } else if (args && json_object_get(args, "id")) {
                Lease *l = NULL;

                r = lease_for_peer(d, call->peer, args, "use", "lease.env_denied", &l, ret_error);
                if (r != 0)
                        return r;
                pick = l;
        } else
                /* The newest manual lease, else the newest run lease. */
                for (const Lease *l = d->leases.leases; l; l = l->next)
                        if (l->rec.uid == call->peer->uid &&
                            (!pick || l->rec.kind == LEASE_MANUAL || pick->rec.kind == LEASE_RUN))
                                pick = l;
        if (!pick)
                return request_error(ret_error, GK_E_NOT_FOUND,
                                     "you hold no lease; get one with 'gpukeeper lease acquire'");
        lease = lease_to_json(d, pick);
        if (!lease)
                return -ENOMEM;
        visible = json_object_get(lease, "cuda_visible_devices");
        snprintf(id, sizeof id, "%" PRId64, pick->rec.id);
        *ret_result =
            json_pack("{s:O, s:{s:O, s:s, s:s}}", "lease", lease, "env", "CUDA_VISIBLE_DEVICES",
                      visible, "CUDA_DEVICE_ORDER", "PCI_BUS_ID", "GPUKEEPER_LEASE_ID", id);
        /* A shared lease: the hints that keep frameworks under the budget. */
        if (*ret_result &&
            json_object_update(json_object_get(*ret_result, "env"),
                               json_object_get(lease, "share_env")) < 0) {
                json_decref(*ret_result);
                *ret_result = NULL;
        }
        json_decref(lease);
        return *ret_result ? 0 : -ENOMEM;
}

int lease_op_queue(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                   gk_call_error *ret_error)
{
        static const char *const allowed[] = {NULL};
        json_t *queue;
        int r;

        r = check_keys(args, allowed, ret_error);
        if (r != 0)
                return r;
        queue = leases_queue_to_json(d);
        if (!queue)
                return -ENOMEM;
        *ret_result = json_pack("{s:o}", "queue", queue);
        return *ret_result ? 0 : -ENOMEM;
}

/* drain / undrain: admins only; a GPU index or uuid, or a MIG uuid. */
static int set_drain(Daemon *d, const RequestCall *call, json_t *args, bool drained,
                     json_t **ret_result, gk_call_error *ret_error)
{
        static const char *const allowed[] = {"device", "reason", NULL};
        const GpuSnapshot *snap = d->snapshot;
        const char *reason = NULL, *uuid = NULL;
        json_t *device;
        bool was;
        int r;

        r = check_keys(args, allowed, ret_error);
        if (r == 0)
                r = arg_string(args, "reason", 256, &reason, ret_error);
        if (r != 0)
                return r;
        if (!peer_is_admin(call->peer)) {
                r = request_error(ret_error, GK_E_PERMISSION,
                                  "only admins (root, group " ADMIN_GROUP ") may %s devices",
                                  drained ? "drain" : "undrain");
                audit_refusal(d, call->peer,
                              drained ? "device.drain_denied" : "device.undrain_denied", NULL,
                              ret_error->message);
                return r;
        }
        device = args ? json_object_get(args, "device") : NULL;
        for (size_t i = 0; device && snap && i < snap->n_gpus && !uuid; i++) {
                const GpuDevice *g = &snap->gpus[i];
                const char *text = json_string_value(device);
                char index[16];

                snprintf(index, sizeof index, "%u", g->index);
                if ((json_is_integer(device) &&
                     json_integer_value(device) == (json_int_t)g->index) ||
                    (text && (strcmp(text, index) == 0 || strcmp(text, g->uuid) == 0)))
                        uuid = g->uuid;
                for (size_t k = 0; text && !uuid && k < g->n_instances; k++)
                        if (strcmp(text, g->instances[k].uuid) == 0)
                                uuid = g->instances[k].uuid;
        }
        if (!uuid && !drained && json_is_string(device) &&
            leases_is_drained(d, json_string_value(device), NULL))
                uuid = json_string_value(device); /* undrain a device that is gone */
        if (!uuid)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'device' must name a GPU (index or UUID) or a MIG instance");
        /* Drained itself, not through its GPU: what this request changes. */
        was = leases_is_drained(d, uuid, NULL);
        r = store_drain_set(d->store, uuid, drained, call->peer->uid, reason);
        if (r < 0)
                return r;
        r = leases_set_drained(d, uuid, drained);
        if (r < 0)
                return r;
        leases_schedule(d);
        *ret_result = json_pack("{s:s, s:b, s:b}", "device", uuid, "drained", drained, "changed",
                                was != drained);
        return *ret_result ? 0 : -ENOMEM;
}

int lease_op_drain(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                   gk_call_error *ret_error)
{
        return set_drain(d, call, args, true, ret_result, ret_error);
}

int lease_op_undrain(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                     gk_call_error *ret_error)
{
        return set_drain(d, call, args, false, ret_result, ret_error);
}
