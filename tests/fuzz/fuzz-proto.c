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
 * Built two ways: with clang -fsanitize=fuzzer libFuzzer drives it;
 * otherwise fuzz-main.c runs it over the seed corpus as a regular test. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "fuzz.h"
#include "proto/proto.h"

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

/* The client's tree-less read of an ok reply (proto_scan_ok_reply) takes
 * only what the parser takes as an ok reply with that id and result, but for
 * a key given twice inside the result, which it does not look for. */
static void check_scan_ok_reply(const char *frame, size_t len)
{
        const char *text;
        size_t text_len;
        uint32_t id;
        ProtoMessage m;
        json_t *result;
        int r;

        if (proto_scan_ok_reply(frame, len, &id, &text, &text_len) <= 0)
                return;
        CHECK(text >= frame && text + text_len <= frame + len && text[0] == '{');
        r = proto_parse_message(frame, len, &m);
        if (r == -ENOMEM)
                return;
        if (r < 0) {
                /* Only duplicates may separate them: without the check, jansson agrees. */
                result = json_loadb(frame, len, 0, NULL);
                CHECK(result);
                json_decref(result);
                return;
        }
        CHECK(!m.is_event && m.ok && m.id == (int64_t)id);
        result = json_loadb(text, text_len, JSON_REJECT_DUPLICATES, NULL);
        CHECK(result && json_equal(result, m.result));
        json_decref(result);
        proto_message_done(&m);
}

/* The CLI's indexed read of an ok reply (proto_index_ok_reply over
 * json_index_build at PROTO_MAX_DEPTH) takes exactly the frames
 * proto_scan_ok_reply takes, with the same id and result. */
static void check_index_ok_reply(const char *frame, size_t len)
{
        const char *text = NULL, *at;
        size_t text_len = 0, left = 0;
        uint32_t id = 0, index_id;
        JsonIndex *ix = NULL;
        JsonIndexRef result;
        int scanned = proto_scan_ok_reply(frame, len, &id, &text, &text_len), r;

        r = json_index_build(frame, len, PROTO_MAX_DEPTH, &ix);
        if (r == -ENOMEM)
                return;
        if (r < 0) {
                CHECK(scanned <= 0);
                return;
        }
        r = proto_index_ok_reply(ix, &index_id, &result);
        CHECK((r > 0) == (scanned > 0));
        if (r > 0) {
                at = json_index_container_text(ix, result, &left);
                CHECK(index_id == id && at == text);
        }
        json_index_free(ix);
}

static void check_message(const char *frame, size_t len)
{
        ProtoMessage m;

        check_scan_ok_reply(frame, len);
        check_index_ok_reply(frame, len);
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
