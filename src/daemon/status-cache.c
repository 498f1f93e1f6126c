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
        free(c->body);
        c->body = NULL;
        c->body_len = 0;
        c->valid = false;
}

void status_cache_invalidate(StatusCache *c)
{
        c->valid = false;
}

void status_cache_extend(StatusCache *c, uint64_t iteration)
{
        if (c->valid && iteration > 0 && c->iteration == iteration - 1)
                c->iteration = iteration;
}

bool status_cache_op_is_read_only(const char *op)
{
        /* A short list on purpose: an operation missing here only costs a
         * build; one wrongly here shows a stale status. */
        return strcmp(op, "status") == 0 || strcmp(op, "ping") == 0;
}

bool status_cache_fresh(const StatusCache *c, uint64_t iteration, uint64_t names,
                        int64_t wall_offset)
{
        int64_t drift = wall_offset - c->wall_offset;

        return c->valid && c->body && c->iteration == iteration && c->names == names &&
               drift <= STATUS_CACHE_CLOCK_SLACK_USEC && drift >= -STATUS_CACHE_CLOCK_SLACK_USEC;
}

void status_cache_store(StatusCache *c, char *body, size_t len, uint64_t iteration,
                        uint64_t names, int64_t wall_offset)
{
        free(c->body);
        c->body = body;
        c->body_len = len;
        c->iteration = iteration;
        c->names = names;
        c->wall_offset = wall_offset;
        c->valid = true;
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
static int build_body(const Daemon *d, char **ret, size_t *ret_len)
{
        _cleanup_(json_decrefp) json_t *o = NULL;
        char *b;
        size_t n;
        int r;

        r = status_build_base(d, &o);
        if (r < 0)
                return r;
        r = dump(o, &b, &n);
        if (r < 0)
                return r;
        /* An object with members: "{...}". */
        if (n < 3 || b[0] != '{' || b[n - 1] != '}') {
                free(b);
                return -EINVAL;
        }
        b[--n] = '\0';
        *ret = b;
        *ret_len = n;
        return 0;
}

/* `{"v":1,"id":N,"ok":true,"result":` as proto_reply_ok() writes it: the
 * reply of an empty result, its trailing `{}}` dropped, so the members and
 * their order stay proto.c's. */
static int reply_prefix(uint32_t id, char **ret, size_t *ret_len)
{
        _cleanup_(json_decrefp) json_t *m = proto_reply_ok(id, NULL);
        char *b;
        size_t n;
        int r;

        if (!m)
                return -ENOMEM;
        r = dump(m, &b, &n);
        if (r < 0)
                return r;
        if (n < 3 || strcmp(b + n - 3, "{}}") != 0) {
                free(b);
                return -EINVAL;
        }
        b[n - 3] = '\0';
        *ret = b;
        *ret_len = n - 3;
        return 0;
}

int status_cache_reply(Daemon *d, uint32_t id, char **ret, size_t *ret_len)
{
        static const char fence_key[] = ",\"fence\":";
        StatusCache *c = &d->status_cache;
        _cleanup_free_ char *prefix = NULL, *fence = NULL, *built = NULL;
        _cleanup_(json_decrefp) json_t *fence_json = NULL;
        size_t prefix_len, fence_len, body_len, total;
        uint64_t iteration = 0, names = 0;
        int64_t offset = 0;
        const char *body;
        bool cacheable;
        char *out, *p;
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
        if (cacheable && status_cache_fresh(c, iteration, names, offset)) {
                body = c->body;
                body_len = c->body_len;
                c->hits++;
        } else {
                r = build_body(d, &built, &body_len);
                if (r < 0)
                        return r;
                c->misses++;
                if (cacheable) {
                        status_cache_store(c, TAKE_PTR(built), body_len, iteration, names,
                                           offset);
                        body = c->body;
                } else
                        body = built;
        }

        /* Read from the kernel's maps now, every time. */
        fence_json = strict_to_json(d);
        if (!fence_json)
                return -ENOMEM;
        r = dump(fence_json, &fence, &fence_len);
        if (r < 0)
                return r;
        r = reply_prefix(id, &prefix, &prefix_len);
        if (r < 0)
                return r;

        total = prefix_len + body_len + strlen(fence_key) + fence_len + 2;
        out = malloc(total + 1);
        if (!out)
                return -ENOMEM;
        p = mempcpy(out, prefix, prefix_len);
        p = mempcpy(p, body, body_len);
        p = mempcpy(p, fence_key, strlen(fence_key));
        p = mempcpy(p, fence, fence_len);
        p = mempcpy(p, "}}", 2);
        *p = '\0';
        *ret = out;
        *ret_len = total;
        return 0;
}
