/* Command lines of the commands that ask for devices: `gpukeeper run` and
 * `gpukeeper lease acquire`. They share the device selection (--gpus N,
 * --gpu ID[,ID...], --mig PROFILE[:N]) and --no-wait, and turn into the
 * arguments of the daemon's lease.acquire operation. Kept apart from the
 * commands themselves so the unit tests can parse command lines without a
 * daemon. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cli/cli.h"
#include "proto/proto.h"

/* Limits on what one command line may ask for; the daemon checks them again. */
#define CLI_MAX_GPUS GK_PROTO_MAX_LEASE_DEVICES    /* --gpus N: what one lease may hold */
#define CLI_MAX_DEVICES GK_PROTO_MAX_LEASE_DEVICES /* names given with --gpu, in all */
#define CLI_MAX_DEVICE_NAME 96     /* "MIG-" + a UUID is 40 */
#define CLI_MAX_MIG 32             /* --mig options */
#define CLI_MAX_PROFILE 32         /* "1g.10gb+me" */
#define CLI_MIN_SHARE (UINT64_C(1) << 20)  /* --share SIZE */
#define CLI_MAX_SHARE (UINT64_C(1) << 50)
#define CLI_MAX_COMMAND_BYTES 1024 /* the command shown to others (lease.acquire "command") */

typedef enum cli_select_kind {
        CLI_SELECT_NONE, /* nothing named: one whole GPU */
        CLI_SELECT_GPUS,
        CLI_SELECT_DEVICES,
        CLI_SELECT_MIG,
} cli_select_kind;

typedef struct cli_acquire_args {
        cli_select_kind kind;
        uint64_t gpus;         /* CLI_SELECT_GPUS */
        json_t *devices;       /* CLI_SELECT_DEVICES: array of strings, as given */
        json_t *mig;           /* CLI_SELECT_MIG: array of {"profile", "count"} */
        uint64_t duration_sec; /* lease acquire --time; 0: the daemon's default */
        uint64_t share_bytes;  /* --share SIZE: a shared lease's memory budget; 0: whole */
        bool wait;             /* false with --no-wait */
        bool json;             /* lease acquire --json */
        bool no_bind;          /* run --no-bind: no CPU binding to the GPUs' NUMA node */
        bool help;             /* -h: the caller prints the usage and exits 0 */
        char **command;        /* run: the command and its arguments (into argv), NULL-terminated */
} cli_acquire_args;

/* Free what the parsers allocated; `a` may be zeroed or parsed. */
void cli_acquire_args_done(cli_acquire_args *a);

/* Parse `gpukeeper run [OPTIONS] -- CMD [ARGS...]` (argv[0] is "run").
 * Returns CLI_EXIT_OK and fills *ret (with help set for -h), or prints one
 * line to stderr and returns CLI_EXIT_USAGE. --socket goes to ctx. */
int cli_run_parse(cli_context *ctx, int argc, char *argv[], cli_acquire_args *ret);

/* Parse `gpukeeper lease acquire [OPTIONS]` (argv[0] is "acquire"), the same
 * way, with --time DURATION and --json instead of a command. */
int cli_lease_acquire_parse(cli_context *ctx, int argc, char *argv[], cli_acquire_args *ret);

/* Parse the value of --time: a duration as parse_duration_usec() reads it
 * ("4h", "1h30m"), in whole seconds, at least 1s and at most the
 * protocol's GK_PROTO_MAX_DURATION_SEC (366d). Returns 0, -EINVAL or
 * -ERANGE (longer than that). */
int cli_parse_lease_time(const char *s, uint64_t *ret_sec);

/* The usage error (64) for a --time that cli_parse_lease_time() refused
 * with `r`. */
int cli_lease_time_error(const char *verb, int r, const char *text);

/* The arguments of lease.acquire for `a`, with "kind" `kind` ("run" or
 * "manual") and, when `command` is not NULL, the command to show (made
 * valid UTF-8 and cut to CLI_MAX_COMMAND_BYTES). NULL on ENOMEM. */
json_t *cli_acquire_request(const cli_acquire_args *a, const char *kind, char *const *command);
