/* gpukeeper: the command line of gpukeeper. Parses the global options, then
 * hands the rest of the command line to the subcommand named by the first
 * word. Each subcommand lives in its own file and is one row of `verbs`. */
#include <getopt.h>
#include <stdio_ext.h>
#include <string.h>
#include <unistd.h>

#include "basic/time-util.h"
#include "cli/cli.h"
#include "cli/helper.h"
#include "cli/report.h"
#include "cli/violations.h"
#include "cli/limits-show.h"
#include "cli/audit.h"

typedef struct cli_verb {
        const char *name;
        const char *summary;
        int (*main)(cli_context *ctx, int argc, char *argv[]);
        void (*usage)(FILE *f);
} cli_verb;

/* A verb that runs in a helper executable (cli/helper.h), which gets the
 * whole command line, --help included. */
typedef struct cli_helper_row {
        const char *name;
        const char *summary;
        const char *helper;
} cli_helper_row;

static const cli_verb verbs[] = {
    {"status", "show GPUs, MIG instances, who holds them and the queue", cli_status_main,
     cli_status_usage},
    {"run", "lease GPUs, run a command with them, release them", cli_run_main, cli_run_usage},
    {"lease", "acquire, list, extend and release leases", cli_lease_main, cli_lease_usage},
    {"queue", "show who waits for GPUs, in order", cli_queue_main, cli_queue_usage},
    {"admin", "drain and undrain GPUs (administrators)", cli_admin_main, cli_admin_usage},
    {"violations", "show GPU use without a lease and what became of it", cli_violations_main,
     cli_violations_usage},
    {"audit", "the audit trail: who did what, when (admins: everyone's)", cli_audit_main,
     cli_audit_usage},
    {"report", "usage per user: device-hours, idle share, queue wait, waste", cli_report_main,
     cli_report_usage},
    {"slurm", "Slurm prolog/epilog, gres.conf, and job steps on this node", cli_slurm_main,
     cli_slurm_usage},
    {"limits", "per-user CPU, memory and tasks limits: what applies, from where", cli_limits_main,
     cli_limits_usage},
};

static const cli_helper_row helpers[] = {
    {"env", "conda environments: list, export, backup, prune, create, hooks", "gpukeeper-env"},
    {"kernel", "install a Jupyter kernel that leases its GPUs", "gpukeeper-env"},
    {"top", "live full-screen view of GPUs, processes and the queue", "gpukeeper-top"},
    {"mig", "MIG layouts: show, export, apply and assert mig-parted configs", "gpukeeper-env"},
    {"user", "add and remove people: account, environments, kernel, welcome", "gpukeeper-user"},
};

static const cli_helper_row *helper_find(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(helpers); i++)
                if (strcmp(helpers[i].name, name) == 0)
                        return &helpers[i];
        return NULL;
}

static const cli_verb *verb_find(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (strcmp(verbs[i].name, name) == 0)
                        return &verbs[i];
        return NULL;
}

static void usage(FILE *f)
{
        fputs("Usage: gpukeeper [--socket PATH] COMMAND [OPTIONS]\n"
              "\n"
              "Share this server's GPUs fairly: see who uses what, lease GPUs, run jobs.\n"
              "\n"
              "Commands:\n",
              f);
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                fprintf(f, "  %-15s %s\n", verbs[i].name, verbs[i].summary);
        for (size_t i = 0; i < ELEMENTSOF(helpers); i++)
                fprintf(f, "  %-15s %s\n", helpers[i].name, helpers[i].summary);
        fputs("  help [COMMAND]  show this help, or the help of COMMAND\n"
              "\n"
              "Options:\n"
              "  --socket PATH  talk to gpukeeperd at PATH (default: $GPUKEEPER_SOCKET,\n"
              "                 else " GK_DEFAULT_SOCKET ")\n"
              "  -h, --help     show this help\n"
              "  --version      show the version\n"
              "\n"
              "Run 'gpukeeper COMMAND --help' for the options of a command; see gpukeeper(1).\n",
              f);
}

/* `gpukeeper help [COMMAND]`. */
static int help(int argc, char *argv[])
{
        const cli_helper_row *h;
        const cli_verb *v;

        if (argc > 2)
                return cli_usage_error("help", "unexpected argument '%s'", argv[2]);
        if (argc < 2 || strcmp(argv[1], "help") == 0) {
                usage(stdout);
                return cli_finish(CLI_EXIT_OK);
        }
        h = helper_find(argv[1]);
        if (h)
                return cli_helper_exec(h->helper, GK_LIBEXEC_DIR, &(cli_context){}, 2,
                                       (char *[]){ argv[1], (char *)"--help", NULL });
        v = verb_find(argv[1]);
        if (!v)
                return cli_usage_error(NULL, "unknown command '%s'", argv[1]);
        v->usage(stdout);
        return cli_finish(CLI_EXIT_OK);
}

int main(int argc, char *argv[])
{
        enum { ARG_VERSION = CLI_ARG_VERB_FIRST };
        static const struct option options[] = {
            CLI_COMMON_OPTIONS,
            {"version", no_argument, NULL, ARG_VERSION},
            {},
        };
        cli_context ctx = {};
        const cli_helper_row *h;
        const cli_verb *v;
        int c, r;

        /* The hash seed of jansson's objects: it would read /dev/urandom
         * (open, read, close) on every start; the CLI only hashes the keys
         * of its own requests and of the daemon's replies, so flooding is no
         * concern here (the daemon keeps the random seed). */
        json_object_seed((size_t)getpid() ^ (size_t)now_usec(CLOCK_MONOTONIC));
        /* One thread: the text views write a glyph at a time and json_dumpf
         * a token at a time; none of those calls needs stdout's lock. */
        __fsetlocking(stdout, FSETLOCKING_BYCALLER);

        opterr = 0;
        /* '+': stop at the command name; what follows is the command's. */
        while ((c = getopt_long(argc, argv, "+:h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_VERSION:
                        puts("gpukeeper " GK_VERSION);
                        return cli_finish(CLI_EXIT_OK);
                default:
                        r = cli_common_option(&ctx, NULL, usage, c, argv);
                        if (r != CLI_CONTINUE)
                                return r;
                }
        }
        if (optind >= argc)
                return cli_usage_error(NULL, "no command given; try 'gpukeeper status'");

        if (strcmp(argv[optind], "help") == 0)
                return help(argc - optind, argv + optind);
        h = helper_find(argv[optind]);
        if (h)
                return cli_helper_exec(h->helper, GK_LIBEXEC_DIR, &ctx, argc - optind,
                                       argv + optind);
        v = verb_find(argv[optind]);
        if (!v)
                return cli_usage_error(NULL, "unknown command '%s'", argv[optind]);
        return v->main(&ctx, argc - optind, argv + optind);
}
