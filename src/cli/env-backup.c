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
#include <sysexits.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "basic/parse.h"
#include "basic/time-util.h"
#include "cli/env-internal.h"
#include "cli/text.h"
#include "config/config.h"
#include "env/create.h"
#include "env/hooks.h"

/* Where backups go without --to: the daemon's env.backup_dir (which
 * defaults to state_dir/env-backups), read from its configuration file, so
 * the command and the daemon's daily job write to one place. Without a file,
 * the built-in default. Returns a CLI exit status. */
static int configured_backup_dir(char **ret)
{
        const char *path = getenv("GPUKEEPER_CONFIG");
        _cleanup_free_ char *error = NULL;
        Config *c = NULL;
        int r;

        if (!path || !*path)
                path = CLI_DEFAULT_CONFIG;
        if (access(path, F_OK) < 0 && errno == ENOENT && strcmp(path, CLI_DEFAULT_CONFIG) == 0) {
                *ret = strdup(DEFAULT_BACKUP_DIR);
                return *ret ? CLI_EXIT_OK : CLI_EXIT_SOFTWARE;
        }
        r = config_load(path, &c, &error);
        if (r < 0) {
                fprintf(stderr, "gpukeeper: cannot read the daemon's configuration: %s\n"
                                "gpukeeper: fix it (gpukeeperd --check-config) or give --to DIR\n",
                        error ? error : strerror(-r));
                return EX_CONFIG;
        }
        *ret = strdup(c->env.backup_dir);
        config_free(c);
        return *ret ? CLI_EXIT_OK : CLI_EXIT_SOFTWARE;
}

/* mkdir -p, mode 0700 for what it creates (the daemon makes its own the
 * same way): a --to that does not exist yet is not an error. */
static int mkdir_parents(const char *dir)
{
        _cleanup_free_ char *p = strdup(dir);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, 0700) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int cli_env_backup(cli_context *ctx, EnvArgs *a)
{
        _cleanup_free_ char *path = NULL, *configured = NULL;
        EnvUser *users = NULL;
        size_t n_users = 0;
        const char *dir;
        EnvOptions o = {};
        int r;

        r = cli_env_no_operands(a);
        if (r != CLI_EXIT_OK)
                return r;
        r = cli_env_require_root("env backup");
        if (r != CLI_EXIT_OK)
                return r;
        if (!a->to) {
                r = configured_backup_dir(&configured);
                if (r != CLI_EXIT_OK)
                        return r;
        }
        dir = a->to ? a->to : configured;
        r = mkdir_parents(dir);
        if (r < 0) {
                fprintf(stderr, "gpukeeper: cannot create %s: %s%s\n", dir, strerror(-r),
                        a->to ? "" : " (give another with --to DIR)");
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

