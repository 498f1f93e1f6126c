/* `gpukeeper status [--json]`: who holds which GPU or MIG slice and who is
 * using what, from the daemon's latest snapshot. The text view is in
 * status-render.c, which prints each GPU as its part of the reply arrives
 * (cli.c, view_stream()), from an index over that part's text rather than a
 * jansson tree, and asks for each process as a row of values rather than an
 * object ("process_rows", docs/protocol.md: less than half the bytes to
 * send and read at 4,096 processes); --json prints the daemon's result
 * object unchanged, written as it arrives (cli.c, view_json()). */
#include <string.h>

#include "cli/cli.h"
#include "cli/status-render.h"

void cli_status_usage(FILE *f)
{
        fputs("Usage: gpukeeper status [--json] [--socket PATH]\n"
              "\n"
              "Show every GPU and MIG instance on this server: health, temperature, power,\n"
              "utilisation and memory, who holds it (lease, DRAINED, IN USE WITHOUT LEASE),\n"
              "the processes using each, largest first, and the queue.\n"
              "\n"
              "Options:\n"
              "  --json         print the daemon's status object as JSON\n"
              "  --socket PATH  talk to the daemon at PATH\n"
              "  -h, --help     show this help\n",
              f);
}

/* On a reply the text view cannot show, point at the JSON. */
static int rendered(int r)
{
        if (r < 0) {
                fprintf(stderr,
                        "gpukeeper: status: cannot show the daemon's reply: %s (see "
                        "'gpukeeper status --json')\n",
                        strerror(-r));
                return CLI_EXIT_SOFTWARE;
        }
        return CLI_EXIT_OK;
}

/* The text view from the reply's text (the usual path), or from a tree
 * when the reply came parsed. */
static int render_index(const JsonIndex *ix, JsonIndexRef result, const cli_term *term,
                        double now)
{
        return rendered(cli_status_render_index(ix, result, stdout, term, now));
}

static int render(json_t *result, const cli_term *term, double now)
{
        return rendered(cli_status_render(result, stdout, term, now));
}

/* The text view reads processes as rows; an older daemon that refuses the
 * argument is asked again without it (cli_view.stream_args). */
static json_t *stream_args(void)
{
        return json_pack("{s:b}", "process_rows", 1);
}

int cli_status_main(cli_context *ctx, int argc, char *argv[])
{
        static const cli_view view = {
            .verb = "status",
            .usage = cli_status_usage,
            .op = "status",
            .render = render,
            .render_index = render_index,
            .stream_new = cli_status_stream_new,
            .stream_args = stream_args,
            .stream_feed = cli_status_stream_feed,
            .stream_finish = cli_status_stream_finish,
            .stream_free = cli_status_stream_free,
        };

        return cli_view_main(ctx, &view, argc, argv);
}
