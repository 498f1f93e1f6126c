/* `gpukeeper env clean-cache`: conda's package caches of a user, cleaned. */
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

int cli_env_clean_cache(cli_context *ctx, EnvArgs *a)
{
        _cleanup_(env_clean_plan_freep) EnvCleanPlan *plan = NULL;
        EnvUser user = {};
        EnvOptions o = {};
        char size[16];
        int r;

        r = cli_env_no_operands(a);
        if (r != CLI_EXIT_OK)
                return r;
        r = cli_env_target_user(a->verb, a->user, &user);
        if (r != CLI_EXIT_OK)
                return r;
        o.flags = cli_env_flags(&user);
        r = env_clean_plan(&user, &o, &plan);
        if (r < 0) {
                fprintf(stderr, "gpukeeper: cannot read the package caches of %s: %s\n", user.name,
                        strerror(-r));
                env_user_done(&user);
                return cli_env_exit_for_errno(r);
        }
        for (size_t i = 0; i < plan->n_errors; i++) {
                fputs("gpukeeper: ", stderr);
                cli_env_put_text(stderr, plan->errors[i], false);
                fputc('\n', stderr);
        }
        for (size_t i = 0; i < plan->n_items; i++) {
                printf("%s %-11s %8s  ", a->dry_run ? "would remove" : "remove",
                       env_clean_kind_to_string(plan->items[i].kind),
                       cli_env_format_size(size, sizeof size, plan->items[i].bytes));
                cli_env_put_text(stdout, plan->items[i].path, false);
                fputc('\n', stdout);
        }
        cli_env_format_size(size, sizeof size, plan->total_bytes);
        if (a->dry_run) {
                printf("Would free %s in %zu package cache%s.\n", size, plan->n_pkgs_dirs,
                       plan->n_pkgs_dirs == 1 ? "" : "s");
                env_user_done(&user);
                return cli_finish(CLI_EXIT_OK);
        }
        r = env_clean_apply(&user, plan, &o);
        env_user_done(&user);
        if (r < 0) {
                fprintf(stderr, "gpukeeper: could not remove everything: %s\n", strerror(-r));
                return cli_env_exit_for_errno(r);
        }
        printf("Freed %s.\n", size);
        return cli_finish(CLI_EXIT_OK);
}

