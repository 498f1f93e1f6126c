/* `gpukeeper env create`: an environment from a template, conda run as the
 * user. */
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

#ifndef GK_TEMPLATES_DIR
#error "GK_TEMPLATES_DIR must name the installed templates directory"
#endif

int cli_env_create(cli_context *ctx, EnvArgs *a)
{
        _cleanup_free_ char *exe = NULL, *file = NULL;
        _cleanup_(strv_freep) char **argv = NULL, **envp = NULL;
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
        dir = a->templates_dir ? a->templates_dir : getenv("GPUKEEPER_TEMPLATES_DIR");
        if (!dir || !*dir)
                dir = GK_TEMPLATES_DIR;
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
        configured = getenv("GPUKEEPER_CONDA_EXE");
        r = env_conda_exe_find(configured, getenv("PATH"), &exe);
        if (r < 0) {
                if (configured && *configured)
                        fprintf(stderr,
                                "gpukeeper: $GPUKEEPER_CONDA_EXE (%s) is not an executable\n",
                                configured);
                else
                        fputs("gpukeeper: found no conda, mamba or micromamba in PATH (install "
                              "one, or point $GPUKEEPER_CONDA_EXE at it)\n",
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

