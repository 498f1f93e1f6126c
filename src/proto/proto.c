/* The gpukeeper wire protocol: framing, request/reply/event encoding and
 * validation, error names. See proto.h for the contracts and
 * docs/protocol.md for the protocol itself.
 *
 * Everything read here comes from an untrusted peer (any local user can
 * connect to the root daemon), so every length is checked before it sizes a
 * buffer, JSON nesting is bounded before jansson recurses, and every text
 * that goes back out is made safe (valid UTF-8, no control characters). */
#include "proto/proto.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "basic/prefault.h"
#include "basic/utf8.h"
#include "proto/json-dump.h"
#include "proto/json-index.h"
#include "proto/json-scan.h"

/* The decoder starts (and falls back to, once idle) with a buffer this large,
 * so a stream of small requests never reallocates. */
#define DECODER_INITIAL_SIZE 4096u
/* An idle write queue that grew above this is released. */
#define OUTBUF_KEEP_SIZE (64u * 1024u)

/* jansson.h provides json_decrefp() for use as a cleanup function. */
#define _cleanup_json_ _cleanup_(json_decrefp)

static const char *const error_names[] = {
    [GK_OK] = "OK",
    [GK_E_MALFORMED] = "E_MALFORMED",
    [GK_E_TOO_LARGE] = "E_TOO_LARGE",
    [GK_E_UNKNOWN_OP] = "E_UNKNOWN_OP",
    [GK_E_VERSION] = "E_VERSION",
    [GK_E_PERMISSION] = "E_PERMISSION",
    [GK_E_INVALID_ARGUMENT] = "E_INVALID_ARGUMENT",
    [GK_E_NOT_FOUND] = "E_NOT_FOUND",
    [GK_E_INTERNAL] = "E_INTERNAL",
    [GK_E_BUSY] = "E_BUSY",
    [GK_E_UNAVAILABLE] = "E_UNAVAILABLE",
    [GK_E_NO_CAPACITY] = "E_NO_CAPACITY",
    [GK_E_SLURM_BACKEND] = "E_SLURM_BACKEND",
};
_Static_assert(ELEMENTSOF(error_names) == _GK_E_MAX, "every gk_error needs a name");

const char *gk_error_name(int code)
{
        if (code < 0 || (size_t)code >= ELEMENTSOF(error_names) || !error_names[code])
                return "E_UNKNOWN";
        return error_names[code];
}

bool proto_name_is_valid(const char *name, size_t len)
{
        if (!name || len == 0 || len > PROTO_NAME_MAX)
                return false;
        for (size_t i = 0; i < len; i++) {
                char c = name[i];
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                      c == '-'))
                        return false;
        }
        return true;
}

/* Makes a NUL-terminated text safe to send and to print on a terminal:
 * control characters and bytes that are not part of well-formed UTF-8 become
 * '?'. Works in place; the length does not change. */
static void text_sanitize(char *s)
{
        unsigned char *p = (unsigned char *)s;
        size_t len = strlen(s);

        for (size_t i = 0; i < len;) {
                size_t n = utf8_sequence_length(p + i, len - i);
                if (n == 0 || (n == 1 && (p[i] < 0x20 || p[i] == 0x7F))) {
                        p[i++] = '?';
                        continue;
                }
                i += n;
        }
}

static void message_set(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);
static void message_set(char *buf, size_t size, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, size, fmt, ap);
        va_end(ap);
        text_sanitize(buf);
}

/* Rejects nesting deeper than `max` before jansson parses (and recurses) at
 * all. Strings are skipped as the JSON lexer skips them, so brackets inside
 * them do not count; for input that is not JSON the count may be off, but
 * jansson rejects such input before it gets deeper than we looked. */
static bool json_depth_ok(const char *s, size_t len, unsigned max)
{
        unsigned depth = 0;

        for (size_t i = 0; i < len; i++) {
                switch (s[i]) {
                case '"':
                        /* To the closing quote: the next '"' not escaped by
                         * an odd run of backslashes. memchr rather than a
                         * byte loop: a status reply at 4,096 processes is
                         * 1 MB of mostly strings (issue 16). */
                        for (;;) {
                                const char *q = memchr(s + i + 1, '"', len - i - 1);
                                size_t k;

                                if (!q)
                                        return true; /* unterminated: jansson says so */
                                i = (size_t)(q - s);
                                for (k = i; s[k - 1] == '\\'; k--)
                                        ;
                                if ((i - k) % 2 == 0)
                                        break;
                        }
                        break;
                case '[':
                case '{':
                        if (++depth > max)
                                return false;
                        break;
                case ']':
                case '}':
                        if (depth > 0)
                                depth--;
                        break;
                default:
                        break;
                }
        }
        return true;
}

/* json_loadb(frame, len, JSON_REJECT_DUPLICATES) for a text it takes,
 * through json-scan's scanner and index (issue 16, sixth pass): jansson's
 * lexer reads a byte at a time through a callback, ~200 instructions a
 * byte with the tree (~130 k for an acquire's 650-byte reply); the index
 * and the tree built from it are about a quarter of that. json-scan
 * accepts exactly the texts jansson accepts, and json_index_to_json()
 * builds the tree jansson builds (json-scan-check.h compares them). NULL for everything else (a text either refuses, a key
 * given twice, no memory): jansson then parses it and says what is wrong
 * with it in its own words. */
static json_t *load_indexed(const char *frame, size_t len)
{
        JsonIndex *ix = NULL;
        json_t *j;

        if (json_index_build(frame, len, PROTO_MAX_DEPTH, &ix) < 0)
                return NULL;
        j = json_index_to_json(ix, json_index_root(ix));
        json_index_free(ix);
        return j;
}

/* Parses one frame payload as a JSON object: strict (duplicate keys, NUL in
 * strings, invalid UTF-8 and trailing bytes rejected), depth-limited.
 * -EBADMSG with a reason in `msg`, or -ENOMEM. The index checks the depth
 * itself: json_depth_ok() guards only jansson's recursion, for the texts
 * the index leaves to jansson. */
static int load_object(const char *frame, size_t len, json_t **ret, char *msg, size_t msg_size)
{
        json_error_t error;
        json_t *j;

        if (len == 0) {
                message_set(msg, msg_size, "empty message");
                return -EBADMSG;
        }
        j = load_indexed(frame, len);
        if (!j) {
                if (!json_depth_ok(frame, len, PROTO_MAX_DEPTH)) {
                        message_set(msg, msg_size, "JSON nested deeper than %u levels",
                                    PROTO_MAX_DEPTH);
                        return -EBADMSG;
                }
                j = json_loadb(frame, len, JSON_REJECT_DUPLICATES, &error);
        }
        if (!j) {
                if (json_error_code(&error) == json_error_out_of_memory)
                        return -ENOMEM;
                message_set(msg, msg_size, "invalid JSON at byte %d: %s", error.position,
                            error.text);
                return -EBADMSG;
        }
        if (!json_is_object(j)) {
                json_decref(j);
                message_set(msg, msg_size, "message is not a JSON object");
                return -EBADMSG;
        }
        *ret = j;
        return 0;
}

/* An integer member in [min, max]: 1 and *ret set, 0 if absent, -EBADMSG if
 * present but not such an integer. */
static int get_integer(json_t *obj, const char *key, json_int_t min, json_int_t max,
                       json_int_t *ret)
{
        json_t *v = json_object_get(obj, key);

        if (!v)
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
                return -EBADMSG;
        *ret = json_integer_value(v);
        return 1;
}

/* ---- Decoder ---------------------------------------------------------------------------- */

void proto_decoder_init(ProtoDecoder *d, size_t max_frame)
{
        assert(d);
        assert(max_frame >= 1 && max_frame <= UINT32_MAX);
        *d = (ProtoDecoder){.max_frame = max_frame};
}

void proto_decoder_done(ProtoDecoder *d)
{
        if (!d)
                return;
        free(d->buf);
        *d = (ProtoDecoder){.max_frame = d->max_frame};
}

/* Decodes and validates the header of the frame at `start`, once all four
 * bytes are there: 1 when the announced length is known and acceptable, 0
 * when the header is incomplete, or the (sticky) error. */
static int decoder_header(ProtoDecoder *d)
{
        const unsigned char *p;
        uint32_t n;

        if (d->error < 0)
                return d->error;
        if (d->announced > 0)
                return 1;
        if (d->end - d->start < PROTO_HEADER_SIZE)
                return 0;

        p = (const unsigned char *)d->buf + d->start;
        n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
        d->announced = n;
        if (n == 0)
                return (d->error = -EBADMSG);
        if (n > d->max_frame)
                return (d->error = -EMSGSIZE);
        return 1;
}

int proto_decoder_read_space(ProtoDecoder *d, void **ret_buf, size_t *ret_len)
{
        size_t want;
        int r;

        assert(d);
        assert(ret_buf);
        assert(ret_len);

        r = decoder_header(d);
        if (r < 0)
                return r;

        if (d->start > 0) {
                memmove(d->buf, d->buf + d->start, d->end - d->start);
                d->end -= d->start;
                d->start = 0;
        }
        if (d->end == 0 && d->size > DECODER_INITIAL_SIZE) {
                /* Idle after a large frame: give the memory back. */
                free(d->buf);
                d->buf = NULL;
                d->size = 0;
        }

        /* Room for the whole current frame once its (validated) length is
         * known, else for a header plus whatever small frames follow. */
        want = MIN((size_t)DECODER_INITIAL_SIZE, PROTO_HEADER_SIZE + d->max_frame);
        if (r == 1)
                want = MAX(want, PROTO_HEADER_SIZE + (size_t)d->announced);

        if (d->size < want) {
                char *b = realloc(d->buf, want);
                if (!b)
                        return -ENOMEM;
                /* A large frame is about to be read into all of it: map
                 * the new pages at once, not one fault per page. */
                if (want > DECODER_INITIAL_SIZE)
                        prefault_range(b + d->size, want - d->size);
                d->buf = b;
                d->size = want;
        }
        if (d->end >= d->size)
                return -ENOBUFS;

        *ret_buf = d->buf + d->end;
        *ret_len = d->size - d->end;
        return 0;
}

void proto_decoder_advance(ProtoDecoder *d, size_t n)
{
        assert(d);
        assert(n <= d->size - d->end);
        d->end += n;
}

int proto_decoder_feed(ProtoDecoder *d, const void *buf, size_t len)
{
        void *space;
        size_t space_len, n;
        int r;

        assert(d);
        assert(buf || len == 0);

        if (len == 0)
                return d->error < 0 ? d->error : 0;
        r = proto_decoder_read_space(d, &space, &space_len);
        if (r == -ENOBUFS)
                return 0;
        if (r < 0)
                return r;
        n = MIN(MIN(len, space_len), (size_t)INT_MAX);
        memcpy(space, buf, n);
        proto_decoder_advance(d, n);
        return (int)n;
}

int proto_decoder_next(ProtoDecoder *d, const char **ret_frame, size_t *ret_len)
{
        size_t n;
        int r;

        assert(d);
        assert(ret_frame);
        assert(ret_len);

        r = decoder_header(d);
        if (r <= 0)
                return r;
        n = d->announced;
        if (d->end - d->start < PROTO_HEADER_SIZE + n)
                return 0;

        *ret_frame = d->buf + d->start + PROTO_HEADER_SIZE;
        *ret_len = n;
        d->start += PROTO_HEADER_SIZE + n;
        d->announced = 0;
        return 1;
}

bool proto_decoder_ready(ProtoDecoder *d)
{
        int r;

        assert(d);
        r = decoder_header(d);
        return r < 0 || (r == 1 && d->end - d->start >= PROTO_HEADER_SIZE + (size_t)d->announced);
}

size_t proto_decoder_pending(const ProtoDecoder *d)
{
        assert(d);
        return d->end - d->start;
}

uint32_t proto_decoder_announced(const ProtoDecoder *d)
{
        assert(d);
        return d->announced;
}

/* ---- Encoding --------------------------------------------------------------------------- */

static void put_be32(char *p, uint32_t v)
{
        unsigned char *u = (unsigned char *)p;

        u[0] = (unsigned char)(v >> 24);
        u[1] = (unsigned char)(v >> 16);
        u[2] = (unsigned char)(v >> 8);
        u[3] = (unsigned char)v;
}

int proto_encode_frame(const char *json, size_t len, size_t max, char **ret, size_t *ret_len)
{
        char *b;

        assert(json || len == 0);
        assert(ret);
        assert(ret_len);

        if (len == 0 || len > max || len > UINT32_MAX)
                return -EMSGSIZE;
        b = malloc(PROTO_HEADER_SIZE + len);
        if (!b)
                return -ENOMEM;
        put_be32(b, (uint32_t)len);
        memcpy(b + PROTO_HEADER_SIZE, json, len);
        *ret = b;
        *ret_len = PROTO_HEADER_SIZE + len;
        return 0;
}

int proto_dump(json_t *msg, size_t max, char **ret, size_t *ret_len)
{
        _cleanup_free_ char *b = NULL;
        size_t n;
        int r;

        assert(msg);
        assert(ret);
        assert(ret_len);

        /* One pass: measuring first (json_dumpb with no buffer) serialises the
         * whole message twice, which was half the daemon's time on status
         * replies. Messages are built by the daemon itself, so holding one
         * that turns out too large in memory briefly is harmless. The same
         * bytes as json_dumps, faster (json-dump.h); jansson's own dump for
         * what that declines. */
        r = json_dump_compact(msg, &b, &n);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                b = json_dumps(msg, JSON_COMPACT);
                if (!b)
                        return -EINVAL;
                n = strlen(b);
        }
        if (n == 0)
                return -EINVAL;
        if (n > max)
                return -EMSGSIZE;
        *ret = TAKE_PTR(b);
        *ret_len = n;
        return 0;
}

ProtoBlob *proto_blob_new(const char *s, size_t len)
{
        ProtoBlob *b;

        assert(s || len == 0);
        if (len > SIZE_MAX - sizeof *b)
                return NULL;
        b = malloc(sizeof *b + len);
        if (!b)
                return NULL;
        b->ref = 1;
        b->len = len;
        if (len > 0)
                memcpy(b->data, s, len);
        return b;
}

ProtoBlob *proto_blob_ref(ProtoBlob *b)
{
        assert(b && b->ref > 0 && b->ref < UINT_MAX);
        b->ref++;
        return b;
}

void proto_blob_unref(ProtoBlob *b)
{
        if (!b)
                return;
        assert(b->ref > 0);
        if (--b->ref == 0)
                free(b);
}

void proto_outbuf_init(ProtoOutbuf *o, size_t max_queued)
{
        assert(o);
        assert(max_queued > PROTO_HEADER_SIZE);
        *o = (ProtoOutbuf){.max_queued = max_queued};
}

void proto_outbuf_done(ProtoOutbuf *o)
{
        if (!o)
                return;
        free(o->buf);
        for (size_t i = 0; i < o->n_pieces; i++)
                proto_blob_unref(o->pieces[i].blob);
        *o = (ProtoOutbuf){.max_queued = o->max_queued};
}

size_t proto_outbuf_queued(const ProtoOutbuf *o)
{
        assert(o);
        return o->end - o->start + o->piece_bytes;
}

/* Room for `n` more bytes at the end of the byte queue (the caller checked
 * the cap). */
static int outbuf_reserve(ProtoOutbuf *o, size_t n)
{
        if (o->size - o->end < n && o->start > 0) {
                memmove(o->buf, o->buf + o->start, o->end - o->start);
                o->end -= o->start;
                o->start = 0;
        }
        if (o->size - o->end < n) {
                /* Grow geometrically, but never past the cap. */
                size_t size = MAX(o->end + n, MIN(o->size * 2, o->max_queued));
                char *b = realloc(o->buf, size);
                if (!b)
                        return -ENOMEM;
                o->buf = b;
                o->size = size;
        }
        return 0;
}

/* The frame of `len` bytes fits the frame limit and the queue's cap. */
static int outbuf_check(const ProtoOutbuf *o, size_t len, size_t max_frame)
{
        if (len == 0 || len > max_frame || len > UINT32_MAX)
                return -EMSGSIZE;
        if (PROTO_HEADER_SIZE + len > o->max_queued - proto_outbuf_queued(o))
                return -ENOBUFS;
        return 0;
}

int proto_outbuf_append(ProtoOutbuf *o, const char *json, size_t len, size_t max_frame)
{
        int r;

        assert(o);
        assert(json || len == 0);

        r = outbuf_check(o, len, max_frame);
        if (r < 0)
                return r;
        r = outbuf_reserve(o, PROTO_HEADER_SIZE + len);
        if (r < 0)
                return r;
        put_be32(o->buf + o->end, (uint32_t)len);
        memcpy(o->buf + o->end + PROTO_HEADER_SIZE, json, len);
        o->end += PROTO_HEADER_SIZE + len;
        return 0;
}

int proto_outbuf_append_shared(ProtoOutbuf *o, const char *head, size_t head_len, ProtoBlob *body,
                               const char *tail, size_t tail_len, size_t max_frame)
{
        bool shared;
        size_t len;
        int r;

        assert(o);
        assert(body);
        assert(head || head_len == 0);
        assert(tail || tail_len == 0);

        if (head_len > SIZE_MAX - body->len || tail_len > SIZE_MAX - head_len - body->len)
                return -EMSGSIZE;
        len = head_len + body->len + tail_len;
        r = outbuf_check(o, len, max_frame);
        if (r < 0)
                return r;
        /* Out of piece slots (a client that pipelines status requests and
         * does not read): the body is copied like any other bytes. */
        shared = o->n_pieces < PROTO_OUTBUF_PIECES;
        r = outbuf_reserve(o, PROTO_HEADER_SIZE + head_len + tail_len + (shared ? 0 : body->len));
        if (r < 0)
                return r;
        put_be32(o->buf + o->end, (uint32_t)len);
        memcpy(o->buf + o->end + PROTO_HEADER_SIZE, head, head_len);
        o->end += PROTO_HEADER_SIZE + head_len;
        if (shared && body->len > 0) {
                o->pieces[o->n_pieces++] = (ProtoOutbufPiece){
                    .blob = proto_blob_ref(body),
                    .at = o->sent + (o->end - o->start),
                };
                o->piece_bytes += body->len;
        } else if (body->len > 0) {
                memcpy(o->buf + o->end, body->data, body->len);
                o->end += body->len;
        }
        memcpy(o->buf + o->end, tail, tail_len);
        o->end += tail_len;
        return 0;
}

int proto_outbuf_append_msg(ProtoOutbuf *o, json_t *msg, size_t max_frame)
{
        _cleanup_free_ char *s = NULL;
        size_t len;
        int r;

        r = proto_dump(msg, max_frame, &s, &len);
        if (r < 0)
                return r;
        return proto_outbuf_append(o, s, len, max_frame);
}

/* The queue in order as at most 2 * PROTO_OUTBUF_PIECES + 1 vectors: the
 * byte queue's runs, each piece between them. Returns the count. */
static size_t outbuf_iov(const ProtoOutbuf *o, struct iovec *iov)
{
        uint64_t at = o->sent, end = o->sent + (o->end - o->start);
        size_t n = 0;

        for (size_t i = 0; i < o->n_pieces; i++) {
                if (o->pieces[i].at > at) {
                        iov[n++] = (struct iovec){o->buf + o->start + (at - o->sent),
                                                  o->pieces[i].at - at};
                        at = o->pieces[i].at;
                }
                iov[n++] = (struct iovec){o->pieces[i].blob->data + o->pieces[i].off,
                                          o->pieces[i].blob->len - o->pieces[i].off};
        }
        if (end > at)
                iov[n++] = (struct iovec){o->buf + o->start + (at - o->sent), end - at};
        return n;
}

/* Takes `n` sent bytes off the queue, in the order outbuf_iov() gave them. */
static void outbuf_consume(ProtoOutbuf *o, size_t n)
{
        while (n > 0) {
                uint64_t next = o->n_pieces > 0 ? o->pieces[0].at : UINT64_MAX;

                if (o->sent < next) { /* bytes of the byte queue come first */
                        size_t k = (size_t)MIN((uint64_t)n, next - o->sent);

                        assert(k <= o->end - o->start);
                        o->start += k;
                        o->sent += k;
                        n -= k;
                        continue;
                }
                size_t k = MIN(n, o->pieces[0].blob->len - o->pieces[0].off);

                o->pieces[0].off += k;
                o->piece_bytes -= k;
                n -= k;
                if (o->pieces[0].off == o->pieces[0].blob->len) {
                        proto_blob_unref(o->pieces[0].blob);
                        memmove(&o->pieces[0], &o->pieces[1],
                                (o->n_pieces - 1) * sizeof o->pieces[0]);
                        o->n_pieces--;
                }
        }
}

int proto_outbuf_flush(ProtoOutbuf *o, int fd)
{
        assert(o);
        assert(fd >= 0);

        while (proto_outbuf_queued(o) > 0) {
                struct iovec iov[2 * PROTO_OUTBUF_PIECES + 1];
                struct msghdr mh = {.msg_iov = iov, .msg_iovlen = outbuf_iov(o, iov)};
                ssize_t n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 0;
                        return negative_errno();
                }
                outbuf_consume(o, (size_t)n);
        }

        o->start = o->end = 0;
        if (o->size > OUTBUF_KEEP_SIZE) {
                free(o->buf);
                o->buf = NULL;
                o->size = 0;
        }
        return 1;
}

/* ---- Requests --------------------------------------------------------------------------- */

static int request_fail(ProtoError *e, int r, int code)
{
        e->code = code;
        return r;
}

int proto_parse_request(const char *frame, size_t len, ProtoRequest *ret, ProtoError *ret_error)
{
        ProtoError e = {.id = -1};
        _cleanup_json_ json_t *root = NULL;
        json_t *op, *args;
        json_int_t v, id;
        size_t op_len;
        int r;

        assert(frame || len == 0);
        assert(ret);
        assert(ret_error);

        if (len > GK_PROTO_MAX_REQUEST) {
                message_set(e.message, sizeof e.message,
                            "request of %zu bytes is above the limit of %u bytes", len,
                            GK_PROTO_MAX_REQUEST);
                r = request_fail(&e, -EMSGSIZE, GK_E_TOO_LARGE);
                goto fail;
        }

        r = load_object(frame, len, &root, e.message, sizeof e.message);
        if (r < 0) {
                if (r == -ENOMEM)
                        message_set(e.message, sizeof e.message, "out of memory");
                r = request_fail(&e, r, r == -ENOMEM ? GK_E_INTERNAL : GK_E_MALFORMED);
                goto fail;
        }

        /* The id first, so that every later error reply can carry it. */
        r = get_integer(root, "id", 0, UINT32_MAX, &id);
        if (r <= 0) {
                message_set(e.message, sizeof e.message,
                            r == 0 ? "missing \"id\""
                                   : "\"id\" must be an integer from 0 to 4294967295");
                r = request_fail(&e, -EBADMSG, GK_E_MALFORMED);
                goto fail;
        }
        e.id = id;

        /* The version before the rest: another version may shape the rest differently. */
        r = get_integer(root, "v", INT64_MIN, INT64_MAX, &v);
        if (r <= 0) {
                message_set(e.message, sizeof e.message,
                            r == 0 ? "missing \"v\" (the protocol version)"
                                   : "\"v\" (the protocol version) must be an integer");
                r = request_fail(&e, -EBADMSG, GK_E_MALFORMED);
                goto fail;
        }
        if (v != GK_PROTO_VERSION) {
                message_set(e.message, sizeof e.message,
                            "protocol version %lld is not supported; this daemon speaks version %d",
                            (long long)v, GK_PROTO_VERSION);
                r = request_fail(&e, -EPROTONOSUPPORT, GK_E_VERSION);
                goto fail;
        }

        op = json_object_get(root, "op");
        if (!op || !json_is_string(op)) {
                message_set(e.message, sizeof e.message,
                            op ? "\"op\" must be a string" : "missing \"op\"");
                r = request_fail(&e, -EBADMSG, GK_E_MALFORMED);
                goto fail;
        }
        op_len = json_string_length(op);
        if (!proto_name_is_valid(json_string_value(op), op_len)) {
                message_set(e.message, sizeof e.message,
                            "\"op\" must be 1 to %u characters from a-z, 0-9, '.', '_' and '-'",
                            PROTO_NAME_MAX);
                r = request_fail(&e, -EBADMSG, GK_E_MALFORMED);
                goto fail;
        }

        args = json_object_get(root, "args");
        if (args && !json_is_object(args)) {
                message_set(e.message, sizeof e.message, "\"args\" must be an object");
                r = request_fail(&e, -EBADMSG, GK_E_MALFORMED);
                goto fail;
        }

        *ret = (ProtoRequest){.id = (uint32_t)id, .args = json_incref(args)};
        memcpy(ret->op, json_string_value(op), op_len);
        ret->op[op_len] = '\0';
        return 0;

fail:
        *ret_error = e;
        return r;
}

void proto_request_done(ProtoRequest *r)
{
        if (!r)
                return;
        json_decref(r->args);
        r->args = NULL;
}

json_t *proto_request_new(uint32_t id, const char *op, json_t *args)
{
        _cleanup_json_ json_t *a = args, *m = NULL;

        if (!op || !proto_name_is_valid(op, strlen(op)) || (a && !json_is_object(a)))
                return NULL;
        m = json_object();
        if (!m || json_object_set_new(m, "v", json_integer(GK_PROTO_VERSION)) < 0 ||
            json_object_set_new(m, "id", json_integer(id)) < 0 ||
            json_object_set_new(m, "op", json_string(op)) < 0 ||
            (a && json_object_set_new(m, "args", TAKE_PTR(a)) < 0))
                return NULL;
        return TAKE_PTR(m);
}

/* ---- Replies and events ----------------------------------------------------------------- */

json_t *proto_reply_ok(uint32_t id, json_t *result)
{
        _cleanup_json_ json_t *res = result, *m = NULL;

        assert(!res || json_is_object(res));

        if (!res) {
                res = json_object();
                if (!res)
                        return NULL;
        }
        m = json_object();
        if (!m || json_object_set_new(m, "v", json_integer(GK_PROTO_VERSION)) < 0 ||
            json_object_set_new(m, "id", json_integer(id)) < 0 ||
            json_object_set_new(m, "ok", json_true()) < 0 ||
            json_object_set_new(m, "result", TAKE_PTR(res)) < 0)
                return NULL;
        return TAKE_PTR(m);
}

/* Written without printf: it goes before every reply the daemon writes as
 * text (~1 k instructions of an acquire through snprintf, issue 16). */
size_t proto_ok_reply_prefix(uint32_t id, char buf[static PROTO_OK_PREFIX_MAX])
{
        static const char head[] = "{\"v\":" STRINGIFY(GK_PROTO_VERSION) ",\"id\":";
        static const char tail[] = ",\"ok\":true,\"result\":";
        size_t n = sizeof head - 1;

        static_assert(sizeof head - 1 + JSON_INTEGER_TEXT_MAX + sizeof tail <= PROTO_OK_PREFIX_MAX,
                      "the prefix fits");
        memcpy(buf, head, n);
        n += json_format_integer(id, buf + n);
        memcpy(buf + n, tail, sizeof tail); /* with its NUL */
        return n + sizeof tail - 1;
}

static json_t *reply_error_text(int64_t id, int code, const char *message)
{
        _cleanup_json_ json_t *m = NULL, *err = NULL;

        err = json_object();
        if (!err || json_object_set_new(err, "code", json_integer(code)) < 0 ||
            json_object_set_new(err, "name", json_string(gk_error_name(code))) < 0 ||
            json_object_set_new(err, "message", json_string(message)) < 0)
                return NULL;
        m = json_object();
        if (!m || json_object_set_new(m, "v", json_integer(GK_PROTO_VERSION)) < 0 ||
            json_object_set_new(m, "id", id >= 0 ? json_integer(id) : json_null()) < 0 ||
            json_object_set_new(m, "ok", json_false()) < 0 ||
            json_object_set_new(m, "error", TAKE_PTR(err)) < 0)
                return NULL;
        return TAKE_PTR(m);
}

json_t *proto_reply_error(int64_t id, int code, const char *fmt, ...)
{
        char message[PROTO_MESSAGE_MAX];
        va_list ap;

        assert(fmt);
        assert(code > 0);

        va_start(ap, fmt);
        vsnprintf(message, sizeof message, fmt, ap);
        va_end(ap);
        text_sanitize(message);
        return reply_error_text(id, code, message);
}

json_t *proto_reply_from_error(const ProtoError *e)
{
        assert(e);
        return proto_reply_error(e->id, e->code, "%s", e->message);
}

json_t *proto_event(const char *name, json_t *data)
{
        _cleanup_json_ json_t *d = data, *m = NULL;

        assert(!d || json_is_object(d));

        if (!name || !proto_name_is_valid(name, strlen(name)))
                return NULL;
        if (!d) {
                d = json_object();
                if (!d)
                        return NULL;
        }
        m = json_object();
        if (!m || json_object_set_new(m, "v", json_integer(GK_PROTO_VERSION)) < 0 ||
            json_object_set_new(m, "event", json_string(name)) < 0 ||
            json_object_set_new(m, "data", TAKE_PTR(d)) < 0)
                return NULL;
        return TAKE_PTR(m);
}

/* ---- Client side ------------------------------------------------------------------------ */

/* Copies a daemon's message into `buf`, cut at a UTF-8 character boundary
 * when too long, and made safe to print. */
static void message_copy(char *buf, size_t size, const char *s, size_t len)
{
        if (len >= size) {
                len = size - 1;
                while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
                        len--;
        }
        memcpy(buf, s, len);
        buf[len] = '\0';
        text_sanitize(buf);
}

static int parse_event(json_t *root, ProtoMessage *m)
{
        json_t *ev = json_object_get(root, "event"), *data = json_object_get(root, "data");
        size_t len;

        if (!json_is_string(ev))
                return -EBADMSG;
        len = json_string_length(ev);
        if (!proto_name_is_valid(json_string_value(ev), len))
                return -EBADMSG;
        if (data && !json_is_object(data))
                return -EBADMSG;

        memcpy(m->event, json_string_value(ev), len);
        m->event[len] = '\0';
        m->is_event = true;
        m->data = data ? json_incref(data) : json_object();
        return m->data ? 0 : -ENOMEM;
}

static int parse_reply(json_t *root, ProtoMessage *m)
{
        json_t *id = json_object_get(root, "id"), *ok = json_object_get(root, "ok");
        json_t *result, *err, *code, *message;
        json_int_t idv = -1;

        if (!id || !json_is_boolean(ok))
                return -EBADMSG;
        if (!json_is_null(id)) {
                if (get_integer(root, "id", 0, UINT32_MAX, &idv) < 0)
                        return -EBADMSG;
        }
        m->id = idv;

        if (json_is_true(ok)) {
                result = json_object_get(root, "result");
                /* Only error replies may lack the id (the request's was unreadable). */
                if (idv < 0 || !json_is_object(result))
                        return -EBADMSG;
                m->ok = true;
                m->result = json_incref(result);
                return 0;
        }

        err = json_object_get(root, "error");
        code = json_object_get(err, "code");
        message = json_object_get(err, "message");
        if (!json_is_object(err) || !json_is_integer(code) || json_integer_value(code) <= 0 ||
            json_integer_value(code) > INT_MAX || !json_is_string(message))
                return -EBADMSG;
        m->ok = false;
        m->code = (int)json_integer_value(code);
        message_copy(m->message, sizeof m->message, json_string_value(message),
                     json_string_length(message));
        return 0;
}

int proto_parse_message(const char *frame, size_t len, ProtoMessage *ret)
{
        _cleanup_json_ json_t *root = NULL;
        ProtoMessage m = {.id = -1};
        char reason[PROTO_MESSAGE_MAX];
        json_int_t v;
        int r;

        assert(frame || len == 0);
        assert(ret);

        if (len > GK_PROTO_MAX_REPLY)
                return -EBADMSG;
        r = load_object(frame, len, &root, reason, sizeof reason);
        if (r < 0)
                return r;
        if (get_integer(root, "v", INT64_MIN, INT64_MAX, &v) <= 0 || v != GK_PROTO_VERSION)
                return -EBADMSG;

        r = json_object_get(root, "event") ? parse_event(root, &m) : parse_reply(root, &m);
        if (r < 0) {
                proto_message_done(&m);
                return r;
        }
        *ret = m;
        return 0;
}

void proto_message_done(ProtoMessage *m)
{
        if (!m)
                return;
        json_decref(m->result);
        json_decref(m->data);
        m->result = m->data = NULL;
}

/* proto_scan_ok_reply() reads at most this many members. */
#define OK_REPLY_MEMBERS_MAX 8u
/* The ones an ok reply has: v, id, ok, result. */
#define OK_REPLY_MEMBERS 4u

/* The unsigned decimal integer `s` (len bytes, no sign, no fraction or
 * exponent) when it is at most UINT32_MAX: 1 and *ret; else 0. */
static int plain_uint32(const char *s, size_t len, uint32_t *ret)
{
        uint64_t v = 0;

        if (len == 0 || len > 10)
                return 0;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return 0;
                v = v * 10 + (uint64_t)(s[i] - '0');
        }
        if (v > UINT32_MAX)
                return 0;
        *ret = (uint32_t)v;
        return 1;
}

int proto_scan_ok_reply(const char *frame, size_t len, uint32_t *ret_id, const char **ret_result,
                        size_t *ret_result_len)
{
        /* A reply has four members; a few more (additive protocol changes)
         * are fine, more than this is unusual: the parsed path decides. */
        JsonScanMember m[OK_REPLY_MEMBERS_MAX];
        JsonScanMembers it;
        const JsonScanMember *v = NULL, *id = NULL, *ok = NULL, *result = NULL;
        size_t n = 0;
        uint32_t idv;
        int r;

        assert(frame || len == 0);
        assert(ret_id);
        assert(ret_result);
        assert(ret_result_len);

        if (len > GK_PROTO_MAX_REPLY)
                return 0;
        json_scan_members_init(&it, frame, len, PROTO_MAX_DEPTH);
        while ((r = json_scan_members_next(&it, &m[n])) > 0) {
                for (size_t i = 0; i < n; i++)
                        if (json_scan_keys_equal(&m[i], &m[n]))
                                return 0; /* the parsed path refuses duplicates */
                if (json_scan_key_is(&m[n], "event"))
                        return 0;
                if (json_scan_key_is(&m[n], "v"))
                        v = &m[n];
                else if (json_scan_key_is(&m[n], "id"))
                        id = &m[n];
                else if (json_scan_key_is(&m[n], "ok"))
                        ok = &m[n];
                else if (json_scan_key_is(&m[n], "result"))
                        result = &m[n];
                if (++n == ELEMENTSOF(m))
                        return 0;
        }
        if (r < 0 || !v || !id || !ok || !result)
                return 0;
        if (v->value_len != 1 || v->value[0] != '1')
                return 0;
        if (ok->value_len != 4 || memcmp(ok->value, "true", 4) != 0)
                return 0;
        if (result->value[0] != '{')
                return 0;
        if (!plain_uint32(id->value, id->value_len, &idv))
                return 0;
        *ret_id = idv;
        *ret_result = result->value;
        *ret_result_len = result->value_len;
        return 1;
}

/* Whether key `k` of an index is the `len` bytes at `name`. */
static bool index_key_is(const JsonIndex *ix, JsonIndexRef k, const char *name, size_t len)
{
        size_t n = 0;
        const char *s = json_index_string(ix, k, &n);

        return s && n == len && memcmp(s, name, len) == 0;
}

#define INDEX_KEY_IS(ix, k, lit) index_key_is((ix), (k), (lit), sizeof(lit) - 1)

int proto_index_ok_reply(const JsonIndex *ix, uint32_t *ret_id, JsonIndexRef *ret_result)
{
        JsonIndexRef root, keys[OK_REPLY_MEMBERS_MAX], v = 0, id = 0, ok = 0, result = 0;
        const char *text;
        size_t n = 0, len = 0;
        uint32_t idv;

        assert(ix);
        assert(ret_id);
        assert(ret_result);

        root = json_index_root(ix);
        if (ix->len > GK_PROTO_MAX_REPLY || !json_index_is_object(ix, root))
                return 0;
        /* The members as proto_scan_ok_reply() reads them. */
        for (JsonIndexRef k = json_index_first(ix, root); k; k = json_index_next(ix, k)) {
                size_t klen = 0;
                const char *name = json_index_string(ix, k, &klen);

                for (size_t i = 0; i < n; i++)
                        if (index_key_is(ix, keys[i], name, klen))
                                return 0; /* the parsed path refuses duplicates */
                if (INDEX_KEY_IS(ix, k, "event"))
                        return 0;
                if (INDEX_KEY_IS(ix, k, "v"))
                        v = json_index_value(ix, k);
                else if (INDEX_KEY_IS(ix, k, "id"))
                        id = json_index_value(ix, k);
                else if (INDEX_KEY_IS(ix, k, "ok"))
                        ok = json_index_value(ix, k);
                else if (INDEX_KEY_IS(ix, k, "result"))
                        result = json_index_value(ix, k);
                keys[n] = k;
                if (++n == ELEMENTSOF(keys))
                        return 0;
        }
        if (!v || !id || !ok || !result)
                return 0;
        text = json_index_number_text(ix, v, &len);
        if (!text || len != 1 || text[0] != '1')
                return 0;
        if (!json_index_is_true(ix, ok) || !json_index_is_object(ix, result))
                return 0;
        text = json_index_number_text(ix, id, &len);
        if (!text || !plain_uint32(text, len, &idv))
                return 0;
        *ret_id = idv;
        *ret_result = result;
        return 1;
}

bool proto_ok_reply_tail_ok(const char *tail, size_t len)
{
        static const char *const taken[] = {"v", "id", "ok", "result", "event"};
        JsonScanMember m[OK_REPLY_MEMBERS_MAX - OK_REPLY_MEMBERS];
        _cleanup_free_ char *copy = NULL;
        JsonScanMembers it;
        size_t i = 0, n = 0;
        int r;

        assert(tail || len == 0);
        i = json_scan_skip_ws(tail, len, 0);
        if (i < len && tail[i] == '}')
                return json_scan_skip_ws(tail, len, i + 1) == len;
        if (i >= len || tail[i] != ',')
                return false;
        /* More members: walked as the object `{` + what follows the comma. */
        copy = malloc(len - i);
        if (!copy)
                return false;
        memcpy(copy, tail + i, len - i);
        copy[0] = '{';
        json_scan_members_init(&it, copy, len - i, PROTO_MAX_DEPTH);
        while ((r = json_scan_members_next(&it, &m[n])) > 0) {
                for (size_t k = 0; k < ELEMENTSOF(taken); k++)
                        if (json_scan_key_is(&m[n], taken[k]))
                                return false;
                for (size_t k = 0; k < n; k++)
                        if (json_scan_keys_equal(&m[k], &m[n]))
                                return false;
                if (++n == ELEMENTSOF(m))
                        return false;
        }
        return r == 0 && n > 0;
}
