/* Asking for a lease and waiting in the queue; see acquire.h. */
#include "cli/acquire.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "basic/time-util.h"
#include "cli/lease-render.h"
#include "cli/text.h"

/* How often a waiting `run` tries to reach a daemon that went away. */
#define ACQUIRE_RECONNECT_MSEC 500

/* What was last printed about our place in the queue, so that a repeated
 * event does not print the same line again. After asking again (a restart
 * of the daemon), `asked_again_of` is the request id we had before: the
 * first event says whether the daemon gave the place back (it does for a
 * waiting run within policy.reconnect_grace, docs/protocol.md), -1 once
 * said or when we were not queued. */
typedef struct queue_view {
        bool queued;
        double request_id, position, waiting;
        double asked_again_of;
        char reason[256];
} queue_view;

static void on_event(const char *event, json_t *data, void *userdata)
{
        queue_view *v = userdata;
        const char *reason = cli_json_str(data, "reason");
        double position = -1, waiting = -1;
        cli_term term;

        if (strcmp(event, "queue.position") != 0)
                return;
        cli_json_num(data, "position", &position);
        cli_json_num(data, "waiting", &waiting);
        if (!reason)
                reason = "";
        v->request_id = -1;
        cli_json_num(data, "request_id", &v->request_id);
        if (v->asked_again_of >= 0) {
                fprintf(stderr, "gpukeeper: %s\n",
                        v->request_id == v->asked_again_of
                            ? "gpukeeperd gave the request its old place in the queue back"
                            : "the request's old place in the queue was not kept; it is a new "
                              "request");
                v->asked_again_of = -1;
        }
        if (v->queued && v->position == position && v->waiting == waiting &&
            strncmp(v->reason, reason, sizeof v->reason - 1) == 0)
                return;
        v->queued = true;
        v->position = position;
        v->waiting = waiting;
        snprintf(v->reason, sizeof v->reason, "%s", reason);

        cli_term_detect(stderr, &term);
        if (position >= 0 && waiting >= 0)
                fprintf(stderr, "gpukeeper: queued, position %.0f of %.0f", position, waiting);
        else
                fputs("gpukeeper: queued", stderr);
        if (reason[0]) {
                fputs(" (", stderr);
                cli_text_clip(stderr, reason, 200, term.unicode);
                fputc(')', stderr);
        }
        fputc('\n', stderr);
}

int cli_signals_block(const sigset_t *extra, sigset_t *ret_old_mask)
{
        sigset_t mask, block;
        int fd;

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        block = mask;
        if (extra)
                sigorset(&block, &block, extra);
        if (sigprocmask(SIG_BLOCK, &block, ret_old_mask) < 0)
                return negative_errno();
        fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        return fd;
}

/* The signal waiting on `sfd`, or SIGINT when none can be read (the cancel
 * fired, so one was there). */
static int read_signal(int sfd)
{
        struct signalfd_siginfo si;

        if (read(sfd, &si, sizeof si) != (ssize_t)sizeof si)
                return SIGINT;
        return (int)si.ssi_signo;
}

/* Wait until the daemon takes connections again, trying every
 * ACQUIRE_RECONNECT_MSEC while its socket is missing or refuses (a restart).
 * Returns 0 with the new connection in *ret, the number of the signal that
 * arrived on sfd meanwhile, or -errno of a connect that cannot get better
 * by waiting (no permission, a bad path). */
static int wait_for_daemon(const cli_context *ctx, int sfd, gk_client **ret)
{
        for (;;) {
                struct pollfd p = { .fd = sfd, .events = POLLIN };
                int r;

                if (poll(&p, 1, ACQUIRE_RECONNECT_MSEC) > 0)
                        return read_signal(sfd);
                r = gk_client_connect(gk_socket_path(ctx->socket_arg), ret);
                if (r >= 0)
                        return 0;
                if (r != -ENOENT && r != -ECONNREFUSED && r != -EAGAIN)
                        return r;
        }
}

/* After a restart: a run lease of this process that nobody holds is a
 * grant whose reply the old daemon never sent. Take it over (lease.attach)
 * instead of asking for a second one. Returns true with the attach reply
 * in *ret_result; false when there is none or on any failure (then the
 * request is simply made again). */
static bool adopt_lost_grant(gk_client *client, json_t **ret_result)
{
        _cleanup_(json_decrefp) json_t *list = NULL;
        gk_call_error error = {};
        size_t i;
        json_t *l;

        if (gk_client_call(client, "lease.list", NULL, &list, &error) != 0)
                return false;
        json_array_foreach(json_object_get(list, "leases"), i, l) {
                if (!json_is_string(json_object_get(l, "kind")) ||
                    strcmp(json_string_value(json_object_get(l, "kind")), "run") != 0 ||
                    json_integer_value(json_object_get(l, "pid")) != getpid() ||
                    !json_is_false(json_object_get(l, "attached")))
                        continue;
                return gk_client_call(client, "lease.attach",
                                      json_pack("{s:O}", "id", json_object_get(l, "id")),
                                      ret_result, &error) == 0;
        }
        return false;
}

int cli_acquire(cli_context *ctx, gk_client **client, json_t *args, int sfd, bool requeue,
                json_t **ret_lease, double *ret_waited_sec)
{
        _cleanup_(json_decrefp) json_t *request = args, *result = NULL;
        queue_view view = {.request_id = -1, .asked_again_of = -1};
        uint64_t start = now_usec(CLOCK_MONOTONIC);
        bool was_queued = false;
        json_t *lease;
        int r, sig;

        for (;;) {
                gk_call_error error = {};

                gk_client_set_event_handler(*client, on_event, &view);
                gk_client_set_cancel_fd(*client, sfd);
                r = gk_client_call(*client, "lease.acquire", json_incref(request), &result, &error);
                gk_client_set_cancel_fd(*client, -1);
                gk_client_set_event_handler(*client, NULL, NULL);
                was_queued = was_queued || view.queued;
                if (r == 0)
                        break;
                if (r == -ECANCELED) {
                        sig = read_signal(sfd);
                        fprintf(stderr, "gpukeeper: interrupted by SIG%s; %s\n", sigabbrev_np(sig),
                                view.queued ? "left the queue without a lease" : "request withdrawn");
                        return 128 + sig;
                }
                if (error.code == GK_E_SLURM_BACKEND)
                        return CLI_EXIT_SLURM_BACKEND;
                if (!requeue || r != -ECONNRESET)
                        return cli_call_failed(ctx, "lease.acquire", r, &error);

                /* The daemon went away (a restart drops its queue): ask the
                 * next one, unless it already granted the request. */
                fprintf(stderr,
                        "gpukeeper: lost the connection to gpukeeperd%s; reconnecting every 0.5s "
                        "to ask again (Ctrl-C gives up)\n",
                        view.queued ? " while queued" : "");
                gk_client_free(*client);
                *client = NULL;
                sig = wait_for_daemon(ctx, sfd, client);
                if (sig > 0) {
                        fprintf(stderr, "gpukeeper: interrupted by SIG%s; gave up without a lease\n",
                                sigabbrev_np(sig));
                        return 128 + sig;
                }
                if (sig < 0) {
                        fprintf(stderr, "gpukeeper: cannot reach gpukeeperd at %s again: %s\n",
                                gk_socket_path(ctx->socket_arg), strerror(-sig));
                        return CLI_EXIT_UNREACHABLE;
                }
                if (adopt_lost_grant(*client, &result)) {
                        fputs("gpukeeper: reconnected to gpukeeperd, which had granted the request "
                              "already\n",
                              stderr);
                        break;
                }
                fprintf(stderr, "gpukeeper: reconnected to gpukeeperd; asking again\n");
                view = (queue_view){.request_id = -1,
                                    .asked_again_of = view.queued ? view.request_id : -1};
        }

        lease = json_object_get(result, "lease");
        if (!json_is_object(lease)) {
                fprintf(stderr, "gpukeeper: lease.acquire: gpukeeperd's reply has no lease (see "
                                "'journalctl -u gpukeeperd')\n");
                return CLI_EXIT_SOFTWARE;
        }
        *ret_lease = json_incref(lease);
        *ret_waited_sec =
            was_queued ? (double)(now_usec(CLOCK_MONOTONIC) - start) / USEC_PER_SEC : -1;
        return CLI_EXIT_OK;
}
