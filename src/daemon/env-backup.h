/* The scheduled backup of every user's conda environment specs
 * (env.backup_schedule, env.backup_keep, env.backup_dir).
 *
 * A backup reads every home on the machine, which can take seconds, so it
 * runs in a forked child; the event loop only starts it on a timer and reaps
 * it. The child writes one dated archive (env_backup) and deletes the oldest
 * beyond backup_keep (env_backup_prune). */
#pragma once

#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

typedef struct Daemon Daemon;

typedef struct EnvBackupState {
        sd_event_source *timer;
        sd_event_source *child; /* while a backup runs */
        pid_t pid;
} EnvBackupState;

/* (Re)arm the timer from the config: off, or the next backup one interval
 * after the newest archive in backup_dir, but not within 10 s from now.
 * Returns 0 or -errno. */
int env_backup_arm(Daemon *d);

void env_backup_done(EnvBackupState *s);
