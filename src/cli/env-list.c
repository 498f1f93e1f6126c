/* `gpukeeper env list`: every environment of a user (or of all users), with
 * its size, versions and when it was created and last used. */
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

/* Where root's `env list` remembers env sizes (see EnvOptions.size_cache). */
#define ENV_LIST_ROOT_SIZE_CACHE_DIR "/var/cache/gpukeeper"

static void list_header(const cli_term *term)
{
        cli_text_style(stdout, term, CLI_STYLE_BOLD);
        printf("%-16s %-14s %-8s %-8s %-6s %6s %-10s %-24s %s", "NAME", "OWNER", "PYTHON", "TORCH",
               "CUDA", "SIZE", "CREATED", "LAST USED", "PATH");
        cli_text_style(stdout, term, CLI_STYLE_RESET);
        fputc('\n', stdout);
}

static void list_row(const cli_term *term, const EnvInfo *e)
{
        char size[16], created[32], used[32], used_with_source[48];

        cli_text_field(stdout, e->name, 16, CLI_ALIGN_LEFT, term->unicode);
        fputc(' ', stdout);
        cli_text_field(stdout, e->owner_name ? e->owner_name : "?", 14, CLI_ALIGN_LEFT,
                       term->unicode);
        fputc(' ', stdout);
        if (e->error) {
                cli_text_style(stdout, term, CLI_STYLE_RED);
                fputs("error: ", stdout);
                cli_env_put_text(stdout, e->error, term->unicode);
                cli_text_style(stdout, term, CLI_STYLE_RESET);
                fputs("  ", stdout);
                cli_env_put_text(stdout, e->path, term->unicode);
                fputc('\n', stdout);
                return;
        }
        cli_text_field(stdout, e->python_version ? e->python_version : "-", 8, CLI_ALIGN_LEFT,
                       term->unicode);
        fputc(' ', stdout);
        cli_text_field(stdout, e->torch_version ? e->torch_version : "-", 8, CLI_ALIGN_LEFT,
                       term->unicode);
        fputc(' ', stdout);
        cli_text_field(stdout, e->cuda_version ? e->cuda_version : "-", 6, CLI_ALIGN_LEFT,
                       term->unicode);
        printf(" %6s %-10s ", cli_env_format_size(size, sizeof size, e->size_bytes),
               cli_env_format_time(created, sizeof created, e->created_usec, true));
        if (e->last_used_source == ENV_LAST_USED_NONE)
                snprintf(used_with_source, sizeof used_with_source, "-");
        else
                snprintf(used_with_source, sizeof used_with_source, "%s (%s)",
                         cli_env_format_time(used, sizeof used, e->last_used_usec, false),
                         env_last_used_source_to_string(e->last_used_source));
        printf("%-24s ", used_with_source);
        cli_env_put_text(stdout, e->path, term->unicode);
        fputc('\n', stdout);
}

/* The size cache of `env list` (EnvOptions.size_cache), its directory made
 * 0700 if missing: root's is ENV_LIST_ROOT_SIZE_CACHE, anyone else's
 * $XDG_CACHE_HOME/gpukeeper/env-sizes.json, else ~/.cache/gpukeeper/… (the home
 * from passwd). NULL when there is no such place: the sizes are then walked. */
static char *list_size_cache_path(void)
{
        _cleanup_free_ char *cache_home = NULL, *dir = NULL;
        const char *xdg = getenv("XDG_CACHE_HOME");
        char *path;

        if (geteuid() == 0) {
                _cleanup_close_ int fd = -1;
                struct stat st;

                /* Only a directory of root's that nobody else may write to. */
                if (mkdir(ENV_LIST_ROOT_SIZE_CACHE_DIR, 0700) < 0 && errno != EEXIST)
                        return NULL;
                fd = open(ENV_LIST_ROOT_SIZE_CACHE_DIR,
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0 || fstat(fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022))
                        return NULL;
                return strdup(ENV_LIST_ROOT_SIZE_CACHE_DIR "/env-sizes.json");
        }
        if (xdg && xdg[0] == '/')
                cache_home = strdup(xdg);
        else {
                EnvUser me = {};

                if (env_user_from_uid(geteuid(), &me) < 0)
                        return NULL;
                if (asprintf(&cache_home, "%s/.cache", me.home) < 0)
                        cache_home = NULL;
                env_user_done(&me);
        }
        if (!cache_home || asprintf(&dir, "%s/gpukeeper", cache_home) < 0)
                return NULL;
        if ((mkdir(cache_home, 0700) < 0 && errno != EEXIST) ||
            (mkdir(dir, 0700) < 0 && errno != EEXIST))
                return NULL;
        if (asprintf(&path, "%s/env-sizes.json", dir) < 0)
                return NULL;
        return path;
}

static void list_print_json(EnvList *const *lists, size_t n, int *exit_code)
{
        _cleanup_(json_decrefp) json_t *jenvs = json_array(), *jerrors = json_array(), *doc = NULL;

        if (!jenvs || !jerrors) {
                *exit_code = CLI_EXIT_SOFTWARE;
                return;
        }
        for (size_t i = 0; i < n; i++) {
                for (size_t j = 0; j < lists[i]->n_envs; j++)
                        if (json_array_append_new(jenvs, env_info_to_json(lists[i]->envs[j])) < 0)
                                *exit_code = CLI_EXIT_SOFTWARE;
                for (size_t j = 0; j < lists[i]->n_errors; j++)
                        if (json_array_append_new(
                                jerrors, json_pack("{s:o, s:o}", "user",
                                                   env_json_string(lists[i]->user.name), "error",
                                                   env_json_string(lists[i]->errors[j]))) < 0)
                                *exit_code = CLI_EXIT_SOFTWARE;
        }
        doc = json_pack("{s:O, s:O}", "envs", jenvs, "errors", jerrors);
        if (!doc) {
                *exit_code = CLI_EXIT_SOFTWARE;
                return;
        }
        cli_print_json(doc);
}

/* Print the table; returns whether there was a row. */
static bool list_print_text(EnvList *const *lists, size_t n)
{
        cli_term term;
        bool header = false;

        cli_term_detect(stdout, &term);
        for (size_t i = 0; i < n; i++) {
                for (size_t j = 0; j < lists[i]->n_envs; j++) {
                        if (!header) {
                                list_header(&term);
                                header = true;
                        }
                        list_row(&term, lists[i]->envs[j]);
                }
                for (size_t j = 0; j < lists[i]->n_errors; j++) {
                        fprintf(stderr, "gpukeeper: %s: ", lists[i]->user.name);
                        cli_env_put_text(stderr, lists[i]->errors[j], false);
                        fputc('\n', stderr);
                }
        }
        return header;
}

/* Every target user's envs first, then all sizes in one parallel pass through
 * the size cache, then the output. */
int cli_env_list(cli_context *ctx, EnvArgs *a)
{
        EnvUser *users = NULL;
        EnvList **lists = NULL;
        _cleanup_free_ char *cache = NULL;
        size_t n_users = 0, n_lists = 0;
        int r, exit_code = CLI_EXIT_OK;

        r = cli_env_no_operands(a);
        if (r != CLI_EXIT_OK)
                return r;
        r = cli_env_target_users(a, &users, &n_users);
        if (r != CLI_EXIT_OK)
                return r;
        lists = calloc(MAX(n_users, (size_t)1), sizeof(EnvList *));
        if (!lists) {
                env_users_free(users, n_users);
                return CLI_EXIT_SOFTWARE;
        }
        for (size_t i = 0; i < n_users; i++) {
                EnvOptions o = {.flags = cli_env_flags(&users[i])};

                r = env_list_user(&users[i], &o, &lists[n_lists]);
                if (r == -ENOMEM) {
                        exit_code = CLI_EXIT_SOFTWARE;
                        goto finish;
                }
                if (r == -EPERM) {
                        /* Their home leads to someone else's directory (a symlink
                         * swapped in): worth saying even when going through everyone. */
                        fprintf(stderr,
                                "gpukeeper: the home of %s (%s) is not owned by them, not read\n",
                                users[i].name, users[i].home);
                        if (!a->all_users)
                                exit_code = cli_env_exit_for_errno(r);
                        continue;
                }
                if (r < 0) {
                        /* A user without a readable home simply has nothing to list
                         * when we go through everyone; asked for by name, say so. */
                        if (!a->all_users) {
                                fprintf(stderr, "gpukeeper: cannot read the home of %s (%s): %s\n",
                                        users[i].name, users[i].home, strerror(-r));
                                exit_code = cli_env_exit_for_errno(r);
                        }
                        continue;
                }
                n_lists++;
        }
        cache = list_size_cache_path();
        if (env_lists_load_sizes(lists, n_lists, &(EnvOptions){ .size_cache = cache }) < 0) {
                exit_code = CLI_EXIT_SOFTWARE;
                goto finish;
        }
        if (a->json)
                list_print_json(lists, n_lists, &exit_code);
        else if (!list_print_text(lists, n_lists) && exit_code == CLI_EXIT_OK)
                puts(a->all_users ? "No conda environments found."
                                  : "No conda environments found (see 'gpukeeper env create').");
finish:
        env_lists_free(lists, n_lists);
        env_users_free(users, n_users);
        return cli_finish(exit_code);
}

