/* pidfd signalling, process state and terminal notices for enforcement.
 * The safety argument for signalling is in signal.h; the rules it refuses
 * by are the issue's: never PID 1, never kernel threads, never ourselves. */
#include "enforce/signal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/proc.h"
#include "basic/utf8.h"

/* include/linux/sched.h: "I am a kernel thread". Stable ABI since 2.6.27. */
#define PF_KTHREAD 0x00200000u
/* kthreadd, the parent of every kernel thread, in the initial PID namespace. */
#define KTHREADD_PID 2

static int gone(int r)
{
        /* A process that exits under us gives ESRCH from the pidfd calls. */
        return r == -ENOENT || r == -ESRCH ? -ESRCH : r;
}

/* /proc/<pid> in the real /proc; the stat and status read through it all
 * describe the process it named when opened. */
static int open_pid_dir(pid_t pid)
{
        _cleanup_close_ int proc_fd = -1;

        proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (proc_fd < 0)
                return negative_errno();
        return proc_open_pid_dir(proc_fd, pid);
}

/* Open /proc/<pid> and read its stat, which must show expected_start_time:
 * -ESTALE when the pid now names another process. On success the caller
 * owns *ret_dirfd. */
static int open_expected(pid_t pid, uint64_t expected_start_time, int *ret_dirfd, ProcStat *ret_st)
{
        _cleanup_close_ int dirfd = -1;
        ProcStat st;
        int r;

        dirfd = open_pid_dir(pid);
        if (dirfd < 0)
                return dirfd;
        r = proc_read_stat(dirfd, &st);
        if (r < 0)
                return r;
        if (st.start_time != expected_start_time)
                return -ESTALE;
        *ret_dirfd = TAKE_FD(dirfd);
        *ret_st = st;
        return 0;
}

/* Whether pid 2 is kthreadd: in a PID namespace it is an ordinary process,
 * and its children must not be mistaken for kernel threads. */
static bool pid2_is_kthreadd(void)
{
        _cleanup_close_ int dirfd = -1;
        ProcStat st;

        dirfd = open_pid_dir(KTHREADD_PID);
        return dirfd >= 0 && proc_read_stat(dirfd, &st) >= 0 && (st.flags & PF_KTHREAD);
}

static bool is_kernel_thread(const ProcStat *st)
{
        return (st->flags & PF_KTHREAD) || (st->ppid == KTHREADD_PID && pid2_is_kthreadd());
}

int enforce_signal(pid_t pid, uint64_t expected_start_time, uid_t expected_uid, int sig)
{
        _cleanup_close_ int pidfd = -1, dirfd = -1;
        ProcStat st;
        uid_t uid;
        int r;

        if (pid <= 1 || pid == getpid())
                return -EACCES;

        pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0)
                return gone(negative_errno());

        /* Validate only now: whatever /proc/<pid> shows from here on, the
         * pidfd already pins the process that had the number at open time. */
        r = open_expected(pid, expected_start_time, &dirfd, &st);
        if (r < 0)
                return r;
        if (is_kernel_thread(&st))
                return -EACCES;
        r = proc_read_uid(dirfd, &uid);
        if (r < 0)
                return r;
        if (uid != expected_uid)
                return -ESTALE;

        if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
                return gone(negative_errno());
        return 0;
}

int enforce_process_state(pid_t pid, uint64_t expected_start_time, EnforceProcessStatus *ret)
{
        _cleanup_close_ int dirfd = -1;
        ProcStat st;
        EnforceProcessState state;
        int r;

        assert(ret);

        if (pid <= 0)
                return -ESRCH;
        r = open_expected(pid, expected_start_time, &dirfd, &st);
        if (r < 0)
                return r;

        switch (st.state) {
        case 'X':
        case 'x':
                return -ESRCH;
        case 'Z':
                state = ENFORCE_PROCESS_ZOMBIE;
                break;
        case 'D':
                state = ENFORCE_PROCESS_UNINTERRUPTIBLE;
                break;
        default:
                state = ENFORCE_PROCESS_RUNNABLE;
        }
        *ret = (EnforceProcessStatus){.state = state, .raw_state = st.state, .ppid = st.ppid};
        return 0;
}

/* tty_nr is a dev_t squeezed into 32 bits: the kernel's new_encode_dev(). */
static dev_t tty_device(unsigned tty_nr)
{
        return makedev((tty_nr >> 8) & 0xfffu, (tty_nr & 0xffu) | ((tty_nr >> 12) & 0xfff00u));
}

/* tty_nr → the device node we may write to. Only terminals people sit at:
 * Unix98 ptys (majors 136-143, ssh/terminal emulators), virtual consoles
 * and serial lines (major 4). */
static int tty_path(unsigned tty_nr, char *buf, size_t size)
{
        unsigned maj = major(tty_device(tty_nr)), min = minor(tty_device(tty_nr));

        if (maj >= 136 && maj <= 143)
                snprintf(buf, size, "/dev/pts/%u", (maj - 136) * 256 + min);
        else if (maj == 4 && min >= 1 && min < 64)
                snprintf(buf, size, "/dev/tty%u", min);
        else if (maj == 4 && min >= 64 && min < 256)
                snprintf(buf, size, "/dev/ttyS%u", min - 64);
        else
                return -ENOTTY;
        return 0;
}

/* `text` made safe for a terminal (rules in signal.h) into out[0..max);
 * returns the length. The input is valid UTF-8 (sanitised before). */
static size_t terminal_text(const char *text, char *out, size_t max)
{
        const unsigned char *s = (const unsigned char *)text, *end = s + strlen(text);
        size_t n = 0;

        while (*s) {
                size_t len = MAX(utf8_sequence_length(s, (size_t)(end - s)), (size_t)1);

                if (*s == '\n') {
                        if (n + 2 > max)
                                break;
                        out[n++] = '\r';
                        out[n++] = '\n';
                        s++;
                        continue;
                }
                /* C0 controls (escape sequences, BEL, CR), DEL, and C1
                 * controls (U+0080-U+009F, e.g. the single-byte CSI). */
                if ((*s < 0x20 && *s != '\t') || *s == 0x7f ||
                    (*s == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f)) {
                        s += len;
                        continue;
                }
                if (n + len > max)
                        break;
                memcpy(out + n, s, len);
                n += len;
                s += len;
        }
        return n;
}

int enforce_tty_message(pid_t pid, uint64_t expected_start_time, const char *text)
{
        _cleanup_close_ int dirfd = -1, fd = -1;
        _cleanup_free_ char *clean = NULL;
        char path[64], out[ENFORCE_TTY_MESSAGE_MAX];
        ProcStat st, again;
        struct stat sb;
        size_t len, off = 0;
        int r;

        assert(text);

        if (pid <= 0)
                return -ESRCH;
        r = open_expected(pid, expected_start_time, &dirfd, &st);
        if (r < 0)
                return r;
        if (st.tty_nr == 0)
                return -ENOTTY;
        r = tty_path(st.tty_nr, path, sizeof(path));
        if (r < 0)
                return r;

        fd = open(path, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT || errno == ENXIO || errno == ELOOP ? -ENODEV
                                                                           : negative_errno();
        if (fstat(fd, &sb) < 0)
                return negative_errno();
        if (!S_ISCHR(sb.st_mode) || sb.st_rdev != tty_device(st.tty_nr))
                return -ENODEV;

        /* Still the same process on the same terminal after the open: the
         * terminal we hold is the one it had, not one handed on since. */
        r = proc_read_stat(dirfd, &again);
        if (r < 0)
                return r;
        if (again.start_time != st.start_time || again.tty_nr != st.tty_nr)
                return -ESTALE;

        clean = utf8_sanitize(text);
        if (!clean)
                return -ENOMEM;
        len = terminal_text(clean, out, sizeof(out));

        while (off < len) {
                ssize_t k = write(fd, out + off, len - off);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN && off > 0)
                                break;
                        return negative_errno();
                }
                off += (size_t)k;
        }
        return (int)off;
}
