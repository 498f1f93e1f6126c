/* The conda environment commands of the CLI, `gpukeeper env ...` (env.c)
 * and `gpukeeper kernel ...` (kernel.c), and what they share: who the
 * target user is and how a library error becomes an exit code.
 *
 * These commands do not talk to the daemon: they read conda's files
 * directly, as the caller (root for other users' homes). */
#pragma once

#include <stdio.h>

#include "cli/cli.h"
#include "env/env.h"

/* sysexits' EX_NOINPUT: no such environment, template or trash entry. */
#define CLI_EXIT_NOT_FOUND CLI_EXIT_NO_SUCH

int cli_env_main(cli_context *ctx, int argc, char *argv[]);
void cli_env_usage(FILE *f);
int cli_kernel_main(cli_context *ctx, int argc, char *argv[]);
void cli_kernel_usage(FILE *f);

/* The user a command acts for: `user_arg` (a login name or uid; root only
 * unless it names the caller), else the caller (effective uid). Prints one
 * line and returns the exit code on failure (64 unknown user, 77 not
 * allowed); CLI_EXIT_OK and *ret filled otherwise. */
int cli_env_target_user(const char *verb, const char *user_arg, EnvUser *ret);

/* The EnvOptions flags for reading `user`'s files: symlinks are followed
 * only when the caller is that user, and never for root (whose paths may
 * lead through anyone's symlinks). */
unsigned cli_env_flags(const EnvUser *user);

/* Exit code for a -errno from the env library: 77 for EACCES / EPERM,
 * CLI_EXIT_NOT_FOUND for ENOENT, 70 otherwise. */
int cli_env_exit_for_errno(int r);
