/* `gpukeeper user add | remove` (user.c), run in the helper executable
 * gpukeeper-user (user-main.c), which links the env library, the daemon's
 * configuration and the onboarding library. */
#pragma once

#include <stdio.h>

#include "cli/cli.h"

int cli_user_main(cli_context *ctx, int argc, char *argv[]);
void cli_user_usage(FILE *f);
