/* gpukeeper-slurm-step [--socket PATH] [--] COMMAND [ARGS...]: what
 * `gpukeeper run` runs inside srun with backend: slurm (see slurm-step.h).
 * The same as `gpukeeper slurm step`, without the rest of the CLI's
 * libraries to load. */
#include <stdio.h>
#include <string.h>

#include "cli/slurm-step.h"

int main(int argc, char *argv[])
{
        cli_context ctx = {.socket_arg = NULL};
        int i = 1;

        if (i + 1 < argc && strcmp(argv[i], "--socket") == 0) {
                ctx.socket_arg = argv[i + 1];
                i += 2;
        }
        /* cli_slurm_step_main() wants argv[0] to be the verb. */
        argv[i - 1] = (char *)"step";
        return cli_slurm_step_main(&ctx, argc - (i - 1), argv + (i - 1));
}
