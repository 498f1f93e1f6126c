/* `gpukeeper env create`: an environment from a template, conda run as the
 * user; `gpukeeper env templates`: the templates there are. Both use the
 * daemon's env.templates_dir and env.conda_exe (cli_env_settings). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "basic/parse.h"
#include "basic/strv.h"
#include "basic/time-util.h"
#include "cli/env-internal.h"
#include "cli/text.h"
#include "env/create.h"
#include "env/hooks.h"

#include "config/env.h"

/* The templates directory: --templates-dir, else $GPUKEEPER_TEMPLATES_DIR,
 * else the daemon's env.templates_dir. */
static const char *templates_dir(const EnvArgs *a, const EnvSettings *settings)
{
        const char *dir = a->templates_dir ? a->templates_dir : getenv("GPUKEEPER_TEMPLATES_DIR");

        return dir && *dir ? dir : settings->templates_dir;
}

int cli_env_templates(cli_context *ctx, EnvArgs *a)
{
        _cleanup_(strv_freep) char **names = NULL;
        EnvSettings settings = {};
        const char *dir;
        size_t n = 0;
        int r;

        r = cli_env_no_operands(a);
        if (r != CLI_EXIT_OK)
                return r;
        r = cli_env_settings(ctx, &settings);
        if (r != CLI_EXIT_OK)
                return r;
        dir = templates_dir(a, &settings);
        r = env_template_list(dir, &names, &n);
        if (r < 0 && r != -ENOENT) {
                fprintf(stderr, "gpukeeper: cannot read the templates directory %s: %s\n", dir,
                        strerror(-r));
                cli_env_settings_done(&settings);
                return cli_env_exit_for_errno(r);
        }
        if (a->json) {
                _cleanup_(json_decrefp) json_t *doc = json_pack("{s:o, s:[]}", "templates_dir",
                                                                 env_json_string(dir), "templates");

                for (size_t i = 0; doc && i < n; i++)
                        if (json_array_append_new(json_object_get(doc, "templates"),
                                                  json_string(names[i])) < 0)
                                json_decref(TAKE_PTR(doc));
                cli_env_settings_done(&settings);
                if (!doc)
                        return CLI_EXIT_SOFTWARE;
                cli_print_json(doc);
                return cli_finish(CLI_EXIT_OK);
        }
        if (n == 0)
                printf("No templates in %s.\n", dir);
        else
                printf("Templates in %s (gpukeeper env create NAME --template TEMPLATE):\n", dir);
        for (size_t i = 0; i < n; i++)
                printf("  %s\n", names[i]);
        cli_env_settings_done(&settings);
        return cli_finish(CLI_EXIT_OK);
}

int cli_env_create(cli_context *ctx, EnvArgs *a)
{
        _cleanup_free_ char *exe = NULL, *file = NULL;
        _cleanup_(strv_freep) char **argv = NULL, **envp = NULL;
        _cleanup_(cli_env_settings_done) EnvSettings settings = {};
        const char *dir, *configured, *target;
        EnvUser user = {};
        bool same_user;
        int r, wstatus = 0;

        r = cli_env_one_operand(a, "environment name (or prefix path)");
        if (r != CLI_EXIT_OK)
                return r;
        if (!a->template)
                return cli_usage_error(a->verb, "which template? give --template NAME");
        target = a->operands[0];
        if (!target[0] || (strchr(target, '/') && target[0] != '/'))
                return cli_usage_error(
                    a->verb, "'%s' is neither an environment name nor an absolute path", target);
        r = cli_env_settings(ctx, &settings);
        if (r != CLI_EXIT_OK)
                return r;
        dir = templates_dir(a, &settings);
        r = env_template_path(dir, a->template, &file);
        if (r == -EINVAL)
                return cli_usage_error(a->verb, "'%s' is not a template name", a->template);
        if (r < 0) {
                char **names = NULL;
                size_t n = 0;

                fprintf(stderr, "gpukeeper: no template '%s' in %s", a->template, dir);
                if (env_template_list(dir, &names, &n) == 0 && n > 0) {
                        fputs("; there are:", stderr);
                        for (size_t i = 0; i < n; i++)
                                fprintf(stderr, " %s", names[i]);
                }
                fputc('\n', stderr);
                strv_free(names);
                return CLI_EXIT_NOT_FOUND;
        }
        r = cli_env_target_user(a->verb, a->user, &user);
        if (r != CLI_EXIT_OK)
                return r;
        same_user = user.uid == geteuid();
        /* $GPUKEEPER_CONDA_EXE, else the daemon's env.conda_exe; its default
         * (conda) also finds mamba or micromamba when there is no conda. */
        configured = getenv("GPUKEEPER_CONDA_EXE");
        if (!configured || !*configured)
                configured = strcmp(settings.conda_exe, CONFIG_DEFAULT_CONDA_EXE) == 0
                                     ? NULL
                                     : settings.conda_exe;
        r = env_conda_exe_find(configured, getenv("PATH"), &exe);
        if (r < 0) {
                if (configured && *configured)
                        fprintf(stderr,
                                "gpukeeper: the conda executable %s (%s) is not an executable "
                                "in PATH or at that path\n",
                                configured,
                                getenv("GPUKEEPER_CONDA_EXE") && *getenv("GPUKEEPER_CONDA_EXE")
                                        ? "$GPUKEEPER_CONDA_EXE"
                                        : "env.conda_exe");
                else
                        fputs("gpukeeper: found no conda, mamba or micromamba in PATH (install "
                              "one, or set env.conda_exe in the daemon's configuration)\n",
                              stderr);
                env_user_done(&user);
                return CLI_EXIT_NOT_FOUND;
        }
        if ((r = env_create_argv(exe, target, file, &argv)) < 0 ||
            (r = env_create_envp(&user, same_user, &envp)) < 0) {
                env_user_done(&user);
                return CLI_EXIT_SOFTWARE;
        }
        if (!same_user)
                fprintf(stderr, "gpukeeper: running %s as %s\n", exe, user.name);
        fflush(stdout);
        r = env_create_run(&user, argv, envp, &wstatus);
        env_user_done(&user);
        if (r < 0) {
                fprintf(stderr, "gpukeeper: cannot run %s: %s\n", exe, strerror(-r));
                return r == -ENOENT ? 127 : 126;
        }
        if (WIFSIGNALED(wstatus))
                return 128 + WTERMSIG(wstatus);
        if (WEXITSTATUS(wstatus) == 0 && !strchr(target, '/'))
                fprintf(stderr,
                        "gpukeeper: to have 'conda activate %s' set CUDA_VISIBLE_DEVICES from your "
                        "lease: gpukeeper env hook install %s\n",
                        target, target);
        return WEXITSTATUS(wstatus);
}

