/* `gpukeeper env trash [list | empty]`: what `env prune` moved aside, and
 * removing it for good, which is what frees the disk (issue 17 item 7).
 * Users see and empty their own trash; root names anyone's with --user, or
 * every user's with --all-users. The daemon empties what is older than
 * env.trash_retention once a day; `list` says when each entry goes. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "basic/parse.h"
#include "basic/time-util.h"
#include "cli/env-internal.h"
#include "cli/text.h"

typedef struct TrashTotals {
        size_t entries;
        uint64_t bytes;
        json_t *json; /* `list --json`: the entries */
} TrashTotals;

static json_t *entry_json(const EnvUser *user, const EnvTrashEntry *e, uint64_t retention)
{
        json_t *j = json_pack("{s:o, s:I, s:o, s:o, s:o, s:I, s:I}", "user", env_json_string(user->name),
                              "uid", (json_int_t)user->uid, "id", env_json_string(e->id), "name",
                              env_json_string(e->name), "original_path",
                              env_json_string(e->original_path), "trashed_at",
                              (json_int_t)(e->trashed_usec / USEC_PER_SEC), "size_bytes",
                              (json_int_t)e->size_bytes);

        if (j && json_object_set_new(j, "removed_after",
                                     retention ? json_integer((json_int_t)((e->trashed_usec + retention) /
                                                                           USEC_PER_SEC))
                                               : json_null()) < 0)
                json_decref(TAKE_PTR(j));
        return j;
}

static int list_user(const EnvArgs *a, const EnvUser *user, uint64_t retention, TrashTotals *t)
{
        EnvOptions o = {.flags = cli_env_flags(user)};
        EnvTrashEntry *e = NULL;
        size_t n = 0;
        int r;

        r = env_trash_list(user, &o, &e, &n);
        if (r < 0) {
                if (a->all_users)
                        return CLI_EXIT_OK; /* no readable home: no trash */
                fprintf(stderr, "gpukeeper: cannot read the trash of %s: %s\n", user->name,
                        strerror(-r));
                return cli_env_exit_for_errno(r);
        }
        for (size_t i = 0; i < n; i++) {
                char size[16], when[32], gone[32];

                t->entries++;
                t->bytes += e[i].size_bytes;
                if (t->json) {
                        if (json_array_append_new(t->json, entry_json(user, &e[i], retention)) < 0) {
                                env_trash_entries_free(e, n);
                                return CLI_EXIT_SOFTWARE;
                        }
                        continue;
                }
                if (a->all_users) {
                        cli_env_put_text(stdout, user->name, false);
                        fputs("  ", stdout);
                }
                cli_env_put_text(stdout, e[i].id, false);
                printf("  %s  %s  ", cli_env_format_time(when, sizeof when, e[i].trashed_usec, false),
                       cli_env_format_size(size, sizeof size, e[i].size_bytes));
                cli_env_put_text(stdout, e[i].original_path, false);
                if (retention)
                        printf("  (removed after %s)",
                               cli_env_format_time(gone, sizeof gone, e[i].trashed_usec + retention,
                                                   true));
                fputc('\n', stdout);
        }
        env_trash_entries_free(e, n);
        return CLI_EXIT_OK;
}

/* The entries of `user` that `empty` removes: those named (each must be in
 * the trash), else all, or with --older-than those trashed before then. */
static int empty_user(const EnvArgs *a, const EnvUser *user, uint64_t now, TrashTotals *t)
{
        EnvOptions o = {.flags = cli_env_flags(user)};
        EnvTrashEntry *e = NULL;
        size_t n = 0, n_ids = 0;
        uint64_t bytes = 0;
        char **ids = NULL, size[16];
        int r, exit_code = CLI_EXIT_OK;

        r = env_trash_list(user, &o, &e, &n);
        if (r < 0) {
                if (a->all_users)
                        return CLI_EXIT_OK;
                fprintf(stderr, "gpukeeper: cannot read the trash of %s: %s\n", user->name,
                        strerror(-r));
                return cli_env_exit_for_errno(r);
        }
        ids = calloc(n + 1, sizeof(char *));
        if (!ids) {
                env_trash_entries_free(e, n);
                return CLI_EXIT_SOFTWARE;
        }
        for (int k = 0; k < a->n_operands; k++) {
                bool found = false;

                for (size_t i = 0; i < n && !found; i++)
                        found = strcmp(e[i].id, a->operands[k]) == 0;
                if (!found) {
                        fprintf(stderr,
                                "gpukeeper: %s has no trash entry '%s' (see 'gpukeeper env trash "
                                "list')\n",
                                user->name, a->operands[k]);
                        exit_code = CLI_EXIT_NOT_FOUND;
                }
        }
        for (size_t i = 0; i < n; i++) {
                bool take = a->n_operands == 0;

                for (int k = 0; k < a->n_operands && !take; k++)
                        take = strcmp(e[i].id, a->operands[k]) == 0;
                if (take && a->older_than_usec &&
                    (now < a->older_than_usec || e[i].trashed_usec > now - a->older_than_usec))
                        take = false;
                if (!take)
                        continue;
                ids[n_ids++] = e[i].id;
                bytes += e[i].size_bytes;
                fputs(a->dry_run ? "would remove " : "remove ", stdout);
                if (a->all_users) {
                        cli_env_put_text(stdout, user->name, false);
                        fputs("  ", stdout);
                }
                cli_env_put_text(stdout, e[i].id, false);
                printf("  %s  ", cli_env_format_size(size, sizeof size, e[i].size_bytes));
                cli_env_put_text(stdout, e[i].original_path, false);
                fputc('\n', stdout);
        }
        if (!a->dry_run && n_ids > 0) {
                fflush(stdout);
                r = env_trash_remove(user, ids, n_ids, &o);
                if (r < 0) {
                        fprintf(stderr, "gpukeeper: cannot empty all of the trash of %s: %s\n",
                                user->name, strerror(-r));
                        exit_code = cli_env_exit_for_errno(r);
                }
        }
        t->entries += n_ids;
        t->bytes += bytes;
        free(ids);
        env_trash_entries_free(e, n);
        return exit_code;
}

int cli_env_trash(cli_context *ctx, EnvArgs *a)
{
        _cleanup_(cli_env_settings_done) EnvSettings settings = {};
        bool empty = strcmp(a->trash_action, "empty") == 0;
        uint64_t now = now_usec(CLOCK_REALTIME);
        TrashTotals t = {};
        EnvUser *users = NULL;
        size_t n_users = 0;
        char size[16];
        int r, exit_code = CLI_EXIT_OK;

        if (!empty) {
                r = cli_env_no_operands(a);
                if (r != CLI_EXIT_OK)
                        return r;
                if (a->dry_run || a->older_than_usec)
                        return cli_usage_error(a->verb, "--dry-run and --older-than are for "
                                                        "'env trash empty'");
                /* When the daemon's sweep removes each entry. */
                r = cli_env_settings(ctx, &settings);
                if (r != CLI_EXIT_OK)
                        return r;
        } else if (a->json)
                return cli_usage_error(a->verb, "--json is for 'env trash list'");
        if (a->all_users && a->n_operands > 0)
                return cli_usage_error(a->verb, "name entries of one user (--user), not with "
                                                "--all-users");
        r = cli_env_target_users(a, &users, &n_users);
        if (r != CLI_EXIT_OK)
                return r;
        if (a->json && !(t.json = json_array())) {
                env_users_free(users, n_users);
                return CLI_EXIT_SOFTWARE;
        }
        for (size_t i = 0; i < n_users; i++) {
                r = empty ? empty_user(a, &users[i], now, &t)
                          : list_user(a, &users[i], settings.trash_retention_usec, &t);
                if (r != CLI_EXIT_OK)
                        exit_code = r;
        }
        env_users_free(users, n_users);
        cli_env_format_size(size, sizeof size, t.bytes);
        if (t.json) {
                json_t *doc = json_pack("{s:o, s:I}", "trash", t.json, "retention_sec",
                                        (json_int_t)(settings.trash_retention_usec / USEC_PER_SEC));

                if (!doc)
                        return CLI_EXIT_SOFTWARE;
                cli_print_json(doc);
                json_decref(doc);
                return cli_finish(exit_code);
        }
        if (empty) {
                if (t.entries == 0 && exit_code == CLI_EXIT_OK)
                        puts("Nothing to remove.");
                else if (t.entries > 0)
                        printf("%s %zu trash entr%s (%s).\n", a->dry_run ? "Would remove" : "Removed",
                               t.entries, t.entries == 1 ? "y" : "ies", size);
        } else if (t.entries == 0)
                puts("The trash is empty.");
        else {
                printf("%zu entr%s, %s", t.entries, t.entries == 1 ? "y" : "ies", size);
                if (settings.trash_retention_usec) {
                        char d[FORMAT_DURATION_MAX];

                        format_duration(d, sizeof d, settings.trash_retention_usec);
                        printf("; gpukeeperd removes entries %s after they were trashed "
                               "(env.trash_retention)",
                               d);
                } else
                        fputs("; env.trash_retention is off: entries stay until emptied", stdout);
                puts(". 'gpukeeper env trash empty' frees the space now.");
        }
        return cli_finish(exit_code);
}
