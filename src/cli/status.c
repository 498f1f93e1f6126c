/* `gpukeeper status [--json]`: who holds which GPU or MIG slice and who is
 * using what, from the daemon's latest snapshot. The text view is in
 * status-render.c; --json prints the daemon's result object unchanged. */
#include <getopt.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "basic/time-util.h"
#include "cli/cli.h"
#include "cli/status-render.h"

enum {
        ARG_JSON = CLI_ARG_VERB_FIRST,
};

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

int cli_status_main(cli_context *ctx, int argc, char *argv[])
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
                        cli_status_usage(stdout);
                        return cli_finish(CLI_EXIT_OK);
                case CLI_ARG_SOCKET:
                        ctx->socket_arg = optarg;
                        break;
                case ARG_JSON:
                        json = true;
                        break;
                default:
                        return cli_option_error("status", c, argv);
                }
        }
        if (optind < argc)
                return cli_usage_error("status", "unexpected argument '%s'", argv[optind]);

        r = cli_connect(ctx, &client);
        if (r != CLI_EXIT_OK)
                return r;
        r = cli_call(ctx, client, "status", NULL, &result);
        if (r != CLI_EXIT_OK)
                return r;

        if (json) {
                /* Exactly the daemon's object: scripts read the documented keys. */
                if (json_dumpf(result, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0)
                        fputc('\n', stdout);
                return cli_finish(CLI_EXIT_OK);
        }

        cli_term_detect(stdout, &term);
        r = cli_status_render(result, stdout, &term,
                              (double)now_usec(CLOCK_REALTIME) / USEC_PER_SEC);
        if (r < 0) {
                fprintf(stderr,
                        "gpukeeper: status: cannot show the daemon's reply: %s (see "
                        "'gpukeeper status --json')\n",
                        strerror(-r));
                return CLI_EXIT_SOFTWARE;
        }
        return cli_finish(CLI_EXIT_OK);
}
