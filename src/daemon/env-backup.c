/* Scheduled conda environment backups; see env-backup.h. */
#include "daemon/env-backup.h"

#include <dirent.h>
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

#define ARCHIVE_PREFIX "gpukeeper-envs-"
/* Not in the first seconds after a start (the daemon has just restarted,
 * maybe in a crash loop), but soon when a backup is overdue. */
#define ENV_BACKUP_FIRST_DELAY_USEC (10 * USEC_PER_SEC)

void env_backup_done(EnvBackupState *s)
{
        sd_event_source_disable_unref(s->timer);
        sd_event_source_disable_unref(s->child);
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

/* The child: back up every user, prune, report through the exit status. */
_Noreturn static void backup_child(const ConfigEnv *c)
{
        EnvUser *users = NULL;
        EnvOptions options = {};
        char *path = NULL;
        sigset_t none;
        size_t n = 0;
        int r;

        /* Not the daemon any more: default signals (so systemctl stop ends
         * us too), and none of its descriptors (client connections must
         * close when the daemon closes them). */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        close_range(3, ~0U, 0);

        if (mkdir(c->backup_dir, 0700) < 0 && errno != EEXIST) {
                log_error_errno(errno, "Environment backup: cannot create %s", c->backup_dir);
                _exit(EXIT_FAILURE);
        }
        r = env_users_all(&users, &n);
        if (r >= 0)
                r = env_backup(users, n, c->backup_dir, &options, now_usec(CLOCK_REALTIME),
                               &path);
        if (r < 0) {
                log_error_errno(r, "Environment backup failed");
                _exit(EXIT_FAILURE);
        }
        log_info("Environment backup of %zu users written to %s.", n, path);
        r = env_backup_prune(c->backup_dir, (unsigned)c->backup_keep);
        if (r > 0)
                log_info("Environment backup: deleted %d old archives.", r);
        _exit(EXIT_SUCCESS);
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
        pid = fork();
        if (pid < 0)
                return log_error_errno(errno, "Cannot start the environment backup");
        if (pid == 0)
                backup_child(&d->config->env);
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
                if (d->env_backup.timer)
                        return sd_event_source_set_enabled(d->env_backup.timer, SD_EVENT_OFF);
                return 0;
        }
        newest = newest_archive_usec(c->backup_dir);
        next = MAX(newest + c->backup_interval_usec, now + ENV_BACKUP_FIRST_DELAY_USEC);
        if (!d->env_backup.timer)
                return sd_event_add_time(d->event, &d->env_backup.timer, CLOCK_REALTIME, next,
                                         USEC_PER_SEC, on_backup_timer, d);
        (void)sd_event_source_set_time(d->env_backup.timer, next);
        return sd_event_source_set_enabled(d->env_backup.timer, SD_EVENT_ONESHOT);
}
