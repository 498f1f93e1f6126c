/* `gpukeeper user add NAME [--group G]... [--template T]...` and
 * `gpukeeper user remove NAME [--keep-home]`: onboarding and offboarding of
 * the people on this server, for administrators (see cli_user_usage). This
 * file: the usage, the dispatch and what both verbs share; the verbs are
 * user-add.c and user-remove.c (see user-internal.h).
 *
 * add, in this order, each step checked first and done only when missing,
 * so that a second run changes nothing that is in place and says so:
 *   account   useradd (an argv, never a shell string) when NAME has none;
 *   home      created (0750, owned by NAME) for an account without one;
 *   group     usermod --append for each --group that exists and NAME is
 *             not in yet (the group's gpukeeper policy then applies: shown);
 *   limits    gpukeeperd applies NAME's limits (request limits.apply);
 *   env       a conda environment per template, named after it, created
 *             by the `env create` path: conda run as NAME (env/create.h);
 *   hooks     its lease hooks (env/hooks.h), written as NAME;
 *   kernel    its Jupyter kernel (env/kernel.h), written as NAME;
 * then the welcome text (onboarding.welcome, else the built-in one).
 * Everything that can be refused is checked before the first change: the
 * caller, NAME, the templates, conda, the welcome template.
 *
 * remove: the user's environment specs are backed up first (env_backup into
 * onboarding.backup_dir/NAME-DATE/), their leases released through the
 * daemon (lease.list all, lease.release of each; the daemon checks that we
 * are an admin from SO_PEERCRED), then userdel. A failed backup stops it. */
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

#include "basic/user-util.h"
#include "cli/user-internal.h"
#include "config/env.h"


enum {
        ARG_GROUP = CLI_ARG_VERB_FIRST,
        ARG_TEMPLATE,
        ARG_TEMPLATES_DIR,
        ARG_KEEP_HOME,
};

void cli_user_usage(FILE *f)
{
        fputs("Usage: gpukeeper user add NAME [--group GROUP]... [--template TEMPLATE]...\n"
              "                          [--templates-dir DIR]\n"
              "       gpukeeper user remove NAME [--keep-home]\n"
              "\n"
              "Set up a person on this server, or take them off it. Administrators only:\n"
              "root (members of " CLI_USER_ADMIN_GROUP " run it with sudo).\n"
              "\n"
              "Commands:\n"
              "  add     the account (useradd) when NAME has none; membership of each GROUP\n"
              "          that exists (its gpukeeper policy applies); NAME's limits applied\n"
              "          by gpukeeperd; per TEMPLATE a conda environment of that name,\n"
              "          created as NAME, with the lease hooks and a Jupyter kernel; then\n"
              "          the welcome text (onboarding.welcome). Run again, it does only\n"
              "          what is missing and changes nothing that is in place.\n"
              "  remove  back up NAME's environment specs (onboarding.backup_dir), release\n"
              "          NAME's leases, then remove the account and its home (userdel)\n"
              "\n"
              "Options:\n"
              "  --group GROUP        add NAME to the Unix group GROUP (repeatable)\n"
              "  --template TEMPLATE  create the environment TEMPLATE from TEMPLATE.yml\n"
              "                       (repeatable)\n"
              "  --templates-dir DIR  look for templates in DIR first (default\n"
              "                       $GPUKEEPER_TEMPLATES_DIR), then in env.templates_dir,\n"
              "                       then in " CONFIG_DEFAULT_TEMPLATES_DIR "\n"
              "  --keep-home          remove: keep NAME's home directory\n"
              "  --socket PATH        talk to gpukeeperd at PATH\n"
              "  -h, --help           show this help\n"
              "\n"
              "Reads the daemon's configuration ($GPUKEEPER_CONFIG, else\n" CONFIG_DEFAULT_PATH
              ") and creates the environments with\n"
              "$GPUKEEPER_CONDA_EXE, else env.conda_exe. See gpukeeper(1), USERS.\n",
              f);
}


/* ---- shared steps ----------------------------------------------------------------- */

/* One line of the report: "STEP     WHAT". */
void cli_user_report(const char *step, const char *fmt, ...)
{
        va_list ap;

        printf("%-8s ", step);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
}

void cli_user_warn(const char *fmt, ...)
{
        va_list ap;

        fflush(stdout);
        fputs("gpukeeper: warning: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* The first failure decides the exit code; later steps still run where
 * they can. */
void cli_user_fail(int *status, int code)
{
        if (*status == CLI_EXIT_OK)
                *status = code;
}

static bool caller_in_admin_group(void)
{
        _cleanup_free_ gid_t *groups = NULL;
        gid_t gid;
        int n;

        if (group_gid_from_name(CLI_USER_ADMIN_GROUP, &gid) < 0)
                return false;
        if (getegid() == gid)
                return true;
        n = getgroups(0, NULL);
        if (n <= 0 || !(groups = calloc((size_t)n, sizeof(gid_t))))
                return false;
        n = getgroups(n, groups);
        for (int i = 0; i < n; i++)
                if (groups[i] == gid)
                        return true;
        return false;
}

/* Accounts are made and homes written by tools that need root; an admin
 * who is not root is told to use sudo, anyone else is refused. */
int cli_user_require_admin(const char *verb)
{
        if (geteuid() == 0)
                return CLI_EXIT_OK;
        if (caller_in_admin_group())
                fprintf(stderr,
                        "gpukeeper: %s needs root (it runs useradd/userdel and writes into the "
                        "user's home as that user); run it with sudo\n",
                        verb);
        else
                fprintf(stderr,
                        "gpukeeper: %s is for administrators (root, group " CLI_USER_ADMIN_GROUP ") only\n",
                        verb);
        return CLI_EXIT_PERMISSION;
}

/* The daemon's configuration file, as `env backup` reads it: missing at
 * the default path means the built-in defaults. */
int cli_user_load_config(Config **ret)
{
        const char *path = getenv("GPUKEEPER_CONFIG");
        _cleanup_free_ char *error = NULL;
        int r;

        if (!path || !*path)
                path = CONFIG_DEFAULT_PATH;
        if (access(path, F_OK) < 0 && errno == ENOENT && strcmp(path, CONFIG_DEFAULT_PATH) == 0)
                r = config_new_defaults(ret);
        else
                r = config_load(path, ret, &error);
        if (r == -ENOMEM)
                return CLI_EXIT_SOFTWARE;
        if (r < 0) {
                fprintf(stderr,
                        "gpukeeper: cannot read the daemon's configuration: %s\n"
                        "gpukeeper: fix it (gpukeeperd --check-config) and run this again\n",
                        error ? error : strerror(-r));
                return EXIT_CONFIG;
        }
        return CLI_EXIT_OK;
}

/* NAME's passwd entry: CLI_EXIT_OK and *ret; EXIT_NO_USER when there is
 * none (nothing printed); an exit code after a message otherwise. */
int cli_user_lookup(const char *name, EnvUser *ret)
{
        int r = env_user_from_name(name, ret);

        if (r == -ENOENT)
                return EXIT_NO_USER;
        if (r == -EINVAL) {
                fprintf(stderr, "gpukeeper: the account %s has no absolute home directory in "
                                "passwd; fix it with usermod --home\n",
                        name);
                return CLI_EXIT_SOFTWARE;
        }
        if (r < 0) {
                fprintf(stderr, "gpukeeper: cannot look up the account %s: %s\n", name,
                        strerror(-r));
                return CLI_EXIT_SOFTWARE;
        }
        return CLI_EXIT_OK;
}

/* Run an account tool; CLI_EXIT_OK when it exited 0, else an exit code
 * after one line naming it and its status. */
int cli_user_run_tool(char **argv)
{
        int r, wstatus = 0;

        fflush(stdout);
        r = onboard_run_tool(argv, &wstatus);
        if (r < 0) {
                fprintf(stderr, "gpukeeper: cannot run %s: %s\n", argv[0], strerror(-r));
                return r == -ENOENT ? EXIT_NOT_FOUND : CLI_EXIT_SOFTWARE;
        }
        if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)
                return CLI_EXIT_OK;
        if (WIFSIGNALED(wstatus))
                fprintf(stderr, "gpukeeper: %s was killed by signal %d\n", argv[0],
                        WTERMSIG(wstatus));
        else
                fprintf(stderr, "gpukeeper: %s failed (exit status %d); see its message above\n",
                        argv[0], WEXITSTATUS(wstatus));
        return CLI_EXIT_SOFTWARE;
}

static bool group_name_ok(const char *g)
{
        size_t len = strlen(g);

        if (len == 0 || len > 256 || g[0] == '-')
                return false;
        for (const char *p = g; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.'))
                        return false;
        return true;
}

/* ---- dispatch ------------------------------------------------------------------------ */

int cli_user_main(cli_context *ctx, int argc, char *argv[])
{
        static const struct option options[] = {
            CLI_COMMON_OPTIONS,
            {"group", required_argument, NULL, ARG_GROUP},
            {"template", required_argument, NULL, ARG_TEMPLATE},
            {"templates-dir", required_argument, NULL, ARG_TEMPLATES_DIR},
            {"keep-home", no_argument, NULL, ARG_KEEP_HOME},
            {},
        };
        UserArgs a = {};
        bool add;
        int c, r;

        if (argc < 2)
                return cli_usage_error("user", "no user command given: add or remove");
        if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
                cli_user_usage(stdout);
                return cli_finish(CLI_EXIT_OK);
        }
        if (strcmp(argv[1], "add") != 0 && strcmp(argv[1], "remove") != 0)
                return cli_usage_error("user", "unknown user command '%s'", argv[1]);
        add = strcmp(argv[1], "add") == 0;
        a.verb = add ? "user add" : "user remove";

        argc--, argv++;
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_GROUP:
                        if (!add)
                                return cli_usage_error(a.verb, "--group goes with add only");
                        if (!group_name_ok(optarg))
                                return cli_usage_error(a.verb, "'%s' is not a group name",
                                                       optarg);
                        if (a.n_groups >= ONBOARD_MAX_GROUPS)
                                return cli_usage_error(a.verb, "at most %d --group options",
                                                       ONBOARD_MAX_GROUPS);
                        a.groups[a.n_groups++] = optarg;
                        break;
                case ARG_TEMPLATE:
                        if (!add)
                                return cli_usage_error(a.verb, "--template goes with add only");
                        if (a.n_templates >= ONBOARD_MAX_TEMPLATES)
                                return cli_usage_error(a.verb, "at most %d --template options",
                                                       ONBOARD_MAX_TEMPLATES);
                        for (size_t i = 0; i < a.n_templates; i++)
                                if (strcmp(a.templates[i], optarg) == 0)
                                        return cli_usage_error(a.verb, "--template %s given twice",
                                                               optarg);
                        a.templates[a.n_templates++] = optarg;
                        break;
                case ARG_TEMPLATES_DIR:
                        if (!add)
                                return cli_usage_error(a.verb, "--templates-dir goes with add "
                                                               "only");
                        if (optarg[0] != '/')
                                return cli_usage_error(a.verb, "--templates-dir takes an "
                                                               "absolute path");
                        a.templates_dir = optarg;
                        break;
                case ARG_KEEP_HOME:
                        if (add)
                                return cli_usage_error(a.verb, "--keep-home goes with remove "
                                                               "only");
                        a.keep_home = true;
                        break;
                default:
                        r = cli_common_option(ctx, a.verb, cli_user_usage, c, argv);
                        if (r != CLI_CONTINUE)
                                return r;
                }
        }
        if (optind >= argc)
                return cli_usage_error(a.verb, "whose account? give a login name");
        if (argc - optind > 1)
                return cli_usage_error(a.verb, "unexpected argument '%s'", argv[optind + 1]);
        a.name = argv[optind];
        if (!onboard_name_valid(a.name))
                return cli_usage_error(a.verb,
                                       "'%s' is not a login name (a lowercase letter or '_', "
                                       "then lowercase letters, digits, '_' and '-'; at most %d)",
                                       a.name, ONBOARD_NAME_MAX);
        return add ? cli_user_add(ctx, &a) : cli_user_remove(ctx, &a);
}
