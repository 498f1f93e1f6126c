/* `gpukeeper violations` (violations.c): the record of GPU use without a
 * lease, as the daemon's violations.list returns it. */
#pragma once

#include <stdio.h>

#include "cli/cli.h"

int cli_violations_main(cli_context *ctx, int argc, char *argv[]);
void cli_violations_usage(FILE *f);
