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
#include "basic/utf8.h"

/* include/linux/sched.h: "I am a kernel thread". Stable ABI since 2.6.27. */
#define PF_KTHREAD 0x00200000u
/* kthreadd, the parent of every kernel thread, in the initial PID namespace. */
#define KTHREADD_PID 2

/* A stat line is well under this (comm is at most 64 bytes); status's "Uid:"
 * is its ninth line, long before the unbounded "Groups:". */
#define STAT_READ_MAX 4096
#define STATUS_READ_MAX 4096

typedef struct ProcStat {
        char state;
        pid_t ppid;
        unsigned tty_nr;
        unsigned flags;
        uint64_t start_time;
} ProcStat;

static int gone(int r)
{
        /* A /proc/<pid> that vanishes under us gives ENOENT at open and ESRCH at read. */
        return r == -ENOENT || r == -ESRCH ? -ESRCH : r;
}

static int open_pid_dir(pid_t pid)
{
        char path[32];
        int fd;

        snprintf(path, sizeof(path), "/proc/%d", (int)pid);
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        return fd < 0 ? gone(negative_errno()) : fd;
}

/* Read at most size-1 bytes of dirfd/name, NUL-terminated. */
static int read_small(int dirfd, const char *name, char *buf, size_t size)
{
        _cleanup_close_ int fd = -1;
        size_t n = 0;

        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return gone(negative_errno());
        while (n < size - 1) {
                ssize_t k = read(fd, buf + n, size - 1 - n);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return gone(negative_errno());
                }
                if (k == 0)
                        break;
                n += (size_t)k;
        }
        buf[n] = '\0';
        return 0;
}

static int parse_u64(const char *s, uint64_t *ret)
{
        char *end;
        unsigned long long v;

        if (*s < '0' || *s > '9')
                return -EBADMSG;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || (*end != ' ' && *end != '\n' && *end != '\0'))
                return -EBADMSG;
        *ret = v;
        return 0;
}

/* Fields are counted from the LAST ')' because comm (field 2) may contain
 * spaces and parentheses. Field 7 (tty_nr) is printed signed but is a
 * dev_t in 32 bits; -1 never occurs for it. */
static int read_stat(int dirfd, ProcStat *ret)
{
        char buf[STAT_READ_MAX];
        const char *field[23] = {};
        char *p;
        uint64_t v;
        ProcStat st = {};
        int r;

        r = read_small(dirfd, "stat", buf, sizeof(buf));
        if (r < 0)
                return r;
        p = strrchr(buf, ')');
        if (!p)
                return -EBADMSG;
        p++;
        for (int i = 3; i <= 22; i++) {
                while (*p == ' ')
                        p++;
                if (*p == '\0' || *p == '\n')
                        return -EBADMSG;
                field[i] = p;
                while (*p && *p != ' ' && *p != '\n')
                        p++;
        }

        st.state = field[3][0];
        if (parse_u64(field[4], &v) < 0 || v > INT32_MAX)
                return -EBADMSG;
        st.ppid = (pid_t)v;
        if (parse_u64(field[7], &v) < 0 || v > UINT32_MAX)
                return -EBADMSG;
        st.tty_nr = (unsigned)v;
        if (parse_u64(field[9], &v) < 0 || v > UINT32_MAX)
                return -EBADMSG;
        st.flags = (unsigned)v;
        if (parse_u64(field[22], &st.start_time) < 0)
                return -EBADMSG;
        *ret = st;
        return 0;
}

static int read_uid(int dirfd, uid_t *ret)
{
        char buf[STATUS_READ_MAX];
        const char *line;
        int r;

        r = read_small(dirfd, "status", buf, sizeof(buf));
        if (r < 0)
                return r;
        for (line = buf; line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
                const char *p = line + 4;
                char *end;
                unsigned long v;

                if (strncmp(line, "Uid:", 4) != 0)
                        continue;
                while (*p == ' ' || *p == '\t')
                        p++;
                if (*p < '0' || *p > '9')
                        return -EBADMSG;
                errno = 0;
                v = strtoul(p, &end, 10);
                if (errno != 0 || v >= (unsigned long)(uid_t)-1 || (*end != '\t' && *end != ' '))
                        return -EBADMSG;
                *ret = (uid_t)v;
                return 0;
        }
        return -EBADMSG;
}

/* Whether pid 2 is kthreadd: in a PID namespace it is an ordinary process,
 * and its children must not be mistaken for kernel threads. */
static bool pid2_is_kthreadd(void)
{
        _cleanup_close_ int dirfd = -1;
        ProcStat st;

        dirfd = open_pid_dir(KTHREADD_PID);
        return dirfd >= 0 && read_stat(dirfd, &st) >= 0 && (st.flags & PF_KTHREAD);
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
        dirfd = open_pid_dir(pid);
        if (dirfd < 0)
                return dirfd;
        r = read_stat(dirfd, &st);
        if (r < 0)
                return r;
        if (st.start_time != expected_start_time)
                return -ESTALE;
        if (is_kernel_thread(&st))
                return -EACCES;
        r = read_uid(dirfd, &uid);
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
        dirfd = open_pid_dir(pid);
        if (dirfd < 0)
                return dirfd;
        r = read_stat(dirfd, &st);
        if (r < 0)
                return r;
        if (st.start_time != expected_start_time)
                return -ESTALE;

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

static size_t utf8_sequence_length(unsigned char c)
{
        return c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
}

/* `text` made safe for a terminal (rules in signal.h) into out[0..max);
 * returns the length. The input is valid UTF-8 (sanitised before), so the
 * lead byte tells each sequence's length. */
static size_t terminal_text(const char *text, char *out, size_t max)
{
        const unsigned char *s = (const unsigned char *)text;
        size_t n = 0;

        while (*s) {
                size_t len = utf8_sequence_length(*s);

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
        dirfd = open_pid_dir(pid);
        if (dirfd < 0)
                return dirfd;
        r = read_stat(dirfd, &st);
        if (r < 0)
                return r;
        if (st.start_time != expected_start_time)
                return -ESTALE;
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
        r = read_stat(dirfd, &again);
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
