/* Reading /proc/<pid> for process attribution, and the per-tick cache that
 * keeps the sampler from re-reading it for processes it already knows.
 * See proc.h for the validation scheme (pidfds in an epoll set, or
 * start-time re-read). */
#include "basic/proc.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "basic/time-util.h"

/* Enough for any real stat line (comm is at most 64 bytes even for kernel
 * threads); a longer one cannot be parsed and is rejected. */
#define STAT_READ_MAX 4096
/* "Uid:" is the ninth line of status, long before the unbounded "Groups:". */
#define STATUS_READ_MAX 4096

static int errno_to_gone(int r)
{
        /* A pid directory that disappears under us yields ENOENT at openat and
         * ESRCH at read; both mean the process is gone. */
        return r == -ENOENT || r == -ESRCH ? -ESRCH : r;
}

/* Read at most size-1 bytes of dirfd/name into buf and NUL-terminate it.
 * Returns the number of bytes read or -errno. */
static ssize_t read_file_at(int dirfd, const char *name, char *buf, size_t size)
{
        _cleanup_close_ int fd = -1;
        size_t n = 0;

        assert(size > 0);
        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return errno_to_gone(negative_errno());
        while (n < size - 1) {
                ssize_t k = read(fd, buf + n, size - 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno_to_gone(negative_errno());
                }
                if (k == 0)
                        break;
                n += (size_t)k;
        }
        buf[n] = '\0';
        return (ssize_t)n;
}

int proc_open_pid_dir(int proc_root_fd, pid_t pid)
{
        char name[32];
        int fd;

        if (pid <= 0)
                return -ESRCH;
        snprintf(name, sizeof(name), "%d", (int)pid);
        fd = openat(proc_root_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno_to_gone(negative_errno());
        return fd;
}

/* A decimal field of a stat line, ending at a space, a newline or the end. */
static int parse_u64(const char *s, uint64_t *ret)
{
        unsigned long long v;
        char *end;

        if (*s < '0' || *s > '9')
                return -EBADMSG;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || (*end != ' ' && *end != '\n' && *end != '\0'))
                return -EBADMSG;
        *ret = v;
        return 0;
}

/* Parse a stat line. comm (field 2) may contain spaces and ')', so the fixed
 * fields are counted from the LAST ')'. Field 7 (tty_nr) is printed signed
 * but is a dev_t in 32 bits; -1 never occurs for it. ret_comm receives a
 * pointer into buf (NUL-terminated in place) when non-NULL. */
static int parse_stat(char *buf, ProcStat *ret, char **ret_comm)
{
        char *open = strchr(buf, '('), *close = strrchr(buf, ')');
        const char *field[23] = {};
        ProcStat st = {};
        uint64_t v;
        char *p;

        if (!open || !close || close < open)
                return -EBADMSG;
        p = close + 1;
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

        *close = '\0';
        if (ret_comm)
                *ret_comm = open + 1;
        *ret = st;
        return 0;
}

static int parse_status_uid(const char *buf, uid_t *ret_uid)
{
        const char *line = buf;

        while (line) {
                if (strncmp(line, "Uid:", 4) == 0) {
                        const char *p = line + 4;
                        char *end;
                        unsigned long v;

                        while (*p == ' ' || *p == '\t')
                                p++;
                        if (*p < '0' || *p > '9')
                                return -EBADMSG;
                        errno = 0;
                        v = strtoul(p, &end, 10);
                        if (errno != 0 || v >= (unsigned long)(uid_t)-1 ||
                            (*end != '\t' && *end != ' ' && *end != '\n' && *end != '\0'))
                                return -EBADMSG;
                        *ret_uid = (uid_t)v;
                        return 0;
                }
                line = strchr(line, '\n');
                if (line)
                        line++;
        }
        return -EBADMSG;
}

int proc_read_stat(int pid_dir_fd, ProcStat *ret)
{
        char buf[STAT_READ_MAX];
        ssize_t n;

        n = read_file_at(pid_dir_fd, "stat", buf, sizeof(buf));
        if (n < 0)
                return (int)n;
        return parse_stat(buf, ret, NULL);
}

int proc_read_uid(int pid_dir_fd, uid_t *ret)
{
        char buf[STATUS_READ_MAX];
        ssize_t n;

        n = read_file_at(pid_dir_fd, "status", buf, sizeof(buf));
        if (n < 0)
                return (int)n;
        return parse_status_uid(buf, ret);
}

/* cmdline with NULs as spaces and trailing separators trimmed; "[comm]"
 * when the process has no command line (kernel thread, zombie). */
static char *make_command(char *cmdline, size_t len, const char *comm)
{
        char *s;

        for (size_t i = 0; i < len; i++)
                if (cmdline[i] == '\0')
                        cmdline[i] = ' ';
        while (len > 0 && cmdline[len - 1] == ' ')
                len--;
        cmdline[len] = '\0';
        if (len > 0)
                return strdup(cmdline);

        s = malloc(PROC_COMMAND_MAX);
        if (!s)
                return NULL;
        snprintf(s, PROC_COMMAND_MAX, "[%s]", comm);
        return s;
}

int proc_read_info(int proc_root_fd, pid_t pid, ProcInfo *ret)
{
        _cleanup_close_ int dirfd = -1;
        char statbuf[STAT_READ_MAX], cmdline[PROC_COMMAND_MAX];
        char *comm;
        ProcStat st;
        uid_t uid;
        ssize_t n;
        char *command;
        int r;

        assert(proc_root_fd >= 0);
        assert(ret);

        dirfd = proc_open_pid_dir(proc_root_fd, pid);
        if (dirfd < 0)
                return dirfd;

        /* Read here rather than by proc_read_stat(): comm points into statbuf. */
        n = read_file_at(dirfd, "stat", statbuf, sizeof(statbuf));
        if (n < 0)
                return (int)n;
        r = parse_stat(statbuf, &st, &comm);
        if (r < 0)
                return r;

        r = proc_read_uid(dirfd, &uid);
        if (r < 0)
                return r;

        n = read_file_at(dirfd, "cmdline", cmdline, sizeof(cmdline));
        if (n < 0)
                return (int)n;
        command = make_command(cmdline, (size_t)n, comm);
        if (!command)
                return -ENOMEM;

        *ret = (ProcInfo){
                .pid = pid,
                .uid = uid,
                .start_time = st.start_time,
                .state = st.state,
                .command = command,
        };
        return 0;
}

void proc_info_done(ProcInfo *i)
{
        if (!i)
                return;
        free(i->command);
        i->command = NULL;
}

/* <proc_root_fd>/<pid>/stat alone: one read where only the start time and
 * state are wanted. */
static int read_pid_stat(int proc_root_fd, pid_t pid, ProcStat *ret)
{
        _cleanup_close_ int dirfd = -1;

        dirfd = proc_open_pid_dir(proc_root_fd, pid);
        if (dirfd < 0)
                return dirfd;
        return proc_read_stat(dirfd, ret);
}

/* Only the start time: of a live process (`live`: a zombie is -ESRCH, as
 * for validating a cached entry), or of any process (its identity). */
static int read_start_time(int proc_root_fd, pid_t pid, bool live, uint64_t *ret_start_time)
{
        ProcStat st;
        int r;

        r = read_pid_stat(proc_root_fd, pid, &st);
        if (r < 0)
                return r;
        if (live && (st.state == 'Z' || st.state == 'X'))
                return -ESRCH;
        *ret_start_time = st.start_time;
        return 0;
}

typedef struct CacheEntry {
        pid_t pid;
        ProcInfo info;
        int pidfd;          /* -1: validated by start time instead */
        uint64_t read_usec; /* CLOCK_MONOTONIC when info was read */
        uint64_t seen_tick; /* tick in which it was last looked up (and validated) */
        bool dead;          /* exited; kept only until end_tick compacts */
} CacheEntry;

struct ProcCache {
        int root_fd;
        bool use_pidfd;
        uint64_t max_age_usec;
        uint64_t tick;
        CacheEntry **entries;
        size_t n_entries;
        size_t n_allocated;
        /* Every entry's pidfd, registered with the entry's pid as data:
         * a pidfd turns readable when its process exits, so one
         * epoll_wait per tick returns exactly the exited ones, in time
         * proportional to them rather than to the whole cache. -1 where
         * pidfds are not used. */
        int epoll_fd;
        /* Open-addressing pid index: entry index + 1, 0 for an empty slot.
         * Always less than half full; rebuilt when entries move. */
        uint32_t *index;
        size_t index_size; /* power of two */
};

static size_t pid_hash(pid_t pid, size_t size)
{
        return ((uint32_t)pid * 2654435761u) & (size - 1);
}

/* Index entries[i], whose pid is not in the index yet. */
static void index_insert(ProcCache *c, size_t i)
{
        size_t h = pid_hash(c->entries[i]->pid, c->index_size);

        while (c->index[h])
                h = (h + 1) & (c->index_size - 1);
        c->index[h] = (uint32_t)(i + 1);
}

static void index_rebuild(ProcCache *c)
{
        memset(c->index, 0, c->index_size * sizeof(*c->index));
        for (size_t i = 0; i < c->n_entries; i++)
                index_insert(c, i);
}

static CacheEntry *index_find(const ProcCache *c, pid_t pid)
{
        size_t mask = c->index_size - 1;

        for (size_t h = pid_hash(pid, c->index_size); c->index[h]; h = (h + 1) & mask) {
                CacheEntry *e = c->entries[c->index[h] - 1];
                if (e->pid == pid)
                        return e;
        }
        return NULL;
}

static void entry_kill(CacheEntry *e)
{
        proc_info_done(&e->info);
        if (e->pidfd >= 0)
                close(e->pidfd);
        e->pidfd = -1;
        e->dead = true;
}

int proc_cache_new(const char *proc_root, ProcCache **ret)
{
        _cleanup_(proc_cache_freep) ProcCache *c = NULL;

        assert(proc_root);
        assert(ret);

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->root_fd = -1;
        c->epoll_fd = -1;
        c->max_age_usec = PROC_CACHE_MAX_AGE_USEC;
        /* A pidfd names a process of our own pid namespace, which only the
         * real /proc describes. */
        c->use_pidfd = strcmp(proc_root, "/proc") == 0;
        c->index_size = 16;
        c->index = calloc(c->index_size, sizeof(*c->index));
        if (!c->index)
                return -ENOMEM;
        c->root_fd = open(proc_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (c->root_fd < 0)
                return negative_errno();
        if (c->use_pidfd) {
                c->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
                /* Without an epoll set, validate by start time. */
                if (c->epoll_fd < 0)
                        c->use_pidfd = false;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

void proc_cache_free(ProcCache *c)
{
        if (!c)
                return;
        for (size_t i = 0; i < c->n_entries; i++) {
                entry_kill(c->entries[i]);
                free(c->entries[i]);
        }
        free(c->entries);
        free(c->index);
        if (c->root_fd >= 0)
                close(c->root_fd);
        if (c->epoll_fd >= 0)
                close(c->epoll_fd);
        free(c);
}

void proc_cache_set_max_age(ProcCache *c, uint64_t usec)
{
        assert(c);
        c->max_age_usec = usec;
}

size_t proc_cache_size(const ProcCache *c)
{
        assert(c);
        return c->n_entries;
}

#define EXITED_BATCH 64

void proc_cache_begin_tick(ProcCache *c)
{
        struct epoll_event ev[EXITED_BATCH];
        /* Each round closes every pidfd it returns (which takes it out of
         * the set), so this many rounds see them all; the bound only
         * guards against a set that would not drain. */
        size_t rounds = c ? c->n_entries / EXITED_BATCH + 2 : 0;
        int k;

        assert(c);
        c->tick++;
        if (!c->use_pidfd || c->n_entries == 0)
                return;

        while (rounds-- > 0) {
                do
                        k = epoll_wait(c->epoll_fd, ev, EXITED_BATCH, 0);
                while (k < 0 && errno == EINTR);
                if (k < 0) {
                        /* We cannot tell who exited: forget the pidfd
                         * entries; they are re-read on lookup. */
                        for (size_t i = 0; i < c->n_entries; i++)
                                if (c->entries[i]->pidfd >= 0)
                                        entry_kill(c->entries[i]);
                        return;
                }
                for (int i = 0; i < k; i++) {
                        CacheEntry *e = index_find(c, (pid_t)ev[i].data.u64);
                        if (e && e->pidfd >= 0)
                                entry_kill(e);
                }
                if (k < EXITED_BATCH)
                        return;
        }
}

void proc_cache_end_tick(ProcCache *c)
{
        size_t n = 0;

        assert(c);
        for (size_t i = 0; i < c->n_entries; i++) {
                CacheEntry *e = c->entries[i];
                if (e->dead || e->seen_tick != c->tick) {
                        entry_kill(e);
                        free(e);
                        continue;
                }
                c->entries[n++] = e;
        }
        /* Entries only move when some were evicted; else the index holds. */
        if (n == c->n_entries)
                return;
        c->n_entries = n;
        index_rebuild(c);
}

/* Make room for one more entry in entries and the index. */
static int cache_reserve(ProcCache *c)
{
        if (c->n_entries == c->n_allocated) {
                size_t m = MAX(c->n_allocated * 2, (size_t)16);
                CacheEntry **e = reallocarray(c->entries, m, sizeof(*e));
                if (!e)
                        return -ENOMEM;
                c->entries = e;
                c->n_allocated = m;
        }
        if ((c->n_entries + 1) * 2 > c->index_size) {
                size_t m = c->index_size * 2;
                uint32_t *idx = calloc(m, sizeof(*idx));
                if (!idx)
                        return -ENOMEM;
                free(c->index);
                c->index = idx;
                c->index_size = m;
                index_rebuild(c);
        }
        return 0;
}

/* A pidfd for pid; -ESRCH when it is gone; -1 when we must do without one. */
static int open_pidfd(pid_t pid)
{
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);

        if (fd >= 0)
                return fd;
        /* Gone is gone; anything else (ENOSYS, EPERM under seccomp, EMFILE)
         * only costs us the cheap validation: use the start time instead. */
        return errno == ESRCH ? -ESRCH : -1;
}

static bool pidfd_exited(int pidfd)
{
        struct pollfd p = { .fd = pidfd, .events = POLLIN };

        return poll(&p, 1, 0) > 0;
}

/* Read `pid` afresh, with a new pidfd where we use them. */
static int entry_fill(ProcCache *c, CacheEntry *e, pid_t pid)
{
        _cleanup_close_ int pidfd = -1;
        ProcInfo info;
        int r;

        if (c->use_pidfd) {
                pidfd = open_pidfd(pid);
                if (pidfd == -ESRCH)
                        return -ESRCH;
        }
        r = proc_read_info(c->root_fd, pid, &info);
        if (r < 0)
                return r;
        /* A zombie, or a process that exited (and whose pid may already be
         * reused) while we read its files, is not the one NVML listed. */
        if (info.state == 'Z' || info.state == 'X' || (pidfd >= 0 && pidfd_exited(pidfd))) {
                proc_info_done(&info);
                return -ESRCH;
        }
        /* A pidfd the epoll set cannot watch is no use: validate by start
         * time instead. */
        if (pidfd >= 0 &&
            epoll_ctl(c->epoll_fd, EPOLL_CTL_ADD, pidfd,
                      &(struct epoll_event){ .events = EPOLLIN, .data.u64 = (uint64_t)pid }) < 0) {
                close(pidfd);
                pidfd = -1;
        }

        *e = (CacheEntry){
                .pid = pid,
                .info = info,
                .pidfd = TAKE_FD(pidfd),
                .read_usec = now_usec(CLOCK_MONOTONIC),
                .seen_tick = c->tick,
        };
        return 0;
}

/* Bring a live cached entry up to date for this tick: confirm it is still
 * the same process and re-read it when its information is too old. */
static int entry_validate(ProcCache *c, CacheEntry *e)
{
        bool stale = now_usec(CLOCK_MONOTONIC) - e->read_usec >= c->max_age_usec;
        int r;

        if (e->pidfd < 0) {
                uint64_t start_time;

                r = read_start_time(c->root_fd, e->pid, true, &start_time);
                if (r < 0)
                        return r;
                /* Same pid, different start: the pid was recycled. */
                if (start_time != e->info.start_time)
                        stale = true;
        }
        if (stale) {
                pid_t pid = e->pid;
                CacheEntry fresh;

                r = entry_fill(c, &fresh, pid);
                if (r < 0)
                        return r;
                entry_kill(e);
                *e = fresh;
        }
        e->seen_tick = c->tick;
        return 0;
}

int proc_cache_lookup(ProcCache *c, pid_t pid, const ProcInfo **ret)
{
        CacheEntry *e;
        int r;

        assert(c);
        assert(ret);

        if (pid <= 0)
                return -ESRCH;

        e = index_find(c, pid);
        if (e && !e->dead) {
                if (e->seen_tick != c->tick) {
                        r = entry_validate(c, e);
                        if (r < 0) {
                                entry_kill(e);
                                return r;
                        }
                }
                *ret = &e->info;
                return 0;
        }

        if (e) {
                /* An exited process's slot is reused for whoever has the pid now. */
                r = entry_fill(c, e, pid);
                if (r < 0)
                        return r;
                *ret = &e->info;
                return 0;
        }

        r = cache_reserve(c);
        if (r < 0)
                return r;
        e = malloc(sizeof(*e));
        if (!e)
                return -ENOMEM;
        r = entry_fill(c, e, pid);
        if (r < 0) {
                free(e);
                return r;
        }
        c->entries[c->n_entries] = e;
        index_insert(c, c->n_entries);
        c->n_entries++;
        *ret = &e->info;
        return 0;
}

static int start_time_in_proc(pid_t pid, bool live, uint64_t *ret)
{
        _cleanup_close_ int proc_fd = -1;

        proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (proc_fd < 0)
                return negative_errno();
        return read_start_time(proc_fd, pid, live, ret);
}

int proc_start_time(pid_t pid, uint64_t *ret)
{
        return start_time_in_proc(pid, false, ret);
}

int proc_live_start_time(pid_t pid, uint64_t *ret)
{
        return start_time_in_proc(pid, true, ret);
}

int proc_cache_read_uncached(ProcCache *c, pid_t pid, ProcInfo *ret)
{
        assert(c);
        assert(ret);
        if (pid <= 0)
                return -ESRCH;
        return proc_read_info(c->root_fd, pid, ret);
}
