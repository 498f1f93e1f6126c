/* `gpukeeper env list | export | backup | prune | restore | trash |
 * clean-cache | create | templates | hook install`: conda environments of the people on this server.
 * The work is done by the env library (src/env/); this file has the usage,
 * the dispatch to one file per verb (env-*.c, see env-internal.h), and the
 * target-user rules shared with kernel.c: whose files a command may touch
 * (root: anyone's; others: their own). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/parse.h"
#include "cli/env-internal.h"

#include "config/env.h"

void cli_env_usage(FILE *f)
{
        fputs(
            "Usage: gpukeeper env list [--all-users | --user USER] [--json]\n"
            "       gpukeeper env export NAME|PATH [--no-builds | --from-history] [--user USER]\n"
            "       gpukeeper env backup [--to DIR]\n"
            "       gpukeeper env prune --unused-for DURATION [--dry-run]\n"
            "                           [--user USER | --all-users]\n"
            "       gpukeeper env restore TRASH-ID | --list [--user USER]\n"
            "       gpukeeper env trash [list] [--user USER | --all-users] [--json]\n"
            "       gpukeeper env trash empty [TRASH-ID...] [--older-than DURATION] [--dry-run]\n"
            "                                 [--user USER | --all-users]\n"
            "       gpukeeper env clean-cache [--dry-run] [--user USER]\n"
            "       gpukeeper env create NAME|PATH --template TEMPLATE [--user USER]\n"
            "                            [--templates-dir DIR]\n"
            "       gpukeeper env templates [--templates-dir DIR] [--json]\n"
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
            "  trash        list the trash, or empty it (all, the TRASH-IDs given, or what is\n"
            "               older than --older-than) to free the disk; gpukeeperd empties\n"
            "               what is older than env.trash_retention (default 30d) daily\n"
            "  clean-cache  'conda clean --all' on your package caches\n"
            "  create       create an environment from a template, running conda as the user\n"
            "  templates    list the templates 'create' can use\n"
            "  hook install make 'conda activate' set CUDA_VISIBLE_DEVICES from your lease\n"
            "\n"
            "Options:\n"
            "  --user USER          act on USER's environments (root only)\n"
            "  --all-users          every user's environments (root only)\n"
            "  --json               print JSON\n"
            "  --no-builds          export name=version without build strings\n"
            "  --from-history       export only the specs you asked for (conda-meta/history)\n"
            "  --to DIR             backup directory, created if missing (default: the\n"
            "                       daemon's env.backup_dir, else " DEFAULT_BACKUP_DIR ")\n"
            "  --unused-for DURATION  prune what was last used longer ago than this\n"
            "  --dry-run            show what would be moved or removed, change nothing\n"
            "  --older-than DURATION  trash empty: only entries trashed longer ago than this\n"
            "  --template TEMPLATE  a template name (see --templates-dir)\n"
            "  --templates-dir DIR  where templates are (default $GPUKEEPER_TEMPLATES_DIR,\n"
            "                       else the daemon's env.templates_dir, by default\n"
            "                       " CONFIG_DEFAULT_TEMPLATES_DIR ")\n"
            "  -h, --help           show this help\n"
            "\n"
            "'env create' runs $GPUKEEPER_CONDA_EXE, else the daemon's env.conda_exe (by\n"
            "default conda, else mamba or micromamba from PATH). Without a reachable daemon\n"
            "the env section is read from its configuration file ($GPUKEEPER_CONFIG, else\n"
            "" CLI_DEFAULT_CONFIG ") when readable.\n",
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

/* ---- dispatch ---------------------------------------------------------------------- */

typedef struct EnvSub {
        const char *name;
        const char *verb;
        unsigned allowed;
        int (*run)(cli_context *ctx, EnvArgs *a);
} EnvSub;

static const EnvSub subs[] = {
    {"list", "env list", OPT_USER | OPT_ALL_USERS | OPT_JSON, cli_env_list},
    {"export", "env export", OPT_USER | OPT_NO_BUILDS | OPT_FROM_HISTORY, cli_env_export},
    {"backup", "env backup", OPT_TO, cli_env_backup},
    {"prune", "env prune", OPT_USER | OPT_ALL_USERS | OPT_UNUSED_FOR | OPT_DRY_RUN, cli_env_prune},
    {"restore", "env restore", OPT_USER | OPT_LIST | OPT_JSON, cli_env_restore},
    {"clean-cache", "env clean-cache", OPT_USER | OPT_DRY_RUN, cli_env_clean_cache},
    {"create", "env create", OPT_USER | OPT_TEMPLATE | OPT_TEMPLATES_DIR, cli_env_create},
    {"templates", "env templates", OPT_TEMPLATES_DIR | OPT_JSON, cli_env_templates},
    {"trash", "env trash", OPT_USER | OPT_ALL_USERS | OPT_JSON | OPT_DRY_RUN | OPT_OLDER_THAN,
     cli_env_trash},
    {"hook", "env hook install", OPT_USER, cli_env_hook_install},
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
        if (strcmp(sub->name, "trash") == 0) {
                a.trash_action = "list";
                if (argc >= 2 && (strcmp(argv[1], "list") == 0 || strcmp(argv[1], "empty") == 0)) {
                        a.trash_action = argv[1];
                        a.verb = strcmp(argv[1], "list") == 0 ? "env trash list" : "env trash empty";
                        argc--, argv++;
                }
        }
        if (!a.verb)
                a.verb = sub->verb;
        r = cli_env_parse_args(ctx, argc, argv, sub->allowed, &a);
        if (r != CLI_CONTINUE)
                return r;
        return sub->run(ctx, &a);
}
