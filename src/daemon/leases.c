/* Lease state and scheduling; see leases.h. */
#include "daemon/leases.h"
#include "daemon/share-ops.h"
#include "daemon/mig-ops.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include "basic/log.h"
#include "basic/parse.h"
#include "daemon/idle.h"
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
        free(s->places);
        sd_event_source_disable_unref(s->timer);
        sd_event_source_disable_unref(s->position_timer);
        sd_event_source_disable_unref(s->busy_timer);
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

/* Is the process that held a run lease still the same live process? A
 * zombie is not: it exited, and only its parent has not looked yet. */
static bool client_alive(pid_t pid, uint64_t start_time)
{
        uint64_t now_start;

        return pid > 0 && proc_live_start_time(pid, &now_start) >= 0 && now_start == start_time;
}

/* The places of run requests that waited when the daemon stopped: those
 * whose client still lives are kept for policy.reconnect_grace. */
static int load_places(Daemon *d)
{
        LeaseState *s = &d->leases;
        StoredQueuePlace *list = NULL;
        size_t n = 0, kept = 0;
        int r;

        r = store_queue_places_load(d->store, &list, &n);
        if (r < 0)
                return log_error_errno(r, "Cannot load the queue places");
        for (size_t i = 0; i < n; i++) {
                if (list[i].request_id >= s->next_request_id)
                        s->next_request_id = list[i].request_id + 1;
                if (client_alive(list[i].pid, list[i].pid_start_time))
                        list[kept++] = list[i];
                else
                        (void)store_queue_place_remove(d->store, list[i].request_id);
        }
        free(s->places);
        s->places = list;
        s->n_places = kept;
        s->places_deadline = daemon_boot(d) + d->config->policy.reconnect_grace_usec;
        if (kept > 0)
                log_info("Keeping the queue places of %zu waiting run requests.", kept);
        return 0;
}

int leases_init(Daemon *d)
{
        LeaseState *s = &d->leases;
        StoredLease *loaded = NULL;
        uint64_t now = daemon_boot(d);
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
        r = load_places(d);
        if (r < 0)
                return r;

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
                        .kind = l->rec.kind == LEASE_MANUAL ? POLICY_IDLE_MANUAL : POLICY_IDLE_RUN,
                        .created_usec = daemon_boot_from_wall(d, l->rec.created_usec),
                        .last_busy_usec = now,
                        .last_utilized_usec = now,
                };
                l->idle_saved_usec = now;
                /* Re-based once: the time left by the wall clock now. */
                if (l->rec.kind == LEASE_MANUAL)
                        l->expires_boot = daemon_boot_from_wall(d, l->rec.expires_usec);
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

const RecentExpiry *leases_recently_expired(const Daemon *d, uid_t uid, const char *uuid,
                                            uint64_t now, uint64_t within_usec)
{
        const RecentExpiry *best = NULL;

        for (size_t i = 0; i < LEASES_RECENT_EXPIRED; i++) {
                const RecentExpiry *x = &d->leases.recent_expired[i];

                if (x->lease_id && x->uid == uid && strcmp(x->uuid, uuid) == 0 &&
                    now - x->ended_usec <= within_usec && (!best || x->ended_usec > best->ended_usec))
                        best = x;
        }
        return best;
}

/* Tell the holder of a manual lease that it expires soon: terminals, alert,
 * audit (policy.expiry_warning). */
/* `now` is on the boot clock, as expires_boot. */
static void warn_expiry(Daemon *d, Lease *l, uint64_t now)
{
        char text[640], in[FORMAT_DURATION_MAX], at[16], key[64];
        time_t t = (time_t)(l->rec.expires_usec / USEC_PER_SEC);
        struct tm tm;

        l->expiry_warned = true;
        /* Rounded to the nearest unit: the timer fires a little after its time. */
        (void)format_duration_short(in, sizeof in, l->expires_boot - now + USEC_PER_SEC / 2);
        if (!localtime_r(&t, &tm) || strftime(at, sizeof at, "%H:%M", &tm) == 0)
                snprintf(at, sizeof at, "?");
        snprintf(text, sizeof text,
                 "\ngpukeeper: lease %" PRId64 " of %s (%s) expires at %s, in %s. Extend it "
                 "with 'gpukeeper lease extend %" PRId64 " --time 2h', or save your work: "
                 "processes still on its GPUs then are stopped as running without a lease.\n",
                 l->rec.id, daemon_user_text(d, l->rec.uid), l->rec.devices[0].uuid, at, in,
                 l->rec.id);
        snprintf(key, sizeof key, "expiry_warning:lease:%" PRId64, l->rec.id);
        log_info("Lease %" PRId64 " expires in %s: holder warned.", l->rec.id, in);
        (void)store_audit(d->store, -1, "lease.expiry_warning", key + strlen("expiry_warning:"),
                          NULL);
        idle_tell_user_terminals(l->rec.uid, text);
        daemon_alert(d, CONFIG_ALERT_EXPIRY_WARNING, key, "lease expires soon", text + 1,
                     json_pack("{s:o}", "lease", lease_to_json(d, l)));
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

const Lease *leases_holder_for(const Daemon *d, const char *uuid, uid_t uid)
{
        const Lease *any = NULL;

        for (const Lease *l = d->leases.leases; l; l = l->next)
                for (size_t i = 0; i < l->rec.n_devices; i++)
                        if (strcmp(l->rec.devices[i].uuid, uuid) == 0) {
                                if (l->rec.uid == uid)
                                        return l;
                                any = any ? any : l;
                        }
        return any;
}

void leases_shared_on(const Daemon *d, const char *uuid, uint64_t *ret_budget, unsigned *ret_n)
{
        uint64_t budget = 0;
        unsigned n = 0;

        for (const Lease *l = d->leases.leases; l; l = l->next)
                if (l->rec.share_bytes && l->rec.n_devices == 1 &&
                    strcmp(l->rec.devices[0].uuid, uuid) == 0) {
                        budget += l->rec.share_bytes;
                        n++;
                }
        *ret_budget = budget;
        *ret_n = n;
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
                        /* Shared leases on the GPU itself are counted apart
                         * (PolicyDevice.shared_leases). */
                        if (whole && l->rec.share_bytes)
                                continue;
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
               (gpu_uuid && device_time_get(s->drained, s->n_drained, gpu_uuid) > 0) ||
               mig_ops_draining(d, gpu_uuid); /* a MIG apply waits to re-carve it */
}

int leases_end(Daemon *d, Lease *l, bool expired, const char *reason, int64_t actor)
{
        LeaseState *s = &d->leases;
        uint64_t now = now_usec(CLOCK_REALTIME);
        int r;

        strict_lease_ending(d, l); /* strict mode: the fence closes first */
        /* The idle time so far is written in the same transaction. */
        r = store_lease_end(d->store, l->rec.id, expired, reason, actor, now,
                            (int64_t)l->rec.idle_device_usec);
        if (r < 0 && r != -ENOENT) {
                strict_sync(d); /* still held: open again */
                return log_error_errno(r, "Cannot end lease %" PRId64, l->rec.id);
        }
        for (size_t i = 0; i < l->rec.n_devices; i++) {
                (void)device_time_set(&s->released, &s->n_released, l->rec.devices[i].uuid, now);
                if (expired) {
                        RecentExpiry *x = &s->recent_expired[s->recent_next++ % LEASES_RECENT_EXPIRED];

                        *x = (RecentExpiry){.lease_id = l->rec.id, .uid = l->rec.uid,
                                            .ended_usec = now};
                        snprintf(x->uuid, sizeof x->uuid, "%s", l->rec.devices[i].uuid);
                }
        }

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

                uid_t uid = l->rec.uid;

                lease_free(l);
                strict_lease_ended(d, id); /* strict mode: the fence closes */
                limits_ops_user_changed(d, uid, 0); /* per-user limits: per_gpu shrinks */
        }
        return 0;
}

int leases_register(Daemon *d, StoredLease *rec, const char *request_json, Lease **ret)
{
        uint64_t now = daemon_boot(d);
        Lease *l = calloc(1, sizeof *l);
        int r;

        if (!l)
                return -ENOMEM;
        r = store_lease_grant(d->store, rec, request_json);
        if (r < 0) {
                free(l);
                return r;
        }
        l->rec = *rec;
        *rec = (StoredLease){};
        l->idle = (PolicyIdleLease){
                .kind = l->rec.kind == LEASE_MANUAL ? POLICY_IDLE_MANUAL : POLICY_IDLE_RUN,
                .created_usec = daemon_boot_from_wall(d, l->rec.created_usec),
                .last_busy_usec = now,
                .last_utilized_usec = now,
        };
        l->idle_saved_usec = now;
        lease_append(&d->leases, l);
        log_info("Lease %" PRId64 " registered for uid %u (%s, %zu devices).", l->rec.id,
                 (unsigned)l->rec.uid, lease_kind_to_string(l->rec.kind), l->rec.n_devices);
        *ret = l;
        return 0;
}

/* The place a run request had before a restart, taken out of the list
 * (with *ret_since_usec, when it first queued; 0 when not known); 0 when it
 * had none. Places whose clients did not ask again within the grace are
 * forgotten. */
static uint64_t take_place(Daemon *d, const QueueEntry *e, uint64_t *ret_since_usec)
{
        LeaseState *s = &d->leases;
        uint64_t id = 0;

        *ret_since_usec = 0;

        if (s->n_places > 0 && daemon_boot(d) > s->places_deadline) {
                for (size_t i = 0; i < s->n_places; i++)
                        (void)store_queue_place_remove(d->store, s->places[i].request_id);
                s->n_places = 0;
        }
        for (size_t i = 0; i < s->n_places && e->kind == LEASE_RUN; i++)
                if (s->places[i].uid == e->uid && s->places[i].pid == e->pid &&
                    s->places[i].pid_start_time == e->pid_start_time) {
                        id = s->places[i].request_id;
                        *ret_since_usec = s->places[i].since_usec;
                        s->places[i] = s->places[--s->n_places];
                        break;
                }
        return id;
}

uint64_t leases_enqueue(Daemon *d, QueueEntry *e)
{
        LeaseState *s = &d->leases;
        QueueEntry **p = &s->queue;
        uint64_t since, old = take_place(d, e, &since);
        uint64_t wall = daemon_wall(d), boot = daemon_boot(d);

        e->request_id = old ? old : s->next_request_id++;
        e->since_usec = wall;
        e->since_boot = boot;
        if (old && since > 0 && since <= wall && wall - since <= boot) {
                /* Back in its place: it has been waiting since it first
                 * queued, the restart's time included. */
                e->since_usec = since;
                e->since_boot = boot - (wall - since);
        }
        /* In request id order, which is arrival order: one that had its
         * place before a restart goes back there. */
        while (*p && (*p)->request_id < e->request_id)
                p = &(*p)->next;
        e->next = *p;
        *p = e;
        s->queue_len++;
        if (e->kind == LEASE_RUN && !old) {
                StoredQueuePlace place = {.request_id = e->request_id, .uid = e->uid,
                                          .pid = e->pid, .pid_start_time = e->pid_start_time,
                                          .since_usec = e->since_usec};
                int r = store_queue_place_add(d->store, &place);

                if (r < 0) /* the request still waits; it only loses its place at a restart */
                        log_warning_errno(r, "Cannot record the queue place of request %" PRIu64,
                                          e->request_id);
        }
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
                        if (e->kind == LEASE_RUN)
                                (void)store_queue_place_remove(d->store, request_id);
                        queue_entry_free(e);
                        return true;
                }
        return false;
}

static const GpuDevice *snapshot_gpu(const Daemon *d, const char *gpu_uuid)
{
        return d->snapshot ? gpu_snapshot_find_device(d->snapshot, gpu_uuid) : NULL;
}

/* "0-3,8": the CPUs of NVML's affinity mask of `g`, as a cpulist, in
 * buf[0..size); its length, or -1 where the lease's JSON has null (no
 * GPU, no mask, or a list that does not fit). */
static int cpus_text(const GpuDevice *g, char *buf, size_t size)
{
        const size_t bits = sizeof g->cpus[0] * 8, n = GPU_NVML_CPUSET_WORDS * bits;
        size_t o = 0;

        if (!g || !g->has_cpus)
                return -1;
        buf[0] = '\0';
        for (size_t c = 0; c < n && o < size; c++) {
                size_t end = c;

                if (!(g->cpus[c / bits] >> (c % bits) & 1))
                        continue;
                while (end + 1 < n && g->cpus[(end + 1) / bits] >> ((end + 1) % bits) & 1)
                        end++;
                o += (size_t)snprintf(buf + o, size - o, end > c ? "%s%zu-%zu" : "%s%zu",
                                      o ? "," : "", c, end);
                c = end;
        }
        return o < size ? (int)o : -1;
}

#define CPUS_TEXT_MAX (GPU_NVML_CPUSET_WORDS * 64 * 6)

static json_t *cpus_json(const GpuDevice *g)
{
        char buf[CPUS_TEXT_MAX];

        return cpus_text(g, buf, sizeof buf) >= 0 ? json_string(buf) : json_null();
}

static json_t *lease_device_json(const Daemon *d, const LeaseDevice *dev)
{
        const GpuDevice *g = snapshot_gpu(d, dev->gpu_uuid);

        return json_pack("{s:s, s:s, s:o, s:o, s:o}", "uuid", dev->uuid, "gpu_uuid",
                         dev->gpu_uuid, "gpu_index", g ? json_integer(g->index) : json_null(),
                         "profile", dev->profile[0] ? json_string(dev->profile) : json_null(),
                         "cpus", cpus_json(g)); /* run's CPU binding (limits) */
}

static json_t *usec_to_json(uint64_t usec)
{
        return usec ? json_real((double)usec / USEC_PER_SEC) : json_null();
}

#define VISIBLE_MAX (LEASE_MAX_DEVICES * LEASE_UUID_MAX)

/* CUDA_VISIBLE_DEVICES of `l`: its device UUIDs, comma-separated. */
static void lease_visible(const Lease *l, char visible[static VISIBLE_MAX])
{
        size_t n = 0;

        visible[0] = '\0';
        for (size_t i = 0; i < l->rec.n_devices && n + 1 < VISIBLE_MAX; i++) {
                if (i > 0)
                        visible[n++] = ',';
                string_copy(visible + n, VISIBLE_MAX - n, l->rec.devices[i].uuid);
                n += strlen(visible + n);
        }
}

json_t *lease_to_json(const Daemon *d, const Lease *l)
{
        char visible[VISIBLE_MAX];
        json_t *devices = json_array(), *o;
        const char *user;

        if (!devices)
                return NULL;
        for (size_t i = 0; i < l->rec.n_devices; i++)
                if (json_array_append_new(devices, lease_device_json(d, &l->rec.devices[i])) < 0) {
                        json_decref(devices);
                        return NULL;
                }
        lease_visible(l, visible);
        user = daemon_user_name(d, l->rec.uid);
        o = json_pack("{s:I, s:I, s:o, s:s, s:s, s:o, s:s, s:o, s:o, s:n, s:n, s:o, s:o, s:b, "
                         "s:b, s:b, s:f, s:o}",
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
                         "idle_device_seconds", (double)l->rec.idle_device_usec / USEC_PER_SEC,
                         "slurm_job_id", l->rec.kind == LEASE_SLURM
                                             ? json_integer((json_int_t)l->rec.slurm_job_id)
                                             : json_null());
        if (o && share_ops_lease_json(d, l, o) < 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}

/* The writer of lease_reply_text() below: lease_to_json()'s members in its
 * order, each value as json-dump writes the one lease_to_json() builds.
 * Keep the two in step; test-lease-json compares them. JsonOut keeps the
 * first error; lease_reply_text() checks once at the end. */
static void out_usec(JsonOut *o, uint64_t usec)
{
        if (usec)
                json_out_real(o, (double)usec / USEC_PER_SEC);
        else
                json_out_null(o);
}

static void out_bool(JsonOut *o, bool b)
{
        if (b)
                JSON_OUT_LITERAL(o, "true");
        else
                JSON_OUT_LITERAL(o, "false");
}

static void lease_device_write(const Daemon *d, const LeaseDevice *dev, JsonOut *o)
{
        const GpuDevice *g = snapshot_gpu(d, dev->gpu_uuid);
        char cpus[CPUS_TEXT_MAX];
        int n = cpus_text(g, cpus, sizeof cpus);

        JSON_OUT_LITERAL(o, "{\"uuid\":");
        json_out_text(o, dev->uuid);
        JSON_OUT_LITERAL(o, ",\"gpu_uuid\":");
        json_out_text(o, dev->gpu_uuid);
        JSON_OUT_LITERAL(o, ",\"gpu_index\":");
        if (g)
                json_out_integer(o, g->index);
        else
                json_out_null(o);
        JSON_OUT_LITERAL(o, ",\"profile\":");
        json_out_text(o, dev->profile[0] ? dev->profile : NULL);
        JSON_OUT_LITERAL(o, ",\"cpus\":");
        if (n >= 0)
                json_out_string(o, cpus, (size_t)n);
        else
                json_out_null(o);
        JSON_OUT_LITERAL(o, "}");
}

static void lease_write(const Daemon *d, const Lease *l, JsonOut *o)
{
        char visible[VISIBLE_MAX];

        JSON_OUT_LITERAL(o, "{\"id\":");
        json_out_integer(o, l->rec.id);
        JSON_OUT_LITERAL(o, ",\"uid\":");
        json_out_integer(o, l->rec.uid);
        JSON_OUT_LITERAL(o, ",\"user\":");
        json_out_text(o, daemon_user_name(d, l->rec.uid));
        JSON_OUT_LITERAL(o, ",\"kind\":");
        json_out_text(o, lease_kind_to_string(l->rec.kind));
        JSON_OUT_LITERAL(o, ",\"state\":\"active\",\"devices\":[");
        for (size_t i = 0; i < l->rec.n_devices; i++) {
                if (i)
                        JSON_OUT_LITERAL(o, ",");
                lease_device_write(d, &l->rec.devices[i], o);
        }
        lease_visible(l, visible);
        JSON_OUT_LITERAL(o, "],\"cuda_visible_devices\":");
        json_out_text(o, visible);
        JSON_OUT_LITERAL(o, ",\"created_at\":");
        out_usec(o, l->rec.created_usec);
        JSON_OUT_LITERAL(o, ",\"expires_at\":");
        out_usec(o, l->rec.expires_usec);
        JSON_OUT_LITERAL(o, ",\"released_at\":null,\"release_reason\":null,\"pid\":");
        if (l->rec.client_pid > 0)
                json_out_integer(o, l->rec.client_pid);
        else
                json_out_null(o);
        JSON_OUT_LITERAL(o, ",\"command\":");
        json_out_text(o, l->rec.command);
        JSON_OUT_LITERAL(o, ",\"attached\":");
        out_bool(o, l->conn_id != 0);
        JSON_OUT_LITERAL(o, ",\"idle_warned\":");
        out_bool(o, l->idle.warned_usec != 0);
        JSON_OUT_LITERAL(o, ",\"idle_flagged\":");
        out_bool(o, l->idle.flagged);
        JSON_OUT_LITERAL(o, ",\"idle_device_seconds\":");
        json_out_real(o, (double)l->rec.idle_device_usec / USEC_PER_SEC);
        JSON_OUT_LITERAL(o, ",\"slurm_job_id\":");
        if (l->rec.kind == LEASE_SLURM)
                json_out_integer(o, (json_int_t)l->rec.slurm_job_id);
        else
                json_out_null(o);
        share_ops_lease_write(d, l, o);
        JSON_OUT_LITERAL(o, "}");
}

int lease_reply_text(const Daemon *d, const Lease *l, uint32_t id, char **ret, size_t *ret_len)
{
        char prefix[PROTO_OK_PREFIX_MAX];
        size_t n = proto_ok_reply_prefix(id, prefix);
        JsonOut o = {0};
        int r;

        json_out_raw(&o, prefix, n);
        JSON_OUT_LITERAL(&o, "{\"lease\":");
        lease_write(d, l, &o);
        JSON_OUT_LITERAL(&o, "}}");
        r = json_out_finish(&o, ret, ret_len);
        if (r < 0)
                json_out_done(&o);
        return r;
}

/* "2 GPUs", "1× 3g.40gb, 2× 1g.10gb", "GPU-…,MIG-…". */
static void describe_wants(const QueueEntry *e, char *buf, size_t len)
{
        size_t o = 0;

        buf[0] = '\0';
        if (e->share_bytes) {
                char size[FORMAT_SIZE_MAX];

                (void)format_size(size, sizeof size, e->share_bytes);
                snprintf(buf, len, "%s of a shared GPU", size);
                return;
        }
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

/* Processes on a device whose owner is not the holder (every process when
 * the device is free): the allocator prefers devices without any. When they
 * all belong to one known user, *ret_uid is that user and *ret_one true. */
/* Whether `uid` holds a lease on device `uuid` (one of the several shared
 * leases of a GPU, or its one holder). */
static bool holds(const Daemon *d, const char *uuid, const Lease *holder, uid_t uid)
{
        if (!holder)
                return false;
        if (holder->rec.uid == uid)
                return true;
        if (!holder->rec.share_bytes)
                return false;
        return leases_holder_for(d, uuid, uid)->rec.uid == uid;
}

static unsigned unleased_processes(const Daemon *d, const GpuDevice *g, int instance,
                                   const char *uuid, const Lease *holder, bool *ret_one,
                                   uid_t *ret_uid)
{
        unsigned n = 0;

        *ret_one = false;
        for (size_t i = 0; i < g->n_processes; i++) {
                const GpuProcess *p = &g->processes[i];
                bool known = !p->vanished || p->owner_from_earlier;

                if (p->instance != instance || holds(d, uuid, holder, p->uid))
                        continue;
                *ret_one = (n == 0 || (*ret_one && p->uid == *ret_uid)) && known;
                *ret_uid = p->uid;
                n++;
        }
        return n;
}

/* Memory on a device held by processes whose owner is not `holder_uid`
 * (every process when the device is free): the allocator skips devices
 * where such use is above policy.unleased_memory_limit. Memory of exited
 * processes (gone or zombie) counts: it is held until reaped or reset. */
static uint64_t unleased_memory(const Daemon *d, const GpuDevice *g, int instance,
                                const char *uuid, const Lease *holder)
{
        uint64_t sum = 0;

        for (size_t i = 0; i < g->n_processes; i++) {
                const GpuProcess *p = &g->processes[i];

                if (p->instance != instance || p->memory_used_bytes == GPU_VALUE_UNKNOWN)
                        continue;
                if (holds(d, uuid, holder, p->uid))
                        continue;
                sum += p->memory_used_bytes;
        }
        return sum;
}

static void policy_device_fill(const Daemon *d, const GpuDevice *g, int instance, PolicyDevice *ret)
{
        const char *uuid = instance >= 0 ? g->instances[instance].uuid : g->uuid;
        const Lease *holder = leases_holder(d, uuid);
        bool by_one = false;
        uid_t by_uid = 0;
        unsigned n_unleased = unleased_processes(d, g, instance, uuid, holder, &by_one, &by_uid);
        uint64_t shared_budget = 0, reserve = d->config->sharing.reserve_bytes;
        unsigned n_shared = 0;
        bool shareable = instance < 0 && !g->mig_enabled &&
                         g->memory_total_bytes != GPU_VALUE_UNKNOWN &&
                         g->memory_total_bytes > reserve &&
                         config_sharing_gpu(&d->config->sharing, g->index, g->uuid, g->name);

        if (instance < 0)
                leases_shared_on(d, uuid, &shared_budget, &n_shared);

        *ret = (PolicyDevice){
            .uuid = uuid,
            .parent_uuid = g->uuid,
            .pci_bus_id = g->pci_bus_id,
            .profile = instance >= 0 ? g->instances[instance].profile : NULL,
            .numa_node = instance >= 0 ? g->instances[instance].numa_node : g->numa_node,
            /* Not granted while its process list is cut short: who uses it
             * is not known (issue 10 item 14). */
            .healthy = g->healthy && !g->processes_incomplete,
            /* Slurm schedules its GPUs: gpukeeper's queue never grants them. */
            .drained = leases_is_drained(d, uuid, g->uuid) ||
                       config_slurm_owns(&d->config->slurm, g->index),
            .leased = (holder != NULL && !holder->rec.share_bytes) ||
                      gpu_part_held(d, g->uuid, uuid),
            .unleased_memory_bytes = unleased_memory(d, g, instance, uuid, holder),
            .unleased_processes = n_unleased,
            .unleased_by_one = by_one,
            .unleased_uid = by_uid,
            /* MIG instances report no utilisation (-1): their processes rank them. */
            .utilization_pct = instance >= 0 ? -1 : g->utilization_gpu,
            .last_released_usec = device_time_get(d->leases.released, d->leases.n_released, uuid),
            .share_capacity_bytes = shareable ? g->memory_total_bytes - reserve : 0,
            .shared_budget_bytes = shared_budget,
            .shared_leases = n_shared,
        };
}

int leases_policy_devices(const Daemon *d, PolicyDevice **ret, size_t *ret_n)
{
        const GpuSnapshot *snap = d->snapshot;
        PolicyDevice *devs;
        size_t n = 0, cap = 0;

        for (size_t i = 0; snap && i < snap->n_gpus; i++)
                cap += snap->gpus[i].mig_enabled ? snap->gpus[i].n_instances : 1;
        /* Sized to what is there: the array is zeroed on every acquire. */
        cap += mig_ops_virtual_devices(d, NULL, 0); /* on-demand MIG placeholders */
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
        /* MIG instances on-demand creation could still make (drained: never granted). */
        n += mig_ops_virtual_devices(d, devs + n, cap - n);
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
            .share_bytes = e->share_bytes,
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

/* The reply to a granted acquire, as text (lease_reply_text) or, where
 * that declines, built as a tree; send_to's answer. */
static int send_grant(Daemon *d, uint64_t conn_id, uint32_t msg_id, const Lease *l)
{
        _cleanup_free_ char *text = NULL;
        size_t len;

        if (!d->server)
                return 0; /* send_to() drops it (unit tests) */
        if (lease_reply_text(d, l, msg_id, &text, &len) == 0)
                return server_send_text(d->server, conn_id, text, len);
        return send_to(d, conn_id,
                       proto_reply_ok(msg_id, json_pack("{s:o}", "lease", lease_to_json(d, l))));
}

/* Turn a GRANT into a lease: store transaction, memory, reply. Returns
 * -EBUSY, with the request still queued and nothing written, when another
 * program holds a lock on the database; 0 otherwise (the request has its
 * answer). */
static int grant(Daemon *d, QueueEntry *e, const PolicyDevice *devs, const PolicyDecision *dec)
{
        uint64_t now = daemon_wall(d), boot = daemon_boot(d);
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
                return 0;
        }
        l->rec.uid = e->uid;
        l->rec.kind = e->kind;
        l->rec.created_usec = now;
        l->rec.expires_usec = e->kind == LEASE_MANUAL ? now + e->duration_usec : 0;
        l->rec.client_pid = e->kind == LEASE_RUN ? e->pid : 0;
        l->rec.client_start_time = e->kind == LEASE_RUN ? e->pid_start_time : 0;
        l->rec.command = TAKE_PTR(e->command);
        l->rec.queue_wait_usec = boot > e->since_boot ? boot - e->since_boot : 0;
        l->rec.share_bytes = e->share_bytes;
        l->expires_boot = e->kind == LEASE_MANUAL ? boot + e->duration_usec : 0;
        l->rec.n_devices = dec->n_devices;
        for (size_t i = 0; i < dec->n_devices; i++) {
                const PolicyDevice *pd = &devs[dec->devices[i]];
                LeaseDevice *ld = &l->rec.devices[i];

                string_copy(ld->uuid, sizeof ld->uuid, pd->uuid);
                string_copy(ld->gpu_uuid, sizeof ld->gpu_uuid, pd->parent_uuid);
                string_copy(ld->profile, sizeof ld->profile, pd->profile ? pd->profile : "");
        }

        r = store_lease_grant(d->store, &l->rec, e->request_json ? e->request_json : "{}");
        if (r == -EBUSY) {
                /* Locked by another program (store.h): the request keeps its
                 * place and the grant is tried again from a timer. */
                e->command = TAKE_PTR(l->rec.command);
                lease_free(l);
                return -EBUSY;
        }
        if (r < 0) {
                log_error_errno(r, "Cannot record a lease for uid %u", (unsigned)e->uid);
                lease_free(l);
                send_to(d, conn_id,
                        proto_reply_error(msg_id, GK_E_INTERNAL,
                                          "gpukeeperd could not record the lease: %s",
                                          strerror(-r)));
                leases_dequeue(d, request_id);
                return 0;
        }
        l->conn_id = e->kind == LEASE_RUN ? conn_id : 0;
        l->idle = (PolicyIdleLease){
                .kind = l->rec.kind == LEASE_MANUAL ? POLICY_IDLE_MANUAL : POLICY_IDLE_RUN,
                .created_usec = boot,
        };
        l->idle_saved_usec = boot;
        lease_append(&d->leases, l);
        leases_dequeue(d, request_id);
        /* Strict mode: the fence opens before the client hears of the grant. */
        strict_lease_granted(d, l);
        /* Per-user limits: per_gpu grows; a run's client goes under them. */
        limits_ops_user_changed(d, l->rec.uid, l->rec.kind == LEASE_RUN ? l->rec.client_pid : 0);
        r = send_grant(d, conn_id, msg_id, l);
        /* The audit row committed above is the durable record; the log line
         * is written after the reply (held while a request is answered,
         * log.h). */
        log_info("Lease %" PRId64 " granted to uid %u (%s, %zu devices).", l->rec.id,
                 (unsigned)l->rec.uid, lease_kind_to_string(l->rec.kind), l->rec.n_devices);
        /* Nobody learns of a lease whose reply could not be delivered. A run
         * lease on a connection being closed ends with the close; a manual
         * one, or one whose connection is gone already, ends now. */
        if (r < 0 && (l->rec.kind == LEASE_MANUAL || r == -ENOENT))
                (void)leases_end(d, l, false, "the client was gone before the grant reached it",
                                 -1);
        return 0;
}

static int on_busy_retry(sd_event_source *source, uint64_t usec, void *userdata)
{
        leases_schedule(userdata);
        return 0;
}

/* The store was locked during a grant: schedule again shortly, off the
 * request that found it locked. */
static void arm_busy_retry(Daemon *d)
{
        LeaseState *s = &d->leases;
        uint64_t when = now_usec(CLOCK_MONOTONIC) + LEASES_BUSY_RETRY_USEC;
        int r;

        if (!s->busy_timer)
                r = sd_event_add_time(d->event, &s->busy_timer, CLOCK_MONOTONIC, when,
                                      USEC_PER_MSEC * 5, on_busy_retry, d);
        else {
                r = sd_event_source_set_time(s->busy_timer, when);
                if (r >= 0)
                        r = sd_event_source_set_enabled(s->busy_timer, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_error_errno(r, "Cannot arm the lease retry timer");
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
        leases_schedule_devices(d, NULL, 0);
}

void leases_schedule_devices(Daemon *d, PolicyDevice *given, size_t n_given)
{
        LeaseState *s = &d->leases;
        _cleanup_free_ PolicyDevice *devs = given;
        _cleanup_free_ PolicyRequest *reqs = NULL;
        _cleanup_free_ PolicyUserUsage *usage = NULL;
        _cleanup_free_ PolicyDecision *decisions = NULL;
        _cleanup_free_ QueueEntry **entries = NULL;
        PolicyLimits limits = {.unleased_memory_max =
                                   d->config->policy.unleased_memory_limit_bytes};
        size_t n_devs = n_given, n = 0, n_usage = 0;
        unsigned position = 0;
        bool busy = false;
        int r = 0;

        s->store_busy = false;
        if (!s->queue)
                goto done;

        if (!devs)
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
                if (decisions[i].verdict == POLICY_GRANT && busy)
                        decisions[i].verdict = POLICY_WAIT;
                if (decisions[i].verdict == POLICY_GRANT) {
                        if (grant(d, e, devs, &decisions[i]) == -EBUSY) {
                                /* This and every later grant wait for the
                                 * lock to go: the queue keeps its order. */
                                busy = s->store_busy = true;
                                decisions[i].verdict = POLICY_WAIT;
                                snprintf(decisions[i].reason, sizeof decisions[i].reason, "%s",
                                         "the state database is locked by another program");
                                arm_busy_retry(d);
                        }
                } else if (decisions[i].verdict == POLICY_IMPOSSIBLE) {
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
                        /* `run` releases before it closes; a connection that
                         * drops with the lease held is a client that died
                         * (SIGKILL, OOM): the kernel stops its command with
                         * it (PR_SET_PDEATHSIG, gpukeeper(1)), and the audit
                         * says so. */
                        if (leases_end(d, l, false,
                                       "client exited without releasing; its command was "
                                       "sent SIGTERM with it",
                                       (int64_t)l->rec.uid) < 0) {
                                l->conn_id = 0;
                                l->end_retry_usec = daemon_boot(d) + LEASES_END_RETRY_USEC;
                        }
                        changed = true;
                }
        }
        if (changed)
                leases_schedule(d);
}

/* Whether the command of detached run lease `l` still runs: its `gpukeeper
 * run` client (pid and start time as recorded at the grant), or a process of
 * the lease's owner on one of its devices in the latest snapshot (pid and
 * start time as the sampler read them), is alive. Such a lease is kept past
 * the reconnect grace: its client may not have got through yet, and the GPU
 * must not go to someone else under a running job. */
static bool run_still_running(const Daemon *d, const Lease *l)
{
        const GpuSnapshot *snap = d->snapshot;

        if (client_alive(l->rec.client_pid, l->rec.client_start_time))
                return true;
        for (size_t g = 0; snap && g < snap->n_gpus; g++) {
                const GpuDevice *gpu = &snap->gpus[g];

                for (size_t p = 0; p < gpu->n_processes; p++) {
                        const GpuProcess *proc = &gpu->processes[p];
                        const char *uuid = proc->instance >= 0 &&
                                                   (size_t)proc->instance < gpu->n_instances
                                               ? gpu->instances[proc->instance].uuid
                                               : gpu->uuid;

                        if (proc->vanished || proc->uid != l->rec.uid)
                                continue;
                        for (size_t i = 0; i < l->rec.n_devices; i++)
                                if (strcmp(l->rec.devices[i].uuid, uuid) == 0 &&
                                    client_alive((pid_t)proc->pid, proc->start_time))
                                        return true;
                }
        }
        return false;
}

static int on_lease_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
        Daemon *d = userdata;
        uint64_t now = daemon_boot(d);

        for (Lease *l = d->leases.leases, *next; l; l = next) {
                int r = 0;

                next = l->next;
                if (l->end_retry_usec > now)
                        continue;
                if (l->rec.kind == LEASE_MANUAL && l->expires_boot > now && !l->expiry_warned &&
                    d->config->policy.expiry_warning_usec &&
                    l->expires_boot - now <= d->config->policy.expiry_warning_usec)
                        warn_expiry(d, l, now);
                if (l->rec.kind == LEASE_MANUAL && l->expires_boot <= now)
                        r = leases_end(d, l, true, "lease expired", -1);
                else if (l->rec.kind == LEASE_RUN && l->conn_id == 0 && l->end_retry_usec)
                        r = leases_end(d, l, false, "client exited", (int64_t)l->rec.uid);
                else if (l->rec.kind == LEASE_RUN && l->conn_id == 0 && l->attach_deadline_usec &&
                         l->attach_deadline_usec <= now) {
                        if (run_still_running(d, l)) {
                                log_info("Lease %" PRId64 " kept: its client has not "
                                         "reconnected, but its command still runs.",
                                         l->rec.id);
                                l->attach_deadline_usec =
                                    now + d->config->policy.reconnect_grace_usec;
                        } else
                                r = leases_end(d, l, false,
                                               "client did not reconnect after a restart", -1);
                }
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

                if (l->rec.kind == LEASE_MANUAL) {
                        uint64_t w = d->config->policy.expiry_warning_usec;

                        t = l->expires_boot;
                        /* Wake for the warning first (extend re-arms it). */
                        if (w && !l->expiry_warned && t > w)
                                t = t - w;
                }
                else if (l->conn_id == 0)
                        t = l->end_retry_usec ? l->end_retry_usec : l->attach_deadline_usec;
                t = MAX(t, l->end_retry_usec);
                if (t && (!next || t < next))
                        next = t;
        }
        if (!s->timer) {
                if (!next)
                        return;
                r = sd_event_add_time(d->event, &s->timer, CLOCK_BOOTTIME,
                                      daemon_timer_usec(d, next), USEC_PER_MSEC * 50,
                                      on_lease_timer, d);
        } else if (!next)
                r = sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
        else {
                r = sd_event_source_set_time(s->timer, daemon_timer_usec(d, next));
                if (r >= 0)
                        r = sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_error_errno(r, "Cannot arm the lease timer");
}
