/* What the `gpukeeper env` verbs share: the option parser, operands,
 * target users and environments, and the output helpers; see
 * env-internal.h. */
#include <errno.h>
#include <getopt.h>
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
#include "config/config.h"

/* ---- output helpers ------------------------------------------------------------ */

/* "1.5G", "512M", "4.0K", "100B": binary units, as du -h. */
const char *cli_env_format_size(char *buf, size_t len, uint64_t bytes)
{
        static const char units[] = "KMGTPE";
        double v = (double)bytes;
        int u = -1;

        if (bytes < 1024) {
                snprintf(buf, len, "%" PRIu64 "B", bytes);
                return buf;
        }
        while (v >= 1024 && u < (int)sizeof units - 2) {
                v /= 1024;
                u++;
        }
        snprintf(buf, len, v < 10 ? "%.1f%c" : "%.0f%c", v, units[u]);
        return buf;
}

/* Local "YYYY-MM-DD HH:MM" (date_only: "YYYY-MM-DD"), "-" for 0. */
const char *cli_env_format_time(char *buf, size_t len, uint64_t usec, bool date_only)
{
        time_t t = (time_t)(usec / USEC_PER_SEC);
        struct tm tm;

        if (usec == 0 || !localtime_r(&t, &tm) ||
            strftime(buf, len, date_only ? "%Y-%m-%d" : "%Y-%m-%d %H:%M", &tm) == 0)
                snprintf(buf, len, "-");
        return buf;
}

/* A string from a user's files, on one line, control characters neutralised. */
void cli_env_put_text(FILE *f, const char *s, bool unicode)
{
        cli_text_clip(f, s ? s : "-", 4096, unicode);
}

/* ---- the daemon's env settings ---------------------------------------------------- */

void cli_env_settings_done(EnvSettings *s)
{
        free(s->templates_dir);
        free(s->conda_exe);
        *s = (EnvSettings){};
}

/* Ask the daemon, quietly: false when it cannot be reached or does not
 * know `env.config` (an older daemon), so the caller falls back. */
static bool settings_from_daemon(const cli_context *ctx, EnvSettings *s)
{
        _cleanup_(gk_client_freep) gk_client *client = NULL;
        gk_call_error error = {};
        json_t *result = NULL;
        const char *dir, *exe;
        json_t *ret;

        if (gk_client_connect(gk_socket_path(ctx->socket_arg), &client) < 0)
                return false;
        if (gk_client_call(client, "env.config", NULL, &result, &error) != 0)
                return false;
        dir = json_string_value(json_object_get(result, "templates_dir"));
        exe = json_string_value(json_object_get(result, "conda_exe"));
        ret = json_object_get(result, "trash_retention_sec");
        if (!dir || !exe || !json_is_integer(ret) || json_integer_value(ret) < 0) {
                json_decref(result);
                return false;
        }
        s->templates_dir = strdup(dir);
        s->conda_exe = strdup(exe);
        s->trash_retention_usec = (uint64_t)json_integer_value(ret) * USEC_PER_SEC;
        s->source = "gpukeeperd";
        json_decref(result);
        return true;
}

int cli_env_settings(const cli_context *ctx, EnvSettings *ret)
{
        const char *path = getenv("GPUKEEPER_CONFIG");
        _cleanup_free_ char *error = NULL;
        EnvSettings s = {};
        Config *c = NULL;
        int r;

        if (settings_from_daemon(ctx, &s)) {
                if (!s.templates_dir || !s.conda_exe) {
                        cli_env_settings_done(&s);
                        return CLI_EXIT_SOFTWARE;
                }
                *ret = s;
                return CLI_EXIT_OK;
        }
        if (!path || !*path)
                path = CLI_DEFAULT_CONFIG;
        /* The file is often root's alone (it may hold tokens): one we may
         * not read is no error, the defaults are what we can know. */
        if (access(path, R_OK) < 0) {
                s.templates_dir = strdup(CONFIG_DEFAULT_TEMPLATES_DIR);
                s.conda_exe = strdup(CONFIG_DEFAULT_CONDA_EXE);
                s.trash_retention_usec = CONFIG_DEFAULT_ENV_TRASH_RETENTION_USEC;
                s.source = "built-in default";
        } else {
                r = config_load(path, &c, &error);
                if (r < 0) {
                        fprintf(stderr,
                                "gpukeeper: cannot read the daemon's configuration: %s\n"
                                "gpukeeper: fix it (gpukeeperd --check-config)\n",
                                error ? error : strerror(-r));
                        return EX_CONFIG;
                }
                s.templates_dir = strdup(c->env.templates_dir);
                s.conda_exe = strdup(c->env.conda_exe);
                s.trash_retention_usec = c->env.trash_retention_usec;
                snprintf(s.source_buf, sizeof s.source_buf, "%s", path);
                config_free(c);
        }
        if (!s.templates_dir || !s.conda_exe) {
                cli_env_settings_done(&s);
                return CLI_EXIT_SOFTWARE;
        }
        *ret = s;
        if (!ret->source)
                ret->source = ret->source_buf;
        return CLI_EXIT_OK;
}

/* ---- argument parsing ---------------------------------------------------------- */

/* The options of `env <command>`, those not in `allowed` refused. Returns
 * CLI_CONTINUE, with a->operands set, or the exit code (0 after --help). */
int cli_env_parse_args(cli_context *ctx, int argc, char *argv[], unsigned allowed, EnvArgs *a)
{
        static const struct option options[] = {
            CLI_COMMON_OPTIONS,
            {"user", required_argument, NULL, ARG_USER},
            {"all-users", no_argument, NULL, ARG_ALL_USERS},
            {"json", no_argument, NULL, ARG_JSON},
            {"dry-run", no_argument, NULL, ARG_DRY_RUN},
            {"no-builds", no_argument, NULL, ARG_NO_BUILDS},
            {"from-history", no_argument, NULL, ARG_FROM_HISTORY},
            {"to", required_argument, NULL, ARG_TO},
            {"unused-for", required_argument, NULL, ARG_UNUSED_FOR},
            {"template", required_argument, NULL, ARG_TEMPLATE},
            {"templates-dir", required_argument, NULL, ARG_TEMPLATES_DIR},
            {"list", no_argument, NULL, ARG_LIST},
            {"older-than", required_argument, NULL, ARG_OLDER_THAN},
            {},
        };
        static const struct {
                int arg;
                unsigned opt;
                const char *name;
        } opt_names[] = {
            {ARG_USER, OPT_USER, "--user"},
            {ARG_ALL_USERS, OPT_ALL_USERS, "--all-users"},
            {ARG_JSON, OPT_JSON, "--json"},
            {ARG_DRY_RUN, OPT_DRY_RUN, "--dry-run"},
            {ARG_NO_BUILDS, OPT_NO_BUILDS, "--no-builds"},
            {ARG_FROM_HISTORY, OPT_FROM_HISTORY, "--from-history"},
            {ARG_TO, OPT_TO, "--to"},
            {ARG_UNUSED_FOR, OPT_UNUSED_FOR, "--unused-for"},
            {ARG_TEMPLATE, OPT_TEMPLATE, "--template"},
            {ARG_TEMPLATES_DIR, OPT_TEMPLATES_DIR, "--templates-dir"},
            {ARG_LIST, OPT_LIST, "--list"},
            {ARG_OLDER_THAN, OPT_OLDER_THAN, "--older-than"},
        };
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                for (size_t i = 0; i < ELEMENTSOF(opt_names); i++)
                        if (opt_names[i].arg == c && !(allowed & opt_names[i].opt))
                                return cli_usage_error(a->verb, "'%s' does not take %s", a->verb,
                                                       opt_names[i].name);
                switch (c) {
                case ARG_USER:
                        a->user = optarg;
                        break;
                case ARG_ALL_USERS:
                        a->all_users = true;
                        break;
                case ARG_JSON:
                        a->json = true;
                        break;
                case ARG_DRY_RUN:
                        a->dry_run = true;
                        break;
                case ARG_NO_BUILDS:
                        a->no_builds = true;
                        break;
                case ARG_FROM_HISTORY:
                        a->from_history = true;
                        break;
                case ARG_TO:
                        a->to = optarg;
                        break;
                case ARG_UNUSED_FOR:
                        if (parse_duration_usec(optarg, &a->unused_for_usec) < 0 ||
                            a->unused_for_usec == 0)
                                return cli_usage_error(a->verb,
                                                       "--unused-for takes a duration such as "
                                                       "90d or 12h, not '%s'",
                                                       optarg);
                        break;
                case ARG_TEMPLATE:
                        a->template = optarg;
                        break;
                case ARG_TEMPLATES_DIR:
                        a->templates_dir = optarg;
                        break;
                case ARG_LIST:
                        a->list = true;
                        break;
                case ARG_OLDER_THAN:
                        if (parse_duration_usec(optarg, &a->older_than_usec) < 0 ||
                            a->older_than_usec == 0)
                                return cli_usage_error(a->verb,
                                                       "--older-than takes a duration such as "
                                                       "30d or 12h, not '%s'",
                                                       optarg);
                        break;
                default:
                        r = cli_common_option(ctx, a->verb, cli_env_usage, c, argv);
                        if (r != CLI_CONTINUE)
                                return r;
                }
        }
        if (a->user && a->all_users)
                return cli_usage_error(a->verb, "give --user or --all-users, not both");
        if (a->no_builds && a->from_history)
                return cli_usage_error(a->verb, "give --no-builds or --from-history, not both");
        a->operands = argv + optind;
        a->n_operands = argc - optind;
        return CLI_CONTINUE;
}

/* Exactly one operand, named `what` in the message when missing. */
int cli_env_one_operand(const EnvArgs *a, const char *what)
{
        if (a->n_operands < 1)
                return cli_usage_error(a->verb, "which %s?", what);
        if (a->n_operands > 1)
                return cli_usage_error(a->verb, "unexpected argument '%s'", a->operands[1]);
        return CLI_EXIT_OK;
}

int cli_env_no_operands(const EnvArgs *a)
{
        if (a->n_operands > 0)
                return cli_usage_error(a->verb, "unexpected argument '%s'", a->operands[0]);
        return CLI_EXIT_OK;
}

int cli_env_require_root(const char *what)
{
        if (geteuid() == 0)
                return CLI_EXIT_OK;
        fprintf(stderr, "gpukeeper: %s needs root (it reads every user's home); run it with sudo\n",
                what);
        return CLI_EXIT_PERMISSION;
}

/* The users a command covers: --all-users (root), else the one target user. */
int cli_env_target_users(const EnvArgs *a, EnvUser **ret, size_t *ret_n)
{
        EnvUser *users;
        int r;

        if (a->all_users) {
                r = cli_env_require_root(a->verb);
                if (r != CLI_EXIT_OK)
                        return r;
                r = env_users_all(ret, ret_n);
                if (r < 0) {
                        fprintf(stderr, "gpukeeper: cannot list the users of this system: %s\n",
                                strerror(-r));
                        return CLI_EXIT_SOFTWARE;
                }
                return CLI_EXIT_OK;
        }
        users = calloc(1, sizeof(EnvUser));
        if (!users)
                return CLI_EXIT_SOFTWARE;
        r = cli_env_target_user(a->verb, a->user, &users[0]);
        if (r != CLI_EXIT_OK) {
                free(users);
                return r;
        }
        *ret = users;
        *ret_n = 1;
        return CLI_EXIT_OK;
}

/* Find NAME|PATH among `user`'s environments; prints why not and returns the
 * exit code when there is none or it cannot be read. */
int cli_env_find_env(const EnvArgs *a, const EnvUser *user, const char *which, unsigned flags,
                    EnvInfo **ret)
{
        EnvOptions o = {.flags = flags | cli_env_flags(user)};
        EnvInfo *e = NULL;
        int r;

        r = env_find(user, which, &o, &e);
        if (r == -ENOENT) {
                fprintf(stderr,
                        "gpukeeper: %s has no conda environment '%s' (see 'gpukeeper env list')\n",
                        user->name, which);
                return CLI_EXIT_NOT_FOUND;
        }
        if (r < 0) {
                fprintf(stderr, "gpukeeper: cannot read the environments of %s: %s\n", user->name,
                        strerror(-r));
                return cli_env_exit_for_errno(r);
        }
        if (e->error) {
                fprintf(stderr, "gpukeeper: %s: ", a->verb);
                cli_env_put_text(stderr, e->path, false);
                fputs(": ", stderr);
                cli_env_put_text(stderr, e->error, false);
                fputc('\n', stderr);
                env_info_free(e);
                return CLI_EXIT_NOT_FOUND;
        }
        *ret = e;
        return CLI_EXIT_OK;
}

/* The environment named by the command's one operand, among the target
 * user's (--user, else the caller): what export and hook install work on.
 * Prints why not and returns the exit code when there is none. */
int cli_env_operand_env(const EnvArgs *a, unsigned flags, EnvInfo **ret)
{
        EnvUser user = {};
        int r;

        r = cli_env_one_operand(a, "environment (a name or a path)");
        if (r != CLI_EXIT_OK)
                return r;
        r = cli_env_target_user(a->verb, a->user, &user);
        if (r != CLI_EXIT_OK)
                return r;
        r = cli_env_find_env(a, &user, a->operands[0], flags, ret);
        env_user_done(&user);
        return r;
}

