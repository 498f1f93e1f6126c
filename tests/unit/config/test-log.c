/* Unit tests for src/basic/log.c: lines held back while a request is
 * answered (log_hold/log_release) come out after it, in order, with one
 * write; warnings and errors are never held and never overtake what is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pty.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/log.h"

/* stderr goes to a temporary file for each test; read_log() returns what
 * was written to it so far (caller frees). */
typedef struct Capture {
        int fd, saved;
} Capture;

static int setup(void **state)
{
        char path[] = "/tmp/test-log-XXXXXX";
        Capture *c = calloc(1, sizeof *c);

        assert_non_null(c);
        c->fd = mkstemp(path);
        assert_true(c->fd >= 0);
        unlink(path);
        fflush(stderr);
        c->saved = dup(STDERR_FILENO);
        assert_true(c->saved >= 0);
        assert_true(dup2(c->fd, STDERR_FILENO) >= 0);
        log_set_max_level(LOG_LEVEL_DEBUG);
        *state = c;
        return 0;
}

static int teardown(void **state)
{
        Capture *c = *state;

        fflush(stderr);
        dup2(c->saved, STDERR_FILENO);
        close(c->saved);
        close(c->fd);
        free(c);
        log_set_max_level(LOG_LEVEL_INFO);
        return 0;
}

static char *read_log(const Capture *c)
{
        struct stat st;
        char *buf;

        assert_int_equal(fstat(c->fd, &st), 0);
        buf = calloc(1, (size_t)st.st_size + 1);
        assert_non_null(buf);
        assert_int_equal(pread(c->fd, buf, (size_t)st.st_size, 0), st.st_size);
        return buf;
}

static void assert_log(const Capture *c, const char *want)
{
        char *got = read_log(c);

        assert_string_equal(got, want);
        free(got);
}

static void test_unheld_lines_are_written_at_once(void **state)
{
        Capture *c = *state;

        log_info("one %d", 1);
        assert_log(c, "<6>one 1\n");
        assert_int_equal(log_error_errno(-ENOENT, "two"), -ENOENT);
        assert_log(c, "<6>one 1\n<3>two: No such file or directory\n");
        log_debug("three");
        assert_log(c, "<6>one 1\n<3>two: No such file or directory\n<7>three\n");
}

static void test_held_lines_come_out_at_release(void **state)
{
        Capture *c = *state;

        log_hold();
        log_info("granted");
        log_debug("detail");
        assert_log(c, "");
        log_release();
        assert_log(c, "<6>granted\n<7>detail\n");
        /* Nothing is held any more. */
        log_info("after");
        assert_log(c, "<6>granted\n<7>detail\n<6>after\n");
}

static void test_holds_nest(void **state)
{
        Capture *c = *state;

        log_hold();
        log_info("a");
        log_hold();
        log_info("b");
        log_release();
        assert_log(c, "");
        log_release();
        assert_log(c, "<6>a\n<6>b\n");
        /* A release without a hold changes nothing. */
        log_release();
        log_info("c");
        assert_log(c, "<6>a\n<6>b\n<6>c\n");
}

static void test_warning_writes_what_is_held_first(void **state)
{
        Capture *c = *state;

        log_hold();
        log_info("before");
        log_warning("careful");
        assert_log(c, "<6>before\n<4>careful\n");
        log_info("after");
        assert_log(c, "<6>before\n<4>careful\n");
        log_error("bad");
        assert_log(c, "<6>before\n<4>careful\n<6>after\n<3>bad\n");
        log_release();
        assert_log(c, "<6>before\n<4>careful\n<6>after\n<3>bad\n");
}

static void test_lines_above_the_level_are_not_held(void **state)
{
        Capture *c = *state;

        log_set_max_level(LOG_LEVEL_INFO);
        log_hold();
        log_debug("hidden");
        log_info("shown");
        log_release();
        assert_log(c, "<6>shown\n");
}

/* More than the buffer holds: what is held goes out before the line that
 * does not fit, and every line comes out whole and in order. */
static void test_full_buffer_is_written_in_order(void **state)
{
        Capture *c = *state;
        char want[4 * LOG_HOLD_MAX], line[64], *got;
        size_t len = 0, n_lines = 2 * LOG_HOLD_MAX / 20;

        log_hold();
        for (size_t i = 0; i < n_lines; i++) {
                int n = snprintf(line, sizeof line, "<6>line %05zu of the test\n", i);

                log_info("line %05zu of the test", i);
                assert_true(len + (size_t)n < sizeof want);
                memcpy(want + len, line, (size_t)n + 1);
                len += (size_t)n;
        }
        got = read_log(c);
        /* Some went out already (the buffer filled), the rest is held. */
        assert_true(strlen(got) > 0);
        assert_true(strlen(got) < len);
        assert_int_equal(strncmp(got, want, strlen(got)), 0);
        assert_int_equal(got[strlen(got) - 1], '\n');
        free(got);
        log_release();
        assert_log(c, want);
}

/* A line longer than the formatting buffer is cut but still one line. */
static void test_long_line_is_cut_and_ended(void **state)
{
        Capture *c = *state;
        char *big = malloc(8000), *got;

        assert_non_null(big);
        memset(big, 'x', 7999);
        big[7999] = '\0';
        log_hold();
        log_info("%s", big);
        log_release();
        got = read_log(c);
        assert_true(strlen(got) > 2000);
        assert_true(strlen(got) < 7999);
        assert_memory_equal(got, "<6>xxx", 6);
        assert_int_equal(got[strlen(got) - 1], '\n');
        assert_ptr_equal(strchr(got, '\n'), got + strlen(got) - 1);
        free(got);
        free(big);
}

static void *log_from_thread(void *userdata)
{
        (void)userdata;
        log_info("from another thread");
        return NULL;
}

/* A hold is the thread's own: another thread's lines are written at once. */
static void test_hold_is_per_thread(void **state)
{
        Capture *c = *state;
        pthread_t t;

        log_hold();
        log_info("held here");
        assert_int_equal(pthread_create(&t, NULL, log_from_thread, NULL), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_log(c, "<6>from another thread\n");
        log_release();
        assert_log(c, "<6>from another thread\n<6>held here\n");
}

static char self[4096];

/* On a terminal the lines have no "<N>" prefix (journald's): this program
 * again, its stderr a pseudo-terminal, logs one line and exits. */
static void test_terminal_gets_bare_lines(void **state)
{
        char *argv[] = {self, (char *)"--log-to-stderr", NULL};
        posix_spawn_file_actions_t fa;
        char buf[256] = "";
        size_t len = 0;
        int master, slave, status;
        pid_t pid;

        (void)state;
        assert_int_equal(openpty(&master, &slave, NULL, NULL, NULL), 0);
        assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
        assert_int_equal(posix_spawn_file_actions_adddup2(&fa, slave, STDERR_FILENO), 0);
        assert_int_equal(posix_spawn(&pid, self, &fa, NULL, argv, NULL), 0);
        posix_spawn_file_actions_destroy(&fa);
        close(slave);
        while (len < sizeof buf - 1) {
                ssize_t n = read(master, buf + len, sizeof buf - 1 - len);

                if (n <= 0)
                        break; /* EIO once the child is gone */
                len += (size_t)n;
        }
        close(master);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        buf[len] = '\0';
        assert_non_null(strstr(buf, "on a terminal"));
        assert_null(strchr(buf, '<'));
}

int main(int argc, char *argv[])
{
        if (argc > 1 && strcmp(argv[1], "--log-to-stderr") == 0) {
                log_info("on a terminal");
                return 0;
        }
        if (readlink("/proc/self/exe", self, sizeof self - 1) < 0)
                return 1;

        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_unheld_lines_are_written_at_once, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_held_lines_come_out_at_release, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_holds_nest, setup, teardown),
                cmocka_unit_test_setup_teardown(test_warning_writes_what_is_held_first, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_lines_above_the_level_are_not_held, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_full_buffer_is_written_in_order, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_long_line_is_cut_and_ended, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hold_is_per_thread, setup, teardown),
                cmocka_unit_test(test_terminal_gets_bare_lines),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
