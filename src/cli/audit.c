/* `gpukeeper audit [--since D] [--user U] [--action A] [--json]`: what was
 * done, by whom, to what, newest first: leases granted and ended, refusals,
 * drains, violations and their signals, alerts, configuration reloads. Admins
 * see every record, other users their own (the daemon enforces it).
 *
 *   TIME            USER       ACTION                  SUBJECT          DETAIL
 *   01-05 12:02:11  alice      lease.acquire           lease 12         {"devices":…
 *
 * DETAIL is the record's JSON detail on one line, cut to the terminal (never
 * when the output is not a terminal). */
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "basic/parse.h"
#include "basic/time-util.h"
#include "cli/audit.h"
#include "cli/cli.h"
#include "cli/lease-render.h"
#include "cli/report.h"

#define AUDIT_LIMIT 1000
#define DEFAULT_SINCE_USEC (UINT64_C(24) * 3600 * USEC_PER_SEC)

#define TIME_W 14 /* "01-05 12:02:11" */
/* Widest USER, ACTION and SUBJECT columns on a terminal; they are as wide as
 * their widest entry up to these, and never cut when not on a terminal. */
#define USER_W 16
#define ACTION_W 24
#define SUBJECT_W 32

enum {
        ARG_JSON = CLI_ARG_VERB_FIRST,
        ARG_SINCE,
        ARG_USER,
        ARG_ACTION,
};

void cli_audit_usage(FILE *f)
{
        fputs("Usage: gpukeeper audit [--since DURATION] [--user USER] [--action ACTION] [--json]\n"
              "\n"
              "Show the daemon's audit trail, newest first: who did what to which lease or\n"
              "device, and what the daemon did on its own. Administrators (root, group\n"
              "gpukeeper-admin) see every record; other users see their own.\n"
              "\n"
              "Options:\n"
              "  --since DURATION  records of the last DURATION (30m, 2h, 7d; default 24h)\n"
              "  --user USER       only the records of USER (a name or a numeric uid)\n"
              "  --action ACTION   only ACTION ('lease.release') or a family ('lease')\n"
              "  --json            print the daemon's audit object as JSON\n"
              "  --socket PATH     talk to the daemon at PATH\n"
              "  -h, --help        show this help\n"
              "\n"
              "The actions and their details: gpukeeperd(8), AUDIT TRAIL.\n",
              f);
}

static const char *fmt_time(char *buf, size_t len, json_t *o)
{
        struct tm tm;
        double v;
        time_t t;

        if (!cli_json_num(o, "at", &v) || !isfinite(v) || v < 0)
                return "-";
        t = (time_t)v;
        if (!localtime_r(&t, &tm) || strftime(buf, len, "%m-%d %H:%M:%S", &tm) == 0)
                return "-";
        return buf;
}

static const char *user_of(json_t *v, char *buf, size_t len)
{
        const char *user = cli_json_str(v, "user");
        double u;

        if (user)
                return user;
        if (cli_json_num(v, "uid", &u) && u < 0)
                return "gpukeeperd";
        return cli_json_int_text(buf, len, v, "uid");
}

/* The width of the widest `key` (or user) of the records, at least the
 * heading's, at most `cap` on a terminal. */
static size_t column_width(json_t *list, const char *key, size_t heading, size_t cap,
                           const cli_term *term)
{
        size_t w = heading;

        for (size_t i = 0; i < json_array_size(list); i++) {
                json_t *v = json_array_get(list, i);
                char buf[32];
                const char *s = key ? cli_json_str(v, key) : user_of(v, buf, sizeof buf);

                w = MAX(w, cli_text_width(s ? s : "-", term->unicode));
        }
        return term->tty ? MIN(w, cap) : w;
}

static void render(json_t *list, const cli_term *term)
{
        size_t user_w = column_width(list, NULL, 4, USER_W, term),
               action_w = column_width(list, "action", 6, ACTION_W, term),
               subject_w = column_width(list, "subject", 7, SUBJECT_W, term);
        size_t end = MAX(term->columns, (size_t)CLI_TERM_MIN_COLUMNS) - 1,
               fixed = TIME_W + 1 + user_w + 1 + action_w + 1 + subject_w + 1;

        cli_text_heading(stdout, term,
                         (const cli_column[]){
                             {"TIME", TIME_W, CLI_ALIGN_LEFT, 1},
                             {"USER", user_w, CLI_ALIGN_LEFT, 1},
                             {"ACTION", action_w, CLI_ALIGN_LEFT, 1},
                             {"SUBJECT", subject_w, CLI_ALIGN_LEFT, 1},
                         },
                         4, "DETAIL");
        for (size_t i = 0; i < json_array_size(list); i++) {
                json_t *v = json_array_get(list, i), *detail = json_object_get(v, "detail");
                const char *action = cli_json_str(v, "action"),
                           *subject = cli_json_str(v, "subject");
                _cleanup_free_ char *detail_text = NULL;
                char when[32], uid[32];

                if (detail && !json_is_null(detail))
                        detail_text = json_dumps(detail, JSON_COMPACT | JSON_ENCODE_ANY);
                cli_text_field(stdout, fmt_time(when, sizeof when, v), TIME_W, CLI_ALIGN_LEFT,
                               term->unicode);
                fputc(' ', stdout);
                cli_text_field(stdout, user_of(v, uid, sizeof uid), user_w, CLI_ALIGN_LEFT,
                               term->unicode);
                fputc(' ', stdout);
                cli_text_field(stdout, action ? action : "-", action_w, CLI_ALIGN_LEFT,
                               term->unicode);
                fputc(' ', stdout);
                cli_text_field(stdout, subject ? subject : "-", subject_w, CLI_ALIGN_LEFT,
                               term->unicode);
                fputc(' ', stdout);
                if (term->tty)
                        cli_text_clip(stdout, detail_text ? detail_text : "-",
                                      end > fixed ? end - fixed : 1, term->unicode);
                else
                        fputs(detail_text ? detail_text : "-", stdout);
                fputc('\n', stdout);
        }
}

int cli_audit_main(cli_context *ctx, int argc, char *argv[])
{
        static const struct option options[] = {
            CLI_COMMON_OPTIONS,
            {"json", no_argument, NULL, ARG_JSON},
            {"since", required_argument, NULL, ARG_SINCE},
            {"user", required_argument, NULL, ARG_USER},
            {"action", required_argument, NULL, ARG_ACTION},
            {},
        };
        _cleanup_(json_decrefp) json_t *result = NULL, *user = NULL;
        uint64_t since_usec = DEFAULT_SINCE_USEC;
        const char *action = NULL, *user_arg = NULL;
        char span[FORMAT_DURATION_MAX];
        bool json = false;
        json_t *args, *list;
        cli_term term;
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_JSON:
                        json = true;
                        break;
                case ARG_SINCE:
                        r = cli_parse_since("audit", "30m, 2h or 7d", optarg, &since_usec);
                        if (r != CLI_EXIT_OK)
                                return r;
                        break;
                case ARG_USER:
                        json_decref(user);
                        user = cli_user_json(optarg);
                        user_arg = optarg;
                        if (!user)
                                return cli_usage_error("audit", "not a user name or id: '%s'",
                                                       optarg);
                        break;
                case ARG_ACTION:
                        action = optarg;
                        break;
                default:
                        r = cli_common_option(ctx, "audit", cli_audit_usage, c, argv);
                        if (r != CLI_CONTINUE)
                                return r;
                }
        }
        if (optind < argc)
                return cli_usage_error("audit", "unexpected argument '%s'", argv[optind]);

        args = json_pack("{s:f, s:i}", "since", cli_since_start(since_usec), "limit", AUDIT_LIMIT);
        if (args && user && json_object_set_new(args, "user", TAKE_PTR(user)) < 0)
                json_decref(TAKE_PTR(args));
        if (args && action && json_object_set_new(args, "action", json_string(action)) < 0)
                json_decref(TAKE_PTR(args));
        if (!args) {
                fputs("gpukeeper: out of memory\n", stderr);
                return CLI_EXIT_SOFTWARE;
        }
        r = cli_fetch(ctx, "audit.list", args, &result);
        if (r != CLI_EXIT_OK)
                return r;
        if (json) {
                cli_print_json(result);
                return cli_finish(CLI_EXIT_OK);
        }
        list = json_object_get(result, "records");
        (void)format_duration(span, sizeof span, since_usec);
        if (json_array_size(list) == 0) {
                /* Say what was asked, so a filter that matched nothing (a
                 * mistyped action, say) is not read as a quiet machine. */
                fputs("No audit records", stdout);
                if (user_arg)
                        printf(" of user '%s'", user_arg);
                if (action)
                        printf(" with action '%s'", action);
                printf(" in the last %s.\n", span);
                if (action)
                        puts("Actions are named as in the ACTION column ('lease.grant') or by "
                             "family ('lease'); gpukeeperd(8), AUDIT TRAIL, lists them.");
                return cli_finish(CLI_EXIT_OK);
        }
        cli_term_detect(stdout, &term);
        render(list, &term);
        if (json_array_size(list) >= AUDIT_LIMIT)
                printf("(only the newest %d are shown; use a shorter --since)\n", AUDIT_LIMIT);
        return cli_finish(CLI_EXIT_OK);
}
