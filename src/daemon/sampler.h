/* The sampler: the only place NVML is called. A CLOCK_MONOTONIC timer takes
 * a new inventory snapshot every sample_interval; requests read the latest. */
#pragma once

#include "daemon/daemon.h"

/* Load the NVML library named in the config (no-op when loaded). A failure is
 * remembered in d->nvml_message and retried by later ticks; never fatal. */
void sampler_load_nvml(Daemon *d);

/* Drop the loaded library, e.g. after nvml_library changed on reload. */
void sampler_unload_nvml(Daemon *d);

/* Take one snapshot now, in the loop, and make it the latest. Returns 0,
 * -EBUSY while the periodic sample is out in its worker, or -ENOMEM. */
int sampler_tick(Daemon *d);

/* One whole tick, as the timer runs it: a snapshot, then scheduling,
 * enforcement, idle reclaim, GPU alerts and history. Returns 0 or -errno
 * (logged). */
int sampler_run_tick(Daemon *d);

/* How long the periodic sample may take in NVML before it is reported as
 * stalled (logged, the status message says so, enforcement waits for a
 * fresh sample); the loop never waits for it. */
#define SAMPLER_NVML_TIMEOUT_USEC (2 * USEC_PER_SEC)

/* Stop using the worker thread (at the end; one hung in NVML is left). */
void sampler_worker_free(Daemon *d);

/* Arm (or re-arm after a reload) the periodic timer. Returns 0 or -errno. */
int sampler_arm(Daemon *d);
