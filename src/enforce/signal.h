/* Acting on a process found violating: signalling it without ever hitting a
 * recycled PID, telling whether it can be killed at all, and writing a
 * notice to its controlling terminal.
 *
 * A process is named by (pid, start time) as seen at detection; the start
 * time (/proc/<pid>/stat field 22) of a recycled PID is always later, so the
 * pair names one process for good. enforce_signal opens a pidfd first and
 * re-validates AFTER that: once the pidfd exists it refers to one process
 * whatever happens to the number, and if /proc/<pid> still shows the
 * expected start time then, the pidfd refers to the expected process.
 *
 * Everything here reads the real /proc and never logs (the daemon logs and
 * audits with context). */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/* Bytes written to a terminal at most, after sanitising and line-ending
 * conversion; longer text is cut at a character boundary. */
#define ENFORCE_TTY_MESSAGE_MAX 2048

/* Send `sig` (0 probes) to process `pid` if it is still the process
 * (expected_start_time, expected_uid) seen at detection: pidfd_open,
 * re-read stat start time and status real uid, pidfd_send_signal.
 * Returns 0 when sent;
 *   -EACCES  refused by gpukeeper's rules: pid ≤ 1, a kernel thread, or
 *            this process itself (nothing is sent);
 *   -ESTALE  the pid now names another process, or the uid changed
 *            (nothing is sent);
 *   -ESRCH   the process is gone;
 *   -EPERM   the kernel denied the signal (the caller lacks privilege);
 *   -ENOSYS  no pidfd support (Linux < 5.3, or seccomp): nothing is sent,
 *            since without a pidfd there is no safe way;
 *   other -errno from reading /proc. */
int enforce_signal(pid_t pid, uint64_t expected_start_time, uid_t expected_uid, int sig);

typedef enum EnforceProcessState {
        ENFORCE_PROCESS_RUNNABLE,        /* running, sleeping, stopped: signals take effect */
        ENFORCE_PROCESS_ZOMBIE,          /* exited, not reaped: only its parent can end it */
        ENFORCE_PROCESS_UNINTERRUPTIBLE, /* D state: ignores signals until the wait ends */
} EnforceProcessState;

typedef struct EnforceProcessStatus {
        EnforceProcessState state;
        char raw_state; /* stat field 3 as read: R, S, D, Z, T, t, ... */
        pid_t ppid;     /* the parent, to name in a zombie report */
} EnforceProcessStatus;

/* State of process (pid, expected_start_time), for reporting one that still
 * holds GPU memory after SIGKILL. Returns 0; -ESRCH when gone (including
 * state X, dead); -ESTALE when the pid names another process; -EBADMSG when
 * stat cannot be parsed; other -errno from reading. */
int enforce_process_state(pid_t pid, uint64_t expected_start_time, EnforceProcessStatus *ret);

/* Write `text` to the controlling terminal of process (pid,
 * expected_start_time): tty_nr (stat field 7) → /dev/pts/N (majors
 * 136-143) or /dev/ttyN, /dev/ttySN (major 4), opened with O_NOFOLLOW,
 * O_NOCTTY and O_NONBLOCK and written only when fstat shows that very
 * character device. Bytes that are not valid UTF-8 become U+FFFD, control
 * characters (C0 except newline and tab, DEL, C1) are dropped, newlines
 * become CR LF (right on a terminal in raw mode too), and at most
 * ENFORCE_TTY_MESSAGE_MAX bytes are written. Never blocks: a terminal whose
 * output is stopped gets what fits. Returns the number of bytes written;
 * -ENOTTY when the process has no terminal of those kinds; -ENODEV when
 * the device node is not that terminal; -ESTALE, -ESRCH as above; -EAGAIN
 * when nothing could be written; -ENOMEM; other -errno. */
int enforce_tty_message(pid_t pid, uint64_t expected_start_time, const char *text);
