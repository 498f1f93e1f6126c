/* The scheduled backup of every user's conda environment specs
 * (env.backup_schedule, env.backup_keep, env.backup_dir).
 *
 * A backup reads every home on the machine, which can take seconds, so it
 * runs in a process of its own (the daemon exec'd again as a job, below);
 * the event loop only starts it on a timer and reaps it. The job writes one
 * dated archive (env_backup) and deletes the oldest beyond backup_keep
 * (env_backup_prune).
 *
 * The same file runs the daily trash sweep (env.trash_retention): once a day
 * (first 10 s after the start) a job lists every user's trash and removes,
 * as that user, the entries trashed longer ago than the retention; what
 * went is audited per user (env.trash_emptied) when the job ends. */
#pragma once

#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>
#include <jansson.h>

typedef struct Daemon Daemon;

typedef struct EnvBackupState {
        sd_event_source *timer;
        sd_event_source *child; /* while a backup runs */
        pid_t pid;
        /* The trash sweep: a CLOCK_BOOTTIME timer for daemon_boot() deadline
         * trash_next_boot (0: not yet set), its child and the pipe the child
         * reports on. */
        sd_event_source *trash_timer;
        sd_event_source *trash_child;
        pid_t trash_pid;
        int trash_pipe;
        uint64_t trash_next_boot;
} EnvBackupState;

/* (Re)arm the timer from the config: off, or the next backup one interval
 * after the newest archive in backup_dir, but not within 10 s from now.
 * Returns 0 or -errno. */
int env_backup_arm(Daemon *d);

/* (Re)arm the trash sweep: off when env.trash_retention is off, else at its
 * deadline on the daemon's boot clock (so the test clock's advance brings it
 * forward). Called by env_backup_arm and after the test clock moves.
 * Returns 0 or -errno. */
int env_trash_arm(Daemon *d);

/* `env.config` (any user): the env section the CLI's env commands need,
 * {"templates_dir", "conda_exe", "trash_retention_sec"} (0: off), so that
 * `gpukeeper env` uses the daemon's configuration and not a default of its
 * own (issue 17 item 8). A RequestHandler (daemon/request.h). */
typedef struct RequestCall RequestCall;
typedef struct gk_call_error gk_call_error;
int env_op_config(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                  gk_call_error *ret_error);

void env_backup_done(EnvBackupState *s);

/* The two jobs run in a process of their own: the daemon forks and execs
 * itself (/proc/self/exe) with --env-backup-job or --env-trash-job
 * (main.c), so that they start single-threaded instead of as a copy of the
 * daemon. Each returns the process's exit status. */

/* The descriptor the trash sweep writes its report to. */
#define JOB_FD 3

/* Back up every user's environment specs into backup_dir (created 0700),
 * then keep the newest `keep` archives. */
int env_backup_job_main(const char *backup_dir, unsigned keep);

/* Remove, as each user, the trash entries trashed at or before `cutoff`
 * (µs since the epoch); report what went to `fd` (audited by the daemon). */
int env_trash_job_main(int fd, uint64_t cutoff);
