/* `gpukeeper limits show [USER] [--json]`: the per-user CPU, memory and
 * tasks limits that apply to USER (default: the caller), where each value
 * came from (limits.default, a group of limits.groups, plus per_gpu for each
 * GPU held), and whether the daemon's backend (systemd or cgroupfs) has them:
 *
 *   Limits of alice (uid 1001), holding 1 GPU; limit groups: phd
 *   RESOURCE  LIMIT     BASE      FROM           PER GPU
 *   cpu       1600%     800%      group phd      +800% x 1
 *   memory    248G      128G      group phd      +120G x 1
 *   tasks     4096      4096      default        -
 *   Applied: yes, through cgroupfs (v1 cpu,memory,pids)
 */
#include <getopt.h>
#include <stdbool.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/lease-render.h"
#include "cli/limits-show.h"
#include "cli/text.h"

void cli_limits_usage(FILE *f)
{
        fputs("Usage: gpukeeper limits show [USER] [--json] [--socket PATH]\n"
              "\n"
              "Show the CPU, memory and tasks limits on USER's slice (user-UID.slice;\n"
              "default: yourself), where each value comes from (limits.default, a group of\n"
              "limits.groups, plus limits.per_gpu for each GPU held now), and whether\n"
              "gpukeeperd has applied them (through systemd or cgroup files). Only root and\n"
              "members of gpukeeper-admin may look at other users.\n"
              "\n"
              "Options:\n"
              "  --json         print the daemon's answer as JSON\n"
              "  --socket PATH  talk to the daemon at PATH\n"
              "  -h, --help     show this help\n",
              f);
}

static void print_text(const char *s)
{
        cli_text_clip(stdout, s ? s : "-", 200, false);
}

static int render(json_t *o)
{
        static const char *const names[] = {"cpu", "memory", "tasks"};
        json_t *groups = json_object_get(o, "groups"), *lims = json_object_get(o, "limits"), *g;
        const char *user = cli_json_str(o, "user"), *state = cli_json_str(o, "state");
        double uid = 0, gpus = 0;
        size_t i;

        (void)cli_json_num(o, "uid", &uid);
        (void)cli_json_num(o, "gpus", &gpus);
        fputs("Limits of ", stdout);
        print_text(user ? user : "?");
        /* "gpus" counts devices: whole GPUs and MIG instances alike. */
        printf(" (uid %.0f), holding %.0f device%s", uid, gpus, gpus == 1 ? "" : "s");
        if (json_array_size(groups) > 0) {
                fputs("; limit groups:", stdout);
                json_array_foreach(groups, i, g)
                {
                        fputc(' ', stdout);
                        print_text(json_string_value(g));
                }
        }
        fputc('\n', stdout);
        printf("%-9s %-9s %-9s %-14s %s\n", "RESOURCE", "LIMIT", "BASE", "FROM", "PER GPU");
        for (i = 0; i < 3; i++) {
                json_t *l = json_object_get(lims, names[i]);
                const char *from = cli_json_str(l, "from"), *group = cli_json_str(l, "group");
                const char *per_gpu = cli_json_str(l, "per_gpu");
                char src[64];
                double n = 0;

                (void)cli_json_num(l, "gpus", &n);
                if (from && strcmp(from, "group") == 0)
                        snprintf(src, sizeof src, "group %.40s", group ? group : "?");
                else if (from && strcmp(from, "none") == 0)
                        snprintf(src, sizeof src, "(no limit)");
                else
                        snprintf(src, sizeof src, "%s", from ? from : "?");
                printf("%-9s %-9s %-9s %-14s ", names[i], cli_json_str(l, "value") ?: "?",
                       cli_json_str(l, "base") ?: "?", src);
                if (per_gpu && strcmp(per_gpu, "-") != 0)
                        printf("+%s x %.0f\n", per_gpu, n);
                else
                        puts("-");
        }
        if (!json_is_true(json_object_get(o, "enabled"))) {
                puts("Applied: no, the daemon's configuration has no limits section");
                return CLI_EXIT_OK;
        }
        if (json_is_true(json_object_get(o, "groups_pending")))
                puts("Groups: pending (the group database has not answered yet; the limits "
                     "above leave out limit groups and are applied once it has)");
        if (state && strcmp(state, "applied") == 0)
                printf("Applied: yes, through %s (", cli_json_str(o, "backend") ?: "?");
        else if (state && strcmp(state, "failed") == 0)
                printf("Applied: NO, it FAILED through %s (", cli_json_str(o, "backend") ?: "?");
        else
                printf("Applied: %s, through %s (",
                       state && strcmp(state, "pending") == 0
                               ? "pending (systemd has not answered yet)"
                       : state && strcmp(state, "groups pending") == 0
                               ? "not yet (waiting for the user's groups)"
                               : "not yet (applied at a grant or release, a run, a login or "
                                 "'limits.apply')",
                       cli_json_str(o, "backend") ?: "?");
        print_text(cli_json_str(o, "backend_detail"));
        puts(")");
        if (cli_json_str(o, "error")) {
                fputs("Error: ", stdout);
                print_text(cli_json_str(o, "error"));
                fputc('\n', stdout);
        }
        return CLI_EXIT_OK;
}

int cli_limits_main(cli_context *ctx, int argc, char *argv[])
{
        static const struct option options[] = {
            CLI_COMMON_OPTIONS,
            {"json", no_argument, NULL, CLI_ARG_JSON},
            {},
        };
        _cleanup_(json_decrefp) json_t *result = NULL;
        json_t *args = NULL;
        bool json = false;
        int c, r;

        if (argc < 2 || argv[1][0] == '-') {
                if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
                        cli_limits_usage(stdout);
                        return cli_finish(CLI_EXIT_OK);
                }
                return cli_usage_error("limits", "say 'gpukeeper limits show [USER]'");
        }
        if (strcmp(argv[1], "show") != 0)
                return cli_usage_error("limits", "unknown command '%s' (known: show)", argv[1]);
        argc--;
        argv++;
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                if (c == CLI_ARG_JSON) {
                        json = true;
                        continue;
                }
                r = cli_common_option(ctx, "limits show", cli_limits_usage, c, argv);
                if (r != CLI_CONTINUE)
                        return r;
        }
        if (argc - optind > 1)
                return cli_usage_error("limits show", "unexpected argument '%s'",
                                       argv[optind + 1]);
        if (optind < argc) {
                char *end;
                unsigned long v = strtoul(argv[optind], &end, 10);

                if (*argv[optind] && !*end && v < UINT32_MAX)
                        args = json_pack("{s:I}", "user", (json_int_t)v);
                else
                        args = json_pack("{s:s}", "user", argv[optind]);
                if (!args)
                        return cli_usage_error("limits show", "invalid user name");
        }
        r = cli_fetch(ctx, "limits.show", args, &result);
        if (r != CLI_EXIT_OK)
                return r;
        if (json)
                cli_print_json(result);
        else if ((r = render(result)) != CLI_EXIT_OK)
                return r;
        return cli_finish(CLI_EXIT_OK);
}
