/* Periodic inventory snapshots; see sampler.h. */
#include "daemon/sampler.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "basic/log.h"
#include "basic/time-util.h"
#include "daemon/idle.h"

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
        int r;

        r = sampler_tick(d);
        if (r < 0)
                log_error_errno(r, "Sampler tick failed");
        else {
                /* Health, MIG layout and unleased use may have changed. */
                leases_schedule(d);
                enforcement_tick(d);
                if (idle_tick(d))
                        leases_schedule(d);
                gpu_alerts_tick(d);
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
