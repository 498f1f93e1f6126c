/* `gpukeeper mig show [--json] | export | apply -f FILE -c NAME [--dry-run]
 * [--wait | --no-wait] | assert -f FILE -c NAME`.
 *
 * The mig-parted file is parsed here, as the user who runs the command, so
 * its errors name the user's file, line and key; the daemon gets the chosen
 * config as JSON and checks it again. apply is for administrators (77 for
 * anyone else). With --wait (the default) apply follows the daemon's job
 * and says what it waits for until it is done; --no-wait is refused (75)
 * naming the lease in the way. assert exits 0 when every GPU the config
 * selects matches it and 1 when one does not. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/lease-render.h"
#include "mig/layout.h"
#include "mig/mig-parted.h"

enum {
        ARG_JSON = CLI_ARG_VERB_FIRST,
        ARG_DRY_RUN,
        ARG_WAIT,
        ARG_NO_WAIT,
};

void cli_mig_usage(FILE *f)
{
        fputs("Usage: gpukeeper mig show [--json]\n"
              "       gpukeeper mig export\n"
              "       gpukeeper mig apply -f FILE -c NAME [--dry-run] [--wait | --no-wait] [--json]\n"
              "       gpukeeper mig assert -f FILE -c NAME [--json]\n"
              "\n"
              "MIG layouts in NVIDIA mig-parted's v1 format.\n"
              "  show    GPUs, MIG mode, instances, free memory slices and placements\n"
              "  export  the current layout as a mig-parted file (config 'current')\n"
              "  apply   carve the GPUs as config NAME of FILE says (administrators only):\n"
              "          instances that already match are kept; a GPU is re-carved only when\n"
              "          no lease and no process is on it (it is drained meanwhile); a MIG\n"
              "          mode change is left pending and the GPU reset to run is printed\n"
              "  assert  exit 0 when every GPU matches config NAME, 1 when one does not\n"
              "\n"
              "Options:\n"
              "  -f, --file FILE  the mig-parted file\n"
              "  -c, --config NAME  the config in it\n"
              "  --dry-run        show what apply would do, change nothing\n"
              "  --wait           wait for leases on GPUs to be re-carved to end (default)\n"
              "  --no-wait        refuse instead, naming the lease in the way (exit 75)\n"
              "  --json           print the daemon's answer as JSON\n"
              "  --socket PATH    talk to the daemon at PATH\n"
              "  -h, --help       show this help\n",
              f);
}

static void print_instances(json_t *g)
{
        json_t *in;
        size_t i;

        json_array_foreach(json_object_get(g, "instances"), i, in) {
                json_t *uuid = json_object_get(in, "uuid");
                long long start = json_integer_value(json_object_get(in, "start"));
                long long size = json_integer_value(json_object_get(in, "size"));

                printf("    gi %-3lld %-12s slices %lld-%lld  %s%s%s\n",
                       json_integer_value(json_object_get(in, "gi")),
                       cli_json_str(in, "profile") ? cli_json_str(in, "profile") : "?", start,
                       start + size - 1, json_is_string(uuid) ? json_string_value(uuid) : "(no compute instance)",
                       json_is_true(json_object_get(in, "leased")) ? "  leased" : "",
                       json_is_true(json_object_get(in, "on_demand")) ? "  on demand" : "");
        }
}

static void print_job(json_t *job)
{
        const char *state = cli_json_str(job, "state");
        json_t *w;
        size_t i;

        if (!state || !strcmp(state, "none"))
                return;
        printf("apply of %s: %s%s%s\n", cli_json_str(job, "config") ? cli_json_str(job, "config") : "?",
               state, cli_json_str(job, "message") && cli_json_str(job, "message")[0] ? ": " : "",
               cli_json_str(job, "message") ? cli_json_str(job, "message") : "");
        json_array_foreach(json_object_get(job, "waiting_for"), i, w)
                printf("  waiting for GPU %lld (%s): %s\n", json_integer_value(json_object_get(w, "gpu")),
                       cli_json_str(w, "uuid") ? cli_json_str(w, "uuid") : "?",
                       cli_json_str(w, "reason") ? cli_json_str(w, "reason") : "?");
        json_array_foreach(json_object_get(job, "reset"), i, w)
                printf("  GPU %lld (%s, %s): MIG mode %s is pending a GPU reset; stop what holds the GPU "
                       "open (nvidia-persistenced, DCGM, monitoring) and run: %s\n",
                       json_integer_value(json_object_get(w, "gpu")), cli_json_str(w, "uuid"),
                       cli_json_str(w, "pci_bus_id"), cli_json_str(w, "mode"), cli_json_str(w, "command"));
}

static int show(cli_context *ctx, bool json)
{
        _cleanup_(json_decrefp) json_t *r = NULL;
        json_t *g;
        size_t i;
        int rc;

        rc = cli_fetch(ctx, "mig.show", NULL, &r);
        if (rc != CLI_EXIT_OK)
                return rc;
        if (json) {
                cli_print_json(r);
                return cli_finish(CLI_EXIT_OK);
        }
        if (json_is_true(json_object_get(r, "simulated")))
                puts("(NVML SIMULATOR: not real GPUs)");
        json_array_foreach(json_object_get(r, "gpus"), i, g) {
                json_t *p, *fs = json_object_get(g, "free_slices");
                size_t k;

                printf("GPU %lld  %s  %s  ", json_integer_value(json_object_get(g, "position")),
                       cli_json_str(g, "name"), cli_json_str(g, "uuid"));
                if (!json_is_true(json_object_get(g, "capable"))) {
                        puts("no MIG");
                        continue;
                }
                printf("MIG %s", json_is_true(json_object_get(g, "mig_enabled")) ? "enabled" : "disabled");
                if (json_is_true(json_object_get(g, "mig_pending")) != json_is_true(json_object_get(g, "mig_enabled")))
                        printf(" (%s after a GPU reset)",
                               json_is_true(json_object_get(g, "mig_pending")) ? "enabled" : "disabled");
                if (json_is_integer(fs))
                        printf("  free slices %lld/8", json_integer_value(fs));
                if (json_is_true(json_object_get(g, "dynamic")))
                        printf("  on demand");
                if (json_is_true(json_object_get(g, "draining")))
                        printf("  draining for an apply");
                putchar('\n');
                print_instances(g);
                if (!json_is_true(json_object_get(g, "mig_enabled")))
                        continue;
                printf("    free placements:");
                json_array_foreach(json_object_get(g, "profiles"), k, p) {
                        json_t *s;
                        size_t j;

                        if (json_array_size(json_object_get(p, "free_placements")) == 0)
                                continue;
                        printf(" %s@", cli_json_str(p, "name"));
                        json_array_foreach(json_object_get(p, "free_placements"), j, s)
                                printf("%s%lld", j ? "," : "", json_integer_value(s));
                }
                putchar('\n');
        }
        if (json_is_string(json_object_get(r, "layout")))
                printf("stored layout: %s (re-asserted at start and when a GPU comes back)\n",
                       json_string_value(json_object_get(r, "layout")));
        print_job(json_object_get(r, "apply"));
        return cli_finish(CLI_EXIT_OK);
}

static int load_config(const char *verb, const char *file, const char *name, json_t **ret)
{
        _cleanup_(mig_file_freep) MigFile *f = NULL;
        const MigConfig *c;
        char error[512];

        if (!file || !name)
                return cli_usage_error(verb, "both -f FILE and -c NAME are needed");
        if (mig_file_load(file, &f, error, sizeof(error)) < 0) {
                fprintf(stderr, "gpukeeper: %s\n", error);
                return CLI_EXIT_USAGE;
        }
        c = mig_file_find(f, name);
        if (!c) {
                fprintf(stderr, "gpukeeper: %s has no config '%s'; it has:", file, name);
                for (size_t i = 0; i < f->n_configs && i < 20; i++)
                        fprintf(stderr, " %s", f->configs[i].name);
                fputs(f->n_configs > 20 ? " ...\n" : "\n", stderr);
                return CLI_EXIT_USAGE;
        }
        *ret = mig_config_to_json(c);
        return *ret ? CLI_EXIT_OK : CLI_EXIT_SOFTWARE;
}

static void print_plans(json_t *gpus)
{
        json_t *g, *x;
        size_t i, k;

        json_array_foreach(gpus, i, g) {
                if (!json_is_true(json_object_get(g, "selected")))
                        continue;
                printf("GPU %lld (%s): ", json_integer_value(json_object_get(g, "gpu")), cli_json_str(g, "uuid"));
                if (json_is_true(json_object_get(g, "matches"))) {
                        puts("matches");
                        continue;
                }
                if (json_is_true(json_object_get(g, "reset_needed"))) {
                        printf("MIG mode must become %s (needs a GPU reset)\n",
                               json_is_true(json_object_get(g, "mig_enabled")) ? "enabled" : "disabled");
                        continue;
                }
                printf("keep %zu, destroy %zu, create", json_array_size(json_object_get(g, "keep")),
                       json_array_size(json_object_get(g, "destroy")));
                json_array_foreach(json_object_get(g, "create"), k, x)
                        printf(" %s@%lld", cli_json_str(x, "profile"), json_integer_value(json_object_get(x, "start")));
                if (cli_json_str(g, "busy") && cli_json_str(g, "busy")[0])
                        printf("; in use: %s", cli_json_str(g, "busy"));
                putchar('\n');
        }
}

static int job_exit(json_t *job)
{
        const char *state = cli_json_str(job, "state");

        if (state && !strcmp(state, "done"))
                return CLI_EXIT_OK;
        return 1;
}

static int apply(cli_context *ctx, const char *file, const char *name, bool dry, int wait, bool json)
{
        _cleanup_(json_decrefp) json_t *r = NULL, *args = NULL, *config = NULL;
        _cleanup_free_ char *last = NULL;
        gk_client *client = NULL;
        int rc;

        rc = load_config("mig apply", file, name, &config);
        if (rc != CLI_EXIT_OK)
                return rc;
        args = json_pack("{s:O, s:b, s:s}", "config", config, "dry_run", dry, "file", file);
        if (!args || (wait >= 0 && json_object_set_new(args, "wait", json_boolean(wait)) < 0))
                return CLI_EXIT_SOFTWARE;
        rc = cli_connect(ctx, &client);
        if (rc != CLI_EXIT_OK)
                return rc;
        rc = cli_call(ctx, client, "mig.apply", json_incref(args), &r);
        if (rc != CLI_EXIT_OK)
                goto out;
        if (dry) {
                if (json)
                        cli_print_json(r);
                else
                        print_plans(json_object_get(r, "gpus"));
                rc = CLI_EXIT_OK;
                goto out;
        }
        /* Follow the job until it is done, failed or waits for a reset. */
        for (;;) {
                json_t *job = json_object_get(r, "apply") ? json_object_get(r, "apply") : r;
                const char *state = cli_json_str(job, "state");
                char *now;

                if (!state || strcmp(state, "waiting") != 0 || wait == 0) {
                        if (json)
                                cli_print_json(job);
                        else
                                print_job(job);
                        rc = job_exit(job);
                        break;
                }
                now = json_dumps(json_object_get(job, "waiting_for"), JSON_COMPACT);
                if (!json && now && (!last || strcmp(now, last) != 0))
                        print_job(job);
                free(last);
                last = now;
                fflush(stdout);
                nanosleep(&(struct timespec) { .tv_sec = 1 }, NULL);
                json_decref(r);
                r = NULL;
                rc = cli_call(ctx, client, "mig.show", NULL, &r);
                if (rc != CLI_EXIT_OK)
                        break;
        }
out:
        gk_client_free(client);
        return cli_finish(rc);
}

static int assert_layout(cli_context *ctx, const char *file, const char *name, bool json)
{
        _cleanup_(json_decrefp) json_t *r = NULL, *config = NULL;
        json_t *g;
        size_t i;
        int rc;

        rc = load_config("mig assert", file, name, &config);
        if (rc != CLI_EXIT_OK)
                return rc;
        rc = cli_fetch(ctx, "mig.assert", json_pack("{s:O}", "config", config), &r);
        if (rc != CLI_EXIT_OK)
                return rc;
        if (json)
                cli_print_json(r);
        else
                json_array_foreach(json_object_get(r, "gpus"), i, g)
                        if (json_is_true(json_object_get(g, "selected")) && !json_is_true(json_object_get(g, "matches")))
                                printf("GPU %lld (%s) does not match %s\n", json_integer_value(json_object_get(g, "gpu")),
                                       cli_json_str(g, "uuid"), name);
        if (!json && json_is_true(json_object_get(r, "matches")))
                printf("every GPU matches %s\n", name);
        return cli_finish(json_is_true(json_object_get(r, "matches")) ? CLI_EXIT_OK : 1);
}

static int export_layout(cli_context *ctx)
{
        _cleanup_(json_decrefp) json_t *r = NULL;
        int rc = cli_fetch(ctx, "mig.export", NULL, &r);

        if (rc != CLI_EXIT_OK)
                return rc;
        fputs(cli_json_str(r, "text") ? cli_json_str(r, "text") : "", stdout);
        return cli_finish(CLI_EXIT_OK);
}

int cli_mig_main(cli_context *ctx, int argc, char *argv[])
{
        static const struct option options[] = {
            CLI_COMMON_OPTIONS,
            {"json", no_argument, NULL, ARG_JSON},
            {"file", required_argument, NULL, 'f'},
            {"config", required_argument, NULL, 'c'},
            {"dry-run", no_argument, NULL, ARG_DRY_RUN},
            {"wait", no_argument, NULL, ARG_WAIT},
            {"no-wait", no_argument, NULL, ARG_NO_WAIT},
            {},
        };
        const char *file = NULL, *name = NULL, *cmd;
        bool json = false, dry = false;
        int wait = -1, c, r;
        char verb[32];

        if (argc < 2)
                return cli_usage_error("mig", "no mig command given: show, export, apply or assert");
        if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
                cli_mig_usage(stdout);
                return cli_finish(CLI_EXIT_OK);
        }
        cmd = argv[1];
        if (strcmp(cmd, "show") && strcmp(cmd, "export") && strcmp(cmd, "apply") && strcmp(cmd, "assert"))
                return cli_usage_error("mig", "unknown mig command '%s'", cmd);
        snprintf(verb, sizeof(verb), "mig %s", cmd);
        argc--, argv++;
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":hf:c:", options, NULL)) >= 0) {
                switch (c) {
                case ARG_JSON:
                        json = true;
                        break;
                case 'f':
                        file = optarg;
                        break;
                case 'c':
                        name = optarg;
                        break;
                case ARG_DRY_RUN:
                        dry = true;
                        break;
                case ARG_WAIT:
                case ARG_NO_WAIT:
                        if (wait >= 0)
                                return cli_usage_error(verb, "--wait and --no-wait exclude each other");
                        wait = c == ARG_WAIT;
                        break;
                default:
                        r = cli_common_option(ctx, verb, cli_mig_usage, c, argv);
                        if (r != CLI_CONTINUE)
                                return r;
                }
        }
        if (optind < argc)
                return cli_usage_error(verb, "unexpected argument '%s'", argv[optind]);
        if ((file || name) && (!strcmp(cmd, "show") || !strcmp(cmd, "export")))
                return cli_usage_error(verb, "-f and -c go with apply and assert");
        if ((dry || wait >= 0) && strcmp(cmd, "apply") != 0)
                return cli_usage_error(verb, "--dry-run, --wait and --no-wait go with apply");
        if (json && !strcmp(cmd, "export"))
                return cli_usage_error(verb, "export prints a mig-parted file; use 'mig show --json'");
        if (!strcmp(cmd, "show"))
                return show(ctx, json);
        if (!strcmp(cmd, "export"))
                return export_layout(ctx);
        if (!strcmp(cmd, "apply"))
                return apply(ctx, file, name, dry, wait, json);
        return assert_layout(ctx, file, name, json);
}
