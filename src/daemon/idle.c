/* Idle reclaim; see idle.h. */
#include "daemon/idle.h"

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/log.h"
#include "basic/parse.h"
#include "basic/time-util.h"
#include "daemon/daemon.h"
#include "enforce/signal.h"

/* The idle time of a lease reaches the store at least this often. */
#define IDLE_SAVE_INTERVAL_USEC (60 * USEC_PER_SEC)
/* Terminals of one user told about one event, at most. */
#define IDLE_MAX_TERMINALS 16

/* tty_nr (field 7) and start time (field 22) from /proc/<pid>/stat. */
static int read_tty_and_start(int proc_fd, const char *pid, unsigned *ret_tty,
                              uint64_t *ret_start)
{
        char path[300], buf[1024], *p;
        _cleanup_close_ int fd = -1;
        unsigned long long start;
        ssize_t n;
        int tty;

        snprintf(path, sizeof path, "%s/stat", pid);
        fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        n = read(fd, buf, sizeof buf - 1);
        if (n <= 0)
                return -EIO;
        buf[n] = '\0';
        p = strrchr(buf, ')'); /* comm may contain anything, even ')' */
        if (!p || sscanf(p + 2,
                         "%*c %*d %*d %*d %d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
                         "%*d %llu",
                         &tty, &start) != 2)
                return -EIO;
        *ret_tty = (unsigned)tty;
        *ret_start = start;
        return 0;
}

/* Write `text` once to each terminal where `uid` has a process (its ssh
 * and tmux sessions). Best effort: no terminal, no message. */
void idle_tell_user_terminals(uid_t uid, const char *text)
{
        _cleanup_close_ int proc_fd = -1;
        unsigned seen[IDLE_MAX_TERMINALS];
        size_t n_seen = 0;
        struct dirent *de;
        DIR *dir;

        proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (proc_fd < 0)
                return;
        dir = fdopendir(dup(proc_fd));
        if (!dir)
                return;
        while ((de = readdir(dir)) && n_seen < IDLE_MAX_TERMINALS) {
                struct stat st;
                uint64_t start;
                unsigned tty;
                bool known = false;

                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                if (fstatat(proc_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    st.st_uid != uid)
                        continue;
                if (read_tty_and_start(proc_fd, de->d_name, &tty, &start) < 0 || tty == 0)
                        continue;
                for (size_t i = 0; i < n_seen; i++)
                        known = known || seen[i] == tty;
                if (known)
                        continue;
                if (enforce_tty_message((pid_t)atoi(de->d_name), start, text) >= 0)
                        seen[n_seen++] = tty;
        }
        closedir(dir);
}

static void lease_key(const Lease *l, const char *what, char *buf, size_t len)
{
        snprintf(buf, len, "%s:lease:%" PRId64, what, l->rec.id);
}

/* Carry out one decision. Returns false when the lease was released. */
static bool act(Daemon *d, Lease *l, PolicyIdleAction action, uint64_t now)
{
        const ConfigIdle *c = &d->config->idle;
        uint64_t idle_for = policy_idle_for(&l->idle, now);
        char key[64], text[512], idle_s[FORMAT_DURATION_MAX], in_s[FORMAT_DURATION_MAX];
        const char *user = daemon_user_text(d, l->rec.uid);

        /* Messages say "45s", "12m", "2h": never "0 min" of 45 seconds. Alert
         * texts have plain newlines (no CR: webhooks and email carry them
         * as they are); idle_tell_user_terminals turns them into CR LF. */
        (void)format_duration_short(idle_s, sizeof idle_s, idle_for);
        switch (action) {
        case POLICY_IDLE_NONE:
                return true;
        case POLICY_IDLE_WARN:
                (void)format_duration_short(in_s, sizeof in_s, c->warn_before_usec);
                snprintf(text, sizeof text,
                         "\ngpukeeper: lease %" PRId64 " of %s (%s) has been idle for %s; it will "
                         "be released in %s unless its GPUs are used. Release it yourself with "
                         "'gpukeeper lease release %" PRId64 "'.\n",
                         l->rec.id, user, l->rec.devices[0].uuid, idle_s, in_s, l->rec.id);
                l->idle.warned_usec = now;
                log_info("Lease %" PRId64 " idle for %" PRIu64 " s: warned.", l->rec.id,
                         idle_for / USEC_PER_SEC);
                lease_key(l, "idle_warning", key, sizeof key);
                (void)store_audit(d->store, -1, "lease.idle_warning", key, NULL);
                idle_tell_user_terminals(l->rec.uid, text);
                daemon_alert(d, CONFIG_ALERT_IDLE_WARNING, key, "idle lease will be released",
                             text + 1, json_pack("{s:o}", "lease", lease_to_json(d, l)));
                return true;
        case POLICY_IDLE_WARN_CLEAR:
                l->idle.warned_usec = 0;
                lease_key(l, "idle_warning", key, sizeof key);
                snprintf(text, sizeof text, "lease %" PRId64 " of %s is in use again", l->rec.id,
                         user);
                if (d->alerts)
                        (void)alerts_clear(d->alerts, CONFIG_ALERT_IDLE_WARNING, key, text);
                return true;
        case POLICY_IDLE_RELEASE:
                snprintf(text, sizeof text,
                         "gpukeeper: lease %" PRId64 " of %s was idle for %s and has been "
                         "released.",
                         l->rec.id, user, idle_s);
                lease_key(l, "idle_reclaim", key, sizeof key);
                daemon_alert(d, CONFIG_ALERT_IDLE_RECLAIM, key, "idle lease released", text,
                             json_pack("{s:o}", "lease", lease_to_json(d, l)));
                idle_tell_user_terminals(l->rec.uid, text);
                leases_end(d, l, false, "idle", -1);
                return false;
        case POLICY_IDLE_FLAG:
                l->idle.flagged = true;
                snprintf(text, sizeof text,
                         "gpukeeper: the command of run lease %" PRId64 " of %s has kept its "
                         "GPUs at 0%% utilisation for %s%s.",
                         l->rec.id, user, idle_s,
                         c->stop_idle_runs ? "; it is being stopped" : "");
                log_info("%s", text);
                lease_key(l, "idle_flag", key, sizeof key);
                (void)store_audit(d->store, -1, "lease.idle_flag", key, NULL);
                daemon_alert(d, CONFIG_ALERT_IDLE_FLAG, key, "run lease idle", text,
                             json_pack("{s:o}", "lease", lease_to_json(d, l)));
                /* `gpukeeper run` forwards SIGTERM to its command and releases. */
                if (c->stop_idle_runs && l->rec.client_pid > 0)
                        (void)enforce_signal(l->rec.client_pid, l->rec.client_start_time,
                                             l->rec.uid, SIGTERM);
                return true;
        case POLICY_IDLE_FLAG_CLEAR:
                l->idle.flagged = false;
                lease_key(l, "idle_flag", key, sizeof key);
                snprintf(text, sizeof text, "run lease %" PRId64 " of %s uses its GPUs again",
                         l->rec.id, user);
                if (d->alerts)
                        (void)alerts_clear(d->alerts, CONFIG_ALERT_IDLE_FLAG, key, text);
                return true;
        }
        return true;
}

bool idle_tick(Daemon *d)
{
        const ConfigIdle *c = &d->config->idle;
        const PolicyIdleConfig pc = {
                .release_after_usec = c->release_after_usec,
                .warn_before_usec = c->warn_before_usec,
                .flag_after_usec = c->flag_after_usec,
        };
        /* The boot clock: a wall-clock step must neither count an hour of
         * idleness nor wrap a negative interval (daemon.h DaemonClock). */
        uint64_t now = daemon_boot(d);
        uint64_t elapsed = d->idle_tick_usec && now > d->idle_tick_usec ? now - d->idle_tick_usec
                                                                        : 0;
        uint64_t max_elapsed = 2 * d->config->sample_interval_usec + USEC_PER_SEC;

        bool released = false;

        d->idle_tick_usec = now;
        if (!d->snapshot || !d->snapshot->nvml_available)
                return false;
        for (Lease *l = d->leases.leases, *next; l; l = next) {
                const char *uuids[LEASE_MAX_DEVICES];
                uint64_t idle_usec[LEASE_MAX_DEVICES] = {};
                size_t n = MIN(l->rec.n_devices, (size_t)LEASE_MAX_DEVICES);

                next = l->next;
                for (size_t i = 0; i < n; i++)
                        uuids[i] = l->rec.devices[i].uuid;
                policy_idle_note(&l->idle, policy_idle_activity(d->snapshot, uuids, n), now);
                l->rec.idle_device_usec += policy_idle_account(d->snapshot, uuids, n, elapsed,
                                                               max_elapsed, idle_usec);
                if (!act(d, l, policy_idle_decide(&l->idle, &pc, now), now)) {
                        released = true;
                        continue;
                }
                if (now - l->idle_saved_usec >= IDLE_SAVE_INTERVAL_USEC &&
                    store_lease_set_idle(d->store, l->rec.id, l->rec.idle_device_usec) >= 0)
                        l->idle_saved_usec = now;
        }
        return released;
}
