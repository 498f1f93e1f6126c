/* gpukeeper-slurm-gres: the helper executable of `gpukeeper slurm gres`
 * (cli/helper.h, cli/slurm-gres.h), which loads NVML; `gpukeeper` execs
 * it. */
#include "cli/helper.h"
#include "cli/slurm-gres.h"

int main(int argc, char *argv[])
{
        static const cli_helper_verb verbs[] = {
            {"slurm", cli_slurm_gres_main, cli_slurm_usage},
        };

        return cli_helper_main(argc, argv, verbs, ELEMENTSOF(verbs));
}
