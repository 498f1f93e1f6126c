/* `gpukeeper lease acquire | env | list | extend | release`: interactive
 * ("manual") leases for a shell or a notebook, which last until they are
 * released or expire, and the listing and management of every lease the
 * caller holds (admins: anyone's). `gpukeeper run` makes the other kind. */
#include <errno.h>
#include <signal.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "basic/parse.h"
#include "basic/time-util.h"
#include "cli/acquire.h"
#include "cli/cli.h"
#include "cli/lease-args.h"
#include "cli/lease-render.h"

enum {
        ARG_ALL = CLI_ARG_VERB_FIRST,
        ARG_JSON,
        ARG_TIME,
};

void cli_lease_usage(FILE *f)
{
        fputs(
            "Usage: gpukeeper lease acquire [--gpus N | --gpu ID[,ID...] | --mig PROFILE[:N]...\n"
            "                               | --share SIZE] [--time DURATION] [--no-wait] [--json]\n"
            "       gpukeeper lease env [ID]\n"
            "       gpukeeper lease list [--all] [--json]\n"
            "       gpukeeper lease extend ID --time DURATION\n"
            "       gpukeeper lease release ID | --all\n"
            "       gpukeeper lease adopt PID... [--time DURATION] [--json]\n"
            "\n"
            "Leases for interactive work: acquire GPUs or MIG instances for a while (the\n"
            "default and the longest duration are set by the administrator), use them\n"
            "with eval \"$(gpukeeper lease env)\", release them when done.\n"
            "\n"
            "Commands:\n"
            "  acquire  lease devices (default: 1 GPU); waits in the queue unless --no-wait\n"
            "  env      print sh 'export' lines for a lease (default: your newest)\n"
            "  list     your active leases; --all: everyone's\n"
            "  extend   make a lease last DURATION longer (e.g. 2h)\n"
            "  release  give a lease back; --all: all of yours\n"
            "  adopt    lease the devices your running, unleased processes PID... use\n"
            "\n"
            "Options:\n"
            "  --gpus N, --gpu ID[,ID...], --mig PROFILE[:N]  what to lease, as for 'run'\n"            "  --share SIZE     a slice of a shareable GPU with SIZE of its memory (20G)\n"
            "  --time DURATION  how long: 30m, 4h, 1d (default: the configured default)\n"
            "  --wait           wait in the queue until the devices are free (the default)\n"
            "  --no-wait        fail with exit status 75 instead of waiting in the queue\n"
            "  --json           print the daemon's reply as JSON\n"
            "  --socket PATH    talk to the daemon at PATH\n"
            "  -h, --help       show this help\n",
            f);
}

static double now_sec(void)
{
        return (double)now_usec(CLOCK_REALTIME) / USEC_PER_SEC;
}

/* A lease id from the command line: a decimal number within JSON's range. */
static int parse_id(const char *verb, const char *s, json_int_t *ret)
{
        uint64_t v;

        if (parse_uint64(s, &v) < 0 || v == 0 || v > INT64_MAX)
                return cli_usage_error(verb,
                                       "'%s' is not a lease ID ('gpukeeper lease list' shows "
                                       "yours)",
                                       s);
        *ret = (json_int_t)v;
        return CLI_EXIT_OK;
}

/* The option loop of the simple subcommands: --json, --all and --time where
 * `allowed` names them ("jat"). Leaves optind at the first operand and
 * returns CLI_CONTINUE, or the exit code (0 after --help). */
static int parse_simple(cli_context *ctx, int argc, char *argv[], const char *verb,
                        const char *allowed, bool *ret_json, bool *ret_all,
                        uint64_t *ret_duration_sec)
{
        static const struct option options[] = {
            CLI_COMMON_OPTIONS,
            {"all", no_argument, NULL, ARG_ALL},
            {"json", no_argument, NULL, ARG_JSON},
            {"time", required_argument, NULL, ARG_TIME},
            {},
        };
        int c, r;

        optind = 0;
        opterr = 0;
        /* Options may follow the operand: lease extend 12 --time 2h. */
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_JSON:
                        if (!strchr(allowed, 'j'))
                                return cli_option_error(verb, '?', argv);
                        *ret_json = true;
                        break;
                case ARG_ALL:
                        if (!strchr(allowed, 'a'))
                                return cli_option_error(verb, '?', argv);
                        *ret_all = true;
                        break;
                case ARG_TIME:
                        if (!strchr(allowed, 't'))
                                return cli_option_error(verb, '?', argv);
                        r = cli_parse_lease_time(optarg, ret_duration_sec);
                        if (r < 0)
                                return cli_lease_time_error(verb, r, optarg);
                        break;
                default:
                        r = cli_common_option(ctx, verb, cli_lease_usage, c, argv);
                        if (r != CLI_CONTINUE)
                                return r;
                }
        }
        return CLI_CONTINUE;
}

static int lease_acquire(cli_context *ctx, int argc, char *argv[])
{
        _cleanup_(gk_client_freep) gk_client *client = NULL;
        _cleanup_(json_decrefp) json_t *lease = NULL;
        _cleanup_close_ int sfd = -1;
        /* Kept to the end: the Slurm backend reads it after the daemon says so. */
        _cleanup_(cli_acquire_args_done) cli_acquire_args a = {};
        sigset_t old_mask;
        json_t *args;
        double waited;
        cli_term term;
        int r;

        r = cli_lease_acquire_parse(ctx, argc, argv, &a);
        if (r != CLI_EXIT_OK)
                return r;
        if (a.help) {
                cli_lease_usage(stdout);
                return cli_finish(CLI_EXIT_OK);
        }
        args = cli_acquire_request(&a, "manual", NULL);
        if (!args) {
                fputs("gpukeeper: lease acquire: out of memory\n", stderr);
                return CLI_EXIT_SOFTWARE;
        }
        /* Ctrl-C while queued: withdraw the request and say so. */
        sfd = cli_signals_block(NULL, &old_mask);
        if (sfd < 0) {
                json_decref(args);
                fprintf(stderr, "gpukeeper: lease acquire: cannot watch signals: %s\n",
                        strerror(-sfd));
                return CLI_EXIT_SOFTWARE;
        }
        r = cli_connect(ctx, &client);
        if (r != CLI_EXIT_OK) {
                json_decref(args);
                return r;
        }
        r = cli_acquire(ctx, &client, args, sfd, false, &lease, &waited);
        if (r == CLI_EXIT_SLURM_BACKEND) {
                sigset_t none;

                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                return cli_slurm_acquire(ctx, &a);
        }
        if (r != CLI_EXIT_OK)
                return r;
        if (waited >= 0) {
                char span[32];
                double id = -1;

                cli_json_num(lease, "id", &id);
                fprintf(stderr, "gpukeeper: lease %.0f granted after %s in the queue\n", id,
                        cli_format_span(span, sizeof span, waited));
        }
        if (a.json) {
                _cleanup_(json_decrefp) json_t *wrapped = json_pack("{s:O}", "lease", lease);

                if (wrapped)
                        cli_print_json(wrapped);
                return cli_finish(CLI_EXIT_OK);
        }
        cli_term_detect(stdout, &term);
        cli_lease_render(lease, stdout, &term, now_sec());
        fputs("To use it in this shell: eval \"$(gpukeeper lease env)\"\n", stdout);
        return cli_finish(CLI_EXIT_OK);
}

static int lease_env(cli_context *ctx, int argc, char *argv[])
{
        _cleanup_(json_decrefp) json_t *result = NULL, *args = json_object();
        bool json = false, all = false;
        uint64_t dur = 0;
        json_int_t id = 0;
        int r;

        r = parse_simple(ctx, argc, argv, "lease env", "", &json, &all, &dur);
        if (r != CLI_CONTINUE)
                return r;
        if (argc - optind > 1)
                return cli_usage_error("lease env", "unexpected argument '%s'", argv[optind + 1]);
        if (!args)
                return CLI_EXIT_SOFTWARE;
        if (optind < argc) {
                r = parse_id("lease env", argv[optind], &id);
                if (r != CLI_EXIT_OK)
                        return r;
                json_object_set_new(args, "id", json_integer(id));
        }
        r = cli_fetch(ctx, "lease.env", json_incref(args), &result);
        if (r != CLI_EXIT_OK)
                return r;
        if (cli_env_render(json_object_get(result, "env"), stdout) < 0) {
                fprintf(stderr, "gpukeeper: lease.env: gpukeeperd's reply holds no usable "
                                "environment (see 'journalctl -u gpukeeperd')\n");
                return CLI_EXIT_SOFTWARE;
        }
        return cli_finish(CLI_EXIT_OK);
}

static int lease_list(cli_context *ctx, int argc, char *argv[])
{
        _cleanup_(json_decrefp) json_t *result = NULL;
        bool json = false, all = false;
        uint64_t dur = 0;
        cli_term term;
        int r;

        r = parse_simple(ctx, argc, argv, "lease list", "ja", &json, &all, &dur);
        if (r != CLI_CONTINUE)
                return r;
        if (optind < argc)
                return cli_usage_error("lease list", "unexpected argument '%s'", argv[optind]);
        r = cli_fetch(ctx, "lease.list", json_pack("{s:b}", "all", all), &result);
        if (r != CLI_EXIT_OK)
                return r;
        if (json) {
                cli_print_json(result);
                return cli_finish(CLI_EXIT_OK);
        }
        cli_term_detect(stdout, &term);
        if (cli_lease_list_render(json_object_get(result, "leases"), all, stdout, &term,
                                  now_sec()) < 0) {
                fprintf(stderr, "gpukeeper: lease.list: gpukeeperd's reply has no list of leases "
                                "(see 'gpukeeper lease list --json')\n");
                return CLI_EXIT_SOFTWARE;
        }
        return cli_finish(CLI_EXIT_OK);
}

static int lease_extend(cli_context *ctx, int argc, char *argv[])
{
        _cleanup_(json_decrefp) json_t *result = NULL;
        bool json = false, all = false;
        uint64_t dur = 0;
        json_int_t id = 0;
        cli_term term;
        int r;

        r = parse_simple(ctx, argc, argv, "lease extend", "t", &json, &all, &dur);
        if (r != CLI_CONTINUE)
                return r;
        if (optind >= argc)
                return cli_usage_error("lease extend", "which lease? gpukeeper lease extend ID "
                                                       "--time DURATION");
        if (argc - optind > 1)
                return cli_usage_error("lease extend", "unexpected argument '%s'",
                                       argv[optind + 1]);
        r = parse_id("lease extend", argv[optind], &id);
        if (r != CLI_EXIT_OK)
                return r;
        if (dur == 0)
                return cli_usage_error("lease extend", "by how much? add --time DURATION, like "
                                                       "'--time 2h'");
        r = cli_fetch(ctx, "lease.extend",
                      json_pack("{s:I, s:I}", "id", id, "duration_sec", (json_int_t)dur), &result);
        if (r != CLI_EXIT_OK)
                return r;
        cli_term_detect(stdout, &term);
        if (cli_lease_render(json_object_get(result, "lease"), stdout, &term, now_sec()) < 0)
                printf("lease %lld extended\n", (long long)id);
        return cli_finish(CLI_EXIT_OK);
}

static int lease_release(cli_context *ctx, int argc, char *argv[])
{
        _cleanup_(json_decrefp) json_t *result = NULL;
        bool json = false, all = false;
        uint64_t dur = 0;
        json_int_t id = 0;
        json_t *released;
        size_t n;
        int r;

        r = parse_simple(ctx, argc, argv, "lease release", "a", &json, &all, &dur);
        if (r != CLI_CONTINUE)
                return r;
        if (all && optind < argc)
                return cli_usage_error("lease release", "give a lease ID or --all, not both");
        if (!all && optind >= argc)
                return cli_usage_error("lease release", "which lease? give its ID ('gpukeeper "
                                                        "lease list' shows yours) or --all");
        if (argc - optind > 1)
                return cli_usage_error("lease release", "unexpected argument '%s'",
                                       argv[optind + 1]);
        if (!all) {
                r = parse_id("lease release", argv[optind], &id);
                if (r != CLI_EXIT_OK)
                        return r;
        }
        r = cli_fetch(ctx, "lease.release",
                      all ? json_pack("{s:b}", "all", 1) : json_pack("{s:I}", "id", id), &result);
        if (r != CLI_EXIT_OK)
                return r;
        released = json_object_get(result, "released");
        n = json_array_size(released);
        if (n == 0) {
                puts(all ? "You hold no leases." : "Nothing released.");
                return cli_finish(CLI_EXIT_OK);
        }
        fputs(n == 1 ? "released lease " : "released leases ", stdout);
        for (size_t i = 0; i < n; i++) {
                json_t *v = json_array_get(released, i);

                printf(i ? ", %" JSON_INTEGER_FORMAT : "%" JSON_INTEGER_FORMAT,
                       json_integer_value(v));
        }
        fputc('\n', stdout);
        return cli_finish(CLI_EXIT_OK);
}

/* The status entry of process `pid` on a device: *ret_device is the MIG
 * instance's or the GPU's uuid. NULL when no device lists it. */
static json_t *find_gpu_process(json_t *status, json_int_t pid, const char **ret_device)
{
        json_t *g, *p;
        size_t i, j;

        json_array_foreach(json_object_get(status, "gpus"), i, g)
                json_array_foreach(json_object_get(g, "processes"), j, p) {
                        const char *inst = cli_json_str(p, "instance_uuid");
                        double v;

                        if (cli_json_num(p, "pid", &v) && (json_int_t)v == pid) {
                                *ret_device = inst ? inst : cli_json_str(g, "uuid");
                                return p;
                        }
                }
        return NULL;
}

/* lease adopt PID...: a manual lease of exactly the devices the caller's
 * running processes use without a lease, when nobody else uses them (the
 * allocator grants a named device whose only unleased processes are the
 * requester's own): canhazgpu's `--force` for a job started without
 * gpukeeper, instead of its violation. An ordinary --no-wait acquire. */
static int lease_adopt(cli_context *ctx, int argc, char *argv[])
{
        _cleanup_(json_decrefp) json_t *status = NULL, *result = NULL;
        uint64_t duration_sec = 0;
        bool json = false, all = false;
        json_t *devices, *args, *lease;
        cli_term term;
        int r;

        r = parse_simple(ctx, argc, argv, "lease adopt", "tj", &json, &all, &duration_sec);
        if (r != CLI_CONTINUE)
                return r;
        if (optind >= argc)
                return cli_usage_error("lease adopt", "which process? give one or more PIDs");
        r = cli_fetch(ctx, "status", NULL, &status);
        if (r != CLI_EXIT_OK)
                return r;
        devices = json_array();
        if (!devices)
                return CLI_EXIT_SOFTWARE;
        for (int i = optind; i < argc; i++) {
                const char *device = NULL;
                json_t *p, *d;
                double uid = -1;
                bool known = false;
                uint64_t v;
                size_t k;

                if (parse_uint64(argv[i], &v) < 0 || v == 0 || v > INT32_MAX) {
                        json_decref(devices);
                        return cli_usage_error("lease adopt", "'%s' is not a PID", argv[i]);
                }
                p = find_gpu_process(status, (json_int_t)v, &device);
                if (!p || !device) {
                        json_decref(devices);
                        fprintf(stderr, "gpukeeper: process %s uses no GPU gpukeeper sees\n",
                                argv[i]);
                        return EX_NOINPUT;
                }
                if (!cli_json_num(p, "uid", &uid) || (uid_t)uid != getuid()) {
                        json_decref(devices);
                        fprintf(stderr, "gpukeeper: process %s is not yours; only your own "
                                        "processes can be adopted\n", argv[i]);
                        return CLI_EXIT_PERMISSION;
                }
                if (json_is_true(json_object_get(p, "leased"))) {
                        json_decref(devices);
                        fprintf(stderr, "gpukeeper: process %s already runs under your lease "
                                        "on %s\n", argv[i], device);
                        return CLI_EXIT_USAGE;
                }
                json_array_foreach(devices, k, d)
                        known = known || strcmp(json_string_value(d), device) == 0;
                if (!known && json_array_append_new(devices, json_string(device)) < 0) {
                        json_decref(devices);
                        return CLI_EXIT_SOFTWARE;
                }
        }
        args = json_pack("{s:s, s:o, s:b}", "kind", "manual", "devices", devices, "wait", 0);
        if (args && duration_sec &&
            json_object_set_new(args, "duration_sec", json_integer((json_int_t)duration_sec)) < 0)
                json_decref(TAKE_PTR(args));
        if (!args)
                return CLI_EXIT_SOFTWARE;
        r = cli_fetch(ctx, "lease.acquire", args, &result);
        if (r != CLI_EXIT_OK)
                return r;
        if (json) {
                cli_print_json(result);
                return cli_finish(CLI_EXIT_OK);
        }
        lease = json_object_get(result, "lease");
        cli_term_detect(stdout, &term);
        cli_lease_render(lease, stdout, &term, now_sec());
        fputs("The processes now run under this lease; release it when they are done.\n",
              stdout);
        return cli_finish(CLI_EXIT_OK);
}

int cli_lease_main(cli_context *ctx, int argc, char *argv[])
{
        static const struct {
                const char *name;
                int (*main)(cli_context *ctx, int argc, char *argv[]);
        } commands[] = {
            {"acquire", lease_acquire}, {"env", lease_env},         {"list", lease_list},
            {"extend", lease_extend},   {"release", lease_release},
            {"adopt", lease_adopt},
        };

        if (argc < 2)
                return cli_usage_error("lease", "no lease command given; try 'gpukeeper lease "
                                                "list'");
        if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
                cli_lease_usage(stdout);
                return cli_finish(CLI_EXIT_OK);
        }
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(argv[1], commands[i].name) == 0)
                        return commands[i].main(ctx, argc - 1, argv + 1);
        return cli_usage_error("lease", "unknown lease command '%s'", argv[1]);
}
