/* Periodic inventory snapshots; see sampler.h. */
#include "daemon/sampler.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "basic/log.h"
#include "basic/parse.h"
#include "basic/time-util.h"
#include "daemon/idle.h"
#include "daemon/limits-ops.h"
#include "daemon/mig-ops.h"
#include "policy/idle.h"
#include "policy/share.h"
#include "store/audit-store.h"
#include "store/history-store.h"
#include "daemon/share-ops.h"

/* Audit records deleted per tick at most, once older than history.audit_days:
 * a backlog (a lowered retention) drains over a few ticks, never in one long
 * statement on the event loop. */
#define AUDIT_PRUNE_ROWS_PER_TICK 1000

/* Minutes of history the rollup moves or deletes per tick at most: catches
 * up fast after a restart without making one tick slow. */
#define HISTORY_ROLLUP_MINUTES_PER_TICK 10U
/* Devices written per tick at most: every GPU and MIG instance of a host. */
#define HISTORY_MAX_DEVICES 256

/* One history row for `uuid` (a GPU, or a MIG instance of `gpu`). */
static void history_sample(const Daemon *d, const GpuDevice *gpu, const char *uuid, int util,
                           uint64_t memory, int64_t power_mw, bool busy, HistorySample *ret)
{
        const Lease *l = leases_holder(d, uuid);

        *ret = (HistorySample){
                .util_percent = util,
                .busy = busy,
                .memory_used_bytes = memory == GPU_VALUE_UNKNOWN ? 0 : memory,
                .power_mw = power_mw > 0 ? (uint64_t)power_mw : 0,
                .holder_uid = l ? (int64_t)l->rec.uid : -1,
                .lease_id = l ? l->rec.id : 0,
        };
        snprintf(ret->device_uuid, sizeof ret->device_uuid, "%s", uuid);
        snprintf(ret->gpu_uuid, sizeof ret->gpu_uuid, "%s", gpu->uuid);
}

/* The rows of a GPU held by shared leases: one per lease, with that lease's
 * own memory (its owner's processes, split over the owner's leases on the
 * GPU by budget: policy_share_attribute) and its budget; busy when its
 * owner had a process there. Returns the rows written (0 when no shared
 * lease holds the GPU, or no room is left). */
static size_t history_shared(const Daemon *d, const GpuDevice *g, HistorySample *out, size_t room)
{
        PolicyShareSlice slices[HISTORY_MAX_DEVICES];
        const Lease *held[HISTORY_MAX_DEVICES];
        size_t n = 0;

        for (const Lease *l = d->leases.leases; l && n < room; l = l->next)
                if (l->rec.share_bytes > 0 && l->rec.n_devices == 1 &&
                    strcmp(l->rec.devices[0].uuid, g->uuid) == 0) {
                        slices[n] = (PolicyShareSlice){.uid = l->rec.uid,
                                                       .budget_bytes = l->rec.share_bytes};
                        held[n++] = l;
                }
        if (n == 0)
                return 0;
        policy_share_attribute(slices, n, g->processes, g->n_processes);
        for (size_t i = 0; i < n; i++) {
                out[i] = (HistorySample){
                        .util_percent = g->utilization_gpu,
                        .busy = slices[i].busy,
                        .memory_used_bytes = slices[i].used_bytes,
                        .power_mw = g->power_mw > 0 ? (uint64_t)g->power_mw : 0,
                        .holder_uid = (int64_t)held[i]->rec.uid,
                        .lease_id = held[i]->rec.id,
                        .share_bytes = held[i]->rec.share_bytes,
                };
                snprintf(out[i].device_uuid, sizeof out[i].device_uuid, "%s", g->uuid);
                snprintf(out[i].gpu_uuid, sizeof out[i].gpu_uuid, "%s", g->uuid);
        }
        return n;
}

/* Write this tick's samples of every GPU and MIG instance (one
 * transaction) and do one bounded step of rollup and retention. `prev_boot`
 * is daemon_boot() when the previous snapshot was taken (0: none), so each
 * sample stands for the time since. Busy follows the idle-reclaim rule (policy/idle.h); a
 * MIG-enabled GPU is never busy itself, its use is on its instances. */
static void history_tick(Daemon *d, uint64_t prev_boot)
{
        const GpuSnapshot *snap = d->snapshot;
        HistorySample samples[HISTORY_MAX_DEVICES];
        uint64_t now = snap->taken_usec, boot = d->sample_boot_usec, span;
        size_t n = 0;
        int r;

        if (!snap->nvml_available)
                return;
        /* The span on the boot clock: a wall-clock step is no hour of use. */
        span = prev_boot > 0 && prev_boot < boot ? boot - prev_boot
                                                 : d->config->sample_interval_usec;
        for (size_t i = 0; i < snap->n_gpus && n < HISTORY_MAX_DEVICES; i++) {
                const GpuDevice *g = &snap->gpus[i];
                const char *u = g->uuid;
                bool busy = !g->mig_enabled && policy_idle_activity(snap, &u, 1).busy;
                size_t shared = history_shared(d, g, samples + n, HISTORY_MAX_DEVICES - n);

                n += shared;
                if (shared == 0)
                        history_sample(d, g, g->uuid, g->utilization_gpu, g->memory_used_bytes,
                                       g->power_mw, busy, &samples[n++]);
                for (size_t j = 0; j < g->n_instances && n < HISTORY_MAX_DEVICES; j++) {
                        const char *m = g->instances[j].uuid;

                        history_sample(d, g, m, -1, g->instances[j].memory_used_bytes, -1,
                                       policy_idle_activity(snap, &m, 1).busy, &samples[n++]);
                }
        }
        r = store_history_write(d->store, now, span, samples, n);
        if (r < 0)
                log_warning_errno(r, "Cannot write the usage history");
        r = store_history_rollup(d->store, now - MIN(now, d->config->history.raw_hours * USEC_PER_HOUR),
                                 now - MIN(now, d->config->history.days * USEC_PER_DAY),
                                 HISTORY_ROLLUP_MINUTES_PER_TICK);
        if (r < 0)
                log_warning_errno(r, "Cannot roll up the usage history");
        /* The audit's retention: only records older than history.audit_days
         * go, a bounded number per tick. */
        r = store_audit_prune(d->store,
                              now - MIN(now, d->config->history.audit_days * USEC_PER_DAY),
                              AUDIT_PRUNE_ROWS_PER_TICK);
        if (r < 0)
                log_warning_errno(r, "Cannot prune the audit records");
        refusals_flush(d, false);
}

/* How long to wait before trying to load a missing NVML library again (the
 * driver may be in the middle of an upgrade). */
#define NVML_RETRY_USEC (30 * USEC_PER_SEC)

void sampler_load_nvml(Daemon *d)
{
        char err[sizeof d->nvml_message];
        int r;

        if (d->nvml)
                return;
        if (now_usec(CLOCK_MONOTONIC) < d->nvml_retry_usec)
                return;

        r = gpu_nvml_open(d->config->nvml_library, &d->nvml, err, sizeof err);
        if (r < 0) {
                /* Log only when the reason changes, not every retry. */
                if (strcmp(err, d->nvml_message) != 0)
                        log_warning("NVML not available (%s); retrying every %us", err,
                                    (unsigned)(NVML_RETRY_USEC / USEC_PER_SEC));
                snprintf(d->nvml_message, sizeof d->nvml_message, "%s", err);
                d->nvml_retry_usec = now_usec(CLOCK_MONOTONIC) + NVML_RETRY_USEC;
                return;
        }
        d->nvml_message[0] = '\0';
        d->nvml_retry_usec = 0;
        log_info("Loaded NVML from %s%s", d->config->nvml_library,
                 gpu_nvml_is_simulated(d->nvml) ? " (the gpukeeper NVML SIMULATOR, not real GPUs)"
                                                : "");
}

/* The periodic sample runs NVML in a worker thread: a driver call that
 * hangs (a GPU falling off the bus, a wedged driver) must not freeze the
 * event loop, which keeps answering from the previous snapshot. One sample
 * at a time; while one is out, no other NVML call is made. */
struct SamplerWorker {
        pthread_t thread;
        int efd;
        sd_event_source *done_source;
        sd_event_source *watchdog;
        GpuNvml *nvml;
        ProcCache *cache;
        GpuSnapshot *result;
        int r;
        bool running;
        bool stalled;
        uint64_t prev_boot;
        uint64_t started_usec; /* CLOCK_MONOTONIC */
};

static void *worker_main(void *userdata)
{
        SamplerWorker *w = userdata;
        uint64_t one = 1;

        w->r = gpu_snapshot_take(w->nvml, w->cache, &w->result);
        (void)!write(w->efd, &one, sizeof one);
        return NULL;
}

/* Wait for a sample in flight (a reload that swaps the library, the end). */
static void worker_join(Daemon *d)
{
        SamplerWorker *w = d->sampler_worker;
        uint64_t v;

        if (!w || !w->running)
                return;
        pthread_join(w->thread, NULL);
        (void)!read(w->efd, &v, sizeof v);
        w->running = false;
        gpu_snapshot_free(w->result);
        w->result = NULL;
        sd_event_source_set_enabled(w->watchdog, SD_EVENT_OFF);
}

void sampler_unload_nvml(Daemon *d)
{
        worker_join(d);
        gpu_nvml_close(d->nvml);
        d->nvml = NULL;
        d->nvml_message[0] = '\0';
        d->nvml_retry_usec = 0;
}

/* Make `s` the latest snapshot. */
/* Make `s` the daemon's snapshot (it takes `s`, also on failure). */
static int install(Daemon *d, GpuSnapshot *s)
{
        int r;

        if (!d->nvml && d->nvml_message[0])
                snprintf(s->message, sizeof s->message, "%s", d->nvml_message);
        /* Memory of exited processes keeps naming its owner (issue 17). */
        r = gpu_snapshot_carry_owners(s, d->snapshot);
        if (r < 0) {
                gpu_snapshot_free(s);
                return r;
        }
        gpu_snapshot_free(d->snapshot);
        d->snapshot = s;
        d->sample_boot_usec = daemon_boot(d);
        log_debug("Sampled %zu GPUs in %" PRIu64 " us, %u NVML errors", s->n_gpus, s->tick_usec,
                  s->nvml_errors);
        return 0;
}

int sampler_tick(Daemon *d)
{
        GpuSnapshot *s = NULL;
        int r;

        if (d->sampler_worker && d->sampler_worker->running)
                return -EBUSY; /* NVML is busy with the periodic sample */
        sampler_load_nvml(d);
        r = gpu_snapshot_take(d->nvml, d->proc_cache, &s);
        if (r < 0)
                return r;
        return install(d, s);
}

/* What follows a new snapshot. */
static void after_snapshot(Daemon *d, uint64_t prev_boot)
{
        /* Health, MIG layout and unleased use may have changed. */
        mig_ops_tick(d);
        leases_schedule(d);
        enforcement_tick(d);
        share_ops_tick(d);
        limits_ops_tick(d); /* groups the resolver answered since */
        strict_tick(d);
        if (idle_tick(d))
                leases_schedule(d);
        gpu_alerts_tick(d);
        slurm_ops_tick(d);
        history_tick(d, prev_boot);
}

int sampler_run_tick(Daemon *d)
{
        uint64_t prev_boot = d->snapshot ? d->sample_boot_usec : 0;
        int r;

        r = sampler_tick(d);
        if (r == -EBUSY)
                return r;
        if (r < 0)
                return log_error_errno(r, "Sampler tick failed");
        after_snapshot(d, prev_boot);
        return 0;
}

static int rearm(Daemon *d)
{
        int r;

        /* Re-arm relative to now so a slow tick never causes a burst. */
        r = sd_event_source_set_time_relative(d->sample_timer, d->config->sample_interval_usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->sample_timer, SD_EVENT_ONESHOT);
        if (r < 0)
                return log_error_errno(r, "Cannot re-arm the sampler timer");
        return 0;
}

static int on_worker_done(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
        Daemon *d = userdata;
        SamplerWorker *w = d->sampler_worker;
        GpuSnapshot *s;
        uint64_t v;
        int r;

        if (read(w->efd, &v, sizeof v) < 0 || !w->running)
                return 0;
        pthread_join(w->thread, NULL);
        w->running = false;
        sd_event_source_set_enabled(w->watchdog, SD_EVENT_OFF);
        if (w->stalled) {
                w->stalled = false;
                log_warning("NVML answered again after %" PRIu64 " ms; sampling resumes.",
                            (now_usec(CLOCK_MONOTONIC) - w->started_usec) / USEC_PER_MSEC);
        }
        s = TAKE_PTR(w->result);
        if (w->r < 0)
                log_error_errno(w->r, "Sampler tick failed");
        else if ((r = install(d, s)) < 0)
                log_error_errno(r, "Cannot install the new sample");
        else
                after_snapshot(d, w->prev_boot);
        return rearm(d);
}

static int on_watchdog(sd_event_source *source, uint64_t usec, void *userdata)
{
        Daemon *d = userdata;
        SamplerWorker *w = d->sampler_worker;

        if (!w->running || w->stalled)
                return 0;
        w->stalled = true;
        d->sampler_stalls++;
        log_error("NVML has not answered within %" PRIu64 " ms; the sample is skipped and "
                  "requests are answered from the previous one until it does.",
                  SAMPLER_NVML_TIMEOUT_USEC / USEC_PER_MSEC);
        if (d->snapshot) {
                char limit[FORMAT_DURATION_MAX];

                /* Durations in messages are written as 2s, 4h (issue 17 item 11). */
                (void)format_duration(limit, sizeof limit, SAMPLER_NVML_TIMEOUT_USEC);
                snprintf(d->snapshot->message, sizeof d->snapshot->message,
                         "NVML has not answered for over %s (a hung driver?); "
                         "this is the last sample it gave",
                         limit);
        }
        return 0;
}

static int worker_start(Daemon *d)
{
        SamplerWorker *w = d->sampler_worker;
        int r;

        if (!w) {
                w = calloc(1, sizeof *w);
                if (!w)
                        return -ENOMEM;
                w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (w->efd < 0) {
                        free(w);
                        return negative_errno();
                }
                d->sampler_worker = w;
                r = sd_event_add_io(d->event, &w->done_source, w->efd, EPOLLIN, on_worker_done, d);
                if (r < 0)
                        return r;
                r = sd_event_add_time(d->event, &w->watchdog, CLOCK_MONOTONIC, 0, USEC_PER_MSEC,
                                      on_watchdog, d);
                if (r < 0)
                        return r;
                sd_event_source_set_enabled(w->watchdog, SD_EVENT_OFF);
        }
        sampler_load_nvml(d);
        w->nvml = d->nvml;
        w->cache = d->proc_cache;
        w->result = NULL;
        w->prev_boot = d->snapshot ? d->sample_boot_usec : 0;
        w->started_usec = now_usec(CLOCK_MONOTONIC);
        r = -pthread_create(&w->thread, NULL, worker_main, w);
        if (r < 0)
                return r;
        w->running = true;
        r = sd_event_source_set_time(w->watchdog, w->started_usec + SAMPLER_NVML_TIMEOUT_USEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(w->watchdog, SD_EVENT_ONESHOT);
        return r < 0 ? r : 0;
}

static int on_sample_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
        Daemon *d = userdata;
        int r;

        if (d->sampler_worker && d->sampler_worker->running)
                return 0; /* re-armed when it returns */
        r = worker_start(d);
        if (r >= 0)
                return 0;
        log_error_errno(r, "Cannot start a sample in a worker thread; sampling in the loop");
        (void)sampler_run_tick(d);
        return rearm(d);
}

void sampler_worker_free(Daemon *d)
{
        SamplerWorker *w = d->sampler_worker;

        if (!w)
                return;
        if (w->running) {
                /* A sample in flight at the end: wait for it as long as the
                 * watchdog would (it is usually milliseconds away), then free
                 * everything as usual. */
                struct pollfd p = {.fd = w->efd, .events = POLLIN};

                if (poll(&p, 1, (int)(SAMPLER_NVML_TIMEOUT_USEC / USEC_PER_MSEC)) == 1)
                        worker_join(d);
        }
        if (w->running) {
                /* Hung in NVML: leave it; the library and cache it uses are
                 * kept (the process is exiting). */
                pthread_detach(w->thread);
                d->nvml = NULL;
                d->proc_cache = NULL;
                sd_event_source_disable_unref(w->done_source);
                sd_event_source_disable_unref(w->watchdog);
                return;
        }
        sd_event_source_disable_unref(w->done_source);
        sd_event_source_disable_unref(w->watchdog);
        close(w->efd);
        free(w);
        d->sampler_worker = NULL;
}

int sampler_arm(Daemon *d)
{
        int r;

        if (!d->sample_timer)
                return sd_event_add_time_relative(d->event, &d->sample_timer, CLOCK_MONOTONIC,
                                                  d->config->sample_interval_usec, USEC_PER_MSEC,
                                                  on_sample_timer, d);
        r = sd_event_source_set_time_relative(d->sample_timer, d->config->sample_interval_usec);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(d->sample_timer, SD_EVENT_ONESHOT);
}
