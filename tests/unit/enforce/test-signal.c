/* Tests of src/enforce/signal.c with real processes.
 *
 * Children are forked and signalled for real: a matching (pid, start time,
 * uid) is signalled; a wrong start time or uid is refused and the child
 * provably lives on; as root, a child running as nobody (65534) is
 * signalled by its own uid, and a real PID reuse is staged through
 * /proc/sys/kernel/ns_last_pid: the new process on the old number is never
 * signalled. PID 1, our own pid and a kernel thread are refused. Process
 * states: a sleeping child, a zombie (exited, not reaped) and a vfork
 * parent (uninterruptible, D). Terminal notices go to a pty opened with
 * posix_openpt that a child holds as its controlling terminal, and are
 * read back on the master side: sanitised, CR LF line ends, bounded. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "basic/proc.h"
#include "enforce/signal.h"

#define NOBODY 65534

static void sleep_ms(long ms)
{
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* A child that waits to be signalled. With `uid` != (uid_t)-1 it first
 * drops to that uid; with `with_tty` it becomes a session leader whose
 * controlling terminal is that pty (in raw mode, so the master reads back
 * exactly what was written). It writes one byte to the pipe when ready. */
/* CLOCK_BOOTTIME in clock ticks, the unit of /proc/<pid>/stat start times. */
static uint64_t boot_ticks(void)
{
        struct timespec ts;
        long hz = sysconf(_SC_CLK_TCK);

        assert_int_equal(clock_gettime(CLOCK_BOOTTIME, &ts), 0);
        return (uint64_t)ts.tv_sec * (uint64_t)hz +
               (uint64_t)ts.tv_nsec / (1000000000UL / (uint64_t)hz);
}

static pid_t spawn(uid_t uid, const char *with_tty, bool no_tty)
{
        int ready[2];
        pid_t pid;
        char c;

        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                        _exit(2);
                if ((with_tty || no_tty) && setsid() < 0)
                        _exit(3);
                if (with_tty) {
                        struct termios t;
                        int fd = open(with_tty, O_RDWR | O_NOCTTY);

                        if (fd < 0 || ioctl(fd, TIOCSCTTY, 0) < 0 || tcgetattr(fd, &t) < 0)
                                _exit(4);
                        cfmakeraw(&t);
                        if (tcsetattr(fd, TCSANOW, &t) < 0)
                                _exit(5);
                }
                if (uid != (uid_t)-1 &&
                    (setresgid(NOBODY, NOBODY, NOBODY) < 0 || setresuid(uid, uid, uid) < 0))
                        _exit(6);
                if (write(ready[1], "x", 1) != 1)
                        _exit(7);
                for (;;)
                        pause();
        }
        close(ready[1]);
        assert_int_equal(read(ready[0], &c, 1), 1);
        close(ready[0]);
        return pid;
}

static uint64_t start_time_of(pid_t pid)
{
        uint64_t t = 0;

        assert_int_equal(proc_start_time(pid, &t), 0);
        return t;
}

/* Whether the child is still running: not exited, not killed. Waits for an
 * event, not for time: the child is stopped with SIGSTOP and we wait for it
 * to stop or die. A fatal signal sent before (SIGKILL, or SIGTERM, numbered
 * lower) is acted on first, so a child that was signalled reports its death
 * here, one that was not reports the stop; then it is continued. */
static bool still_alive(pid_t pid)
{
        siginfo_t si = {};

        assert_int_equal(kill(pid, SIGSTOP), 0);
        assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WSTOPPED | WNOWAIT), 0);
        if (si.si_code != CLD_STOPPED)
                return false; /* left for reap() */
        assert_int_equal(waitid(P_PID, (id_t)pid, &si, WSTOPPED), 0);
        assert_int_equal(kill(pid, SIGCONT), 0);
        return true;
}

static int reap(pid_t pid)
{
        int status;

        assert_int_equal(waitpid(pid, &status, 0), pid);
        return status;
}

static void kill_and_reap(pid_t pid)
{
        kill(pid, SIGKILL);
        reap(pid);
}

static void test_signal_child(void **state)
{
        pid_t pid = spawn((uid_t)-1, NULL, false);
        uint64_t st = start_time_of(pid);
        int status;

        assert_int_equal(enforce_signal(pid, st, getuid(), 0), 0);
        assert_true(still_alive(pid));
        assert_int_equal(enforce_signal(pid, st, getuid(), SIGTERM), 0);
        status = reap(pid);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGTERM);

        /* Gone and reaped. */
        assert_int_equal(enforce_signal(pid, st, getuid(), SIGTERM), -ESRCH);
}

static void test_stale_start_time_or_uid(void **state)
{
        pid_t pid = spawn((uid_t)-1, NULL, false);
        uint64_t st = start_time_of(pid);
        int status;

        assert_int_equal(enforce_signal(pid, st - 1, getuid(), SIGKILL), -ESTALE);
        assert_int_equal(enforce_signal(pid, st + 1, getuid(), SIGKILL), -ESTALE);
        assert_int_equal(enforce_signal(pid, st, getuid() + 1, SIGKILL), -ESTALE);
        assert_true(still_alive(pid));

        assert_int_equal(enforce_signal(pid, st, getuid(), SIGKILL), 0);
        status = reap(pid);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);
}

static void test_other_uid(void **state)
{
        pid_t pid;
        uint64_t st;
        int status;

        if (geteuid() != 0)
                skip();
        pid = spawn(NOBODY, NULL, false);
        st = start_time_of(pid);
        assert_int_equal(enforce_signal(pid, st, 0, SIGTERM), -ESTALE);
        assert_true(still_alive(pid));
        assert_int_equal(enforce_signal(pid, st, NOBODY, SIGTERM), 0);
        status = reap(pid);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGTERM);
}

/* Put the next fork on `pid` through ns_last_pid (root, initial-style PID
 * namespace). Another process may take the number first: retry a few times.
 * Returns the child, or -1 when the number could not be had. */
static pid_t spawn_on_pid(pid_t want)
{
        for (int attempt = 0; attempt < 20; attempt++) {
                pid_t pid;
                FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "we");

                if (!f)
                        return -1;
                fprintf(f, "%d", (int)want - 1);
                if (fclose(f) != 0)
                        return -1;
                pid = spawn((uid_t)-1, NULL, false);
                if (pid == want)
                        return pid;
                kill_and_reap(pid);
        }
        return -1;
}

static void test_real_pid_reuse(void **state)
{
        pid_t first, second;
        uint64_t st_first;

        if (geteuid() != 0 || access("/proc/sys/kernel/ns_last_pid", W_OK) < 0)
                skip();

        first = spawn((uid_t)-1, NULL, false);
        st_first = start_time_of(first);
        kill_and_reap(first);
        /* Start times count clock ticks (1/100 s): a number recycled within
         * the same tick would look the same. Real recycling walks through
         * pid_max first; here we wait until the boot clock has passed the
         * first one's start tick (an event, not a fixed sleep). */
        while (boot_ticks() <= st_first + 1)
                sleep_ms(1);

        second = spawn_on_pid(first);
        if (second < 0)
                skip();
        assert_int_not_equal(start_time_of(second), st_first);

        /* The signal meant for the first process must not reach the second. */
        assert_int_equal(enforce_signal(first, st_first, getuid(), SIGKILL), -ESTALE);
        assert_true(still_alive(second));
        assert_int_equal(enforce_signal(second, start_time_of(second), getuid(), SIGKILL), 0);
        assert_true(WIFSIGNALED(reap(second)));
}

static void test_refusals(void **state)
{
        uint64_t st;

        assert_int_equal(enforce_signal(1, start_time_of(1), 0, 0), -EACCES);
        assert_int_equal(enforce_signal(0, 0, 0, SIGTERM), -EACCES);
        assert_int_equal(enforce_signal(-1, 0, 0, SIGTERM), -EACCES);
        assert_int_equal(enforce_signal(-42, 0, 0, SIGTERM), -EACCES);

        /* Ourselves, with the right start time and uid: refused, not stale.
         * (Were it sent, SIGTERM would end this test binary.) */
        st = start_time_of(getpid());
        assert_int_equal(enforce_signal(getpid(), st, getuid(), SIGTERM), -EACCES);
}

/* A process whose stat flags carry PF_KTHREAD, or -1 when none is visible
 * (a PID namespace without kernel threads). */
static pid_t find_kernel_thread(void)
{
        DIR *d = opendir("/proc");
        struct dirent *de;
        pid_t found = -1;

        assert_non_null(d);
        while (found < 0 && (de = readdir(d))) {
                char path[300], buf[1024];
                unsigned long flags;
                char *p;
                FILE *f;
                int field;

                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
                f = fopen(path, "re");
                if (!f)
                        continue;
                p = fgets(buf, sizeof(buf), f);
                fclose(f);
                if (!p || !(p = strrchr(buf, ')')))
                        continue;
                /* Field 9 (flags) is the 7th after ')'. */
                for (field = 3; field <= 9 && p; field++)
                        p = strchr(p + 1, ' ');
                if (p && sscanf(p, " %lu", &flags) == 1 && (flags & 0x00200000ul))
                        found = atoi(de->d_name);
        }
        closedir(d);
        return found;
}

static void test_kernel_thread_refused(void **state)
{
        pid_t k = find_kernel_thread();
        uint64_t st;

        if (k < 0)
                skip();
        /* Signal 0 and the thread's true identity: the only possible answer
         * besides the refusal would be success, so -EACCES proves it. */
        if (proc_start_time(k, &st) < 0)
                skip();
        assert_int_equal(enforce_signal(k, st, 0, 0), -EACCES);
        assert_int_equal(enforce_signal(k, st, 0, SIGKILL), -EACCES);
}

static void test_state_sleeping_and_zombie(void **state)
{
        EnforceProcessStatus s = {.raw_state = '?'};
        pid_t pid = spawn((uid_t)-1, NULL, false), zpid;
        uint64_t st = start_time_of(pid);
        siginfo_t si = {};

        assert_int_equal(enforce_process_state(pid, st, &s), 0);
        assert_int_equal(s.state, ENFORCE_PROCESS_RUNNABLE);
        assert_true(s.raw_state == 'S' || s.raw_state == 'R');
        assert_int_equal(s.ppid, getpid());
        assert_int_equal(enforce_process_state(pid, st + 1, &s), -ESTALE);
        kill_and_reap(pid);
        assert_int_equal(enforce_process_state(pid, st, &s), -ESRCH);

        zpid = fork();
        assert_true(zpid >= 0);
        if (zpid == 0)
                _exit(0);
        st = start_time_of(zpid);
        /* Wait until it is a zombie, without reaping it. */
        assert_int_equal(waitid(P_PID, (id_t)zpid, &si, WEXITED | WNOWAIT), 0);
        assert_int_equal(enforce_process_state(zpid, st, &s), 0);
        assert_int_equal(s.state, ENFORCE_PROCESS_ZOMBIE);
        assert_int_equal(s.raw_state, 'Z');
        assert_int_equal(s.ppid, getpid());
        /* Signalling a zombie is harmless and allowed; it stays a zombie. */
        assert_int_equal(enforce_signal(zpid, st, getuid(), SIGKILL), 0);
        assert_int_equal(enforce_process_state(zpid, st, &s), 0);
        assert_int_equal(s.state, ENFORCE_PROCESS_ZOMBIE);
        reap(zpid);
        assert_int_equal(enforce_process_state(zpid, st, &s), -ESRCH);
        assert_int_equal(enforce_process_state(0, 0, &s), -ESRCH);
}

/* The body of a child that sits in D state: a vfork parent waits for its
 * child in TASK_KILLABLE, which /proc shows as D. The vfork child only
 * sleeps and exits (it dies with its parent through PDEATHSIG). */
static _Noreturn void vfork_parent(void)
{
        pid_t c = vfork();

        if (c == 0) {
                struct timespec ts = {30, 0};

                prctl(PR_SET_PDEATHSIG, SIGKILL);
                nanosleep(&ts, NULL);
                _exit(0);
        }
        _exit(0);
}

static void test_state_uninterruptible(void **state)
{
        EnforceProcessStatus s = {};
        pid_t pid = fork();
        uint64_t st;

        assert_true(pid >= 0);
        if (pid == 0)
                vfork_parent();
        st = start_time_of(pid);
        for (int i = 0; i < 200; i++) {
                assert_int_equal(enforce_process_state(pid, st, &s), 0);
                if (s.raw_state == 'D')
                        break;
                sleep_ms(10);
        }
        assert_int_equal(s.raw_state, 'D');
        assert_int_equal(s.state, ENFORCE_PROCESS_UNINTERRUPTIBLE);
        kill_and_reap(pid);
}

typedef struct Pty {
        int master;
        char slave[64];
} Pty;

static void pty_open(Pty *p)
{
        p->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        assert_true(p->master >= 0);
        assert_int_equal(grantpt(p->master), 0);
        assert_int_equal(unlockpt(p->master), 0);
        assert_int_equal(ptsname_r(p->master, p->slave, sizeof(p->slave)), 0);
}

/* Read from the master until `want` bytes arrived or 2 s passed. */
static size_t pty_read(const Pty *p, char *buf, size_t size, size_t want)
{
        size_t n = 0;

        while (n < want && n < size) {
                struct pollfd pfd = {.fd = p->master, .events = POLLIN};
                ssize_t k;

                if (poll(&pfd, 1, 2000) <= 0)
                        break;
                k = read(p->master, buf + n, size - n);
                if (k <= 0)
                        break;
                n += (size_t)k;
        }
        return n;
}

static void test_tty_message(void **state)
{
        static const char expect[] = "gpukeeper: bob, [31mstop\xef\xbf\xbdx\r\n\tnow\r\n";
        char buf[4096];
        Pty p;
        pid_t pid;
        uint64_t st;
        int r;

        pty_open(&p);
        pid = spawn((uid_t)-1, p.slave, false);
        st = start_time_of(pid);

        /* ESC, BEL, CR, DEL, a stray 0x9b (invalid UTF-8) and an encoded C1 CSI. */
        r = enforce_tty_message(pid, st,
                                "gpukeeper: bob, \x1b[31mstop\x07\r\x7f\x9b\xc2\x9bx\n\tnow\n");
        assert_int_equal(r, (int)strlen(expect));
        assert_int_equal(pty_read(&p, buf, sizeof(buf), strlen(expect)), strlen(expect));
        assert_memory_equal(buf, expect, strlen(expect));

        /* The wrong start time: nothing is written. */
        assert_int_equal(enforce_tty_message(pid, st + 1, "secret\n"), -ESTALE);
        {
                struct pollfd pfd = {.fd = p.master, .events = POLLIN};

                assert_int_equal(poll(&pfd, 1, 100), 0);
        }

        kill_and_reap(pid);
        assert_int_equal(enforce_tty_message(pid, st, "late\n"), -ESRCH);
        close(p.master);
}

static void test_tty_message_bounded(void **state)
{
        char text[6001], buf[8192];
        Pty p;
        pid_t pid;
        uint64_t st;
        int r;

        pty_open(&p);
        pid = spawn((uid_t)-1, p.slave, false);
        st = start_time_of(pid);

        /* 2000 three-byte characters: cut at a character boundary. */
        for (size_t i = 0; i < 2000; i++)
                memcpy(text + 3 * i, "\xe2\x82\xac", 3);
        text[6000] = '\0';
        r = enforce_tty_message(pid, st, text);
        assert_int_equal(r, ENFORCE_TTY_MESSAGE_MAX / 3 * 3);
        assert_int_equal(pty_read(&p, buf, sizeof(buf), (size_t)r), (size_t)r);
        assert_memory_equal(buf, text, (size_t)r);

        /* Newlines are never split from their CR. */
        memset(text, '\n', 6000);
        r = enforce_tty_message(pid, st, text);
        assert_int_equal(r, ENFORCE_TTY_MESSAGE_MAX);
        assert_int_equal(pty_read(&p, buf, sizeof(buf), (size_t)r), (size_t)r);
        for (int i = 0; i < r; i += 2)
                assert_memory_equal(buf + i, "\r\n", 2);

        kill_and_reap(pid);
        close(p.master);
}

static void test_tty_message_no_terminal(void **state)
{
        pid_t pid = spawn((uid_t)-1, NULL, true);

        assert_int_equal(enforce_tty_message(pid, start_time_of(pid), "hello\n"), -ENOTTY);
        kill_and_reap(pid);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_signal_child),
            cmocka_unit_test(test_stale_start_time_or_uid),
            cmocka_unit_test(test_other_uid),
            cmocka_unit_test(test_real_pid_reuse),
            cmocka_unit_test(test_refusals),
            cmocka_unit_test(test_kernel_thread_refused),
            cmocka_unit_test(test_state_sleeping_and_zombie),
            cmocka_unit_test(test_state_uninterruptible),
            cmocka_unit_test(test_tty_message),
            cmocka_unit_test(test_tty_message_bounded),
            cmocka_unit_test(test_tty_message_no_terminal),
        };

        return cmocka_run_group_tests_name("enforce-signal", tests, NULL, NULL);
}
