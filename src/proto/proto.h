/* The wire protocol between gpukeeper clients and gpukeeperd.
 *
 * A message is a 4-byte big-endian length N (1 <= N <= limit) followed by N
 * bytes of UTF-8 JSON holding one object. This module frames and unframes
 * byte streams without trusting the peer (bounded memory, nothing allocated
 * from an unvalidated length), parses and validates requests (daemon side)
 * and replies/events (client side), and builds replies and events. It does no
 * I/O except ProtoOutbuf's flush and never logs. docs/protocol.md is the
 * normative description; keep the two in step. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/macro.h"
#include "gpukeeper/client.h"
#include "proto/json-index.h"

#define GK_PROTO_VERSION 1
/* Largest frame payload a client may send (request). */
#define GK_PROTO_MAX_REQUEST (64u * 1024u)
/* Largest frame payload the daemon may send (reply or event). */
#define GK_PROTO_MAX_REPLY (16u * 1024u * 1024u)
#define PROTO_HEADER_SIZE 4u
/* Deepest JSON nesting accepted in any message (the top-level object is 1). */
#define PROTO_MAX_DEPTH 32u
/* Longest op or event name; names use only [a-z0-9._-]. */
#define PROTO_NAME_MAX 64u
#define PROTO_MESSAGE_MAX 512u
/* Longest lease duration (`duration_sec` of lease.acquire and lease.extend)
 * the protocol takes from anyone, admins included: 366 days. */
#define GK_PROTO_MAX_DURATION_SEC (UINT64_C(366) * 24 * 3600)
/* Most devices one lease may hold (lease.acquire `gpus`, `devices`). */
#define GK_PROTO_MAX_LEASE_DEVICES 64
/* A reasonable cap for a connection's write queue in the daemon: room for one
 * maximal reply plus a second one behind it. */
#define PROTO_OUTBUF_MAX_DEFAULT (2u * (GK_PROTO_MAX_REPLY + PROTO_HEADER_SIZE))

/* gk_error_name(), declared in gpukeeper/client.h, is implemented in proto.c. */

/* True if `name` (of `len` bytes) is a valid op/event name: 1..PROTO_NAME_MAX
 * characters from [a-z0-9._-]. */
bool proto_name_is_valid(const char *name, size_t len);

/* ---- Incremental frame decoder ----------------------------------------------------------- */

/* Unframes a byte stream. Fields are private; read them only through the
 * functions below. Memory held is at most PROTO_HEADER_SIZE + max_frame bytes
 * (or a 4 KiB starting buffer when that is larger); the announced length is
 * validated before any buffer is sized for it. After an error the decoder is
 * stuck in it: the stream cannot be resynchronised. */
typedef struct ProtoDecoder {
        size_t max_frame;
        char *buf;
        size_t size;        /* bytes allocated */
        size_t start;       /* first unconsumed byte */
        size_t end;         /* end of buffered data */
        int error;          /* sticky -EMSGSIZE / -EBADMSG, else 0 */
        uint32_t announced; /* length field of the frame at `start`, once known */
} ProtoDecoder;

/* max_frame: 1 .. UINT32_MAX. Allocates nothing. */
void proto_decoder_init(ProtoDecoder *d, size_t max_frame);
/* Frees the buffer; the decoder may be re-initialised afterwards. Accepts a
 * zero-filled decoder. */
void proto_decoder_done(ProtoDecoder *d);

/* Zero-copy input: returns writable space for the caller to read() into
 * (*ret_buf, *ret_len > 0), after which the caller reports the bytes it
 * stored with proto_decoder_advance(). Returns 0, -ENOMEM, the sticky error,
 * or -ENOBUFS when complete frames are still buffered and leave no room:
 * drain proto_decoder_next() until it returns 0 first (then there is always
 * room). Invalidates frames previously returned by proto_decoder_next(). */
int proto_decoder_read_space(ProtoDecoder *d, void **ret_buf, size_t *ret_len);
/* `n` must not exceed the length last returned by proto_decoder_read_space(). */
void proto_decoder_advance(ProtoDecoder *d, size_t n);

/* Copying input: stores up to `len` bytes and returns how many it took (may
 * be fewer than `len` when buffered frames must be drained first with
 * proto_decoder_next(); a return of 0 with len > 0 means exactly that), or a
 * negative error as proto_decoder_read_space(). */
int proto_decoder_feed(ProtoDecoder *d, const void *buf, size_t len);

/* Takes the next complete frame.
 *   1  *ret_frame / *ret_len: the payload, borrowed, valid until the next
 *      proto_decoder_read_space() / proto_decoder_feed() / proto_decoder_done()
 *      (further proto_decoder_next() calls do not move it). Not NUL-terminated.
 *   0  more bytes are needed.
 *   -EMSGSIZE  the announced length is above max_frame (sticky).
 *   -EBADMSG   the announced length is 0 (sticky). */
int proto_decoder_next(ProtoDecoder *d, const char **ret_frame, size_t *ret_len);

/* Whether proto_decoder_next() would return something other than 0 now: a
 * complete frame is buffered, or the sticky error. */
bool proto_decoder_ready(ProtoDecoder *d);

/* Bytes buffered but not yet returned as frames: > 0 means a partial frame is
 * pending (the daemon times such connections out). */
size_t proto_decoder_pending(const ProtoDecoder *d);
/* The length field of the frame being received (0 when not yet known); used
 * for the message of the E_TOO_LARGE reply after -EMSGSIZE. */
uint32_t proto_decoder_announced(const ProtoDecoder *d);

/* ---- Encoding ---------------------------------------------------------------------------- */

/* Frames `json` (`len` bytes, 1..max) into a new buffer of PROTO_HEADER_SIZE + len
 * bytes. -EMSGSIZE when len is 0 or above max, -ENOMEM. */
int proto_encode_frame(const char *json, size_t len, size_t max, char **ret, size_t *ret_len);

/* Serialises `msg` as compact JSON into a new NUL-terminated string.
 * -EMSGSIZE when longer than `max`, -EINVAL when it cannot be serialised,
 * -ENOMEM. */
int proto_dump(json_t *msg, size_t max, char **ret, size_t *ret_len);

/* Immutable bytes shared by reference (the daemon's cached status reply,
 * sent to many connections without a copy per reply). Refcounted; not
 * thread-safe (one event loop). */
typedef struct ProtoBlob {
        unsigned ref;
        size_t len;
        char data[];
} ProtoBlob;

/* A blob holding a copy of s[0..len) (len may be 0), refcount 1; NULL on OOM. */
ProtoBlob *proto_blob_new(const char *s, size_t len);
/* Another reference to `b`; returns it. */
ProtoBlob *proto_blob_ref(ProtoBlob *b);
/* Drops a reference; frees at zero. Accepts NULL. */
void proto_blob_unref(ProtoBlob *b);

/* Shared pieces one queue holds at most; more are copied into it. */
#define PROTO_OUTBUF_PIECES 4u

/* A blob queued between an outbuf's bytes. */
typedef struct ProtoOutbufPiece {
        ProtoBlob *blob;
        size_t off;  /* bytes of it sent */
        uint64_t at; /* goes before the byte queue's byte of this index */
} ProtoOutbufPiece;

/* Outgoing frames queued for a non-blocking socket: a byte queue, and
 * between its bytes, references to blobs (proto_outbuf_append_shared()).
 * Fields are private. */
typedef struct ProtoOutbuf {
        size_t max_queued;
        char *buf;
        size_t size;
        size_t start;
        size_t end;
        uint64_t sent; /* bytes ever taken off the byte queue: the index of buf[start] */
        ProtoOutbufPiece pieces[PROTO_OUTBUF_PIECES];
        size_t n_pieces;
        size_t piece_bytes; /* queued in pieces */
} ProtoOutbuf;

/* max_queued: most bytes (headers included) that may wait in the queue. */
void proto_outbuf_init(ProtoOutbuf *o, size_t max_queued);
/* Frees the queue. Accepts a zero-filled outbuf. */
void proto_outbuf_done(ProtoOutbuf *o);

/* Queues one frame holding `json` (`len` bytes, 1..max_frame). All or nothing:
 *   -EMSGSIZE  len is 0 or above max_frame
 *   -ENOBUFS   the queue would exceed max_queued (the peer does not read; the
 *              daemon closes such a connection, see docs/protocol.md)
 *   -ENOMEM */
int proto_outbuf_append(ProtoOutbuf *o, const char *json, size_t len, size_t max_frame);
/* Queues one frame holding head + body + tail (the three lengths' sum
 * 1..max_frame), with the body sent from the blob itself, not copied (a
 * reference is held until it is sent). All or nothing, as
 * proto_outbuf_append(). */
int proto_outbuf_append_shared(ProtoOutbuf *o, const char *head, size_t head_len, ProtoBlob *body,
                               const char *tail, size_t tail_len, size_t max_frame);
/* proto_dump() then proto_outbuf_append(); `msg` is borrowed. */
int proto_outbuf_append_msg(ProtoOutbuf *o, json_t *msg, size_t max_frame);

/* Writes as much as the socket takes without blocking (sendmsg() of the
 * queue's bytes and pieces in order, MSG_DONTWAIT | MSG_NOSIGNAL, EINTR
 * retried).
 *   1  the queue is empty now
 *   0  bytes remain (the socket is full: wait for POLLOUT and call again)
 *   <0 -errno of send() (-EPIPE / -ECONNRESET when the peer is gone); the
 *      queue is left as it was after the bytes that did go out. */
int proto_outbuf_flush(ProtoOutbuf *o, int fd);
size_t proto_outbuf_queued(const ProtoOutbuf *o);

/* ---- Requests (daemon side) -------------------------------------------------------------- */

typedef struct ProtoRequest {
        uint32_t id;
        char op[PROTO_NAME_MAX + 1];
        json_t *args; /* owned; an object, or NULL when the request has none */
} ProtoRequest;

/* Why a request could not be accepted, ready for proto_reply_from_error(). */
typedef struct ProtoError {
        int64_t id; /* the request's id when it could be read, else -1 */
        int code;   /* gk_error */
        char message[PROTO_MESSAGE_MAX];
} ProtoError;

/* Parses and validates one request frame payload.
 *   0  *ret filled (release it with proto_request_done()).
 *   <0 *ret_error filled, *ret untouched:
 *      -EBADMSG          E_MALFORMED (bad JSON, duplicate keys, too deep,
 *                        missing or ill-typed v/id/op/args, bad op name)
 *      -EPROTONOSUPPORT  E_VERSION (v is an integer other than 1)
 *      -EMSGSIZE         E_TOO_LARGE (len above GK_PROTO_MAX_REQUEST)
 *      -ENOMEM           E_INTERNAL
 * Unknown top-level members are ignored (additive protocol changes). */
int proto_parse_request(const char *frame, size_t len, ProtoRequest *ret, ProtoError *ret_error);
/* Releases args; accepts NULL and a zero-filled request. */
void proto_request_done(ProtoRequest *r);

/* Builds {"v":1,"id":id,"op":op,"args":args}; `args` (object or NULL) is
 * stolen, also on failure. NULL on OOM or when op is not a valid name or args
 * is not an object. */
json_t *proto_request_new(uint32_t id, const char *op, json_t *args);

/* ---- Replies and events ------------------------------------------------------------------ */

/* {"v":1,"id":id,"ok":true,"result":result}; `result` (an object; NULL means
 * {}) is stolen, also on failure. NULL on OOM. */
json_t *proto_reply_ok(uint32_t id, json_t *result);
/* The bytes every ok reply to request `id` starts with, as proto_dump()
 * writes proto_reply_ok()'s object: `{"v":1,"id":ID,"ok":true,"result":`
 * (the result's text and the closing brace follow). Written to `buf` with a
 * NUL; returns the length (at most PROTO_OK_PREFIX_MAX - 1). The daemon
 * writes cached replies with it, the client recognises replies it can
 * stream by it. */
#define PROTO_OK_PREFIX_MAX 64u
size_t proto_ok_reply_prefix(uint32_t id, char buf[static PROTO_OK_PREFIX_MAX]);
/* Whether `tail`, the bytes of an ok reply's frame after its result's
 * value, ends the reply as proto_scan_ok_reply() accepts it: whitespace and
 * the closing brace, or further members that repeat no key of the reply
 * (nor "event") and keep it to the members proto_scan_ok_reply() reads. */
bool proto_ok_reply_tail_ok(const char *tail, size_t len);
/* {"v":1,"id":id or null,"ok":false,"error":{"code","name","message"}}.
 * id < 0 gives "id": null. The formatted message is made safe to carry
 * (bounded, control characters and invalid UTF-8 replaced by '?'). NULL on OOM. */
json_t *proto_reply_error(int64_t id, int code, const char *fmt, ...) _printf_(3, 4);
json_t *proto_reply_from_error(const ProtoError *e);
/* {"v":1,"event":name,"data":data}; `data` (object; NULL means {}) is stolen,
 * also on failure. NULL on OOM or an invalid name. */
json_t *proto_event(const char *name, json_t *data);

/* ---- Replies and events (client side) ---------------------------------------------------- */

typedef struct ProtoMessage {
        bool is_event;
        /* reply */
        int64_t id; /* -1 when the reply's id is null */
        bool ok;
        json_t *result; /* owned; ok replies: an object */
        int code;       /* error replies: > 0 */
        char message[PROTO_MESSAGE_MAX];
        /* event */
        char event[PROTO_NAME_MAX + 1];
        json_t *data; /* owned; events: an object ({} when absent) */
} ProtoMessage;

/* Parses a frame from the daemon. 0 with *ret filled (release with
 * proto_message_done()), -EBADMSG when it is not a valid v1 reply or event,
 * -ENOMEM. Error messages longer than the buffer are cut at a UTF-8 boundary. */
int proto_parse_message(const char *frame, size_t len, ProtoMessage *ret);
/* Accepts NULL and a zero-filled message. */
void proto_message_done(ProtoMessage *m);

/* The client's way round the tree for a reply it only passes on (issue 16):
 * when `frame` is an ok reply, {"v":1,"id":N,"ok":true,"result":{…}} in any
 * member order, with no top-level key twice and nothing jansson would refuse
 * (src/proto/json-scan.h, depth PROTO_MAX_DEPTH), returns 1, the id, and the
 * result object's text (borrowed from `frame`). Returns 0 for every other
 * frame (events, error replies, an id that is null or not a plain integer,
 * anything unusual, anything invalid): proto_parse_message() then gives it
 * the same verdict as before. Allocates nothing. One difference from the
 * parsed path: a key given twice inside the result is not looked for (see
 * json-scan.h); jansson, which writes the daemon's replies, writes none. */
int proto_scan_ok_reply(const char *frame, size_t len, uint32_t *ret_id, const char **ret_result,
                        size_t *ret_result_len);

/* proto_scan_ok_reply() for a frame already indexed (json_index_build() at
 * PROTO_MAX_DEPTH, which checked it): 1, the id and the result object's
 * ref for the same frames, 0 for the others. For the CLI's text views,
 * which read the result through the index: one pass over the reply instead
 * of a scan and then an index. */
int proto_index_ok_reply(const JsonIndex *ix, uint32_t *ret_id, JsonIndexRef *ret_result);
