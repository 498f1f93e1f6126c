/* `gpukeeper admin drain GPU [--reason TEXT]` and `gpukeeper admin undrain
 * GPU`: take a GPU (or MIG instance) out of allocation for maintenance and
 * put it back. Leases already on it stay. The daemon allows this to root
 * and the gpukeeper-admin group only (exit 77 for anyone else). */
#include <getopt.h>
#include <stdbool.h>
#include <string.h>

#include "basic/utf8.h"
#include "cli/cli.h"
#include "cli/lease-args.h"
#include "cli/lease-render.h"

#define MAX_REASON_BYTES 256

enum {
        ARG_REASON = CLI_ARG_VERB_FIRST,
};

void cli_admin_usage(FILE *f)
{
        fputs("Usage: gpukeeper admin drain GPU [--reason TEXT]\n"
              "       gpukeeper admin undrain GPU\n"
              "\n"
              "Administrators only. 'drain' gives GPU (a GPU or MIG UUID, or a GPU index) no\n"
              "new leases, for maintenance; leases it already has stay until they end.\n"
              "Draining a GPU in MIG mode drains all its instances. 'undrain' undoes it.\n"
              "\n"
              "Options:\n"
              "  --reason TEXT  why, for the audit log and 'gpukeeper status'\n"
              "  --socket PATH  talk to the daemon at PATH\n"
              "  -h, --help     show this help\n",
              f);
}

int cli_admin_main(cli_context *ctx, int argc, char *argv[])
{
        static const struct option options[] = {
            CLI_COMMON_OPTIONS,
            {"reason", required_argument, NULL, ARG_REASON},
            {},
        };
        _cleanup_(json_decrefp) json_t *result = NULL, *args = NULL;
        const char *reason = NULL, *device, *uuid;
        bool drain;
        char verb[32];
        cli_term term;
        int c, r;

        if (argc < 2)
                return cli_usage_error("admin", "no admin command given: drain or undrain");
        if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
                cli_admin_usage(stdout);
                return cli_finish(CLI_EXIT_OK);
        }
        if (strcmp(argv[1], "drain") != 0 && strcmp(argv[1], "undrain") != 0)
                return cli_usage_error("admin", "unknown admin command '%s'", argv[1]);
        drain = strcmp(argv[1], "drain") == 0;
        snprintf(verb, sizeof verb, "admin %s", argv[1]);

        argc--, argv++;
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_REASON:
                        if (!drain)
                                return cli_usage_error(verb, "--reason goes with drain only");
                        reason = optarg;
                        break;
                default:
                        r = cli_common_option(ctx, verb, cli_admin_usage, c, argv);
                        if (r != CLI_CONTINUE)
                                return r;
                }
        }
        if (optind >= argc)
                return cli_usage_error(verb, "which GPU? give its UUID or index ('gpukeeper "
                                             "status' shows them)");
        if (argc - optind > 1)
                return cli_usage_error(verb, "unexpected argument '%s'", argv[optind + 1]);
        device = argv[optind];
        if (strlen(device) > CLI_MAX_DEVICE_NAME ||
            strspn(device, "abcdefghijklmnopqrstuvwxyz"
                           "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                           "0123456789-/_.") != strlen(device) ||
            !device[0])
                return cli_usage_error(verb, "'%s' is not a GPU or MIG UUID or a GPU index",
                                       device);
        if (reason && (strlen(reason) > MAX_REASON_BYTES || !utf8_is_valid(reason, strlen(reason))))
                return cli_usage_error(verb, "--reason takes at most %d bytes of UTF-8 text",
                                       MAX_REASON_BYTES);

        args = json_pack("{s:s}", "device", device);
        if (!args || (reason && json_object_set_new(args, "reason", json_string(reason)) < 0))
                return CLI_EXIT_SOFTWARE;
        r = cli_fetch(ctx, drain ? "admin.drain" : "admin.undrain", json_incref(args), &result);
        if (r != CLI_EXIT_OK)
                return r;
        uuid = cli_json_str(result, "device");
        cli_term_detect(stdout, &term);
        cli_text_clip(stdout, uuid ? uuid : device, 100, term.unicode);
        if (json_is_false(json_object_get(result, "changed")))
                /* Nothing changed (a drain's new reason is kept). */
                puts(drain ? " was drained already: it gets no new leases"
                           : " was not drained: it gets leases");
        else
                puts(drain ? " drained: it gets no new leases"
                           : " undrained: it gets leases again");
        return cli_finish(CLI_EXIT_OK);
}
