/* The status reply's cache; the validity rule is in status-cache.h. */
#include "daemon/status-cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "daemon/daemon.h"
#include "daemon/status.h"
#include "daemon/strict.h"
#include "proto/proto.h"

void status_cache_done(StatusCache *c)
{
        if (!c)
                return;
        for (size_t i = 0; i < ELEMENTSOF(c->slot); i++) {
                proto_blob_unref(c->slot[i].body);
                c->slot[i].body = NULL;
                c->slot[i].valid = false;
        }
}

void status_cache_invalidate(StatusCache *c)
{
        for (size_t i = 0; i < ELEMENTSOF(c->slot); i++)
                c->slot[i].valid = false;
}

void status_cache_extend(StatusCache *c, uint64_t iteration)
{
        for (size_t i = 0; i < ELEMENTSOF(c->slot); i++) {
                StatusCacheSlot *s = &c->slot[i];

                if (s->valid && iteration > 0 && s->iteration == iteration - 1)
                        s->iteration = iteration;
        }
}

bool status_cache_op_is_read_only(const char *op)
{
        /* A short list on purpose: an operation missing here only costs a
         * build; one wrongly here shows a stale status. */
        return strcmp(op, "status") == 0 || strcmp(op, "ping") == 0;
}

bool status_cache_fresh(const StatusCache *c, StatusShape shape, uint64_t iteration,
                        uint64_t names, int64_t wall_offset)
{
        const StatusCacheSlot *s = &c->slot[shape];
        int64_t drift = wall_offset - s->wall_offset;

        return s->valid && s->body && s->iteration == iteration && s->names == names &&
               drift <= STATUS_CACHE_CLOCK_SLACK_USEC && drift >= -STATUS_CACHE_CLOCK_SLACK_USEC;
}

void status_cache_store(StatusCache *c, StatusShape shape, ProtoBlob *body, uint64_t iteration,
                        uint64_t names, int64_t wall_offset)
{
        StatusCacheSlot *s = &c->slot[shape];

        proto_blob_unref(s->body);
        *s = (StatusCacheSlot){.body = body, .valid = true, .iteration = iteration,
                               .names = names, .wall_offset = wall_offset};
}

/* Compact JSON of `o` (borrowed), not NUL-terminated in the count. */
static int dump(json_t *o, char **ret, size_t *ret_len)
{
        char *b = json_dumps(o, JSON_COMPACT);

        if (!b)
                return -EINVAL;
        *ret_len = strlen(b);
        *ret = b;
        return 0;
}

/* The result without "fence", dumped, its closing brace dropped. */
static int build_body(const Daemon *d, StatusShape shape, ProtoBlob **ret)
{
        _cleanup_(json_decrefp) json_t *o = NULL;
        _cleanup_free_ char *b = NULL;
        ProtoBlob *blob;
        size_t n;
        int r;

        r = status_build_base(d, shape, &o);
        if (r < 0)
                return r;
        r = dump(o, &b, &n);
        if (r < 0)
                return r;
        /* An object with members: "{...}". */
        if (n < 3 || b[0] != '{' || b[n - 1] != '}')
                return -EINVAL;
        blob = proto_blob_new(b, n - 1);
        if (blob)
                *ret = blob;
        return blob ? 0 : -ENOMEM;
}

void status_reply_done(StatusReply *r)
{
        if (r) {
                proto_blob_unref(TAKE_PTR(r->body));
                free(TAKE_PTR(r->tail));
        }
}

int status_cache_reply(Daemon *d, StatusShape shape, uint32_t id, StatusReply *ret)
{
        static const char fence_key[] = ",\"fence\":";
        StatusCache *c = &d->status_cache;
        _cleanup_free_ char *fence = NULL;
        _cleanup_(json_decrefp) json_t *fence_json = NULL;
        StatusReply reply = {};
        uint64_t iteration = 0, names = 0;
        int64_t offset = 0;
        size_t fence_len;
        bool cacheable;
        char *p;
        int r;

        /* Without a resolver (unit tests) names come from a memo that
         * forgets by time, without a generation: build every time. */
        cacheable = d->event && d->resolver && sd_event_get_iteration(d->event, &iteration) >= 0;
        if (cacheable) {
                /* The key is read before the build: an answer that comes
                 * during it moves the generation, and the next request
                 * builds again. */
                names = resolver_names_generation(d->resolver);
                offset = (int64_t)daemon_wall(d) - (int64_t)daemon_boot(d);
        }
        if (cacheable && status_cache_fresh(c, shape, iteration, names, offset)) {
                reply.body = proto_blob_ref(c->slot[shape].body);
                c->hits++;
        } else {
                r = build_body(d, shape, &reply.body);
                if (r < 0)
                        return r;
                c->misses++;
                if (cacheable)
                        status_cache_store(c, shape, proto_blob_ref(reply.body), iteration,
                                           names, offset);
        }

        /* Read from the kernel's maps now, every time. */
        fence_json = strict_to_json(d);
        r = fence_json ? dump(fence_json, &fence, &fence_len) : -ENOMEM;
        if (r >= 0) {
                reply.tail_len = strlen(fence_key) + fence_len + 2;
                reply.tail = malloc(reply.tail_len);
                r = reply.tail ? 0 : -ENOMEM;
        }
        if (r < 0) {
                status_reply_done(&reply);
                return r;
        }
        p = mempcpy(reply.tail, fence_key, strlen(fence_key));
        p = mempcpy(p, fence, fence_len);
        memcpy(p, "}}", 2);
        reply.head_len = proto_ok_reply_prefix(id, reply.head);
        *ret = reply;
        return 0;
}
