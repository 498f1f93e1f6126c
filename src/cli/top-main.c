/* gpukeeper-top: the helper executable of `gpukeeper top` (cli/helper.h),
 * which needs ncursesw; `gpukeeper` execs it. */
#include "cli/helper.h"
#include "cli/top.h"

int main(int argc, char *argv[])
{
        static const cli_helper_verb verbs[] = {
            {"top", cli_top_main, cli_top_usage},
        };

        return cli_helper_main(argc, argv, verbs, ELEMENTSOF(verbs));
}
