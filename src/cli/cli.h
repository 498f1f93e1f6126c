/* Shared plumbing of the gpukeeper CLI: exit codes, the one-line error
 * messages, option parsing helpers common to every subcommand, and talking
 * to the daemon with every failure mapped to an exit code in one place.
 *
 * Exit codes (ARCHITECTURE.md "Exit codes of the CLI", values from
 * sysexits.h): 0 success, 64 bad usage (also the daemon's
 * E_INVALID_ARGUMENT), 69 daemon unreachable, 70 any other daemon or
 * protocol error, 74 standard output could not be written, 75 not now: not
 * enough free devices (E_NO_CAPACITY) or the daemon busy (E_BUSY), 77
 * permission denied (E_PERMISSION, or the
 * socket refuses us). `gpukeeper run` exits with its command's code; 126 and
 * 127 when the command cannot be started; 128 + N after signal N. */
#pragma once

#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sysexits.h>

#include "basic/macro.h"
#include "cli/text.h"
#include "gpukeeper/client.h"
#include "proto/json-index.h"

enum {
        CLI_EXIT_OK = EX_OK,
        CLI_EXIT_USAGE = EX_USAGE,
        CLI_EXIT_NO_SUCH = EX_NOINPUT, /* what was named does not exist */
        CLI_EXIT_UNREACHABLE = EX_UNAVAILABLE,
        CLI_EXIT_SOFTWARE = EX_SOFTWARE,
        CLI_EXIT_IO = EX_IOERR,
        /* Not now, maybe later: no free devices under --no-wait, or the
         * daemon busy (E_BUSY); a script may retry. */
        CLI_EXIT_TEMPFAIL = EX_TEMPFAIL,
        CLI_EXIT_PERMISSION = EX_NOPERM,
        CLI_EXIT_CANCELED = 128 + SIGINT, /* a call gave up waiting: its cancel fd fired */
        CLI_EXIT_SLURM_BACKEND = 1000, /* internal: the daemon says backend: slurm (never exits) */
};

/* What the global options set; handed to every subcommand. */
typedef struct cli_context {
        const char *socket_arg; /* --socket, NULL when not given */
} cli_context;

/* getopt_long values of long-only options; above any char so they never
 * collide with short options. */
enum {
        CLI_ARG_SOCKET = 0x100,
        CLI_ARG_JSON,       /* --json, with CLI_SINCE_JSON_OPTIONS */
        CLI_ARG_SINCE,      /* --since DURATION, with CLI_SINCE_JSON_OPTIONS */
        CLI_ARG_VERB_FIRST, /* subcommands number their own long-only options from here */
};

/* The options every subcommand accepts as well as its own: --socket may be
 * given before or after the command name. */
#define CLI_COMMON_OPTIONS                                                                         \
        {"help", no_argument, NULL, 'h'},                                                          \
        {                                                                                          \
                "socket", required_argument, NULL, CLI_ARG_SOCKET                                  \
        }

/* Print "gpukeeper: <message> (see 'gpukeeper[ <verb>] --help')" on stderr
 * and return CLI_EXIT_USAGE. `verb` may be NULL for the global usage. */
int cli_usage_error(const char *verb, const char *fmt, ...) _printf_(2, 3);

/* Report what getopt_long() (called with opterr = 0 and an optstring that
 * starts with ':') rejected, given its return value `c` ('?' or ':'), and
 * return CLI_EXIT_USAGE. */
int cli_option_error(const char *verb, int c, char *const argv[]);

/* Not an exit code: what cli_common_option() and cli_view_options() return
 * when option parsing goes on. */
#define CLI_CONTINUE (-1)

/* The options every subcommand shares, for the default branch of its
 * getopt_long() loop (opterr = 0, optstring starting with ':' or "+:", and
 * CLI_COMMON_OPTIONS in its table): -h/--help prints `usage` on stdout and
 * returns cli_finish()'s code; --socket sets ctx->socket_arg and returns
 * CLI_CONTINUE; anything else is reported as by cli_option_error(). */
int cli_common_option(cli_context *ctx, const char *verb, void (*usage)(FILE *f), int c,
                      char *const argv[]);

/* Exit code for a gk_error code from a daemon error reply. */
int cli_exit_for_gk_error(int code);

/* Connect to the daemon at the socket resolved from ctx->socket_arg. On
 * failure print one line naming the socket and return the exit code;
 * on success return CLI_EXIT_OK and store the connection. */
int cli_connect(const cli_context *ctx, gk_client **ret_client);

/* Call `op` with `args` (stolen, may be NULL). On success return CLI_EXIT_OK
 * and store the result; when the client's cancel fd fired, print nothing and
 * return CLI_EXIT_CANCELED; otherwise print one line (the daemon's message,
 * or what broke) and return the exit code. */
int cli_call(const cli_context *ctx, gk_client *client, const char *op, json_t *args,
             json_t **ret_result);

/* What cli_call does with a failed gk_client_call() of `op` that returned
 * r != 0 with *error: the exit code, after one line on stderr (none for
 * -ECANCELED). */
int cli_call_failed(const cli_context *ctx, const char *op, int r, gk_call_error *error);

/* For subcommands that make a single call: cli_connect(), cli_call() and
 * disconnect. `args` is stolen even when the connection fails. Returns as
 * those do; the result outlives the connection. */
int cli_fetch(const cli_context *ctx, const char *op, json_t *args, json_t **ret_result);

/* Print `j` on stdout as --json does everywhere: indented, in the daemon's
 * key order (scripts read the documented keys), ending in a newline. */
void cli_print_json(json_t *j);

/* Parse the options of a verb that takes nothing but the common options
 * and --json (no operands). Returns CLI_CONTINUE, with *ret_json set, when
 * the verb should go on, else the exit code (0 after --help). */
int cli_view_options(cli_context *ctx, const char *verb, void (*usage)(FILE *f), int argc,
                     char *argv[], bool *ret_json);

/* A verb that shows one daemon operation's result: with --json as it
 * came, else through `render`, which prints to stdout (laid out for `term`,
 * times relative to `now`, seconds since the epoch) and returns an exit
 * code, having said on stderr what went wrong when that is not 0.
 * `render_index` does the same from the result object `result` in an index
 * over its text (proto/json-index.h): the streamed view's way (below) with
 * a reply that did not come streamed; no jansson tree is built then. */
typedef struct cli_view {
        const char *verb;
        void (*usage)(FILE *f);
        const char *op;
        int (*render)(json_t *result, const cli_term *term, double now);
        int (*render_index)(const JsonIndex *ix, JsonIndexRef result, const cli_term *term,
                            double now);
        /* When stream_new is not NULL, the text view is printed as the
         * reply arrives (issue 16), through a gk_result_sink
         * (client/client-text.h) whose feed and finish are stream_feed and
         * stream_finish, on the state stream_new makes for stdout (freed
         * with stream_free). Such a view sets render_index too. */
        int (*stream_new)(FILE *f, const cli_term *term, double now, void **ret);
        /* The streamed call's arguments (a new reference), or NULL for none.
         * A daemon that refuses them as invalid (one from before they
         * existed) is asked again without; the view reads either reply. */
        json_t *(*stream_args)(void);
        int (*stream_feed)(void *stream, const char *s, size_t len, bool last, size_t *ret_taken);
        int (*stream_finish)(void *stream);
        void (*stream_free)(void *stream);
} cli_view;

/* The whole of such a verb: options (cli_view_options()), a call of
 * view->op without arguments, then the JSON (written as it arrives) or the
 * rendered view. Returns the exit code. */
int cli_view_main(cli_context *ctx, const cli_view *view, int argc, char *argv[]);

/* The DURATION of `verb`'s --since (2h, 7d; not 0) into *ret_usec. A bad
 * one is reported as a usage error that offers `examples` ("30m, 2h or 7d"):
 * returns CLI_EXIT_USAGE then, else CLI_EXIT_OK. */
int cli_parse_since(const char *verb, const char *examples, const char *text, uint64_t *ret_usec);

/* Where a --since window of `span_usec` starts: the unix time in seconds
 * that long ago, 0 when that is before the epoch. */
double cli_since_start(uint64_t span_usec);

/* --json and --since DURATION, for the option table of a verb that shows a
 * time window (report, violations), next to CLI_COMMON_OPTIONS. */
#define CLI_SINCE_JSON_OPTIONS                                                                     \
        {"json", no_argument, NULL, CLI_ARG_JSON}, {                                               \
                "since", required_argument, NULL, CLI_ARG_SINCE                                    \
        }

/* What CLI_SINCE_JSON_OPTIONS set. */
typedef struct cli_since_json {
        const char *examples; /* durations for the --since message: "2h, 7d or 30d" */
        uint64_t since_usec;  /* the default before parsing, the window after */
        bool json;
} cli_since_json;

/* For the default branch of a getopt_long() loop whose table holds
 * CLI_COMMON_OPTIONS and CLI_SINCE_JSON_OPTIONS: --json and --since go into
 * *o (a duration that is not one, or 0, is a usage error naming
 * o->examples), anything else to cli_common_option(). Returns CLI_CONTINUE
 * or the exit code. */
int cli_since_json_option(cli_context *ctx, const char *verb, void (*usage)(FILE *f),
                          cli_since_json *o, int c, char *const argv[]);

/* Flush standard output; on a write error print one line and return
 * CLI_EXIT_IO, else return `exit_code`. */
int cli_finish(int exit_code);

DEFINE_TRIVIAL_CLEANUP_FUNC(gk_client *, gk_client_free);

/* Subcommands, one file each. `main` gets argv with argv[0] = the command
 * name and returns the exit code; `usage` prints its help. */
int cli_status_main(cli_context *ctx, int argc, char *argv[]);
void cli_status_usage(FILE *f);
int cli_run_main(cli_context *ctx, int argc, char *argv[]);
void cli_run_usage(FILE *f);
int cli_lease_main(cli_context *ctx, int argc, char *argv[]);
void cli_lease_usage(FILE *f);
int cli_queue_main(cli_context *ctx, int argc, char *argv[]);
void cli_queue_usage(FILE *f);
int cli_admin_main(cli_context *ctx, int argc, char *argv[]);
void cli_admin_usage(FILE *f);

/* Slurm (cli/slurm.c): `gpukeeper slurm …`, and the backend: slurm paths of
 * run (srun), lease acquire (salloc --no-shell) and queue (squeue). The
 * cli_slurm_run/acquire/queue calls exec and return only on failure. */
int cli_slurm_main(cli_context *ctx, int argc, char *argv[]);
void cli_slurm_usage(FILE *f);
struct cli_acquire_args;
int cli_slurm_run(const cli_context *ctx, const struct cli_acquire_args *a);
int cli_slurm_acquire(const cli_context *ctx, const struct cli_acquire_args *a);
bool cli_slurm_backend(const cli_context *ctx);
int cli_slurm_queue(bool json);
int cli_mig_main(cli_context *ctx, int argc, char *argv[]);
void cli_mig_usage(FILE *f);
