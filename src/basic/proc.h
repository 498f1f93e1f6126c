/* What gpukeeper needs to know about a process it saw on a GPU: owner, start
 * time (to tell a recycled PID from the original) and command line, read
 * from a replaceable proc root so tests can feed a fake /proc (as earlyoom
 * does).
 *
 * ProcCache keeps that information across sampler ticks, so a process that
 * is already known costs no /proc read per tick. With the real "/proc" every
 * cached process holds one pidfd (so the cost is one file descriptor per GPU
 * process), registered in one epoll set; a readable pidfd means the process
 * exited, so begin_tick's one epoll_wait returns exactly the processes that
 * exited (its cost grows with them, not with the cache), and a recycled PID
 * can never be mistaken for the cached one. Where pidfd_open is unavailable (old kernel, seccomp,
 * EMFILE) and for any other proc root, an entry is validated by re-reading
 * its start time once per tick instead. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "basic/macro.h"

/* Bytes of a command line we keep, including the terminating NUL. */
#define PROC_COMMAND_MAX 1024

/* Re-read a cached entry's status and cmdline after this long, so exec()
 * and setuid() are noticed even though the process stays the same. */
#define PROC_CACHE_MAX_AGE_USEC (30 * UINT64_C(1000000))

typedef struct ProcInfo {
        pid_t pid;
        uid_t uid;           /* real uid: first field of "Uid:" in status */
        uint64_t start_time; /* stat field 22, clock ticks since boot */
        char state;          /* stat field 3: R, S, D, Z, ... */
        char *command;       /* cmdline with NULs as spaces; "[comm]" when cmdline is empty */
} ProcInfo;

/* Read <proc_root_fd>/<pid>/{stat,status,cmdline}. Returns 0, -ESRCH when the
 * process does not exist (any more), -EBADMSG when a file cannot be parsed,
 * -ENOMEM, or another -errno from reading. *ret is untouched on failure. */
int proc_read_info(int proc_root_fd, pid_t pid, ProcInfo *ret);

/* Free what proc_read_info allocated; leaves the struct reusable. */
void proc_info_done(ProcInfo *i);

/* Start time (field 22 of /proc/<pid>/stat, clock ticks since boot) of a
 * process in the real /proc: with the pid, it names one process for good,
 * since a recycled pid gets a later start time. A zombie (exited, not yet
 * reaped by its parent) still has one: this is the process's identity.
 * -ESRCH when there is no such process. */
int proc_start_time(pid_t pid, uint64_t *ret);

/* The same, of a process that still runs: -ESRCH also for a zombie. Where
 * the question is "is that process alive" (a run lease's client, a
 * violating process that may have left its GPU), an exited process whose
 * parent has not reaped it yet must not count. */
int proc_live_start_time(pid_t pid, uint64_t *ret);

/* The fields of /proc/<pid>/stat that gpukeeper uses. */
typedef struct ProcStat {
        char state;          /* field 3: R, S, D, Z, ... */
        pid_t ppid;          /* field 4 */
        unsigned tty_nr;     /* field 7: the controlling terminal, a dev_t in 32 bits; 0 for none */
        unsigned flags;      /* field 9: PF_* of include/linux/sched.h */
        uint64_t start_time; /* field 22, clock ticks since boot */
} ProcStat;

/* Open <proc_root_fd>/<pid> as a directory (O_NOFOLLOW), so that the files
 * read through it below all describe the one process it names even if the
 * pid is recycled meanwhile (they then fail with -ESRCH). Returns the fd,
 * -ESRCH when the process does not exist, or another -errno. */
int proc_open_pid_dir(int proc_root_fd, pid_t pid);

/* Read and parse <pid_dir_fd>/stat now. Returns 0, -ESRCH when the process
 * is gone, -EBADMSG when the line cannot be parsed, or another -errno;
 * *ret is untouched on failure. */
int proc_read_stat(int pid_dir_fd, ProcStat *ret);

/* The real uid (first field of "Uid:") from <pid_dir_fd>/status, read now.
 * Returns as proc_read_stat(). */
int proc_read_uid(int pid_dir_fd, uid_t *ret);

typedef struct ProcCache ProcCache;

/* A cache over `proc_root` ("/proc" in the daemon, a temp dir in tests).
 * Returns 0, -ENOMEM, or the -errno of opening proc_root. */
int proc_cache_new(const char *proc_root, ProcCache **ret);

void proc_cache_free(ProcCache *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(ProcCache *, proc_cache_free);

/* Override PROC_CACHE_MAX_AGE_USEC (0: re-read every tick). */
void proc_cache_set_max_age(ProcCache *c, uint64_t usec);

/* Start a tick: one epoll_wait over the pidfds drops entries whose process exited. */
void proc_cache_begin_tick(ProcCache *c);

/* Information on `pid`, read now or validated from the cache. The pointer
 * stays valid until the next proc_cache_begin_tick / proc_cache_end_tick.
 * Returns 0; -ESRCH when the process is gone (or has exited and is a
 * zombie); other -errno from proc_read_info. */
int proc_cache_lookup(ProcCache *c, pid_t pid, const ProcInfo **ret);

/* For a pid proc_cache_lookup calls gone: read it now, uncached, from the
 * cache's proc root, so a zombie (state Z, which NVML may keep listing with
 * its GPU memory) is told from a process that is really gone. Returns 0
 * with *ret filled (free with proc_info_done) or -ESRCH and the like as
 * proc_read_info. */
int proc_cache_read_uncached(ProcCache *c, pid_t pid, ProcInfo *ret);

/* End a tick: evict every pid that was not looked up since begin_tick. */
void proc_cache_end_tick(ProcCache *c);

/* Number of cached processes (after end_tick: those seen in the last tick). */
size_t proc_cache_size(const ProcCache *c);
