/* gpukeeper-env: the helper executable of `gpukeeper env` and `gpukeeper
 * kernel` (cli/helper.h), which need libarchive and libyaml through the
 * env library, and of `gpukeeper mig` (libyaml for mig-parted files); `gpukeeper` execs it. */
#include "cli/cli.h"
#include "cli/env.h"
#include "cli/helper.h"

int main(int argc, char *argv[])
{
        static const cli_helper_verb verbs[] = {
            {"env", cli_env_main, cli_env_usage},
            {"kernel", cli_kernel_main, cli_kernel_usage},
            {"mig", cli_mig_main, cli_mig_usage},
        };

        return cli_helper_main(argc, argv, verbs, ELEMENTSOF(verbs));
}
