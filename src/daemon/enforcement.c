/* Enforcement against unleased GPU use; see enforcement.h. */
#include "daemon/enforcement.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "basic/log.h"
#include "basic/macro.h"
#include "basic/parse.h"
#include "basic/proc.h"
#include "basic/time-util.h"
#include "daemon/daemon.h"
#include "proto/json-text.h"
#include "enforce/signal.h"
#include "policy/violations.h"

static void tracked_free(TrackedViolation *t)
{
        if (!t)
                return;
        stored_violation_done(&t->rec);
        free(t);
}

void enforcement_done(EnforcementState *s)
{
        while (s->tracked) {
                TrackedViolation *next = s->tracked->next;

                tracked_free(s->tracked);
                s->tracked = next;
        }
        *s = (EnforcementState){};
}

static void tracked_append(EnforcementState *s, TrackedViolation *t)
{
        TrackedViolation **p = &s->tracked;

        while (*p)
                p = &(*p)->next;
        *p = t;
        s->n_tracked++;
}

int enforcement_init(Daemon *d)
{
        StoredViolation *open = NULL;
        size_t n = 0;
        int r;

        r = store_violations_load_open(d->store, &open, &n);
        if (r < 0)
                return log_error_errno(r, "Cannot load open violations");
        for (size_t i = 0; i < n; i++) {
                TrackedViolation *t = calloc(1, sizeof *t);

                if (!t) {
                        stored_violations_free(open + i, n - i);
                        return log_error_errno(-ENOMEM, "Cannot load open violations");
                }
                t->rec = open[i];
                t->seen = true; /* judged again at the first tick */
                /* Once, at start: how long ago each step was, by the wall
                 * clock, becomes a point on the boot clock. */
                t->detected_boot = daemon_boot_from_wall(d, t->rec.detected_usec);
                t->term_boot = t->rec.term_usec ? daemon_boot_from_wall(d, t->rec.term_usec) : 0;
                t->kill_boot = t->rec.kill_usec ? daemon_boot_from_wall(d, t->rec.kill_usec) : 0;
                tracked_append(&d->enforcement, t);
        }
        free(open);
        if (n > 0)
                log_info("Resuming %zu open violations.", n);
        return 0;
}

void enforcement_config_changed(EnforcementState *s)
{
        s->exempt_resolved_usec = 0;
}

const TrackedViolation *enforcement_find(const Daemon *d, uint32_t pid, uint64_t start_time,
                                         const char *device_uuid)
{
        for (const TrackedViolation *t = d->enforcement.tracked; t; t = t->next)
                if ((uint32_t)t->rec.pid == pid && t->rec.start_time == start_time &&
                    strcmp(t->rec.device_uuid, device_uuid) == 0)
                        return t;
        return NULL;
}

struct EnforcementIndexEntry {
        uint32_t pid;
        uint64_t start_time;
        const char *device_uuid;
        size_t position; /* in the list: the first of equal keys wins, as in enforcement_find() */
        const TrackedViolation *t;
};

static int index_key_compare(uint32_t pid, uint64_t start_time, const char *device_uuid,
                             const struct EnforcementIndexEntry *e)
{
        if (pid != e->pid)
                return pid < e->pid ? -1 : 1;
        if (start_time != e->start_time)
                return start_time < e->start_time ? -1 : 1;
        return strcmp(device_uuid, e->device_uuid);
}

static int index_entry_compare(const void *a, const void *b)
{
        const struct EnforcementIndexEntry *ea = a, *eb = b;
        int c = index_key_compare(ea->pid, ea->start_time, ea->device_uuid, eb);

        if (c != 0)
                return c;
        return ea->position < eb->position ? -1 : ea->position > eb->position;
}

int enforcement_index_build(const Daemon *d, EnforcementIndex *ret)
{
        struct EnforcementIndexEntry *entries;
        size_t n = 0;

        for (const TrackedViolation *t = d->enforcement.tracked; t; t = t->next)
                n++;
        entries = calloc(MAX(n, (size_t)1), sizeof *entries);
        if (!entries)
                return -ENOMEM;
        n = 0;
        for (const TrackedViolation *t = d->enforcement.tracked; t; t = t->next, n++)
                entries[n] = (struct EnforcementIndexEntry){
                    .pid = (uint32_t)t->rec.pid,
                    .start_time = t->rec.start_time,
                    .device_uuid = t->rec.device_uuid,
                    .position = n,
                    .t = t,
                };
        qsort(entries, n, sizeof *entries, index_entry_compare);
        *ret = (EnforcementIndex){.entries = entries, .n = n};
        return 0;
}

const TrackedViolation *enforcement_index_find(const EnforcementIndex *idx, uint32_t pid,
                                               uint64_t start_time, const char *device_uuid)
{
        size_t lo = 0, hi = idx->n;

        /* The first entry not below the key; equal keys are in list order. */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (index_key_compare(pid, start_time, device_uuid, &idx->entries[mid]) > 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (lo < idx->n && index_key_compare(pid, start_time, device_uuid, &idx->entries[lo]) == 0)
                return idx->entries[lo].t;
        return NULL;
}

void enforcement_index_done(EnforcementIndex *idx)
{
        if (!idx)
                return;
        free(idx->entries);
        *idx = (EnforcementIndex){};
}

/* /proc/<pid>/exe for the exemption check; NULL when unreadable. The
 * start time is checked by the caller's snapshot being this tick's. */
static const char *exe_of(void *userdata, uint32_t pid, uint64_t start_time)
{
        char *buf = userdata, path[64];
        ssize_t n;

        snprintf(path, sizeof path, "/proc/%" PRIu32 "/exe", pid);
        n = readlink(path, buf, PATH_MAX - 1);
        if (n < 0)
                return NULL;
        buf[n] = '\0';
        return buf;
}

/* Config exemptions as uids: names as the resolver last saw them (refreshed
 * off the loop; a failed refresh keeps the previous answer), numbers taken
 * as they are, names NSS says do not exist skipped. A name with no answer
 * at all could be anyone's, so it must not turn into a kill: returns the
 * first such name (enforcement waits this tick), else NULL. */
static const char *exempt_uids(const Daemon *d, const ConfigEnforcement *c, uid_t *uids,
                               size_t max, size_t *ret_n)
{
        size_t n = 0;

        for (size_t i = 0; i < c->n_exempt_users && n < max; i++) {
                uint32_t id;
                uint64_t v;
                int r;

                if (parse_uint64(c->exempt_users[i], &v) == 0 && v < UINT32_MAX) {
                        uids[n++] = (uid_t)v;
                        continue;
                }
                r = resolver_lookup(d->resolver, RESOLVER_USER, c->exempt_users[i], &id);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return c->exempt_users[i];
                uids[n++] = (uid_t)id;
        }
        *ret_n = n;
        return NULL;
}

/* Alert about violation `t`; the condition key is the violation, so each
 * is announced once (alerts' repeat_after) and recovers when it ends. */
static void alert_violation(Daemon *d, ConfigAlertEvent event, const TrackedViolation *t,
                            const char *subject, const char *text)
{
        char key[64];

        snprintf(key, sizeof key, "violation:%" PRId64, t->rec.id);
        daemon_alert(d, event, key, subject, text, enforcement_violation_json(d, &t->rec));
}

static void format_clock(uint64_t usec, char *buf, size_t len)
{
        time_t t = (time_t)(usec / USEC_PER_SEC);
        struct tm tm;

        localtime_r(&t, &tm);
        strftime(buf, len, "%H:%M:%S", &tm);
}

/* Tell the owner, on the process's terminal when it has one: what, which
 * GPU, how to lease properly, and when it will be stopped. */
static void warn_owner(Daemon *d, const TrackedViolation *t)
{
        const ConfigEnforcement *c = &d->config->enforcement;
        char when[16], text[1024], grace[FORMAT_DURATION_MAX];
        const RecentExpiry *expired;
        uint64_t stop_at = daemon_wall_from_boot(d, t->detected_boot + c->grace_usec);
        int r;

        format_clock(stop_at, when, sizeof when);
        (void)format_duration_short(grace, sizeof grace, c->grace_usec);
        /* The owner's own lease on it just expired: say that, not "get a
         * lease first" as to someone who never had one (issue 17). */
        expired = leases_recently_expired(d, t->rec.uid, t->rec.device_uuid,
                                          now_usec(CLOCK_REALTIME), USEC_PER_HOUR);
        if (expired) {
                char ended[16];

                format_clock(expired->ended_usec, ended, sizeof ended);
                snprintf(text, sizeof text,
                         "\ngpukeeper: your lease %" PRId64 " on GPU %d (%s) expired at %s; "
                         "process %d (%s) still uses it, now without a lease.\n"
                         "gpukeeper: lease it again: 'gpukeeper lease adopt %d'.\n%s",
                         expired->lease_id, t->rec.gpu_index, t->rec.device_uuid, ended,
                         (int)t->rec.pid, t->rec.command ? t->rec.command : "?",
                         (int)t->rec.pid,
                         c->mode != CONFIG_ENFORCEMENT_OBSERVE ? "gpukeeper: otherwise it will "
                                                                 "be stopped (SIGTERM) at "
                                                               : "");
                if (c->mode != CONFIG_ENFORCEMENT_OBSERVE)
                        snprintf(text + strlen(text), sizeof text - strlen(text), "%s, in %s.\n",
                                 when, grace);
        } else if (c->mode != CONFIG_ENFORCEMENT_OBSERVE)
                snprintf(text, sizeof text,
                         "\ngpukeeper: process %d (%s) uses GPU %d (%s) without a lease.\n"
                         "gpukeeper: keep it: 'gpukeeper lease adopt %d' leases its GPU if nobody "
                         "else uses it; next time run it with 'gpukeeper run --gpus 1 -- "
                         "COMMAND'.\n"
                         "gpukeeper: it will be stopped (SIGTERM) at %s, in %s.\n",
                         (int)t->rec.pid, t->rec.command ? t->rec.command : "?",
                         t->rec.gpu_index, t->rec.device_uuid, (int)t->rec.pid, when, grace);
        else
                snprintf(text, sizeof text,
                         "\ngpukeeper: process %d (%s) uses GPU %d (%s) without a lease.\n"
                         "gpukeeper: keep it: 'gpukeeper lease adopt %d' leases its GPU if nobody "
                         "else uses it; next time run it with 'gpukeeper run --gpus 1 -- "
                         "COMMAND'. This is recorded and reported to the admins.\n",
                         (int)t->rec.pid, t->rec.command ? t->rec.command : "?",
                         t->rec.gpu_index, t->rec.device_uuid, (int)t->rec.pid);
        r = enforce_tty_message(t->rec.pid, t->rec.start_time, text);
        if (r < 0 && r != -ENOTTY && r != -ESRCH)
                log_debug("No terminal message to pid %d: %s", (int)t->rec.pid, strerror(-r));
        /* The alert carries the text without the blank line that sets it off on
         * a terminal; enforce_tty_message turns newlines into CR LF itself. */
        alert_violation(d, CONFIG_ALERT_VIOLATION, t, "GPU used without a lease", text + 1);
}

static void open_violation(Daemon *d, const PolicyViolation *v, uint64_t now, uint64_t boot)
{
        TrackedViolation *t = calloc(1, sizeof *t);
        int r;

        if (!t)
                return;
        t->seen = true;
        t->rec = (StoredViolation){
                .pid = (pid_t)v->pid,
                .start_time = v->start_time,
                .uid = v->uid,
                .gpu_index = (int)v->gpu_index,
                .memory_bytes = v->memory_used_bytes == GPU_VALUE_UNKNOWN ? 0
                                                                          : v->memory_used_bytes,
                .command = v->command ? strdup(v->command) : NULL,
                .detected_usec = now,
        };
        t->detected_boot = boot;
        snprintf(t->rec.device_uuid, sizeof t->rec.device_uuid, "%s", v->device_uuid);
        snprintf(t->rec.gpu_uuid, sizeof t->rec.gpu_uuid, "%s", v->gpu_uuid);
        r = store_violation_open(d->store, &t->rec);
        if (r < 0) {
                log_error_errno(r, "Cannot record a violation of pid %d", (int)v->pid);
                tracked_free(t);
                return;
        }
        tracked_append(&d->enforcement, t);
        d->enforcement.violations_opened++;
        log_warning("Violation %" PRId64 ": pid %d of uid %u on %s without a lease.", t->rec.id,
                    (int)t->rec.pid, (unsigned)t->rec.uid, t->rec.device_uuid);
        if (store_violation_step(d->store, t->rec.id, VIOLATION_WARNED, now) >= 0) {
                t->rec.warned_usec = now;
                warn_owner(d, t);
        }
}

static void close_violation(Daemon *d, TrackedViolation *t, const char *outcome, uint64_t now)
{
        EnforcementState *s = &d->enforcement;

        if (store_violation_close(d->store, t->rec.id, outcome, now) < 0)
                log_error("Cannot close violation %" PRId64, t->rec.id);
        log_info("Violation %" PRId64 " (pid %d) ended: %s.", t->rec.id, (int)t->rec.pid, outcome);
        if (strcmp(outcome, "stopped") == 0 || strcmp(outcome, "killed") == 0 ||
            strcmp(outcome, "unkillable") == 0) {
                bool unkillable = strcmp(outcome, "unkillable") == 0;
                char text[1024];

                /* The whole story in the body (email, webhook text), not
                 * just the outcome's one word. */
                snprintf(text, sizeof text,
                         "Process %d (%s) of %s used GPU %d (%s) without a lease and %s.",
                         (int)t->rec.pid, t->rec.command ? t->rec.command : "?",
                         daemon_user_text(d, t->rec.uid), t->rec.gpu_index, t->rec.device_uuid,
                         strcmp(outcome, "stopped") == 0
                             ? "was stopped: it exited after SIGTERM"
                         : strcmp(outcome, "killed") == 0
                             ? "was killed: it ignored SIGTERM, SIGKILL ended it"
                             : "cannot be killed: it is still there after SIGKILL (a zombie "
                               "or stuck in the driver); it needs an admin");
                alert_violation(d, CONFIG_ALERT_PROCESS_STOPPED, t,
                                unkillable ? "process cannot be killed (admin attention needed)"
                                           : "process stopped",
                                text);
        }
        for (TrackedViolation **p = &s->tracked; *p; p = &(*p)->next)
                if (*p == t) {
                        *p = t->next;
                        s->n_tracked--;
                        break;
                }
        tracked_free(t);
}

/* Record the step, then send the signal: a crash in between loses at most
 * one SIGTERM (SIGKILL still follows), never sends one twice. Returns false
 * when the violation was closed. */
static bool send_step(Daemon *d, TrackedViolation *t, ViolationStep step, int sig, uint64_t now,
                      uint64_t boot)
{
        int r;

        r = store_violation_step(d->store, t->rec.id, step, now);
        if (r < 0) {
                log_error_errno(r, "Cannot record a signal for violation %" PRId64, t->rec.id);
                return true;
        }
        if (step == VIOLATION_SIGTERM) {
                t->rec.term_usec = now;
                t->term_boot = boot;
        } else {
                t->rec.kill_usec = now;
                t->kill_boot = boot;
        }
        r = enforce_signal(t->rec.pid, t->rec.start_time, t->rec.uid, sig);
        if (r == -ESRCH || r == -ESTALE) {
                /* Gone, or the pid now names another process: never signal that. */
                close_violation(d, t, "gone", now);
                return false;
        }
        if (r == -EACCES || r == -EPERM) {
                /* pid 1, a kernel thread, ourselves, or the kernel said no:
                 * that will not change, so report it once and stop. */
                log_error_errno(r, "Will not signal pid %d of violation %" PRId64,
                                (int)t->rec.pid, t->rec.id);
                close_violation(d, t, "unkillable", now);
                return false;
        }
        if (r < 0) {
                log_error_errno(r, "Cannot signal pid %d of violation %" PRId64, (int)t->rec.pid,
                                t->rec.id);
                return true;
        }
        d->enforcement.signals_sent++;
        log_warning("Sent %s to pid %d (violation %" PRId64 ").", sig == SIGKILL ? "SIGKILL"
                                                                                  : "SIGTERM",
                    (int)t->rec.pid, t->rec.id);
        return true;
}

/* Move one open, still present violation along its timeline. */
static void advance(Daemon *d, TrackedViolation *t, uint64_t now, uint64_t boot)
{
        const ConfigEnforcement *c = &d->config->enforcement;
        EnforceProcessStatus st = {};

        if (t->rec.warned_usec == 0 &&
            store_violation_step(d->store, t->rec.id, VIOLATION_WARNED, now) >= 0) {
                t->rec.warned_usec = now;
                warn_owner(d, t);
        }
        if (c->mode == CONFIG_ENFORCEMENT_OBSERVE)
                return;
        if (t->rec.term_usec == 0) {
                if (boot >= t->detected_boot + c->grace_usec)
                        send_step(d, t, VIOLATION_SIGTERM, SIGTERM, now, boot);
                return;
        }
        if (t->rec.kill_usec == 0) {
                if (boot >= t->term_boot + c->kill_timeout_usec)
                        send_step(d, t, VIOLATION_SIGKILL, SIGKILL, now, boot);
                return;
        }
        /* SIGKILL went out and NVML still lists it: a zombie whose parent
         * does not reap it, or stuck in the kernel. Report once, stop. */
        if (enforce_process_state(t->rec.pid, t->rec.start_time, &st) < 0 ||
            boot >= t->kill_boot + c->kill_timeout_usec)
                close_violation(d, t, "unkillable", now);
}

/* Whether the latest snapshot's process list of GPU `gpu_uuid` is cut short. */
static bool device_list_incomplete(const Daemon *d, const char *gpu_uuid)
{
        for (size_t i = 0; d->snapshot && i < d->snapshot->n_gpus; i++)
                if (strcmp(d->snapshot->gpus[i].uuid, gpu_uuid) == 0)
                        return d->snapshot->gpus[i].processes_incomplete;
        return false;
}

void enforcement_tick(Daemon *d)
{
        EnforcementState *s = &d->enforcement;
        const ConfigEnforcement *c = &d->config->enforcement;
        _cleanup_free_ PolicyHeld *held = NULL;
        _cleanup_free_ PolicyViolation *found = NULL;
        _cleanup_free_ char *exe_buf = NULL;
        uint64_t now = daemon_wall(d), mono = now_usec(CLOCK_MONOTONIC), boot = daemon_boot(d);
        size_t n_held = 0, cap = 0, n_found = 0;
        PolicyExempt exempt;
        int r;

        if (!d->snapshot || !d->snapshot->nvml_available)
                return;
        for (const Lease *l = d->leases.leases; l; l = l->next)
                cap += l->rec.n_devices;
        held = calloc(cap ? cap : 1, sizeof *held);
        exe_buf = malloc(PATH_MAX);
        if (!held || !exe_buf)
                return;
        for (const Lease *l = d->leases.leases; l; l = l->next)
                for (size_t i = 0; i < l->rec.n_devices; i++)
                        held[n_held++] = (PolicyHeld){.uid = l->rec.uid,
                                                      .uuid = l->rec.devices[i].uuid};
        {
                const char *unknown = exempt_uids(d, c, s->exempt_uids,
                                                  ELEMENTSOF(s->exempt_uids), &s->n_exempt_uids);

                if (unknown) {
                        if (ratelimit_below(&d->enforcement_wait_log, mono, NULL))
                                log_warning("Enforcement waits: the user database has not "
                                            "answered for exempt user '%s' yet.",
                                            unknown);
                        else
                                d->log_suppressed++;
                        return;
                }
                s->exempt_resolved_usec = mono;
        }
        exempt = (PolicyExempt){
                .root_exempt = c->root_exempt,
                .uids = s->exempt_uids,
                .n_uids = s->n_exempt_uids,
                .executables = (const char *const *)c->exempt_executables,
                .n_executables = c->n_exempt_executables,
                .exe = exe_of,
                .userdata = exe_buf,
        };
        r = policy_find_violations(d->snapshot, held, n_held, &exempt, &found, &n_found);
        if (r < 0) {
                log_error_errno(r, "Cannot look for violations");
                return;
        }
        /* Slurm job processes count only on their own job's devices. */
        r = slurm_ops_job_violations(d, &found, &n_found);
        if (r < 0)
                log_error_errno(r, "Cannot look for Slurm job processes on other devices");

        for (TrackedViolation *t = s->tracked; t; t = t->next)
                t->seen = false;
        for (size_t i = 0; i < n_found; i++) {
                TrackedViolation *t = (TrackedViolation *)enforcement_find(
                        d, found[i].pid, found[i].start_time, found[i].device_uuid);

                if (t)
                        t->seen = true;
                else
                        open_violation(d, &found[i], now, boot);
        }
        for (TrackedViolation *t = s->tracked, *next; t; t = next) {
                const Lease *holder;
                uint64_t start;

                next = t->next;
                if (t->seen) {
                        advance(d, t, now, boot);
                        continue;
                }
                if (device_list_incomplete(d, t->rec.gpu_uuid))
                        continue; /* not listed is not gone: wait for a full list */
                if (t->rec.kill_usec)
                        close_violation(d, t, "killed", now);
                else if (t->rec.term_usec)
                        close_violation(d, t, "stopped", now);
                else if ((holder = leases_holder_for(d, t->rec.device_uuid, t->rec.uid)) &&
                         holder->rec.uid == t->rec.uid)
                        close_violation(d, t, "leased", now);
                else if (proc_live_start_time(t->rec.pid, &start) >= 0 &&
                         start == t->rec.start_time)
                        close_violation(d, t, "left", now);
                else
                        close_violation(d, t, "gone", now);
        }
}

static json_t *usec_json(uint64_t usec)
{
        return usec ? json_real((double)usec / USEC_PER_SEC) : json_null();
}

/* `open`: the tracked violation with v's id, NULL when it is not open. */
static json_t *violation_json(const Daemon *d, const StoredViolation *v,
                              const TrackedViolation *open)
{
        const ConfigEnforcement *c = &d->config->enforcement;
        const char *user = daemon_user_name(d, v->uid);
        bool enforce = c->mode != CONFIG_ENFORCEMENT_OBSERVE && !v->ended_usec;
        uint64_t stop_at = v->term_usec ? v->term_usec : v->detected_usec + c->grace_usec;

        /* An open one is timed on the boot clock: show when that will be. */
        if (open && !v->term_usec)
                stop_at = daemon_wall_from_boot(d, open->detected_boot + c->grace_usec);

        return json_pack("{s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:I, s:o, s:o, s:o, s:o, s:o, s:o, "
                         "s:o, s:o}",
                         "id", (json_int_t)v->id, "pid", (json_int_t)v->pid, "uid",
                         (json_int_t)v->uid, "user", json_text(user),
                         "device_uuid", json_text(v->device_uuid), "gpu_uuid",
                         json_text(v->gpu_uuid), "gpu_index",
                         v->gpu_index >= 0 ? json_integer(v->gpu_index) : json_null(),
                         "memory_bytes", (json_int_t)v->memory_bytes, "command",
                         json_text(v->command), "detected_at",
                         usec_json(v->detected_usec), "warned_at", usec_json(v->warned_usec),
                         "sigterm_at", usec_json(v->term_usec), "sigkill_at",
                         usec_json(v->kill_usec), "stop_at", enforce ? usec_json(stop_at)
                                                                     : json_null(),
                         "ended_at", usec_json(v->ended_usec), "outcome",
                         v->outcome[0] ? json_string(v->outcome) : json_null());
}

json_t *enforcement_violation_json(const Daemon *d, const StoredViolation *v)
{
        const TrackedViolation *open = NULL;

        for (const TrackedViolation *t = d->enforcement.tracked; t; t = t->next)
                if (t->rec.id == v->id) {
                        open = t;
                        break;
                }
        return violation_json(d, v, open);
}

json_t *enforcement_tracked_json(const Daemon *d, const TrackedViolation *t)
{
        /* t is its own entry in the list: ids are the store's row ids, and
         * a violation the store did not record is never tracked
         * (open_violation), so no other entry has its id. */
        return violation_json(d, &t->rec, t);
}
