/* `gpukeeper env list | export | backup | prune | restore | clean-cache |
 * create | hook install`: conda environments of the people on this server.
 * The work is done by the env library (src/env/); this file parses the
 * command line, decides whose files a command may touch (root: anyone's;
 * others: their own), and prints the results. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "basic/parse.h"
#include "basic/time-util.h"
#include "cli/env.h"
#include "cli/text.h"
#include "env/create.h"
#include "env/hooks.h"

#ifndef GK_TEMPLATES_DIR
#error "GK_TEMPLATES_DIR must name the installed templates directory"
#endif

/* Where `env backup` writes without --to: the daemon's default state_dir. */
#define DEFAULT_BACKUP_DIR "/var/lib/gpukeeper/env-backups"
/* Where root's `env list` remembers env sizes (see EnvOptions.size_cache). */
#define ENV_LIST_ROOT_SIZE_CACHE_DIR "/var/cache/gpukeeper"

enum {
        ARG_USER = CLI_ARG_VERB_FIRST,
        ARG_ALL_USERS,
        ARG_JSON,
        ARG_DRY_RUN,
        ARG_NO_BUILDS,
        ARG_FROM_HISTORY,
        ARG_TO,
        ARG_UNUSED_FOR,
        ARG_TEMPLATE,
        ARG_TEMPLATES_DIR,
        ARG_LIST,
};

/* Which options a subcommand takes. */
enum {
        OPT_USER = 1u << 0,
        OPT_ALL_USERS = 1u << 1,
        OPT_JSON = 1u << 2,
        OPT_DRY_RUN = 1u << 3,
        OPT_NO_BUILDS = 1u << 4,
        OPT_FROM_HISTORY = 1u << 5,
        OPT_TO = 1u << 6,
        OPT_UNUSED_FOR = 1u << 7,
        OPT_TEMPLATE = 1u << 8,
        OPT_TEMPLATES_DIR = 1u << 9,
        OPT_LIST = 1u << 10,
};

typedef struct EnvArgs {
        const char *verb; /* "env list", ... for messages */
        const char *user;
        bool all_users, json, dry_run, no_builds, from_history, list;
        const char *to, *template, *templates_dir;
        uint64_t unused_for_usec; /* 0: not given */
        char **operands;
        int n_operands;
} EnvArgs;

void cli_env_usage(FILE *f)
{
        fputs(
            "Usage: gpukeeper env list [--all-users | --user USER] [--json]\n"
            "       gpukeeper env export NAME|PATH [--no-builds | --from-history] [--user USER]\n"
            "       gpukeeper env backup [--to DIR]\n"
            "       gpukeeper env prune --unused-for DURATION [--dry-run]\n"
            "                           [--user USER | --all-users]\n"
            "       gpukeeper env restore TRASH-ID | --list [--user USER]\n"
            "       gpukeeper env clean-cache [--dry-run] [--user USER]\n"
            "       gpukeeper env create NAME|PATH --template TEMPLATE [--user USER]\n"
            "                            [--templates-dir DIR]\n"
            "       gpukeeper env hook install NAME|PATH [--user USER]\n"
            "\n"
            "Conda environments (conda, mamba, micromamba) of the people on this server,\n"
            "read from conda's own files. Without --user a command acts on your own\n"
            "environments; root may name anyone.\n"
            "\n"
            "Commands:\n"
            "  list         name, owner, size, python / torch / CUDA versions, created, last\n"
            "               used (and whether that came from the hook or bin/python's atime)\n"
            "  export       print the environment.yml of an environment\n"
            "  backup       root: every user's environment specs into one dated archive\n"
            "  prune        move environments unused for DURATION (e.g. 90d) to your trash\n"
            "  restore      move an environment back from the trash; --list shows the trash\n"
            "  clean-cache  'conda clean --all' on your package caches\n"
            "  create       create an environment from a template, running conda as the user\n"
            "  hook install make 'conda activate' set CUDA_VISIBLE_DEVICES from your lease\n"
            "\n"
            "Options:\n"
            "  --user USER          act on USER's environments (root only)\n"
            "  --all-users          every user's environments (root only)\n"
            "  --json               print JSON\n"
            "  --no-builds          export name=version without build strings\n"
            "  --from-history       export only the specs you asked for (conda-meta/history)\n"
            "  --to DIR             backup directory (default " DEFAULT_BACKUP_DIR ")\n"
            "  --unused-for DURATION  prune what was last used longer ago than this\n"
            "  --dry-run            show what would be moved or removed, change nothing\n"
            "  --template TEMPLATE  a template name (see --templates-dir)\n"
            "  --templates-dir DIR  where templates are (default $GPUKEEPER_TEMPLATES_DIR,\n"
            "                       else " GK_TEMPLATES_DIR ")\n"
            "  -h, --help           show this help\n"
            "\n"
            "'env create' runs $GPUKEEPER_CONDA_EXE, else conda, mamba or micromamba from PATH.\n",
            f);
}

/* ---- shared with kernel.c ---------------------------------------------------- */

int cli_env_target_user(const char *verb, const char *user_arg, EnvUser *ret)
{
        EnvUser u = {};
        uint64_t uid;
        int r;

        if (!user_arg)
                r = env_user_from_uid(geteuid(), &u);
        else if (parse_uint64(user_arg, &uid) == 0 && uid < UINT32_MAX)
                r = env_user_from_uid((uid_t)uid, &u);
        else
                r = env_user_from_name(user_arg, &u);
        if (r == -ENOMEM)
                return CLI_EXIT_SOFTWARE;
        if (r < 0) {
                if (user_arg)
                        return cli_usage_error(verb, "no such user '%s'", user_arg);
                fprintf(stderr, "gpukeeper: your uid %u has no usable passwd entry (home)\n",
                        (unsigned)geteuid());
                return CLI_EXIT_SOFTWARE;
        }
        if (geteuid() != 0 && u.uid != geteuid()) {
                fprintf(stderr,
                        "gpukeeper: only root may act on another user's environments (run it "
                        "with sudo, or leave out --user)\n");
                env_user_done(&u);
                return CLI_EXIT_PERMISSION;
        }
        *ret = u;
        return CLI_EXIT_OK;
}

unsigned cli_env_flags(const EnvUser *user)
{
        /* Root never follows symlinks, not even in its own or an explicit path:
         * a symlink a user left there would let root act on whatever it points at. */
        return geteuid() != 0 && user->uid == geteuid() ? ENV_FOLLOW_SYMLINKS : 0;
}

int cli_env_exit_for_errno(int r)
{
        if (r == -EACCES || r == -EPERM)
                return CLI_EXIT_PERMISSION;
        if (r == -ENOENT)
                return CLI_EXIT_NOT_FOUND;
        return CLI_EXIT_SOFTWARE;
}

/* ---- output helpers ------------------------------------------------------------ */

/* "1.5G", "512M", "4.0K", "100B": binary units, as du -h. */
static const char *format_size(char *buf, size_t len, uint64_t bytes)
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
static const char *format_time(char *buf, size_t len, uint64_t usec, bool date_only)
{
        time_t t = (time_t)(usec / USEC_PER_SEC);
        struct tm tm;

        if (usec == 0 || !localtime_r(&t, &tm) ||
            strftime(buf, len, date_only ? "%Y-%m-%d" : "%Y-%m-%d %H:%M", &tm) == 0)
                snprintf(buf, len, "-");
        return buf;
}

/* A string from a user's files, on one line, control characters neutralised. */
static void put_text(FILE *f, const char *s, bool unicode)
{
        cli_text_clip(f, s ? s : "-", 4096, unicode);
}

/* ---- argument parsing ---------------------------------------------------------- */

/* The options of `env <command>`, those not in `allowed` refused. Returns
 * CLI_CONTINUE, with a->operands set, or the exit code (0 after --help). */
static int parse_args(cli_context *ctx, int argc, char *argv[], unsigned allowed, EnvArgs *a)
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
static int one_operand(const EnvArgs *a, const char *what)
{
        if (a->n_operands < 1)
                return cli_usage_error(a->verb, "which %s?", what);
        if (a->n_operands > 1)
                return cli_usage_error(a->verb, "unexpected argument '%s'", a->operands[1]);
        return CLI_EXIT_OK;
}

static int no_operands(const EnvArgs *a)
{
        if (a->n_operands > 0)
                return cli_usage_error(a->verb, "unexpected argument '%s'", a->operands[0]);
        return CLI_EXIT_OK;
}

static int require_root(const char *what)
{
        if (geteuid() == 0)
                return CLI_EXIT_OK;
        fprintf(stderr, "gpukeeper: %s needs root (it reads every user's home); run it with sudo\n",
                what);
        return CLI_EXIT_PERMISSION;
}

/* The users a command covers: --all-users (root), else the one target user. */
static int target_users(const EnvArgs *a, EnvUser **ret, size_t *ret_n)
{
        EnvUser *users;
        int r;

        if (a->all_users) {
                r = require_root(a->verb);
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
static int find_env(const EnvArgs *a, const EnvUser *user, const char *which, unsigned flags,
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
                put_text(stderr, e->path, false);
                fputs(": ", stderr);
                put_text(stderr, e->error, false);
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
static int operand_env(const EnvArgs *a, unsigned flags, EnvInfo **ret)
{
        EnvUser user = {};
        int r;

        r = one_operand(a, "environment (a name or a path)");
        if (r != CLI_EXIT_OK)
                return r;
        r = cli_env_target_user(a->verb, a->user, &user);
        if (r != CLI_EXIT_OK)
                return r;
        r = find_env(a, &user, a->operands[0], flags, ret);
        env_user_done(&user);
        return r;
}

/* ---- env list -------------------------------------------------------------------- */

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
                put_text(stdout, e->error, term->unicode);
                cli_text_style(stdout, term, CLI_STYLE_RESET);
                fputs("  ", stdout);
                put_text(stdout, e->path, term->unicode);
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
        printf(" %6s %-10s ", format_size(size, sizeof size, e->size_bytes),
               format_time(created, sizeof created, e->created_usec, true));
        if (e->last_used_source == ENV_LAST_USED_NONE)
                snprintf(used_with_source, sizeof used_with_source, "-");
        else
                snprintf(used_with_source, sizeof used_with_source, "%s (%s)",
                         format_time(used, sizeof used, e->last_used_usec, false),
                         env_last_used_source_to_string(e->last_used_source));
        printf("%-24s ", used_with_source);
        put_text(stdout, e->path, term->unicode);
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
                        if (json_array_append_new(jerrors,
                                                  json_pack("{s:o, s:o}", "user",
                                                            env_json_string(lists[i]->user.name),
                                                            "error",
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
                        put_text(stderr, lists[i]->errors[j], false);
                        fputc('\n', stderr);
                }
        }
        return header;
}

/* Every target user's envs first, then all sizes in one parallel pass through
 * the size cache, then the output. */
static int env_list(cli_context *ctx, EnvArgs *a)
{
        EnvUser *users = NULL;
        EnvList **lists = NULL;
        _cleanup_free_ char *cache = NULL;
        size_t n_users = 0, n_lists = 0;
        int r, exit_code = CLI_EXIT_OK;

        r = no_operands(a);
        if (r != CLI_EXIT_OK)
                return r;
        r = target_users(a, &users, &n_users);
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
                        fprintf(stderr, "gpukeeper: the home of %s (%s) is not owned by them, not read\n",
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

/* ---- env export ------------------------------------------------------------------ */

static int env_export_cmd(cli_context *ctx, EnvArgs *a)
{
        _cleanup_(env_info_freep) EnvInfo *e = NULL;
        int r;

        r = operand_env(a, ENV_LOAD_PACKAGES, &e);
        if (r != CLI_EXIT_OK)
                return r;
        r = env_export(e,
                       a->from_history ? ENV_EXPORT_FROM_HISTORY
                       : a->no_builds  ? ENV_EXPORT_NO_BUILDS
                                       : ENV_EXPORT_BUILDS,
                       stdout);
        for (size_t i = 0; i < e->n_warnings; i++) {
                fputs("gpukeeper: warning: ", stderr);
                put_text(stderr, e->warnings[i], false);
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

/* ---- env backup ------------------------------------------------------------------ */

static int env_backup_cmd(cli_context *ctx, EnvArgs *a)
{
        _cleanup_free_ char *path = NULL;
        EnvUser *users = NULL;
        size_t n_users = 0;
        const char *dir = a->to ? a->to : DEFAULT_BACKUP_DIR;
        EnvOptions o = {};
        int r;

        r = no_operands(a);
        if (r != CLI_EXIT_OK)
                return r;
        r = require_root("env backup");
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

/* ---- env prune ------------------------------------------------------------------- */

static void prune_item_line(const EnvPruneItem *it, const char *lead)
{
        char size[16], used[32];

        printf("%s", lead);
        put_text(stdout, it->name, false);
        fputs("  ", stdout);
        put_text(stdout, it->path, false);
        printf("  %s", format_size(size, sizeof size, it->size_bytes));
        if (it->last_used_source != ENV_LAST_USED_NONE)
                printf("  last used %s (%s)",
                       format_time(used, sizeof used, it->last_used_usec, false),
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
                put_text(stderr, plan->errors[i], false);
                fputc('\n', stderr);
        }
        for (size_t i = 0; i < plan->n_items; i++) {
                const EnvPruneItem *it = &plan->items[i];
                _cleanup_free_ char *id = NULL;

                if (it->skip_reason) {
                        if (!a->all_users || it->busy_pid > 0) {
                                prune_item_line(it, "keep   ");
                                fputs("  (", stdout);
                                put_text(stdout, it->skip_reason, false);
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
                put_text(stdout, id, false);
                fputc('\n', stdout);
                (*moved)++;
                *freed += it->size_bytes;
        }
        return exit_code;
}

static int env_prune_cmd(cli_context *ctx, EnvArgs *a)
{
        EnvUser *users = NULL;
        size_t n_users = 0, moved = 0;
        uint64_t freed = 0, now = now_usec(CLOCK_REALTIME);
        char size[16];
        int r, exit_code = CLI_EXIT_OK;

        r = no_operands(a);
        if (r != CLI_EXIT_OK)
                return r;
        if (a->unused_for_usec == 0)
                return cli_usage_error(a->verb, "how long unused? give --unused-for, e.g. 90d");
        r = target_users(a, &users, &n_users);
        if (r != CLI_EXIT_OK)
                return r;
        for (size_t i = 0; i < n_users; i++) {
                r = prune_user(a, &users[i], now, &moved, &freed);
                if (r != CLI_EXIT_OK)
                        exit_code = r;
        }
        env_users_free(users, n_users);
        format_size(size, sizeof size, freed);
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

/* ---- env restore ----------------------------------------------------------------- */

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
                                list, json_pack("{s:o, s:o, s:o, s:I, s:I}", "id",
                                                env_json_string(entries[i].id), "name",
                                                env_json_string(entries[i].name), "original_path",
                                                env_json_string(entries[i].original_path), "trashed_at",
                                                (json_int_t)(entries[i].trashed_usec / USEC_PER_SEC),
                                                "size_bytes", (json_int_t)entries[i].size_bytes)) <
                            0)
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
                put_text(stdout, entries[i].id, false);
                printf("  %s  %s  ", format_time(when, sizeof when, entries[i].trashed_usec, false),
                       format_size(size, sizeof size, entries[i].size_bytes));
                put_text(stdout, entries[i].original_path, false);
                fputc('\n', stdout);
        }
        env_trash_entries_free(entries, n);
        return cli_finish(CLI_EXIT_OK);
}

static int env_restore_cmd(cli_context *ctx, EnvArgs *a)
{
        _cleanup_free_ char *path = NULL;
        EnvUser user = {};
        EnvOptions o = {};
        int r;

        if (a->list)
                r = no_operands(a);
        else
                r = one_operand(a, "trash entry (see 'gpukeeper env restore --list')");
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
        put_text(stdout, path, false);
        fputc('\n', stdout);
        return cli_finish(CLI_EXIT_OK);
}

/* ---- env clean-cache ------------------------------------------------------------- */

static int env_clean_cmd(cli_context *ctx, EnvArgs *a)
{
        _cleanup_(env_clean_plan_freep) EnvCleanPlan *plan = NULL;
        EnvUser user = {};
        EnvOptions o = {};
        char size[16];
        int r;

        r = no_operands(a);
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
                put_text(stderr, plan->errors[i], false);
                fputc('\n', stderr);
        }
        for (size_t i = 0; i < plan->n_items; i++) {
                printf("%s %-11s %8s  ", a->dry_run ? "would remove" : "remove",
                       env_clean_kind_to_string(plan->items[i].kind),
                       format_size(size, sizeof size, plan->items[i].bytes));
                put_text(stdout, plan->items[i].path, false);
                fputc('\n', stdout);
        }
        format_size(size, sizeof size, plan->total_bytes);
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

/* ---- env create ------------------------------------------------------------------ */

static int env_create_cmd(cli_context *ctx, EnvArgs *a)
{
        _cleanup_free_ char *exe = NULL, *file = NULL;
        _cleanup_(env_create_strv_freep) char **argv = NULL, **envp = NULL;
        const char *dir, *configured, *target;
        EnvUser user = {};
        bool same_user;
        int r, wstatus = 0;

        r = one_operand(a, "environment name (or prefix path)");
        if (r != CLI_EXIT_OK)
                return r;
        if (!a->template)
                return cli_usage_error(a->verb, "which template? give --template NAME");
        target = a->operands[0];
        if (!target[0] || (strchr(target, '/') && target[0] != '/'))
                return cli_usage_error(
                    a->verb, "'%s' is neither an environment name nor an absolute path", target);
        dir = a->templates_dir ? a->templates_dir : getenv("GPUKEEPER_TEMPLATES_DIR");
        if (!dir || !*dir)
                dir = GK_TEMPLATES_DIR;
        r = env_template_path(dir, a->template, &file);
        if (r == -EINVAL)
                return cli_usage_error(a->verb, "'%s' is not a template name", a->template);
        if (r < 0) {
                char **names = NULL;
                size_t n = 0;

                fprintf(stderr, "gpukeeper: no template '%s' in %s", a->template, dir);
                if (env_template_list(dir, &names, &n) == 0 && n > 0) {
                        fputs("; there are:", stderr);
                        for (size_t i = 0; i < n; i++)
                                fprintf(stderr, " %s", names[i]);
                }
                fputc('\n', stderr);
                env_create_strv_free(names);
                return CLI_EXIT_NOT_FOUND;
        }
        r = cli_env_target_user(a->verb, a->user, &user);
        if (r != CLI_EXIT_OK)
                return r;
        same_user = user.uid == geteuid();
        configured = getenv("GPUKEEPER_CONDA_EXE");
        r = env_conda_exe_find(configured, getenv("PATH"), &exe);
        if (r < 0) {
                if (configured && *configured)
                        fprintf(stderr,
                                "gpukeeper: $GPUKEEPER_CONDA_EXE (%s) is not an executable\n",
                                configured);
                else
                        fputs("gpukeeper: found no conda, mamba or micromamba in PATH (install "
                              "one, or point $GPUKEEPER_CONDA_EXE at it)\n",
                              stderr);
                env_user_done(&user);
                return CLI_EXIT_NOT_FOUND;
        }
        if ((r = env_create_argv(exe, target, file, &argv)) < 0 ||
            (r = env_create_envp(&user, same_user, &envp)) < 0) {
                env_user_done(&user);
                return CLI_EXIT_SOFTWARE;
        }
        if (!same_user)
                fprintf(stderr, "gpukeeper: running %s as %s\n", exe, user.name);
        fflush(stdout);
        r = env_create_run(&user, argv, envp, &wstatus);
        env_user_done(&user);
        if (r < 0) {
                fprintf(stderr, "gpukeeper: cannot run %s: %s\n", exe, strerror(-r));
                return r == -ENOENT ? 127 : 126;
        }
        if (WIFSIGNALED(wstatus))
                return 128 + WTERMSIG(wstatus);
        if (WEXITSTATUS(wstatus) == 0 && !strchr(target, '/'))
                fprintf(stderr,
                        "gpukeeper: to have 'conda activate %s' set CUDA_VISIBLE_DEVICES from your "
                        "lease: gpukeeper env hook install %s\n",
                        target, target);
        return WEXITSTATUS(wstatus);
}

/* ---- env hook install ------------------------------------------------------------ */

static int env_hook_cmd(cli_context *ctx, EnvArgs *a)
{
        _cleanup_(env_info_freep) EnvInfo *e = NULL;
        int r;

        r = operand_env(a, 0, &e);
        if (r != CLI_EXIT_OK)
                return r;
        if (geteuid() != 0 && e->owner_uid != geteuid()) {
                fputs("gpukeeper: ", stderr);
                put_text(stderr, e->path, false);
                fputs(" belongs to someone else; ask its owner to install the hooks\n", stderr);
                return CLI_EXIT_PERMISSION;
        }
        r = env_hook_install(e);
        if (r < 0) {
                fputs("gpukeeper: cannot write the hooks into ", stderr);
                put_text(stderr, e->path, false);
                fprintf(stderr, ": %s\n",
                        r == -ESTALE  ? "it changed while we looked"
                        : r == -ELOOP ? "a symlink is in the way inside it"
                                      : strerror(-r));
                return cli_env_exit_for_errno(r);
        }
        fputs("Installed the lease hooks into ", stdout);
        put_text(stdout, e->path, false);
        fputs("/etc/conda/{activate,deactivate}.d/.\n"
              "'conda activate' now sets CUDA_VISIBLE_DEVICES from your lease "
              "('gpukeeper lease acquire --gpus 1').\n",
              stdout);
        return cli_finish(CLI_EXIT_OK);
}

/* ---- dispatch ---------------------------------------------------------------------- */

typedef struct EnvSub {
        const char *name;
        const char *verb;
        unsigned allowed;
        int (*run)(cli_context *ctx, EnvArgs *a);
} EnvSub;

static const EnvSub subs[] = {
    {"list", "env list", OPT_USER | OPT_ALL_USERS | OPT_JSON, env_list},
    {"export", "env export", OPT_USER | OPT_NO_BUILDS | OPT_FROM_HISTORY, env_export_cmd},
    {"backup", "env backup", OPT_TO, env_backup_cmd},
    {"prune", "env prune", OPT_USER | OPT_ALL_USERS | OPT_UNUSED_FOR | OPT_DRY_RUN, env_prune_cmd},
    {"restore", "env restore", OPT_USER | OPT_LIST | OPT_JSON, env_restore_cmd},
    {"clean-cache", "env clean-cache", OPT_USER | OPT_DRY_RUN, env_clean_cmd},
    {"create", "env create", OPT_USER | OPT_TEMPLATE | OPT_TEMPLATES_DIR, env_create_cmd},
    {"hook", "env hook install", OPT_USER, env_hook_cmd},
};

int cli_env_main(cli_context *ctx, int argc, char *argv[])
{
        const EnvSub *sub = NULL;
        EnvArgs a = {};
        int r;

        if (argc < 2)
                return cli_usage_error("env", "no env command given, e.g. 'gpukeeper env list'");
        if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
                cli_env_usage(stdout);
                return cli_finish(CLI_EXIT_OK);
        }
        for (size_t i = 0; i < ELEMENTSOF(subs); i++)
                if (strcmp(argv[1], subs[i].name) == 0)
                        sub = &subs[i];
        if (!sub)
                return cli_usage_error("env", "unknown env command '%s'", argv[1]);
        argc--, argv++;
        if (strcmp(sub->name, "hook") == 0) {
                if (argc < 2 || strcmp(argv[1], "install") != 0)
                        return cli_usage_error("env", "the hook command is 'env hook install "
                                                      "NAME|PATH'");
                argc--, argv++;
        }
        a.verb = sub->verb;
        r = parse_args(ctx, argc, argv, sub->allowed, &a);
        if (r != CLI_CONTINUE)
                return r;
        return sub->run(ctx, &a);
}
