/* `gpukeeper env backup` (root): every user's environment specs into one
 * dated archive. */
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

int cli_env_backup(cli_context *ctx, EnvArgs *a)
{
        _cleanup_free_ char *path = NULL;
        EnvUser *users = NULL;
        size_t n_users = 0;
        const char *dir = a->to ? a->to : DEFAULT_BACKUP_DIR;
        EnvOptions o = {};
        int r;

        r = cli_env_no_operands(a);
        if (r != CLI_EXIT_OK)
                return r;
        r = cli_env_require_root("env backup");
        if (r != CLI_EXIT_OK)
                return r;
        if (!a->to && mkdir(DEFAULT_BACKUP_DIR, 0700) < 0 && errno != EEXIST) {
                fprintf(stderr, "gpukeeper: cannot create %s: %m (give another with --to DIR)\n",
                        DEFAULT_BACKUP_DIR);
                return CLI_EXIT_IO;
        }
        r = env_users_all(&users, &n_users);
        if (r < 0) {
                fprintf(stderr, "gpukeeper: cannot list the users of this system: %s\n",
                        strerror(-r));
                return CLI_EXIT_SOFTWARE;
        }
        r = env_backup(users, n_users, dir, &o, now_usec(CLOCK_REALTIME), &path);
        env_users_free(users, n_users);
        if (r < 0) {
                fprintf(stderr, "gpukeeper: cannot write a backup into %s: %s\n", dir,
                        strerror(-r));
                return r == -ENOENT ? CLI_EXIT_NOT_FOUND : CLI_EXIT_IO;
        }
        puts(path);
        return cli_finish(CLI_EXIT_OK);
}

