/* `gpukeeper run [--gpus N | --gpu ID,... | --mig PROFILE[:N]] [--no-wait]
 * -- COMMAND [ARGS...]`: lease devices (waiting in the queue unless
 * --no-wait), run the command with the lease's CUDA environment, release the
 * lease when it exits and exit with its status.
 *
 * The lease is a "run" lease: the daemon keeps it exactly as long as a
 * connection of ours holds it, so this process keeps the connection open
 * while the command runs, and if the daemon restarts, reconnects and
 * re-attaches the lease (lease.attach) every 0.5 s until it succeeds. The
 * command is never disturbed by any of this. A restart while we wait in
 * the queue drops the request; cli_acquire asks the new daemon again.
 *
 * Signals: SIGINT, SIGTERM, SIGHUP and SIGCHLD are blocked from the start and
 * read from a signalfd, so that none is lost between fork and poll and none
 * interrupts a call half-way. While queued, the first three leave the queue
 * (the acquire is cancelled; exit 128 + N). While the command runs they are
 * forwarded to it, except those the kernel sent (si_code SI_KERNEL): those
 * come from the terminal (Ctrl-C, hangup), which signals the whole
 * foreground process group, the command included, so forwarding them would
 * deliver them twice. The child starts with the signal mask we were started
 * with; dispositions were never changed. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "basic/time-util.h"
#include "cli/acquire.h"
#include "cli/cli.h"
#include "cli/lease-args.h"
#include "cli/lease-render.h"
#include "cli/run-child.h"

#define RECONNECT_USEC (500 * USEC_PER_MSEC)
#define RELEASE_TRY_USEC (5 * USEC_PER_SEC)

extern char **environ;

typedef struct run_state {
        cli_context *ctx;
        gk_client *client; /* NULL while the daemon is out of reach */
        int sfd;           /* signalfd: SIGINT, SIGTERM, SIGHUP, SIGCHLD */
        json_int_t lease_id;
        bool orphaned; /* the daemon refused to re-attach: nothing left to release */
        pid_t child;
        uint64_t next_try; /* CLOCK_MONOTONIC µs of the next reconnect attempt */
} run_state;

void cli_run_usage(FILE *f)
{
        fputs("Usage: gpukeeper run [--gpus N | --gpu ID[,ID...] | --mig PROFILE[:N]... | --share SIZE]\n"
              "                     [--no-wait] [--no-bind] [--socket PATH] -- COMMAND [ARGS...]\n"
              "\n"
              "Lease GPUs or MIG instances (waiting in the queue if they are busy), run\n"
              "COMMAND with CUDA_VISIBLE_DEVICES set to them, release them when it exits,\n"
              "and exit with its exit status (128+N if signal N ended it).\n"
              "\n"
              "Options:\n"
              "  --gpus N          N whole GPUs (default: 1)\n"
              "  --gpu ID[,ID...]  these devices: GPU or MIG UUIDs, or GPU indices\n"
              "  --mig PROFILE[:N] N (default 1) MIG instances of PROFILE, e.g. 3g.40gb;\n"
              "                    repeatable\n"              "  --share SIZE      a slice of a shareable GPU with a memory budget of SIZE\n"
              "                    (20G, 512M); over it, COMMAND is stopped after a grace\n"
              "  --wait            wait in the queue until the devices are free (the default)\n"
              "  --no-wait         fail with exit status 75 instead of waiting in the queue\n"
              "  --no-bind         do not bind COMMAND to the CPUs nearest its GPUs (by\n"
              "                    default it runs on the CPUs NVML names for them)\n"
              "  --socket PATH     talk to the daemon at PATH\n"
              "  -h, --help        show this help\n"
              "\n"
              "Ctrl-C while waiting leaves the queue; while COMMAND runs it goes to COMMAND.\n"
              "If gpukeeperd restarts, run reconnects: while waiting it asks again (from the\n"
              "back of the queue), while COMMAND runs it keeps the lease.\n",
              f);
}

static void disconnect(run_state *s)
{
        gk_client_free(s->client);
        s->client = NULL;
        s->next_try = now_usec(CLOCK_MONOTONIC) + RECONNECT_USEC;
        fprintf(stderr,
                "gpukeeper: lost the connection to gpukeeperd; reconnecting every 0.5s (the "
                "command keeps running)\n");
}

/* One attempt to reach the daemon again and re-attach the lease. Quiet
 * while the daemon is down; says so once it is back. */
static void reconnect(run_state *s)
{
        _cleanup_(json_decrefp) json_t *result = NULL;
        gk_call_error error = {};
        gk_client *c = NULL;
        int r;

        s->next_try = now_usec(CLOCK_MONOTONIC) + RECONNECT_USEC;
        if (gk_client_connect(gk_socket_path(s->ctx->socket_arg), &c) < 0)
                return;
        r = gk_client_call(c, "lease.attach", json_pack("{s:I}", "id", s->lease_id), &result,
                           &error);
        /* Only an answer about the lease itself is final; a daemon too busy
         * for us or failing inside is asked again at the next try. */
        if (r < 0 || (r > 0 && r != GK_E_NOT_FOUND && r != GK_E_PERMISSION &&
                      r != GK_E_INVALID_ARGUMENT)) {
                gk_client_free(c);
                return;
        }
        if (r > 0) {
                cli_term term;

                /* The daemon is back but the lease is gone (or it cannot
                 * attach): the command still runs, without a lease. */
                cli_term_detect(stderr, &term);
                error.message[sizeof error.message - 1] = '\0';
                fprintf(stderr, "gpukeeper: lease.attach: ");
                cli_text_clip(stderr, error.message[0] ? error.message : gk_error_name(r), SIZE_MAX,
                              term.unicode);
                fprintf(stderr, "; lease %lld is lost, the command keeps running without it\n",
                        (long long)s->lease_id);
                gk_client_free(c);
                s->orphaned = true;
                return;
        }
        s->client = c;
        fprintf(stderr, "gpukeeper: reconnected to gpukeeperd; lease %lld kept\n",
                (long long)s->lease_id);
}

/* The daemon's side of the connection has something for us while the
 * command runs: the connection closed, or an event arrived. Events are read
 * by a ping (the library hands them over while it waits for the reply). */
static void check_connection(run_state *s, short revents)
{
        _cleanup_(json_decrefp) json_t *result = NULL;
        gk_call_error error = {};
        char byte;
        ssize_t n;

        if (!(revents & (POLLHUP | POLLERR | POLLRDHUP))) {
                n = recv(gk_client_fd(s->client), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (n > 0 && gk_client_call(s->client, "ping", NULL, &result, &error) >= 0)
                        return;
        }
        disconnect(s);
}

/* Read every pending signal: forward the terminating ones to the child
 * (unless the terminal already sent them to it), reap it on SIGCHLD.
 * Returns true once the child has exited, with its wait status. */
static bool handle_signals(run_state *s, int *ret_wstatus)
{
        struct signalfd_siginfo si;
        bool exited = false;

        while (read(s->sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo == SIGCHLD) {
                        if (!exited && waitpid(s->child, ret_wstatus, WNOHANG) == s->child)
                                exited = true;
                        continue;
                }
                if (si.ssi_code != SI_KERNEL && !exited)
                        kill(s->child, (int)si.ssi_signo);
        }
        return exited;
}

/* Wait for the child, keeping the lease attached meanwhile. Returns its
 * wait status. */
static int supervise(run_state *s)
{
        int wstatus = 0;

        for (;;) {
                struct pollfd p[2] = {
                    {.fd = s->sfd, .events = POLLIN},
                    {.fd = s->client ? gk_client_fd(s->client) : -1, .events = POLLIN | POLLRDHUP},
                };
                int timeout = -1;

                if (!s->client && !s->orphaned) {
                        uint64_t now = now_usec(CLOCK_MONOTONIC);

                        timeout =
                            s->next_try > now
                                ? (int)((s->next_try - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC)
                                : 0;
                }
                if (poll(p, 2, timeout) < 0) {
                        if (errno == EINTR)
                                continue;
                        /* Nothing sensible left but to wait for the child. */
                        while (waitpid(s->child, &wstatus, 0) < 0 && errno == EINTR)
                                ;
                        return wstatus;
                }
                if (p[0].revents && handle_signals(s, &wstatus))
                        return wstatus;
                if (s->client && p[1].revents)
                        check_connection(s, p[1].revents);
                else if (!s->client && !s->orphaned && now_usec(CLOCK_MONOTONIC) >= s->next_try)
                        reconnect(s);
        }
}

/* Release the lease after the command exited. Tries for RELEASE_TRY_USEC
 * when the daemon is out of reach (it releases an unattached run lease on its
 * own); a further SIGINT/SIGTERM/SIGHUP stops trying. */
static void release(run_state *s)
{
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + RELEASE_TRY_USEC;
        bool said = false;

        if (s->orphaned)
                return;
        for (;;) {
                _cleanup_(json_decrefp) json_t *result = NULL;
                gk_call_error error = {};
                struct pollfd p = {.fd = s->sfd, .events = POLLIN};
                struct signalfd_siginfo si;
                uint64_t now;
                int r;

                if (!s->client &&
                    gk_client_connect(gk_socket_path(s->ctx->socket_arg), &s->client) < 0)
                        s->client = NULL;
                if (s->client) {
                        r = gk_client_call(s->client, "lease.release",
                                           json_pack("{s:I}", "id", s->lease_id), &result, &error);
                        /* Released, or already gone (E_NOT_FOUND): done either way. */
                        if (r >= 0)
                                return;
                        gk_client_free(s->client);
                        s->client = NULL;
                }
                now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        break;
                if (!said) {
                        fprintf(stderr,
                                "gpukeeper: cannot reach gpukeeperd to release lease "
                                "%lld; retrying for 5s\n",
                                (long long)s->lease_id);
                        said = true;
                }
                if (poll(&p, 1, (int)(MIN(deadline - now, RECONNECT_USEC) / USEC_PER_MSEC)) > 0)
                        while (read(s->sfd, &si, sizeof si) == (ssize_t)sizeof si)
                                if (si.ssi_signo != SIGCHLD)
                                        goto give_up;
        }
give_up:
        fprintf(stderr,
                "gpukeeper: lease %lld not released here; gpukeeperd releases it on its own "
                "when it finds this client gone\n",
                (long long)s->lease_id);
}

/* Pin ourselves, and so the command forked next, to the CPUs nearest the
 * lease's GPUs when NVML names them (--no-bind: leave the affinity alone).
 * A binding that cannot be made is said once and the command runs anyway. */
static void bind_cpus(json_t *lease)
{
        cpu_set_t allowed, cpus;
        int r;

        if (sched_getaffinity(0, sizeof allowed, &allowed) < 0)
                return;
        r = cli_lease_cpus(lease, &allowed, &cpus);
        if (r < 0)
                fputs("gpukeeper: run: gpukeeperd's lease has a malformed CPU list; the command "
                      "is not bound to its GPUs' CPUs\n",
                      stderr);
        if (r > 0 && sched_setaffinity(0, sizeof cpus, &cpus) < 0)
                fprintf(stderr,
                        "gpukeeper: run: cannot bind the command to its GPUs' CPUs: %m\n");
}

/* Acquire, start the command, supervise it, release. */
static int run(run_state *s, const cli_acquire_args *a, const sigset_t *old_mask)
{
        _cleanup_(json_decrefp) json_t *lease = NULL, *env = NULL;
        char **child_env = NULL;
        double waited, id;
        sigset_t mask;
        json_t *args;
        int r, exec_errno, wstatus;

        if (!cli_command_found(a->command[0])) {
                fprintf(stderr, "gpukeeper: run: cannot run '%s': command not found; nothing was "
                                "leased\n",
                        a->command[0]);
                return CLI_EXIT_NOT_FOUND;
        }
        args = cli_acquire_request(a, "run", a->command);
        if (!args) {
                fputs("gpukeeper: run: out of memory\n", stderr);
                return CLI_EXIT_SOFTWARE;
        }
        r = cli_connect(s->ctx, &s->client);
        if (r != CLI_EXIT_OK) {
                json_decref(args);
                return r;
        }
        r = cli_acquire(s->ctx, &s->client, args, s->sfd, true, &lease, &waited);
        if (r == CLI_EXIT_SLURM_BACKEND) {
                /* srun gets the default signal mask and handlers back. */
                sigprocmask(SIG_SETMASK, old_mask, NULL);
                return cli_slurm_run(s->ctx, a);
        }
        if (r != CLI_EXIT_OK)
                return r;
        if (!cli_json_num(lease, "id", &id) || (env = cli_lease_env(lease)) == NULL) {
                fprintf(stderr, "gpukeeper: lease.acquire: gpukeeperd's lease has no id or no "
                                "devices (see 'journalctl -u gpukeeperd')\n");
                return CLI_EXIT_SOFTWARE;
        }
        s->lease_id = (json_int_t)id;
        if (waited >= 0) {
                char span[32];

                fprintf(stderr, "gpukeeper: lease %lld granted after %s in the queue\n",
                        (long long)s->lease_id, cli_format_span(span, sizeof span, waited));
        }

        /* From now on the child's exit is news too. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD);
        if (signalfd(s->sfd, &mask, 0) < 0) {
                fprintf(stderr, "gpukeeper: run: cannot watch signals: %m\n");
                release(s);
                return CLI_EXIT_SOFTWARE;
        }

        if (!a->no_bind)
                bind_cpus(lease);
        r = cli_child_env(environ, env, &child_env);
        if (r >= 0)
                r = cli_child_spawn(a->command, child_env, old_mask, &s->child, &exec_errno);
        cli_child_env_free(child_env);
        if (r < 0) {
                fprintf(stderr, "gpukeeper: run: cannot start '%s': %s\n", a->command[0],
                        strerror(-r));
                release(s);
                return CLI_EXIT_SOFTWARE;
        }
        if (exec_errno != 0) {
                fprintf(stderr, "gpukeeper: run: cannot run '%s': %s\n", a->command[0],
                        strerror(exec_errno));
                while (waitpid(s->child, &wstatus, 0) < 0 && errno == EINTR)
                        ;
                release(s);
                return exec_errno == ENOENT || exec_errno == ENOTDIR ? CLI_EXIT_NOT_FOUND
                                                                     : CLI_EXIT_NOT_EXECUTABLE;
        }

        wstatus = supervise(s);
        release(s);
        return cli_exit_status(wstatus);
}

int cli_run_main(cli_context *ctx, int argc, char *argv[])
{
        cli_acquire_args a;
        run_state s = {.ctx = ctx, .sfd = -1, .child = -1};
        sigset_t old_mask, chld;
        int r;

        r = cli_run_parse(ctx, argc, argv, &a);
        if (r != CLI_EXIT_OK)
                return r;
        if (a.help) {
                cli_acquire_args_done(&a);
                cli_run_usage(stdout);
                return cli_finish(CLI_EXIT_OK);
        }

        /* SIGCHLD is blocked before the fork so its arrival is never missed;
         * the signalfd reads it only once there is a child. */
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        s.sfd = cli_signals_block(&chld, &old_mask);
        if (s.sfd < 0) {
                cli_acquire_args_done(&a);
                fprintf(stderr, "gpukeeper: run: cannot watch signals: %s\n", strerror(-s.sfd));
                return CLI_EXIT_SOFTWARE;
        }

        r = run(&s, &a, &old_mask);
        gk_client_free(s.client);
        close(s.sfd);
        cli_acquire_args_done(&a);
        return r;
}
