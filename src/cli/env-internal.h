/* What the `gpukeeper env` verbs share (env.c dispatches; one file per
 * verb: env-list.c, env-export.c, env-backup.c, env-prune.c, env-restore.c,
 * env-clean.c, env-create.c, env-hook.c, env-trash.c; env-common.c holds the option
 * parser, the target-user helpers and the output helpers). Not for the
 * rest of the CLI: that is cli/env.h. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/env.h"
#include "env/env.h"

/* Where `env backup` writes without --to: the daemon's default state_dir. */
#define DEFAULT_BACKUP_DIR "/var/lib/gpukeeper/env-backups"
/* The daemon's configuration file: $GPUKEEPER_CONFIG, else this. */
#define CLI_DEFAULT_CONFIG "/etc/gpukeeper/gpukeeper.yaml"

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
        ARG_OLDER_THAN,
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
        OPT_OLDER_THAN = 1u << 11,
};

typedef struct EnvArgs {
        const char *verb; /* "env list", ... for messages */
        const char *user;
        bool all_users, json, dry_run, no_builds, from_history, list;
        const char *to, *template, *templates_dir;
        uint64_t unused_for_usec; /* 0: not given */
        uint64_t older_than_usec; /* --older-than; 0: not given */
        const char *trash_action; /* `env trash`: "list" or "empty" */
        char **operands;
        int n_operands;
} EnvArgs;

/* The options of `env <command>` (only those in `allowed`; others are a
 * usage error). Returns CLI_CONTINUE, with a->operands set, or the exit
 * code (0 after --help). */
int cli_env_parse_args(cli_context *ctx, int argc, char *argv[], unsigned allowed, EnvArgs *a);
/* Exactly one operand, named `what` in the message when missing. */
int cli_env_one_operand(const EnvArgs *a, const char *what);
int cli_env_no_operands(const EnvArgs *a);
/* CLI_EXIT_OK for root; else prints that `what` needs root and returns 77. */
int cli_env_require_root(const char *what);
/* The users a command covers: --all-users (root), else the one target user. */
int cli_env_target_users(const EnvArgs *a, EnvUser **ret, size_t *ret_n);
/* Find NAME|PATH among `user`'s environments; prints why not and returns the
 * exit code when there is none or it cannot be read. */
int cli_env_find_env(const EnvArgs *a, const EnvUser *user, const char *which, unsigned flags,
                     EnvInfo **ret);
/* The environment named by the command's one operand, among the target
 * user's (--user, else the caller). Prints why not and returns the exit
 * code when there is none. */
int cli_env_operand_env(const EnvArgs *a, unsigned flags, EnvInfo **ret);

/* The daemon's env section, as the env commands use it (issue 17 item 8:
 * one source of truth). From the daemon's `env.config` answer; when the
 * daemon cannot be asked, from its configuration file ($GPUKEEPER_CONFIG,
 * else /etc/gpukeeper/gpukeeper.yaml) read with the daemon's own loader,
 * when it exists and is readable; else the built-in defaults (config/env.h),
 * the same the daemon has. */
typedef struct EnvSettings {
        char *templates_dir;
        char *conda_exe;
        uint64_t trash_retention_usec; /* 0: off */
        const char *source; /* "gpukeeperd", the file's path, or "built-in default" */
        char source_buf[256];
} EnvSettings;

/* Fill *ret (free with cli_env_settings_done). A configuration file that
 * exists but is broken is reported and is an error (EX_CONFIG); otherwise
 * CLI_EXIT_OK. */
int cli_env_settings(const cli_context *ctx, EnvSettings *ret);
void cli_env_settings_done(EnvSettings *s);

/* "1.5G", "512M", "4.0K", "100B": binary units, as du -h. */
const char *cli_env_format_size(char *buf, size_t len, uint64_t bytes);
/* Local "YYYY-MM-DD HH:MM" (date_only: "YYYY-MM-DD"), "-" for 0. */
const char *cli_env_format_time(char *buf, size_t len, uint64_t usec, bool date_only);
/* A string from a user's files, on one line, control characters neutralised. */
void cli_env_put_text(FILE *f, const char *s, bool unicode);

/* The verbs, one file each. */
int cli_env_list(cli_context *ctx, EnvArgs *a);
int cli_env_export(cli_context *ctx, EnvArgs *a);
int cli_env_backup(cli_context *ctx, EnvArgs *a);
int cli_env_prune(cli_context *ctx, EnvArgs *a);
int cli_env_restore(cli_context *ctx, EnvArgs *a);
int cli_env_clean_cache(cli_context *ctx, EnvArgs *a);
int cli_env_create(cli_context *ctx, EnvArgs *a);
int cli_env_hook_install(cli_context *ctx, EnvArgs *a);
int cli_env_templates(cli_context *ctx, EnvArgs *a);
int cli_env_trash(cli_context *ctx, EnvArgs *a);
