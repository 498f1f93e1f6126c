/* Scheduled conda environment backups; see env-backup.h. */
#include "daemon/env-backup.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/log.h"
#include "basic/time-util.h"
#include "daemon/daemon.h"
#include "env/env.h"
#include "daemon/request.h"
#include "proto/json-text.h"

#define ARCHIVE_PREFIX "gpukeeper-envs-"
/* Not in the first seconds after a start (the daemon has just restarted,
 * maybe in a crash loop), but soon when a backup is overdue. */
#define ENV_BACKUP_FIRST_DELAY_USEC (10 * USEC_PER_SEC)

void env_backup_done(EnvBackupState *s)
{
        sd_event_source_disable_unref(s->timer);
        sd_event_source_disable_unref(s->child);
        sd_event_source_disable_unref(s->trash_timer);
        sd_event_source_disable_unref(s->trash_child);
        if (s->trash_pipe > 0)
                close(s->trash_pipe);
        *s = (EnvBackupState){};
}

/* mtime of the newest archive in dir, 0 when none. */
static uint64_t newest_archive_usec(const char *dir)
{
        uint64_t newest = 0;
        struct dirent *de;
        DIR *d = opendir(dir);

        if (!d)
                return 0;
        while ((de = readdir(d))) {
                struct stat st;

                if (strncmp(de->d_name, ARCHIVE_PREFIX, strlen(ARCHIVE_PREFIX)) != 0 ||
                    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISREG(st.st_mode))
                        continue;
                newest = MAX(newest, (uint64_t)st.st_mtim.tv_sec * USEC_PER_SEC);
        }
        closedir(d);
        return newest;
}

int env_backup_job_main(const char *backup_dir, unsigned keep)
{
        EnvUser *users = NULL;
        EnvOptions options = {};
        char *path = NULL;
        size_t n = 0;
        int r;

        if (mkdir(backup_dir, 0700) < 0 && errno != EEXIST) {
                log_error_errno(errno, "Environment backup: cannot create %s", backup_dir);
                return EXIT_FAILURE;
        }
        r = env_users_all(&users, &n);
        if (r >= 0)
                r = env_backup(users, n, backup_dir, &options, now_usec(CLOCK_REALTIME), &path);
        if (r < 0) {
                log_error_errno(r, "Environment backup failed");
                return EXIT_FAILURE;
        }
        log_info("Environment backup of %zu users written to %s.", n, path);
        r = env_backup_prune(backup_dir, keep);
        if (r > 0)
                log_info("Environment backup: deleted %d old archives.", r);
        env_users_free(users, n);
        free(path);
        return EXIT_SUCCESS;
}

/* In the child of fork(): become a fresh gpukeeperd running one job
 * (main.c: --env-backup-job, --env-trash-job), with default signals (so
 * systemctl stop ends it too) and none of the daemon's descriptors (client
 * connections must close when the daemon closes them) but `keep_fd`, which
 * becomes descriptor 3 (-1: none). A forked copy of the daemon would run
 * NSS, malloc and libarchive in a process whose other threads (the
 * resolver, the sampler) vanished at fork() with their locks held: an NSS
 * lookup or an allocation there can wait for ever (seen under ASan: the
 * backup child stuck in getpwent's module load). */
_Noreturn static void exec_job(char *const argv[], int keep_fd)
{
        static const char failed[] = "gpukeeperd: cannot start the job process\n";
        sigset_t none;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        if (keep_fd >= 0) {
                if (keep_fd == JOB_FD)
                        (void)fcntl(JOB_FD, F_SETFD, 0);
                else if (dup2(keep_fd, JOB_FD) < 0)
                        _exit(EXIT_FAILURE);
                close_range(JOB_FD + 1, ~0U, 0);
        } else
                close_range(JOB_FD, ~0U, 0);
        execv("/proc/self/exe", argv);
        (void)!write(STDERR_FILENO, failed, sizeof failed - 1);
        _exit(127);
}

/* Start the job `gpukeeperd FLAG [PATH] NUMBER` (exec_job): its pid, or
 * -errno when fork() failed. The argument vector is made before fork():
 * between fork() and exec the child of this multi-threaded daemon may only
 * make async-signal-safe calls. */
static pid_t start_job(const char *flag, const char *path, uint64_t number, int keep_fd)
{
        char num[32], *argv[5] = {(char *)"gpukeeperd", (char *)flag};
        size_t n = 2;
        pid_t pid;

        snprintf(num, sizeof num, "%" PRIu64, number);
        if (path)
                argv[n++] = (char *)path;
        argv[n++] = num;
        argv[n] = NULL;
        fflush(NULL);
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                exec_job(argv, keep_fd);
        return pid;
}

static int on_backup_exit(sd_event_source *s, const siginfo_t *si, void *userdata)
{
        Daemon *d = userdata;
        bool ok = si->si_code == CLD_EXITED && si->si_status == 0;

        if (!ok)
                log_warning("Environment backup child ended with %s %d.",
                            si->si_code == CLD_EXITED ? "status" : "signal", si->si_status);
        (void)store_audit(d->store, -1, ok ? "env.backup" : "env.backup_failed",
                          d->config->env.backup_dir, NULL);
        d->env_backup.child = sd_event_source_disable_unref(d->env_backup.child);
        d->env_backup.pid = 0;
        return env_backup_arm(d);
}

static int on_backup_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Daemon *d = userdata;
        pid_t pid;
        int r;

        if (d->env_backup.pid > 0)
                return 0; /* the last one still runs; it re-arms when done */
        pid = start_job("--env-backup-job", d->config->env.backup_dir,
                        (uint64_t)d->config->env.backup_keep, -1);
        if (pid < 0)
                return log_error_errno((int)pid, "Cannot start the environment backup");
        d->env_backup.pid = pid;
        r = sd_event_add_child(d->event, &d->env_backup.child, pid, WEXITED, on_backup_exit, d);
        if (r < 0) {
                log_error_errno(r, "Cannot watch the environment backup; stopping it");
                kill(pid, SIGKILL);
                (void)waitpid(pid, NULL, 0);
                d->env_backup.pid = 0;
                return env_backup_arm(d);
        }
        return 0;
}

int env_backup_arm(Daemon *d)
{
        const ConfigEnv *c = &d->config->env;
        uint64_t now = now_usec(CLOCK_REALTIME), next, newest;

        if (c->backup_interval_usec == 0) {
                if (d->env_backup.timer) {
                        int r = sd_event_source_set_enabled(d->env_backup.timer, SD_EVENT_OFF);
                        if (r < 0)
                                return r;
                }
                return env_trash_arm(d);
        }
        newest = newest_archive_usec(c->backup_dir);
        next = MAX(newest + c->backup_interval_usec, now + ENV_BACKUP_FIRST_DELAY_USEC);
        if (!d->env_backup.timer) {
                int r = sd_event_add_time(d->event, &d->env_backup.timer, CLOCK_REALTIME, next,
                                          USEC_PER_SEC, on_backup_timer, d);
                if (r < 0)
                        return r;
                return env_trash_arm(d);
        }
        (void)sd_event_source_set_time(d->env_backup.timer, next);
        int r = sd_event_source_set_enabled(d->env_backup.timer, SD_EVENT_ONESHOT);
        if (r < 0)
                return r;
        return env_trash_arm(d);
}

/* ---- the daily trash sweep (env.trash_retention) ---- */

/* What the sweep child reports is bounded so that it always fits the pipe
 * (the parent reads it when the child has ended). */
#define TRASH_REPORT_MAX 16384
#define ENV_TRASH_SWEEP_INTERVAL_USEC USEC_PER_DAY

/* One user's sweep: the entries trashed at or before `cutoff` go. Appends
 * "uid<TAB>entries<TAB>bytes<TAB>id id ...\n" to the report when any went. */
static void sweep_user(const EnvUser *u, uint64_t cutoff, char *report, size_t *len)
{
        EnvTrashEntry *e = NULL;
        EnvOptions o = {};
        size_t n = 0, n_old = 0;
        uint64_t bytes = 0;
        char **ids;
        int r;

        if (env_trash_list(u, &o, &e, &n) < 0 || n == 0) {
                env_trash_entries_free(e, n);
                return;
        }
        ids = calloc(n + 1, sizeof(char *));
        if (!ids) {
                env_trash_entries_free(e, n);
                return;
        }
        for (size_t i = 0; i < n; i++)
                if (e[i].trashed_usec <= cutoff) {
                        ids[n_old++] = e[i].id;
                        bytes += e[i].size_bytes;
                }
        r = env_trash_remove(u, ids, n_old, &o);
        if (r < 0)
                log_warning_errno(r, "Trash sweep: cannot empty all of %s's %zu old entries", u->name,
                                  n_old);
        else if (n_old > 0)
                log_info("Trash sweep: removed %zu entries of %s's trash (%" PRIu64 " bytes).",
                         n_old, u->name, bytes);
        if (n_old > 0 && *len < TRASH_REPORT_MAX - 512) {
                int k = snprintf(report + *len, TRASH_REPORT_MAX - *len, "%u\t%zu\t%" PRIu64 "\t%d\t",
                                 (unsigned)u->uid, n_old, bytes, r < 0 ? -r : 0);
                if (k > 0 && (size_t)k < TRASH_REPORT_MAX - *len)
                        *len += (size_t)k;
                for (size_t i = 0; i < n_old && *len < TRASH_REPORT_MAX - 300; i++) {
                        k = snprintf(report + *len, TRASH_REPORT_MAX - *len, "%s%s", i ? " " : "",
                                     ids[i]);
                        if (k > 0 && (size_t)k < TRASH_REPORT_MAX - *len)
                                *len += (size_t)k;
                }
                report[(*len)++] = '\n';
        }
        free(ids);
        env_trash_entries_free(e, n);
}

int env_trash_job_main(int fd, uint64_t cutoff)
{
        static char report[TRASH_REPORT_MAX + 1];
        EnvUser *users = NULL;
        size_t n = 0, len = 0;

        if (env_users_all(&users, &n) < 0) {
                log_error("Trash sweep: cannot list the users of this system.");
                return EXIT_FAILURE;
        }
        for (size_t i = 0; i < n; i++)
                sweep_user(&users[i], cutoff, report, &len);
        env_users_free(users, n);
        if (len > 0 && write(fd, report, len) < 0)
                return EXIT_FAILURE;
        return EXIT_SUCCESS;
}

/* Audit what the child reported: one env.trash_emptied record per user. */
static void audit_trash_report(Daemon *d, char *text)
{
        char *save = NULL;

        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                unsigned uid, err;
                size_t count;
                uint64_t bytes;
                int off = 0;
                _cleanup_free_ char *subject = NULL, *detail = NULL;
                json_t *j;

                if (sscanf(line, "%u\t%zu\t%" SCNu64 "\t%u\t%n", &uid, &count, &bytes, &err, &off) != 4)
                        continue;
                if (asprintf(&subject, "%zu trash entr%s", count, count == 1 ? "y" : "ies") < 0)
                        continue;
                j = json_pack("{s:I, s:I, s:o, s:s*}", "entries", (json_int_t)count, "bytes",
                              (json_int_t)bytes, "ids", json_text(line + off), "error",
                              err ? strerror((int)err) : NULL);
                detail = j ? json_dumps(j, JSON_COMPACT) : NULL;
                json_decref(j);
                (void)store_audit(d->store, uid, err ? "env.trash_empty_failed" : "env.trash_emptied",
                                  subject, detail);
        }
}

static int on_trash_exit(sd_event_source *s, const siginfo_t *si, void *userdata)
{
        Daemon *d = userdata;
        EnvBackupState *st = &d->env_backup;
        char buf[TRASH_REPORT_MAX + 1];
        size_t len = 0;

        if (si->si_code != CLD_EXITED || si->si_status != 0)
                log_warning("Trash sweep child ended with %s %d.",
                            si->si_code == CLD_EXITED ? "status" : "signal", si->si_status);
        for (;;) {
                ssize_t k = read(st->trash_pipe, buf + len, TRASH_REPORT_MAX - len);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                len += (size_t)k;
                if (len >= TRASH_REPORT_MAX)
                        break;
        }
        buf[len] = '\0';
        close(st->trash_pipe);
        st->trash_pipe = -1;
        audit_trash_report(d, buf);
        st->trash_child = sd_event_source_disable_unref(st->trash_child);
        st->trash_pid = 0;
        return env_trash_arm(d);
}

static int on_trash_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Daemon *d = userdata;
        EnvBackupState *st = &d->env_backup;
        uint64_t wall = daemon_wall(d), retention = d->config->env.trash_retention_usec;
        int fds[2], r;
        pid_t pid;

        st->trash_next_boot = daemon_boot(d) + ENV_TRASH_SWEEP_INTERVAL_USEC;
        if (st->trash_pid > 0 || retention == 0)
                return env_trash_arm(d);
        if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
                log_error_errno(errno, "Cannot start the trash sweep");
                return env_trash_arm(d);
        }
        pid = start_job("--env-trash-job", NULL, wall > retention ? wall - retention : 0, fds[1]);
        if (pid < 0) {
                log_error_errno((int)pid, "Cannot start the trash sweep");
                close(fds[0]);
                close(fds[1]);
                return env_trash_arm(d);
        }
        close(fds[1]);
        st->trash_pipe = fds[0];
        st->trash_pid = pid;
        r = sd_event_add_child(d->event, &st->trash_child, pid, WEXITED, on_trash_exit, d);
        if (r < 0) {
                log_error_errno(r, "Cannot watch the trash sweep; stopping it");
                kill(pid, SIGKILL);
                (void)waitpid(pid, NULL, 0);
                close(st->trash_pipe);
                st->trash_pipe = -1;
                st->trash_pid = 0;
        }
        return env_trash_arm(d);
}

int env_trash_arm(Daemon *d)
{
        EnvBackupState *st = &d->env_backup;
        uint64_t when;

        if (d->config->env.trash_retention_usec == 0) {
                if (st->trash_timer)
                        return sd_event_source_set_enabled(st->trash_timer, SD_EVENT_OFF);
                return 0;
        }
        if (st->trash_next_boot == 0)
                st->trash_next_boot = daemon_boot(d) + ENV_BACKUP_FIRST_DELAY_USEC;
        when = daemon_timer_usec(d, st->trash_next_boot);
        if (!st->trash_timer)
                return sd_event_add_time(d->event, &st->trash_timer, CLOCK_BOOTTIME, when,
                                         USEC_PER_SEC, on_trash_timer, d);
        (void)sd_event_source_set_time(st->trash_timer, when);
        return sd_event_source_set_enabled(st->trash_timer, SD_EVENT_ONESHOT);
}

int env_op_config(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                  gk_call_error *ret_error)
{
        const ConfigEnv *c = &d->config->env;

        if (args && json_object_size(args) > 0)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "this operation takes no arguments");
        *ret_result = json_pack("{s:o, s:o, s:I}", "templates_dir", json_text(c->templates_dir),
                                "conda_exe", json_text(c->conda_exe), "trash_retention_sec",
                                (json_int_t)(c->trash_retention_usec / USEC_PER_SEC));
        return *ret_result ? 0 : -ENOMEM;
}
