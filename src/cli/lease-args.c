/* Command lines of `gpukeeper run` and `gpukeeper lease acquire`: the device
 * selection they share and its translation into lease.acquire arguments.
 * Everything here is checked before the daemon is asked, so a typo costs no
 * round trip and never lands a request in the queue. */
#include "cli/lease-args.h"

#include <errno.h>
#include <string.h>

#include "basic/parse.h"
#include "basic/utf8.h"
#include "proto/proto.h"

enum {
        ARG_GPUS = CLI_ARG_VERB_FIRST,
        ARG_GPU,
        ARG_MIG,
        ARG_NO_WAIT,
        ARG_WAIT,
        ARG_TIME,
        ARG_JSON,
        ARG_NO_BIND,
        ARG_SHARE,
};

void cli_acquire_args_done(cli_acquire_args *a)
{
        json_decref(a->devices);
        json_decref(a->mig);
        a->devices = a->mig = NULL;
}

/* Device names are UUIDs ("GPU-…", "MIG-…", the old "MIG-GPU-…/1/0") or
 * NVML indices: no spaces, no shell or JSON surprises. */
static bool name_char_ok(char c, const char *extra)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               strchr(extra, c);
}

static bool name_ok(const char *s, size_t len, size_t max, const char *extra)
{
        if (len == 0 || len > max || !name_char_ok(s[0], ""))
                return false;
        for (size_t i = 0; i < len; i++)
                if (!name_char_ok(s[i], extra))
                        return false;
        return true;
}

/* Only one way of naming devices per request: the daemon's lease.acquire
 * takes one of "gpus", "devices" or "mig". */
static int select_kind(cli_acquire_args *a, cli_select_kind kind, const char *verb)
{
        if (a->kind != CLI_SELECT_NONE && a->kind != kind)
                return cli_usage_error(verb, "--gpus, --gpu and --mig cannot be combined; "
                                             "ask for whole GPUs, named devices or MIG "
                                             "instances");
        a->kind = kind;
        return CLI_EXIT_OK;
}

static int add_gpus(cli_acquire_args *a, const char *value, const char *verb)
{
        uint64_t n;
        int r;

        r = select_kind(a, CLI_SELECT_GPUS, verb);
        if (r != CLI_EXIT_OK)
                return r;
        if (a->gpus != 0)
                return cli_usage_error(verb, "--gpus given twice");
        if (parse_uint64(value, &n) < 0 || n == 0 || n > CLI_MAX_GPUS)
                return cli_usage_error(verb, "--gpus takes a number of GPUs from 1 to %d, not '%s'",
                                       CLI_MAX_GPUS, value);
        a->gpus = n;
        return CLI_EXIT_OK;
}

/* --gpu ID[,ID...], repeatable: the names are collected in order. */
static int add_devices(cli_acquire_args *a, const char *value, const char *verb)
{
        const char *p = value;
        int r;

        r = select_kind(a, CLI_SELECT_DEVICES, verb);
        if (r != CLI_EXIT_OK)
                return r;
        if (!a->devices) {
                a->devices = json_array();
                if (!a->devices)
                        return cli_usage_error(verb, "out of memory");
        }
        for (;;) {
                size_t len = strcspn(p, ",");

                if (!name_ok(p, len, CLI_MAX_DEVICE_NAME, "-/_."))
                        return cli_usage_error(verb,
                                               "--gpu takes GPU or MIG UUIDs or GPU indices "
                                               "separated by commas, not '%s'",
                                               value);
                if (json_array_size(a->devices) >= CLI_MAX_DEVICES)
                        return cli_usage_error(verb, "more than %d devices named with --gpu",
                                               CLI_MAX_DEVICES);
                for (size_t i = 0; i < json_array_size(a->devices); i++) {
                        const char *seen = json_string_value(json_array_get(a->devices, i));

                        if (strlen(seen) == len && strncmp(seen, p, len) == 0)
                                return cli_usage_error(verb, "--gpu names '%.*s' twice", (int)len,
                                                       p);
                }
                if (json_array_append_new(a->devices, json_stringn(p, len)) < 0)
                        return cli_usage_error(verb, "out of memory");
                if (!p[len])
                        return CLI_EXIT_OK;
                p += len + 1;
        }
}

/* --mig PROFILE[:N], repeatable; the same profile twice adds up. */
static int add_mig(cli_acquire_args *a, const char *value, const char *verb)
{
        const char *colon = strrchr(value, ':');
        size_t len = colon ? (size_t)(colon - value) : strlen(value);
        uint64_t count = 1, total;
        json_t *item;
        int r;

        r = select_kind(a, CLI_SELECT_MIG, verb);
        if (r != CLI_EXIT_OK)
                return r;
        if (!name_ok(value, len, CLI_MAX_PROFILE, ".+_-") ||
            (colon &&
             (parse_uint64(colon + 1, &count) < 0 || count == 0 || count > CLI_MAX_DEVICES)))
                return cli_usage_error(verb,
                                       "--mig takes a MIG profile and an optional count from 1 "
                                       "to %d, like '3g.40gb' or '1g.10gb:2', not '%s'",
                                       CLI_MAX_DEVICES, value);
        if (!a->mig) {
                a->mig = json_array();
                if (!a->mig)
                        return cli_usage_error(verb, "out of memory");
        }
        total = count;
        for (size_t i = 0; i < json_array_size(a->mig); i++)
                total += (uint64_t)json_integer_value(
                    json_object_get(json_array_get(a->mig, i), "count"));
        if (total > CLI_MAX_DEVICES)
                return cli_usage_error(verb, "more than %d MIG instances asked for",
                                       CLI_MAX_DEVICES);
        for (size_t i = 0; i < json_array_size(a->mig); i++) {
                json_t *m = json_array_get(a->mig, i), *c = json_object_get(m, "count");
                const char *p = json_string_value(json_object_get(m, "profile"));

                if (strlen(p) == len && strncmp(p, value, len) == 0)
                        return json_integer_set(c, json_integer_value(c) + (json_int_t)count) < 0
                                   ? cli_usage_error(verb, "out of memory")
                                   : CLI_EXIT_OK;
        }
        if (json_array_size(a->mig) >= CLI_MAX_MIG)
                return cli_usage_error(verb, "more than %d --mig options", CLI_MAX_MIG);
        item = json_pack("{s:s%, s:I}", "profile", value, len, "count", (json_int_t)count);
        if (!item || json_array_append_new(a->mig, item) < 0)
                return cli_usage_error(verb, "out of memory");
        return CLI_EXIT_OK;
}

int cli_parse_lease_time(const char *s, uint64_t *ret_sec)
{
        uint64_t usec;
        int r;

        r = parse_duration_usec(s, &usec);
        if (r < 0)
                return r;
        if (usec < USEC_PER_SEC || usec % USEC_PER_SEC != 0)
                return -EINVAL;
        if (usec / USEC_PER_SEC > GK_PROTO_MAX_DURATION_SEC)
                return -ERANGE;
        *ret_sec = usec / USEC_PER_SEC;
        return 0;
}

int cli_lease_time_error(const char *verb, int r, const char *text)
{
        if (r == -ERANGE)
                return cli_usage_error(verb, "--time: a lease lasts at most 366d (your policy may "
                                             "allow less), not '%s'",
                                       text);
        return cli_usage_error(verb,
                               "--time takes a duration of at least 1s in whole seconds, like "
                               "'4h' or '1h30m', not '%s'",
                               text);
}

/* The option loop shared by both commands; `is_run` selects which extra
 * options exist. Leaves optind at the first word that is not an option. */
static int parse_options(cli_context *ctx, int argc, char *argv[], bool is_run, cli_acquire_args *a,
                         const char *verb)
{
        static const struct option run_options[] = {
            CLI_COMMON_OPTIONS,
            {"gpus", required_argument, NULL, ARG_GPUS},
            {"gpu", required_argument, NULL, ARG_GPU},
            {"mig", required_argument, NULL, ARG_MIG},
            {"no-wait", no_argument, NULL, ARG_NO_WAIT},
            {"wait", no_argument, NULL, ARG_WAIT},
            {"no-bind", no_argument, NULL, ARG_NO_BIND},
            {"share", required_argument, NULL, ARG_SHARE},
            {},
        };
        static const struct option acquire_options[] = {
            CLI_COMMON_OPTIONS,
            {"gpus", required_argument, NULL, ARG_GPUS},
            {"gpu", required_argument, NULL, ARG_GPU},
            {"mig", required_argument, NULL, ARG_MIG},
            {"no-wait", no_argument, NULL, ARG_NO_WAIT},
            {"wait", no_argument, NULL, ARG_WAIT},
            {"time", required_argument, NULL, ARG_TIME},
            {"json", no_argument, NULL, ARG_JSON},
            {"share", required_argument, NULL, ARG_SHARE},
            {},
        };
        int c, r = CLI_EXIT_OK;

        *a = (cli_acquire_args){.wait = true};
        optind = 0;
        opterr = 0;
        /* '+': stop at the first non-option, so the command's own options
         * (run -- python -u x.py) are never taken for ours. */
        while ((c = getopt_long(argc, argv, "+:h", is_run ? run_options : acquire_options, NULL)) >=
               0) {
                switch (c) {
                case 'h':
                        a->help = true;
                        return CLI_EXIT_OK;
                case CLI_ARG_SOCKET:
                        ctx->socket_arg = optarg;
                        break;
                case ARG_GPUS:
                        r = add_gpus(a, optarg, verb);
                        break;
                case ARG_GPU:
                        r = add_devices(a, optarg, verb);
                        break;
                case ARG_MIG:
                        r = add_mig(a, optarg, verb);
                        break;
                case ARG_NO_WAIT:
                        a->wait = false;
                        break;
                case ARG_WAIT:
                        /* The default, spelled out (kernelspecs say --wait). */
                        a->wait = true;
                        break;
                case ARG_TIME:
                        if (a->duration_sec != 0)
                                return cli_usage_error(verb, "--time given twice");
                        r = cli_parse_lease_time(optarg, &a->duration_sec);
                        if (r < 0)
                                return cli_lease_time_error(verb, r, optarg);
                        break;
                case ARG_JSON:
                        a->json = true;
                        break;
                case ARG_NO_BIND:
                        a->no_bind = true;
                        break;
                case ARG_SHARE:
                        if (a->share_bytes != 0)
                                return cli_usage_error(verb, "--share given twice");
                        if (parse_size_bytes(optarg, &a->share_bytes) < 0 ||
                            a->share_bytes < CLI_MIN_SHARE || a->share_bytes > CLI_MAX_SHARE) {
                                a->share_bytes = 0;
                                return cli_usage_error(verb,
                                                       "--share takes a memory budget from 1M "
                                                       "to 1P, like '20G' or '512M', not '%s'",
                                                       optarg);
                        }
                        break;
                default:
                        return cli_option_error(verb, c, argv);
                }
                if (r != CLI_EXIT_OK)
                        return r;
        }
        /* A shared lease is a slice of one GPU: --gpus 1 may say so, no more. */
        if (a->share_bytes && (a->kind == CLI_SELECT_DEVICES || a->kind == CLI_SELECT_MIG ||
                               (a->kind == CLI_SELECT_GPUS && a->gpus != 1)))
                return cli_usage_error(verb, "--share is a slice of one GPU: it goes without "
                                             "--gpu, --mig and --gpus N");
        return CLI_EXIT_OK;
}

int cli_run_parse(cli_context *ctx, int argc, char *argv[], cli_acquire_args *ret)
{
        cli_acquire_args a;
        bool dashdash;
        int r;

        r = parse_options(ctx, argc, argv, true, &a, "run");
        if (r != CLI_EXIT_OK || a.help) {
                if (r != CLI_EXIT_OK)
                        cli_acquire_args_done(&a);
                else
                        *ret = a;
                return r;
        }
        /* getopt consumed a "--" right before optind; no option value can
         * be "--" (none of them accepts it), so this is the separator. */
        dashdash = optind > 1 && strcmp(argv[optind - 1], "--") == 0;
        if (!dashdash) {
                cli_acquire_args_done(&a);
                if (optind < argc)
                        return cli_usage_error("run",
                                               "put '--' before the command: gpukeeper run "
                                               "[OPTIONS] -- %s ...",
                                               argv[optind]);
                return cli_usage_error("run", "no command given: gpukeeper run [OPTIONS] -- "
                                              "COMMAND [ARGS...]");
        }
        if (optind >= argc) {
                cli_acquire_args_done(&a);
                return cli_usage_error("run", "no command given after '--'");
        }
        a.command = argv + optind;
        *ret = a;
        return CLI_EXIT_OK;
}

int cli_lease_acquire_parse(cli_context *ctx, int argc, char *argv[], cli_acquire_args *ret)
{
        cli_acquire_args a;
        int r;

        r = parse_options(ctx, argc, argv, false, &a, "lease acquire");
        if (r == CLI_EXIT_OK && !a.help && optind < argc)
                r = cli_usage_error("lease acquire", "unexpected argument '%s'", argv[optind]);
        if (r != CLI_EXIT_OK) {
                cli_acquire_args_done(&a);
                return r;
        }
        *ret = a;
        return CLI_EXIT_OK;
}

/* The command line joined by spaces, valid UTF-8, at most
 * CLI_MAX_COMMAND_BYTES bytes, cut at a character boundary. */
static char *command_string(char *const *command)
{
        _cleanup_free_ char *joined = NULL;
        size_t len = 0, cap = CLI_MAX_COMMAND_BYTES * 4 + 1;
        char *s;

        joined = malloc(cap);
        if (!joined)
                return NULL;
        for (size_t i = 0; command[i] && len + 1 < cap; i++) {
                size_t n = MIN(strlen(command[i]), cap - 1 - len - (i > 0));

                if (i > 0)
                        joined[len++] = ' ';
                memcpy(joined + len, command[i], n);
                len += n;
        }
        joined[len] = '\0';
        s = utf8_sanitize(joined);
        if (!s)
                return NULL;
        len = strlen(s);
        if (len > CLI_MAX_COMMAND_BYTES) {
                len = CLI_MAX_COMMAND_BYTES;
                while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
                        len--;
                s[len] = '\0';
        }
        return s;
}

json_t *cli_acquire_request(const cli_acquire_args *a, const char *kind, char *const *command)
{
        _cleanup_(json_decrefp) json_t *args = NULL;
        int r = 0;

        args = json_pack("{s:s, s:b}", "kind", kind, "wait", a->wait);
        if (!args)
                return NULL;
        switch (a->kind) {
        case CLI_SELECT_NONE:
                r = json_object_set_new(args, "gpus", json_integer(1));
                break;
        case CLI_SELECT_GPUS:
                r = json_object_set_new(args, "gpus", json_integer((json_int_t)a->gpus));
                break;
        case CLI_SELECT_DEVICES:
                r = json_object_set(args, "devices", a->devices);
                break;
        case CLI_SELECT_MIG:
                r = json_object_set(args, "mig", a->mig);
                break;
        }
        if (r < 0)
                return NULL;
        if (a->share_bytes != 0 &&
            json_object_set_new(args, "share_bytes", json_integer((json_int_t)a->share_bytes)) < 0)
                return NULL;
        if (a->duration_sec != 0 &&
            json_object_set_new(args, "duration_sec", json_integer((json_int_t)a->duration_sec)) <
                0)
                return NULL;
        if (command) {
                _cleanup_free_ char *s = command_string(command);

                if (!s || json_object_set_new(args, "command", json_string(s)) < 0)
                        return NULL;
        }
        return TAKE_PTR(args);
}
