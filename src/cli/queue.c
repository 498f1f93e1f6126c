/* `gpukeeper queue [--json]`: who waits for which devices, in the order the
 * daemon will serve them, and why each request cannot start yet. */
#include <getopt.h>
#include <stdbool.h>
#include <time.h>

#include "basic/time-util.h"
#include "cli/cli.h"
#include "cli/lease-render.h"

enum {
        ARG_JSON = CLI_ARG_VERB_FIRST,
};

void cli_queue_usage(FILE *f)
{
        fputs("Usage: gpukeeper queue [--json] [--socket PATH]\n"
              "\n"
              "Show the requests waiting for GPUs or MIG instances, first served first: who\n"
              "asked, for what, how long ago, and why the request cannot start yet.\n"
              "\n"
              "Options:\n"
              "  --json         print the daemon's queue object as JSON\n"
              "  --socket PATH  talk to the daemon at PATH\n"
              "  -h, --help     show this help\n",
              f);
}

int cli_queue_main(cli_context *ctx, int argc, char *argv[])
{
        static const struct option options[] = {
            CLI_COMMON_OPTIONS,
            {"json", no_argument, NULL, ARG_JSON},
            {},
        };
        _cleanup_(gk_client_freep) gk_client *client = NULL;
        _cleanup_(json_decrefp) json_t *result = NULL;
        bool json = false;
        cli_term term;
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        cli_queue_usage(stdout);
                        return cli_finish(CLI_EXIT_OK);
                case CLI_ARG_SOCKET:
                        ctx->socket_arg = optarg;
                        break;
                case ARG_JSON:
                        json = true;
                        break;
                default:
                        return cli_option_error("queue", c, argv);
                }
        }
        if (optind < argc)
                return cli_usage_error("queue", "unexpected argument '%s'", argv[optind]);

        r = cli_connect(ctx, &client);
        if (r != CLI_EXIT_OK)
                return r;
        r = cli_call(ctx, client, "queue.list", NULL, &result);
        if (r != CLI_EXIT_OK)
                return r;
        if (json) {
                if (json_dumpf(result, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0)
                        fputc('\n', stdout);
                return cli_finish(CLI_EXIT_OK);
        }
        cli_term_detect(stdout, &term);
        if (cli_queue_render(json_object_get(result, "queue"), stdout, &term,
                             (double)now_usec(CLOCK_REALTIME) / USEC_PER_SEC, 0) == 0)
                puts("The queue is empty.");
        return cli_finish(CLI_EXIT_OK);
}
