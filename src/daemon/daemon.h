/* The daemon's state: one struct, passed explicitly to every part of the
 * event loop (there is no global state beyond log settings). */
#pragma once

#include <limits.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "basic/proc.h"
#include "basic/time-util.h"
#include "basic/user-util.h"
#include "config/config.h"
#include "daemon/enforcement.h"
#include "daemon/env-backup.h"
#include "daemon/gpu-alerts.h"
#include "alerts/alerts.h"
#include "daemon/leases.h"
#include "daemon/strict.h"
#include "gpu/inventory.h"
#include "gpu/nvml.h"
#include "store/store.h"

typedef struct Server Server;
typedef struct Metrics Metrics; /* metrics/http.h */

typedef struct Daemon {
        char *config_path; /* NULL: defaults only (the default file was absent) */
        Config *config;
        sd_event *event;
        sd_event_source *sample_timer;
        Server *server;
        Metrics *metrics; /* GET /metrics; NULL when http.listen could not be bound */
        Store *store;
        int64_t run_id;

        GpuNvml *nvml;           /* NULL while the library cannot be loaded */
        char nvml_message[256];  /* why nvml is NULL */
        uint64_t nvml_retry_usec; /* CLOCK_MONOTONIC of the next attempt to load it */
        ProcCache *proc_cache;
        GpuSnapshot *snapshot; /* latest; replaced by every sampler tick */
        LeaseState leases;
        EnforcementState enforcement;
        StrictState strict; /* strict mode's kernel fence (daemon/strict.h) */
        uint64_t idle_tick_usec; /* CLOCK_REALTIME of the previous idle accounting */
        GpuAlerts gpu_alerts;
        EnvBackupState env_backup;
        Alerts *alerts;
        UserMemo *user_names;       /* uid → name, forgotten every USER_NAMES_TTL_USEC */
        uint64_t user_names_usec;   /* CLOCK_MONOTONIC when user_names was started */
        char hostname[HOST_NAME_MAX + 1];
} Daemon;

/* Build the daemon from a loaded config: open the store, bind the socket,
 * load NVML (failure is recorded, not fatal), take a first snapshot and arm
 * the timers. Returns 0 or -errno, having logged why. */
int daemon_new(char *config_path, Config *config, Daemon **ret);

/* Replies name users on every request; NSS reads /etc/passwd each time, so
 * names are remembered for a while (a renamed user shows the old name for at
 * most this long). */
#define USER_NAMES_TTL_USEC (60 * USEC_PER_SEC)

/* The login name of `uid`, or NULL when it has none. Valid until the next
 * call that may refresh the memo (the end of the current request). */
const char *daemon_user_name(const Daemon *d, uid_t uid);

/* Raise an alert (see alerts/alerts.h): `details` is stolen (may be NULL).
 * Failures are logged, never fatal. */
void daemon_alert(Daemon *d, ConfigAlertEvent event, const char *key, const char *subject,
                  const char *text, json_t *details);

/* Run the event loop until SIGTERM/SIGINT. Returns the exit status. */
int daemon_run(Daemon *d);

void daemon_free(Daemon *d);
