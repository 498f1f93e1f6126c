/* `gpukeeper queue [--json]`: who waits for which devices, in the order the
 * daemon will serve them, and why each request cannot start yet. */
#include <string.h>

#include "cli/cli.h"
#include "cli/lease-render.h"

void cli_queue_usage(FILE *f)
{
        fputs("Usage: gpukeeper queue [--json] [--socket PATH]\n"
              "\n"
              "Show the requests waiting for GPUs or MIG instances, first served first: who\n"
              "asked, for what, how long ago, and why the request cannot start yet. Where\n"
              "gpukeeperd leases through Slurm (backend: slurm), Slurm's queue of your jobs\n"
              "(squeue --me, --json: squeue --me --json).\n"
              "\n"
              "Options:\n"
              "  --json         print the daemon's queue object as JSON\n"
              "  --socket PATH  talk to the daemon at PATH\n"
              "  -h, --help     show this help\n",
              f);
}

static int render(json_t *result, const cli_term *term, double now)
{
        if (cli_queue_render(json_object_get(result, "queue"), stdout, term, now, 0) == 0)
                puts("The queue is empty.");
        return CLI_EXIT_OK;
}

int cli_queue_main(cli_context *ctx, int argc, char *argv[])
{
        static const cli_view view = {
            .verb = "queue",
            .usage = cli_queue_usage,
            .op = "queue.list",
            .render = render,
        };

        /* backend: slurm: Slurm's queue is the queue, the user's jobs in it
         * (--json: squeue's JSON). */
        if ((argc == 1 || (argc == 2 && strcmp(argv[1], "--json") == 0)) &&
            cli_slurm_backend(ctx))
                return cli_slurm_queue(argc == 2);
        return cli_view_main(ctx, &view, argc, argv);
}
