/* pam_gpukeeper.so: a login knows its GPU lease.
 *
 *   session   sets CUDA_VISIBLE_DEVICES (UUIDs), CUDA_DEVICE_ORDER and
 *             GPUKEEPER_LEASE_ID from the user's active interactive (manual)
 *             lease, as `gpukeeper lease env` does; without one it sets
 *             CUDA_VISIBLE_DEVICES to the empty value, so CUDA sees no GPU,
 *             and prints a one-line hint.
 *   account   with `require_lease`: refuse the login of a user who holds
 *             no interactive lease (hosts that are for GPU work only);
 *             otherwise PAM_IGNORE.
 *
 * Options: quiet (no hint, no notice), require_lease (account), limits
 * (session: the login goes under the user's limits, limits.apply),
 * socket=PATH (default $GPUKEEPER_SOCKET's default, /run/gpukeeper/...),
 * timeout=MS (whole exchange, 100..10000, default 2000).
 *
 * It asks gpukeeperd over its socket as root (`lease.env` with `uid`, an
 * admin request) and fails open: when the daemon is stopped, hung or
 * broken, the login goes ahead (CUDA_VISIBLE_DEVICES untouched) and the
 * user is told so, since a GPU scheduler must never lock people out of a
 * machine. The root account is left alone. */
#include <errno.h>
#include <jansson.h>
#include <pwd.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <syslog.h>
#include <unistd.h>

#include "gpukeeper/client.h"

#define PAM_GK_TIMEOUT_DEFAULT_MS 2000
#define PAM_GK_TIMEOUT_MIN_MS 100
#define PAM_GK_TIMEOUT_MAX_MS 10000

typedef struct Options {
        bool quiet;
        bool require_lease;
        bool limits; /* session: put the login under the user's limits (cgroupfs) */
        const char *socket;
        long timeout_ms;
} Options;

typedef enum Answer {
        ANSWER_LEASE,    /* env filled */
        ANSWER_NO_LEASE, /* the daemon says: none */
        ANSWER_DOWN,     /* unreachable, timed out, or an error: fail open */
} Answer;

static void parse_options(pam_handle_t *pamh, int argc, const char **argv, Options *o)
{
        *o = (Options){.timeout_ms = PAM_GK_TIMEOUT_DEFAULT_MS};
        for (int i = 0; i < argc; i++) {
                if (strcmp(argv[i], "quiet") == 0)
                        o->quiet = true;
                else if (strcmp(argv[i], "require_lease") == 0)
                        o->require_lease = true;
                else if (strcmp(argv[i], "limits") == 0)
                        o->limits = true;
                else if (strncmp(argv[i], "socket=", 7) == 0 && argv[i][7] == '/')
                        o->socket = argv[i] + 7;
                else if (strncmp(argv[i], "timeout=", 8) == 0) {
                        char *end;
                        long v = strtol(argv[i] + 8, &end, 10);

                        if (*end || v < PAM_GK_TIMEOUT_MIN_MS || v > PAM_GK_TIMEOUT_MAX_MS)
                                pam_syslog(pamh, LOG_WARNING, "ignoring %s (100..10000 ms)",
                                           argv[i]);
                        else
                                o->timeout_ms = v;
                } else
                        pam_syslog(pamh, LOG_WARNING, "unknown option %s", argv[i]);
        }
}

/* The login's uid; false for root and unknown users (nothing to do). */
static bool login_uid(pam_handle_t *pamh, uid_t *ret)
{
        const char *user = NULL;

        if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || !user)
                return false;
        /* The buffer grows: one long /etc/passwd line makes 4 KiB fail. */
        for (size_t size = 4096; size <= 1024 * 1024; size *= 4) {
                struct passwd pw, *result = NULL;
                char *buf = malloc(size);
                int r;

                if (!buf)
                        return false;
                r = getpwnam_r(user, &pw, buf, size, &result);
                free(buf);
                if (r == ERANGE)
                        continue;
                if (r != 0 || !result)
                        return false;
                *ret = pw.pw_uid;
                return pw.pw_uid != 0;
        }
        return false;
}

/* Ask the daemon for `uid`'s interactive lease within the timeout. */
static Answer ask(const Options *o, uid_t uid, json_t **ret_env, char *why, size_t why_len)
{
        struct itimerspec when = {.it_value = {.tv_sec = o->timeout_ms / 1000,
                                               .tv_nsec = (o->timeout_ms % 1000) * 1000000L}};
        gk_call_error error = {0};
        json_t *result = NULL;
        gk_client *c = NULL;
        int timer, r;

        timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
        if (timer < 0 || timerfd_settime(timer, 0, &when, NULL) < 0) {
                snprintf(why, why_len, "no timer: %s", strerror(errno));
                if (timer >= 0)
                        close(timer);
                return ANSWER_DOWN;
        }
        r = gk_client_connect(gk_socket_path(o->socket), &c);
        if (r < 0) {
                snprintf(why, why_len, "cannot reach gpukeeperd at %s: %s",
                         gk_socket_path(o->socket), strerror(-r));
                close(timer);
                return ANSWER_DOWN;
        }
        gk_client_set_cancel_fd(c, timer);
        r = gk_client_call(c, "lease.env", json_pack("{s:I}", "uid", (json_int_t)uid), &result,
                           &error);
        gk_client_free(c);
        close(timer);
        if (r == GK_E_NOT_FOUND)
                return ANSWER_NO_LEASE;
        if (r != 0) {
                snprintf(why, why_len, "gpukeeperd did not answer: %s",
                         r == -ECANCELED ? "timed out"
                         : r < 0         ? strerror(-r)
                                         : error.message);
                json_decref(result);
                return ANSWER_DOWN;
        }
        *ret_env = json_incref(json_object_get(result, "env"));
        json_decref(result);
        if (!json_is_object(*ret_env)) {
                json_decref(*ret_env);
                snprintf(why, why_len, "gpukeeperd's answer has no env");
                return ANSWER_DOWN;
        }
        return ANSWER_LEASE;
}

/* With the `limits` option: ask the daemon (limits.apply, as root) to apply
 * the user's limits and move this process, the session's leader, into the
 * user's limits cgroups (the cgroupfs backend; with systemd, logind already
 * puts the session into user-UID.slice). Fails open like the rest: the
 * daemon logs and alerts what it could not do. */
static void apply_limits(const Options *o, uid_t uid, pam_handle_t *pamh)
{
        struct itimerspec when = {.it_value = {.tv_sec = o->timeout_ms / 1000,
                                               .tv_nsec = (o->timeout_ms % 1000) * 1000000L}};
        gk_call_error error = {0};
        json_t *result = NULL;
        gk_client *c = NULL;
        int timer, r;

        timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
        if (timer < 0 || timerfd_settime(timer, 0, &when, NULL) < 0) {
                if (timer >= 0)
                        close(timer);
                return;
        }
        r = gk_client_connect(gk_socket_path(o->socket), &c);
        if (r >= 0) {
                gk_client_set_cancel_fd(c, timer);
                r = gk_client_call(c, "limits.apply",
                                   json_pack("{s:I, s:I}", "user", (json_int_t)uid, "pid",
                                             (json_int_t)getpid()),
                                   &result, &error);
                gk_client_free(c);
        }
        close(timer);
        json_decref(result);
        if (r != 0)
                pam_syslog(pamh, LOG_WARNING, "cannot put the login under its limits: %s",
                           r < 0 ? strerror(-r) : error.message);
}

/* Only the three variables, only values without control characters. */
static int put_env(pam_handle_t *pamh, json_t *env)
{
        static const char *const names[] = {"CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER",
                                            "GPUKEEPER_LEASE_ID"};

        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
                const char *v = json_string_value(json_object_get(env, names[i]));
                char buf[4096];

                if (!v || strlen(v) > 3000)
                        continue;
                for (const char *p = v; *p; p++)
                        if ((unsigned char)*p < 0x20 || *p == 0x7f)
                                return PAM_SYSTEM_ERR;
                snprintf(buf, sizeof buf, "%s=%s", names[i], v);
                if (pam_putenv(pamh, buf) != PAM_SUCCESS)
                        return PAM_BUF_ERR;
        }
        return PAM_SUCCESS;
}

PAM_EXTERN int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
        json_t *env = NULL;
        char why[600];
        Options o;
        uid_t uid;

        parse_options(pamh, argc, argv, &o);
        if (!login_uid(pamh, &uid))
                return PAM_SUCCESS;
        if (o.limits)
                apply_limits(&o, uid, pamh);
        switch (ask(&o, uid, &env, why, sizeof why)) {
        case ANSWER_LEASE:
                if (put_env(pamh, env) != PAM_SUCCESS)
                        pam_syslog(pamh, LOG_ERR, "cannot set the lease's environment");
                json_decref(env);
                break;
        case ANSWER_NO_LEASE:
                (void)pam_putenv(pamh, "CUDA_VISIBLE_DEVICES=");
                if (!o.quiet && !(flags & PAM_SILENT))
                        pam_info(pamh, "gpukeeper: no GPU leased: gpukeeper run --gpus 1 -- "
                                       "COMMAND, or gpukeeper lease acquire --gpus 1");
                break;
        case ANSWER_DOWN:
                /* Fail open: never keep people out over a GPU scheduler. */
                pam_syslog(pamh, LOG_WARNING, "%s; login continues without a GPU lease check",
                           why);
                if (!o.quiet && !(flags & PAM_SILENT))
                        pam_info(pamh, "gpukeeper: %s; GPUs are not assigned to this login", why);
                break;
        }
        return PAM_SUCCESS;
}

PAM_EXTERN int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
        return PAM_SUCCESS;
}

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
        json_t *env = NULL;
        char why[600];
        Options o;
        uid_t uid;

        parse_options(pamh, argc, argv, &o);
        if (!o.require_lease || !login_uid(pamh, &uid))
                return PAM_IGNORE;
        switch (ask(&o, uid, &env, why, sizeof why)) {
        case ANSWER_LEASE:
                json_decref(env);
                return PAM_SUCCESS;
        case ANSWER_NO_LEASE:
                pam_syslog(pamh, LOG_NOTICE, "login refused: uid %u holds no GPU lease",
                           (unsigned)uid);
                pam_error(pamh, "gpukeeper: this host admits only users with a GPU lease, and "
                                "you hold none (ask for one with 'gpukeeper lease acquire' "
                                "from another host, or ask an admin)");
                return PAM_PERM_DENIED;
        case ANSWER_DOWN:
        default:
                pam_syslog(pamh, LOG_WARNING, "%s; login allowed without a lease check", why);
                if (!o.quiet && !(flags & PAM_SILENT))
                        pam_info(pamh, "gpukeeper: %s; letting you in without a lease check", why);
                return PAM_SUCCESS;
        }
}
