/* `gpukeeper audit` (audit.c): the daemon's audit trail, as its audit.list
 * returns it. */
#pragma once

#include <stdio.h>

#include "cli/cli.h"

int cli_audit_main(cli_context *ctx, int argc, char *argv[]);
void cli_audit_usage(FILE *f);
