/* Idle reclaim: leases that hold GPUs without using them.
 *
 * After every sampler tick: a manual lease whose devices showed no process
 * and no utilisation for idle.release_after is released, its holder warned
 * idle.warn_before earlier (alert and a message on the holder's terminals);
 * a run lease at 0 % utilisation for idle.flag_after is flagged (status,
 * alert) and, only if idle.stop_idle_runs says so, its command is stopped.
 * The idle device time of every lease is accounted for the usage reports.
 * The decisions are policy/idle.c's (pure); this module carries them out. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

typedef struct Daemon Daemon;

/* Returns true when a lease was released: the caller serves the queue. */
bool idle_tick(Daemon *d);

/* Write `text` once to each terminal where `uid` has a process (its ssh and
 * tmux sessions); newlines become CR LF. Best effort: no terminal, no
 * message. Used for idle and expiry warnings and admin releases. */
void idle_tell_user_terminals(uid_t uid, const char *text);
