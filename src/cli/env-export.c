/* `gpukeeper env export`: the environment.yml of one environment. */
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

int cli_env_export(cli_context *ctx, EnvArgs *a)
{
        _cleanup_(env_info_freep) EnvInfo *e = NULL;
        int r;

        r = cli_env_operand_env(a, ENV_LOAD_PACKAGES, &e);
        if (r != CLI_EXIT_OK)
                return r;
        r = env_export(e,
                       a->from_history ? ENV_EXPORT_FROM_HISTORY
                       : a->no_builds  ? ENV_EXPORT_NO_BUILDS
                                       : ENV_EXPORT_BUILDS,
                       stdout);
        for (size_t i = 0; i < e->n_warnings; i++) {
                fputs("gpukeeper: warning: ", stderr);
                cli_env_put_text(stderr, e->warnings[i], false);
                fputc('\n', stderr);
        }
        if (r == -EIO)
                return cli_finish(CLI_EXIT_IO);
        if (r < 0) {
                fprintf(stderr, "gpukeeper: cannot export %s: %s\n", e->path, strerror(-r));
                return CLI_EXIT_SOFTWARE;
        }
        return cli_finish(CLI_EXIT_OK);
}

