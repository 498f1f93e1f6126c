/* Shared plumbing of the gpukeeper CLI: one-line errors and the mapping of
 * every failure (usage, transport, daemon error codes) to an exit code, so
 * that each subcommand reports the same failure the same way. */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "cli/text.h"

int cli_usage_error(const char *verb, const char *fmt, ...)
{
        va_list ap;

        fputs("gpukeeper: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, " (see 'gpukeeper%s%s --help')\n", verb ? " " : "", verb ? verb : "");
        return CLI_EXIT_USAGE;
}

int cli_option_error(const char *verb, int c, char *const argv[])
{
        char shortopt[3] = {'-', (char)optopt, 0};
        /* A rejected short option is in optopt; for a long one optopt is 0
         * (unknown) or its value (not a char), and the word is argv[optind-1]. */
        const char *what =
            optopt > 0 && optopt < 0x80 && isgraph(optopt) ? shortopt : argv[optind - 1];

        if (c == ':')
                return cli_usage_error(verb, "option '%s' needs a value", what);
        return cli_usage_error(verb, "unknown option '%s'", what);
}

int cli_exit_for_gk_error(int code)
{
        switch (code) {
        case GK_OK:
                return CLI_EXIT_OK;
        case GK_E_PERMISSION:
                return CLI_EXIT_PERMISSION;
        case GK_E_INVALID_ARGUMENT:
                return CLI_EXIT_USAGE;
        case GK_E_NO_CAPACITY:
                return CLI_EXIT_NO_CAPACITY;
        default:
                return CLI_EXIT_SOFTWARE;
        }
}

int cli_connect(const cli_context *ctx, gk_client **ret_client)
{
        const char *path = gk_socket_path(ctx->socket_arg);
        gk_client *c = NULL;
        int r;

        r = gk_client_connect(path, &c);
        if (r >= 0) {
                *ret_client = c;
                return CLI_EXIT_OK;
        }
        if (r == -EACCES || r == -EPERM) {
                fprintf(stderr,
                        "gpukeeper: cannot reach gpukeeperd at %s: %s (ask the administrator for "
                        "access to the socket)\n",
                        path, strerror(-r));
                return CLI_EXIT_PERMISSION;
        }
        if (r == -ENAMETOOLONG) {
                fprintf(stderr,
                        "gpukeeper: socket path %s is too long for a Unix socket (use a shorter "
                        "--socket or $GPUKEEPER_SOCKET)\n",
                        path);
                return CLI_EXIT_USAGE;
        }
        fprintf(stderr,
                "gpukeeper: cannot reach gpukeeperd at %s: %s (is the daemon running? see "
                "'systemctl status gpukeeperd')\n",
                path, strerror(-r));
        return CLI_EXIT_UNREACHABLE;
}

/* What to do about a daemon error, appended to its message. */
static const char *hint_for_gk_error(int code)
{
        switch (code) {
        case GK_E_INTERNAL:
                return " (see 'journalctl -u gpukeeperd')";
        case GK_E_UNKNOWN_OP:
        case GK_E_VERSION:
        case GK_E_MALFORMED:
                return " (gpukeeper and gpukeeperd may be different versions; compare "
                       "'gpukeeper --version' with the installed package)";
        case GK_E_BUSY:
                return " (try again in a moment)";
        default:
                return "";
        }
}

int cli_call(const cli_context *ctx, gk_client *client, const char *op, json_t *args,
             json_t **ret_result)
{
        const char *path = gk_socket_path(ctx->socket_arg);
        gk_call_error error = {};
        json_t *result = NULL;
        cli_term term;
        int r;

        r = gk_client_call(client, op, args, &result, &error);
        if (r == 0) {
                *ret_result = result;
                return CLI_EXIT_OK;
        }
        if (r == -ECANCELED)
                return CLI_EXIT_CANCELED;
        if (r == -EBADMSG) {
                fprintf(stderr,
                        "gpukeeper: %s: gpukeeperd at %s sent a reply that is not valid (see "
                        "'journalctl -u gpukeeperd')\n",
                        op, path);
                return CLI_EXIT_SOFTWARE;
        }
        if (r < 0) {
                fprintf(stderr,
                        "gpukeeper: %s: lost the connection to gpukeeperd at %s: %s (see "
                        "'systemctl status gpukeeperd')\n",
                        op, path, strerror(-r));
                return CLI_EXIT_UNREACHABLE;
        }

        /* The daemon's sentence, made safe for the terminal and kept on one line. */
        cli_term_detect(stderr, &term);
        error.message[sizeof error.message - 1] = '\0';
        fprintf(stderr, "gpukeeper: %s: ", op);
        cli_text_clip(stderr, error.message[0] ? error.message : gk_error_name(r), SIZE_MAX,
                      term.unicode);
        fprintf(stderr, "%s\n", hint_for_gk_error(r));
        return cli_exit_for_gk_error(r);
}

int cli_finish(int exit_code)
{
        if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "gpukeeper: cannot write to standard output: %s\n",
                        strerror(errno ? errno : EIO));
                return CLI_EXIT_IO;
        }
        return exit_code;
}
