/* gpukeeper-user: the helper executable of `gpukeeper user` (cli/helper.h),
 * which needs libyaml and libarchive through the configuration and the env
 * library; `gpukeeper` execs it. */
#include "cli/cli.h"
#include "cli/helper.h"
#include "cli/user.h"

int main(int argc, char *argv[])
{
        static const cli_helper_verb verbs[] = {
            {"user", cli_user_main, cli_user_usage},
        };

        return cli_helper_main(argc, argv, verbs, ELEMENTSOF(verbs));
}
