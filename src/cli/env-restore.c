/* `gpukeeper env restore`: move an environment back from the trash, or list
 * the trash. */
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

/* `env restore --list`: the user's trash, oldest first. */
static int restore_list(const EnvArgs *a, const EnvUser *user, const EnvOptions *o)
{
        _cleanup_(json_decrefp) json_t *list = NULL, *doc = NULL;
        EnvTrashEntry *entries = NULL;
        size_t n = 0;
        char size[16], when[32];
        int r;

        r = env_trash_list(user, o, &entries, &n);
        if (r < 0) {
                fprintf(stderr, "gpukeeper: cannot read the trash of %s: %s\n", user->name,
                        strerror(-r));
                return cli_env_exit_for_errno(r);
        }
        if (a->json) {
                list = json_array();
                for (size_t i = 0; list && i < n; i++)
                        if (json_array_append_new(
                                list,
                                json_pack("{s:o, s:o, s:o, s:I, s:I}", "id",
                                          env_json_string(entries[i].id), "name",
                                          env_json_string(entries[i].name), "original_path",
                                          env_json_string(entries[i].original_path), "trashed_at",
                                          (json_int_t)(entries[i].trashed_usec / USEC_PER_SEC),
                                          "size_bytes", (json_int_t)entries[i].size_bytes)) < 0)
                                json_decref(TAKE_PTR(list));
                doc = list ? json_pack("{s:O}", "trash", list) : NULL;
                env_trash_entries_free(entries, n);
                if (!doc)
                        return CLI_EXIT_SOFTWARE;
                cli_print_json(doc);
                return cli_finish(CLI_EXIT_OK);
        }
        if (n == 0)
                puts("The trash is empty.");
        for (size_t i = 0; i < n; i++) {
                cli_env_put_text(stdout, entries[i].id, false);
                printf("  %s  %s  ",
                       cli_env_format_time(when, sizeof when, entries[i].trashed_usec, false),
                       cli_env_format_size(size, sizeof size, entries[i].size_bytes));
                cli_env_put_text(stdout, entries[i].original_path, false);
                fputc('\n', stdout);
        }
        env_trash_entries_free(entries, n);
        return cli_finish(CLI_EXIT_OK);
}

int cli_env_restore(cli_context *ctx, EnvArgs *a)
{
        _cleanup_free_ char *path = NULL;
        EnvUser user = {};
        EnvOptions o = {};
        int r;

        if (a->list)
                r = cli_env_no_operands(a);
        else
                r = cli_env_one_operand(a, "trash entry (see 'gpukeeper env restore --list')");
        if (r != CLI_EXIT_OK)
                return r;
        r = cli_env_target_user(a->verb, a->user, &user);
        if (r != CLI_EXIT_OK)
                return r;
        o.flags = cli_env_flags(&user);
        if (a->list) {
                r = restore_list(a, &user, &o);
                env_user_done(&user);
                return r;
        }
        r = env_restore(&user, a->operands[0], &o, &path);
        env_user_done(&user);
        if (r < 0) {
                fprintf(stderr, "gpukeeper: cannot restore '%s': %s\n", a->operands[0],
                        r == -ENOENT   ? "no such trash entry (see 'gpukeeper env restore --list')"
                        : r == -EEXIST ? "its original path exists again; move that away first"
                        : r == -EINVAL ? "not a trash entry ID"
                                       : strerror(-r));
                return r == -EINVAL ? CLI_EXIT_USAGE : cli_env_exit_for_errno(r);
        }
        fputs("Restored to ", stdout);
        cli_env_put_text(stdout, path, false);
        fputc('\n', stdout);
        return cli_finish(CLI_EXIT_OK);
}

