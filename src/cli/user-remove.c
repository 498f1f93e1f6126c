/* `gpukeeper user remove NAME [--keep-home]`: back up the environment
 * specs, release the leases, remove the account (see user.c and
 * user-internal.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "basic/strv.h"
#include "basic/time-util.h"
#include "cli/user-internal.h"

/* Release every lease the user holds (admin release through the daemon).
 * A daemon that is not running is a warning: nothing is held then that a
 * running daemon would not end by itself on restart (run leases of a gone
 * client, manual ones at expiry). */
static void release_leases(const cli_context *ctx, const EnvUser *u, int *status)
{
        _cleanup_(gk_client_freep) gk_client *client = NULL;
        _cleanup_(json_decrefp) json_t *result = NULL;
        const char *sock = gk_socket_path(ctx->socket_arg);
        gk_call_error error = {};
        json_t *leases, *lease;
        size_t i, released = 0, failed = 0;
        int r;

        r = gk_client_connect(sock, &client);
        if (r < 0) {
                cli_user_report("leases", "NOT released: gpukeeperd is not reachable at %s", sock);
                cli_user_warn("%s's leases were not released: gpukeeperd is not reachable at %s (%s); "
                     "they end at expiry or when their command does",
                     u->name, sock, strerror(-r));
                return;
        }
        r = gk_client_call(client, "lease.list", json_pack("{s:b}", "all", 1), &result, &error);
        if (r != 0) {
                cli_user_report("leases", "NOT released");
                cli_user_fail(status, cli_call_failed(ctx, "lease.list", r, &error));
                return;
        }
        leases = json_object_get(result, "leases");
        json_array_foreach(leases, i, lease) {
                _cleanup_(json_decrefp) json_t *res = NULL;
                json_t *uid = json_object_get(lease, "uid"), *id = json_object_get(lease, "id");

                if (!json_is_integer(uid) || json_integer_value(uid) != (json_int_t)u->uid ||
                    !json_is_integer(id))
                        continue;
                r = gk_client_call(client, "lease.release",
                                   json_pack("{s:I}", "id", json_integer_value(id)), &res,
                                   &error);
                if (r == 0) {
                        cli_user_report("leases", "%" JSON_INTEGER_FORMAT ": released",
                               json_integer_value(id));
                        released++;
                } else {
                        cli_user_report("leases", "%" JSON_INTEGER_FORMAT ": NOT released",
                               json_integer_value(id));
                        cli_user_fail(status, cli_call_failed(ctx, "lease.release", r, &error));
                        failed++;
                }
        }
        if (released == 0 && failed == 0)
                cli_user_report("leases", "none held");
}

int cli_user_remove(const cli_context *ctx, const UserArgs *a)
{
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *base = NULL, *dir = NULL, *archive = NULL;
        _cleanup_(strv_freep) char **argv = NULL;
        uint64_t now = now_usec(CLOCK_REALTIME);
        EnvOptions o = {};
        EnvUser u = {};
        int r, status = CLI_EXIT_OK;

        r = cli_user_require_admin(a->verb);
        if (r != CLI_EXIT_OK)
                return r;
        r = cli_user_load_config(&c);
        if (r != CLI_EXIT_OK)
                return r;
        r = cli_user_lookup(a->name, &u);
        if (r == EXIT_NO_USER) {
                fprintf(stderr, "gpukeeper: there is no account '%s'; nothing removed\n",
                        a->name);
                return EXIT_NO_USER;
        }
        if (r != CLI_EXIT_OK)
                return r;
        if (u.uid < ONBOARD_UID_MIN) {
                fprintf(stderr,
                        "gpukeeper: %s is a system account (uid %u); user remove removes people's "
                        "accounts (uid %d and above) only\n",
                        a->name, (unsigned)u.uid, ONBOARD_UID_MIN);
                env_user_done(&u);
                return CLI_EXIT_PERMISSION;
        }
        if (onboard_userdel_argv(u.name, !a->keep_home, &argv) < 0 ||
            config_onboarding_backup_dir(&c->onboarding, c->state_dir, &base) < 0 ||
            onboard_backup_dir(base, u.name, now, &dir) < 0) {
                env_user_done(&u);
                return CLI_EXIT_SOFTWARE;
        }

        /* 1. The environment specs, before anything goes. */
        r = onboard_mkdir_p(dir);
        if (r == 0)
                r = env_backup(&u, 1, dir, &o, now, &archive);
        if (r < 0) {
                fprintf(stderr,
                        "gpukeeper: cannot back up the environments of %s into %s: %s; nothing "
                        "removed (set onboarding.backup_dir to a writable directory)\n",
                        u.name, dir, strerror(-r));
                env_user_done(&u);
                return CLI_EXIT_IO;
        }
        cli_user_report("backup", "%s", archive);

        /* 2. Their leases. */
        release_leases(ctx, &u, &status);

        /* 3. The account. */
        r = cli_user_run_tool(argv);
        if (r != CLI_EXIT_OK) {
                cli_user_report("account", "%s: NOT removed", u.name);
                cli_user_fail(&status, r);
        } else
                cli_user_report("account", "%s: removed%s", u.name,
                       a->keep_home ? " (home kept)" : ", with its home");
        env_user_done(&u);
        return cli_finish(status);
}
