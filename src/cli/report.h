/* `gpukeeper report` (report.c): usage per user from the daemon's history. */
#pragma once

#include <stdio.h>
#include <sys/types.h>

#include "cli/cli.h"

int cli_report_main(cli_context *ctx, int argc, char *argv[]);
void cli_report_usage(FILE *f);

/* A user name or a numeric uid → uid (report --user, audit --user).
 * Returns 0, -ENOENT (no such user) or -ERANGE. */
int cli_parse_user(const char *s, uid_t *ret);
