/* The status reply's cache (issue 16): the compact JSON of the last status
 * result, sent again byte for byte while nothing it shows can have changed.
 *
 * What is cached: jansson's compact dump of status_build_base() (the whole
 * result but its last member, "fence") without the closing brace, in a
 * refcounted ProtoBlob. A reply is prefix (proto_ok_reply_prefix()) + cached
 * bytes + ',"fence":' + the fence built now + '}}': the same bytes
 * proto_dump() writes for the tree. The server queues the cached bytes by
 * reference (proto_outbuf_append_shared()), not copied: a connection still
 * sending a reply keeps its blob alive after the cache moved on.
 *
 * Validity is structural, not an audit of writers. sd-event's sd_event_run()
 * counts one iteration per run (sd_event_prepare() increments
 * e->iteration, read by sd_event_get_iteration()) and sd_event_dispatch()
 * dispatches exactly one event source per iteration (the first pending one;
 * checked in systemd's src/libsystemd/sd-event/sd-event.c). gpukeeperd sets
 * no prepare callbacks, no post sources and no rate limits on its sources,
 * so nothing else runs inside an iteration. The cache is valid through
 * `iteration`; it is:
 *  - extended to the current iteration (status_cache_extend) only by the
 *    callbacks that change nothing a status shows, and only when it was
 *    valid through the previous iteration: the server's listening socket
 *    (accepting), a connection's socket (reading requests, writing
 *    replies) and the server's resume source (a pipelined request already
 *    read, server.c). Every other source -- sampler ticks and its worker's
 *    completion, timers, signals, child watchers, inotify, the HTTP
 *    server, deferred work -- never extends, so one of them running breaks
 *    the chain and the next status is built afresh;
 *  - invalidated at dispatch by every request that is not read-only
 *    (status_cache_op_is_read_only: status and ping), before it runs, so a
 *    status pipelined behind a lease.acquire in the same read shows the
 *    lease; and by a connection closing that holds a lease or a queue place
 *    (connection_free releases them);
 *  - keyed by the resolver's names generation (resolver_names_generation),
 *    read before the build: the resolver thread publishes user names
 *    without a loop event, and a name that comes (or changes, or is
 *    forgotten) moves it;
 *  - keyed by the offset between the daemon's wall and boot clocks: an
 *    open violation's stop_at is its boot-clock deadline shown on the wall
 *    clock (enforcement.c violation_json), so it is computed at the build
 *    and a hit requires the clocks not to have moved against each other by
 *    more than STATUS_CACHE_CLOCK_SLACK_USEC since (an NTP step). Stable,
 *    not spliced: the deadline itself does not move, only its rendering,
 *    and splicing values deep inside the process list would cost what the
 *    cache saves.
 * Values read from the kernel at request time are never cached: the strict
 * fence's refused-open counters (BPF maps) are the "fence" member, built
 * for every reply. /api/status (metrics/api.c) adds members to the tree and
 * stays uncached. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/status-shape.h"
#include "proto/proto.h"

typedef struct Daemon Daemon;

/* How far the wall clock may have moved against the boot clock since the
 * build for a hit (a slew of 500 ppm takes 2 s for it). */
#define STATUS_CACHE_CLOCK_SLACK_USEC 1000

/* One shape's cached bytes (status-shape.h: processes as objects or rows). */
typedef struct StatusCacheSlot {
        ProtoBlob *body;  /* the result's dump without "fence" and the closing brace */
        bool valid;
        uint64_t iteration;   /* valid through this sd-event iteration */
        uint64_t names;       /* resolver_names_generation() before the build */
        int64_t wall_offset;  /* daemon_wall() - daemon_boot() at the build */
} StatusCacheSlot;

/* A slot per shape: `gpukeeper status` asks for rows, `--json` and other
 * clients for objects; each is valid or not by the same rule, and whatever
 * breaks the chain breaks it for both. */
typedef struct StatusCache {
        StatusCacheSlot slot[_STATUS_SHAPE_MAX];
        uint64_t hits, misses; /* status replies sent from it, and built */
} StatusCache;

/* Frees the cached bytes (counters stay). Accepts a zero-filled cache. */
void status_cache_done(StatusCache *c);

/* Forgets the cached bytes' validity: the next status is built. */
void status_cache_invalidate(StatusCache *c);

/* Called at the start of a callback that changes nothing a status shows,
 * in `iteration`: valid through iteration - 1 becomes valid through
 * `iteration`; anything else is left as it is (a broken chain stays broken). */
void status_cache_extend(StatusCache *c, uint64_t iteration);

/* Whether `op` leaves everything a status shows as it is. */
bool status_cache_op_is_read_only(const char *op);

/* Whether the cached bytes of `shape` may be sent in `iteration`, with the
 * resolver's names generation `names` and the clocks' offset `wall_offset`
 * now. */
bool status_cache_fresh(const StatusCache *c, StatusShape shape, uint64_t iteration,
                        uint64_t names, int64_t wall_offset);

/* Takes `body` (a reference) as the cache of `shape`, valid through
 * `iteration` with the key read before the build. */
void status_cache_store(StatusCache *c, StatusShape shape, ProtoBlob *body, uint64_t iteration,
                        uint64_t names, int64_t wall_offset);

/* A status reply in three parts: head + body + tail is its frame's JSON. */
typedef struct StatusReply {
        char head[PROTO_OK_PREFIX_MAX]; /* `{"v":1,"id":N,"ok":true,"result":` */
        size_t head_len;
        ProtoBlob *body; /* a reference to the (cached) result but "fence" */
        char *tail;      /* `,"fence":{...}}}`, malloc'd */
        size_t tail_len;
} StatusReply;

/* Releases the parts. Accepts a zero-filled reply. */
void status_reply_done(StatusReply *r);

/* The whole reply to a `status` request with id `id` asking for `shape`, as
 * compact JSON text in parts, from the cache or built (and cached when the
 * loop's iteration can be read). The caller releases *ret with
 * status_reply_done(). -ENOMEM or -EINVAL when it cannot be made: the
 * caller then answers through request_dispatch(), which builds, reports
 * and logs the failure as before. */
int status_cache_reply(Daemon *d, StatusShape shape, uint32_t id, StatusReply *ret);
