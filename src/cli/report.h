/* `gpukeeper report` (report.c): usage per user from the daemon's history. */
#pragma once

#include <stdio.h>

#include "cli/cli.h"

int cli_report_main(cli_context *ctx, int argc, char *argv[]);
void cli_report_usage(FILE *f);
