/* Periodic inventory snapshots; see sampler.h. */
#include "daemon/sampler.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "basic/log.h"
#include "basic/time-util.h"
#include "daemon/idle.h"
#include "policy/idle.h"
#include "store/history-store.h"

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

/* Write this tick's samples of every GPU and MIG instance (one
 * transaction) and do one bounded step of rollup and retention. `prev_usec`
 * is when the previous snapshot was taken (0: none), so each sample stands
 * for the time since. Busy follows the idle-reclaim rule (policy/idle.h); a
 * MIG-enabled GPU is never busy itself, its use is on its instances. */
static void history_tick(Daemon *d, uint64_t prev_usec)
{
        const GpuSnapshot *snap = d->snapshot;
        HistorySample samples[HISTORY_MAX_DEVICES];
        uint64_t now = snap->taken_usec, span;
        size_t n = 0;
        int r;

        if (!snap->nvml_available)
                return;
        span = prev_usec > 0 && prev_usec < now ? now - prev_usec : d->config->sample_interval_usec;
        for (size_t i = 0; i < snap->n_gpus && n < HISTORY_MAX_DEVICES; i++) {
                const GpuDevice *g = &snap->gpus[i];
                const char *u = g->uuid;
                bool busy = !g->mig_enabled && policy_idle_activity(snap, &u, 1).busy;

                history_sample(d, g, g->uuid, g->utilization_gpu, g->memory_used_bytes, g->power_mw,
                               busy, &samples[n++]);
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

void sampler_unload_nvml(Daemon *d)
{
        gpu_nvml_close(d->nvml);
        d->nvml = NULL;
        d->nvml_message[0] = '\0';
        d->nvml_retry_usec = 0;
}

int sampler_tick(Daemon *d)
{
        GpuSnapshot *s = NULL;
        int r;

        sampler_load_nvml(d);
        r = gpu_snapshot_take(d->nvml, d->proc_cache, &s);
        if (r < 0)
                return r;
        if (!d->nvml && d->nvml_message[0])
                snprintf(s->message, sizeof s->message, "%s", d->nvml_message);
        gpu_snapshot_free(d->snapshot);
        d->snapshot = s;
        log_debug("Sampled %zu GPUs in %" PRIu64 " us, %u NVML errors", s->n_gpus, s->tick_usec,
                  s->nvml_errors);
        return 0;
}

static int on_sample_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
        Daemon *d = userdata;
        uint64_t prev_usec = d->snapshot ? d->snapshot->taken_usec : 0;
        int r;

        r = sampler_tick(d);
        if (r < 0)
                log_error_errno(r, "Sampler tick failed");
        else {
                /* Health, MIG layout and unleased use may have changed. */
                leases_schedule(d);
                enforcement_tick(d);
                strict_tick(d);
                if (idle_tick(d))
                        leases_schedule(d);
                gpu_alerts_tick(d);
                history_tick(d, prev_usec);
        }
        /* Re-arm relative to now so a slow tick never causes a burst. */
        r = sd_event_source_set_time_relative(source, d->config->sample_interval_usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
        if (r < 0)
                return log_error_errno(r, "Cannot re-arm the sampler timer");
        return 0;
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
