/* Lease state and scheduling; see leases.h. */
#include "daemon/leases.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/log.h"
#include "basic/proc.h"
#include "basic/time-util.h"
#include "basic/user-util.h"
#include "daemon/daemon.h"
#include "proto/json-text.h"
#include "daemon/server.h"
#include "proto/proto.h"

void queue_entry_free(QueueEntry *e)
{
        if (!e)
                return;
        free(e->command);
        free(e->request_json);
        for (size_t i = 0; i < e->n_named; i++)
                free(e->named[i]);
        free(e->named);
        free(e->mig);
        free(e);
}

static void lease_free(Lease *l)
{
        if (!l)
                return;
        stored_lease_done(&l->rec);
        free(l);
}

void leases_done(LeaseState *s)
{
        while (s->leases) {
                Lease *next = s->leases->next;

                lease_free(s->leases);
                s->leases = next;
        }
        while (s->queue) {
                QueueEntry *next = s->queue->next;

                queue_entry_free(s->queue);
                s->queue = next;
        }
        free(s->drained);
        free(s->released);
        sd_event_source_disable_unref(s->timer);
        sd_event_source_disable_unref(s->position_timer);
        *s = (LeaseState){};
}

/* Set (usec > 0) or remove (usec == 0) `uuid` in a small uuid → time table. */
static int device_time_set(DeviceTime **table, size_t *n, const char *uuid, uint64_t usec)
{
        DeviceTime *grown;

        for (size_t i = 0; i < *n; i++)
                if (strcmp((*table)[i].uuid, uuid) == 0) {
                        if (usec)
                                (*table)[i].usec = usec;
                        else
                                (*table)[i] = (*table)[--*n];
                        return 0;
                }
        if (!usec)
                return 0;
        grown = realloc(*table, (*n + 1) * sizeof **table);
        if (!grown)
                return -ENOMEM;
        *table = grown;
        snprintf(grown[*n].uuid, sizeof grown[*n].uuid, "%s", uuid);
        grown[(*n)++].usec = usec;
        return 0;
}

static uint64_t device_time_get(const DeviceTime *table, size_t n, const char *uuid)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(table[i].uuid, uuid) == 0)
                        return table[i].usec;
        return 0;
}

static int load_drain(const char *uuid, uint64_t usec, void *userdata)
{
        LeaseState *s = userdata;

        return device_time_set(&s->drained, &s->n_drained, uuid, usec ? usec : 1);
}

static int load_usage(const char *uuid, uint64_t usec, void *userdata)
{
        LeaseState *s = userdata;

        return device_time_set(&s->released, &s->n_released, uuid, usec);
}

static void lease_append(LeaseState *s, Lease *l)
{
        Lease **p = &s->leases;

        while (*p)
                p = &(*p)->next;
        *p = l;
        s->n_leases++;
}

/* Is the process that held a run lease still the same live process? */
static bool client_alive(pid_t pid, uint64_t start_time)
{
        uint64_t now_start;

        return pid > 0 && proc_start_time(pid, &now_start) >= 0 && now_start == start_time;
}

int leases_init(Daemon *d)
{
        LeaseState *s = &d->leases;
        StoredLease *loaded = NULL;
        uint64_t now = now_usec(CLOCK_REALTIME);
        size_t n = 0;
        int r;

        s->next_request_id = 1;
        r = store_drains_foreach(d->store, load_drain, s);
        if (r < 0)
                return log_error_errno(r, "Cannot load drained devices");
        r = store_device_usage_foreach(d->store, load_usage, s);
        if (r < 0)
                return log_error_errno(r, "Cannot load device usage");
        r = store_leases_load_active(d->store, &loaded, &n);
        if (r < 0)
                return log_error_errno(r, "Cannot load active leases");

        for (size_t i = 0; i < n; i++) {
                Lease *l = calloc(1, sizeof *l);

                if (!l) {
                        for (size_t j = i; j < n; j++)
                                stored_lease_done(&loaded[j]);
                        free(loaded);
                        return log_error_errno(-ENOMEM, "Cannot load active leases");
                }
                l->rec = loaded[i];
                /* Whether it was used while we were down is unknown: give it
                 * the benefit of the doubt rather than reclaim it at once. */
                l->idle = (PolicyIdleLease){
                        .kind = l->rec.kind == LEASE_RUN ? POLICY_IDLE_RUN : POLICY_IDLE_MANUAL,
                        .created_usec = l->rec.created_usec,
                        .last_busy_usec = now,
                        .last_utilized_usec = now,
                };
                l->idle_saved_usec = now;
                if (l->rec.kind == LEASE_RUN)
                        l->attach_deadline_usec = now + d->config->policy.reconnect_grace_usec;
                lease_append(s, l);
        }
        free(loaded);

        /* A run lease whose client died while we were down goes at once. */
        for (Lease *l = s->leases, *next; l; l = next) {
                next = l->next;
                if (l->rec.kind == LEASE_RUN &&
                    !client_alive(l->rec.client_pid, l->rec.client_start_time))
                        leases_end(d, l, false, "client exited while gpukeeperd was down", -1);
        }
        log_info("Restored %zu active leases, %zu drained devices.", s->n_leases, s->n_drained);
        return 0;
}

Lease *leases_find(Daemon *d, int64_t id)
{
        for (Lease *l = d->leases.leases; l; l = l->next)
                if (l->rec.id == id)
                        return l;
        return NULL;
}

const Lease *leases_holder(const Daemon *d, const char *uuid)
{
        for (const Lease *l = d->leases.leases; l; l = l->next)
                for (size_t i = 0; i < l->rec.n_devices; i++)
                        if (strcmp(l->rec.devices[i].uuid, uuid) == 0)
                                return l;
        return NULL;
}

/* Whether a lease holds part of GPU `gpu_uuid` that rules out `uuid` (the
 * GPU itself or one of its instances): a whole GPU and its instances exclude
 * each other, whatever the GPU's MIG mode says now (it can change, or fail
 * to read, under a lease). */
static bool gpu_part_held(const Daemon *d, const char *gpu_uuid, const char *uuid)
{
        bool whole = strcmp(uuid, gpu_uuid) == 0;

        for (const Lease *l = d->leases.leases; l; l = l->next)
                for (size_t i = 0; i < l->rec.n_devices; i++) {
                        const LeaseDevice *x = &l->rec.devices[i];

                        if (strcmp(x->gpu_uuid, gpu_uuid) == 0 &&
                            (whole || strcmp(x->uuid, x->gpu_uuid) == 0))
                                return true;
                }
        return false;
}

int leases_set_drained(Daemon *d, const char *uuid, bool drained)
{
        LeaseState *s = &d->leases;

        return device_time_set(&s->drained, &s->n_drained, uuid,
                               drained ? now_usec(CLOCK_REALTIME) : 0);
}

bool leases_is_drained(const Daemon *d, const char *uuid, const char *gpu_uuid)
{
        const LeaseState *s = &d->leases;

        return device_time_get(s->drained, s->n_drained, uuid) > 0 ||
               (gpu_uuid && device_time_get(s->drained, s->n_drained, gpu_uuid) > 0);
}

int leases_end(Daemon *d, Lease *l, bool expired, const char *reason, int64_t actor)
{
        LeaseState *s = &d->leases;
        uint64_t now = now_usec(CLOCK_REALTIME);
        int r;

        strict_lease_ending(d, l); /* strict mode: the fence closes first */
        (void)store_lease_set_idle(d->store, l->rec.id, l->rec.idle_device_usec);
        r = store_lease_end(d->store, l->rec.id, expired, reason, actor, now);
        if (r < 0 && r != -ENOENT) {
                strict_sync(d); /* still held: open again */
                return log_error_errno(r, "Cannot end lease %" PRId64, l->rec.id);
        }
        for (size_t i = 0; i < l->rec.n_devices; i++)
                (void)device_time_set(&s->released, &s->n_released, l->rec.devices[i].uuid, now);

        for (Lease **p = &s->leases; *p; p = &(*p)->next)
                if (*p == l) {
                        *p = l->next;
                        s->n_leases--;
                        break;
                }
        log_info("Lease %" PRId64 " of uid %u %s: %s", l->rec.id, (unsigned)l->rec.uid,
                 expired ? "expired" : "released", reason);
        {
                int64_t id = l->rec.id;

                lease_free(l);
                strict_lease_ended(d, id); /* strict mode: the fence closes */
        }
        return 0;
}

uint64_t leases_enqueue(Daemon *d, QueueEntry *e)
{
        LeaseState *s = &d->leases;
        QueueEntry **p = &s->queue;

        e->request_id = s->next_request_id++;
        e->since_usec = now_usec(CLOCK_REALTIME);
        e->next = NULL;
        while (*p)
                p = &(*p)->next;
        *p = e;
        s->queue_len++;
        return e->request_id;
}

bool leases_dequeue(Daemon *d, uint64_t request_id)
{
        LeaseState *s = &d->leases;

        for (QueueEntry **p = &s->queue; *p; p = &(*p)->next)
                if ((*p)->request_id == request_id) {
                        QueueEntry *e = *p;

                        *p = e->next;
                        s->queue_len--;
                        queue_entry_free(e);
                        return true;
                }
        return false;
}

static const GpuDevice *snapshot_gpu(const Daemon *d, const char *gpu_uuid)
{
        return d->snapshot ? gpu_snapshot_find_device(d->snapshot, gpu_uuid) : NULL;
}

static json_t *lease_device_json(const Daemon *d, const LeaseDevice *dev)
{
        const GpuDevice *g = snapshot_gpu(d, dev->gpu_uuid);

        return json_pack("{s:s, s:s, s:o, s:o}", "uuid", dev->uuid, "gpu_uuid", dev->gpu_uuid,
                         "gpu_index", g ? json_integer(g->index) : json_null(), "profile",
                         dev->profile[0] ? json_string(dev->profile) : json_null());
}

static json_t *usec_to_json(uint64_t usec)
{
        return usec ? json_real((double)usec / USEC_PER_SEC) : json_null();
}

json_t *lease_to_json(const Daemon *d, const Lease *l)
{
        char visible[LEASE_MAX_DEVICES * LEASE_UUID_MAX] = "";
        json_t *devices = json_array();
        const char *user;
        size_t o = 0;

        if (!devices)
                return NULL;
        for (size_t i = 0; i < l->rec.n_devices; i++) {
                if (json_array_append_new(devices, lease_device_json(d, &l->rec.devices[i])) < 0) {
                        json_decref(devices);
                        return NULL;
                }
                if (o < sizeof visible)
                        o += (size_t)snprintf(visible + o, sizeof visible - o, "%s%s",
                                              i ? "," : "", l->rec.devices[i].uuid);
        }
        user = daemon_user_name(d, l->rec.uid);
        return json_pack("{s:I, s:I, s:o, s:s, s:s, s:o, s:s, s:o, s:o, s:n, s:n, s:o, s:o, s:b, "
                         "s:b, s:b, s:f}",
                         "id", (json_int_t)l->rec.id, "uid", (json_int_t)l->rec.uid, "user",
                         json_text(user), "kind",
                         lease_kind_to_string(l->rec.kind), "state", "active", "devices", devices,
                         "cuda_visible_devices", visible, "created_at",
                         usec_to_json(l->rec.created_usec), "expires_at",
                         usec_to_json(l->rec.expires_usec), "released_at", "release_reason", "pid",
                         l->rec.client_pid > 0 ? json_integer(l->rec.client_pid) : json_null(),
                         "command", l->rec.command ? json_string(l->rec.command) : json_null(),
                         "attached", l->conn_id != 0,
                         "idle_warned", l->idle.warned_usec != 0,
                         "idle_flagged", l->idle.flagged,
                         "idle_device_seconds", (double)l->rec.idle_device_usec / USEC_PER_SEC);
}

/* "2 GPUs", "1× 3g.40gb, 2× 1g.10gb", "GPU-…,MIG-…". */
static void describe_wants(const QueueEntry *e, char *buf, size_t len)
{
        size_t o = 0;

        buf[0] = '\0';
        if (e->n_gpus) {
                snprintf(buf, len, "%u GPU%s", e->n_gpus, e->n_gpus == 1 ? "" : "s");
                return;
        }
        for (size_t i = 0; i < e->n_mig && o < len; i++)
                o += (size_t)snprintf(buf + o, len - o, "%s%u× %s", i ? ", " : "", e->mig[i].count,
                                      e->mig[i].profile);
        for (size_t i = 0; i < e->n_named && o < len; i++)
                o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? "," : "", e->named[i]);
}

json_t *leases_queue_to_json(const Daemon *d)
{
        json_t *queue = json_array();
        unsigned position = 0;

        if (!queue)
                return NULL;
        for (const QueueEntry *e = d->leases.queue; e; e = e->next) {
                const char *user = daemon_user_name(d, e->uid);
                char wants[256];
                json_t *o;

                describe_wants(e, wants, sizeof wants);
                o = json_pack("{s:I, s:I, s:o, s:s, s:I, s:o, s:s, s:s}", "request_id",
                              (json_int_t)e->request_id, "uid", (json_int_t)e->uid, "user",
                              user ? json_string(user) : json_null(), "kind",
                              lease_kind_to_string(e->kind), "position", (json_int_t)++position,
                              "since", usec_to_json(e->since_usec), "wants", wants, "reason",
                              e->last_reason);
                if (!o || json_array_append_new(queue, o) < 0) {
                        json_decref(queue);
                        return NULL;
                }
        }
        return queue;
}

/* Memory on a device held by processes whose owner is not `holder_uid`
 * (every process when the device is free): the allocator skips devices
 * where such use is above policy.unleased_memory_limit. */
static uint64_t unleased_memory(const GpuDevice *g, int instance, const Lease *holder)
{
        uint64_t sum = 0;

        for (size_t i = 0; i < g->n_processes; i++) {
                const GpuProcess *p = &g->processes[i];

                if (p->instance != instance || p->vanished ||
                    p->memory_used_bytes == GPU_VALUE_UNKNOWN)
                        continue;
                if (holder && p->uid == holder->rec.uid)
                        continue;
                sum += p->memory_used_bytes;
        }
        return sum;
}

static void policy_device_fill(const Daemon *d, const GpuDevice *g, int instance, PolicyDevice *ret)
{
        const char *uuid = instance >= 0 ? g->instances[instance].uuid : g->uuid;
        const Lease *holder = leases_holder(d, uuid);

        *ret = (PolicyDevice){
            .uuid = uuid,
            .parent_uuid = g->uuid,
            .pci_bus_id = g->pci_bus_id,
            .profile = instance >= 0 ? g->instances[instance].profile : NULL,
            .numa_node = instance >= 0 ? g->instances[instance].numa_node : g->numa_node,
            .healthy = g->healthy,
            .drained = leases_is_drained(d, uuid, g->uuid),
            .leased = holder != NULL || gpu_part_held(d, g->uuid, uuid),
            .unleased_memory_bytes = unleased_memory(g, instance, holder),
            .last_released_usec = device_time_get(d->leases.released, d->leases.n_released, uuid),
        };
}

int leases_policy_devices(const Daemon *d, PolicyDevice **ret, size_t *ret_n)
{
        const GpuSnapshot *snap = d->snapshot;
        PolicyDevice *devs;
        size_t n = 0, cap = 0;

        for (size_t i = 0; snap && i < snap->n_gpus; i++)
                cap += snap->gpus[i].mig_enabled ? snap->gpus[i].n_instances : 1;
        if (cap > POLICY_MAX_DEVICES)
                cap = POLICY_MAX_DEVICES;
        devs = calloc(cap ? cap : 1, sizeof *devs);
        if (!devs)
                return -ENOMEM;
        for (size_t i = 0; snap && i < snap->n_gpus; i++) {
                const GpuDevice *g = &snap->gpus[i];

                /* A GPU lost before we ever saw its identity cannot be named. */
                if (!g->uuid[0])
                        continue;
                if (!g->mig_enabled) {
                        if (n < cap)
                                policy_device_fill(d, g, -1, &devs[n++]);
                        continue;
                }
                for (size_t k = 0; k < g->n_instances && n < cap; k++)
                        policy_device_fill(d, g, (int)k, &devs[n++]);
        }
        *ret = devs;
        *ret_n = n;
        return 0;
}

static void policy_request_fill(const QueueEntry *e, PolicyRequest *ret)
{
        *ret = (PolicyRequest){
            .id = e->request_id,
            .uid = e->uid,
            .n_gpus = e->n_gpus,
            .named = (const char *const *)e->named,
            .n_named = e->n_named,
            .mig = e->mig,
            .n_mig = e->n_mig,
        };
}

size_t leases_queued_by(const Daemon *d, uid_t uid)
{
        size_t n = 0;

        for (const QueueEntry *e = d->leases.queue; e; e = e->next)
                n += e->uid == uid;
        return n;
}

unsigned leases_held_by(const Daemon *d, uid_t uid)
{
        unsigned n = 0;

        for (const Lease *l = d->leases.leases; l; l = l->next)
                if (l->rec.uid == uid)
                        n += (unsigned)l->rec.n_devices;
        return n;
}

/* Returns server_send's answer: -ENOENT when the connection is gone. */
static int send_to(Daemon *d, uint64_t conn_id, json_t *msg)
{
        if (d->server)
                return server_send(d->server, conn_id, msg);
        json_decref(msg);
        return 0;
}

/* Turn a GRANT into a lease: store transaction, memory, reply. */
static void grant(Daemon *d, QueueEntry *e, const PolicyDevice *devs, const PolicyDecision *dec)
{
        uint64_t now = now_usec(CLOCK_REALTIME);
        uint64_t conn_id = e->conn_id, request_id = e->request_id;
        uint32_t msg_id = e->msg_id;
        Lease *l;
        int r;

        l = calloc(1, sizeof *l);
        if (l)
                l->rec.devices =
                    calloc(dec->n_devices ? dec->n_devices : 1, sizeof *l->rec.devices);
        if (!l || !l->rec.devices) {
                lease_free(l);
                send_to(d, conn_id, proto_reply_error(msg_id, GK_E_INTERNAL, "out of memory"));
                leases_dequeue(d, request_id);
                return;
        }
        l->rec.uid = e->uid;
        l->rec.kind = e->kind;
        l->rec.created_usec = now;
        l->rec.expires_usec = e->kind == LEASE_MANUAL ? now + e->duration_usec : 0;
        l->rec.client_pid = e->kind == LEASE_RUN ? e->pid : 0;
        l->rec.client_start_time = e->kind == LEASE_RUN ? e->pid_start_time : 0;
        l->rec.command = TAKE_PTR(e->command);
        l->rec.queue_wait_usec = now > e->since_usec ? now - e->since_usec : 0;
        l->rec.n_devices = dec->n_devices;
        for (size_t i = 0; i < dec->n_devices; i++) {
                const PolicyDevice *pd = &devs[dec->devices[i]];
                LeaseDevice *ld = &l->rec.devices[i];

                snprintf(ld->uuid, sizeof ld->uuid, "%s", pd->uuid);
                snprintf(ld->gpu_uuid, sizeof ld->gpu_uuid, "%s", pd->parent_uuid);
                snprintf(ld->profile, sizeof ld->profile, "%s", pd->profile ? pd->profile : "");
        }

        r = store_lease_grant(d->store, &l->rec, e->request_json ? e->request_json : "{}");
        if (r < 0) {
                log_error_errno(r, "Cannot record a lease for uid %u", (unsigned)e->uid);
                lease_free(l);
                send_to(d, conn_id,
                        proto_reply_error(msg_id, GK_E_INTERNAL,
                                          "gpukeeperd could not record the lease: %s",
                                          strerror(-r)));
                leases_dequeue(d, request_id);
                return;
        }
        l->conn_id = e->kind == LEASE_RUN ? conn_id : 0;
        l->idle = (PolicyIdleLease){
                .kind = l->rec.kind == LEASE_RUN ? POLICY_IDLE_RUN : POLICY_IDLE_MANUAL,
                .created_usec = now,
        };
        l->idle_saved_usec = now;
        lease_append(&d->leases, l);
        leases_dequeue(d, request_id);
        log_info("Lease %" PRId64 " granted to uid %u (%s, %zu devices).", l->rec.id,
                 (unsigned)l->rec.uid, lease_kind_to_string(l->rec.kind), l->rec.n_devices);
        /* Strict mode: the fence opens before the client hears of the grant. */
        strict_lease_granted(d, l);
        r = send_to(d, conn_id,
                    proto_reply_ok(msg_id, json_pack("{s:o}", "lease", lease_to_json(d, l))));
        /* Nobody learns of a lease whose reply could not be delivered. A run
         * lease on a connection being closed ends with the close; a manual
         * one, or one whose connection is gone already, ends now. */
        if (r < 0 && (l->rec.kind == LEASE_MANUAL || r == -ENOENT))
                (void)leases_end(d, l, false, "the client was gone before the grant reached it",
                                 -1);
}

/* Record a waiting request's position; the event goes out in
 * flush_positions(), throttled per client. */
static void tell_position(QueueEntry *e, unsigned position, const char *reason)
{
        if (e->last_position == position && strcmp(e->last_reason, reason) == 0)
                return;
        e->last_position = position;
        snprintf(e->last_reason, sizeof e->last_reason, "%s", reason);
        e->position_dirty = !e->no_wait;
}

static int on_position_timer(sd_event_source *source, uint64_t usec, void *userdata);

/* Send the queue.position events that are due, and arm a timer for the
 * ones held back by LEASES_POSITION_INTERVAL_USEC. */
static void flush_positions(Daemon *d)
{
        LeaseState *s = &d->leases;
        uint64_t now = now_usec(CLOCK_MONOTONIC), next = 0;
        int r;

        for (QueueEntry *e = s->queue; e; e = e->next) {
                uint64_t due = e->position_sent_usec + LEASES_POSITION_INTERVAL_USEC;
                json_t *data;

                if (!e->position_dirty)
                        continue;
                if (e->position_sent_usec && due > now) {
                        next = next && next < due ? next : due;
                        continue;
                }
                e->position_dirty = false;
                e->position_sent_usec = now;
                data = json_pack("{s:I, s:I, s:I, s:s}", "request_id", (json_int_t)e->request_id,
                                 "position", (json_int_t)e->last_position, "waiting",
                                 (json_int_t)s->queue_len, "reason", e->last_reason);
                send_to(d, e->conn_id, proto_event("queue.position", data));
        }
        if (!next)
                return;
        if (!s->position_timer)
                r = sd_event_add_time(d->event, &s->position_timer, CLOCK_MONOTONIC, next,
                                      USEC_PER_MSEC * 10, on_position_timer, d);
        else {
                r = sd_event_source_set_time(s->position_timer, next);
                if (r >= 0)
                        r = sd_event_source_set_enabled(s->position_timer, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_error_errno(r, "Cannot arm the queue position timer");
}

static int on_position_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
        flush_positions(userdata);
        return 0;
}

/* Whether the snapshot shows every GPU as NVML knows it: the library
 * answered, and no call failed in that sample. */
static bool snapshot_complete(const GpuSnapshot *snap)
{
        return snap && snap->nvml_available && snap->nvml_errors == 0;
}

static void leases_rearm_timer(Daemon *d);

void leases_schedule(Daemon *d)
{
        LeaseState *s = &d->leases;
        _cleanup_free_ PolicyDevice *devs = NULL;
        _cleanup_free_ PolicyRequest *reqs = NULL;
        _cleanup_free_ PolicyUserUsage *usage = NULL;
        _cleanup_free_ PolicyDecision *decisions = NULL;
        _cleanup_free_ QueueEntry **entries = NULL;
        PolicyLimits limits = {.unleased_memory_max =
                                   d->config->policy.unleased_memory_limit_bytes};
        size_t n_devs = 0, n = 0, n_usage = 0;
        unsigned position = 0;
        int r;

        if (!s->queue)
                goto done;

        r = leases_policy_devices(d, &devs, &n_devs);
        entries = calloc(s->queue_len, sizeof *entries);
        reqs = calloc(s->queue_len, sizeof *reqs);
        usage = calloc(s->queue_len, sizeof *usage);
        decisions = calloc(s->queue_len, sizeof *decisions);
        if (r < 0 || !entries || !reqs || !usage || !decisions) {
                log_error("Cannot schedule the queue: out of memory");
                goto done;
        }
        for (QueueEntry *e = s->queue; e; e = e->next) {
                bool seen = false;

                entries[n] = e;
                policy_request_fill(e, &reqs[n++]);
                for (size_t k = 0; k < n_usage; k++)
                        seen = seen || usage[k].uid == e->uid;
                if (!seen)
                        usage[n_usage++] = (PolicyUserUsage){.uid = e->uid,
                                                             .held = leases_held_by(d, e->uid),
                                                             .max_devices = e->max_gpus};
        }

        r = policy_allocate(devs, n_devs, reqs, n, usage, n_usage, &limits, decisions);
        if (r < 0) {
                log_error_errno(r, "Allocator failed");
                goto done;
        }
        for (size_t i = 0; i < n; i++) {
                QueueEntry *e = entries[i];

                if (decisions[i].verdict == POLICY_IMPOSSIBLE && e->last_position > 0 &&
                    !snapshot_complete(d->snapshot)) {
                        /* What is missing may only be missing from this
                         * sample: a request that was waiting stays until
                         * NVML answers in full again (a new one is refused
                         * at once, as always). */
                        decisions[i].verdict = POLICY_WAIT;
                        snprintf(decisions[i].reason, sizeof decisions[i].reason, "%s",
                                 "waiting for NVML to list every GPU again");
                }
                if (decisions[i].verdict == POLICY_GRANT)
                        grant(d, e, devs, &decisions[i]);
                else if (decisions[i].verdict == POLICY_IMPOSSIBLE) {
                        send_to(d, e->conn_id,
                                proto_reply_error(e->msg_id, GK_E_INVALID_ARGUMENT, "%s",
                                                  decisions[i].reason));
                        leases_dequeue(d, e->request_id);
                }
        }
        /* Positions after the grants, in queue order. */
        for (size_t i = 0; i < n; i++)
                if (decisions[i].verdict == POLICY_WAIT)
                        tell_position(entries[i], ++position, decisions[i].reason);
        policy_decisions_free(decisions, n);
        flush_positions(d);
done:
        leases_rearm_timer(d);
}

void leases_connection_closed(Daemon *d, uint64_t conn_id)
{
        LeaseState *s = &d->leases;
        bool changed = false;

        for (QueueEntry *e = s->queue, *next; e; e = next) {
                next = e->next;
                if (e->conn_id == conn_id)
                        changed |= leases_dequeue(d, e->request_id);
        }
        for (Lease *l = s->leases, *next; l; l = next) {
                next = l->next;
                if (l->rec.kind == LEASE_RUN && l->conn_id == conn_id) {
                        if (leases_end(d, l, false, "client exited", (int64_t)l->rec.uid) < 0) {
                                l->conn_id = 0;
                                l->end_retry_usec =
                                    now_usec(CLOCK_REALTIME) + LEASES_END_RETRY_USEC;
                        }
                        changed = true;
                }
        }
        if (changed)
                leases_schedule(d);
}

static int on_lease_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
        Daemon *d = userdata;
        uint64_t now = now_usec(CLOCK_REALTIME);

        for (Lease *l = d->leases.leases, *next; l; l = next) {
                int r = 0;

                next = l->next;
                if (l->end_retry_usec > now)
                        continue;
                if (l->rec.kind == LEASE_MANUAL && l->rec.expires_usec <= now)
                        r = leases_end(d, l, true, "lease expired", -1);
                else if (l->rec.kind == LEASE_RUN && l->conn_id == 0 && l->end_retry_usec)
                        r = leases_end(d, l, false, "client exited", (int64_t)l->rec.uid);
                else if (l->rec.kind == LEASE_RUN && l->conn_id == 0 && l->attach_deadline_usec &&
                         l->attach_deadline_usec <= now)
                        r = leases_end(d, l, false, "client did not reconnect after a restart", -1);
                if (r < 0) /* still ours: not again before the retry time */
                        l->end_retry_usec = now + LEASES_END_RETRY_USEC;
        }
        leases_schedule(d);
        return 0;
}

static void leases_rearm_timer(Daemon *d)
{
        LeaseState *s = &d->leases;
        uint64_t next = 0;
        int r;

        for (const Lease *l = s->leases; l; l = l->next) {
                uint64_t t = 0;

                if (l->rec.kind == LEASE_MANUAL)
                        t = l->rec.expires_usec;
                else if (l->conn_id == 0)
                        t = l->end_retry_usec ? l->end_retry_usec : l->attach_deadline_usec;
                t = MAX(t, l->end_retry_usec);
                if (t && (!next || t < next))
                        next = t;
        }
        if (!s->timer) {
                if (!next)
                        return;
                r = sd_event_add_time(d->event, &s->timer, CLOCK_REALTIME, next, USEC_PER_MSEC * 50,
                                      on_lease_timer, d);
        } else if (!next)
                r = sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
        else {
                r = sd_event_source_set_time(s->timer, next);
                if (r >= 0)
                        r = sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_error_errno(r, "Cannot arm the lease timer");
}
