/* `gpukeeper report [--since 30d] [--user U] [--json | --csv]`: per user,
 * over the window, leased and busy device-hours, the idle share of the
 * leased time, GPU memory-hours, queue wait (mean, p95) and violations;
 * then the lab's totals and its GPU waste (leased but idle device-hours plus
 * device-hours used without a lease). The numbers are the daemon's report
 * operation (report-ops.h); this file only asks and lays them out.
 * Whole devices (GPUs, MIG instances) are the main table; time on shared
 * GPUs (`--share`) is its own section, each lease its own hours, with the
 * budgets held and the memory used:
 *
 *   USER         LEASED h   BUSY h  IDLE  MEM GiB·h  LEASES  WAIT avg  p95  VIOL
 *   alice           120.5     80.1   34%     1203.0       12     30s   2m     0
 *   TOTAL           130.0     85.0   35%     1300.0       14              1
 *   Waste: 45.0 device-hours (40.0 leased but idle, 5.0 used without a lease)
 *
 *   Shared GPUs (memory budgets):
 *   USER         SHARED h   BUSY h  BUDGET GiB  USED GiB  BUDGET GiB·h  MEM GiB·h
 *   bob              10.0      8.0        20.0      12.5         200.0      125.0 */
#include <getopt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/parse.h"
#include "basic/time-util.h"
#include "cli/cli.h"
#include "cli/report.h"

#define DEFAULT_SINCE_USEC (UINT64_C(30) * USEC_PER_DAY)

enum {
        ARG_CSV = CLI_ARG_VERB_FIRST,
        ARG_USER,
};

void cli_report_usage(FILE *f)
{
        fputs("Usage: gpukeeper report [--since DURATION] [--user USER] [--json | --csv]\n"
              "                        [--socket PATH]\n"
              "\n"
              "Show GPU usage per user from the daemon's history: leased and busy\n"
              "device-hours, the idle share of the leased time, GPU memory-hours, queue\n"
              "wait (mean and 95th percentile) and violations; then totals and the lab's\n"
              "GPU waste (leased but idle, plus used without a lease). Shared GPUs\n"
              "(--share leases) are counted apart, each lease its own hours, with the\n"
              "mean memory budget and the memory used.\n"
              "\n"
              "Options:\n"
              "  --since DURATION  the last DURATION (2h, 7d, 30d; default 30d)\n"
              "  --user USER       only USER (a name or a numeric uid)\n"
              "  --json            print the daemon's report object as JSON\n"
              "  --csv             print one CSV row per user, then a TOTAL row\n"
              "  --socket PATH     talk to the daemon at PATH\n"
              "  -h, --help        show this help\n",
              f);
}

json_t *cli_user_json(const char *s)
{
        uint64_t v;

        if (parse_uint64(s, &v) >= 0)
                return v < UINT32_MAX ? json_integer((json_int_t)v) : NULL;
        if (!s[0] || strlen(s) > CLI_USER_NAME_MAX)
                return NULL;
        return json_string(s);
}

static double num(json_t *o, const char *key)
{
        return json_number_value(json_object_get(o, key));
}

/* The name to show for a user row: its name, else "#uid". */
static const char *row_name(json_t *u, char *buf, size_t len)
{
        const char *name = json_string_value(json_object_get(u, "user"));

        if (name)
                return name;
        snprintf(buf, len, "#%lld", (long long)json_integer_value(json_object_get(u, "uid")));
        return buf;
}

/* A CSV field: quoted when it holds a comma, a quote or a line break. */
static void csv_field(const char *s)
{
        if (!strpbrk(s, ",\"\r\n")) {
                fputs(s, stdout);
                return;
        }
        putchar('"');
        for (; *s; s++) {
                if (*s == '"')
                        putchar('"');
                putchar(*s);
        }
        putchar('"');
}

static void print_csv(json_t *result)
{
        json_t *users = json_object_get(result, "users"), *t = json_object_get(result, "totals"), *u;
        char buf[32];
        size_t i;

        puts("user,uid,leased_device_hours,busy_device_hours,idle_share,memory_gib_hours,leases,"
             "queue_wait_mean_sec,queue_wait_p95_sec,violations,shared_device_hours,"
             "shared_busy_device_hours,shared_budget_gib,shared_memory_gib_hours");
        json_array_foreach(users, i, u) {
                csv_field(row_name(u, buf, sizeof buf));
                printf(",%lld,%.3f,%.3f,%.4f,%.3f,%lld,%.1f,%.1f,%lld,%.3f,%.3f,%.3f,%.3f\n",
                       (long long)json_integer_value(json_object_get(u, "uid")),
                       num(u, "leased_device_hours"), num(u, "busy_device_hours"),
                       num(u, "idle_share"), num(u, "memory_gib_hours"),
                       (long long)json_integer_value(json_object_get(u, "leases")),
                       num(u, "queue_wait_mean_sec"), num(u, "queue_wait_p95_sec"),
                       (long long)json_integer_value(json_object_get(u, "violations")),
                       num(u, "shared_device_hours"), num(u, "shared_busy_device_hours"),
                       num(u, "shared_budget_gib"), num(u, "shared_memory_gib_hours"));
        }
        printf("TOTAL,,%.3f,%.3f,%.4f,%.3f,,,,%lld,%.3f,%.3f,%.3f,%.3f\n",
               num(t, "leased_device_hours"),
               num(t, "busy_device_hours"),
               num(t, "leased_device_hours") > 0
                       ? num(t, "idle_leased_device_hours") / num(t, "leased_device_hours")
                       : 0.0,
               num(t, "memory_gib_hours"),
               (long long)json_integer_value(json_object_get(t, "violations")),
               num(t, "shared_device_hours"), num(t, "shared_busy_device_hours"),
               num(t, "shared_budget_gib"), num(t, "shared_memory_gib_hours"));
}

/* The mean of an integral over `hours` (0 when there were none). */
static double mean_over(json_t *o, const char *key, double hours)
{
        return hours > 0 ? num(o, key) / hours : 0.0;
}

/* Users with time on shared GPUs, only when there are some. */
static void print_shared(json_t *users, json_t *t)
{
        char buf[32];
        json_t *u;
        size_t i;

        if (num(t, "shared_device_hours") <= 0)
                return;
        printf("\nShared GPUs (memory budgets):\n");
        printf("%-12s %9s %8s %11s %9s %13s %10s\n", "USER", "SHARED h", "BUSY h", "BUDGET GiB",
               "USED GiB", "BUDGET GiB·h", "MEM GiB·h");
        json_array_foreach(users, i, u) {
                double h = num(u, "shared_device_hours");

                if (h <= 0)
                        continue;
                printf("%-12.12s %9.1f %8.1f %11.1f %9.1f %13.1f %10.1f\n",
                       row_name(u, buf, sizeof buf), h, num(u, "shared_busy_device_hours"),
                       num(u, "shared_budget_gib"), mean_over(u, "shared_memory_gib_hours", h),
                       num(u, "shared_budget_gib_hours"), num(u, "shared_memory_gib_hours"));
        }
        printf("%-12s %9.1f %8.1f %11s %9s %13.1f %10.1f\n", "TOTAL",
               num(t, "shared_device_hours"), num(t, "shared_busy_device_hours"), "", "",
               num(t, "shared_budget_gib_hours"), num(t, "shared_memory_gib_hours"));
}

static void print_table(json_t *result, const char *span)
{
        json_t *users = json_object_get(result, "users"), *t = json_object_get(result, "totals"), *u;
        char buf[32];
        size_t i;

        printf("Usage over the last %s\n\n", span);
        printf("%-12s %9s %8s %5s %10s %7s %8s %6s %5s\n", "USER", "LEASED h", "BUSY h", "IDLE",
               "MEM GiB·h", "LEASES", "WAIT avg", "p95", "VIOL");
        json_array_foreach(users, i, u)
                printf("%-12.12s %9.1f %8.1f %4.0f%% %10.1f %7lld %7.0fs %5.0fs %5lld\n",
                       row_name(u, buf, sizeof buf), num(u, "leased_device_hours"),
                       num(u, "busy_device_hours"), 100.0 * num(u, "idle_share"),
                       num(u, "memory_gib_hours"),
                       (long long)json_integer_value(json_object_get(u, "leases")),
                       num(u, "queue_wait_mean_sec"), num(u, "queue_wait_p95_sec"),
                       (long long)json_integer_value(json_object_get(u, "violations")));
        printf("%-12s %9.1f %8.1f %4.0f%% %10.1f %7s %8s %6s %5lld\n", "TOTAL",
               num(t, "leased_device_hours"), num(t, "busy_device_hours"),
               num(t, "leased_device_hours") > 0
                       ? 100.0 * num(t, "idle_leased_device_hours") / num(t, "leased_device_hours")
                       : 0.0,
               num(t, "memory_gib_hours"), "", "", "",
               (long long)json_integer_value(json_object_get(t, "violations")));
        printf("\nWaste: %.1f device-hours (%.1f leased but idle, %.1f used without a lease)\n",
               num(t, "waste_device_hours"), num(t, "idle_leased_device_hours"),
               num(t, "unleased_busy_device_hours"));
        print_shared(users, t);
}

int cli_report_main(cli_context *ctx, int argc, char *argv[])
{
        static const struct option options[] = {
            CLI_COMMON_OPTIONS,
            CLI_SINCE_JSON_OPTIONS,
            {"csv", no_argument, NULL, ARG_CSV},
            {"user", required_argument, NULL, ARG_USER},
            {},
        };
        _cleanup_(json_decrefp) json_t *result = NULL, *user = NULL;
        cli_since_json o = {.examples = "2h, 7d or 30d", .since_usec = DEFAULT_SINCE_USEC};
        char span[FORMAT_DURATION_MAX];
        bool csv = false;
        json_t *args;
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_CSV:
                        csv = true;
                        break;
                case ARG_USER:
                        json_decref(user);
                        user = cli_user_json(optarg);
                        if (!user)
                                return cli_usage_error("report", "not a user name or id: '%s'",
                                                       optarg);
                        break;
                default:
                        r = cli_since_json_option(ctx, "report", cli_report_usage, &o, c, argv);
                        if (r != CLI_CONTINUE)
                                return r;
                }
        }
        if (optind < argc)
                return cli_usage_error("report", "unexpected argument '%s'", argv[optind]);
        if (o.json && csv)
                return cli_usage_error("report", "--json and --csv cannot be combined");

        args = json_pack("{s:f}", "since_sec", cli_since_start(o.since_usec));
        if (args && user && json_object_set_new(args, "user", TAKE_PTR(user)) < 0)
                json_decref(TAKE_PTR(args));
        if (!args) {
                fputs("gpukeeper: out of memory\n", stderr);
                return CLI_EXIT_SOFTWARE;
        }
        r = cli_fetch(ctx, "report", args, &result);
        if (r != CLI_EXIT_OK)
                return r;
        if (o.json)
                cli_print_json(result);
        else if (csv)
                print_csv(result);
        else {
                (void)format_duration(span, sizeof span, o.since_usec);
                print_table(result, span);
        }
        return cli_finish(CLI_EXIT_OK);
}
