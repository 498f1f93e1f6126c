/* Unit tests for src/proto (framing, request validation, replies, events)
 * and src/client (the client library over a real Unix socket).
 *
 * The client tests listen on a real socket in a private temporary directory;
 * a connect() completes against the listen backlog, so most tests write the
 * daemon's side of the conversation before the call and check afterwards what
 * the client sent. Tests that need the peer to act while the client waits
 * (a 16 MiB reply, a signal during the wait) use a thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "basic/prefault.h"
#include "client/client-text.h"
#include "gpukeeper/client.h"
#include "proto/json-scan.h"
#include "proto/proto.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static char *frame_of(const char *json, size_t len, size_t *ret_len)
{
        char *f = NULL;

        assert_int_equal(proto_encode_frame(json, len, UINT32_MAX, &f, ret_len), 0);
        return f;
}

static void put_header(unsigned char *p, uint32_t n)
{
        p[0] = (unsigned char)(n >> 24);
        p[1] = (unsigned char)(n >> 16);
        p[2] = (unsigned char)(n >> 8);
        p[3] = (unsigned char)n;
}

/* Feeds all of buf[0..len) into the decoder, draining frames whenever it is
 * full, and appends every frame (as a NUL-terminated copy) to frames[]. */
static size_t decode_all(ProtoDecoder *d, const char *buf, size_t len, size_t chunk, char **frames,
                         size_t max_frames)
{
        size_t n_frames = 0, off = 0;

        while (off < len) {
                size_t piece = len - off < chunk ? len - off : chunk;
                int r = proto_decoder_feed(d, buf + off, piece);
                const char *f;
                size_t flen;

                assert_true(r >= 0);
                off += (size_t)r;
                while ((r = proto_decoder_next(d, &f, &flen)) == 1) {
                        assert_true(n_frames < max_frames);
                        frames[n_frames] = strndup(f, flen);
                        assert_non_null(frames[n_frames]);
                        n_frames++;
                }
                assert_int_equal(r, 0);
                /* Memory stays bounded by the largest frame, never the stream. */
                assert_true(d->size <= 4096 || d->size <= PROTO_HEADER_SIZE + d->max_frame);
        }
        return n_frames;
}

/* ---- decoder ---------------------------------------------------------------------------- */

static const char *const sample_frames[] = {
    "{\"v\":1,\"id\":1,\"op\":\"ping\"}",
    "{}",
    "{\"v\":1,\"id\":2,\"op\":\"status\",\"args\":{\"a\":[1,2,3]}}",
    "x",
};

static char *sample_stream(size_t *ret_len)
{
        char *s = NULL;
        size_t len = 0;

        for (size_t i = 0; i < sizeof sample_frames / sizeof sample_frames[0]; i++) {
                size_t flen;
                char *f = frame_of(sample_frames[i], strlen(sample_frames[i]), &flen);
                s = realloc(s, len + flen);
                assert_non_null(s);
                memcpy(s + len, f, flen);
                len += flen;
                free(f);
        }
        *ret_len = len;
        return s;
}

static void check_sample_frames(char **frames, size_t n)
{
        assert_int_equal(n, sizeof sample_frames / sizeof sample_frames[0]);
        for (size_t i = 0; i < n; i++) {
                assert_string_equal(frames[i], sample_frames[i]);
                free(frames[i]);
        }
}

static void test_decoder_split_everywhere(void **state)
{
        size_t len;
        char *stream = sample_stream(&len);

        /* Two pieces, split at every byte boundary. */
        for (size_t k = 0; k <= len; k++) {
                ProtoDecoder d;
                char *frames[8];
                size_t n = 0;

                proto_decoder_init(&d, GK_PROTO_MAX_REQUEST);
                n += decode_all(&d, stream, k, len, frames, 8);
                n += decode_all(&d, stream + k, len - k, len, frames + n, 8 - n);
                check_sample_frames(frames, n);
                assert_int_equal(proto_decoder_pending(&d), 0);
                proto_decoder_done(&d);
        }

        /* Every chunk size, including one byte at a time. */
        for (size_t chunk = 1; chunk <= len; chunk++) {
                ProtoDecoder d;
                char *frames[8];

                proto_decoder_init(&d, GK_PROTO_MAX_REQUEST);
                check_sample_frames(frames, decode_all(&d, stream, len, chunk, frames, 8));
                proto_decoder_done(&d);
        }
        free(stream);
}

static void test_decoder_many_frames(void **state)
{
        enum { N = 1000 };
        char *stream = NULL, *frames[N];
        size_t len = 0;
        ProtoDecoder d;

        for (int i = 0; i < N; i++) {
                char json[64];
                size_t flen;
                int n = snprintf(json, sizeof json, "{\"v\":1,\"id\":%d,\"op\":\"ping\"}", i);
                char *f = frame_of(json, (size_t)n, &flen);
                stream = realloc(stream, len + flen);
                assert_non_null(stream);
                memcpy(stream + len, f, flen);
                len += flen;
                free(f);
        }

        /* One buffer far larger than the decoder's: feed() takes what fits. */
        proto_decoder_init(&d, GK_PROTO_MAX_REQUEST);
        assert_int_equal(decode_all(&d, stream, len, len, frames, N), N);
        for (int i = 0; i < N; i++) {
                ProtoRequest req;
                ProtoError err;

                assert_int_equal(proto_parse_request(frames[i], strlen(frames[i]), &req, &err), 0);
                assert_int_equal(req.id, i);
                proto_request_done(&req);
                free(frames[i]);
        }
        proto_decoder_done(&d);
        free(stream);
}

static void test_decoder_zero_length(void **state)
{
        unsigned char buf[8] = {0};
        ProtoDecoder d;
        const char *f;
        size_t flen;
        void *space;
        size_t space_len;

        proto_decoder_init(&d, GK_PROTO_MAX_REQUEST);
        assert_int_equal(proto_decoder_feed(&d, buf, 3), 3);
        assert_int_equal(proto_decoder_next(&d, &f, &flen), 0);
        assert_int_equal(proto_decoder_feed(&d, buf + 3, 1), 1);
        assert_int_equal(proto_decoder_next(&d, &f, &flen), -EBADMSG);
        /* Sticky: the stream cannot be resynchronised. */
        assert_int_equal(proto_decoder_next(&d, &f, &flen), -EBADMSG);
        assert_int_equal(proto_decoder_read_space(&d, &space, &space_len), -EBADMSG);
        assert_int_equal(proto_decoder_feed(&d, buf, 4), -EBADMSG);
        proto_decoder_done(&d);
}

/* proto_decoder_ready(): a whole frame (or the sticky error) is there, and
 * so proto_decoder_next() would not answer 0; the server handles one such
 * frame per turn and reads again only when none is ready. */
static void test_decoder_ready(void **state)
{
        unsigned char hdr[4], zero[4] = {0};
        ProtoDecoder d;
        const char *f;
        size_t flen;

        proto_decoder_init(&d, GK_PROTO_MAX_REQUEST);
        assert_false(proto_decoder_ready(&d));
        put_header(hdr, 2);
        assert_int_equal(proto_decoder_feed(&d, hdr, 3), 3);
        assert_false(proto_decoder_ready(&d)); /* half a header */
        assert_int_equal(proto_decoder_feed(&d, hdr + 3, 1), 1);
        assert_int_equal(proto_decoder_feed(&d, "{", 1), 1);
        assert_false(proto_decoder_ready(&d)); /* half a payload */
        assert_int_equal(proto_decoder_feed(&d, "}", 1), 1);
        /* A second frame behind the first, whole. */
        assert_int_equal(proto_decoder_feed(&d, hdr, 4), 4);
        assert_int_equal(proto_decoder_feed(&d, "[]", 2), 2);
        assert_true(proto_decoder_ready(&d));
        assert_true(proto_decoder_ready(&d)); /* asking moves nothing */
        assert_int_equal(proto_decoder_next(&d, &f, &flen), 1);
        assert_memory_equal(f, "{}", 2);
        assert_true(proto_decoder_ready(&d));
        assert_int_equal(proto_decoder_next(&d, &f, &flen), 1);
        assert_memory_equal(f, "[]", 2);
        assert_false(proto_decoder_ready(&d));
        /* The sticky error is ready: the caller must hear of it. */
        assert_int_equal(proto_decoder_feed(&d, zero, 4), 4);
        assert_true(proto_decoder_ready(&d));
        assert_int_equal(proto_decoder_next(&d, &f, &flen), -EBADMSG);
        assert_true(proto_decoder_ready(&d));
        proto_decoder_done(&d);
}

static void test_decoder_limits(void **state)
{
        const size_t max = GK_PROTO_MAX_REQUEST;
        char *payload = malloc(max);
        unsigned char hdr[4];
        ProtoDecoder d;
        const char *f;
        size_t flen;

        assert_non_null(payload);
        memset(payload, 'a', max);

        /* N = max is accepted. */
        proto_decoder_init(&d, max);
        put_header(hdr, (uint32_t)max);
        assert_int_equal(proto_decoder_feed(&d, hdr, 4), 4);
        for (size_t off = 0; off < max;) {
                int r = proto_decoder_feed(&d, payload + off, max - off);
                assert_true(r > 0);
                off += (size_t)r;
        }
        assert_int_equal(proto_decoder_next(&d, &f, &flen), 1);
        assert_int_equal(flen, max);
        assert_memory_equal(f, payload, max);
        assert_true(d.size <= PROTO_HEADER_SIZE + max);
        /* Idle again: the large buffer is given back. */
        assert_int_equal(proto_decoder_feed(&d, hdr, 1), 1);
        assert_true(d.size <= 4096);
        proto_decoder_done(&d);

        /* N = max + 1 is refused from the header alone, before any buffer is sized for it. */
        proto_decoder_init(&d, max);
        put_header(hdr, (uint32_t)max + 1);
        assert_int_equal(proto_decoder_feed(&d, hdr, 4), 4);
        assert_int_equal(proto_decoder_next(&d, &f, &flen), -EMSGSIZE);
        assert_int_equal(proto_decoder_announced(&d), max + 1);
        assert_true(d.size <= 4096);
        proto_decoder_done(&d);

        /* The largest length the header can announce. */
        proto_decoder_init(&d, GK_PROTO_MAX_REPLY);
        put_header(hdr, 0xFFFFFFFFu);
        assert_int_equal(proto_decoder_feed(&d, hdr, 4), 4);
        assert_int_equal(proto_decoder_next(&d, &f, &flen), -EMSGSIZE);
        assert_int_equal(proto_decoder_announced(&d), 0xFFFFFFFFu);
        assert_true(d.size <= 4096);
        proto_decoder_done(&d);

        free(payload);
}

static void test_decoder_read_space(void **state)
{
        const char *f;
        size_t flen, space_len, fl;
        void *space;
        ProtoDecoder d;
        char *frame = frame_of("0123456789", 10, &fl);

        /* A tiny limit makes the buffer exactly one frame large. */
        proto_decoder_init(&d, 10);
        assert_int_equal(proto_decoder_read_space(&d, &space, &space_len), 0);
        assert_int_equal(space_len, 14);
        memcpy(space, frame, fl);
        proto_decoder_advance(&d, fl);
        /* Full of a complete frame: drain first. */
        assert_int_equal(proto_decoder_read_space(&d, &space, &space_len), -ENOBUFS);
        assert_int_equal(proto_decoder_feed(&d, frame, fl), 0);
        assert_int_equal(proto_decoder_next(&d, &f, &flen), 1);
        assert_memory_equal(f, "0123456789", 10);
        assert_int_equal(proto_decoder_next(&d, &f, &flen), 0);
        assert_int_equal(proto_decoder_read_space(&d, &space, &space_len), 0);
        assert_int_equal(space_len, 14);
        proto_decoder_done(&d);
        free(frame);
}

/* ---- encoding and the write queue ------------------------------------------------------- */

static void test_encode(void **state)
{
        char *f = NULL, *s = NULL;
        size_t flen, slen;
        json_t *j;

        assert_int_equal(proto_encode_frame("{}", 2, 2, &f, &flen), 0);
        assert_int_equal(flen, 6);
        assert_memory_equal(f, "\0\0\0\2{}", 6);
        free(f);
        assert_int_equal(proto_encode_frame("{}", 0, 10, &f, &flen), -EMSGSIZE);
        assert_int_equal(proto_encode_frame("{}", 2, 1, &f, &flen), -EMSGSIZE);

        j = json_pack("{s:i,s:[i,i]}", "a", 1, "b", 2, 3);
        assert_non_null(j);
        assert_int_equal(proto_dump(j, 100, &s, &slen), 0);
        assert_string_equal(s, "{\"a\":1,\"b\":[2,3]}");
        assert_int_equal(slen, strlen(s));
        free(s);
        assert_int_equal(proto_dump(j, slen - 1, &s, &slen), -EMSGSIZE);
        assert_int_equal(proto_dump(j, 17, &s, &slen), 0);
        free(s);
        json_decref(j);
}

static void set_nonblock(int fd)
{
        int flags = fcntl(fd, F_GETFL);
        assert_true(flags >= 0);
        assert_int_equal(fcntl(fd, F_SETFL, flags | O_NONBLOCK), 0);
}

/* Flushes `o` into sv[0] and reads sv[1] `read_size` bytes at a time into
 * `d` until the queue is empty and `want` frames came, handing each frame to
 * `check` with its index. Counts the flushes that left bytes queued (the
 * socket was full) in *partial. Returns the frames read. */
typedef void (*frame_check)(const char *f, size_t flen, size_t i, const void *userdata);

static size_t pump_frames(ProtoOutbuf *o, const int sv[2], ProtoDecoder *d, size_t want,
                          size_t read_size, frame_check check, const void *userdata,
                          int *partial)
{
        size_t got = 0;
        int r;

        assert_true(read_size <= 8192);
        while ((r = proto_outbuf_flush(o, sv[0])) == 0 || got < want) {
                char buf[8192];
                const char *f;
                size_t flen;
                ssize_t n;

                assert_true(r >= 0);
                *partial += r == 0;
                n = read(sv[1], buf, read_size);
                if (n < 0) {
                        assert_int_equal(errno, EAGAIN);
                        continue;
                }
                for (ssize_t off = 0; off < n;) {
                        int fed = proto_decoder_feed(d, buf + off, (size_t)(n - off));

                        assert_true(fed >= 0);
                        off += fed;
                        while (proto_decoder_next(d, &f, &flen) == 1)
                                check(f, flen, got++, userdata);
                }
        }
        return got;
}

/* Frame i of test_outbuf_partial_writes: *size bytes of 'a' + i. */
static void check_letters(const char *f, size_t flen, size_t i, const void *userdata)
{
        size_t size = *(const size_t *)userdata;

        assert_int_equal(flen, size);
        assert_true(f[0] == 'a' + (int)i && f[size - 1] == 'a' + (int)i);
}

static void test_outbuf_partial_writes(void **state)
{
        enum { N = 20, SIZE = 50000 };
        int sv[2], sndbuf = 4096;
        char *payload = malloc(SIZE);
        ProtoOutbuf o;
        ProtoDecoder d;
        size_t got = 0;
        int partial = 0;

        assert_non_null(payload);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
        set_nonblock(sv[0]);
        set_nonblock(sv[1]);

        proto_outbuf_init(&o, PROTO_OUTBUF_MAX_DEFAULT);
        proto_decoder_init(&d, SIZE);
        for (int i = 0; i < N; i++) {
                memset(payload, 'a' + i, SIZE);
                assert_int_equal(proto_outbuf_append(&o, payload, SIZE, SIZE), 0);
        }
        assert_int_equal(proto_outbuf_queued(&o), N * (SIZE + 4));

        got = pump_frames(&o, sv, &d, N, 3000, check_letters, &(size_t){SIZE}, &partial);
        assert_int_equal(got, N);
        assert_true(partial > 0);
        assert_int_equal(proto_outbuf_queued(&o), 0);
        /* The large idle queue was released. */
        assert_null(o.buf);

        /* A vanished peer is an error, not a SIGPIPE. */
        assert_int_equal(proto_outbuf_append(&o, "{}", 2, 10), 0);
        close(sv[1]);
        assert_int_equal(proto_outbuf_flush(&o, sv[0]), -EPIPE);

        proto_outbuf_done(&o);
        proto_decoder_done(&d);
        close(sv[0]);
        free(payload);
}

/* Frames with shared bodies (proto_outbuf_append_shared) interleaved with
 * plain ones leave in order through a small socket buffer; a queue with
 * every piece slot taken copies the next body; the blobs are referenced
 * until sent, and released by proto_outbuf_done() when not. */
/* Frame i of test_outbuf_shared: "[]", then "<k" body "k>" and "{}" in
 * turns, the body being the blob `userdata`. */
static void check_shared(const char *f, size_t flen, size_t i, const void *userdata)
{
        const ProtoBlob *big = userdata;
        char want[24];

        if (i == 0) {
                assert_int_equal(flen, 2);
                assert_memory_equal(f, "[]", 2);
        } else if (i % 2 == 0) {
                assert_int_equal(flen, 2);
                assert_memory_equal(f, "{}", 2);
        } else {
                snprintf(want, sizeof want, "<%d", (int)(i / 2 % 10));
                assert_int_equal(flen, 2 + big->len + 2);
                assert_memory_equal(f, want, 2);
                assert_memory_equal(f + 2, big->data, big->len);
                snprintf(want, sizeof want, "%d>", (int)(i / 2 % 10));
                assert_memory_equal(f + 2 + big->len, want, 2);
        }
}

static void test_outbuf_shared(void **state)
{
        enum { BODY = 70000, N = 7 };
        ProtoBlob *body = proto_blob_new(NULL, 0), *big;
        int sv[2], sndbuf = 4096, partial = 0;
        ProtoOutbuf o;
        ProtoDecoder d;
        size_t got = 0;

        assert_non_null(body);
        big = malloc(sizeof *big + BODY);
        assert_non_null(big);
        *big = (ProtoBlob){.ref = 1, .len = BODY};
        for (size_t i = 0; i < BODY; i++)
                big->data[i] = (char)('a' + i % 26);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
        set_nonblock(sv[0]);
        set_nonblock(sv[1]);
        proto_outbuf_init(&o, PROTO_OUTBUF_MAX_DEFAULT);
        proto_decoder_init(&d, GK_PROTO_MAX_REPLY);
        /* An empty body, then N big ones (more than the piece slots) with
         * a plain frame after each. */
        assert_int_equal(proto_outbuf_append_shared(&o, "[", 1, body, "]", 1, 100), 0);
        for (int i = 0; i < N; i++) {
                char head[8], tail[8];

                snprintf(head, sizeof head, "<%d", i);
                snprintf(tail, sizeof tail, "%d>", i);
                assert_int_equal(proto_outbuf_append_shared(&o, head, strlen(head), big, tail,
                                                            strlen(tail), GK_PROTO_MAX_REPLY),
                                 0);
                assert_int_equal(proto_outbuf_append(&o, "{}", 2, 10), 0);
        }
        assert_int_equal(big->ref, 1 + PROTO_OUTBUF_PIECES);
        assert_int_equal(proto_outbuf_queued(&o), 6 + N * (4 + 4 + BODY + 6));
        /* Too large for the frame limit, and for the cap: nothing queued. */
        assert_int_equal(proto_outbuf_append_shared(&o, "x", 1, big, NULL, 0, BODY), -EMSGSIZE);
        assert_int_equal(big->ref, 1 + PROTO_OUTBUF_PIECES);

        got = pump_frames(&o, sv, &d, 1 + 2 * N, 5000, check_shared, big, &partial);
        assert_int_equal(got, 1 + 2 * N);
        assert_true(partial > 0);
        assert_int_equal(proto_outbuf_queued(&o), 0);
        assert_int_equal(big->ref, 1);
        assert_int_equal(body->ref, 1);

        /* Pieces never sent are released with the queue. */
        assert_int_equal(proto_outbuf_append_shared(&o, "a", 1, big, "b", 1, GK_PROTO_MAX_REPLY),
                         0);
        assert_int_equal(big->ref, 2);
        proto_outbuf_done(&o);
        assert_int_equal(big->ref, 1);
        proto_decoder_done(&d);
        proto_blob_unref(big);
        proto_blob_unref(body);
        close(sv[0]);
        close(sv[1]);
}

/* proto_ok_reply_prefix() is how proto_dump() begins an ok reply; the
 * tail check takes what proto_scan_ok_reply() takes after the result. */
static void test_ok_reply_prefix_and_tail(void **state)
{
        static const uint32_t ids[] = {0, 1, 42, 4000000000u, UINT32_MAX};
        static const struct {
                const char *tail;
                bool ok;
        } tails[] = {
            {"}", true},          {" } \n", true},       {"", false},
            {"}x", false},        {",}", false},         {", }", false},
            {",\"x\":1}", true},  {",\"x\":[1,{}]} ", true},
            {",\"x\":1,\"x\":2}", false},                {",\"id\":2}", false},
            {",\"event\":\"a\"}", false},                {",\"a\":1,\"b\":2,\"c\":3}", true},
            {",\"a\":1,\"b\":2,\"c\":3,\"d\":4}", false}, {",\"\\u0069d\":2}", false},
            {",\"x\":}", false},  {"]", false},
        };

        for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
                _cleanup_free_ char *dump = NULL;
                char prefix[PROTO_OK_PREFIX_MAX];
                json_t *m = proto_reply_ok(ids[i], NULL);
                size_t len, n;

                assert_non_null(m);
                assert_int_equal(proto_dump(m, GK_PROTO_MAX_REPLY, &dump, &len), 0);
                json_decref(m);
                n = proto_ok_reply_prefix(ids[i], prefix);
                assert_int_equal(n, strlen(prefix));
                assert_int_equal(len, n + 3);
                assert_memory_equal(dump, prefix, n);
                assert_string_equal(dump + n, "{}}");
        }
        for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
                /* The verdict of proto_scan_ok_reply() on the whole reply. */
                char frame[256];
                uint32_t id;
                const char *res;
                size_t res_len;
                int n = snprintf(frame, sizeof frame, "{\"v\":1,\"id\":7,\"ok\":true,\"result\":{}%s",
                                 tails[i].tail);

                assert_int_equal(proto_scan_ok_reply(frame, (size_t)n, &id, &res, &res_len),
                                 tails[i].ok);
                /* And of proto_index_ok_reply() on its index, where it builds. */
                {
                        JsonIndex *ix = NULL;
                        JsonIndexRef ref;

                        if (json_index_build(frame, (size_t)n, PROTO_MAX_DEPTH, &ix) == 0)
                                assert_int_equal(proto_index_ok_reply(ix, &id, &ref), tails[i].ok);
                        else
                                assert_false(tails[i].ok);
                        json_index_free(ix);
                }
                assert_int_equal(proto_ok_reply_tail_ok(tails[i].tail, strlen(tails[i].tail)),
                                 tails[i].ok);
        }
}

static void test_outbuf_cap(void **state)
{
        int sv[2];
        ProtoOutbuf o;
        char fill[50];
        json_t *big;

        memset(fill, 'x', sizeof fill);
        proto_outbuf_init(&o, 110);
        assert_int_equal(proto_outbuf_append(&o, fill, 50, 100), 0);
        assert_int_equal(proto_outbuf_append(&o, fill, 50, 100), 0);
        /* 108 queued: the next frame would pass the cap; nothing is queued. */
        assert_int_equal(proto_outbuf_append(&o, fill, 1, 100), -ENOBUFS);
        assert_int_equal(proto_outbuf_queued(&o), 108);
        assert_int_equal(proto_outbuf_append(&o, fill, 0, 100), -EMSGSIZE);
        assert_int_equal(proto_outbuf_append(&o, fill, 50, 49), -EMSGSIZE);

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(proto_outbuf_flush(&o, sv[0]), 1);
        assert_int_equal(proto_outbuf_queued(&o), 0);
        assert_int_equal(proto_outbuf_append(&o, fill, 50, 100), 0);

        big =
            json_pack("{s:s}", "k", "012345678901234567890123456789012345678901234567890123456789");
        assert_int_equal(proto_outbuf_append_msg(&o, big, 100), -ENOBUFS);
        assert_int_equal(proto_outbuf_append_msg(&o, big, 20), -EMSGSIZE);
        json_decref(big);

        proto_outbuf_done(&o);
        close(sv[0]);
        close(sv[1]);
}

/* ---- requests --------------------------------------------------------------------------- */

typedef struct RequestCase {
        const char *json;
        size_t len; /* 0: strlen(json) */
        int r;
        int code;
        int64_t id;
} RequestCase;

static void test_parse_request_valid(void **state)
{
        ProtoRequest req;
        ProtoError err;
        const char *j = "{\"op\":\"lease.acquire\",\"id\":4294967295,\"v\":1,"
                        "\"args\":{\"gpus\":2},\"future\":true} \n";

        assert_int_equal(proto_parse_request(j, strlen(j), &req, &err), 0);
        assert_int_equal(req.id, 4294967295u);
        assert_string_equal(req.op, "lease.acquire");
        assert_non_null(req.args);
        assert_int_equal(json_integer_value(json_object_get(req.args, "gpus")), 2);
        proto_request_done(&req);
        proto_request_done(&req);
        proto_request_done(NULL);

        j = "{\"v\":1,\"id\":0,\"op\":\"ping\"}";
        assert_int_equal(proto_parse_request(j, strlen(j), &req, &err), 0);
        assert_int_equal(req.id, 0);
        assert_null(req.args);
        proto_request_done(&req);
}

static char *nested(unsigned depth, bool in_string)
{
        /* {"v":1,"id":3,"op":"x","args": + (depth-1) objects {"a": ... } */
        size_t cap = 64 + depth * 8;
        char *s = malloc(cap), *p = s;

        assert_non_null(s);
        p += sprintf(p, "{\"v\":1,\"id\":3,\"op\":\"x\",\"args\":");
        if (in_string)
                p += sprintf(p, "{\"s\":\"");
        for (unsigned i = 1; i < depth; i++)
                p += sprintf(p, in_string ? "[{" : "{\"a\":");
        if (in_string)
                p += sprintf(p, "\"}");
        else {
                p += sprintf(p, "1");
                for (unsigned i = 1; i < depth; i++)
                        *p++ = '}';
        }
        *p++ = '}';
        *p = '\0';
        return s;
}

static void test_parse_request_errors(void **state)
{
        char op65[128], op64[128], big_ok[64];
        static char nul_in_string[] = "{\"v\":1,\"id\":3,\"op\":\"pi\0ng\"}";
        static char nul_after[] = "{\"v\":1,\"id\":3,\"op\":\"ping\"}\0";
        const RequestCase cases[] = {
            {"{\"id\":3,\"op\":\"ping\"}", 0, -EBADMSG, GK_E_MALFORMED, 3},
            {"{\"v\":1,\"op\":\"ping\"}", 0, -EBADMSG, GK_E_MALFORMED, -1},
            {"{\"v\":1,\"id\":3}", 0, -EBADMSG, GK_E_MALFORMED, 3},
            {"{\"v\":1,\"id\":\"3\",\"op\":\"ping\"}", 0, -EBADMSG, GK_E_MALFORMED, -1},
            {"{\"v\":1,\"id\":-1,\"op\":\"ping\"}", 0, -EBADMSG, GK_E_MALFORMED, -1},
            {"{\"v\":1,\"id\":4294967296,\"op\":\"ping\"}", 0, -EBADMSG, GK_E_MALFORMED, -1},
            {"{\"v\":1,\"id\":1.0,\"op\":\"ping\"}", 0, -EBADMSG, GK_E_MALFORMED, -1},
            {"{\"v\":1,\"id\":null,\"op\":\"ping\"}", 0, -EBADMSG, GK_E_MALFORMED, -1},
            {"{\"v\":\"1\",\"id\":3,\"op\":\"ping\"}", 0, -EBADMSG, GK_E_MALFORMED, 3},
            {"{\"v\":1.5,\"id\":3,\"op\":\"ping\"}", 0, -EBADMSG, GK_E_MALFORMED, 3},
            {"{\"v\":2,\"id\":3,\"op\":\"ping\"}", 0, -EPROTONOSUPPORT, GK_E_VERSION, 3},
            {"{\"v\":0,\"id\":3}", 0, -EPROTONOSUPPORT, GK_E_VERSION, 3},
            {"{\"v\":1,\"id\":3,\"op\":5}", 0, -EBADMSG, GK_E_MALFORMED, 3},
            {"{\"v\":1,\"id\":3,\"op\":\"\"}", 0, -EBADMSG, GK_E_MALFORMED, 3},
            {"{\"v\":1,\"id\":3,\"op\":\"Ping\"}", 0, -EBADMSG, GK_E_MALFORMED, 3},
            {"{\"v\":1,\"id\":3,\"op\":\"a b\"}", 0, -EBADMSG, GK_E_MALFORMED, 3},
            {"{\"v\":1,\"id\":3,\"op\":\"a/b\"}", 0, -EBADMSG, GK_E_MALFORMED, 3},
            {"{\"v\":1,\"id\":3,\"op\":\"p\\u0000\"}", 0, -EBADMSG, GK_E_MALFORMED, -1},
            {op65, 0, -EBADMSG, GK_E_MALFORMED, 3},
            {op64, 0, 0, 0, 3},
            {"{\"v\":1,\"id\":3,\"op\":\"ping\",\"args\":[]}", 0, -EBADMSG, GK_E_MALFORMED, 3},
            {"{\"v\":1,\"id\":3,\"op\":\"ping\",\"args\":null}", 0, -EBADMSG, GK_E_MALFORMED, 3},
            {"{\"v\":1,\"id\":3,\"op\":\"ping\",\"args\":\"x\"}", 0, -EBADMSG, GK_E_MALFORMED, 3},
            {"{\"v\":1,\"id\":3,\"id\":4,\"op\":\"ping\"}", 0, -EBADMSG, GK_E_MALFORMED, -1},
            {"{\"v\":1,\"id\":3,\"op\":\"ping\",\"args\":{\"a\":1,\"a\":2}}", 0, -EBADMSG,
             GK_E_MALFORMED, -1},
            {"{\"v\":1,\"id\":3,\"op\":\"p\xff\"}", 0, -EBADMSG, GK_E_MALFORMED, -1},
            {"{\"v\":1,\"id\":3,\"op\":\"ping\",\"x\":\"\xc3\x28\"}", 0, -EBADMSG, GK_E_MALFORMED,
             -1},
            {"{\"v\":1,\"id\":3,\"op\":\"ping\",\"x\":\"\xed\xa0\x80\"}", 0, -EBADMSG,
             GK_E_MALFORMED, -1},
            {"{\"v\":1,\"id\":3,\"op\":\"ping\"} x", 0, -EBADMSG, GK_E_MALFORMED, -1},
            {"{\"v\":1,\"id\":3,\"op\":\"ping\"}{}", 0, -EBADMSG, GK_E_MALFORMED, -1},
            {"{\"v\":1,\"id\":3,\"op\":\"ping\"", 0, -EBADMSG, GK_E_MALFORMED, -1},
            {nul_in_string, sizeof nul_in_string - 1, -EBADMSG, GK_E_MALFORMED, -1},
            {nul_after, sizeof nul_after - 1, -EBADMSG, GK_E_MALFORMED, -1},
            {"[1,2]", 0, -EBADMSG, GK_E_MALFORMED, -1},
            {"42", 0, -EBADMSG, GK_E_MALFORMED, -1},
            {"\"s\"", 0, -EBADMSG, GK_E_MALFORMED, -1},
            {"   ", 0, -EBADMSG, GK_E_MALFORMED, -1},
            {"\x01\x02\x1b[31m", 0, -EBADMSG, GK_E_MALFORMED, -1},
            {big_ok, GK_PROTO_MAX_REQUEST + 1, -EMSGSIZE, GK_E_TOO_LARGE, -1},
        };

        snprintf(op64, sizeof op64, "{\"v\":1,\"id\":3,\"op\":\"%064d\"}", 0);
        snprintf(op65, sizeof op65, "{\"v\":1,\"id\":3,\"op\":\"%065d\"}", 0);
        strcpy(big_ok, "{}");

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                const RequestCase *c = &cases[i];
                size_t len = c->len ? c->len : strlen(c->json);
                ProtoRequest req = {.id = 77};
                ProtoError err;
                json_t *reply;
                char *s;
                size_t slen;
                int r;

                memset(&err, 0xAA, sizeof err);
                r = proto_parse_request(c->json, len, &req, &err);
                if (r != c->r)
                        fail_msg("case %zu: got %d, expected %d", i, r, c->r);
                if (r == 0) {
                        proto_request_done(&req);
                        continue;
                }
                assert_int_equal(req.id, 77); /* untouched */
                if (err.code != c->code || err.id != c->id)
                        fail_msg("case %zu: code %d id %lld, expected %d %lld (%s)", i, err.code,
                                 (long long)err.id, c->code, (long long)c->id, err.message);
                assert_true(strlen(err.message) > 0);

                /* Every error can go back to the peer as a valid, printable reply. */
                reply = proto_reply_from_error(&err);
                assert_non_null(reply);
                assert_int_equal(proto_dump(reply, GK_PROTO_MAX_REPLY, &s, &slen), 0);
                for (const unsigned char *p = (const unsigned char *)err.message; *p; p++)
                        assert_true(*p >= 0x20 && *p != 0x7F);
                free(s);
                json_decref(reply);
        }
}

static void test_parse_request_depth(void **state)
{
        ProtoRequest req;
        ProtoError err;
        char *s;

        /* nested(n) is n levels deep in all: the limit is accepted, one more is not. */
        s = nested(32, false);
        assert_int_equal(proto_parse_request(s, strlen(s), &req, &err), 0);
        proto_request_done(&req);
        free(s);

        s = nested(33, false);
        assert_int_equal(proto_parse_request(s, strlen(s), &req, &err), -EBADMSG);
        assert_int_equal(err.code, GK_E_MALFORMED);
        assert_non_null(strstr(err.message, "nested"));
        free(s);

        s = nested(5000, false);
        assert_int_equal(proto_parse_request(s, strlen(s), &req, &err), -EBADMSG);
        free(s);

        /* Brackets inside strings are not nesting. */
        s = nested(200, true);
        assert_int_equal(proto_parse_request(s, strlen(s), &req, &err), 0);
        proto_request_done(&req);
        free(s);

        /* An escaped quote does not end a string, an escaped backslash before
         * a quote does: the strings below hide 40 levels of brackets, and
         * the 33 levels after the last one are real. */
        char buf[512], *p = buf;
        p += sprintf(p, "{\"v\":1,\"id\":3,\"op\":\"x\",\"args\":{\"s\":\"a\\\"");
        for (unsigned i = 0; i < 40; i++)
                *p++ = '[';
        p += sprintf(p, "\\\\\",\"t\":");
        sprintf(p, "%s", "1}}");
        assert_int_equal(proto_parse_request(buf, strlen(buf), &req, &err), 0);
        proto_request_done(&req);
        p = buf + strlen(buf) - 3;
        for (unsigned i = 0; i < 31; i++)
                *p++ = '[';
        for (unsigned i = 0; i < 31; i++)
                *p++ = ']';
        sprintf(p, "%s", "}}");
        assert_int_equal(proto_parse_request(buf, strlen(buf), &req, &err), -EBADMSG);
        assert_non_null(strstr(err.message, "nested"));
}

static void test_request_new(void **state)
{
        json_t *m;
        char *s;
        size_t len;

        m = proto_request_new(9, "status", json_pack("{s:b}", "all", 1));
        assert_non_null(m);
        assert_int_equal(proto_dump(m, 1000, &s, &len), 0);
        assert_string_equal(s, "{\"v\":1,\"id\":9,\"op\":\"status\",\"args\":{\"all\":true}}");
        free(s);
        json_decref(m);

        m = proto_request_new(9, "ping", NULL);
        assert_non_null(m);
        assert_int_equal(proto_dump(m, 1000, &s, &len), 0);
        assert_string_equal(s, "{\"v\":1,\"id\":9,\"op\":\"ping\"}");
        free(s);
        json_decref(m);

        /* Invalid input: NULL, and the args reference is still consumed. */
        assert_null(proto_request_new(1, "Bad Op", json_object()));
        assert_null(proto_request_new(1, "ok", json_array()));
}

/* ---- replies and events ----------------------------------------------------------------- */

static void assert_dump(json_t *m, const char *expected)
{
        char *s;
        size_t len;

        assert_non_null(m);
        assert_int_equal(proto_dump(m, GK_PROTO_MAX_REPLY, &s, &len), 0);
        assert_string_equal(s, expected);
        free(s);
        json_decref(m);
}

static void test_replies(void **state)
{
        char long_arg[2000];

        assert_dump(proto_reply_ok(5, NULL), "{\"v\":1,\"id\":5,\"ok\":true,\"result\":{}}");
        assert_dump(proto_reply_ok(6, json_pack("{s:s}", "version", "0.1.0")),
                    "{\"v\":1,\"id\":6,\"ok\":true,\"result\":{\"version\":\"0.1.0\"}}");
        assert_dump(proto_reply_error(-1, GK_E_TOO_LARGE, "frame of %u bytes", 70000u),
                    "{\"v\":1,\"id\":null,\"ok\":false,\"error\":{\"code\":2,\"name\":"
                    "\"E_TOO_LARGE\",\"message\":\"frame of 70000 bytes\"}}");
        assert_dump(proto_reply_error(8, GK_E_UNKNOWN_OP, "no op \"%s\"", "x\n\xff"),
                    "{\"v\":1,\"id\":8,\"ok\":false,\"error\":{\"code\":3,\"name\":"
                    "\"E_UNKNOWN_OP\",\"message\":\"no op \\\"x??\\\"\"}}");
        assert_dump(proto_event("queue.position", json_pack("{s:i}", "position", 2)),
                    "{\"v\":1,\"event\":\"queue.position\",\"data\":{\"position\":2}}");
        assert_dump(proto_event("x", NULL), "{\"v\":1,\"event\":\"x\",\"data\":{}}");
        assert_null(proto_event("Bad", NULL));

        /* Long messages are cut, and still valid UTF-8 when cut inside a character. */
        memset(long_arg, 0, sizeof long_arg);
        for (size_t i = 0; i + 2 < sizeof long_arg; i += 2)
                memcpy(long_arg + i, "\xc3\xa9", 2);
        {
                json_t *m = proto_reply_error(1, GK_E_INVALID_ARGUMENT, "%s", long_arg);
                const char *msg;
                assert_non_null(m);
                msg = json_string_value(json_object_get(json_object_get(m, "error"), "message"));
                assert_non_null(msg);
                assert_int_equal(strlen(msg), PROTO_MESSAGE_MAX - 1);
                assert_int_equal(msg[PROTO_MESSAGE_MAX - 2], '?');
                json_decref(m);
        }
}

static void test_error_names(void **state)
{
        assert_string_equal(gk_error_name(GK_OK), "OK");
        assert_string_equal(gk_error_name(GK_E_MALFORMED), "E_MALFORMED");
        assert_string_equal(gk_error_name(GK_E_VERSION), "E_VERSION");
        assert_string_equal(gk_error_name(GK_E_NO_CAPACITY), "E_NO_CAPACITY");
        assert_string_equal(gk_error_name(_GK_E_MAX), "E_UNKNOWN");
        assert_string_equal(gk_error_name(-1), "E_UNKNOWN");
        assert_string_equal(gk_error_name(1000), "E_UNKNOWN");
        for (int i = 1; i < _GK_E_MAX; i++)
                assert_memory_equal(gk_error_name(i), "E_", 2);
}

static void test_parse_message(void **state)
{
        ProtoMessage m;
        const char *bad[] = {
            "{\"id\":1,\"ok\":true,\"result\":{}}",
            "{\"v\":2,\"id\":1,\"ok\":true,\"result\":{}}",
            "{\"v\":1,\"ok\":true,\"result\":{}}",
            "{\"v\":1,\"id\":null,\"ok\":true,\"result\":{}}",
            "{\"v\":1,\"id\":1,\"ok\":1,\"result\":{}}",
            "{\"v\":1,\"id\":1,\"ok\":true}",
            "{\"v\":1,\"id\":1,\"ok\":true,\"result\":[]}",
            "{\"v\":1,\"id\":-4,\"ok\":true,\"result\":{}}",
            "{\"v\":1,\"id\":1,\"ok\":false}",
            "{\"v\":1,\"id\":1,\"ok\":false,\"error\":{\"code\":0,\"message\":\"x\"}}",
            "{\"v\":1,\"id\":1,\"ok\":false,\"error\":{\"code\":-3,\"message\":\"x\"}}",
            "{\"v\":1,\"id\":1,\"ok\":false,\"error\":{\"code\":3}}",
            "{\"v\":1,\"id\":1,\"ok\":false,\"error\":{\"code\":3000000000,\"message\":\"\"}}",
            "{\"v\":1,\"event\":\"Bad\"}",
            "{\"v\":1,\"event\":7}",
            "{\"v\":1,\"event\":\"x\",\"data\":[]}",
            "[]",
            "{\"v\":1,\"id\":1,\"ok\":true,\"result\":{}",
        };
        char long_reply[2000], *p;

        assert_int_equal(
            proto_parse_message("{\"v\":1,\"id\":4,\"ok\":true,\"result\":{\"a\":1}}", 41, &m), 0);
        assert_false(m.is_event);
        assert_true(m.ok);
        assert_int_equal(m.id, 4);
        assert_int_equal(json_integer_value(json_object_get(m.result, "a")), 1);
        proto_message_done(&m);

        p = "{\"v\":1,\"id\":null,\"ok\":false,\"error\":{\"code\":42,\"name\":\"E_NEW\","
            "\"message\":\"a\\u001b[2Jb\"}}";
        assert_int_equal(proto_parse_message(p, strlen(p), &m), 0);
        assert_false(m.ok);
        assert_int_equal(m.id, -1);
        assert_int_equal(m.code, 42);
        assert_string_equal(m.message, "a?[2Jb");
        proto_message_done(&m);

        p = "{\"v\":1,\"event\":\"queue.position\"}";
        assert_int_equal(proto_parse_message(p, strlen(p), &m), 0);
        assert_true(m.is_event);
        assert_string_equal(m.event, "queue.position");
        assert_true(json_is_object(m.data));
        proto_message_done(&m);

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                if (proto_parse_message(bad[i], strlen(bad[i]), &m) != -EBADMSG)
                        fail_msg("accepted bad message %zu: %s", i, bad[i]);

        /* A message longer than the buffer is cut at a character boundary. */
        p = long_reply +
            sprintf(long_reply,
                    "{\"v\":1,\"id\":1,\"ok\":false,\"error\":{\"code\":6,\"message\":\"xy");
        for (int i = 0; i < 600; i++)
                p += sprintf(p, "\xe2\x82\xac");
        sprintf(p, "\"}}");
        assert_int_equal(proto_parse_message(long_reply, strlen(long_reply), &m), 0);
        assert_int_equal(strlen(m.message), 2 + 169 * 3);
        {
                json_t *s = json_string(m.message);
                assert_non_null(s);
                json_decref(s);
        }
        proto_message_done(&m);
}

/* ---- client ----------------------------------------------------------------------------- */

typedef struct Server {
        char dir[64];
        char path[128];
        int listen_fd;
        int fd; /* the accepted connection, the daemon's end */
} Server;

static Server *server_start(gk_client **ret_client)
{
        Server *s = calloc(1, sizeof *s);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        assert_non_null(s);
        strcpy(s->dir, "/tmp/gk-test-proto-XXXXXX");
        assert_non_null(mkdtemp(s->dir));
        snprintf(s->path, sizeof s->path, "%s/sock", s->dir);
        strcpy(sa.sun_path, s->path);
        s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(s->listen_fd >= 0);
        assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
        assert_int_equal(listen(s->listen_fd, 4), 0);
        assert_int_equal(gk_client_connect(s->path, ret_client), 0);
        s->fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        assert_true(s->fd >= 0);
        return s;
}

static void server_stop(Server *s)
{
        if (s->fd >= 0)
                close(s->fd);
        close(s->listen_fd);
        unlink(s->path);
        rmdir(s->dir);
        free(s);
}

static void write_all(int fd, const void *buf, size_t len)
{
        const char *p = buf;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                assert_true(n > 0);
                p += n;
                len -= (size_t)n;
        }
}

static void server_send(Server *s, const char *json)
{
        size_t len;
        char *f = frame_of(json, strlen(json), &len);

        write_all(s->fd, f, len);
        free(f);
}

/* Reads the next request the client sent and checks it parses. */
static void server_expect(Server *s, uint32_t id, const char *op)
{
        ProtoDecoder d;
        ProtoRequest req;
        ProtoError err;
        const char *f;
        size_t flen;
        int r;

        proto_decoder_init(&d, GK_PROTO_MAX_REQUEST);
        while ((r = proto_decoder_next(&d, &f, &flen)) == 0) {
                /* One byte at a time, so no byte of a later request is consumed here. */
                char c;
                assert_int_equal(read(s->fd, &c, 1), 1);
                assert_int_equal(proto_decoder_feed(&d, &c, 1), 1);
        }
        assert_int_equal(r, 1);
        assert_int_equal(proto_parse_request(f, flen, &req, &err), 0);
        assert_int_equal(req.id, id);
        assert_string_equal(req.op, op);
        proto_request_done(&req);
        proto_decoder_done(&d);
}

static void test_client_call(void **state)
{
        gk_client *c;
        Server *s = server_start(&c);
        json_t *result = NULL;
        gk_call_error err;

        server_send(
            s, "{\"v\":1,\"id\":1,\"ok\":true,\"result\":{\"version\":\"0.1.0\",\"protocol\":1}}");
        assert_int_equal(gk_client_call(c, "ping", NULL, &result, &err), 0);
        assert_string_equal(json_string_value(json_object_get(result, "version")), "0.1.0");
        json_decref(result);
        server_expect(s, 1, "ping");

        server_send(s, "{\"v\":1,\"id\":2,\"ok\":false,\"error\":{\"code\":5,\"name\":"
                       "\"E_PERMISSION\",\"message\":\"only root may do that\"}}");
        result = NULL;
        assert_int_equal(
            gk_client_call(c, "lease.release", json_pack("{s:i}", "lease", 3), &result, &err),
            GK_E_PERMISSION);
        assert_null(result);
        assert_int_equal(err.code, GK_E_PERMISSION);
        assert_string_equal(err.message, "only root may do that");
        server_expect(s, 2, "lease.release");

        /* An error reply without an id answers the request in flight. */
        server_send(
            s, "{\"v\":1,\"id\":null,\"ok\":false,\"error\":{\"code\":1,\"message\":\"bad\"}}");
        assert_int_equal(gk_client_call(c, "status", NULL, NULL, NULL), GK_E_MALFORMED);
        server_expect(s, 3, "status");

        /* Bad calls are refused locally and leave the connection usable. */
        assert_int_equal(gk_client_call(c, "Not An Op", json_object(), NULL, NULL), -EINVAL);
        assert_int_equal(gk_client_call(c, "ping", json_array(), NULL, NULL), -EINVAL);
        {
                char *big = malloc(GK_PROTO_MAX_REQUEST + 1);
                assert_non_null(big);
                memset(big, 'a', GK_PROTO_MAX_REQUEST);
                big[GK_PROTO_MAX_REQUEST] = '\0';
                assert_int_equal(
                    gk_client_call(c, "ping", json_pack("{s:s}", "x", big), NULL, NULL), -EMSGSIZE);
                free(big);
        }
        server_send(s, "{\"v\":1,\"id\":5,\"ok\":true,\"result\":{}}");
        assert_int_equal(gk_client_call(c, "ping", NULL, NULL, NULL), 0);
        server_expect(s, 5, "ping");

        gk_client_free(c);
        server_stop(s);
}

typedef struct EventLog {
        int n;
        char names[4][PROTO_NAME_MAX + 1];
        json_int_t positions[4];
} EventLog;

static void on_event(const char *event, json_t *data, void *userdata)
{
        EventLog *log = userdata;

        assert_true(log->n < 4);
        strcpy(log->names[log->n], event);
        log->positions[log->n] = json_integer_value(json_object_get(data, "position"));
        log->n++;
}

static void test_client_events(void **state)
{
        gk_client *c;
        Server *s = server_start(&c);
        EventLog log = {0};
        json_t *result;

        gk_client_set_event_handler(c, on_event, &log);
        server_send(s, "{\"v\":1,\"event\":\"queue.position\",\"data\":{\"position\":2}}");
        server_send(s, "{\"v\":1,\"event\":\"queue.position\",\"data\":{\"position\":1}}");
        server_send(s, "{\"v\":1,\"id\":1,\"ok\":true,\"result\":{\"lease\":7}}");
        assert_int_equal(gk_client_call(c, "lease.acquire", NULL, &result, NULL), 0);
        assert_int_equal(log.n, 2);
        assert_string_equal(log.names[0], "queue.position");
        assert_int_equal(log.positions[0], 2);
        assert_int_equal(log.positions[1], 1);
        assert_int_equal(json_integer_value(json_object_get(result, "lease")), 7);
        json_decref(result);

        /* Without a handler, events are skipped. */
        gk_client_set_event_handler(c, NULL, NULL);
        server_send(s, "{\"v\":1,\"event\":\"x\"}");
        server_send(s, "{\"v\":1,\"id\":2,\"ok\":true,\"result\":{}}");
        assert_int_equal(gk_client_call(c, "ping", NULL, NULL, NULL), 0);
        assert_int_equal(log.n, 2);

        gk_client_free(c);
        server_stop(s);
}

static void test_client_mismatched_id(void **state)
{
        gk_client *c;
        Server *s = server_start(&c);

        server_send(s, "{\"v\":1,\"id\":99,\"ok\":true,\"result\":{}}");
        server_send(s, "{\"v\":1,\"id\":2,\"ok\":true,\"result\":{}}");
        assert_int_equal(gk_client_call(c, "ping", NULL, NULL, NULL), -EBADMSG);
        /* Sticky: the stream is out of step. */
        assert_int_equal(gk_client_call(c, "ping", NULL, NULL, NULL), -EBADMSG);
        gk_client_free(c);
        server_stop(s);
}

static void test_client_bad_replies(void **state)
{
        static const char *const replies[] = {
            "not json",
            "{\"v\":1,\"id\":1}",
            "{\"v\":1,\"id\":1,\"ok\":true,\"result\":{},\"x\":\"\xff\"}",
        };

        for (size_t i = 0; i < sizeof replies / sizeof replies[0]; i++) {
                gk_client *c;
                Server *s = server_start(&c);

                server_send(s, replies[i]);
                assert_int_equal(gk_client_call(c, "ping", NULL, NULL, NULL), -EBADMSG);
                gk_client_free(c);
                server_stop(s);
        }

        /* Header of a zero-length frame, and one above the reply limit. */
        for (int i = 0; i < 2; i++) {
                gk_client *c;
                Server *s = server_start(&c);
                unsigned char hdr[4];

                put_header(hdr, i == 0 ? 0 : GK_PROTO_MAX_REPLY + 1);
                write_all(s->fd, hdr, 4);
                assert_int_equal(gk_client_call(c, "ping", NULL, NULL, NULL), -EBADMSG);
                gk_client_free(c);
                server_stop(s);
        }
}

/* A fast path's result against gk_client_call()'s `want`: taken (`text`,
 * the result's JSON, read with jansson's `flags`) exactly when `expected`;
 * else the tree it returned. */
static void check_fast_path(size_t i, const char *path, bool expected, const char *text,
                            size_t len, size_t flags, json_t *tree, json_t *want)
{
        if (expected != (text != NULL))
                fail_msg("case %zu: %s path %s", i, path, text ? "taken" : "not taken");
        if (text) {
                json_t *parsed = json_loadb(text, len, flags, NULL);

                assert_null(tree);
                assert_non_null(parsed);
                assert_true(json_equal(parsed, want));
                json_decref(parsed);
        } else
                assert_true(json_equal(want, tree));
}

/* gk_client_call_text() and gk_client_call_index() give every reply the
 * verdict gk_client_call() gives it: the same return value, error, events
 * and stickiness, and the same result, as text or an index where the reply
 * is plainly ok. */
static void test_client_call_text(void **state)
{
        static const struct {
                const char *reply;
                bool text; /* the fast path takes it */
        } cases[] = {
            {"{\"v\":1,\"id\":1,\"ok\":true,\"result\":{\"a\":[1,{\"b\":\"\\u00e9\"}]}}", true},
            {" { \"result\" : { } , \"ok\" : true , \"id\" : 1 , \"v\" : 1 } ", true},
            {"{\"\\u0076\":1,\"i\\u0064\":1,\"ok\":true,\"result\":{},\"extra\":[null]}", true},
            {"{\"v\":1,\"id\":1,\"ok\":true,\"result\":{},\"error\":{}}", true},
            {"{\"v\":1,\"id\":1,\"ok\":true,\"result\":{},\"v\":1}", false},
            {"{\"v\":1,\"id\":1,\"ok\":true,\"result\":{},\"x\":1,\"x\":2}", false},
            {"{\"v\":1,\"id\":1,\"ok\":true,\"result\":[]}", false},
            {"{\"v\":1,\"id\":1,\"ok\":true}", false},
            {"{\"v\":1.0,\"id\":1,\"ok\":true,\"result\":{}}", false},
            {"{\"v\":2,\"id\":1,\"ok\":true,\"result\":{}}", false},
            {"{\"id\":1,\"ok\":true,\"result\":{}}", false},
            {"{\"v\":1,\"id\":-0,\"ok\":true,\"result\":{}}", false},
            {"{\"v\":1,\"id\":1.0,\"ok\":true,\"result\":{}}", false},
            {"{\"v\":1,\"id\":4294967297,\"ok\":true,\"result\":{}}", false},
            {"{\"v\":1,\"id\":null,\"ok\":true,\"result\":{}}", false},
            {"{\"v\":1,\"id\":2,\"ok\":true,\"result\":{}}", false},
            {"{\"v\":1,\"id\":1,\"ok\":1,\"result\":{}}", false},
            {"{\"v\":1,\"id\":1,\"ok\":true,\"result\":{\"s\":\"\xff\"}}", false},
            {"{\"v\":1,\"id\":1,\"ok\":true,\"result\":{\"s\":\"\\u0000\"}}", false},
            {"{\"v\":1,\"id\":1,\"ok\":true,\"result\":{}} x", false},
            {"{\"v\":1,\"id\":1,\"ok\":true,\"result\":{\"n\":1e999}}", false},
            {"{\"v\":1,\"id\":1,\"ok\":true,\"result\":"
             "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}",
             false},
            {"{\"v\":1,\"id\":1,\"ok\":false,\"error\":{\"code\":5,\"message\":\"no\"}}", false},
            {"{\"v\":1,\"id\":null,\"ok\":false,\"error\":{\"code\":2,\"message\":\"big\"}}", false},
            {"{\"v\":1,\"event\":\"queue.position\",\"data\":{\"position\":3},\"id\":1,\"ok\":true,"
             "\"result\":{}}",
             false},
            {"not json", false},
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                gk_client *c1, *c2, *c3;
                Server *s1 = server_start(&c1), *s2 = server_start(&c2), *s3 = server_start(&c3);
                EventLog log1 = {0}, log2 = {0}, log3 = {0};
                gk_call_error e1 = {0}, e2 = {0}, e3 = {0};
                json_t *r1 = NULL, *r2 = NULL, *r3 = NULL;
                const char *text = (const char *)&text;
                JsonIndex *ix = NULL;
                JsonIndexRef ref = 0;
                size_t len = 0;
                int v1, v2, v3;

                gk_client_set_event_handler(c1, on_event, &log1);
                gk_client_set_event_handler(c2, on_event, &log2);
                gk_client_set_event_handler(c3, on_event, &log3);
                /* An event first, then the case, then a reply for a second call. */
                server_send(s1, "{\"v\":1,\"event\":\"queue.position\",\"data\":{\"position\":2}}");
                server_send(s2, "{\"v\":1,\"event\":\"queue.position\",\"data\":{\"position\":2}}");
                server_send(s3, "{\"v\":1,\"event\":\"queue.position\",\"data\":{\"position\":2}}");
                server_send(s1, cases[i].reply);
                server_send(s2, cases[i].reply);
                server_send(s3, cases[i].reply);
                server_send(s1, "{\"v\":1,\"id\":2,\"ok\":true,\"result\":{}}");
                server_send(s2, "{\"v\":1,\"id\":2,\"ok\":true,\"result\":{}}");
                server_send(s3, "{\"v\":1,\"id\":2,\"ok\":true,\"result\":{}}");

                v1 = gk_client_call(c1, "ping", NULL, &r1, &e1);
                v2 = gk_client_call_text(c2, "ping", NULL, &text, &len, &r2, &e2);
                v3 = gk_client_call_index(c3, "ping", NULL, &ix, &ref, &r3, &e3);
                if (v1 != v2 || v1 != v3)
                        fail_msg("case %zu: call %d, call_text %d, call_index %d", i, v1, v2, v3);
                assert_int_equal(log1.n, log2.n);
                assert_int_equal(log1.n, log3.n);
                assert_int_equal(e1.code, e2.code);
                assert_int_equal(e1.code, e3.code);
                assert_string_equal(e1.message, e2.message);
                assert_string_equal(e1.message, e3.message);
                if (v1 == 0) {
                        size_t left = 0;
                        const char *at = ix ? json_index_container_text(ix, ref, &left) : NULL;

                        check_fast_path(i, "text", cases[i].text, text, len, JSON_DECODE_ANY, r2, r1);
                        check_fast_path(i, "index", cases[i].text, at, left, JSON_DISABLE_EOF_CHECK,
                                        r3, r1);
                } else {
                        assert_false(cases[i].text);
                        assert_null(ix);
                }
                json_index_free(ix);
                /* The second call fares the same (sticky errors stay). */
                v1 = gk_client_call(c1, "ping", NULL, NULL, NULL);
                assert_int_equal(v1, gk_client_call_text(c2, "ping", NULL, &text, &len, NULL, NULL));
                assert_int_equal(v1, gk_client_call_index(c3, "ping", NULL, &ix, &ref, NULL, NULL));
                json_index_free(ix);
                json_decref(r1);
                json_decref(r2);
                json_decref(r3);
                gk_client_free(c1);
                gk_client_free(c2);
                gk_client_free(c3);
                server_stop(s1);
                server_stop(s2);
                server_stop(s3);
        }

        /* The one difference (proto.h): a key twice inside the result. */
        {
                gk_client *c;
                Server *s = server_start(&c);
                const char *text = NULL;
                size_t len = 0;

                server_send(s, "{\"v\":1,\"id\":1,\"ok\":true,\"result\":{\"x\":1,\"x\":2}}");
                assert_int_equal(gk_client_call_text(c, "ping", NULL, &text, &len, NULL, NULL), 0);
                assert_non_null(text);
                assert_int_equal(len, strlen("{\"x\":1,\"x\":2}"));
                gk_client_free(c);
                server_stop(s);
        }
}

/* gk_client_call_write() gives every reply gk_client_call()'s verdict, and
 * what it writes (streamed, or after it from the text or tree it returned)
 * is the result as json_dumps(JSON_INDENT(2) | JSON_PRESERVE_ORDER) prints
 * it (for text as jansson writes it: json-scan.h). Replies that start as the daemon writes them are streamed, through a
 * buffer that must grow for a long string. */
static void test_client_call_write(void **state)
{
        enum { LONG = 100000 };
        static const char *const cases[] = {
            "{\"v\":1,\"id\":1,\"ok\":true,\"result\":{\"a\":[1,{\"b\":\"\xc3\xa9\"}],\"e\":{}}}",
            "{\"v\":1,\"id\":1,\"ok\":true,\"result\":{\"a\":1} \n",
            "{\"v\":1,\"id\":1,\"ok\":true,\"result\":{},\"extra\":[null]}",
            "{\"v\":1,\"id\":1,\"ok\":true,\"result\":{},\"v\":1}",
            "{\"v\":1,\"id\":1,\"ok\":true,\"result\":{},\"x\":1,\"x\":2}",
            "{\"v\":1,\"id\":1,\"ok\":true,\"result\":{\"s\":\"\xff\"}}",
            "{\"v\":1,\"id\":1,\"ok\":true,\"result\":{\"n\":1e999}}",
            "{\"v\":1,\"id\":1,\"ok\":true,\"result\":{}} x",
            "{\"v\":1,\"id\":1,\"ok\":true,\"result\":{\"a\":}}",
            "{\"v\":1,\"id\":1,\"ok\":true,\"result\":{\"a\":1}",
            " { \"result\" : { \"z\" : 1 } , \"ok\" : true , \"id\" : 1 , \"v\" : 1 } ",
            "{\"v\":1,\"id\":2,\"ok\":true,\"result\":{}}",
            "{\"v\":1,\"id\":1,\"ok\":false,\"error\":{\"code\":5,\"message\":\"no\"}}",
            NULL, /* a long string and many members: streamed */
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                _cleanup_free_ char *big = NULL, *out = NULL, *want = NULL;
                gk_client *c1, *c2;
                Server *s1 = server_start(&c1), *s2 = server_start(&c2);
                gk_call_error e1 = {0}, e2 = {0};
                json_t *r1 = NULL, *r2 = NULL;
                const char *text = NULL, *reply = cases[i];
                size_t len = 0, out_size = 0;
                FILE *f = open_memstream(&out, &out_size);
                bool written;
                int v1, v2;

                assert_non_null(f);
                if (!reply) {
                        char *p;

                        big = malloc(LONG + 100000);
                        assert_non_null(big);
                        p = big + sprintf(big, "{\"v\":1,\"id\":1,\"ok\":true,\"result\":{\"s\":\"");
                        memset(p, 'x', LONG);
                        p += LONG;
                        p += sprintf(p, "\"");
                        for (int k = 0; k < 2000; k++)
                                p += sprintf(p, ",\"k%d\":[%d,true,null,\"v\\n\"]", k, k);
                        sprintf(p, "}}");
                        reply = big;
                }
                server_send(s1, reply);
                server_send(s2, reply);
                server_send(s1, "{\"v\":1,\"id\":2,\"ok\":true,\"result\":{}}");
                server_send(s2, "{\"v\":1,\"id\":2,\"ok\":true,\"result\":{}}");

                v1 = gk_client_call(c1, "ping", NULL, &r1, &e1);
                v2 = gk_client_call_write(c2, "ping", NULL, f, &written, &text, &len, &r2, &e2);
                if (v1 != v2)
                        fail_msg("case %zu: call %d, call_write %d", i, v1, v2);
                assert_int_equal(e1.code, e2.code);
                assert_string_equal(e1.message, e2.message);
                if (v1 == 0) {
                        if (text)
                                json_scan_write_indented(f, text, len);
                        else if (!written)
                                assert_int_equal(json_dumpf(r2, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER), 0);
                        assert_int_equal(fflush(f), 0);
                        want = json_dumps(r1, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                        assert_non_null(want);
                        if (strcmp(out, want) != 0)
                                fail_msg("case %zu: written [%s] want [%s]", i, out, want);
                        /* The daemon's shape is streamed. */
                        if (!cases[i] || i <= 2)
                                assert_true(written);
                }
                /* The second call fares the same (sticky errors stay). */
                assert_int_equal(gk_client_call(c1, "ping", NULL, NULL, NULL),
                                 gk_client_call_write(c2, "ping", NULL, f, &written, &text, &len,
                                                      NULL, NULL));
                fclose(f);
                json_decref(r1);
                json_decref(r2);
                gk_client_free(c1);
                gk_client_free(c2);
                server_stop(s1);
                server_stop(s2);
        }
}

static void test_client_peer_closed(void **state)
{
        gk_client *c;
        Server *s;

        /* The daemon reads the request, then goes away. */
        s = server_start(&c);
        assert_int_equal(shutdown(s->fd, SHUT_WR), 0);
        assert_int_equal(gk_client_call(c, "ping", NULL, NULL, NULL), -ECONNRESET);
        assert_int_equal(gk_client_call(c, "ping", NULL, NULL, NULL), -ECONNRESET);
        gk_client_free(c);
        server_stop(s);

        /* The daemon is gone before the request is written. */
        s = server_start(&c);
        close(s->fd);
        s->fd = -1;
        assert_int_equal(gk_client_call(c, "ping", NULL, NULL, NULL), -ECONNRESET);
        gk_client_free(c);
        server_stop(s);

        /* Half a reply, then EOF. */
        s = server_start(&c);
        write_all(s->fd, "\0\0\0\x10{\"v\":1", 10);
        assert_int_equal(shutdown(s->fd, SHUT_WR), 0);
        assert_int_equal(gk_client_call(c, "ping", NULL, NULL, NULL), -ECONNRESET);
        gk_client_free(c);
        server_stop(s);
}

static const char big_head[] = "{\"v\":1,\"id\":1,\"ok\":true,\"result\":{\"s\":\"";
static const char big_tail[] = "\"}}";

static void *send_big_reply(void *userdata)
{
        Server *s = userdata;
        const char *head = big_head, *tail = big_tail;
        size_t len = GK_PROTO_MAX_REPLY;
        char *f = malloc(PROTO_HEADER_SIZE + len);

        assert_non_null(f);
        put_header((unsigned char *)f, (uint32_t)len);
        memset(f + PROTO_HEADER_SIZE, 'z', len);
        memcpy(f + PROTO_HEADER_SIZE, head, strlen(head));
        memcpy(f + PROTO_HEADER_SIZE + len - strlen(tail), tail, strlen(tail));
        write_all(s->fd, f, PROTO_HEADER_SIZE + len);
        free(f);
        return NULL;
}

static void test_client_max_reply(void **state)
{
        gk_client *c;
        Server *s = server_start(&c);
        json_t *result;
        pthread_t t;

        assert_int_equal(pthread_create(&t, NULL, send_big_reply, s), 0);
        assert_int_equal(gk_client_call(c, "status", NULL, &result, NULL), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(strlen(json_string_value(json_object_get(result, "s"))),
                         GK_PROTO_MAX_REPLY - strlen(big_head) - strlen(big_tail));
        json_decref(result);
        gk_client_free(c);
        server_stop(s);
}

static void on_alarm(int sig)
{
        (void)sig;
}

static void *reply_late(void *userdata)
{
        Server *s = userdata;
        struct timespec ts = {.tv_nsec = 300 * 1000 * 1000};

        nanosleep(&ts, NULL);
        server_send(s, "{\"v\":1,\"id\":1,\"ok\":true,\"result\":{}}");
        return NULL;
}

static void test_client_eintr_and_cancel(void **state)
{
        struct sigaction sa = {.sa_handler = on_alarm}, old;
        struct itimerval it = {.it_interval = {.tv_usec = 20000}, .it_value = {.tv_usec = 20000}};
        struct itimerval off = {0};
        sigset_t alrm;
        gk_client *c;
        Server *s = server_start(&c);
        pthread_t t;
        int p[2];

        /* Signals without SA_RESTART interrupt the wait many times; the call still completes. */
        assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
        assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
        /* The replying thread inherits SIGALRM blocked, so the signal always
         * lands in the waiting call. */
        sigemptyset(&alrm);
        sigaddset(&alrm, SIGALRM);
        assert_int_equal(pthread_sigmask(SIG_BLOCK, &alrm, NULL), 0);
        assert_int_equal(pthread_create(&t, NULL, reply_late, s), 0);
        assert_int_equal(pthread_sigmask(SIG_UNBLOCK, &alrm, NULL), 0);
        assert_int_equal(gk_client_call(c, "ping", NULL, NULL, NULL), 0);
        assert_int_equal(setitimer(ITIMER_REAL, &off, NULL), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);

        /* The cancel descriptor stops a wait that would never end. */
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        gk_client_set_cancel_fd(c, p[0]);
        write_all(p[1], "x", 1);
        assert_int_equal(gk_client_call(c, "lease.acquire", NULL, NULL, NULL), -ECANCELED);
        assert_int_equal(gk_client_call(c, "ping", NULL, NULL, NULL), -ECANCELED);
        close(p[0]);
        close(p[1]);

        gk_client_free(c);
        server_stop(s);
}

static void test_client_connect_errors(void **state)
{
        char path[256];
        gk_client *c = NULL;

        memset(path, 'a', sizeof path);
        path[0] = '/';
        path[108] = '\0'; /* 108 bytes: no room for the NUL in sun_path */
        assert_int_equal(gk_client_connect(path, &c), -ENAMETOOLONG);
        path[108] = 'a';
        path[255] = '\0';
        assert_int_equal(gk_client_connect(path, &c), -ENAMETOOLONG);
        assert_int_equal(gk_client_connect("", &c), -EINVAL);
        assert_int_equal(gk_client_connect("/nonexistent/gpukeeper.sock", &c), -ENOENT);
        assert_null(c);
        gk_client_free(NULL);
}

static void test_socket_path(void **state)
{
        assert_string_equal(gk_socket_path("/x/y.sock"), "/x/y.sock");
        assert_int_equal(unsetenv("GPUKEEPER_SOCKET"), 0);
        assert_string_equal(gk_socket_path(NULL), GK_DEFAULT_SOCKET);
        assert_int_equal(setenv("GPUKEEPER_SOCKET", "", 1), 0);
        assert_string_equal(gk_socket_path(NULL), GK_DEFAULT_SOCKET);
        assert_int_equal(setenv("GPUKEEPER_SOCKET", "/tmp/gk.sock", 1), 0);
        assert_string_equal(gk_socket_path(NULL), "/tmp/gk.sock");
        assert_string_equal(gk_socket_path("/x/y.sock"), "/x/y.sock");
        assert_int_equal(unsetenv("GPUKEEPER_SOCKET"), 0);
}

/* Pages of `p` (page-aligned, `len` bytes) that are mapped (mincore). */
static size_t resident_pages(void *p, size_t len)
{
        size_t page = (size_t)sysconf(_SC_PAGESIZE), n = (len + page - 1) / page, in = 0;
        unsigned char *vec = calloc(n, 1);

        assert_non_null(vec);
        assert_int_equal(mincore(p, len, vec), 0);
        for (size_t i = 0; i < n; i++)
                in += vec[i] & 1;
        free(vec);
        return in;
}

/* prefault_range() maps the whole pages inside the range, and only those,
 * without changing what they hold; a large frame arrives whole through a
 * decoder whose buffer is populated that way. */
static void test_prefault(void **state)
{
        size_t page = (size_t)sysconf(_SC_PAGESIZE), len = 64 * page;
        char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ProtoDecoder d;
        const char *frame;
        size_t frame_len, big = 300 * 1024;
        char *wire;

        (void)state;
        assert_true(m != MAP_FAILED);
        m[5 * page] = 'x';
        assert_int_equal(resident_pages(m, len), 1);
        /* From the middle of page 1 to the middle of page 41: pages 2..40. */
        prefault_range(m + page + page / 2, 40 * page);
        assert_int_equal(resident_pages(m, len), 39);
        assert_int_equal(resident_pages(m + 2 * page, 39 * page), 39);
        assert_int_equal(m[5 * page], 'x');
        assert_int_equal(m[2 * page], 0);
        prefault_range(NULL, len);
        prefault_range(m, 0);
        munmap(m, len);

        /* The heap: allocations after prefault_heap() work and keep their contents. */
        prefault_heap(1u << 20);
        for (int i = 0; i < 1000; i++) {
                char *p = malloc(100);

                assert_non_null(p);
                memset(p, i & 0xff, 100);
                assert_int_equal((unsigned char)p[99], i & 0xff);
                free(p);
        }

        wire = malloc(PROTO_HEADER_SIZE + big);
        assert_non_null(wire);
        wire[0] = (char)(big >> 24);
        wire[1] = (char)(big >> 16);
        wire[2] = (char)(big >> 8);
        wire[3] = (char)big;
        for (size_t i = 0; i < big; i++)
                wire[PROTO_HEADER_SIZE + i] = (char)('a' + i % 26);
        proto_decoder_init(&d, GK_PROTO_MAX_REPLY);
        for (size_t off = 0; off < PROTO_HEADER_SIZE + big;) {
                int n = proto_decoder_feed(&d, wire + off, MIN((size_t)7000, PROTO_HEADER_SIZE + big - off));

                assert_true(n > 0);
                off += (size_t)n;
        }
        assert_int_equal(proto_decoder_next(&d, &frame, &frame_len), 1);
        assert_int_equal(frame_len, big);
        assert_memory_equal(frame, wire + PROTO_HEADER_SIZE, big);
        proto_decoder_done(&d);
        free(wire);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_decoder_split_everywhere),
            cmocka_unit_test(test_decoder_many_frames),
            cmocka_unit_test(test_decoder_zero_length),
            cmocka_unit_test(test_decoder_ready),
            cmocka_unit_test(test_decoder_limits),
            cmocka_unit_test(test_decoder_read_space),
            cmocka_unit_test(test_encode),
            cmocka_unit_test(test_outbuf_partial_writes),
            cmocka_unit_test(test_outbuf_cap),
            cmocka_unit_test(test_parse_request_valid),
            cmocka_unit_test(test_parse_request_errors),
            cmocka_unit_test(test_parse_request_depth),
            cmocka_unit_test(test_request_new),
            cmocka_unit_test(test_replies),
            cmocka_unit_test(test_error_names),
            cmocka_unit_test(test_parse_message),
            cmocka_unit_test(test_client_call),
            cmocka_unit_test(test_client_events),
            cmocka_unit_test(test_client_mismatched_id),
            cmocka_unit_test(test_client_bad_replies),
            cmocka_unit_test(test_client_call_text),
            cmocka_unit_test(test_client_peer_closed),
            cmocka_unit_test(test_client_max_reply),
            cmocka_unit_test(test_client_eintr_and_cancel),
            cmocka_unit_test(test_client_connect_errors),
            cmocka_unit_test(test_socket_path),
            cmocka_unit_test(test_prefault),
            cmocka_unit_test(test_outbuf_shared),
            cmocka_unit_test(test_client_call_write),
            cmocka_unit_test(test_ok_reply_prefix_and_tail),
        };

        /* SIGPIPE keeps its default action: a send() without MSG_NOSIGNAL
         * to a vanished peer would kill the test. */
        return cmocka_run_group_tests_name("test-proto", tests, NULL, NULL);
}
