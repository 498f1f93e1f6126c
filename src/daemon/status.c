/* Status replies: the latest snapshot as JSON, with process owners named.
 * Unknown values are JSON null, never 0, so clients can tell "idle" from
 * "not reported". */
#include "daemon/status.h"
#include "daemon/mig-ops.h"
#include "daemon/share-ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/pointer-sort.h"
#include "basic/time-util.h"
#include "basic/user-util.h"
#include "proto/json-text.h"
#include "gpu/nvml-abi.h"


static json_t *json_bytes_or_null(uint64_t v)
{
        return v == GPU_VALUE_UNKNOWN ? json_null() : json_integer((json_int_t)v);
}

static json_t *json_int_or_null(int64_t v)
{
        return v < 0 ? json_null() : json_integer(v);
}

/* Sets `key` (a literal: valid UTF-8) to `value` in the object `to`, or,
 * with `key` NULL, appends `value` to the array `to`; steals `value`. After
 * a failure (`value` NULL from an allocation, or the set failing) *ok is
 * false and later calls only release their value, as json_pack() steals
 * all its "o" arguments whatever happens. */
static void add(json_t *to, const char *key, json_t *value, bool *ok)
{
        if (!*ok || !value) {
                json_decref(value);
                *ok = false;
                return;
        }
        if ((key ? json_object_set_new_nocheck(to, key, value)
                 : json_array_append_new(to, value)) < 0)
                *ok = false;
}

/* The lease holding a device, as status shows it; null when free. */
static json_t *holder_json(const Daemon *d, const char *uuid)
{
        const Lease *l = leases_holder(d, uuid);

        if (!l)
                return json_null();
        return json_pack("{s:I, s:o, s:I, s:s, s:f, s:o, s:b, s:b, s:o}",
                         "id", (json_int_t)l->rec.id,
                         "user", json_text(daemon_user_name(d, l->rec.uid)),
                         "uid", (json_int_t)l->rec.uid,
                         "kind", lease_kind_to_string(l->rec.kind),
                         "since", (double)l->rec.created_usec / USEC_PER_SEC,
                         "expires_at", l->rec.expires_usec
                                               ? json_real((double)l->rec.expires_usec / USEC_PER_SEC)
                                               : json_null(),
                         "idle_warned", l->idle.warned_usec != 0,
                         "idle_flagged", l->idle.flagged,
                         "slurm_job_id", l->rec.kind == LEASE_SLURM
                                             ? json_integer((json_int_t)l->rec.slurm_job_id)
                                             : json_null());
}

/* A shareable GPU's shared leases (docs/protocol.md, status): capacity,
 * budgets promised, and each lease's budget and use; null for a GPU that is
 * neither shareable nor holding shared leases. */
static json_t *shared_json(const Daemon *d, const GpuDevice *g)
{
        /* A daemon without a config (unit tests) has no shareable GPU. */
        const ConfigSharing *c = d->config ? &d->config->sharing : NULL;
        uint64_t budget = 0, reserve = c ? c->reserve_bytes : 0, capacity = 0;
        unsigned n = 0;
        json_t *leases, *o;

        if (g->mig_enabled)
                return json_null();
        leases_shared_on(d, g->uuid, &budget, &n);
        if (c && config_sharing_gpu(c, g->index, g->uuid, g->name) &&
            g->memory_total_bytes != GPU_VALUE_UNKNOWN && g->memory_total_bytes > reserve)
                capacity = g->memory_total_bytes - reserve;
        if (!capacity && !n)
                return json_null();
        leases = json_array();
        if (!leases)
                return NULL;
        for (const Lease *l = d->leases.leases; l; l = l->next) {
                if (!l->rec.share_bytes || l->rec.n_devices != 1 ||
                    strcmp(l->rec.devices[0].uuid, g->uuid) != 0)
                        continue;
                o = json_pack("{s:I, s:o, s:I, s:s, s:I, s:I}", "id", (json_int_t)l->rec.id,
                              "user", json_text(daemon_user_name(d, l->rec.uid)), "uid",
                              (json_int_t)l->rec.uid, "kind", lease_kind_to_string(l->rec.kind),
                              "share_bytes", (json_int_t)l->rec.share_bytes,
                              "memory_used_bytes", (json_int_t)share_ops_used(d, l));
                if (o && share_ops_lease_json(d, l, o) < 0) {
                        json_decref(o);
                        o = NULL;
                }
                if (o)
                        json_object_del(o, "share_env");
                if (!o || json_array_append_new(leases, o) < 0) {
                        json_decref(leases);
                        return NULL;
                }
        }
        return json_pack("{s:I, s:I, s:o}", "capacity_bytes", (json_int_t)capacity,
                         "budget_bytes", (json_int_t)budget, "leases", leases);
}

static json_t *instance_json(const Daemon *d, const GpuDevice *g, const GpuInstance *in)
{
        return json_pack(
            "{s:o, s:o, s:I, s:I, s:o, s:o, s:o, s:b}", "uuid", json_text(in->uuid), "profile",
            json_text(in->profile), "gpu_instance_id", (json_int_t)in->gpu_instance_id,
            "compute_instance_id", (json_int_t)in->compute_instance_id, "memory_total_bytes",
            json_bytes_or_null(in->memory_total_bytes), "memory_used_bytes",
            json_bytes_or_null(in->memory_used_bytes), "lease", holder_json(d, in->uuid), "drained",
            leases_is_drained(d, in->uuid, g->uuid));
}

/* The process fields in the order objects name them and rows hold them
 * (docs/protocol.md: "process_fields"). */
static const char *const process_fields[] = {
        "pid",    "uid",    "user",   "command", "memory_used_bytes", "instance_uuid",
        "vanished", "zombie", "exited", "leased",  "violation",
};
#define N_PROCESS_FIELDS ELEMENTSOF(process_fields)

/* A process as an object ({"pid": 4242, "uid": 1001, ...}) or, for a
 * status asked for with "process_rows", as a row of the same values in the
 * same order ([4242, 1001, ...]). */
static json_t *process_json(const Daemon *d, const EnforcementIndex *violations,
                            const GpuDevice *g, const GpuProcess *p, StatusShape shape)
{
        bool owner = !p->vanished || p->owner_from_earlier;
        const char *user = owner ? daemon_user_name(d, p->uid) : NULL;
        const char *instance_uuid = p->instance >= 0 && (size_t)p->instance < g->n_instances
                                        ? g->instances[p->instance].uuid
                                        : NULL;

        const char *device = instance_uuid ? instance_uuid : g->uuid;
        const Lease *holder = leases_holder_for(d, device, p->uid);
        const TrackedViolation *v =
                p->vanished ? NULL
                            : enforcement_index_find(violations, p->pid, p->start_time, device);
        json_t *values[] = {
                json_integer((json_int_t)p->pid),
                owner ? json_integer(p->uid) : json_null(),
                json_text(user),
                json_text(p->command),
                json_bytes_or_null(p->memory_used_bytes),
                json_text(instance_uuid),
                json_boolean(p->vanished),
                json_boolean(p->zombie),
                json_boolean(gpu_process_exited(p)),
                json_boolean(!p->vanished && holder && holder->rec.uid == p->uid),
                v ? enforcement_tracked_json(d, v) : json_null(),
        };
        json_t *o = shape == STATUS_ROWS ? json_array() : json_object();
        bool ok = o != NULL;

        _Static_assert(ELEMENTSOF(values) == N_PROCESS_FIELDS, "a value per field");
        /* Set value by value, not with json_pack(): this runs for every
         * process on every status request (4,096 at a time), and json_pack()
         * parses its format and checks each literal key's UTF-8 every time.
         * The keys are the same, in the same order, so the reply is too. */
        for (size_t i = 0; i < N_PROCESS_FIELDS; i++)
                add(o, shape == STATUS_ROWS ? NULL : process_fields[i], values[i], &ok);
        if (!ok) {
                json_decref(o);
                return NULL;
        }
        return o;
}

/* The order `gpukeeper status` shows a device's processes in: most memory
 * first (an unknown amount last), then by pid, then as sampled. */
static inline bool process_shown_before(const GpuProcess *p, const GpuProcess *q)
{
        bool p_known = p->memory_used_bytes != GPU_VALUE_UNKNOWN,
             q_known = q->memory_used_bytes != GPU_VALUE_UNKNOWN;

        if (p_known != q_known)
                return p_known;
        if (p_known && p->memory_used_bytes != q->memory_used_bytes)
                return p->memory_used_bytes > q->memory_used_bytes;
        if (p->pid != q->pid)
                return p->pid < q->pid;
        return p < q;
}

POINTER_SORT_DEFINE(sort_shown, GpuProcess, process_shown_before)

/* The device's processes as a JSON array. Rows come in the order the
 * command shows them (docs/protocol.md), so that its sort finds them in
 * order (issue 16: sorting 4,096 processes was 4-8 % of `gpukeeper status`);
 * objects in the sampler's order, as always. */
static json_t *processes_json(const Daemon *d, const EnforcementIndex *violations,
                              const GpuDevice *g, StatusShape shape)
{
        _cleanup_free_ const GpuProcess **order = NULL;
        json_t *a = json_array();

        if (!a)
                return NULL;
        if (shape == STATUS_ROWS && g->n_processes > 1) {
                /* The order, then room for the sort. */
                order = malloc((g->n_processes + g->n_processes / 2) * sizeof *order);
                if (!order)
                        goto fail;
                for (size_t i = 0; i < g->n_processes; i++)
                        order[i] = &g->processes[i];
                sort_shown(order, order + g->n_processes, g->n_processes);
        }
        for (size_t i = 0; i < g->n_processes; i++) {
                const GpuProcess *p = order ? order[i] : &g->processes[i];

                if (json_array_append_new(a, process_json(d, violations, g, p, shape)) < 0)
                        goto fail;
        }
        return a;
fail:
        json_decref(a);
        return NULL;
}

static json_t *gpu_json(const Daemon *d, const EnforcementIndex *violations, const GpuDevice *g,
                        StatusShape shape)
{
        json_t *instances = json_array(), *processes = processes_json(d, violations, g, shape), *o;
        char error[128] = "";

        if (!instances || !processes)
                goto fail;
        for (size_t i = 0; i < g->n_instances; i++)
                if (json_array_append_new(instances, instance_json(d, g, &g->instances[i])) < 0)
                        goto fail;
        if (g->error && d->nvml)
                snprintf(error, sizeof error, "%s: %s", g->error_call,
                         gpu_nvml_error_string(d->nvml, g->error));
        else if (g->error)
                snprintf(error, sizeof error, "%s: NVML error %d", g->error_call, g->error);

        o = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:o, s:b, s:o, "
                      "s:o, s:o, s:b, s:b}",
                      "index", (json_int_t)g->index, "uuid", json_text_or_null(g->uuid), "name",
                      json_text_or_null(g->name), "pci_bus_id", json_text_or_null(g->pci_bus_id),
                      "numa_node", json_int_or_null(g->numa_node),
                      "memory_total_bytes", json_bytes_or_null(g->memory_total_bytes),
                      "memory_used_bytes", json_bytes_or_null(g->memory_used_bytes),
                      "utilization_gpu", json_int_or_null(g->utilization_gpu), "temperature_c",
                      json_int_or_null(g->temperature_c), "power_w",
                      g->power_mw < 0 ? json_null() : json_real(g->power_mw / 1000.0), "healthy",
                      g->healthy, "error", json_text(error[0] ? error : NULL), "mig_enabled",
                      g->mig_enabled, "instances", instances, "processes", processes, "lease",
                      g->mig_enabled ? json_null() : holder_json(d, g->uuid), "drained",
                      leases_is_drained(d, g->uuid, NULL), "processes_incomplete",
                      g->processes_incomplete);
        if (o) {
                json_t *shared = shared_json(d, g);

                if (!shared) {
                        json_decref(o);
                        return NULL;
                }
                json_object_set_new(o, "shared", shared);
        }
        /* MIG layout: free memory slices, instances made on demand (mig-ops.h). */
        if (o) {
                json_t *mig = mig_ops_gpu_json(d, g->uuid);

                if (!mig)
                        json_object_set_new(o, "mig", json_null());
                else
                        json_object_set_new(o, "mig", json_pack("{s:O?, s:b, s:i, s:b}", "free_slices",
                                                                json_object_get(mig, "free_slices"),
                                                                "dynamic", json_is_true(json_object_get(mig, "dynamic")),
                                                                "on_demand", mig_ops_on_demand_count(d, g->uuid),
                                                                "mig_pending", json_is_true(json_object_get(mig, "mig_pending"))));
                json_decref(mig);
        }
        return o;
fail:
        json_decref(instances);
        json_decref(processes);
        return NULL;
}

int status_shape_from_args(json_t *args, StatusShape *ret, const char **ret_why)
{
        static const char why[] = "'process_rows' (true or false) is the only argument";
        const char *key;
        json_t *value;
        bool rows = false;

        json_object_foreach(args, key, value) {
                if (strcmp(key, "process_rows") != 0 || !json_is_boolean(value)) {
                        *ret_why = why;
                        return -EINVAL;
                }
                rows = json_is_true(value);
        }
        *ret = rows ? STATUS_ROWS : STATUS_OBJECTS;
        return 0;
}

/* ["pid", "uid", ...]: what each place of a process row holds. */
static json_t *process_fields_json(void)
{
        json_t *a = json_array();
        bool ok = a != NULL;

        for (size_t i = 0; i < N_PROCESS_FIELDS; i++)
                add(a, NULL, json_string(process_fields[i]), &ok);
        if (!ok) {
                json_decref(a);
                return NULL;
        }
        return a;
}

int status_build_base(const Daemon *d, StatusShape shape, json_t **ret)
{
        const GpuSnapshot *s = d->snapshot;
        _cleanup_(enforcement_index_done) EnforcementIndex violations = {};
        json_t *gpus, *o;
        bool ok;
        int r;

        /* Each process is looked up among the open violations: sorted once,
         * not a walk of the whole list per process. */
        r = enforcement_index_build(d, &violations);
        if (r < 0)
                return r;
        gpus = json_array();
        if (!gpus)
                return -ENOMEM;
        for (size_t i = 0; s && i < s->n_gpus; i++) {
                json_t *g = gpu_json(d, &violations, &s->gpus[i], shape);

                if (!g || json_array_append_new(gpus, g) < 0) {
                        json_decref(gpus);
                        return -ENOMEM;
                }
        }

        /* gpu_count before gpus: a client reading the reply as it arrives
         * can print its header before the GPUs (gpukeeper status). */
        o = json_pack("{s:b, s:o, s:o, s:o, s:b, s:o, s:I}", "simulated", s && s->simulated,
                      "driver_version", json_text(s ? s->driver_version : ""), "hostname",
                      json_text(d->hostname), "sampled_at",
                      s ? json_real((double)s->taken_usec / USEC_PER_SEC) : json_null(),
                      "nvml_available", s && s->nvml_available, "message",
                      json_text(s && s->message[0] ? s->message : NULL), "gpu_count",
                      (json_int_t)json_array_size(gpus));
        ok = o != NULL;
        /* Rows: what each place holds, before the first row. */
        if (shape == STATUS_ROWS)
                add(o, "process_fields", process_fields_json(), &ok);
        add(o, "gpus", gpus, &ok);
        add(o, "queue", leases_queue_to_json(d), &ok);
        if (!ok) {
                json_decref(o);
                return -ENOMEM;
        }
        *ret = o;
        return 0;
}

int status_build(const Daemon *d, StatusShape shape, json_t **ret)
{
        json_t *o;
        int r;

        r = status_build_base(d, shape, &o);
        if (r < 0)
                return r;
        /* Strict mode's fence: whether it is active, refused opens. */
        if (json_object_set_new(o, "fence", strict_to_json(d)) < 0) {
                json_decref(o);
                return -ENOMEM;
        }
        *ret = o;
        return 0;
}
