/* `gpukeeper top` (top.c): a live, read-only full-screen view of the
 * daemon's status, refreshed every interval. */
#pragma once

#include <stdio.h>

#include "cli/cli.h"

int cli_top_main(cli_context *ctx, int argc, char *argv[]);
void cli_top_usage(FILE *f);
