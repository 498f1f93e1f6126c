/* Tests of src/basic/proc.c: parsing /proc/<pid> files from a fake proc
 * root written into a temporary directory (comm with spaces and ')',
 * empty and over-long cmdlines, malformed files, zombies), the cache's
 * validation by start time (stale entries kept, recycled PIDs noticed,
 * age-based re-reads, eviction), and the pidfd path against the real /proc
 * with a forked child that is then killed. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "basic/proc.h"

typedef struct {
        char root[PATH_MAX - 128];
        int root_fd;
} FakeProc;

static void write_file(const char *path, const char *data, size_t len)
{
        FILE *f = fopen(path, "we");

        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
}

/* A fake /proc/<pid> with the given comm, state, start time, uid and raw cmdline. */
static void fake_pid(FakeProc *fp, int pid, const char *comm, char state, unsigned long long start,
                     unsigned uid, const char *cmdline, size_t cmdline_len)
{
        char path[PATH_MAX], buf[1024];

        snprintf(path, sizeof(path), "%s/%d", fp->root, pid);
        assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);

        /* Fields 4..21 are placeholders; 22 is the start time. */
        snprintf(buf, sizeof(buf),
                 "%d (%s) %c 1 %d %d 0 -1 4194560 100 0 0 0 5 6 0 0 20 0 1 0 %llu 1000 10 "
                 "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n",
                 pid, comm, state, pid, pid, start);
        snprintf(path, sizeof(path), "%s/%d/stat", fp->root, pid);
        write_file(path, buf, strlen(buf));

        snprintf(buf, sizeof(buf),
                 "Name:\t%s\nUmask:\t0022\nState:\t%c (sleeping)\nTgid:\t%d\nNgid:\t0\nPid:\t%d\n"
                 "PPid:\t1\nTracerPid:\t0\nUid:\t%u\t%u\t%u\t%u\nGid:\t100\t100\t100\t100\n",
                 comm, state, pid, pid, uid, uid + 1, uid + 2, uid + 3);
        snprintf(path, sizeof(path), "%s/%d/status", fp->root, pid);
        write_file(path, buf, strlen(buf));

        snprintf(path, sizeof(path), "%s/%d/cmdline", fp->root, pid);
        write_file(path, cmdline, cmdline_len);
}

static void remove_pid(FakeProc *fp, int pid)
{
        static const char *const files[] = { "stat", "status", "cmdline" };
        char path[PATH_MAX];

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                snprintf(path, sizeof(path), "%s/%d/%s", fp->root, pid, files[i]);
                unlink(path);
        }
        snprintf(path, sizeof(path), "%s/%d", fp->root, pid);
        assert_int_equal(rmdir(path), 0);
}

static int setup_fake(void **state)
{
        FakeProc *fp = calloc(1, sizeof(*fp));
        const char *tmp = getenv("TMPDIR");

        if (!fp)
                return -1;
        snprintf(fp->root, sizeof(fp->root), "%s/test-proc-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(fp->root)) {
                free(fp);
                return -1;
        }
        fp->root_fd = open(fp->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fp->root_fd < 0) {
                free(fp);
                return -1;
        }
        *state = fp;
        return 0;
}

static int teardown_fake(void **state)
{
        FakeProc *fp = *state;
        char path[PATH_MAX];

        /* Tests use pids 100..199 only. */
        for (int pid = 100; pid < 200; pid++) {
                snprintf(path, sizeof(path), "%s/%d", fp->root, pid);
                if (access(path, F_OK) == 0)
                        remove_pid(fp, pid);
        }
        close(fp->root_fd);
        rmdir(fp->root);
        free(fp);
        return 0;
}

#define CMDLINE(s) s, sizeof(s) - 1

static void test_read_info(void **state)
{
        FakeProc *fp = *state;
        ProcInfo info;

        fake_pid(fp, 100, "python3", 'S', 123456, 1001, CMDLINE("python\0train.py\0--lr\0\0"));
        assert_int_equal(proc_read_info(fp->root_fd, 100, &info), 0);
        assert_int_equal(info.pid, 100);
        assert_int_equal(info.uid, 1001);
        assert_int_equal(info.start_time, 123456);
        assert_int_equal(info.state, 'S');
        assert_string_equal(info.command, "python train.py --lr");
        proc_info_done(&info);
        assert_null(info.command);
        proc_info_done(NULL);
}

/* comm may hold spaces and ')' (a process can name itself anything): the
 * fixed fields must be counted from the last ')'. An empty cmdline (kernel
 * thread, zombie) gives "[comm]". */
static void test_read_info_hostile_comm(void **state)
{
        FakeProc *fp = *state;
        ProcInfo info;

        fake_pid(fp, 101, ") 1 2 (x) R", 'D', 987654321, 0, "", 0);
        assert_int_equal(proc_read_info(fp->root_fd, 101, &info), 0);
        assert_int_equal(info.state, 'D');
        assert_int_equal(info.start_time, 987654321);
        assert_int_equal(info.uid, 0);
        assert_string_equal(info.command, "[) 1 2 (x) R]");
        proc_info_done(&info);
}

static void test_read_info_long_cmdline(void **state)
{
        FakeProc *fp = *state;
        char cmdline[3000];
        ProcInfo info;

        memset(cmdline, 'a', sizeof(cmdline));
        fake_pid(fp, 102, "long", 'S', 5, 1000, cmdline, sizeof(cmdline));
        assert_int_equal(proc_read_info(fp->root_fd, 102, &info), 0);
        assert_int_equal(strlen(info.command), PROC_COMMAND_MAX - 1);
        proc_info_done(&info);
}

static void test_read_info_errors(void **state)
{
        FakeProc *fp = *state;
        ProcInfo info = { .pid = -7 };
        char path[PATH_MAX];

        assert_int_equal(proc_read_info(fp->root_fd, 199, &info), -ESRCH);
        assert_int_equal(proc_read_info(fp->root_fd, 0, &info), -ESRCH);
        assert_int_equal(proc_read_info(fp->root_fd, -5, &info), -ESRCH);

        /* A stat line cut short before field 22. */
        fake_pid(fp, 103, "short", 'S', 5, 1000, CMDLINE("x\0"));
        snprintf(path, sizeof(path), "%s/103/stat", fp->root);
        write_file(path, "103 (short) S 1 2 3\n", strlen("103 (short) S 1 2 3\n"));
        assert_int_equal(proc_read_info(fp->root_fd, 103, &info), -EBADMSG);

        /* No Uid line. */
        fake_pid(fp, 104, "nouid", 'S', 5, 1000, CMDLINE("x\0"));
        snprintf(path, sizeof(path), "%s/104/status", fp->root);
        write_file(path, "Name:\tnouid\n", strlen("Name:\tnouid\n"));
        assert_int_equal(proc_read_info(fp->root_fd, 104, &info), -EBADMSG);

        /* The pid directory exists but the process is gone mid-read. */
        fake_pid(fp, 105, "gone", 'S', 5, 1000, CMDLINE("x\0"));
        snprintf(path, sizeof(path), "%s/105/cmdline", fp->root);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(proc_read_info(fp->root_fd, 105, &info), -ESRCH);

        /* Untouched on failure. */
        assert_int_equal(info.pid, -7);
}

static ProcCache *fake_cache(FakeProc *fp)
{
        ProcCache *c = NULL;

        assert_int_equal(proc_cache_new(fp->root, &c), 0);
        assert_non_null(c);
        return c;
}

/* A known process is not re-read while its start time is unchanged... */
static void test_cache_keeps_entry(void **state)
{
        FakeProc *fp = *state;
        _cleanup_(proc_cache_freep) ProcCache *c = fake_cache(fp);
        const ProcInfo *info;

        fake_pid(fp, 110, "train", 'S', 1000, 1001, CMDLINE("python\0a.py\0"));
        proc_cache_begin_tick(c);
        assert_int_equal(proc_cache_lookup(c, 110, &info), 0);
        assert_int_equal(info->uid, 1001);
        proc_cache_end_tick(c);

        /* Same start time: a changed status/cmdline is not looked at. */
        fake_pid(fp, 110, "train", 'S', 1000, 2002, CMDLINE("python\0b.py\0"));
        proc_cache_begin_tick(c);
        assert_int_equal(proc_cache_lookup(c, 110, &info), 0);
        assert_int_equal(info->uid, 1001);
        assert_string_equal(info->command, "python a.py");
        proc_cache_end_tick(c);

        /* ...until it is older than the maximum age (exec, setuid). */
        proc_cache_set_max_age(c, 0);
        proc_cache_begin_tick(c);
        assert_int_equal(proc_cache_lookup(c, 110, &info), 0);
        assert_int_equal(info->uid, 2002);
        assert_string_equal(info->command, "python b.py");
        proc_cache_end_tick(c);
        assert_int_equal(proc_cache_size(c), 1);
}

/* A different start time under the same pid is a different process. */
static void test_cache_recycled_pid(void **state)
{
        FakeProc *fp = *state;
        _cleanup_(proc_cache_freep) ProcCache *c = fake_cache(fp);
        const ProcInfo *info;

        fake_pid(fp, 111, "old", 'S', 1000, 1001, CMDLINE("old\0"));
        proc_cache_begin_tick(c);
        assert_int_equal(proc_cache_lookup(c, 111, &info), 0);
        assert_string_equal(info->command, "old");
        proc_cache_end_tick(c);

        remove_pid(fp, 111);
        fake_pid(fp, 111, "new", 'R', 2000, 1002, CMDLINE("new\0"));
        proc_cache_begin_tick(c);
        assert_int_equal(proc_cache_lookup(c, 111, &info), 0);
        assert_int_equal(info->start_time, 2000);
        assert_int_equal(info->uid, 1002);
        assert_string_equal(info->command, "new");
        proc_cache_end_tick(c);
}

static void test_cache_vanished_and_zombie(void **state)
{
        FakeProc *fp = *state;
        _cleanup_(proc_cache_freep) ProcCache *c = fake_cache(fp);
        const ProcInfo *info;

        fake_pid(fp, 112, "a", 'S', 1000, 1001, CMDLINE("a\0"));
        fake_pid(fp, 113, "b", 'Z', 1000, 1001, "", 0);
        proc_cache_begin_tick(c);
        assert_int_equal(proc_cache_lookup(c, 112, &info), 0);
        assert_int_equal(proc_cache_lookup(c, 113, &info), -ESRCH);
        assert_int_equal(proc_cache_lookup(c, 114, &info), -ESRCH);
        assert_int_equal(proc_cache_lookup(c, 0, &info), -ESRCH);
        proc_cache_end_tick(c);
        assert_int_equal(proc_cache_size(c), 1);

        /* It exits: the cached entry must not outlive it. */
        remove_pid(fp, 112);
        proc_cache_begin_tick(c);
        assert_int_equal(proc_cache_lookup(c, 112, &info), -ESRCH);
        proc_cache_end_tick(c);
        assert_int_equal(proc_cache_size(c), 0);

        /* A cached process that became a zombie is gone too. */
        fake_pid(fp, 112, "a", 'S', 3000, 1001, CMDLINE("a\0"));
        proc_cache_begin_tick(c);
        assert_int_equal(proc_cache_lookup(c, 112, &info), 0);
        proc_cache_end_tick(c);
        fake_pid(fp, 112, "a", 'Z', 3000, 1001, "", 0);
        proc_cache_begin_tick(c);
        assert_int_equal(proc_cache_lookup(c, 112, &info), -ESRCH);
        proc_cache_end_tick(c);
        assert_int_equal(proc_cache_size(c), 0);
}

/* Entries not looked up in a tick are evicted at its end; a second lookup
 * in the same tick is served from the cache, with the same pointer. Many
 * pids exercise index growth. */
static void test_cache_eviction(void **state)
{
        FakeProc *fp = *state;
        _cleanup_(proc_cache_freep) ProcCache *c = fake_cache(fp);
        const ProcInfo *info, *again;

        for (int pid = 120; pid < 180; pid++)
                fake_pid(fp, pid, "w", 'S', (unsigned long long)pid * 10, 1000 + (unsigned)pid,
                         CMDLINE("w\0"));
        proc_cache_begin_tick(c);
        for (int pid = 120; pid < 180; pid++) {
                assert_int_equal(proc_cache_lookup(c, pid, &info), 0);
                assert_int_equal(info->uid, 1000 + pid);
        }
        proc_cache_end_tick(c);
        assert_int_equal(proc_cache_size(c), 60);

        proc_cache_begin_tick(c);
        for (int pid = 120; pid < 180; pid += 2) {
                assert_int_equal(proc_cache_lookup(c, pid, &info), 0);
                assert_int_equal(proc_cache_lookup(c, pid, &again), 0);
                assert_ptr_equal(info, again);
                assert_int_equal(info->start_time, (uint64_t)pid * 10);
        }
        proc_cache_end_tick(c);
        assert_int_equal(proc_cache_size(c), 30);

        proc_cache_begin_tick(c);
        for (int pid = 121; pid < 180; pid += 2)
                assert_int_equal(proc_cache_lookup(c, pid, &info), 0);
        for (int pid = 120; pid < 180; pid += 2)
                assert_int_equal(proc_cache_lookup(c, pid, &info), 0);
        proc_cache_end_tick(c);
        assert_int_equal(proc_cache_size(c), 60);
}

static void test_cache_new_errors(void **state)
{
        ProcCache *c = NULL;

        assert_int_equal(proc_cache_new("/nonexistent-proc-root", &c), -ENOENT);
        assert_null(c);
        proc_cache_free(NULL);
}

/* Read our own /proc/self/cmdline the way ProcInfo renders it. */
static void own_command(char *buf, size_t size)
{
        int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
        ssize_t n;

        assert_true(fd >= 0);
        n = read(fd, buf, size - 1);
        assert_true(n > 0);
        close(fd);
        for (ssize_t i = 0; i < n; i++)
                if (buf[i] == '\0')
                        buf[i] = ' ';
        while (n > 0 && buf[n - 1] == ' ')
                n--;
        buf[n] = '\0';
}

/* The real /proc: a live child is found and stays cached while its pidfd
 * is quiet; once killed (a zombie until reaped) the next tick drops it. */
static void test_cache_real_proc(void **state)
{
        _cleanup_(proc_cache_freep) ProcCache *c = NULL;
        const ProcInfo *info, *again;
        char expect[PROC_COMMAND_MAX];
        int status;
        pid_t child;

        own_command(expect, sizeof(expect));
        assert_int_equal(proc_cache_new("/proc", &c), 0);

        child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                /* Never outlive a failed test. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                for (;;)
                        pause();
        }

        proc_cache_begin_tick(c);
        assert_int_equal(proc_cache_lookup(c, child, &info), 0);
        assert_int_equal(info->pid, child);
        assert_int_equal(info->uid, getuid());
        assert_true(info->start_time > 0);
        assert_string_equal(info->command, expect);
        proc_cache_end_tick(c);

        proc_cache_begin_tick(c);
        assert_int_equal(proc_cache_lookup(c, child, &again), 0);
        assert_ptr_equal(info, again);
        proc_cache_end_tick(c);
        assert_int_equal(proc_cache_size(c), 1);

        assert_int_equal(kill(child, SIGKILL), 0);
        /* Wait until it is a zombie without reaping it, so /proc/<pid> is
         * still there: only the pidfd (or the Z state) tells it exited. */
        assert_int_equal(waitid(P_PID, (id_t)child, &(siginfo_t){ 0 }, WEXITED | WNOWAIT), 0);

        proc_cache_begin_tick(c);
        assert_int_equal(proc_cache_lookup(c, child, &info), -ESRCH);
        proc_cache_end_tick(c);
        assert_int_equal(proc_cache_size(c), 0);

        assert_int_equal(waitpid(child, &status, 0), child);
        proc_cache_begin_tick(c);
        assert_int_equal(proc_cache_lookup(c, child, &info), -ESRCH);
        proc_cache_end_tick(c);

        /* Ourselves, through the same cache. */
        proc_cache_begin_tick(c);
        assert_int_equal(proc_cache_lookup(c, getpid(), &info), 0);
        assert_string_equal(info->command, expect);
        proc_cache_end_tick(c);
        assert_int_equal(proc_cache_size(c), 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_read_info, setup_fake, teardown_fake),
                cmocka_unit_test_setup_teardown(test_read_info_hostile_comm, setup_fake,
                                                teardown_fake),
                cmocka_unit_test_setup_teardown(test_read_info_long_cmdline, setup_fake,
                                                teardown_fake),
                cmocka_unit_test_setup_teardown(test_read_info_errors, setup_fake, teardown_fake),
                cmocka_unit_test_setup_teardown(test_cache_keeps_entry, setup_fake, teardown_fake),
                cmocka_unit_test_setup_teardown(test_cache_recycled_pid, setup_fake,
                                                teardown_fake),
                cmocka_unit_test_setup_teardown(test_cache_vanished_and_zombie, setup_fake,
                                                teardown_fake),
                cmocka_unit_test_setup_teardown(test_cache_eviction, setup_fake, teardown_fake),
                cmocka_unit_test(test_cache_new_errors),
                cmocka_unit_test(test_cache_real_proc),
        };

        return cmocka_run_group_tests_name("test-proc", tests, NULL, NULL);
}
