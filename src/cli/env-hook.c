/* `gpukeeper env hook install`: the activate/deactivate hooks that set
 * CUDA_VISIBLE_DEVICES from the lease. */
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
#include "basic/time-util.h"
#include "cli/env-internal.h"
#include "cli/text.h"
#include "env/create.h"
#include "env/hooks.h"

int cli_env_hook_install(cli_context *ctx, EnvArgs *a)
{
        _cleanup_(env_info_freep) EnvInfo *e = NULL;
        int r;

        r = cli_env_operand_env(a, 0, &e);
        if (r != CLI_EXIT_OK)
                return r;
        if (geteuid() != 0 && e->owner_uid != geteuid()) {
                fputs("gpukeeper: ", stderr);
                cli_env_put_text(stderr, e->path, false);
                fputs(" belongs to someone else; ask its owner to install the hooks\n", stderr);
                return CLI_EXIT_PERMISSION;
        }
        r = env_hook_install(e);
        if (r < 0) {
                fputs("gpukeeper: cannot write the hooks into ", stderr);
                cli_env_put_text(stderr, e->path, false);
                fprintf(stderr, ": %s\n",
                        r == -ESTALE  ? "it changed while we looked"
                        : r == -ELOOP ? "a symlink is in the way inside it"
                                      : strerror(-r));
                return cli_env_exit_for_errno(r);
        }
        fputs("Installed the lease hooks into ", stdout);
        cli_env_put_text(stdout, e->path, false);
        fputs("/etc/conda/{activate,deactivate}.d/.\n"
              "'conda activate' now sets CUDA_VISIBLE_DEVICES from your lease "
              "('gpukeeper lease acquire --gpus 1').\n",
              stdout);
        return cli_finish(CLI_EXIT_OK);
}

