/* The CLI's helper executables (git's model). `gpukeeper` itself links only
 * what every subcommand needs (jansson and libc, statically by default), so `run`, `lease`,
 * `status` and `--version` start fast. Subcommands with heavy libraries of
 * their own are separate programs in LIBEXECDIR/gpukeeper/ that the command
 * execs with the same command line:
 *
 *   gpukeeper-env  env, kernel   libarchive (backups), libyaml (exports)
 *   gpukeeper-top  top           ncursesw
 *   gpukeeper-user user          libyaml (config), libarchive (env backups)
 *   gpukeeper-slurm-gres  slurm gres  NVML (dlopen), so that `gpukeeper`
 *                                     can be one static program
 *
 * A helper is looked up first beside the running `gpukeeper` (the build
 * tree), then in GK_LIBEXEC_DIR. */
#pragma once

#include <stddef.h>
#include <stdio.h>

#include "cli/cli.h"

typedef struct cli_helper_verb {
        const char *name;
        int (*main)(cli_context *ctx, int argc, char *argv[]);
        void (*usage)(FILE *f);
} cli_helper_verb;

/* exec() the helper `helper` (a file name such as "gpukeeper-env") with
 * `gpukeeper [--socket S] VERB ARGS...`, where argv[0..argc) is VERB ARGS.
 * Returns only on failure, after a one-line message, with CLI_EXIT_SOFTWARE. */
int cli_helper_exec(const char *helper, const char *libexec_dir, const cli_context *ctx,
                    int argc, char *argv[]);

/* The main() of a helper: the global options as `gpukeeper` parses them,
 * then the verb, which must be one of verbs[0..n). */
int cli_helper_main(int argc, char *argv[], const cli_helper_verb *verbs, size_t n);
