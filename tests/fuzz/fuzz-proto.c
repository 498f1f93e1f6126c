/* Fuzz target for the wire protocol: the frame decoder, the request parser
 * (daemon side) and the reply/event parser (client side).
 *
 * Input layout: byte 0 picks the chunk size the stream is fed in (1..64, so
 * frames straddle reads in every way); the rest is the byte stream a peer
 * sends. Every decoded frame goes through both parsers, and so does the raw
 * rest of the input (to reach the JSON validation without valid framing).
 * Accepted messages are re-encoded, and invariants are checked with abort()
 * so any fuzzer or sanitizer notices.
 *
 * Built two ways: with clang -fsanitize=fuzzer (GK_FUZZ_LIBFUZZER defined)
 * libFuzzer drives it; otherwise the main() below runs it over every file
 * named on the command line or found in a directory named there, which is
 * how the seed corpus runs as a regular test. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/macro.h"
#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
        do {                                                                                       \
                if (!(x)) {                                                                        \
                        fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #x);  \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

static void check_request(const char *frame, size_t len)
{
        ProtoRequest req;
        ProtoError err;
        json_t *reply;
        char *s;
        size_t slen;

        if (proto_parse_request(frame, len, &req, &err) == 0) {
                CHECK(proto_name_is_valid(req.op, strlen(req.op)));
                CHECK(!req.args || json_is_object(req.args));
                reply = proto_reply_ok(req.id, req.args ? json_deep_copy(req.args) : NULL);
                proto_request_done(&req);
        } else {
                CHECK(err.code > 0 && err.code < _GK_E_MAX);
                CHECK(err.id >= -1 && err.id <= UINT32_MAX);
                reply = proto_reply_from_error(&err);
                /* The error reply must always be buildable: its message is sanitised. */
                CHECK(reply);
        }
        if (reply && proto_dump(reply, GK_PROTO_MAX_REPLY, &s, &slen) == 0) {
                ProtoMessage m = {0};
                /* What the daemon would send back parses on the client side. */
                CHECK(proto_parse_message(s, slen, &m) == 0 || slen > GK_PROTO_MAX_REPLY);
                proto_message_done(&m);
                free(s);
        }
        json_decref(reply);
}

static void check_message(const char *frame, size_t len)
{
        ProtoMessage m;

        if (proto_parse_message(frame, len, &m) < 0)
                return;
        if (m.is_event)
                CHECK(proto_name_is_valid(m.event, strlen(m.event)) && json_is_object(m.data));
        else if (m.ok)
                CHECK(m.id >= 0 && json_is_object(m.result));
        else
                CHECK(m.code > 0 && strlen(m.message) < PROTO_MESSAGE_MAX);
        proto_message_done(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        ProtoDecoder d;
        size_t chunk, off = 0;
        int r = 0;

        if (size == 0)
                return 0;
        chunk = (size_t)(data[0] % 64) + 1;
        data++;
        size--;

        check_request((const char *)data, size);
        check_message((const char *)data, size);

        proto_decoder_init(&d, GK_PROTO_MAX_REQUEST);
        while (off < size) {
                const char *frame;
                size_t len;

                r = proto_decoder_feed(&d, data + off, MIN(chunk, size - off));
                if (r < 0)
                        break;
                off += (size_t)r;
                /* Bounded memory whatever the peer announces. */
                CHECK(d.size <= MAX(4096u, PROTO_HEADER_SIZE + GK_PROTO_MAX_REQUEST));
                while ((r = proto_decoder_next(&d, &frame, &len)) == 1) {
                        CHECK(len >= 1 && len <= GK_PROTO_MAX_REQUEST);
                        check_request(frame, len);
                        check_message(frame, len);
                }
                if (r < 0)
                        break;
        }
        CHECK(r >= 0 || r == -EMSGSIZE || r == -EBADMSG);
        proto_decoder_done(&d);
        return 0;
}

#ifndef GK_FUZZ_LIBFUZZER

/* Inputs larger than this are not seeds; refuse rather than guess. */
#define SEED_MAX (1024u * 1024u)

static int run_file(const char *path)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        size_t len = 0;

        if (fd < 0 || fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || (size_t)st.st_size > SEED_MAX)
                return -EINVAL;
        buf = malloc(MAX((size_t)st.st_size, 1u));
        if (!buf)
                return -ENOMEM;
        while (len < (size_t)st.st_size) {
                ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? negative_errno() : -EIO;
                len += (size_t)n;
        }
        LLVMFuzzerTestOneInput(buf, len);
        return 0;
}

static int run_path(const char *path, unsigned *n_run)
{
        struct dirent **entries;
        struct stat st;
        int n, r = 0;

        if (stat(path, &st) < 0)
                return negative_errno();
        if (!S_ISDIR(st.st_mode)) {
                r = run_file(path);
                if (r >= 0)
                        (*n_run)++;
                return r;
        }

        n = scandir(path, &entries, NULL, alphasort);
        if (n < 0)
                return negative_errno();
        for (int i = 0; i < n; i++) {
                char sub[4096];
                if (r >= 0 && entries[i]->d_name[0] != '.' &&
                    snprintf(sub, sizeof sub, "%s/%s", path, entries[i]->d_name) <
                        (int)sizeof sub) {
                        r = run_file(sub);
                        if (r < 0)
                                fprintf(stderr, "%s: %s\n", sub, strerror(-r));
                        else
                                (*n_run)++;
                }
                free(entries[i]);
        }
        free(entries);
        return r;
}

int main(int argc, char *argv[])
{
        unsigned n_run = 0;

        if (argc < 2) {
                fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
                return 64;
        }
        for (int i = 1; i < argc; i++) {
                int r = run_path(argv[i], &n_run);
                if (r < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(-r));
                        return 1;
                }
        }
        if (n_run == 0) {
                fprintf(stderr, "no inputs found\n");
                return 1;
        }
        printf("%u inputs run\n", n_run);
        return 0;
}

#endif
