/* The daemon's state: one struct, passed explicitly to every part of the
 * event loop (there is no global state beyond log settings). */
#pragma once

#include <limits.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "basic/proc.h"
#include "basic/ratelimit.h"
#include "basic/time-util.h"
#include "basic/user-util.h"
#include "config/config.h"
#include "daemon/enforcement.h"
#include "daemon/env-backup.h"
#include "daemon/gpu-alerts.h"
#include "alerts/alerts.h"
#include "daemon/leases.h"
#include "daemon/limits-ops.h"
#include "daemon/reads.h"
#include "daemon/slurm-ops.h"
#include "daemon/refusals.h"
#include "daemon/resolver.h"
#include "daemon/status-cache.h"
#include "daemon/strict.h"
#include "daemon/user-wait.h"
#include "gpu/inventory.h"
#include "gpu/nvml.h"
#include "store/read-queue.h"
#include "store/store.h"

typedef struct Server Server;
typedef struct MigState MigState; /* daemon/mig-ops.h */
typedef struct SamplerWorker SamplerWorker;
typedef struct Metrics Metrics; /* metrics/http.h */

/* daemon_user_name() keeps its last answers in a ring of this many. */
#define DAEMON_USER_NAME_RING 16

/* The daemon's clocks, as systemd's dual timestamps: every deadline and
 * duration (enforcement grace, idle accounting, lease expiry, reconnect
 * grace) runs on CLOCK_BOOTTIME, which NTP never steps and which counts
 * suspend; CLOCK_REALTIME is read beside it only for what is shown and
 * stored. A wall time read back from the store at start is re-based once
 * onto the boot clock (daemon_boot_from_wall). In builds with test hooks
 * (-Dtest_hooks=true) root can step the wall clock (as NTP does) and advance
 * time through the `debug.clock` request; elsewhere both shifts stay 0. */
typedef struct DaemonClock {
        int64_t wall_step_usec; /* added to CLOCK_REALTIME only */
        uint64_t advance_usec;  /* added to both clocks: time passing */
} DaemonClock;

typedef struct Daemon {
        char *config_path; /* NULL: defaults only (the default file was absent) */
        Config *config;
        sd_event *event;
        sd_event_source *sample_timer;
        Server *server;
        Metrics *metrics; /* GET /metrics; NULL when http.listen could not be bound */
        Store *store;
        ReadQueue *reads; /* report, audit.list, the HTTP API's history (store/read-queue.h) */
        ReadLine read_line; /* report and audit.list waiting for room in `reads` (daemon/reads.h) */
        int64_t run_id;

        GpuNvml *nvml;           /* NULL while the library cannot be loaded */
        char nvml_message[256];  /* why nvml is NULL */
        uint64_t nvml_retry_usec; /* CLOCK_MONOTONIC of the next attempt to load it */
        ProcCache *proc_cache;
        GpuSnapshot *snapshot; /* latest; replaced by every sampler tick */
        uint64_t sample_boot_usec; /* daemon_boot() when it was taken */
        SamplerWorker *sampler_worker; /* the periodic sample's NVML thread (sampler.c) */
        uint64_t sampler_stalls;       /* samples NVML did not answer in time */
        LeaseState leases;
        EnforcementState enforcement;
        StrictState strict; /* strict mode's kernel fence (daemon/strict.h) */
        uint64_t idle_tick_usec; /* daemon_boot() of the previous idle accounting */
        GpuAlerts gpu_alerts;
        EnvBackupState env_backup;
        Alerts *alerts;
        UserMemo *user_names;       /* uid → name without a resolver (unit tests) */
        uint64_t user_names_usec;   /* CLOCK_MONOTONIC when user_names was started */
        char user_name_ring[DAEMON_USER_NAME_RING][64]; /* daemon_user_name()'s answers */
        unsigned user_name_next;
        char hostname[HOST_NAME_MAX + 1];
        SlurmState slurm; /* Slurm jobs as leases (slurm-ops.h) */
        MigState *mig; /* MIG view, apply job, on-demand instances (daemon/mig-ops.h) */
        DaemonClock clock;
        Resolver *resolver; /* group and user names of the config, off the loop */
        uint64_t log_suppressed; /* repeated warnings held back by rate limits */
        uint64_t audit_suppressed; /* repeated refusals folded into their burst's audit row */
        RefusalState refusals;
        RateLimit enforcement_wait_log; /* "Enforcement waits" warnings */
        LimitsState limits; /* per-user limits (daemon/limits-ops.h) */
        StatusCache status_cache; /* the last status reply's bytes (status-cache.h) */
        UserWaits user_waits; /* requests waiting for a user name's uid (user-wait.h) */
} Daemon;

/* Wall time (CLOCK_REALTIME) for display and storage, and boot time
 * (CLOCK_BOOTTIME) for deadlines and durations, in microseconds. */
uint64_t daemon_wall(const Daemon *d);
uint64_t daemon_boot(const Daemon *d);

/* The boot time that corresponds to a stored wall time `wall`, taking the
 * wall clock as right now: used once, at start, for deadlines read back from
 * the store. A wall time in the future maps into the future. */
uint64_t daemon_boot_from_wall(const Daemon *d, uint64_t wall);

/* The wall time shown for boot time `boot` (a deadline). */
uint64_t daemon_wall_from_boot(const Daemon *d, uint64_t boot);

/* When an sd-event CLOCK_BOOTTIME timer must fire for deadline `boot`
 * (the test clock's advance is not the kernel's). */
uint64_t daemon_timer_usec(const Daemon *d, uint64_t boot);

/* Build the daemon from a loaded config: open the store, bind the socket,
 * load NVML (failure is recorded, not fatal), take a first snapshot and arm
 * the timers. Returns 0 or -errno, having logged why. */
int daemon_new(char *config_path, Config *config, Daemon **ret);

#define DAEMON_USER_NAME_WAIT_USEC (25 * USEC_PER_MSEC)

/* Replies name users on every request; NSS reads /etc/passwd each time, so
 * names are remembered for a while (a renamed user shows the old name for at
 * most this long). */
#define USER_NAMES_TTL_USEC (60 * USEC_PER_SEC)

/* How often the names of the config (the admin group, policy groups, exempt
 * users) are looked up again; a failed lookup keeps the previous answer. */
#define DAEMON_NAMES_TTL_USEC (60 * USEC_PER_SEC)
/* How long startup waits for the first answers before serving anyway
 * (names still unanswered then fail closed until they are). */
#define DAEMON_NAMES_STARTUP_WAIT_USEC (3 * USEC_PER_SEC)

/* Hand the names of the current config to d->resolver. */
int daemon_resolver_update(Daemon *d);

/* The login name of `uid`, or NULL when it has none or its lookup has not
 * answered yet. Names come from d->resolver's cache (its thread asks NSS, so
 * a slow directory never blocks the loop; a uid seen for the first time
 * waits at most DAEMON_USER_NAME_WAIT_USEC, see resolver_user_name). The
 * string stays valid for the next DAEMON_USER_NAME_RING - 1 calls. */
const char *daemon_user_name(const Daemon *d, uid_t uid);

/* For texts (messages, alerts, errors): the login name of `uid`, or "uid N"
 * while it has none; never NULL. Same lifetime as daemon_user_name(). */
const char *daemon_user_text(const Daemon *d, uid_t uid);

/* Raise an alert (see alerts/alerts.h): `details` is stolen (may be NULL).
 * Failures are logged, never fatal. */
void daemon_alert(Daemon *d, ConfigAlertEvent event, const char *key, const char *subject,
                  const char *text, json_t *details);

/* Run the event loop until SIGTERM/SIGINT. Returns the exit status. */
int daemon_run(Daemon *d);

void daemon_free(Daemon *d);
