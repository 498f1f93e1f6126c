/* MIG in the daemon; see mig-ops.h. */
#include "daemon/mig-ops.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/log.h"
#include "basic/macro.h"
#include "basic/time-util.h"
#include "daemon/daemon.h"
#include "daemon/leases.h"
#include "daemon/sampler.h"
#include "gpu/nvml-mig.h"
#include "mig/apply.h"
#include "mig/layout.h"
#include "policy/mig-place.h"
#include "store/mig-store.h"

/* An audit row whose detail is {key: value} (store_audit_detail). */
static void audit_detail(Daemon *d, int64_t uid, const char *action, const char *subject,
                         const char *key, const char *value)
{
        _cleanup_free_ char *detail = store_audit_detail(key, value);

        store_audit(d->store, uid, action, subject, detail);
}

#define MIG_VIEW_MAX GPU_MAX_DEVICES
#define MIG_ON_DEMAND_MAX 128
#define MIG_VIRTUAL_MAX 256
/* An instance made for the queue's head that no lease took within this is
 * destroyed again (the request went away). */
#define MIG_ON_DEMAND_GRACE_USEC (60 * USEC_PER_SEC)

typedef struct MigGpuView {
        char uuid[GPU_UUID_MAX];
        char name[GPU_NAME_MAX];
        char bus_id[GPU_PCI_BUS_ID_MAX];
        unsigned index;    /* NVML */
        unsigned position; /* mig-parted's: PCI bus order */
        uint32_t pci_device_id, pci_subsystem_id;
        bool capable, current, pending, healthy, have_ids;
        GpuMigProfile profiles[GPU_MIG_MAX_PROFILES];
        size_t n_profiles;
        GpuMigInstance instances[GPU_MIG_MAX_INSTANCES];
        size_t n_instances;
        char instance_uuid[GPU_MIG_MAX_INSTANCES][GPU_UUID_MAX]; /* "" when its CI is not listed */
} MigGpuView;

typedef struct MigOnDemand {
        char gpu_uuid[GPU_UUID_MAX];
        unsigned gi_id;
        uint64_t created_usec;
        uint64_t request_id; /* the queued request it was made for */
        bool leased_once;
} MigOnDemand;

typedef struct MigVirtual {
        char uuid[GPU_UUID_MAX + 64];
        char profile[GPU_MIG_PROFILE_NAME_MAX];
        char parent[GPU_UUID_MAX];
        char bus_id[GPU_PCI_BUS_ID_MAX];
} MigVirtual;

struct MigState {
        MigGpuView gpus[MIG_VIEW_MAX];
        size_t n_gpus;
        MigGpuView prev[MIG_VIEW_MAX]; /* the previous refresh, for caching and "came back" */
        size_t n_prev;
        MigOnDemand on_demand[MIG_ON_DEMAND_MAX];
        size_t n_on_demand;
        MigVirtual virt[MIG_VIRTUAL_MAX];
        size_t n_virt;

        bool job_active;
        MigConfig job_config;  /* job_config.specs owned */
        int64_t job_uid;
        char job_state[16];    /* "waiting", "reset", "done", "failed" */
        char job_message[512];
        json_t *job_waiting;   /* [{gpu, uuid, reason}] */
        json_t *job_reset;     /* [{gpu, uuid, command}] */
        char draining[MIG_VIEW_MAX][GPU_UUID_MAX];
        size_t n_draining;
        bool started;          /* the stored layout was looked at once */
};

static void copy_str(char *dst, size_t size, const char *src)
{
        size_t n = strnlen(src, size - 1);

        memcpy(dst, src, n);
        dst[n] = '\0';
}

int mig_ops_new(MigState **ret)
{
        MigState *m = calloc(1, sizeof(*m));

        if (!m)
                return -ENOMEM;
        snprintf(m->job_state, sizeof(m->job_state), "none");
        *ret = m;
        return 0;
}

void mig_ops_free(MigState *m)
{
        if (!m)
                return;
        free(m->job_config.specs);
        json_decref(m->job_waiting);
        json_decref(m->job_reset);
        free(m);
}

static MigGpuView *view_find(MigState *m, const char *uuid)
{
        for (size_t i = 0; i < m->n_gpus; i++)
                if (!strcmp(m->gpus[i].uuid, uuid))
                        return &m->gpus[i];
        return NULL;
}

static const MigGpuView *prev_find(const MigState *m, const char *uuid)
{
        for (size_t i = 0; i < m->n_prev; i++)
                if (!strcmp(m->prev[i].uuid, uuid))
                        return &m->prev[i];
        return NULL;
}

static int cmp_bus(const void *a, const void *b)
{
        const MigGpuView *x = *(const MigGpuView *const *)a, *y = *(const MigGpuView *const *)b;

        return strcasecmp(x->bus_id, y->bus_id);
}

/* Read the MIG view of every GPU of the current snapshot. Profiles and PCI
 * ids are static per GPU and read once per UUID. */
static void refresh(Daemon *d)
{
        MigState *m = d->mig;
        const GpuSnapshot *snap = d->snapshot;
        MigGpuView *order[MIG_VIEW_MAX];

        memcpy(m->prev, m->gpus, m->n_gpus * sizeof(MigGpuView));
        m->n_prev = m->n_gpus;
        m->n_gpus = 0;
        if (!d->nvml || !snap)
                return;
        for (size_t i = 0; i < snap->n_gpus && m->n_gpus < MIG_VIEW_MAX; i++) {
                const GpuDevice *g = &snap->gpus[i];
                const MigGpuView *old;
                MigGpuView *v;
                nvmlDevice_t dev;
                bool cur = false, pend = false;

                if (!g->uuid[0])
                        continue;
                v = &m->gpus[m->n_gpus++];
                *v = (MigGpuView) { .index = g->index, .healthy = g->healthy };
                snprintf(v->uuid, sizeof(v->uuid), "%s", g->uuid);
                snprintf(v->name, sizeof(v->name), "%s", g->name);
                snprintf(v->bus_id, sizeof(v->bus_id), "%s", g->pci_bus_id);
                if (!g->healthy || gpu_nvml_device_handle(d->nvml, g->index, &dev) != NVML_SUCCESS)
                        continue;
                if (gpu_mig_mode(d->nvml, dev, &cur, &pend) != NVML_SUCCESS)
                        continue;
                v->capable = true;
                v->current = cur;
                v->pending = pend;
                old = prev_find(m, v->uuid);
                if (old && old->capable && old->n_profiles > 0 && old->have_ids) {
                        memcpy(v->profiles, old->profiles, sizeof(v->profiles));
                        v->n_profiles = old->n_profiles;
                        v->pci_device_id = old->pci_device_id;
                        v->pci_subsystem_id = old->pci_subsystem_id;
                        v->have_ids = true;
                } else {
                        if (gpu_mig_profiles(d->nvml, dev, v->profiles, GPU_MIG_MAX_PROFILES,
                                             &v->n_profiles) != NVML_SUCCESS)
                                v->n_profiles = 0;
                        v->have_ids = gpu_mig_pci_ids(d->nvml, dev, &v->pci_device_id,
                                                      &v->pci_subsystem_id) == NVML_SUCCESS;
                }
                if (cur && gpu_mig_instances(d->nvml, dev, v->profiles, v->n_profiles, v->instances,
                                             GPU_MIG_MAX_INSTANCES, &v->n_instances) != NVML_SUCCESS)
                        v->n_instances = 0;
                for (size_t k = 0; k < v->n_instances; k++)
                        for (size_t j = 0; j < g->n_instances; j++)
                                if (g->instances[j].gpu_instance_id == v->instances[k].gi_id)
                                        snprintf(v->instance_uuid[k], sizeof(v->instance_uuid[k]), "%s",
                                                 g->instances[j].uuid);
        }
        for (size_t i = 0; i < m->n_gpus; i++)
                order[i] = &m->gpus[i];
        qsort(order, m->n_gpus, sizeof(order[0]), cmp_bus);
        for (size_t i = 0; i < m->n_gpus; i++)
                order[i]->position = (unsigned)i;
}

static MigGpuFacts facts_of(const MigGpuView *v)
{
        return (MigGpuFacts) { .position = v->position, .uuid = v->uuid, .name = v->name,
                               .pci_device_id = v->pci_device_id,
                               .pci_subsystem_id = v->pci_subsystem_id,
                               .capable = v->capable && v->n_profiles > 0, .current = v->current,
                               .pending = v->pending, .profiles = v->profiles,
                               .n_profiles = v->n_profiles, .instances = v->instances,
                               .n_instances = v->n_instances };
}

static const GpuDevice *snap_gpu(const Daemon *d, const char *uuid)
{
        return d->snapshot ? gpu_snapshot_find_device(d->snapshot, uuid) : NULL;
}

/* Why the GPU cannot be re-carved now: a lease on it or one of its
 * instances, or a process on it. False when it is free. */
static bool gpu_busy(const Daemon *d, const MigGpuView *v, char *why, size_t len)
{
        const GpuDevice *g = snap_gpu(d, v->uuid);

        for (const Lease *l = d->leases.leases; l; l = l->next)
                for (size_t i = 0; i < l->rec.n_devices; i++) {
                        const LeaseDevice *x = &l->rec.devices[i];
                        const char *who;

                        if (strcmp(x->gpu_uuid, v->uuid) != 0)
                                continue;
                        who = daemon_user_name(d, l->rec.uid);
                        if (who)
                                snprintf(why, len, "lease %" PRId64 " of %s on %s", l->rec.id, who, x->uuid);
                        else
                                snprintf(why, len, "lease %" PRId64 " of uid %u on %s", l->rec.id,
                                         (unsigned)l->rec.uid, x->uuid);
                        return true;
                }
        if (g && g->n_processes > 0) {
                snprintf(why, len, "process %" PRIu32 "%s%s is running on it", g->processes[0].pid,
                         g->processes[0].command ? " " : "",
                         g->processes[0].command ? g->processes[0].command : "");
                return true;
        }
        return false;
}

bool mig_ops_draining(const Daemon *d, const char *gpu_uuid)
{
        const MigState *m = d->mig;

        if (!m || !gpu_uuid)
                return false;
        for (size_t i = 0; i < m->n_draining; i++)
                if (!strcmp(m->draining[i], gpu_uuid))
                        return true;
        return false;
}

static void nvml_failure(const Daemon *d, nvmlReturn_t r, char *buf, size_t len, const char *what)
{
        snprintf(buf, len, "%s: %s: %s (%d)", what, gpu_nvml_last_call(d->nvml),
                 gpu_nvml_error_string(d->nvml, r), r);
}

/* Carry out a plan on an idle GPU (mig/apply.h) and log what was done. */
static int carve(Daemon *d, const MigGpuView *v, const MigGpuPlan *p, char *error, size_t len)
{
        char label[160];
        MigApplied done;
        int r;

        snprintf(label, sizeof(label), "GPU %u (%.96s)", v->position, v->uuid);
        r = mig_apply_plan(d->nvml, v->index, label, p, &done, error, len);
        if (done.destroyed || done.created)
                log_info("MIG: %s: destroyed %zu GPU instances, created %zu", label, done.destroyed,
                         done.created);
        return r;
}

/* After a carve: a new snapshot when NVML is free, and the MIG view read
 * again from NVML in any case. With the periodic sample in flight
 * (sampler_tick() answers -EBUSY) or a failed tick the snapshot stays as it
 * was until the next one lands, but the view must show what was just
 * carved: a second pass planned on the old instances would destroy GPU
 * instance IDs that are gone or, once reused, ones it just made. */
static void resample(Daemon *d)
{
        (void)sampler_tick(d);
        refresh(d);
}

static void job_end(MigState *m, const char *state, const char *message)
{
        m->job_active = false;
        m->n_draining = 0;
        snprintf(m->job_state, sizeof(m->job_state), "%s", state);
        snprintf(m->job_message, sizeof(m->job_message), "%s", message ? message : "");
}

/* Advance the apply job as far as the GPUs allow. */
static void job_step(Daemon *d)
{
        MigState *m = d->mig;

        if (!m->job_active)
                return;
        for (int pass = 0; pass < 2; pass++) {
                bool all_done = true, changed = false;
                char error[512];

                json_decref(m->job_waiting);
                json_decref(m->job_reset);
                m->job_waiting = json_array();
                m->job_reset = json_array();
                m->n_draining = 0;
                if (!d->nvml) {
                        snprintf(m->job_state, sizeof(m->job_state), "waiting");
                        json_array_append_new(m->job_waiting,
                                              json_pack("{s:s}", "reason", "NVML is not available"));
                        return;
                }
                for (size_t i = 0; i < m->n_gpus; i++) {
                        MigGpuView *v = &m->gpus[i];
                        MigGpuFacts f = facts_of(v);
                        MigGpuPlan p;
                        char why[256];

                        if (!v->healthy) {
                                /* Asserted again when it comes back. */
                                continue;
                        }
                        if (mig_plan_gpu(&m->job_config, &f, &p, error, sizeof(error)) < 0) {
                                log_error("MIG apply of %s failed: %s", m->job_config.name, error);
                                job_end(m, "failed", error);
                                return;
                        }
                        if (!p.selected || p.matches)
                                continue;
                        all_done = false;
                        if (gpu_busy(d, v, why, sizeof(why))) {
                                json_array_append_new(m->job_waiting,
                                                      json_pack("{s:i, s:s, s:s}", "gpu", v->position,
                                                                "uuid", v->uuid, "reason", why));
                                copy_str(m->draining[m->n_draining++], GPU_UUID_MAX, v->uuid);
                                continue;
                        }
                        if (p.mode_change) {
                                char command[128];

                                if (p.n_destroy > 0) {
                                        if (carve(d, v, &p, error, sizeof(error)) < 0) {
                                                job_end(m, "failed", error);
                                                resample(d);
                                                return;
                                        }
                                        changed = true;
                                }
                                if (v->pending != p.enable) {
                                        nvmlDevice_t dev;
                                        bool reset = false;
                                        nvmlReturn_t r = gpu_nvml_device_handle(d->nvml, v->index, &dev);

                                        if (r == NVML_SUCCESS)
                                                r = gpu_mig_set_mode(d->nvml, dev, p.enable, &reset);
                                        if (r != NVML_SUCCESS) {
                                                nvml_failure(d, r, error, sizeof(error), "setting the MIG mode");
                                                job_end(m, "failed", error);
                                                return;
                                        }
                                        log_info("MIG: GPU %u (%s): MIG mode %s is pending a GPU reset",
                                                 v->position, v->uuid, p.enable ? "enabled" : "disabled");
                                        changed = true;
                                }
                                /* What to run; never done behind running work. */
                                snprintf(command, sizeof(command), "nvidia-smi -i %u -r", v->index);
                                json_array_append_new(
                                        m->job_reset,
                                        json_pack("{s:i, s:s, s:s, s:s, s:s}", "gpu", v->position, "uuid",
                                                  v->uuid, "pci_bus_id", v->bus_id, "mode",
                                                  p.enable ? "enabled" : "disabled", "command", command));
                                continue;
                        }
                        if (carve(d, v, &p, error, sizeof(error)) < 0) {
                                log_error("MIG apply of %s failed: %s", m->job_config.name, error);
                                job_end(m, "failed", error);
                                resample(d);
                                return;
                        }
                        changed = true;
                }
                if (all_done) {
                        log_info("MIG layout %s applied.", m->job_config.name);
                        job_end(m, "done", NULL);
                        return;
                }
                if (json_array_size(m->job_waiting) > 0)
                        snprintf(m->job_state, sizeof(m->job_state), "waiting");
                else
                        snprintf(m->job_state, sizeof(m->job_state), "reset");
                if (!changed)
                        return;
                resample(d);
        }
}

static void job_start(Daemon *d, MigConfig *config, int64_t uid)
{
        MigState *m = d->mig;

        free(m->job_config.specs);
        m->job_config = *config;
        *config = (MigConfig) {};
        m->job_uid = uid;
        m->job_active = true;
        m->job_message[0] = '\0';
        snprintf(m->job_state, sizeof(m->job_state), "waiting");
}

/* The stored layout as a job, when any GPU it selects differs. */
static void reassert_stored(Daemon *d, const char *why)
{
        _cleanup_free_ char *text = NULL;
        json_t *j;
        MigConfig c;
        char error[256];

        if (!d->config->mig.reassert || d->mig->job_active ||
            store_mig_layout_load(d->store, &text) < 0)
                return;
        j = json_loads(text, 0, NULL);
        if (!j || mig_config_from_json(j, &c, error, sizeof(error)) < 0) {
                json_decref(j);
                log_warning("The stored MIG layout cannot be read; not re-asserting it");
                return;
        }
        json_decref(j);
        for (size_t i = 0; i < d->mig->n_gpus; i++) {
                MigGpuFacts f = facts_of(&d->mig->gpus[i]);
                MigGpuPlan p;

                if (d->mig->gpus[i].healthy && mig_plan_gpu(&c, &f, &p, error, sizeof(error)) == 0 &&
                    p.selected && !p.matches) {
                        log_info("Re-asserting the stored MIG layout %s (%s).", c.name, why);
                        job_start(d, &c, -1);
                        return;
                }
        }
        free(c.specs);
}

/* ---- on-demand instances ---- */

static bool instance_held(const Daemon *d, const char *uuid)
{
        return uuid[0] && leases_holder(d, uuid) != NULL;
}

static bool instance_has_process(const Daemon *d, const char *gpu_uuid, unsigned gi)
{
        const GpuDevice *g = snap_gpu(d, gpu_uuid);

        for (size_t i = 0; g && i < g->n_processes; i++)
                if (g->processes[i].gpu_instance_id == gi)
                        return true;
        return false;
}

static MigOnDemand *on_demand_find(MigState *m, const char *gpu_uuid, unsigned gi)
{
        for (size_t i = 0; i < m->n_on_demand; i++)
                if (!strcmp(m->on_demand[i].gpu_uuid, gpu_uuid) && m->on_demand[i].gi_id == gi)
                        return &m->on_demand[i];
        return NULL;
}

static bool dynamic_gpu(const Daemon *d, const MigGpuView *v)
{
        return v->capable && v->current && v->healthy && v->n_profiles > 0 &&
               config_mig_dynamic(&d->config->mig, v->uuid) && !mig_ops_draining(d, v->uuid);
}

static void to_policy(const Daemon *d, const MigGpuView *v, PolicyMigProfile *pp,
                      PolicyMigInstance *pi, size_t *ret_n)
{
        size_t n = 0;

        for (size_t p = 0; p < v->n_profiles && p < POLICY_MIG_MAX_PROFILES; p++) {
                pp[p] = (PolicyMigProfile) { .size = v->profiles[p].size,
                                             .starts = v->profiles[p].starts & 0xFF,
                                             .max_instances = v->profiles[p].max_instances };
                snprintf(pp[p].name, sizeof(pp[p].name), "%s", v->profiles[p].name);
        }
        for (size_t k = 0; k < v->n_instances; k++) {
                int p = -1;

                for (size_t j = 0; j < v->n_profiles; j++)
                        if (v->profiles[j].id == v->instances[k].profile_id)
                                p = (int)j;
                if (p < 0)
                        continue;
                pi[n++] = (PolicyMigInstance) {
                        .profile = (unsigned)p,
                        .start = v->instances[k].start,
                        .destroyable = on_demand_find(d->mig, v->uuid, v->instances[k].gi_id) &&
                                       !instance_held(d, v->instance_uuid[k]) &&
                                       !instance_has_process(d, v->uuid, v->instances[k].gi_id),
                };
        }
        *ret_n = n;
}

/* Free instances of `profile` the allocator could grant now. */
static unsigned free_instances(const Daemon *d, const char *profile)
{
        const GpuSnapshot *s = d->snapshot;
        unsigned n = 0;

        for (size_t i = 0; s && i < s->n_gpus; i++) {
                const GpuDevice *g = &s->gpus[i];

                if (!g->mig_enabled || !g->healthy || leases_is_drained(d, g->uuid, g->uuid))
                        continue;
                for (size_t k = 0; k < g->n_instances; k++) {
                        bool busy = false;

                        if (strcmp(g->instances[k].profile, profile) != 0 ||
                            leases_holder(d, g->instances[k].uuid) ||
                            leases_is_drained(d, g->instances[k].uuid, g->uuid))
                                continue;
                        for (size_t p = 0; p < g->n_processes; p++)
                                busy |= g->processes[p].instance == (int)k;
                        n += !busy;
                }
        }
        return n;
}

static bool request_queued(const Daemon *d, uint64_t request_id)
{
        for (const QueueEntry *e = d->leases.queue; e; e = e->next)
                if (e->request_id == request_id)
                        return true;
        return false;
}

/* Create one instance of `profile` where the planner says; true when made. */
static bool create_on_demand(Daemon *d, const char *profile, uint64_t request_id)
{
        MigState *m = d->mig;
        PolicyMigGpu pg[MIG_VIEW_MAX];
        PolicyMigProfile pp[MIG_VIEW_MAX][POLICY_MIG_MAX_PROFILES];
        PolicyMigInstance pi[MIG_VIEW_MAX][POLICY_MIG_MAX_INSTANCES];
        PolicyMigPlan plan;
        MigGpuView *v;
        nvmlDevice_t dev;
        nvmlReturn_t r;
        unsigned gi = 0;

        for (size_t i = 0; i < m->n_gpus; i++) {
                size_t n = 0;

                to_policy(d, &m->gpus[i], pp[i], pi[i], &n);
                pg[i] = (PolicyMigGpu) { .profiles = pp[i],
                                         .n_profiles = MIN(m->gpus[i].n_profiles, (size_t)POLICY_MIG_MAX_PROFILES),
                                         .instances = pi[i], .n_instances = n,
                                         .eligible = dynamic_gpu(d, &m->gpus[i]) };
        }
        if (policy_mig_place(pg, m->n_gpus, profile, &plan) != 1)
                return false;
        v = &m->gpus[plan.gpu];
        if (gpu_nvml_device_handle(d->nvml, v->index, &dev) != NVML_SUCCESS)
                return false;
        for (size_t k = 0; k < plan.n_destroy; k++) {
                /* pi[] skipped instances of unknown profiles: map back by start. */
                unsigned start = pi[plan.gpu][plan.destroy[k]].start;

                for (size_t j = 0; j < v->n_instances; j++)
                        if (v->instances[j].start == start) {
                                r = gpu_mig_destroy(d->nvml, dev, v->instances[j].gi_id);
                                if (r != NVML_SUCCESS) {
                                        log_warning("MIG: cannot destroy idle instance %u on %s: %s",
                                                    v->instances[j].gi_id, v->uuid,
                                                    gpu_nvml_error_string(d->nvml, r));
                                        return false;
                                }
                                log_info("MIG: destroyed idle on-demand instance %u on %s to make room",
                                         v->instances[j].gi_id, v->uuid);
                        }
        }
        r = gpu_mig_create(d->nvml, dev, &v->profiles[plan.profile], plan.start, &gi);
        if (r != NVML_SUCCESS) {
                log_warning("MIG: cannot create %s on %s at slice %u: %s: %s", profile, v->uuid,
                            plan.start, gpu_nvml_last_call(d->nvml), gpu_nvml_error_string(d->nvml, r));
                return false;
        }
        log_info("MIG: created %s on demand on GPU %s at memory slice %u (GPU instance %u)", profile,
                 v->uuid, plan.start, gi);
        audit_detail(d, -1, "mig.create", v->uuid, "profile", profile);
        if (m->n_on_demand < MIG_ON_DEMAND_MAX) {
                MigOnDemand *o = &m->on_demand[m->n_on_demand++];

                *o = (MigOnDemand) { .gi_id = gi, .created_usec = now_usec(CLOCK_REALTIME),
                                     .request_id = request_id };
                copy_str(o->gpu_uuid, sizeof(o->gpu_uuid), v->uuid);
        }
        return true;
}

static bool dynamic_tick(Daemon *d)
{
        MigState *m = d->mig;
        uint64_t now = now_usec(CLOCK_REALTIME);
        bool changed = false;
        const QueueEntry *head;

        /* Idle on-demand instances: destroyed when their lease has ended. */
        for (size_t i = 0; i < m->n_on_demand;) {
                MigOnDemand *o = &m->on_demand[i];
                MigGpuView *v = view_find(m, o->gpu_uuid);
                const char *uuid = "";
                bool exists = false, keep = true;
                nvmlDevice_t dev;

                for (size_t k = 0; v && k < v->n_instances; k++)
                        if (v->instances[k].gi_id == o->gi_id) {
                                exists = true;
                                uuid = v->instance_uuid[k];
                        }
                if (v && v->healthy && !exists) {
                        m->on_demand[i] = m->on_demand[--m->n_on_demand];
                        continue;
                }
                if (!v || !v->healthy)
                        keep = true;
                else if (instance_held(d, uuid))
                        o->leased_once = true;
                else if (instance_has_process(d, o->gpu_uuid, o->gi_id))
                        ;
                else if (request_queued(d, o->request_id))
                        /* Made for a request still waiting: keep it for the grant a
                         * while (it may be granted on the next schedule). */
                        keep = now < o->created_usec + MIG_ON_DEMAND_GRACE_USEC;
                else
                        /* Its request was served (and the lease ended) or went away. */
                        keep = d->config->mig.keep_dynamic;
                if (!keep && gpu_nvml_device_handle(d->nvml, v->index, &dev) == NVML_SUCCESS) {
                        nvmlReturn_t r = gpu_mig_destroy(d->nvml, dev, o->gi_id);

                        if (r == NVML_SUCCESS) {
                                log_info("MIG: destroyed on-demand instance %u (%s) on %s: its lease ended",
                                         o->gi_id, uuid, o->gpu_uuid);
                                audit_detail(d, -1, "mig.destroy", o->gpu_uuid, "instance", uuid);
                                m->on_demand[i] = m->on_demand[--m->n_on_demand];
                                changed = true;
                                continue;
                        }
                }
                i++;
        }

        /* The queue's head asks for a profile no free instance has: make one. */
        head = d->leases.queue;
        if (head && head->n_mig > 0 && !m->job_active)
                for (size_t i = 0; i < head->n_mig; i++) {
                        unsigned have = free_instances(d, head->mig[i].profile);

                        for (unsigned k = have; k < head->mig[i].count; k++) {
                                if (!create_on_demand(d, head->mig[i].profile, head->request_id))
                                        break;
                                changed = true;
                                resample(d);
                        }
                }
        return changed;
}

/* Placeholders for what on-demand creation could still make (see mig-ops.h). */
static void build_virtual(Daemon *d)
{
        MigState *m = d->mig;

        m->n_virt = 0;
        for (size_t i = 0; i < m->n_gpus; i++) {
                const MigGpuView *v = &m->gpus[i];
                PolicyMigProfile pp[POLICY_MIG_MAX_PROFILES];
                PolicyMigInstance pi[POLICY_MIG_MAX_INSTANCES];
                size_t n = 0;

                if (!dynamic_gpu(d, v))
                        continue;
                to_policy(d, v, pp, pi, &n);
                /* Idle on-demand instances may go: count as if they were gone. */
                size_t w = 0;
                for (size_t k = 0; k < n; k++)
                        if (!pi[k].destroyable)
                                pi[w++] = pi[k];
                PolicyMigGpu g = { .profiles = pp, .n_profiles = MIN(v->n_profiles, (size_t)POLICY_MIG_MAX_PROFILES),
                                   .instances = pi, .n_instances = w, .eligible = true };
                for (size_t p = 0; p < g.n_profiles; p++) {
                        unsigned add[POLICY_MIG_MAX_INSTANCES], starts[POLICY_MIG_MAX_INSTANCES];
                        size_t k = 0;

                        while (w + k < POLICY_MIG_MAX_INSTANCES - 1) {
                                add[k] = (unsigned)p;
                                if (policy_mig_pack(&g, add, k + 1, starts) != 1)
                                        break;
                                k++;
                        }
                        for (size_t j = 0; j < k && m->n_virt < MIG_VIRTUAL_MAX; j++) {
                                MigVirtual *x = &m->virt[m->n_virt++];

                                snprintf(x->uuid, sizeof(x->uuid), "MIG-on-demand-%.95s-%.31s-%zu", v->uuid,
                                         pp[p].name, j);
                                copy_str(x->profile, sizeof(x->profile), pp[p].name);
                                copy_str(x->parent, sizeof(x->parent), v->uuid);
                                copy_str(x->bus_id, sizeof(x->bus_id), v->bus_id);
                        }
                }
        }
}

size_t mig_ops_virtual_devices(const Daemon *d, PolicyDevice *ret, size_t max)
{
        const MigState *m = d->mig;
        size_t n = 0;

        if (!ret)
                return m ? m->n_virt : 0;
        for (size_t i = 0; m && i < m->n_virt && n < max; i++)
                ret[n++] = (PolicyDevice) { .uuid = m->virt[i].uuid, .parent_uuid = m->virt[i].parent,
                                            .pci_bus_id = m->virt[i].bus_id,
                                            .profile = m->virt[i].profile, .numa_node = -1,
                                            .healthy = true, .drained = true };
        return n;
}

void mig_ops_tick(Daemon *d)
{
        MigState *m = d->mig;
        bool changed;

        if (!m)
                return;
        refresh(d);
        if (!m->started) {
                m->started = true;
                reassert_stored(d, "at start");
        } else
                for (size_t i = 0; i < m->n_gpus; i++) {
                        const MigGpuView *old = prev_find(m, m->gpus[i].uuid);

                        if (m->gpus[i].healthy && (!old || !old->healthy)) {
                                reassert_stored(d, "a GPU came back");
                                break;
                        }
                }
        job_step(d);
        changed = dynamic_tick(d);
        build_virtual(d);
        if (changed)
                leases_schedule(d);
}

/* ---- views as JSON ---- */

static unsigned free_mask(const MigGpuView *v)
{
        unsigned used = 0;

        for (size_t k = 0; k < v->n_instances; k++)
                if (v->instances[k].size > 0 && v->instances[k].size <= 8 && v->instances[k].start < 8)
                        used |= ((1u << v->instances[k].size) - 1) << v->instances[k].start;
        return 0xFFu & ~used;
}

int mig_ops_free_slices(const Daemon *d, const char *gpu_uuid)
{
        const MigGpuView *v = d->mig ? view_find(d->mig, gpu_uuid) : NULL;

        if (!v || !v->capable || !v->current)
                return -1;
        return __builtin_popcount(free_mask(v));
}

int mig_ops_on_demand_count(const Daemon *d, const char *gpu_uuid)
{
        const MigState *m = d->mig;
        int n = 0;

        if (!m)
                return -1;
        for (size_t i = 0; i < m->n_on_demand; i++)
                n += !strcmp(m->on_demand[i].gpu_uuid, gpu_uuid);
        return n;
}

static json_t *view_json(const Daemon *d, const MigGpuView *v, bool full)
{
        json_t *o, *instances = json_array(), *profiles = json_array();
        unsigned fm = free_mask(v);

        for (size_t k = 0; k < v->n_instances; k++) {
                const char *pname = "unknown";

                for (size_t p = 0; p < v->n_profiles; p++)
                        if (v->profiles[p].id == v->instances[k].profile_id)
                                pname = v->profiles[p].name;
                json_array_append_new(
                        instances,
                        json_pack("{s:i, s:s, s:i, s:i, s:o, s:b, s:b}", "gi", v->instances[k].gi_id,
                                  "profile", pname, "start", v->instances[k].start, "size",
                                  v->instances[k].size, "uuid",
                                  v->instance_uuid[k][0] ? json_string(v->instance_uuid[k]) : json_null(),
                                  "on_demand", on_demand_find(d->mig, v->uuid, v->instances[k].gi_id) != NULL,
                                  "leased", instance_held(d, v->instance_uuid[k])));
        }
        for (size_t p = 0; full && p < v->n_profiles; p++) {
                json_t *all = json_array(), *open = json_array();
                unsigned count = 0;

                for (size_t k = 0; k < v->n_instances; k++)
                        count += v->instances[k].profile_id == v->profiles[p].id;
                for (unsigned s = 0; s < 8; s++) {
                        unsigned mk;

                        if (!(v->profiles[p].starts & (1u << s)) || v->profiles[p].size == 0 ||
                            v->profiles[p].size > 8)
                                continue;
                        json_array_append_new(all, json_integer(s));
                        mk = ((1u << v->profiles[p].size) - 1) << s;
                        if (v->current && (mk & ~fm) == 0 && count < v->profiles[p].max_instances)
                                json_array_append_new(open, json_integer(s));
                }
                json_array_append_new(
                        profiles, json_pack("{s:s, s:i, s:i, s:i, s:i, s:I, s:o, s:o}", "name",
                                            v->profiles[p].name, "id", v->profiles[p].id, "slices",
                                            v->profiles[p].slices, "size", v->profiles[p].size,
                                            "max_instances", v->profiles[p].max_instances, "memory_mib",
                                            (json_int_t)v->profiles[p].memory_mib, "placements", all,
                                            "free_placements", open));
        }
        o = json_pack("{s:s, s:i, s:b, s:b, s:b, s:o, s:b, s:o}", "uuid", v->uuid, "position",
                      v->position, "capable", v->capable, "mig_enabled", v->current, "mig_pending",
                      v->pending, "free_slices",
                      v->capable && v->current ? json_integer(__builtin_popcount(fm)) : json_null(),
                      "dynamic", config_mig_dynamic(&d->config->mig, v->uuid), "instances", instances);
        if (o && full) {
                json_object_set_new(o, "index", json_integer(v->index));
                json_object_set_new(o, "name", json_string(v->name));
                json_object_set_new(o, "pci_bus_id", json_string(v->bus_id));
                json_object_set_new(o, "pci_device_id", json_integer(v->pci_device_id));
                json_object_set_new(o, "profiles", profiles);
                json_object_set_new(o, "draining", json_boolean(mig_ops_draining(d, v->uuid)));
        } else
                json_decref(profiles);
        return o;
}

json_t *mig_ops_gpu_json(const Daemon *d, const char *gpu_uuid)
{
        const MigGpuView *v = d->mig ? view_find(d->mig, gpu_uuid) : NULL;

        if (!v || !v->capable)
                return NULL;
        return view_json(d, v, false);
}

static json_t *job_json(const Daemon *d)
{
        const MigState *m = d->mig;

        return json_pack("{s:s, s:o, s:s, s:O?, s:O?}", "state", m->job_state, "config",
                         m->job_config.name[0] ? json_string(m->job_config.name) : json_null(),
                         "message", m->job_message, "waiting_for", m->job_waiting, "reset", m->job_reset);
}

int mig_op_show(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                gk_call_error *ret_error)
{
        json_t *gpus = json_array(), *o;
        _cleanup_free_ char *stored = NULL;
        json_t *stored_name = json_null();

        if (args && json_object_size(args) > 0)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT, "this operation takes no arguments");
        if (!gpus)
                return -ENOMEM;
        for (size_t i = 0; i < d->mig->n_gpus; i++)
                json_array_append_new(gpus, view_json(d, &d->mig->gpus[i], true));
        if (store_mig_layout_load(d->store, &stored) == 0) {
                json_t *j = json_loads(stored, 0, NULL);

                if (j && json_is_string(json_object_get(j, "name")))
                        stored_name = json_string(json_string_value(json_object_get(j, "name")));
                json_decref(j);
        }
        o = json_pack("{s:o, s:o, s:o, s:b}", "gpus", gpus, "apply", job_json(d), "layout", stored_name,
                      "simulated", d->snapshot && d->snapshot->simulated);
        if (!o)
                return -ENOMEM;
        *ret_result = o;
        return 0;
}

int mig_op_export(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                  gk_call_error *ret_error)
{
        MigGpuFacts f[MIG_VIEW_MAX];
        const MigGpuView *order[MIG_VIEW_MAX];
        json_t *name = args ? json_object_get(args, "name") : NULL;
        _cleanup_free_ char *text = NULL;
        size_t n = 0;

        if (name && (!json_is_string(name) || json_string_length(name) == 0 ||
                     json_string_length(name) >= MIG_NAME_MAX))
                return request_error(ret_error, GK_E_INVALID_ARGUMENT, "'name' must be a config name");
        for (size_t i = 0; i < d->mig->n_gpus; i++)
                order[d->mig->gpus[i].position] = &d->mig->gpus[i];
        for (size_t i = 0; i < d->mig->n_gpus; i++)
                f[n++] = facts_of(order[i]);
        text = mig_export(f, n, name ? json_string_value(name) : "current");
        if (!text)
                return -ENOMEM;
        *ret_result = json_pack("{s:s}", "text", text);
        return *ret_result ? 0 : -ENOMEM;
}

/* Plans for every GPU, or an error naming the first GPU that cannot take it. */
static int plan_all(Daemon *d, const MigConfig *c, json_t **ret_gpus, bool *ret_matches,
                    gk_call_error *ret_error)
{
        json_t *gpus = json_array();
        bool matches = true, any = false;
        char error[512];

        if (!gpus)
                return -ENOMEM;
        for (size_t i = 0; i < d->mig->n_gpus; i++) {
                const MigGpuView *v = &d->mig->gpus[i];
                MigGpuFacts f = facts_of(v);
                MigGpuPlan p;
                json_t *create = json_array(), *keep = json_array(), *destroy = json_array();
                char why[256] = "";

                if (mig_plan_gpu(c, &f, &p, error, sizeof(error)) < 0) {
                        json_decref(gpus);
                        json_decref(create);
                        json_decref(keep);
                        json_decref(destroy);
                        return request_error(ret_error, GK_E_INVALID_ARGUMENT, "%s; nothing changed", error);
                }
                any |= p.selected;
                if (p.selected && !p.matches)
                        matches = false;
                for (size_t k = 0; k < p.n_create; k++)
                        json_array_append_new(create, json_pack("{s:s, s:i}", "profile", p.create[k].profile->name,
                                                                "start", p.create[k].start));
                for (size_t k = 0; k < p.n_keep; k++)
                        for (size_t j = 0; j < v->n_instances; j++)
                                if (v->instances[j].gi_id == p.keep[k])
                                        json_array_append_new(keep, json_pack("{s:i, s:o}", "gi", p.keep[k], "uuid",
                                                                              v->instance_uuid[j][0]
                                                                                      ? json_string(v->instance_uuid[j])
                                                                                      : json_null()));
                for (size_t k = 0; k < p.n_destroy; k++)
                        json_array_append_new(destroy, json_integer(p.destroy[k]));
                if (p.selected && !p.matches)
                        (void)gpu_busy(d, v, why, sizeof(why));
                json_array_append_new(
                        gpus, json_pack("{s:i, s:s, s:s, s:b, s:b, s:b, s:b, s:o, s:o, s:o, s:s}", "gpu",
                                        v->position, "uuid", v->uuid, "name", v->name, "selected", p.selected,
                                        "matches", p.matches, "mig_enabled", p.enable, "reset_needed",
                                        p.mode_change, "keep", keep, "destroy", destroy, "create", create,
                                        "busy", why));
        }
        if (!any) {
                json_decref(gpus);
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "config %s selects none of this machine's %zu GPUs; nothing changed",
                                     c->name, d->mig->n_gpus);
        }
        *ret_gpus = gpus;
        *ret_matches = matches;
        return 0;
}

static int config_arg(json_t *args, MigConfig *ret, gk_call_error *ret_error)
{
        char error[256];
        json_t *c = args ? json_object_get(args, "config") : NULL;

        if (!json_is_object(c))
                return request_error(ret_error, GK_E_INVALID_ARGUMENT, "'config' (a parsed mig-parted config) is required");
        if (mig_config_from_json(c, ret, error, sizeof(error)) < 0)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT, "%s", error);
        return 0;
}

static int check_keys(json_t *args, const char *const *allowed, gk_call_error *ret_error)
{
        const char *key;
        json_t *v;

        json_object_foreach(args, key, v) {
                bool ok = false;

                for (size_t i = 0; allowed[i]; i++)
                        ok |= !strcmp(key, allowed[i]);
                if (!ok)
                        return request_error(ret_error, GK_E_INVALID_ARGUMENT, "unknown argument '%s'", key);
        }
        return 0;
}

int mig_op_assert(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                  gk_call_error *ret_error)
{
        static const char *const allowed[] = { "config", NULL };
        MigConfig c;
        json_t *gpus;
        bool matches;
        int r;

        if (args && (r = check_keys(args, allowed, ret_error)) != 0)
                return r;
        if ((r = config_arg(args, &c, ret_error)) != 0)
                return r;
        r = plan_all(d, &c, &gpus, &matches, ret_error);
        free(c.specs);
        if (r != 0)
                return r;
        *ret_result = json_pack("{s:b, s:o}", "matches", matches, "gpus", gpus);
        return *ret_result ? 0 : -ENOMEM;
}

int mig_op_apply(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                 gk_call_error *ret_error)
{
        static const char *const allowed[] = { "config", "wait", "dry_run", "file", NULL };
        json_t *wait = args ? json_object_get(args, "wait") : NULL;
        json_t *dry = args ? json_object_get(args, "dry_run") : NULL;
        json_t *gpus = NULL, *stored;
        _cleanup_free_ char *text = NULL;
        MigConfig c;
        bool matches;
        int r;

        if (!peer_is_admin(call->peer)) {
                audit_detail(d, call->peer->uid, "mig.refused", "mig.apply", "reason",
                             "not an admin");
                return request_error(ret_error, GK_E_PERMISSION,
                                     "only root and members of %s may apply MIG layouts", ADMIN_GROUP);
        }
        if (args && (r = check_keys(args, allowed, ret_error)) != 0)
                return r;
        if ((wait && !json_is_boolean(wait)) || (dry && !json_is_boolean(dry)))
                return request_error(ret_error, GK_E_INVALID_ARGUMENT, "'wait' and 'dry_run' are true or false");
        if ((r = config_arg(args, &c, ret_error)) != 0)
                return r;
        if (!d->nvml) {
                free(c.specs);
                return request_error(ret_error, GK_E_UNAVAILABLE, "NVML is not available: %s", d->nvml_message);
        }
        if (d->mig->job_active && d->mig->job_uid >= 0 && !json_is_true(dry)) {
                free(c.specs);
                return request_error(ret_error, GK_E_BUSY, "another MIG apply (%s) is in progress; see gpukeeper mig show",
                                     d->mig->job_config.name);
        }
        r = plan_all(d, &c, &gpus, &matches, ret_error);
        if (r != 0) {
                free(c.specs);
                return r;
        }
        if (json_is_true(dry)) {
                free(c.specs);
                *ret_result = json_pack("{s:s, s:b, s:o}", "state", "dry-run", "matches", matches, "gpus", gpus);
                return *ret_result ? 0 : -ENOMEM;
        }
        /* --no-wait: refused, naming what is in the way, before anything changes. */
        if (wait && json_is_false(wait)) {
                size_t i;
                json_t *g;

                json_array_foreach(gpus, i, g) {
                        const char *busy = json_string_value(json_object_get(g, "busy"));

                        if (busy && busy[0]) {
                                char msg[512];

                                snprintf(msg, sizeof(msg), "GPU %d (%s) must be re-carved but is in use: %s; "
                                         "nothing changed (without --no-wait the apply drains it and waits)",
                                         (int)json_integer_value(json_object_get(g, "gpu")),
                                         json_string_value(json_object_get(g, "uuid")), busy);
                                json_decref(gpus);
                                free(c.specs);
                                audit_detail(d, call->peer->uid, "mig.refused", "mig.apply",
                                             "reason", msg);
                                return request_error(ret_error, GK_E_NO_CAPACITY, "%s", msg);
                        }
                }
        }
        json_decref(gpus);
        stored = mig_config_to_json(&c);
        text = stored ? json_dumps(stored, JSON_COMPACT) : NULL;
        json_decref(stored);
        if (!text) {
                free(c.specs);
                return -ENOMEM;
        }
        r = store_mig_layout_save(d->store, text, call->peer->uid, now_usec(CLOCK_REALTIME), c.name);
        if (r < 0) {
                free(c.specs);
                return r;
        }
        log_info("MIG layout %s applied by uid %u%s.", c.name, (unsigned)call->peer->uid,
                 matches ? " (already in place)" : "");
        job_start(d, &c, call->peer->uid);
        job_step(d);
        build_virtual(d);
        leases_schedule(d);
        *ret_result = job_json(d);
        return *ret_result ? 0 : -ENOMEM;
}
