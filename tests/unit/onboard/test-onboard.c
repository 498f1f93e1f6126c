/* Unit tests of the onboarding library (src/onboard/): login names, the
 * account tools' command lines and running them, group membership, the
 * backup directory name, the welcome template (the built-in text too),
 * and the "already in place?" checks of lease hooks and kernels on a
 * prefix in a temp dir. The integration test (tests/integration/
 * test_onboard.py) runs `gpukeeper user add/remove` on real accounts. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "basic/strv.h"
#include "env/hooks.h"
#include "env/kernel.h"
#include "onboard/onboard.h"

static void assert_argv(char **argv, const char *const *want, size_t n)
{
        size_t i;

        assert_non_null(argv);
        for (i = 0; i < n; i++)
                assert_string_equal(argv[i], want[i]);
        assert_null(argv[i]);
        strv_free(argv);
}

static void test_names(void **state)
{
        static const char *const good[] = {"alice", "_svc", "a", "bob-2", "x_y-z9",
                                           "abcdefghijklmnopqrstuvwxyz012345"};
        static const char *const bad[] = {"", "-rf", "Alice", "1abc", "a/b", "a b", "a.b",
                                          "a$", "abcdefghijklmnopqrstuvwxyz0123456", "é"};

        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                assert_true(onboard_name_valid(good[i]));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_false(onboard_name_valid(bad[i]));
        assert_false(onboard_name_valid(NULL));
}

static void test_argv(void **state)
{
        char **v = NULL;

        assert_int_equal(onboard_useradd_argv("newbie", "/bin/bash", &v), 0);
        assert_argv(v,
                    (const char *const[]){"useradd", "--create-home", "--user-group", "--shell",
                                          "/bin/bash", "--", "newbie"},
                    7);
        assert_int_equal(onboard_usermod_argv("newbie", "phd", &v), 0);
        assert_argv(v, (const char *const[]){"usermod", "--append", "--groups", "phd", "--",
                                             "newbie"},
                    6);
        assert_int_equal(onboard_userdel_argv("newbie", true, &v), 0);
        assert_argv(v, (const char *const[]){"userdel", "--remove", "--", "newbie"}, 4);
        assert_int_equal(onboard_userdel_argv("newbie", false, &v), 0);
        assert_argv(v, (const char *const[]){"userdel", "--", "newbie"}, 3);

        v = NULL;
        assert_int_equal(onboard_useradd_argv("-o", "/bin/bash", &v), -EINVAL);
        assert_int_equal(onboard_useradd_argv("newbie", "bash", &v), -EINVAL);
        assert_int_equal(onboard_usermod_argv("newbie", "-x", &v), -EINVAL);
        assert_int_equal(onboard_userdel_argv("root/x", true, &v), -EINVAL);
        assert_null(v);
}

static void test_run_tool(void **state)
{
        int wstatus = -1;

        assert_int_equal(onboard_run_tool((char *[]){(char *)"true", NULL}, &wstatus), 0);
        assert_true(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
        assert_int_equal(onboard_run_tool((char *[]){(char *)"false", NULL}, &wstatus), 0);
        assert_true(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 1);
        /* The tool gets only PATH and LANG, and stdin from /dev/null. */
        assert_int_equal(
            onboard_run_tool((char *[]){(char *)"/bin/sh", (char *)"-c",
                                        (char *)"[ -z \"$HOME$FOO\" ] && [ \"$LANG\" = C ] && "
                                                "[ \"$PATH\" = '" ONBOARD_TOOL_PATH "' ] && "
                                                "! read x",
                                        NULL},
                             &wstatus),
            0);
        assert_true(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
        wstatus = -1;
        assert_int_equal(
            onboard_run_tool((char *[]){(char *)"gpukeeper-no-such-tool", NULL}, &wstatus),
            -ENOENT);
        assert_int_equal(onboard_run_tool((char *[]){(char *)"bin/true", NULL}, &wstatus),
                         -EINVAL);
        assert_int_equal(wstatus, -1);
}

static void test_groups(void **state)
{
        /* root's primary group is root; nobody is in no member list of root. */
        assert_int_equal(onboard_user_in_group("root", 0, "root"), 1);
        assert_int_equal(onboard_user_in_group("nobody", 65534, "root"), 0);
        assert_int_equal(onboard_user_in_group("root", 0, "gkonb-no-such-group"), -ENOENT);
}

static void test_backup_dir(void **state)
{
        char *dir = NULL;

        setenv("TZ", "UTC", 1);
        tzset();
        assert_int_equal(onboard_backup_dir("/var/backups/", "bob", 86400ull * 1000000 + 5000000,
                                            &dir),
                         0);
        assert_string_equal(dir, "/var/backups/bob-19700102-000005");
        free(dir);
        dir = NULL;
        assert_int_equal(onboard_backup_dir("backups", "bob", 0, &dir), -EINVAL);
        assert_int_equal(onboard_backup_dir("/b", "../x", 0, &dir), -EINVAL);
        assert_null(dir);
}

static void test_welcome_render(void **state)
{
        const OnboardWelcomeVars v = {.user = "newbie", .host = "gpu1", .home = "/home/newbie",
                                      .groups = "phd", .envs = "ai-base, nlp"};
        char *text = NULL;
        unsigned line = 0;

        assert_int_equal(onboard_welcome_render("Hi {{user}}@{{ host }} ({{home}}): {{envs}} / "
                                                "{{groups}}{{user}}\n{ {x} } }}",
                                                &v, &text, &line),
                         0);
        assert_string_equal(text,
                            "Hi newbie@gpu1 (/home/newbie): ai-base, nlp / phdnewbie\n{ {x} } }}");
        free(text);
        text = NULL;
        assert_int_equal(onboard_welcome_render("a\nb {{user}}\nc {{nosuch}}\n", &v, &text,
                                                &line),
                         -EINVAL);
        assert_int_equal(line, 3);
        assert_int_equal(onboard_welcome_render("{{user", &v, &text, &line), -EINVAL);
        assert_int_equal(line, 1);
        assert_int_equal(onboard_welcome_render("x\n{{user\n}}", &v, &text, &line), -EINVAL);
        assert_int_equal(line, 2);
        assert_null(text);
        /* A NULL value is empty. */
        assert_int_equal(onboard_welcome_render("[{{home}}]", &(OnboardWelcomeVars){}, &text,
                                                NULL),
                         0);
        assert_string_equal(text, "[]");
        free(text);

        /* The built-in text renders and tells how to lease a GPU. */
        assert_int_equal(onboard_welcome_render(onboard_welcome_default, &v, &text, NULL), 0);
        assert_non_null(strstr(text, "newbie"));
        assert_non_null(strstr(text, "ai-base, nlp"));
        assert_non_null(strstr(text, "gpukeeper lease acquire"));
        assert_non_null(strstr(text, "gpukeeper run"));
        assert_non_null(strstr(text, "gpukeeper status"));
        assert_null(strstr(text, "{{"));
        for (const char *p = text; *p;) {
                const char *eol = strchrnul(p, '\n');

                assert_true(eol - p <= 79); /* an 80-column terminal */
                p = *eol ? eol + 1 : eol;
        }
        free(text);
}

static void test_welcome_load(void **state)
{
        char dir[] = "/tmp/test-onboard-XXXXXX", path[64];
        char *text = NULL, *big;
        FILE *f;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/welcome.txt", dir);
        f = fopen(path, "we");
        assert_non_null(f);
        fputs("Hello {{user}}\n", f);
        fclose(f);
        assert_int_equal(onboard_welcome_load(path, &text), 0);
        assert_string_equal(text, "Hello {{user}}\n");
        free(text);
        text = NULL;

        f = fopen(path, "we");
        fwrite("a\0b", 1, 3, f);
        fclose(f);
        assert_int_equal(onboard_welcome_load(path, &text), -EINVAL);
        big = malloc(ONBOARD_WELCOME_MAX + 1);
        assert_non_null(big);
        memset(big, 'x', ONBOARD_WELCOME_MAX + 1);
        f = fopen(path, "we");
        fwrite(big, 1, ONBOARD_WELCOME_MAX + 1, f);
        fclose(f);
        free(big);
        assert_int_equal(onboard_welcome_load(path, &text), -EFBIG);
        assert_int_equal(onboard_welcome_load(dir, &text), -EINVAL);
        unlink(path);
        assert_int_equal(onboard_welcome_load(path, &text), -ENOENT);
        assert_null(text);
        assert_int_equal(rmdir(dir), 0);
}

static void remove_tree(const char *dir)
{
        char *argv[] = {(char *)"rm", (char *)"-rf", (char *)"--", (char *)dir, NULL};
        int wstatus;

        assert_int_equal(onboard_run_tool(argv, &wstatus), 0);
}

/* Hooks and kernel of a prefix in a temp dir that we own. */
static void test_states(void **state)
{
        char dir[] = "/tmp/test-onboard-XXXXXX", prefix[64], data[64], kernel[160];
        char hook[160];
        struct stat before, after;
        EnvInfo e = {};
        char *path = NULL;

        assert_non_null(mkdtemp(dir));
        snprintf(prefix, sizeof prefix, "%s/env", dir);
        snprintf(data, sizeof data, "%s/jupyter", dir);
        assert_int_equal(mkdir(prefix, 0755), 0);
        assert_int_equal(stat(prefix, &before), 0);
        e = (EnvInfo){.name = (char *)"env", .path = prefix, .owner_uid = geteuid(),
                      .dev = before.st_dev, .ino = before.st_ino};

        assert_int_equal(onboard_hooks_state(&e), ONBOARD_ABSENT);
        assert_int_equal(env_hook_install(&e), 0);
        assert_int_equal(onboard_hooks_state(&e), ONBOARD_SAME);
        /* Installing again leaves the files that are in place alone. */
        snprintf(hook, sizeof hook, "%s/%s", prefix, env_hook_relpath(ENV_HOOK_SH, ENV_HOOK_ACTIVATE));
        assert_int_equal(stat(hook, &before), 0);
        assert_int_equal(env_hook_install(&e), 0);
        assert_int_equal(stat(hook, &after), 0);
        assert_true(before.st_ino == after.st_ino);
        assert_memory_equal(&before.st_mtim, &after.st_mtim, sizeof before.st_mtim);
        assert_memory_equal(&before.st_ctim, &after.st_ctim, sizeof before.st_ctim);
        /* One file changed, one missing, one with another mode: different. */
        assert_int_equal(chmod(hook, 0600), 0);
        assert_int_equal(onboard_hooks_state(&e), ONBOARD_DIFFERENT);
        assert_int_equal(env_hook_install(&e), 0);
        assert_int_equal(onboard_hooks_state(&e), ONBOARD_SAME);
        snprintf(hook, sizeof hook, "%s/%s", prefix,
                 env_hook_relpath(ENV_HOOK_FISH, ENV_HOOK_DEACTIVATE));
        assert_int_equal(unlink(hook), 0);
        assert_int_equal(onboard_hooks_state(&e), ONBOARD_DIFFERENT);
        /* A prefix that is another directory now is refused. */
        e.ino++;
        assert_int_equal(onboard_hooks_state(&e), -ESTALE);
        e.ino--;

        assert_int_equal(onboard_kernel_state(geteuid(), getegid(), data, "env", prefix, 1),
                         ONBOARD_ABSENT);
        assert_int_equal(env_kernel_install(geteuid(), getegid(), data, "env", prefix, 2, &path),
                         0);
        snprintf(kernel, sizeof kernel, "%s/kernels/gpukeeper-env/kernel.json", data);
        assert_string_equal(path, kernel);
        free(path);
        assert_int_equal(onboard_kernel_state(geteuid(), getegid(), data, "env", prefix, 1),
                         ONBOARD_DIFFERENT);
        assert_int_equal(onboard_kernel_state(geteuid(), getegid(), data, "env", prefix, 2),
                         ONBOARD_SAME);
        assert_int_equal(onboard_kernel_state(geteuid(), getegid(), "jupyter", "env", prefix, 2),
                         -EINVAL);
        remove_tree(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_names),         cmocka_unit_test(test_argv),
            cmocka_unit_test(test_run_tool),      cmocka_unit_test(test_groups),
            cmocka_unit_test(test_backup_dir),    cmocka_unit_test(test_welcome_render),
            cmocka_unit_test(test_welcome_load),  cmocka_unit_test(test_states),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
