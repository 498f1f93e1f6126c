/* `gpukeeper violations [--since D] [--json]`: the record of GPU use without
 * a lease — who ran what on which device, when it was seen, and what became
 * of it (still observed, to be stopped at a given time, signalled, or ended:
 * gone, leased, stopped, killed, unkillable). Everyone may read it: status
 * shows the same marks to everyone.
 *
 * Layout, for an 80-column terminal (newest first, as the daemon sends it):
 *
 *   ID    DETECTED    USER           PID GPU            STATE            COMMAND
 *   12    01-05 12:02 bob           4343 [1] MIG-5e6f7… stop at 12:03:04 python…
 *   11    01-05 11:40 carol         4444 [0]            killed           ./miner
 *
 * The GPU and STATE columns are as wide as their widest entry (up to the
 * widths below), so that the command line keeps what room there is. */
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "basic/parse.h"
#include "basic/time-util.h"
#include "cli/cli.h"
#include "cli/lease-render.h"
#include "cli/text.h"
#include "cli/violations.h"

/* The newest records asked for; the daemon refuses more than 10000. */
#define VIOLATIONS_LIMIT 1000
#define DEFAULT_SINCE_USEC (UINT64_C(24) * 3600 * USEC_PER_SEC)

#define ID_W 5
#define TIME_W 11  /* "01-05 12:02" */
#define USER_W 10
#define PID_W 7
#define GPU_W 14   /* at most: "[1] MIG-5e6f7…" */
#define STATE_W 16 /* at most: "stop at 12:03:04" */

void cli_violations_usage(FILE *f)
{
        fputs("Usage: gpukeeper violations [--since DURATION] [--json] [--socket PATH]\n"
              "\n"
              "Show the processes found using a GPU or MIG instance their owner held no\n"
              "lease on, newest first: when, whose, which device, and what became of them.\n"
              "\n"
              "Options:\n"
              "  --since DURATION  those detected in the last DURATION (30m, 2h, 7d;\n"
              "                    default 24h)\n"
              "  --json            print the daemon's violations object as JSON\n"
              "  --socket PATH     talk to the daemon at PATH\n"
              "  -h, --help        show this help\n",
              f);
}

/* Local time of the number `key` of `o` (seconds since the epoch):
 * "01-05 12:02" with `date`, else "12:03:04"; "-" when absent. */
static const char *fmt_time(char *buf, size_t len, json_t *o, const char *key, bool date)
{
        struct tm tm;
        double v;
        time_t t;

        if (!cli_json_num(o, key, &v) || !isfinite(v) || v < 0)
                return "-";
        t = (time_t)v;
        if (!localtime_r(&t, &tm) ||
            strftime(buf, len, date ? "%m-%d %H:%M" : "%H:%M:%S", &tm) == 0)
                return "-";
        return buf;
}

/* "[1]" for a whole GPU, "[1] MIG-…" for a MIG instance of GPU 1. */
static const char *fmt_device(char *buf, size_t len, json_t *v)
{
        const char *device = cli_json_str(v, "device_uuid");
        char idx[32] = "-";
        double i;

        if (cli_json_num(v, "gpu_index", &i) && isfinite(i))
                snprintf(idx, sizeof idx, "[%.0f]", i);
        if (device && strncmp(device, "MIG-", 4) == 0)
                snprintf(buf, len, "%s %s", idx, device);
        else
                snprintf(buf, len, "%s", idx);
        return buf;
}

/* What became of the process: its outcome once the violation ended; while
 * open the last signal sent, when it will be stopped, or "observed" when
 * the daemon only records (observe mode). */
static const char *fmt_state(char *buf, size_t len, json_t *v)
{
        const char *outcome = cli_json_str(v, "outcome");
        char clock[16];
        double t;

        if (outcome)
                return outcome;
        if (cli_json_num(v, "sigkill_at", &t))
                return "SIGKILL sent";
        if (cli_json_num(v, "sigterm_at", &t))
                return "SIGTERM sent";
        if (cli_json_num(v, "stop_at", &t)) {
                snprintf(buf, len, "stop at %s", fmt_time(clock, sizeof clock, v, "stop_at", false));
                return buf;
        }
        return "observed";
}

static void render(json_t *list, const cli_term *term)
{
        size_t end = MAX(term->columns, (size_t)CLI_TERM_MIN_COLUMNS) - 1, gpu_w = 3, state_w = 5,
               fixed;

        for (size_t i = 0; i < json_array_size(list); i++) {
                json_t *v = json_array_get(list, i);
                char gpu[160], state[48];

                gpu_w = MAX(gpu_w, cli_text_width(fmt_device(gpu, sizeof gpu, v), term->unicode));
                state_w = MAX(state_w,
                              cli_text_width(fmt_state(state, sizeof state, v), term->unicode));
        }
        gpu_w = MIN(gpu_w, (size_t)GPU_W);
        state_w = MIN(state_w, (size_t)STATE_W);
        fixed = ID_W + 1 + TIME_W + 1 + USER_W + 1 + PID_W + 1 + gpu_w + 1 + state_w + 1;

        cli_text_heading(stdout, term,
                         (const cli_column[]){
                             {"ID", ID_W, CLI_ALIGN_LEFT, 1},
                             {"DETECTED", TIME_W, CLI_ALIGN_LEFT, 1},
                             {"USER", USER_W, CLI_ALIGN_LEFT, 1},
                             {"PID", PID_W, CLI_ALIGN_RIGHT, 1},
                             {"GPU", gpu_w, CLI_ALIGN_LEFT, 1},
                             {"STATE", state_w, CLI_ALIGN_LEFT, 1},
                         },
                         6, "COMMAND");

        for (size_t i = 0; i < json_array_size(list); i++) {
                json_t *v = json_array_get(list, i);
                const char *user = cli_json_str(v, "user"), *command = cli_json_str(v, "command");
                char id[32], uid[32], pid[32], when[32], gpu[160], state[48];
                bool open = !cli_json_str(v, "outcome");

                cli_text_field(stdout, cli_json_int_text(id, sizeof id, v, "id"), ID_W,
                               CLI_ALIGN_LEFT, term->unicode);
                fputc(' ', stdout);
                cli_text_field(stdout, fmt_time(when, sizeof when, v, "detected_at", true),
                               TIME_W, CLI_ALIGN_LEFT, term->unicode);
                fputc(' ', stdout);
                cli_text_field(stdout, user ? user : cli_json_int_text(uid, sizeof uid, v, "uid"),
                               USER_W, CLI_ALIGN_LEFT, term->unicode);
                fputc(' ', stdout);
                cli_text_field(stdout, cli_json_int_text(pid, sizeof pid, v, "pid"), PID_W,
                               CLI_ALIGN_RIGHT, term->unicode);
                fputc(' ', stdout);
                cli_text_field(stdout, fmt_device(gpu, sizeof gpu, v), gpu_w, CLI_ALIGN_LEFT,
                               term->unicode);
                fputc(' ', stdout);
                /* An open violation is what needs attention now. */
                if (open)
                        cli_text_style(stdout, term, CLI_STYLE_RED);
                cli_text_field(stdout, fmt_state(state, sizeof state, v), state_w, CLI_ALIGN_LEFT,
                               term->unicode);
                if (open)
                        cli_text_style(stdout, term, CLI_STYLE_RESET);
                fputc(' ', stdout);
                cli_text_clip(stdout, command ? command : "-", end > fixed ? end - fixed : 1,
                              term->unicode);
                fputc('\n', stdout);
        }
}

/* Strict mode: opens of GPU nodes the kernel fence refused (counted by the
 * kernel since the fence was loaded). Nothing in other modes. */
static void print_fence_denied(json_t *denied)
{
        size_t i;
        json_t *row;

        if (json_array_size(denied) == 0)
                return;
        printf("\nOpens refused by the strict-mode fence (since it was loaded):\n");
        printf("  %-20s %-36s %s\n", "USER", "DEVICE", "REFUSED");
        json_array_foreach(denied, i, row)
        {
                const char *user = cli_json_str(row, "user"), *dev = cli_json_str(row, "device");
                double uid = -1, count = 0;
                char who[32];

                (void)cli_json_num(row, "uid", &uid);
                (void)cli_json_num(row, "count", &count);
                if (!user) {
                        snprintf(who, sizeof who, "%.0f", uid);
                        user = who;
                }
                printf("  ");
                cli_text_clip(stdout, user, 20, false);
                printf("%*s ", (int)(20 - MIN(strlen(user), (size_t)20)), "");
                cli_text_clip(stdout, dev ? dev : "?", 36, false);
                printf("%*s %.0f\n", (int)(36 - MIN(strlen(dev ? dev : "?"), (size_t)36)), "",
                       count);
        }
}

int cli_violations_main(cli_context *ctx, int argc, char *argv[])
{
        static const struct option options[] = {
            CLI_COMMON_OPTIONS,
            CLI_SINCE_JSON_OPTIONS,
            {},
        };
        _cleanup_(json_decrefp) json_t *result = NULL;
        cli_since_json o = {.examples = "30m, 2h or 7d", .since_usec = DEFAULT_SINCE_USEC};
        char span[FORMAT_DURATION_MAX];
        json_t *args, *list;
        cli_term term;
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:h", options, NULL)) >= 0) {
                r = cli_since_json_option(ctx, "violations", cli_violations_usage, &o, c, argv);
                if (r != CLI_CONTINUE)
                        return r;
        }
        if (optind < argc)
                return cli_usage_error("violations", "unexpected argument '%s'", argv[optind]);

        args = json_pack("{s:f, s:i}", "since", cli_since_start(o.since_usec), "limit",
                         VIOLATIONS_LIMIT);
        if (!args) {
                fputs("gpukeeper: out of memory\n", stderr);
                return CLI_EXIT_SOFTWARE;
        }
        r = cli_fetch(ctx, "violations.list", args, &result);
        if (r != CLI_EXIT_OK)
                return r;
        if (o.json) {
                cli_print_json(result);
                return cli_finish(CLI_EXIT_OK);
        }
        list = json_object_get(result, "violations");
        (void)format_duration(span, sizeof span, o.since_usec);
        if (json_array_size(list) == 0) {
                printf("No GPU use without a lease in the last %s.\n", span);
        } else {
                cli_term_detect(stdout, &term);
                render(list, &term);
                if (json_array_size(list) >= VIOLATIONS_LIMIT)
                        printf("(only the newest %d are shown; use a shorter --since)\n",
                               VIOLATIONS_LIMIT);
        }
        print_fence_denied(json_object_get(result, "fence_denied"));
        return cli_finish(CLI_EXIT_OK);
}
