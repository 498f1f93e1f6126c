/* The gpukeeper client library: one blocking connection to gpukeeperd,
 * synchronous request/reply calls, events handed to a callback while a call
 * waits. Implements include/gpukeeper/client.h over src/proto.
 *
 * The socket is blocking (as the header promises callers that poll its fd),
 * but every send()/recv() here uses MSG_DONTWAIT after poll() said the socket
 * was ready, so that a wait can also watch the optional cancel descriptor.
 * The wait for a reply is a poll() even without one, never a blocking
 * recv(): a task asleep in recv() on an AF_UNIX stream socket is woken
 * whenever its own sent bytes are consumed (the write-space wake-up of
 * unix_write_space, which a recv() waiter does not filter), so the
 * daemon's read of every request paid for waking us for nothing (an IPI
 * on a VM: its recv() took 7.7 us instead of 3; issue 16). poll() waits
 * for POLLIN only and is not woken by it.
 * A transport failure (peer gone, malformed or oversized reply, a reply to
 * some other request, cancellation) leaves the byte stream in an unknown
 * state, so it is sticky: every later call fails the same way without I/O.
 *
 * gk_client_call_write() (client-text.h) reads a large ok reply through a
 * small buffer and writes its result as it comes (stream_reply()): on the
 * VMs this runs on a fresh page costs 10-20 us, so a reply of 1 MB read
 * whole cost more than checking and printing it. */
#include "gpukeeper/client.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "basic/macro.h"
#include "basic/prefault.h"
#include "client/client-text.h"
#include "proto/json-scan.h"
#include "proto/proto.h"

struct gk_client {
        int fd;
        int cancel_fd; /* -1: calls are not cancellable */
        uint32_t next_id;
        int error; /* sticky transport error, 0 while usable */
        gk_event_fn event_fn;
        void *event_userdata;
        ProtoDecoder decoder;
};

const char *gk_socket_path(const char *explicit_path)
{
        const char *e;

        if (explicit_path)
                return explicit_path;
        /* secure_getenv: the PAM module will run inside privileged login
         * processes, where the environment belongs to the user. */
        e = secure_getenv("GPUKEEPER_SOCKET");
        if (e && *e)
                return e;
        return GK_DEFAULT_SOCKET;
}

/* Waits until `fd` is ready for `events`, or the cancel descriptor fires. */
static int wait_fd(const gk_client *c, int fd, short events)
{
        struct pollfd p[2] = {
            {.fd = fd, .events = events},
            {.fd = c ? c->cancel_fd : -1, .events = POLLIN},
        };
        nfds_t n = p[1].fd >= 0 ? 2 : 1;

        for (;;) {
                if (poll(p, n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 2 && p[1].revents != 0)
                        return -ECANCELED;
                /* POLLHUP / POLLERR included: the next send()/recv() says what happened. */
                if (p[0].revents != 0)
                        return 0;
        }
}

/* A connect() interrupted by a signal goes on in the background (POSIX);
 * wait for it to finish and fetch its result. */
static int connect_finish(int fd)
{
        socklen_t len = sizeof(int);
        int r, error = 0;

        r = wait_fd(NULL, fd, POLLOUT);
        if (r < 0)
                return r;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                return negative_errno();
        return error > 0 ? -error : 0;
}

int gk_client_connect(const char *socket_path, gk_client **ret)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -1;
        gk_client *c;
        size_t len;
        int r;

        assert(socket_path);
        assert(ret);

        len = strlen(socket_path);
        if (len == 0)
                return -EINVAL;
        /* Keep room for the terminating NUL: a path that fills sun_path
         * exactly is a Linux-only form other tools cannot name. */
        if (len >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, socket_path, len);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (const struct sockaddr *)&sa,
                    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1)) < 0) {
                if (errno != EINTR)
                        return negative_errno();
                r = connect_finish(fd);
                if (r < 0)
                        return r;
        }

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->fd = TAKE_FD(fd);
        c->cancel_fd = -1;
        c->next_id = 1;
        proto_decoder_init(&c->decoder, GK_PROTO_MAX_REPLY);
        *ret = c;
        return 0;
}

void gk_client_free(gk_client *c)
{
        if (!c)
                return;
        closep(&c->fd);
        proto_decoder_done(&c->decoder);
        free(c);
}

int gk_client_fd(const gk_client *c)
{
        assert(c);
        return c->fd;
}

void gk_client_set_event_handler(gk_client *c, gk_event_fn fn, void *userdata)
{
        assert(c);
        c->event_fn = fn;
        c->event_userdata = userdata;
}

void gk_client_set_cancel_fd(gk_client *c, int fd)
{
        assert(c);
        c->cancel_fd = fd >= 0 ? fd : -1;
}

static int client_fail(gk_client *c, int r)
{
        assert(r < 0);
        c->error = r;
        return r;
}

static int send_all(gk_client *c, const char *buf, size_t len)
{
        size_t off = 0;
        int r;

        while (off < len) {
                ssize_t n = send(c->fd, buf + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n >= 0) {
                        off += (size_t)n;
                        continue;
                }
                if (errno == EINTR)
                        continue;
                if (errno == EPIPE || errno == ECONNRESET)
                        return -ECONNRESET;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                        return negative_errno();
                r = wait_fd(c, c->fd, POLLOUT);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Reads what is there, at least one byte, into buf[0..len): the count, or
 * -ECONNRESET when the peer is gone, or another -errno. With `wait_first`
 * (right after a request was sent, when no reply can be there yet) it
 * polls before the first recv() instead of after an EAGAIN (see the top of
 * this file for why a poll() and not a blocking recv()). */
static ssize_t receive_into(gk_client *c, void *buf, size_t len, bool wait_first)
{
        int r;

        if (wait_first) {
                r = wait_fd(c, c->fd, POLLIN);
                if (r < 0)
                        return r;
        }
        for (;;) {
                ssize_t n = recv(c->fd, buf, len, MSG_DONTWAIT);
                if (n > 0)
                        return n;
                if (n == 0)
                        return -ECONNRESET;
                if (errno == EINTR)
                        continue;
                if (errno == ECONNRESET || errno == EPIPE)
                        return -ECONNRESET;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                        return negative_errno();
                r = wait_fd(c, c->fd, POLLIN);
                if (r < 0)
                        return r;
        }
}

/* Reads what is there (at least one byte) into the decoder. */
static int receive(gk_client *c, bool wait_first)
{
        void *buf;
        size_t space;
        ssize_t n;
        int r;

        r = proto_decoder_read_space(&c->decoder, &buf, &space);
        if (r == -EMSGSIZE || r == -EBADMSG)
                return -EBADMSG;
        if (r < 0)
                return r;
        n = receive_into(c, buf, space, wait_first);
        if (n < 0)
                return (int)n;
        proto_decoder_advance(&c->decoder, (size_t)n);
        return 0;
}

/* The stream's receive buffer: what one read takes at most, and what stays
 * in memory of a reply of any size (it grows only for a token longer). */
#define STREAM_BUF_SIZE (32u * 1024u)

static uint32_t be32(const char *p)
{
        const unsigned char *u = (const unsigned char *)p;

        return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

/* Whether the reply waiting on the socket is an ok reply to `id` as the
 * daemon writes one, result an object: its frame's first bytes, peeked
 * (left in the socket). Sets *ret_len to the frame's announced length and
 * *ret_skip to the bytes before the result's value. 0 for anything else,
 * and for a reply whose first bytes are not all there yet: the usual path
 * reads it. */
static int stream_peek(gk_client *c, uint32_t id, uint32_t *ret_len, size_t *ret_skip)
{
        char prefix[PROTO_OK_PREFIX_MAX], peek[PROTO_HEADER_SIZE + PROTO_OK_PREFIX_MAX];
        size_t plen = proto_ok_reply_prefix(id, prefix);
        size_t want = PROTO_HEADER_SIZE + plen + 1;
        uint32_t n;
        ssize_t k;
        int r;

        r = wait_fd(c, c->fd, POLLIN);
        if (r < 0)
                return r;
        do
                k = recv(c->fd, peek, want, MSG_PEEK | MSG_DONTWAIT);
        while (k < 0 && errno == EINTR);
        if (k < (ssize_t)want)
                return 0;
        n = be32(peek);
        if (n > GK_PROTO_MAX_REPLY || n < plen + 2 ||
            memcmp(peek + PROTO_HEADER_SIZE, prefix, plen) != 0 ||
            peek[PROTO_HEADER_SIZE + plen] != '{')
                return 0;
        *ret_len = n;
        *ret_skip = PROTO_HEADER_SIZE + plen;
        return 1;
}

/* The ok reply stream_peek() found, read through a buffer of
 * STREAM_BUF_SIZE and its result handed to `sink` as it comes (issue 16: a
 * fresh page costs 7-15 us on the VMs this runs on; a 1 MB reply read
 * whole touched 256 of them, and its text was scanned once to check it and
 * once to use it). 1 when the whole reply was read and checked and the
 * sink finished; -EBADMSG when it was not valid after all (the sink may
 * have written part of it); the sink's error; a transport error. */
static int stream_reply(gk_client *c, const gk_result_sink *sink, uint32_t frame_len, size_t skip)
{
        _cleanup_free_ char *buf = malloc(STREAM_BUF_SIZE);
        size_t size = STREAM_BUF_SIZE, have = 0, pos = skip, taken;
        size_t left = PROTO_HEADER_SIZE + (size_t)frame_len;
        bool done = false;
        int r;

        if (!buf)
                return -ENOMEM;
        /* Fresh pages, populated in one call each time rather than a fault
         * per 4 KiB (basic/prefault.h). */
        prefault_range(buf, size);
        while (left > 0) {
                ssize_t n;

                if (have == size) {
                        /* One token (or item) fills the buffer: room for
                         * it (never more than the frame), populated before
                         * the bytes are copied in. */
                        size_t grown = MIN(size * 2, have + left);
                        char *b = malloc(grown);

                        if (!b)
                                return -ENOMEM;
                        prefault_range(b, grown);
                        memcpy(b, buf, have);
                        free(buf);
                        buf = b;
                        size = grown;
                }
                n = receive_into(c, buf + have, MIN(size - have, left), false);
                if (n < 0)
                        return (int)n;
                have += (size_t)n;
                left -= (size_t)n;
                if (pos >= have)
                        continue; /* still in the header and prefix */
                if (!done) {
                        taken = 0;
                        r = sink->feed(sink->userdata, buf + pos, have - pos, left == 0, &taken);
                        if (r < 0)
                                return r;
                        assert(taken <= have - pos);
                        pos += taken;
                        done = r > 0;
                }
                if (left > 0 && pos > 0) {
                        memmove(buf, buf + pos, have - pos);
                        have -= pos;
                        pos = 0;
                }
        }
        assert(done);
        if (!proto_ok_reply_tail_ok(buf + pos, have - pos))
                return -EBADMSG;
        r = sink->finish ? sink->finish(sink->userdata) : 0;
        return r < 0 ? r : 1;
}

/* The sink of gk_client_call_write(): the result checked and re-spaced as
 * json_scan_write_indented() writes it. */
static int json_sink_feed(void *userdata, const char *s, size_t len, bool last, size_t *ret_taken)
{
        return json_scan_stream_feed(userdata, s, len, last, ret_taken);
}

static int json_sink_finish(void *userdata)
{
        json_scan_stream_flush(userdata);
        return 0;
}

/* Sends one request frame; nothing is sent when it cannot be built. */
static int send_request(gk_client *c, uint32_t id, const char *op, json_t *args)
{
        _cleanup_(json_decrefp) json_t *req = NULL;
        _cleanup_free_ char *json = NULL, *frame = NULL;
        size_t json_len, frame_len;
        int r;

        req = proto_request_new(id, op, args);
        if (!req)
                return -ENOMEM;
        r = proto_dump(req, GK_PROTO_MAX_REQUEST, &json, &json_len);
        if (r < 0)
                return r;
        r = proto_encode_frame(json, json_len, GK_PROTO_MAX_REQUEST, &frame, &frame_len);
        if (r < 0)
                return r;
        r = send_all(c, frame, frame_len);
        return r < 0 ? client_fail(c, r) : 0;
}

/* How client_call() may hand over an ok reply's result other than as a
 * tree (src/client/client-text.h); all NULL for gk_client_call(). */
typedef struct CallAs {
        const gk_result_sink *sink;  /* gk_client_call_sink(): streamed to it */
        bool *ret_written;
        const char **ret_text;       /* gk_client_call_text(): as text */
        size_t *ret_text_len;
        JsonIndex **ret_index;       /* gk_client_call_index(): indexed */
        JsonIndexRef *ret_index_result;
} CallAs;

/* An ok reply read without a tree (as text or as an index): 0 when it
 * answers request `id`, else what the parsed path of client_call() returns
 * for it: a reply to another request breaks the stream, and after a send
 * that failed the connection counts as reset. */
static int unparsed_ok_reply(gk_client *c, uint32_t reply_id, uint32_t id, bool send_failed)
{
        if (reply_id != id)
                return client_fail(c, -EBADMSG);
        if (send_failed) {
                c->error = -ECONNRESET;
                return -ECONNRESET;
        }
        return 0;
}

static int client_call(gk_client *c, const char *op, json_t *args, const CallAs *as,
                       json_t **ret_result, gk_call_error *ret_error)
{
        _cleanup_(json_decrefp) json_t *a = args;
        bool send_failed;
        uint32_t id;
        int r;

        assert(c);
        assert(op);

        if (c->error < 0)
                return c->error;
        if (!proto_name_is_valid(op, strlen(op)) || (a && !json_is_object(a)))
                return -EINVAL;

        id = c->next_id;
        c->next_id = c->next_id == UINT32_MAX ? 1 : c->next_id + 1;
        r = send_request(c, id, op, TAKE_PTR(a));
        send_failed = r == -ECONNRESET;
        if (r == -ECONNRESET)
                /* The daemon may have refused the connection (E_BUSY) and
                 * closed it before our request went out: its reply is still
                 * in our receive queue, and says more than "reset". The
                 * connection stays failed whatever we read. */
                c->error = 0;
        else if (r < 0)
                return r;

        if (as->sink && !send_failed && proto_decoder_pending(&c->decoder) == 0) {
                uint32_t frame_len;
                size_t skip;

                r = stream_peek(c, id, &frame_len, &skip);
                if (r > 0)
                        r = stream_reply(c, as->sink, frame_len, skip);
                if (r < 0)
                        return client_fail(c, r);
                *as->ret_written = r > 0;
                if (r > 0) {
                        *as->ret_text = NULL;
                        if (ret_result)
                                *ret_result = NULL;
                        return 0;
                }
        }

        for (bool sent = true;; sent = false) {
                ProtoMessage m;
                const char *frame;
                size_t len;

                r = proto_decoder_next(&c->decoder, &frame, &len);
                if (r < 0)
                        return client_fail(c, -EBADMSG);
                if (r == 0) {
                        r = receive(c, sent);
                        if (r < 0)
                                return client_fail(c, r);
                        continue;
                }

                if (as->ret_index) {
                        JsonIndex *ix = NULL;
                        JsonIndexRef result;
                        uint32_t reply_id;

                        /* Checked and indexed in one pass; an ok reply is
                         * handed over as its index, anything else goes the
                         * parsed way below. */
                        r = json_index_build(frame, len, PROTO_MAX_DEPTH, &ix);
                        if (r == -ENOMEM)
                                return -ENOMEM;
                        if (r == 0 && proto_index_ok_reply(ix, &reply_id, &result) > 0) {
                                r = unparsed_ok_reply(c, reply_id, id, send_failed);
                                if (r < 0) {
                                        json_index_free(ix);
                                        return r;
                                }
                                *as->ret_index = ix;
                                *as->ret_index_result = result;
                                if (ret_result)
                                        *ret_result = NULL;
                                return 0;
                        }
                        json_index_free(ix);
                }
                if (as->ret_text) {
                        const char *text;
                        size_t text_len;
                        uint32_t reply_id;

                        /* The checks below, for an ok reply read without a tree. */
                        if (proto_scan_ok_reply(frame, len, &reply_id, &text, &text_len) > 0) {
                                r = unparsed_ok_reply(c, reply_id, id, send_failed);
                                if (r < 0)
                                        return r;
                                *as->ret_text = text;
                                *as->ret_text_len = text_len;
                                if (ret_result)
                                        *ret_result = NULL;
                                return 0;
                        }
                }

                r = proto_parse_message(frame, len, &m);
                if (r < 0)
                        return client_fail(c, r);

                if (m.is_event) {
                        if (c->event_fn)
                                c->event_fn(m.event, m.data, c->event_userdata);
                        proto_message_done(&m);
                        continue;
                }

                /* An error reply without an id answers the request in flight:
                 * the daemon could not read its id (e.g. E_TOO_LARGE). */
                if (m.id >= 0 && m.id != id) {
                        proto_message_done(&m);
                        return client_fail(c, -EBADMSG);
                }
                if (send_failed) {
                        c->error = -ECONNRESET;
                        if (m.ok) {
                                proto_message_done(&m);
                                return -ECONNRESET;
                        }
                }
                if (m.ok) {
                        if (as->ret_text)
                                *as->ret_text = NULL;
                        if (as->ret_index)
                                *as->ret_index = NULL;
                        if (ret_result)
                                *ret_result = TAKE_PTR(m.result);
                        proto_message_done(&m);
                        return 0;
                }
                if (ret_error) {
                        ret_error->code = m.code;
                        _Static_assert(sizeof ret_error->message == sizeof m.message,
                                       "message buffers must match");
                        memcpy(ret_error->message, m.message, sizeof m.message);
                }
                proto_message_done(&m);
                return m.code;
        }
}

int gk_client_call(gk_client *c, const char *op, json_t *args, json_t **ret_result,
                   gk_call_error *ret_error)
{
        return client_call(c, op, args, &(CallAs){}, ret_result, ret_error);
}

int gk_client_call_text(gk_client *c, const char *op, json_t *args, const char **ret_text,
                        size_t *ret_len, json_t **ret_result, gk_call_error *ret_error)
{
        assert(ret_text);
        assert(ret_len);
        return client_call(c, op, args, &(CallAs){.ret_text = ret_text, .ret_text_len = ret_len},
                           ret_result, ret_error);
}

int gk_client_call_index(gk_client *c, const char *op, json_t *args, JsonIndex **ret_index,
                         JsonIndexRef *ret_index_result, json_t **ret_result,
                         gk_call_error *ret_error)
{
        assert(ret_index);
        assert(ret_index_result);
        *ret_index = NULL;
        return client_call(c, op, args,
                           &(CallAs){.ret_index = ret_index, .ret_index_result = ret_index_result},
                           ret_result, ret_error);
}

int gk_client_call_sink(gk_client *c, const char *op, json_t *args, const gk_result_sink *sink,
                        bool *ret_written, const char **ret_text, size_t *ret_len,
                        json_t **ret_result, gk_call_error *ret_error)
{
        assert(sink && sink->feed);
        assert(ret_written);
        assert(ret_text);
        assert(ret_len);
        *ret_written = false;
        return client_call(c, op, args,
                           &(CallAs){.sink = sink,
                                     .ret_written = ret_written,
                                     .ret_text = ret_text,
                                     .ret_text_len = ret_len},
                           ret_result, ret_error);
}

int gk_client_call_write(gk_client *c, const char *op, json_t *args, FILE *f, bool *ret_written,
                         const char **ret_text, size_t *ret_len, json_t **ret_result,
                         gk_call_error *ret_error)
{
        _cleanup_free_ JsonScanStream *st = malloc(sizeof *st);
        gk_result_sink sink = {.feed = json_sink_feed, .finish = json_sink_finish, .userdata = st};

        assert(f);
        if (!st) {
                json_decref(args);
                return -ENOMEM;
        }
        json_scan_stream_init(st, f, 1, PROTO_MAX_DEPTH);
        return gk_client_call_sink(c, op, args, &sink, ret_written, ret_text, ret_len, ret_result,
                                   ret_error);
}
