/* What the `gpukeeper user` verbs share (user.c: usage, dispatch and the
 * helpers below; user-add.c: `user add`; user-remove.c: `user remove`).
 * Not for the rest of the CLI: that is cli/user.h. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cli/cli.h"
#include "cli/user.h"
#include "config/config.h"
#include "env/env.h"
#include "onboard/onboard.h"

/* sysexits' EX_NOINPUT / EX_NOUSER / EX_CONFIG. */
#define EXIT_NOT_FOUND CLI_EXIT_NO_SUCH
#define EXIT_NO_USER 67
#define EXIT_CONFIG 78

#define CLI_USER_ADMIN_GROUP "gpukeeper-admin"

typedef struct UserArgs {
        const char *verb; /* "user add" / "user remove" */
        const char *name;
        const char *groups[ONBOARD_MAX_GROUPS];
        size_t n_groups;
        const char *templates[ONBOARD_MAX_TEMPLATES];
        size_t n_templates;
        const char *templates_dir;
        bool keep_home;
} UserArgs;

/* One line of the report on stdout: "STEP     WHAT". */
void cli_user_report(const char *step, const char *fmt, ...) _printf_(2, 3);
/* "gpukeeper: warning: ..." on stderr (after flushing stdout). */
void cli_user_warn(const char *fmt, ...) _printf_(1, 2);
/* The first failure decides the exit code; later steps still run where
 * they can. */
void cli_user_fail(int *status, int code);
/* CLI_EXIT_OK for root; else one line (sudo for members of
 * CLI_USER_ADMIN_GROUP) and 77. */
int cli_user_require_admin(const char *verb);
/* The daemon's configuration ($GPUKEEPER_CONFIG, else the default path; the
 * defaults when that is missing). Returns an exit code after one line. */
int cli_user_load_config(Config **ret);
/* NAME's passwd entry: CLI_EXIT_OK and *ret; EXIT_NO_USER when there is
 * none (nothing printed); an exit code after a message otherwise. */
int cli_user_lookup(const char *name, EnvUser *ret);
/* Run an account tool (onboard_run_tool); CLI_EXIT_OK when it exited 0,
 * else an exit code after one line naming it and its status. */
int cli_user_run_tool(char **argv);

/* The verbs, after their options were parsed and NAME checked. */
int cli_user_add(const cli_context *ctx, const UserArgs *a);
int cli_user_remove(const cli_context *ctx, const UserArgs *a);
