/* `gpukeeper env prune`: move environments unused for a while to the
 * owner's trash (or show what would move, with --dry-run). */
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

static void prune_item_line(const EnvPruneItem *it, const char *lead)
{
        char size[16], used[32];

        printf("%s", lead);
        cli_env_put_text(stdout, it->name, false);
        fputs("  ", stdout);
        cli_env_put_text(stdout, it->path, false);
        printf("  %s", cli_env_format_size(size, sizeof size, it->size_bytes));
        if (it->last_used_source != ENV_LAST_USED_NONE)
                printf("  last used %s (%s)",
                       cli_env_format_time(used, sizeof used, it->last_used_usec, false),
                       env_last_used_source_to_string(it->last_used_source));
}

/* Prune (or plan) one user's environments; adds to the totals. */
static int prune_user(const EnvArgs *a, const EnvUser *user, uint64_t now, size_t *moved,
                      uint64_t *freed)
{
        _cleanup_(env_prune_plan_freep) EnvPrunePlan *plan = NULL;
        EnvOptions o = {.flags = cli_env_flags(user)};
        int r, exit_code = CLI_EXIT_OK;

        r = env_prune_plan(user, a->unused_for_usec, now, &o, &plan);
        if (r < 0) {
                if (a->all_users)
                        return CLI_EXIT_OK; /* no readable home: nothing to prune */
                fprintf(stderr, "gpukeeper: cannot read the environments of %s: %s\n", user->name,
                        strerror(-r));
                return cli_env_exit_for_errno(r);
        }
        for (size_t i = 0; i < plan->n_errors; i++) {
                fprintf(stderr, "gpukeeper: %s: ", user->name);
                cli_env_put_text(stderr, plan->errors[i], false);
                fputc('\n', stderr);
        }
        for (size_t i = 0; i < plan->n_items; i++) {
                const EnvPruneItem *it = &plan->items[i];
                _cleanup_free_ char *id = NULL;

                if (it->skip_reason) {
                        if (!a->all_users || it->busy_pid > 0) {
                                prune_item_line(it, "keep   ");
                                fputs("  (", stdout);
                                cli_env_put_text(stdout, it->skip_reason, false);
                                fputs(")\n", stdout);
                        }
                        continue;
                }
                if (a->dry_run) {
                        prune_item_line(it, "would move ");
                        fputc('\n', stdout);
                        (*moved)++;
                        *freed += it->size_bytes;
                        continue;
                }
                r = env_prune(user, it, &o, now, &id);
                if (r < 0) {
                        fprintf(stderr, "gpukeeper: cannot move %s to the trash: %s\n", it->path,
                                r == -EBUSY    ? "a process started inside it"
                                : r == -EXDEV  ? "it is on another filesystem than the home"
                                : r == -ESTALE ? "it changed while pruning"
                                               : strerror(-r));
                        exit_code = cli_env_exit_for_errno(r);
                        continue;
                }
                prune_item_line(it, "moved  ");
                fputs("  to the trash as ", stdout);
                cli_env_put_text(stdout, id, false);
                fputc('\n', stdout);
                (*moved)++;
                *freed += it->size_bytes;
        }
        return exit_code;
}

int cli_env_prune(cli_context *ctx, EnvArgs *a)
{
        EnvUser *users = NULL;
        size_t n_users = 0, moved = 0;
        uint64_t freed = 0, now = now_usec(CLOCK_REALTIME);
        char size[16];
        int r, exit_code = CLI_EXIT_OK;

        r = cli_env_no_operands(a);
        if (r != CLI_EXIT_OK)
                return r;
        if (a->unused_for_usec == 0)
                return cli_usage_error(a->verb, "how long unused? give --unused-for, e.g. 90d");
        r = cli_env_target_users(a, &users, &n_users);
        if (r != CLI_EXIT_OK)
                return r;
        for (size_t i = 0; i < n_users; i++) {
                r = prune_user(a, &users[i], now, &moved, &freed);
                if (r != CLI_EXIT_OK)
                        exit_code = r;
        }
        env_users_free(users, n_users);
        cli_env_format_size(size, sizeof size, freed);
        if (a->dry_run)
                printf("Would move %zu environment%s (%s) to the trash.\n", moved,
                       moved == 1 ? "" : "s", size);
        else if (moved > 0)
                printf("Moved %zu environment%s (%s) to the trash; 'gpukeeper env restore ID' "
                       "brings one back.\n",
                       moved, moved == 1 ? "" : "s", size);
        else
                puts("Nothing to prune.");
        return cli_finish(exit_code);
}

