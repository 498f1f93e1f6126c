/* See view-json.h. What reaches stdout is the indented result followed by
 * a newline, exactly as cli_view_main() prints it; a reply the client
 * library cannot stream (an error, an unusual shape) comes back as text or
 * as a tree and is printed the way cli_view_main() prints those. */
#include "cli/view-json.h"

#include <stdio_ext.h>

#include "basic/macro.h"
#include "client/client-text.h"
#include "proto/json-scan.h"

int cli_view_json_main(cli_context *ctx, const cli_view *view, int argc, char *argv[])
{
        _cleanup_(gk_client_freep) gk_client *client = NULL;
        gk_call_error error = {};
        json_t *result = NULL;
        const char *text = NULL;
        bool json, written;
        size_t len = 0;
        int r;

        r = cli_view_options(ctx, view->verb, view->usage, argc, argv, &json);
        if (r != CLI_CONTINUE)
                return r;
        if (!json)
                return cli_view_main(ctx, view, argc, argv);
        r = cli_connect(ctx, &client);
        if (r != CLI_EXIT_OK)
                return r;
        /* Written by this one thread: stdio's lock is pure cost. */
        __fsetlocking(stdout, FSETLOCKING_BYCALLER);
        r = gk_client_call_write(client, view->op, NULL, stdout, &written, &text, &len, &result,
                                 &error);
        if (r != 0)
                return cli_call_failed(ctx, view->op, r, &error);
        if (!written && !text) {
                cli_print_json(result);
                json_decref(result);
                return cli_finish(CLI_EXIT_OK);
        }
        if (text)
                json_scan_write_indented(stdout, text, len);
        putc_unlocked('\n', stdout);
        return cli_finish(CLI_EXIT_OK);
}
