/* Daemon lifecycle: construction, signals, configuration reload, teardown.
 * See daemon.h. */
#include "daemon/daemon.h"
#include "daemon/mig-ops.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/log.h"
#include "basic/parse.h"
#include "basic/subid.h"
#include "daemon/metrics-source.h"
#include "daemon/request.h"
#include "daemon/sampler.h"
#include "daemon/server.h"
#include "metrics/http.h"

/* SIGHUP: re-read the file. An invalid file leaves the running config in
 * place; settings that cannot change without a restart are kept and logged. */
static void daemon_reload(Daemon *d)
{
        _cleanup_free_ char *error = NULL;
        Config *next = NULL;
        bool nvml_changed;
        int r;

        if (!d->config_path) {
                log_info("SIGHUP: no configuration file was loaded at start; nothing to reload.");
                return;
        }
        r = config_load(d->config_path, &next, &error);
        if (r < 0) {
                log_error("Reload failed, keeping the running configuration: %s",
                          error ? error : strerror(-r));
                store_audit(d->store, -1, "config.reload_failed", d->config_path, NULL);
                return;
        }

        if (strcmp(next->socket_path, d->config->socket_path) != 0) {
                log_warning("socket changed in %s; it takes effect at the next restart.",
                            d->config_path);
                free(next->socket_path);
                next->socket_path = strdup(d->config->socket_path);
        }
        if (strcmp(next->state_dir, d->config->state_dir) != 0) {
                log_warning("state_dir changed in %s; it takes effect at the next restart.",
                            d->config_path);
                free(next->state_dir);
                next->state_dir = strdup(d->config->state_dir);
                /* A backup_dir derived from the new state_dir follows it back. */
                if (strcmp(next->env.backup_dir, d->config->env.backup_dir) != 0 &&
                    strstr(next->env.backup_dir, CONFIG_ENV_BACKUP_DIR_NAME)) {
                        free(next->env.backup_dir);
                        next->env.backup_dir = strdup(d->config->env.backup_dir);
                }
        }
        if (!next->socket_path || !next->state_dir || !next->env.backup_dir) {
                log_error("Reload failed: out of memory.");
                config_free(next);
                return;
        }
        /* Strict mode's fence is set up or removed at start only. */
        if ((next->enforcement.mode == CONFIG_ENFORCEMENT_STRICT) !=
            (d->config->enforcement.mode == CONFIG_ENFORCEMENT_STRICT)) {
                log_warning("enforcement.mode changed to or from strict in %s; it takes effect at "
                            "the next restart.",
                            d->config_path);
                next->enforcement.mode = d->config->enforcement.mode;
        }
        nvml_changed = strcmp(next->nvml_library, d->config->nvml_library) != 0;
        if (strcmp(next->http.listen.text, d->config->http.listen.text) != 0) {
                char *text = strdup(d->config->http.listen.text);

                if (!text) {
                        log_error("Reload failed: out of memory.");
                        config_free(next);
                        return;
                }
                /* The listener stays where it is: a token dropped along with
                 * a move to loopback must not leave it open to everyone. */
                if (!d->config->http.listen.loopback && !next->http.token) {
                        log_error("Reload refused, keeping the running configuration: "
                                  "http.token is gone but the listener stays on %s until a "
                                  "restart.",
                                  d->config->http.listen.text);
                        free(text);
                        config_free(next);
                        return;
                }
                log_warning("http.listen changed in %s; it takes effect at the next restart.",
                            d->config_path);
                free(next->http.listen.text);
                next->http.listen = d->config->http.listen;
                next->http.listen.text = text;
        }

        config_free(d->config);
        d->config = next;
        log_set_max_level(d->config->log_level);
        if (nvml_changed) {
                sampler_unload_nvml(d);
                sampler_load_nvml(d);
        }
        r = sampler_arm(d);
        if (r < 0)
                log_error_errno(r, "Cannot re-arm the sampler after reload");
        enforcement_config_changed(&d->enforcement);
        slurm_ops_config_changed(d);
        r = daemon_resolver_update(d);
        if (r < 0)
                log_error_errno(r, "Cannot look up the names of the new configuration");
        r = env_backup_arm(d);
        if (r < 0)
                log_error_errno(r, "Cannot re-arm the environment backup after reload");
        r = alerts_reconfigure(d->alerts, &d->config->alerts);
        if (r < 0)
                log_error_errno(r, "Cannot apply the new alert sinks");
        limits_ops_reload(d); /* per-user limits: new values, maybe a new backend */
        store_audit(d->store, -1, "config.reload", d->config_path, NULL);
        daemon_alert(d, CONFIG_ALERT_DAEMON, "daemon", "configuration reloaded",
                     "gpukeeperd reloaded its configuration.", NULL);
        log_info("Reloaded %s (sample_interval %" PRIu64 " ms).", d->config_path,
                 d->config->sample_interval_usec / USEC_PER_MSEC);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        Daemon *d = userdata;

        if (si->ssi_signo == SIGHUP) {
                daemon_reload(d);
                return 0;
        }
        log_info("Received %s, stopping.", strsignal((int)si->ssi_signo));
        return sd_event_exit(d->event, EXIT_SUCCESS);
}

void daemon_alert(Daemon *d, ConfigAlertEvent event, const char *key, const char *subject,
                  const char *text, json_t *details)
{
        int r;

        if (!d->alerts) {
                json_decref(details);
                return;
        }
        r = alerts_raise(d->alerts, event, key, subject, text, details);
        json_decref(details);
        if (r < 0)
                log_warning_errno(r, "Cannot queue the %s alert",
                                  config_alert_event_to_string(event));
}

/* Every delivery outcome goes to the audit trail (sink names only: URLs and
 * secrets never leave the config). */
static void record_alert(const AlertsRecord *rec, void *userdata)
{
        Daemon *d = userdata;
        _cleanup_free_ char *detail = NULL;
        json_t *o;

        o = json_pack("{s:s, s:s, s:b, s:I, s:o}", "sink", rec->sink, "event",
                      config_alert_event_to_string(rec->event), "recovery", rec->recovery,
                      "attempts", (json_int_t)rec->attempt, "error",
                      rec->error ? json_string(rec->error) : json_null());
        if (o)
                detail = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!rec->ok)
                log_warning("Alert %s to sink %s, attempt %u failed%s: %s",
                            config_alert_event_to_string(rec->event), rec->sink, rec->attempt,
                            rec->final ? " (giving up)" : ", will retry",
                            rec->error ? rec->error : "unknown error");
        (void)store_audit(d->store, -1,
                          rec->ok      ? "alert.sent"
                          : rec->final ? "alert.failed"
                                       : "alert.attempt_failed",
                          rec->key, detail);
}

static uint64_t alerts_clock(void *userdata)
{
        return daemon_boot(userdata);
}

const char *daemon_user_name(const Daemon *d, uid_t uid)
{
        Daemon *mutable = (Daemon *)d; /* the memo is a cache, not state */
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        if (d->resolver) {
                char *buf = mutable->user_name_ring[mutable->user_name_next++ %
                                                    DAEMON_USER_NAME_RING];

                return resolver_user_name(d->resolver, uid, DAEMON_USER_NAME_WAIT_USEC, buf,
                                          sizeof d->user_name_ring[0]) >= 0
                               ? buf
                               : NULL;
        }
        /* No resolver: unit tests that build a Daemon by hand. */
        if (now - d->user_names_usec > USER_NAMES_TTL_USEC) {
                memset(mutable->user_names, 0, sizeof *mutable->user_names);
                mutable->user_names_usec = now;
        }
        return user_memo_name(mutable->user_names, uid);
}

const char *daemon_user_text(const Daemon *d, uid_t uid)
{
        Daemon *mutable = (Daemon *)d;
        const char *name = daemon_user_name(d, uid);
        char *buf;

        if (name)
                return name;
        buf = mutable->user_name_ring[mutable->user_name_next++ % DAEMON_USER_NAME_RING];
        snprintf(buf, sizeof d->user_name_ring[0], "uid %u", (unsigned)uid);
        return buf;
}

int daemon_resolver_update(Daemon *d)
{
        const Config *c = d->config;
        _cleanup_free_ ResolverName *names = NULL;
        size_t n = 0;

        names = calloc(1 + c->policy.n_groups + c->limits.rules.n_groups +
                               c->enforcement.n_exempt_users + SUBID_MAX_RANGES,
                       sizeof *names);
        if (!names)
                return -ENOMEM;
        names[n++] = (ResolverName){RESOLVER_GROUP, ADMIN_GROUP};
        for (size_t i = 0; i < c->policy.n_groups; i++)
                names[n++] = (ResolverName){RESOLVER_GROUP, c->policy.groups[i].group};
        /* The groups of limits.groups (limits-ops.c asks for them by name). */
        for (size_t i = 0; i < c->limits.rules.n_groups; i++)
                names[n++] = (ResolverName){RESOLVER_GROUP, c->limits.rules.groups[i].group};
        for (size_t i = 0; i < c->enforcement.n_exempt_users; i++) {
                uint64_t v;

                /* Numbers are taken as uids without a lookup (enforcement.c). */
                if (parse_uint64(c->enforcement.exempt_users[i], &v) == 0)
                        continue;
                names[n++] = (ResolverName){RESOLVER_USER, c->enforcement.exempt_users[i]};
        }
        /* Owners of /etc/subuid ranges named by login name (server.h). */
        {
                _cleanup_free_ const char **owners = calloc(SUBID_MAX_RANGES, sizeof *owners);
                size_t k;

                if (!owners)
                        return -ENOMEM;
                k = server_subuid_owner_names(d->server, owners, SUBID_MAX_RANGES);
                for (size_t i = 0; i < k; i++)
                        names[n++] = (ResolverName){RESOLVER_USER, owners[i]};
                return resolver_set(d->resolver, names, n);
        }
}

/* Test seams, read once at start: GK_TEST_NSS_DELAY_MS makes every lookup of
 * the resolver that much slower (a slow directory), GK_TEST_NSS_TTL_MS
 * shortens its refresh period, GK_TEST_USER_WAIT_MS how long a request waits
 * for a user name's uid (user-wait.h). Unset in production. */
static uint64_t env_msec(const char *name, uint64_t fallback)
{
        const char *v = getenv(name);
        uint64_t n;

        if (!v || parse_uint64(v, &n) < 0 || n > UINT64_C(3600000))
                return fallback;
        return n * USEC_PER_MSEC;
}

int daemon_new(char *config_path, Config *config, Daemon **ret)
{
        static const int signals[] = {SIGTERM, SIGINT, SIGHUP};
        MetricsSource source;
        sigset_t chld;
        _cleanup_free_ char *error = NULL;
        sigset_t mask;
        Daemon *d;
        int r;

        d = calloc(1, sizeof *d);
        if (!d) {
                free(config_path);
                config_free(config);
                return log_error_errno(-ENOMEM, "Cannot start");
        }
        d->config_path = config_path;
        d->config = config;
        d->enforcement_wait_log = RATELIMIT_INIT(60 * USEC_PER_SEC, 3);
        d->user_names = calloc(1, sizeof *d->user_names);
        if (!d->user_names) {
                daemon_free(d);
                return log_error_errno(-ENOMEM, "Cannot start");
        }
        if (gethostname(d->hostname, sizeof d->hostname - 1) < 0)
                snprintf(d->hostname, sizeof d->hostname, "localhost");

        /* A client that disconnects while we write must not kill the daemon. */
        signal(SIGPIPE, SIG_IGN);

        r = sd_event_new(&d->event);
        if (r < 0)
                goto fail_log;
        sigemptyset(&mask);
        for (size_t i = 0; i < ELEMENTSOF(signals); i++)
                sigaddset(&mask, signals[i]);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
                r = negative_errno();
                goto fail_log;
        }
        for (size_t i = 0; i < ELEMENTSOF(signals); i++) {
                r = sd_event_add_signal(d->event, NULL, signals[i], on_signal, d);
                if (r < 0)
                        goto fail_log;
        }
        /* sd-event reaps the backup child through SIGCHLD, which must be blocked. */
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0) {
                r = negative_errno();
                goto fail_log;
        }

        /* Test builds open the database through the fault seam, so that the
         * `debug.store_fault` request can make its writes fail (fault-vfs.h). */
        r = store_open_flags(d->config->state_dir, GK_TEST_HOOKS ? STORE_OPEN_FAULT_SEAM : 0,
                             &d->store, &error);
        if (r < 0) {
                log_error("Cannot open the state database: %s", error ? error : strerror(-r));
                goto fail;
        }
        /* Checkpoints' fdatasync() in a thread, not inside a request. */
        r = store_checkpoint_in_background(d->store);
        if (r < 0)
                log_warning_errno(r, "Cannot start the state database's checkpoint thread; "
                                     "commits checkpoint the WAL themselves");
        r = read_queue_new(d->store, d->event, &d->reads);
        if (r < 0) {
                log_error_errno(r, "Cannot start the state database's reader (reports, audit "
                                   "queries and the dashboard's history run there, off the "
                                   "event loop)");
                goto fail;
        }
        d->run_id = store_run_started(d->store, getpid(), GK_VERSION);
        if (d->run_id < 0) {
                r = (int)d->run_id;
                log_error_errno(r, "Cannot record the daemon start in the state database");
                goto fail;
        }

        r = resolver_new(env_msec("GK_TEST_NSS_TTL_MS", DAEMON_NAMES_TTL_USEC),
                         env_msec("GK_TEST_NSS_DELAY_MS", 0), &d->resolver);
        if (r < 0)
                goto fail_log;
        d->user_waits.timeout_usec = env_msec("GK_TEST_USER_WAIT_MS", USER_WAIT_TIMEOUT_USEC);
        r = daemon_resolver_update(d);
        if (r < 0)
                goto fail_log;
        if (!resolver_wait(d->resolver, DAEMON_NAMES_STARTUP_WAIT_USEC))
                log_warning("The group/user database has not answered for every name of the "
                            "configuration within %llu s; admin rights, group policies and "
                            "enforcement fail closed until it does.",
                            (unsigned long long)(DAEMON_NAMES_STARTUP_WAIT_USEC / USEC_PER_SEC));

        r = proc_cache_new("/proc", &d->proc_cache);
        if (r < 0)
                goto fail_log;

        /* First snapshot before the socket opens, so the first status is real. */
        r = sampler_tick(d);
        if (r < 0)
                goto fail_log;
        r = sampler_arm(d);
        if (r < 0)
                goto fail_log;

        r = alerts_new(d->event, &d->config->alerts, d->hostname, NULL, record_alert, d,
                       &d->alerts);
        if (r < 0) {
                log_error_errno(r, "Cannot set up alert delivery");
                goto fail;
        }
        /* repeat_after on the daemon's boot clock, which tests can advance. */
        alerts_set_clock(d->alerts, alerts_clock, d);

        r = leases_init(d);
        if (r < 0)
                goto fail;
        r = mig_ops_new(&d->mig);
        if (r < 0)
                goto fail_log;
        mig_ops_tick(d);
        r = enforcement_init(d);
        if (r < 0)
                goto fail;
        r = slurm_ops_init(d);
        if (r < 0)
                goto fail_log;
        /* Strict mode: the fence, matching the restored leases, before
         * the socket opens (or its refusal, one line). */
        r = strict_start(d);
        if (r < 0)
                goto fail;
        /* Per-user limits (daemon/limits-ops.h): holders of restored leases. */
        r = limits_ops_start(d);
        if (r < 0)
                goto fail_log;

        r = env_backup_arm(d);
        if (r < 0)
                goto fail_log;

        r = server_new(d, d->config->socket_path, &d->server);
        if (r < 0)
                goto fail;
        /* The owners of /etc/subuid ranges named by login name, which the
         * server has just read (server.h), join the resolver's names. */
        r = daemon_resolver_update(d);
        if (r < 0)
                goto fail_log;
        if (getenv("GK_TEST_IDLE_TIMEOUT_MS"))
                server_set_idle_timeout(d->server, env_msec("GK_TEST_IDLE_TIMEOUT_MS",
                                                            SERVER_IDLE_TIMEOUT_USEC));
        leases_schedule(d);

        /* Like a missing NVML, a port taken by another exporter (dcgm-exporter
         * defaults to 9400 too) must not stop GPU sharing: logged, not fatal. */
        daemon_metrics_source(d, &source);
        r = metrics_new(&source, &d->metrics);
        if (r < 0)
                log_error_errno(r, "Cannot serve /metrics on %s, metrics are off until a restart",
                                d->config->http.listen.text);
        else
                log_info("Serving /metrics on http://%s%s.", d->config->http.listen.text,
                         d->config->http.token ? " (token required)" : "");

        store_audit(d->store, -1, "daemon.start", GK_VERSION, NULL);
        daemon_alert(d, CONFIG_ALERT_DAEMON, "daemon", "gpukeeperd started",
                     "gpukeeperd " GK_VERSION " started.", NULL);
        log_info("gpukeeperd " GK_VERSION " serving %s, state in %s, %zu GPUs%s.",
                 d->config->socket_path, d->config->state_dir, d->snapshot->n_gpus,
                 d->snapshot->simulated ? " (SIMULATED)" : "");
        *ret = d;
        return 0;

fail_log:
        log_error_errno(r, "Cannot start");
fail:
        daemon_free(d);
        return r;
}

uint64_t daemon_wall(const Daemon *d)
{
        int64_t wall = (int64_t)now_usec(CLOCK_REALTIME) + d->clock.wall_step_usec +
                       (int64_t)d->clock.advance_usec;

        return wall > 0 ? (uint64_t)wall : 1;
}

uint64_t daemon_boot(const Daemon *d)
{
        return now_usec(CLOCK_BOOTTIME) + d->clock.advance_usec;
}

uint64_t daemon_boot_from_wall(const Daemon *d, uint64_t wall)
{
        uint64_t now_wall = daemon_wall(d), now_boot = daemon_boot(d);

        if (wall >= now_wall)
                return now_boot + (wall - now_wall);
        return now_wall - wall < now_boot ? now_boot - (now_wall - wall) : 1;
}

uint64_t daemon_wall_from_boot(const Daemon *d, uint64_t boot)
{
        uint64_t now_wall = daemon_wall(d), now_boot = daemon_boot(d);

        if (boot >= now_boot)
                return now_wall + (boot - now_boot);
        return now_boot - boot < now_wall ? now_wall - (now_boot - boot) : 1;
}

uint64_t daemon_timer_usec(const Daemon *d, uint64_t boot)
{
        return boot > d->clock.advance_usec ? boot - d->clock.advance_usec : 1;
}

int daemon_run(Daemon *d)
{
        int r;

        r = sd_event_loop(d->event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed"), EXIT_FAILURE;
        refusals_flush(d, true);
        store_audit(d->store, -1, "daemon.stop", GK_VERSION, NULL);
        store_run_stopped(d->store, d->run_id);
        return r;
}

void daemon_free(Daemon *d)
{
        if (!d)
                return;
        /* First: its jobs' answers go to the listener and the server. */
        read_queue_free(d->reads);
        reads_line_free(&d->read_line);
        metrics_free(d->metrics);
        user_waits_done(&d->user_waits);
        server_free(d->server);
        enforcement_done(&d->enforcement);
        strict_done(&d->strict);
        limits_ops_done(&d->limits);
        env_backup_done(&d->env_backup);
        slurm_ops_done(d);
        leases_done(&d->leases);
        mig_ops_free(d->mig);
        alerts_free(d->alerts);
        sampler_worker_free(d);
        sd_event_source_disable_unref(d->sample_timer);
        gpu_snapshot_free(d->snapshot);
        proc_cache_free(d->proc_cache);
        resolver_free(d->resolver);
        gpu_nvml_close(d->nvml);
        store_close(d->store);
        sd_event_unref(d->event);
        config_free(d->config);
        free(d->config_path);
        free(d->user_names);
        status_cache_done(&d->status_cache);
        free(d);
}
