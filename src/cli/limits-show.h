/* `gpukeeper limits show [USER]` (limits.c; not limits.h, which would hide <limits.h>): the per-user limits that apply
 * and where they came from, as the daemon's limits.show returns them. */
#pragma once

#include <stdio.h>

#include "cli/cli.h"

int cli_limits_main(cli_context *ctx, int argc, char *argv[]);
void cli_limits_usage(FILE *f);
