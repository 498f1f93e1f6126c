/* Unit tests of what envcli adds to the env library: the generated lease
 * hooks (data/hooks/, rendered by src/env/hooks.c), run for real in sh and,
 * when installed, bash, tcsh and fish, against a fake `gpukeeper` on PATH that prints what
 * `gpukeeper lease env` prints (or fails as it does without a lease);
 * the kernelspec text (kernel.c); and the conda command lines of `env
 * create` (create.c). The integration tests run the same hooks against the
 * real CLI and daemon as real users. */
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
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "basic/strv.h"
#include "env/create.h"
#include "env/hooks.h"
#include "env/kernel.h"

static const char *const lease_vars[] = {ENV_HOOK_LEASE_VARS};

/* What a real `gpukeeper lease env` prints for lease 42. */
#define LEASE_OUTPUT                                                                               \
        "export CUDA_VISIBLE_DEVICES='GPU-0a1b2c3d-0000-4000-8000-000000000000,MIG-5e6f'\n"        \
        "export CUDA_DEVICE_ORDER='PCI_BUS_ID'\n"                                                  \
        "export GPUKEEPER_LEASE_ID='42'\n"

typedef struct Fixture {
        char dir[64];    /* temp dir */
        char bin[96];    /* dir/bin: the fake gpukeeper */
        char prefix[96]; /* dir/env: CONDA_PREFIX */
        char hooks[_ENV_HOOK_SHELL_MAX][_ENV_HOOK_PHASE_MAX][128];
} Fixture;

static void write_file(const char *path, const char *text, mode_t mode)
{
        FILE *f = fopen(path, "we");

        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(chmod(path, mode), 0);
}

static char *read_file(const char *path)
{
        FILE *f = fopen(path, "re");
        char *buf;
        size_t n;

        if (!f)
                return NULL;
        buf = calloc(1, 65536);
        assert_non_null(buf);
        n = fread(buf, 1, 65535, f);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

static bool have_program(const char *name)
{
        static const char *const dirs[] = {"/usr/bin", "/bin"};
        char path[128];

        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                snprintf(path, sizeof path, "%s/%s", dirs[i], name);
                if (access(path, X_OK) == 0)
                        return true;
        }
        return false;
}

/* The fake gpukeeper: prints `output` and exits with `status` for
 * `gpukeeper lease env`, exits 64 for anything else. */
static void fake_gpukeeper(const Fixture *fx, const char *output, int status)
{
        char path[160], script[4096];

        snprintf(path, sizeof path, "%s/gpukeeper", fx->bin);
        snprintf(script, sizeof script,
                 "#!/bin/sh\n"
                 "[ \"$1 $2\" = 'lease env' ] || exit 64\n"
                 "cat <<'EOF'\n%sEOF\n"
                 "echo 'gpukeeper: you hold no lease' >&2\n"
                 "exit %d\n",
                 output, status);
        write_file(path, script, 0755);
}

static int setup(void **state)
{
        Fixture *fx = calloc(1, sizeof *fx);
        char meta[128];

        assert_non_null(fx);
        snprintf(fx->dir, sizeof fx->dir, "/tmp/gk-test-hooks-XXXXXX");
        assert_non_null(mkdtemp(fx->dir));
        snprintf(fx->bin, sizeof fx->bin, "%s/bin", fx->dir);
        snprintf(fx->prefix, sizeof fx->prefix, "%s/env", fx->dir);
        snprintf(meta, sizeof meta, "%s/conda-meta", fx->prefix);
        assert_int_equal(mkdir(fx->bin, 0755), 0);
        assert_int_equal(mkdir(fx->prefix, 0755), 0);
        assert_int_equal(mkdir(meta, 0755), 0);
        for (EnvHookShell s = 0; s < _ENV_HOOK_SHELL_MAX; s++)
                for (EnvHookPhase p = 0; p < _ENV_HOOK_PHASE_MAX; p++) {
                        char *text = NULL;

                        assert_int_equal(env_hook_text(s, p, &text), 0);
                        snprintf(fx->hooks[s][p], sizeof fx->hooks[s][p], "%s/hook-%d-%d", fx->dir,
                                 (int)s, (int)p);
                        write_file(fx->hooks[s][p], text, 0644);
                        free(text);
                }
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        Fixture *fx = *state;
        pid_t pid = fork();

        if (pid == 0) {
                execl("/bin/rm", "rm", "-rf", fx->dir, (char *)NULL);
                _exit(127);
        }
        waitpid(pid, NULL, 0);
        free(fx);
        return 0;
}

/* Run `argv` with a clean environment plus `extra` ("K=V" strings, NULL
 * terminated), stdout and stderr to files in the fixture; returns the exit
 * status and stores stdout / stderr (heap). */
static int run(const Fixture *fx, char *const argv[], const char *const extra[], char **ret_out,
               char **ret_err)
{
        char out_path[128], err_path[128], path_var[256], prefix_var[160], home_var[96];
        char *envp[16];
        size_t n = 0;
        int status;
        pid_t pid;

        snprintf(out_path, sizeof out_path, "%s/out", fx->dir);
        snprintf(err_path, sizeof err_path, "%s/err", fx->dir);
        snprintf(path_var, sizeof path_var, "PATH=%s:/usr/bin:/bin", fx->bin);
        snprintf(prefix_var, sizeof prefix_var, "CONDA_PREFIX=%s", fx->prefix);
        snprintf(home_var, sizeof home_var, "HOME=%s", fx->dir);
        envp[n++] = path_var;
        envp[n++] = prefix_var;
        envp[n++] = home_var; /* fish keeps its own files there */
        for (size_t i = 0; extra && extra[i]; i++)
                envp[n++] = (char *)extra[i];
        envp[n] = NULL;

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

                if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0 || chdir(fx->dir) < 0)
                        _exit(126);
                execve(argv[0], argv, envp);
                _exit(127);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        *ret_out = read_file(out_path);
        *ret_err = read_file(err_path);
        assert_non_null(*ret_out);
        assert_non_null(*ret_err);
        assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

/* A script for `shell` that sources the activate hook, prints the three
 * variables as NAME=value or NAME unset, sources the deactivate hook and
 * prints them again, separated by a "==" line. */
static void shell_script(const Fixture *fx, EnvHookShell shell, char *buf, size_t len)
{
        const char *a = fx->hooks[shell][ENV_HOOK_ACTIVATE];
        const char *d = fx->hooks[shell][ENV_HOOK_DEACTIVATE];
        char show[1024] = "";

        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++) {
                char line[256];
                const char *v = lease_vars[i];

                if (shell == ENV_HOOK_SH)
                        snprintf(line, sizeof line,
                                 "if [ -n \"${%1$s+x}\" ]; then echo \"%1$s=$%1$s\"; "
                                 "else echo '%1$s unset'; fi\n",
                                 v);
                else if (shell == ENV_HOOK_CSH)
                        snprintf(line, sizeof line,
                                 "if ( $?%1$s ) then\necho \"%1$s=$%1$s\"\nelse\n"
                                 "echo '%1$s unset'\nendif\n",
                                 v);
                else
                        snprintf(line, sizeof line,
                                 "if set -q %1$s; echo \"%1$s=$%1$s\"; else; echo '%1$s unset'; "
                                 "end\n",
                                 v);
                strncat(show, line, sizeof show - strlen(show) - 1);
        }
        if (shell == ENV_HOOK_SH)
                snprintf(buf, len, ". %s\n%secho ==\n. %s\n%senv | grep '^_GPUKEEPER' || true\n", a,
                         show, d, show);
        else
                snprintf(buf, len, "source %s\n%secho ==\nsource %s\n%senv | grep '^_GPUKEEPER'\n",
                         a, show, d, show);
}

static int run_shell(const Fixture *fx, const char *shell_path, EnvHookShell shell,
                     const char *const extra[], char **ret_out, char **ret_err)
{
        char script[8192];
        char *argv[5];
        size_t n = 0;

        shell_script(fx, shell, script, sizeof script);
        argv[n++] = (char *)shell_path;
        if (shell == ENV_HOOK_CSH)
                argv[n++] = (char *)"-f";
        if (shell == ENV_HOOK_FISH)
                argv[n++] = (char *)"--no-config";
        argv[n++] = (char *)"-c";
        argv[n++] = script;
        argv[n] = NULL;
        return run(fx, argv, extra, ret_out, ret_err);
}

/* ---- text ---- */

static void test_relpaths(void **state)
{
        (void)state;
        assert_string_equal(env_hook_relpath(ENV_HOOK_SH, ENV_HOOK_ACTIVATE),
                            "etc/conda/activate.d/gpukeeper.sh");
        assert_string_equal(env_hook_relpath(ENV_HOOK_CSH, ENV_HOOK_DEACTIVATE),
                            "etc/conda/deactivate.d/gpukeeper.csh");
        assert_string_equal(env_hook_relpath(ENV_HOOK_FISH, ENV_HOOK_ACTIVATE),
                            "etc/conda/activate.d/gpukeeper.fish");
}

/* Every variable is saved and restored in every shell, the no-lease message is
 * there, and nothing the CLI prints is ever evaluated. */
static void test_text_covers_every_variable(void **state)
{
        static const char *const unset_cmd[_ENV_HOOK_SHELL_MAX] = {"unset ", "unsetenv ",
                                                                   "set -eg "};
        (void)state;

        for (EnvHookShell s = 0; s < _ENV_HOOK_SHELL_MAX; s++) {
                char *act = NULL, *deact = NULL;

                assert_int_equal(env_hook_text(s, ENV_HOOK_ACTIVATE, &act), 0);
                assert_int_equal(env_hook_text(s, ENV_HOOK_DEACTIVATE, &deact), 0);
                assert_non_null(strstr(act, "# gpukeeper lease hook"));
                assert_non_null(strstr(act, "gpukeeper lease env"));
                assert_non_null(strstr(act, ENV_HOOK_NO_LEASE_MESSAGE));
                assert_non_null(strstr(act, ENV_LAST_ACTIVATED_FILE));
                assert_null(strstr(act, "eval"));
                for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++) {
                        char saved[96], unset[96];

                        snprintf(saved, sizeof saved, "_GPUKEEPER_SAVED_%s", lease_vars[i]);
                        snprintf(unset, sizeof unset, "%s%s\n", unset_cmd[s], lease_vars[i]);
                        assert_non_null(strstr(act, saved));
                        assert_non_null(strstr(deact, saved));
                        assert_non_null(strstr(deact, unset));
                }
                free(act);
                free(deact);
        }
}

/* The messages go into double quotes in all three shells. */
static void test_message_is_quotable(void **state)
{
        (void)state;
        assert_null(strpbrk(ENV_HOOK_NO_LEASE_MESSAGE, "$`\\!\""));
}

/* ---- behaviour, in real shells ---- */

static void check_leased_then_restored(const char *out, const char *before)
{
        char expect[1024];

        snprintf(expect, sizeof expect,
                 "CUDA_VISIBLE_DEVICES=GPU-0a1b2c3d-0000-4000-8000-000000000000,MIG-5e6f\n"
                 "CUDA_DEVICE_ORDER=PCI_BUS_ID\n"
                 "GPUKEEPER_LEASE_ID=42\n"
                 "==\n"
                 "%s",
                 before);
        assert_string_equal(out, expect);
}

static void check_shell(Fixture *fx, const char *shell_path, EnvHookShell shell)
{
        /* CUDA_VISIBLE_DEVICES unset before: it must be unset after, not empty.
         * CUDA_DEVICE_ORDER set: it comes back. GPUKEEPER_LEASE_ID set but empty:
         * it comes back empty. */
        static const char *const extra[] = {"CUDA_DEVICE_ORDER=FASTEST_FIRST",
                                            "GPUKEEPER_LEASE_ID=", NULL};
        static const char before[] = "CUDA_VISIBLE_DEVICES unset\n"
                                     "CUDA_DEVICE_ORDER=FASTEST_FIRST\n"
                                     "GPUKEEPER_LEASE_ID=\n";
        char expect[512], stamp_path[160];
        char *out = NULL, *err = NULL, *stamp;

        fake_gpukeeper(fx, LEASE_OUTPUT, 0);
        /* The exit status is grep's; a leftover _GPUKEEPER variable would show in out. */
        run_shell(fx, shell_path, shell, extra, &out, &err);
        check_leased_then_restored(out, before);
        assert_string_equal(err, "");
        free(out);
        free(err);

        snprintf(stamp_path, sizeof stamp_path, "%s/" ENV_LAST_ACTIVATED_FILE, fx->prefix);
        stamp = read_file(stamp_path);
        assert_non_null(stamp);
        assert_true(strtoull(stamp, NULL, 10) > 1700000000ull);
        free(stamp);

        /* No lease: one line saying how to get one, nothing changed. */
        fake_gpukeeper(fx, "", 70);
        run_shell(fx, shell_path, shell, extra, &out, &err);
        snprintf(expect, sizeof expect, "%s==\n%s", before, before);
        assert_string_equal(out, expect);
        assert_string_equal(err, ENV_HOOK_NO_LEASE_MESSAGE "\n");
        free(out);
        free(err);

        /* Output that is not what the CLI prints is not used, let alone run. */
        fake_gpukeeper(fx,
                       "export CUDA_VISIBLE_DEVICES='GPU-1'; touch PWNED\n"
                       "export CUDA_DEVICE_ORDER='a'\\''b'\n"
                       "export GPUKEEPER_LEASE_ID=\"$(touch PWNED)\"\n",
                       0);
        run_shell(fx, shell_path, shell, extra, &out, &err);
        assert_string_equal(out, expect);
        assert_non_null(strstr(err, "printed no usable lease"));
        free(out);
        free(err);
        snprintf(stamp_path, sizeof stamp_path, "%s/PWNED", fx->dir);
        assert_int_equal(access(stamp_path, F_OK), -1);
}

static void test_sh(void **state)
{
        check_shell(*state, "/bin/sh", ENV_HOOK_SH);
}

static void test_bash(void **state)
{
        if (!have_program("bash"))
                skip();
        check_shell(*state, "/bin/bash", ENV_HOOK_SH);
}

static void test_csh(void **state)
{
        if (!have_program("tcsh"))
                skip();
        check_shell(*state, "/usr/bin/tcsh", ENV_HOOK_CSH);
}

static void test_fish(void **state)
{
        if (!have_program("fish"))
                skip();
        check_shell(*state, "/usr/bin/fish", ENV_HOOK_FISH);
}

/* Scripts with `set -e` (`csh -e`) source the hook too: neither a failing
 * `gpukeeper lease env` (no lease, daemon down) nor an env whose time stamp
 * cannot be written (read-only; here the stamp's path is a directory, which
 * root cannot write either) may end them. */
static void check_errexit(Fixture *fx, const char *shell_path, EnvHookShell shell)
{
        static const int statuses[] = {1, 69, 0};
        const char *a = fx->hooks[shell][ENV_HOOK_ACTIVATE];
        char script[512], stamp_path[160];
        char *argv[5];
        size_t n = 0;

        snprintf(stamp_path, sizeof stamp_path, "%s/" ENV_LAST_ACTIVATED_FILE, fx->prefix);
        assert_int_equal(mkdir(stamp_path, 0755), 0);
        if (shell == ENV_HOOK_SH)
                snprintf(script, sizeof script, ". %s\necho \"survived ${CUDA_VISIBLE_DEVICES-unset}\"\n", a);
        else
                snprintf(script, sizeof script,
                         "source %s\nif ( $?CUDA_VISIBLE_DEVICES ) then\necho survived "
                         "$CUDA_VISIBLE_DEVICES\nelse\necho survived unset\nendif\n",
                         a);
        argv[n++] = (char *)shell_path;
        argv[n++] = (char *)(shell == ENV_HOOK_SH ? "-ec" : "-efc");
        argv[n++] = script;
        argv[n] = NULL;
        for (size_t i = 0; i < ELEMENTSOF(statuses); i++) {
                char *out = NULL, *err = NULL;

                fake_gpukeeper(fx, statuses[i] == 0 ? LEASE_OUTPUT : "", statuses[i]);
                assert_int_equal(run(fx, argv, NULL, &out, &err), 0);
                assert_string_equal(out, statuses[i] == 0
                                             ? "survived GPU-0a1b2c3d-0000-4000-8000-000000000000,MIG-5e6f\n"
                                             : "survived unset\n");
                if (statuses[i] == 69)
                        assert_non_null(strstr(err, "not reachable"));
                else if (statuses[i] == 1)
                        assert_string_equal(err, ENV_HOOK_NO_LEASE_MESSAGE "\n");
                free(out);
                free(err);
        }
}

static void test_sh_errexit(void **state)
{
        check_errexit(*state, "/bin/sh", ENV_HOOK_SH);
}

static void test_bash_errexit(void **state)
{
        if (!have_program("bash"))
                skip();
        check_errexit(*state, "/bin/bash", ENV_HOOK_SH);
}

static void test_csh_errexit(void **state)
{
        if (!have_program("tcsh"))
                skip();
        check_errexit(*state, "/usr/bin/tcsh", ENV_HOOK_CSH);
}

/* Nested activations: the inner deactivation keeps the lease's values, the
 * outer one restores what was there before the first. */
static void test_sh_nested(void **state)
{
        Fixture *fx = *state;
        const char *a = fx->hooks[ENV_HOOK_SH][ENV_HOOK_ACTIVATE];
        const char *d = fx->hooks[ENV_HOOK_SH][ENV_HOOK_DEACTIVATE];
        static const char *const extra[] = {"CUDA_VISIBLE_DEVICES=0", NULL};
        char script[2048];
        char *argv[] = {(char *)"/bin/sh", (char *)"-c", script, NULL};
        char *out = NULL, *err = NULL;

        fake_gpukeeper(fx, LEASE_OUTPUT, 0);
        snprintf(script, sizeof script,
                 ". %1$s; . %1$s; echo \"$_GPUKEEPER_DEPTH $CUDA_VISIBLE_DEVICES\"\n"
                 ". %2$s; echo \"$_GPUKEEPER_DEPTH $CUDA_VISIBLE_DEVICES\"\n"
                 ". %2$s; echo \"${_GPUKEEPER_DEPTH-none} $CUDA_VISIBLE_DEVICES\"\n",
                 a, d);
        assert_int_equal(run(fx, argv, extra, &out, &err), 0);
        assert_string_equal(out, "2 GPU-0a1b2c3d-0000-4000-8000-000000000000,MIG-5e6f\n"
                                 "1 GPU-0a1b2c3d-0000-4000-8000-000000000000,MIG-5e6f\n"
                                 "none 0\n");
        free(out);
        free(err);
}

/* Without gpukeeper on PATH the hook stays silent and changes nothing. */
static void test_sh_without_gpukeeper(void **state)
{
        Fixture *fx = *state;
        char *out = NULL, *err = NULL, path[160];

        if (have_program("gpukeeper"))
                skip(); /* an installed one would answer */
        snprintf(path, sizeof path, "%s/gpukeeper", fx->bin);
        unlink(path);
        run_shell(fx, "/bin/sh", ENV_HOOK_SH, NULL, &out, &err);
        assert_string_equal(err, "");
        assert_string_equal(out, "CUDA_VISIBLE_DEVICES unset\nCUDA_DEVICE_ORDER unset\n"
                                 "GPUKEEPER_LEASE_ID unset\n==\nCUDA_VISIBLE_DEVICES unset\n"
                                 "CUDA_DEVICE_ORDER unset\nGPUKEEPER_LEASE_ID unset\n");
        free(out);
        free(err);
}

/* ---- kernelspec ---- */

static void test_kernel_spec(void **state)
{
        json_t *spec, *argv;
        char *text = NULL, *dir = NULL;
        json_error_t error;
        (void)state;

        assert_int_equal(env_kernel_spec("cv-dev", "/home/a/.conda/envs/cv-dev", 2, &text), 0);
        spec = json_loads(text, 0, &error);
        assert_non_null(spec);
        argv = json_object_get(spec, "argv");
        assert_int_equal(json_array_size(argv), 11);
        {
                static const char *const want[] = {
                    "gpukeeper", "run",
                    "--gpus",    "2",
                    "--wait",    "--",
                    "/home/a/.conda/envs/cv-dev/bin/python",
                    "-m",        "ipykernel_launcher",
                    "-f",        "{connection_file}"};
                for (size_t i = 0; i < ELEMENTSOF(want); i++)
                        assert_string_equal(json_string_value(json_array_get(argv, i)), want[i]);
        }
        assert_string_equal(json_string_value(json_object_get(spec, "display_name")),
                            "Python (cv-dev, 2 GPUs via gpukeeper)");
        assert_string_equal(json_string_value(json_object_get(spec, "language")), "python");
        json_decref(spec);
        free(text);

        assert_int_equal(env_kernel_spec("x", "/p", 1, &text), 0);
        assert_non_null(strstr(text, "\"Python (x, 1 GPU via gpukeeper)\""));
        free(text);
        assert_int_equal(env_kernel_spec("x", "/p", 0, &text), -EINVAL);
        assert_int_equal(env_kernel_spec("x", "relative", 1, &text), -EINVAL);

        assert_int_equal(env_kernel_dir_name("My Env+1", &dir), 0);
        assert_string_equal(dir, "gpukeeper-my-env-1");
        free(dir);
        assert_int_equal(env_kernel_dir_name("", &dir), -EINVAL);
}

/* ---- env create command lines ---- */

static void test_create_argv(void **state)
{
        char **v = NULL;
        (void)state;

        assert_int_equal(env_create_argv("/opt/conda/bin/conda", "cv", "/t/cv-dev.yml", &v), 0);
        assert_string_equal(v[1], "env");
        assert_string_equal(v[2], "create");
        assert_string_equal(v[3], "-n");
        assert_string_equal(v[4], "cv");
        assert_string_equal(v[5], "-f");
        assert_string_equal(v[6], "/t/cv-dev.yml");
        assert_null(v[7]);
        strv_free(v);

        assert_int_equal(env_create_argv("/usr/bin/micromamba", "/data/envs/cv", "/t/x.yml", &v),
                         0);
        assert_string_equal(v[0], "/usr/bin/micromamba");
        assert_string_equal(v[1], "create");
        assert_string_equal(v[2], "-y");
        assert_string_equal(v[3], "-p");
        assert_string_equal(v[4], "/data/envs/cv");
        assert_null(v[7]);
        strv_free(v);
}

static void test_conda_exe_find(void **state)
{
        Fixture *fx = *state;
        char path[160], *exe = NULL;

        snprintf(path, sizeof path, "%s/micromamba", fx->bin);
        write_file(path, "#!/bin/sh\n", 0755);
        assert_int_equal(env_conda_exe_find(NULL, fx->bin, &exe), 0);
        assert_string_equal(exe, path);
        free(exe);
        snprintf(path, sizeof path, "%s/conda", fx->bin);
        write_file(path, "#!/bin/sh\n", 0755);
        assert_int_equal(env_conda_exe_find(NULL, fx->bin, &exe), 0);
        assert_string_equal(exe, path); /* conda before micromamba */
        free(exe);
        assert_int_equal(env_conda_exe_find("micromamba", fx->bin, &exe), 0);
        assert_non_null(strstr(exe, "/micromamba"));
        free(exe);
        assert_int_equal(env_conda_exe_find("/nonexistent/conda", fx->bin, &exe), -ENOENT);
        assert_int_equal(env_conda_exe_find(NULL, "/nonexistent", &exe), -ENOENT);
}

static void test_templates(void **state)
{
        Fixture *fx = *state;
        char path[160], **names = NULL, *p = NULL;
        size_t n = 0;

        snprintf(path, sizeof path, "%s/cv-dev.yml", fx->bin);
        write_file(path, "name: cv-dev\n", 0644);
        snprintf(path, sizeof path, "%s/ai-base.yml", fx->bin);
        write_file(path, "name: ai-base\n", 0644);
        assert_int_equal(env_template_list(fx->bin, &names, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(names[0], "ai-base");
        assert_string_equal(names[1], "cv-dev");
        assert_null(names[2]);
        strv_free(names);
        assert_int_equal(env_template_path(fx->bin, "cv-dev", &p), 0);
        assert_string_equal(p + strlen(p) - strlen("/bin/cv-dev.yml"), "/bin/cv-dev.yml");
        assert_true(p[0] == '/');
        free(p);
        assert_int_equal(env_template_path(fx->bin, "../cv-dev", &p), -EINVAL);
        assert_int_equal(env_template_path(fx->bin, "nope", &p), -ENOENT);
}

/* The tool runs in a session of its own with stdin from /dev/null: no
 * controlling terminal a package script could push input into. */
static void test_create_run_own_session(void **state)
{
        Fixture *fx = *state;
        char probe[160], report[160], *argv[] = {probe, NULL}, *envp[] = {NULL}, script[512], *text;
        EnvUser u = {};
        long sid = 0, pid = 0;
        char stdin_target[64] = "";
        int wstatus = -1;

        snprintf(probe, sizeof probe, "%s/probe", fx->bin);
        snprintf(report, sizeof report, "%s/report", fx->dir);
        snprintf(script, sizeof script,
                 "#!/bin/sh\n"
                 "echo \"$$ $(cut -d' ' -f6 /proc/$$/stat) $(readlink /proc/$$/fd/0)\" >%s\n"
                 "exit 3\n",
                 report);
        write_file(probe, script, 0755);
        assert_int_equal(env_user_make(getuid(), getgid(), "me", fx->dir, &u), 0);
        assert_int_equal(env_create_run(&u, argv, envp, &wstatus), 0);
        assert_true(WIFEXITED(wstatus));
        assert_int_equal(WEXITSTATUS(wstatus), 3);
        text = read_file(report);
        assert_non_null(text);
        assert_int_equal(sscanf(text, "%ld %ld %63s", &pid, &sid, stdin_target), 3);
        assert_int_equal(sid, pid);
        assert_int_not_equal(sid, (long)getsid(0));
        assert_string_equal(stdin_target, "/dev/null");
        free(text);
        env_user_done(&u);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_relpaths),
            cmocka_unit_test(test_text_covers_every_variable),
            cmocka_unit_test(test_message_is_quotable),
            cmocka_unit_test_setup_teardown(test_sh, setup, teardown),
            cmocka_unit_test_setup_teardown(test_bash, setup, teardown),
            cmocka_unit_test_setup_teardown(test_csh, setup, teardown),
            cmocka_unit_test_setup_teardown(test_fish, setup, teardown),
            cmocka_unit_test_setup_teardown(test_sh_errexit, setup, teardown),
            cmocka_unit_test_setup_teardown(test_bash_errexit, setup, teardown),
            cmocka_unit_test_setup_teardown(test_csh_errexit, setup, teardown),
            cmocka_unit_test_setup_teardown(test_sh_nested, setup, teardown),
            cmocka_unit_test_setup_teardown(test_sh_without_gpukeeper, setup, teardown),
            cmocka_unit_test(test_kernel_spec),
            cmocka_unit_test(test_create_argv),
            cmocka_unit_test_setup_teardown(test_conda_exe_find, setup, teardown),
            cmocka_unit_test_setup_teardown(test_templates, setup, teardown),
            cmocka_unit_test_setup_teardown(test_create_run_own_session, setup, teardown),
        };

        return cmocka_run_group_tests_name("test-hooks", tests, NULL, NULL);
}
