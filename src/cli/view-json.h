/* The --json side of the views (cli_view, cli.h): the daemon's result
 * written as it arrives, never whole in memory (issue 16). */
#pragma once

#include "cli/cli.h"

/* cli_view_main(), but with --json the result is read and written in
 * pieces (gk_client_call_write(), src/client/client-text.h): the output is
 * the same bytes, from a buffer of 32 KiB instead of one of the reply's size
 * and one pass over the text instead of two. Without --json, and for
 * --help and bad usage, it is cli_view_main(). */
int cli_view_json_main(cli_context *ctx, const cli_view *view, int argc, char *argv[]);
