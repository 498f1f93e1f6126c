/* `gpukeeper report` (report.c): usage per user from the daemon's history. */
#pragma once

#include <stdio.h>
#include <sys/types.h>

#include "cli/cli.h"

int cli_report_main(cli_context *ctx, int argc, char *argv[]);
void cli_report_usage(FILE *f);

/* The `user` argument of report and audit.list for --user: a numeric uid
 * as a number, anything else as a name for the daemon to look up (this
 * statically linked command does no NSS lookups: glibc's NSS modules cannot
 * be loaded into a static program, and libnss_systemd crashes it). NULL
 * for an empty or overlong name or a uid out of range. */
#define CLI_USER_NAME_MAX 256
json_t *cli_user_json(const char *s);
