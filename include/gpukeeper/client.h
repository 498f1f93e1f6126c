/* Public client API for talking to gpukeeperd over its Unix socket.
 *
 * Used by the gpukeeper CLI, and later by the PAM module and Jupyter kernels.
 * One gk_client is one connection; calls on it are synchronous and strictly
 * request/reply, except that the daemon may interleave event messages (for
 * example queue positions) which gk_client_call hands to an optional
 * callback. The wire format is described in docs/protocol.md. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GK_DEFAULT_SOCKET "/run/gpukeeper/gpukeeper.sock"

/* Error codes carried in error replies. Append-only: never renumber. */
typedef enum gk_error {
        GK_OK = 0,
        GK_E_MALFORMED = 1,         /* not a JSON object, or required fields missing */
        GK_E_TOO_LARGE = 2,         /* frame above the size limit */
        GK_E_UNKNOWN_OP = 3,        /* no such operation */
        GK_E_VERSION = 4,           /* protocol version not supported */
        GK_E_PERMISSION = 5,        /* caller may not do this */
        GK_E_INVALID_ARGUMENT = 6,  /* an argument is missing, of the wrong type or out of range */
        GK_E_NOT_FOUND = 7,         /* the named object does not exist */
        GK_E_INTERNAL = 8,          /* the daemon failed; see its log */
        GK_E_BUSY = 9,              /* too many connections or requests */
        GK_E_UNAVAILABLE = 10,      /* a resource the request needs is not available now */
        GK_E_NO_CAPACITY = 11,      /* not enough free devices and the caller asked not to wait */
        GK_E_SLURM_BACKEND = 12,    /* this node leases through Slurm (backend: slurm): use srun/salloc */
        _GK_E_MAX,
} gk_error;

/* Stable upper-case name ("E_MALFORMED"), or "E_UNKNOWN" for codes this build does not know. */
const char *gk_error_name(int code);

typedef struct gk_client gk_client;

/* Resolve the socket path: `explicit_path` if not NULL, else $GPUKEEPER_SOCKET
 * if set and non-empty, else GK_DEFAULT_SOCKET. Never NULL. */
const char *gk_socket_path(const char *explicit_path);

/* Connect to the daemon. Returns 0, or -errno from socket()/connect()
 * (-ENOENT / -ECONNREFUSED when no daemon listens there). */
int gk_client_connect(const char *socket_path, gk_client **ret);

void gk_client_free(gk_client *c);

/* File descriptor of the connection, for poll() by callers that wait on
 * several things at once (gpukeeper run). */
int gk_client_fd(const gk_client *c);

/* Called for each event message that arrives while a call waits for its
 * reply. `event` is the event name, `data` its payload (borrowed). */
typedef void (*gk_event_fn)(const char *event, json_t *data, void *userdata);
void gk_client_set_event_handler(gk_client *c, gk_event_fn fn, void *userdata);

/* Make waiting calls interruptible. Every system call is retried on EINTR,
 * so a signal alone never fails a call; a caller that must stop waiting
 * (gpukeeper run on SIGINT) passes a file descriptor here, e.g. a signalfd or
 * the read end of a self-pipe its signal handler writes to. A call that is
 * waiting when `fd` becomes readable (or hangs up) returns -ECANCELED without
 * reading from it. Since the abandoned reply may still arrive, the connection
 * is unusable afterwards: every later call returns -ECANCELED. -1 (the
 * default) turns this off. The descriptor stays the caller's. */
void gk_client_set_cancel_fd(gk_client *c, int fd);

/* Describes a failed call; message is a human sentence from the daemon. */
typedef struct gk_call_error {
        int code;          /* gk_error */
        char message[512];
} gk_call_error;

/* Send request `op` with `args` (reference stolen; NULL for none) and wait
 * for its reply.
 *   0  success: *ret_result holds the result object (caller json_decref()s).
 *   >0 the daemon answered with an error: the gk_error code, details in *ret_error.
 *   <0 -errno: -EINVAL (bad op name or args not an object) and -EMSGSIZE
 *      (request above 64 KiB) send nothing and leave the connection usable;
 *      transport failures (-ECONNRESET when the daemon closed the connection,
 *      -EBADMSG for a reply above the size limit or not valid JSON,
 *      -ECANCELED after the cancel fd fired) are sticky: every later call on
 *      this client fails the same way. */
int gk_client_call(gk_client *c, const char *op, json_t *args, json_t **ret_result,
                   gk_call_error *ret_error);

#ifdef __cplusplus
}
#endif
