/* Shared plumbing of the gpukeeper CLI: one-line errors and the mapping of
 * every failure (usage, transport, daemon error codes) to an exit code, so
 * that each subcommand reports the same failure the same way. */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio_ext.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "basic/parse.h"
#include "basic/prefault.h"
#include "basic/time-util.h"
#include "cli/text.h"
#include "client/client-text.h"
#include "proto/json-scan.h"
#include "proto/proto.h"

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

int cli_common_option(cli_context *ctx, const char *verb, void (*usage)(FILE *f), int c,
                      char *const argv[])
{
        switch (c) {
        case 'h':
                usage(stdout);
                return cli_finish(CLI_EXIT_OK);
        case CLI_ARG_SOCKET:
                ctx->socket_arg = optarg;
                return CLI_CONTINUE;
        default:
                return cli_option_error(verb, c, argv);
        }
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
        case GK_E_NOT_FOUND:
                return CLI_EXIT_NO_SUCH;
        case GK_E_NO_CAPACITY:
        case GK_E_BUSY:
                /* Both say "not now": a retry may succeed (sysexits'
                 * EX_TEMPFAIL), unlike a refusal or a failure (70). */
                return CLI_EXIT_TEMPFAIL;
        default:
                return CLI_EXIT_SOFTWARE;
        }
}

int cli_connect(const cli_context *ctx, gk_client **ret_client)
{
        const char *path = gk_socket_path(ctx->socket_arg);
        gk_client *c = NULL;
        struct stat st;
        int r;

        if (!path[0]) {
                fputs("gpukeeper: the socket path is empty (see --socket and $GPUKEEPER_SOCKET)\n",
                      stderr);
                return CLI_EXIT_USAGE;
        }
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
        if (r == -ECONNREFUSED && stat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
                /* connect() to a file or a directory says "refused" too. */
                fprintf(stderr,
                        "gpukeeper: cannot reach gpukeeperd at %s: not a socket (see --socket "
                        "and $GPUKEEPER_SOCKET)\n",
                        path);
                return CLI_EXIT_UNREACHABLE;
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
        gk_call_error error = {};
        json_t *result = NULL;
        int r;

        r = gk_client_call(client, op, args, &result, &error);
        if (r == 0) {
                *ret_result = result;
                return CLI_EXIT_OK;
        }
        return cli_call_failed(ctx, op, r, &error);
}

int cli_call_failed(const cli_context *ctx, const char *op, int r, gk_call_error *error)
{
        const char *path = gk_socket_path(ctx->socket_arg);
        cli_term term;

        if (r == -ECANCELED)
                return CLI_EXIT_CANCELED;
        if (r == -ENOMEM) {
                /* This side's memory (a large reply's index or tree), not
                 * the connection's. */
                fprintf(stderr, "gpukeeper: %s: out of memory\n", op);
                return CLI_EXIT_SOFTWARE;
        }
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
        error->message[sizeof error->message - 1] = '\0';
        fprintf(stderr, "gpukeeper: %s: ", op);
        cli_text_clip(stderr, error->message[0] ? error->message : gk_error_name(r), SIZE_MAX,
                      term.unicode);
        fprintf(stderr, "%s\n", hint_for_gk_error(r));
        return cli_exit_for_gk_error(r);
}

int cli_fetch(const cli_context *ctx, const char *op, json_t *args, json_t **ret_result)
{
        _cleanup_(gk_client_freep) gk_client *client = NULL;
        int r;

        r = cli_connect(ctx, &client);
        if (r != CLI_EXIT_OK) {
                json_decref(args);
                return r;
        }
        return cli_call(ctx, client, op, args, ret_result);
}

/* jansson hands the dump over a token at a time: gathered here and written
 * in 64 KiB pieces, rather than an fwrite() per token (json_dumpf) or the
 * whole text in one heap buffer first (json_dumps: 2.4 MB at 4,096
 * processes, grown by doubling, each page a first-touch fault). */
typedef struct json_out {
        FILE *f;
        size_t n;
        char buf[64 * 1024];
} json_out;

static int json_out_add(const char *s, size_t len, void *userdata)
{
        json_out *o = userdata;

        if (len > sizeof o->buf - o->n) {
                fwrite_unlocked(o->buf, 1, o->n, o->f);
                o->n = 0;
        }
        if (len > sizeof o->buf) {
                fwrite_unlocked(s, 1, len, o->f);
                return 0;
        }
        memcpy(o->buf + o->n, s, len);
        o->n += len;
        return 0;
}

void cli_print_json(json_t *j)
{
        json_out *o = malloc(sizeof *o);
        int r;

        if (!o) {
                /* no room for the piece buffer: jansson's own writes */
                if (json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0)
                        fputc('\n', stdout);
                return;
        }
        o->f = stdout;
        o->n = 0;
        r = json_dump_callback(j, json_out_add, o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fwrite_unlocked(o->buf, 1, o->n, stdout);
        if (r == 0)
                putc_unlocked('\n', stdout);
        free(o);
}

int cli_view_options(cli_context *ctx, const char *verb, void (*usage)(FILE *f), int argc,
                     char *argv[], bool *ret_json)
{
        static const struct option options[] = {
            CLI_COMMON_OPTIONS,
            {"json", no_argument, NULL, CLI_ARG_JSON},
            {},
        };
        bool json = false;
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:h", options, NULL)) >= 0) {
                if (c == CLI_ARG_JSON) {
                        json = true;
                        continue;
                }
                r = cli_common_option(ctx, verb, usage, c, argv);
                if (r != CLI_CONTINUE)
                        return r;
        }
        if (optind < argc)
                return cli_usage_error(verb, "unexpected argument '%s'", argv[optind]);
        *ret_json = json;
        return CLI_CONTINUE;
}

/* The view's call: the reply as text (*ret_text, *ret_len), or as a tree
 * when it came parsed (*ret_result). */
static int view_call(const cli_context *ctx, const cli_view *view, gk_client **ret_client,
                     const char **ret_text, size_t *ret_len, json_t **ret_result)
{
        gk_call_error error = {};
        int r;

        r = cli_connect(ctx, ret_client);
        if (r != CLI_EXIT_OK)
                return r;
        r = gk_client_call_text(*ret_client, view->op, NULL, ret_text, ret_len, ret_result,
                                &error);
        if (r != 0)
                return cli_call_failed(ctx, view->op, r, &error);
        return CLI_EXIT_OK;
}

/* jansson's tree of a reply takes about 7 bytes of heap per byte of JSON
 * (a status of 68 KB: 460 KB), one small allocation per value. */
#define JANSSON_HEAP_PER_BYTE 8

/* The --json side of a view: the daemon's result written as it arrives,
 * never whole in memory (issue 16), through gk_client_call_write()
 * (src/client/client-text.h): the same bytes as re-spacing the whole text,
 * from a buffer of 32 KiB instead of one of the reply's size, in one pass
 * over the text instead of two. A reply the client library cannot stream
 * (an error, an unusual shape) comes back as text or as a tree and is
 * printed from that. */
static int view_json(cli_context *ctx, const cli_view *view)
{
        _cleanup_(gk_client_freep) gk_client *client = NULL;
        gk_call_error error = {};
        json_t *result = NULL;
        const char *text = NULL;
        bool written;
        size_t len = 0;
        int r;

        r = cli_connect(ctx, &client);
        if (r != CLI_EXIT_OK)
                return r;
        /* Written by this one thread: stdio's lock is pure cost. */
        __fsetlocking(stdout, FSETLOCKING_BYCALLER);
        r = gk_client_call_write(client, view->op, NULL, stdout, &written, &text, &len, &result,
                                 &error);
        if (r != 0)
                return cli_call_failed(ctx, view->op, r, &error);
        if (!written && !text) {
                cli_print_json(result);
                json_decref(result);
                return cli_finish(CLI_EXIT_OK);
        }
        if (text)
                json_scan_write_indented(stdout, text, len);
        putc_unlocked('\n', stdout);
        return cli_finish(CLI_EXIT_OK);
}

#define VIEW_STREAM_HEAP (256u * 1024u)
#define VIEW_STREAM_OUT (64u * 1024u)

/* The text side of a view printed as the reply arrives (view->stream_new):
 * the result goes through the view's sink when the client library streams
 * it (gk_client_call_sink()); a reply it does not stream comes back as
 * text, indexed and rendered by view->render_index, or as a tree for
 * view->render. */
static int view_stream(cli_context *ctx, const cli_view *view)
{
        _cleanup_(gk_client_freep) gk_client *client = NULL;
        double now = (double)now_usec(CLOCK_REALTIME) / USEC_PER_SEC;
        gk_call_error error = {};
        gk_result_sink sink = {.feed = view->stream_feed, .finish = view->stream_finish};
        json_t *result = NULL, *args;
        JsonIndex *ix = NULL;
        const char *text = NULL;
        static char *out_buf;
        bool written;
        size_t len = 0;
        cli_term term;
        int r;

        /* The heap the view works in (the reply's buffer, one GPU's index,
         * stdio's buffer: a few hundred KiB at 4,096 processes), populated
         * in one call instead of a page fault per 4 KiB (basic/prefault.h);
         * pages it does not use cost 0.2 us each. */
        prefault_heap(VIEW_STREAM_HEAP);
        r = cli_connect(ctx, &client);
        if (r != CLI_EXIT_OK)
                return r;
        /* Written by this one thread: stdio's lock is pure cost. On a
         * terminal stdio writes a line at a time: a write(2) per process
         * line; the view comes all at once anyway, so it is buffered
         * there too (cli_finish() flushes). */
        __fsetlocking(stdout, FSETLOCKING_BYCALLER);
        cli_term_detect(stdout, &term);
        /* In blocks of 64 KiB, from the heap populated above: a status of
         * 4,096 processes is 350 KB of text, 85 write(2)s in stdio's usual
         * 4 KiB blocks. The command exits after the view (cli_finish()
         * flushes): the block is never freed. */
        out_buf = malloc(VIEW_STREAM_OUT);
        (void)setvbuf(stdout, out_buf, _IOFBF, out_buf ? VIEW_STREAM_OUT : BUFSIZ);
        args = view->stream_args ? view->stream_args() : NULL;
        if (view->stream_args && !args)
                return cli_call_failed(ctx, view->op, -ENOMEM, &error);
        for (;;) {
                bool with_args = args != NULL;

                r = view->stream_new(stdout, &term, now, &sink.userdata);
                if (r < 0) {
                        json_decref(args);
                        return cli_call_failed(ctx, view->op, r, &error);
                }
                r = gk_client_call_sink(client, view->op, TAKE_PTR(args), &sink, &written, &text,
                                        &len, &result, &error);
                view->stream_free(sink.userdata);
                /* An error reply feeds the sink nothing: asked again, the
                 * view starts afresh. */
                if (!(with_args && r == GK_E_INVALID_ARGUMENT))
                        break;
        }
        if (r != 0)
                return cli_call_failed(ctx, view->op, r, &error);
        if (written)
                return cli_finish(CLI_EXIT_OK);
        if (!text) {
                r = view->render(result, &term, now);
                json_decref(result);
                return r != CLI_EXIT_OK ? r : cli_finish(CLI_EXIT_OK);
        }
        /* The result object's text, inside the reply's envelope. */
        r = json_index_build(text, len, PROTO_MAX_DEPTH - 1, &ix);
        if (r < 0)
                return cli_call_failed(ctx, view->op, r, &error);
        r = view->render_index(ix, json_index_root(ix), &term, now);
        json_index_free(ix);
        return r != CLI_EXIT_OK ? r : cli_finish(CLI_EXIT_OK);
}

int cli_view_main(cli_context *ctx, const cli_view *view, int argc, char *argv[])
{
        /* The reply outlives the view: the command exits right after it,
         * and freeing a status of 4,096 processes node by node was 18% of
         * the command's instructions. Held here (reachable, so leak
         * checkers stay quiet), the previous one released. */
        static json_t *kept;
        _cleanup_(gk_client_freep) gk_client *client = NULL;
        gk_call_error error = {};
        json_t *result = NULL;
        json_error_t jerror;
        const char *text = NULL;
        size_t len = 0;
        bool json;
        cli_term term;
        int r;

        r = cli_view_options(ctx, view->verb, view->usage, argc, argv, &json);
        if (r != CLI_CONTINUE)
                return r;
        if (json)
                return view_json(ctx, view);
        if (view->stream_new)
                return view_stream(ctx, view);
        json_decref(kept);
        kept = NULL;
        /* The reply's buffer and the tree's heap are populated in one call
         * each (basic/prefault.h); from the heap, they cost no mmap/munmap
         * pair each. The command exits right after the view. */
        (void)prefault_keep_heap();
        r = view_call(ctx, view, &client, &text, &len, &result);
        if (r != CLI_EXIT_OK)
                return r;
        /* A view is written by this one thread: stdio's lock on stdout is
         * pure cost. */
        __fsetlocking(stdout, FSETLOCKING_BYCALLER);
        if (text) {
                /* The tree's size is known from the text: fault its heap in
                 * with one call (prefault_heap) rather than a page fault per
                 * 4 KiB, about a third of `status`'s time on these VMs. */
                if (len <= SIZE_MAX / JANSSON_HEAP_PER_BYTE)
                        prefault_heap(len * JANSSON_HEAP_PER_BYTE);
                /* proto_scan_ok_reply() vouched for it: jansson takes it. */
                result = json_loadb(text, len, 0, &jerror);
                if (!result)
                        return cli_call_failed(ctx, view->op, -EBADMSG, &error);
        }
        kept = result;
        cli_term_detect(stdout, &term);
        r = view->render(result, &term, (double)now_usec(CLOCK_REALTIME) / USEC_PER_SEC);
        if (r != CLI_EXIT_OK)
                return r;
        return cli_finish(CLI_EXIT_OK);
}

int cli_parse_since(const char *verb, const char *examples, const char *text, uint64_t *ret_usec)
{
        uint64_t usec;

        if (parse_duration_usec(text, &usec) < 0 || usec == 0)
                return cli_usage_error(verb, "--since takes a duration such as %s, not '%s'",
                                       examples, text);
        *ret_usec = usec;
        return CLI_EXIT_OK;
}

int cli_since_json_option(cli_context *ctx, const char *verb, void (*usage)(FILE *f),
                          cli_since_json *o, int c, char *const argv[])
{
        int r;

        if (c == CLI_ARG_JSON) {
                o->json = true;
                return CLI_CONTINUE;
        }
        if (c == CLI_ARG_SINCE) {
                r = cli_parse_since(verb, o->examples, optarg, &o->since_usec);
                return r == CLI_EXIT_OK ? CLI_CONTINUE : r;
        }
        return cli_common_option(ctx, verb, usage, c, argv);
}

double cli_since_start(uint64_t span_usec)
{
        uint64_t now = now_usec(CLOCK_REALTIME);

        return span_usec >= now ? 0.0 : (double)(now - span_usec) / USEC_PER_SEC;
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
