/* The allocator (allocate.h): which queued requests start now, on which
 * devices, and why the others wait.
 *
 * One call builds a private view of the devices (a uuid index, a "class"
 * per device: 0 for whole GPUs, one per distinct MIG profile, and two
 * orders of each class's devices, by NUMA node and by PCI bus id), then
 * walks the queue once:
 *
 *   1. a request that can never be satisfied is IMPOSSIBLE;
 *   2. one that would push its user over max_devices WAITs and reserves
 *      nothing;
 *   3. one whose devices are all available (grantable, not granted earlier
 *      in this call, not reserved) is GRANTed the closest, least recently
 *      used ones;
 *   4. any other WAITs and reserves every device it could ever use, in any
 *      state, so no later request takes them: that is the backfill rule,
 *      and it is what makes the head of the queue start as soon as enough
 *      of its devices are free.
 *
 * Reserving a whole class is done once per call (a flag per class), so a
 * call costs O(n_queue × n_devices) at worst and O(n log n) for sorting. */
#include "policy/allocate.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/parse.h"
#include "policy/share.h"

#define WHOLE_CLASS 0
#define BUS_UNKNOWN UINT64_MAX

typedef struct Ctx {
        const PolicyDevice *devices;
        size_t n_devices;
        uint64_t unleased_memory_max;
        bool has_limits; /* policy_allocate: devices may be granted at all */

        size_t *by_uuid;       /* device indices sorted by uuid */
        size_t *cls;           /* per device: its class */
        uint64_t *bus_key;     /* per device: PCI address as a number, BUS_UNKNOWN */
        const char **profiles; /* per class: its MIG profile (NULL for class 0) */
        size_t n_classes;
        size_t *class_start;  /* n_classes + 1 offsets into the two orders */
        size_t *order_numa;   /* by (class, numa, bus, lru, index) */
        size_t *order_bus;    /* by (class, bus, lru, index) */
        bool *grantable;      /* free, healthy, not drained, not busy */
        bool *taken;          /* granted earlier in this call, or picked now */
        bool *reserved;       /* some earlier waiting request could use it */
        bool *class_reserved; /* the whole class is reserved */
        bool *share_ok;       /* may take a shared lease (shareable, free of whole leases,
                               * healthy, not drained, not busy) */
        uint64_t *share_extra; /* budgets granted to shared requests earlier in this call */
        size_t *cand;         /* scratch: candidates of one choice */
        size_t *deque;        /* scratch: sliding-window maximum */
        void *block;          /* the arrays above, one allocation */
} Ctx;

/* A request resolved against the devices. */
typedef struct Want {
        enum { WANT_GPUS, WANT_NAMED, WANT_MIG, WANT_SHARE } form;
        uint64_t share_bytes;                   /* WANT_SHARE: the budget */
        size_t size;                            /* devices it asks for */
        size_t idx[POLICY_MAX_REQUEST_ITEMS];   /* WANT_NAMED: device; WANT_MIG: class */
        size_t count[POLICY_MAX_REQUEST_ITEMS]; /* WANT_MIG: instances of idx[i] */
        size_t n;
} Want;

static void ctx_done(Ctx *c)
{
        free(c->block);
}

/* Bytes of an array of `count` items of `size` in Ctx's block, rounded up
 * so that the next array is aligned for any type. */
static size_t ctx_slice(size_t count, size_t size)
{
        const size_t a = _Alignof(max_align_t);

        return (count * size + a - 1) / a * a;
}

/* The arrays' places in one block of `m` devices (n + 1, so that none is
 * empty): with base NULL only the block's size, which is returned; else
 * the arrays are pointed into `base`. One list for both, so the size
 * cannot disagree with what is handed out. */
static size_t ctx_layout(Ctx *c, size_t m, char *base)
{
        size_t off = 0;

#define CTX_TAKE(field, count)                                                                     \
        do {                                                                                       \
                if (base)                                                                          \
                        c->field = (void *)(base + off);                                           \
                off += ctx_slice((count), sizeof *c->field);                                       \
        } while (0)
        CTX_TAKE(by_uuid, m);
        CTX_TAKE(cls, m);
        CTX_TAKE(order_numa, m);
        CTX_TAKE(order_bus, m);
        CTX_TAKE(cand, m);
        CTX_TAKE(deque, m);
        CTX_TAKE(class_start, m + 1);
        CTX_TAKE(bus_key, m);
        CTX_TAKE(share_extra, m);
        CTX_TAKE(profiles, m);
        CTX_TAKE(grantable, m);
        CTX_TAKE(taken, m);
        CTX_TAKE(reserved, m);
        CTX_TAKE(class_reserved, m);
        CTX_TAKE(share_ok, m);
#undef CTX_TAKE
        return off;
}

static const char *plural(uint64_t n)
{
        return n == 1 ? "" : "s";
}

static int hex_digit(char ch)
{
        if (ch >= '0' && ch <= '9')
                return ch - '0';
        if (ch >= 'a' && ch <= 'f')
                return ch - 'a' + 10;
        if (ch >= 'A' && ch <= 'F')
                return ch - 'A' + 10;
        return -1;
}

/* Parse 1..max_digits hex digits at *p, advancing it. */
static bool parse_hex(const char **p, unsigned max_digits, uint64_t *ret)
{
        uint64_t v = 0;
        unsigned n = 0;
        int d;

        while (n < max_digits && (d = hex_digit((*p)[0])) >= 0) {
                v = v << 4 | (uint64_t)d;
                (*p)++;
                n++;
        }
        if (n == 0)
                return false;
        *ret = v;
        return true;
}

/* A PCI address ("00000000:07:00.0", "0000:07:00.0" or "07:00.0") as one
 * number, so that the distance between two keys says how far apart the
 * GPUs sit on the bus. Anything else is BUS_UNKNOWN. */
static uint64_t bus_key(const char *s)
{
        uint64_t a, b, domain = 0, bus, dev, fn;
        const char *p = s;

        if (!parse_hex(&p, 8, &a) || *p++ != ':' || !parse_hex(&p, 2, &b))
                return BUS_UNKNOWN;
        if (*p == ':') {
                p++;
                domain = a;
                bus = b;
                if (a > UINT32_MAX || !parse_hex(&p, 2, &dev))
                        return BUS_UNKNOWN;
        } else {
                bus = a;
                dev = b;
        }
        if (bus > 0xff || dev > 0x1f || *p++ != '.' || !parse_hex(&p, 1, &fn) || fn > 7 || *p)
                return BUS_UNKNOWN;
        return domain << 16 | bus << 8 | dev << 3 | fn;
}

static int cmp_uuid(const void *a, const void *b, void *userdata)
{
        const PolicyDevice *d = userdata;

        return strcmp(d[*(const size_t *)a].uuid, d[*(const size_t *)b].uuid);
}

static int cmp_profile(const void *a, const void *b, void *userdata)
{
        const PolicyDevice *d = userdata;
        size_t i = *(const size_t *)a, j = *(const size_t *)b;
        int r = strcmp(d[i].profile, d[j].profile);

        return r != 0 ? r : (i > j) - (i < j);
}

#define CMP(x, y)                                                                                  \
        do {                                                                                       \
                if ((x) != (y))                                                                    \
                        return (x) < (y) ? -1 : 1;                                                 \
        } while (0)

/* Unknown NUMA nodes (-1) sort first; they form no NUMA group. */
static int cmp_numa(const void *a, const void *b, void *userdata)
{
        const Ctx *c = userdata;
        size_t i = *(const size_t *)a, j = *(const size_t *)b;

        CMP(c->cls[i], c->cls[j]);
        CMP(c->devices[i].numa_node, c->devices[j].numa_node);
        CMP(c->bus_key[i], c->bus_key[j]);
        CMP(c->devices[i].last_released_usec, c->devices[j].last_released_usec);
        CMP(i, j);
        return 0;
}

static int cmp_bus(const void *a, const void *b, void *userdata)
{
        const Ctx *c = userdata;
        size_t i = *(const size_t *)a, j = *(const size_t *)b;

        CMP(c->cls[i], c->cls[j]);
        CMP(c->bus_key[i], c->bus_key[j]);
        CMP(c->devices[i].last_released_usec, c->devices[j].last_released_usec);
        CMP(i, j);
        return 0;
}

/* max_devices 0 means no cap, as in the config. */
static unsigned cap_of(unsigned max_devices)
{
        return max_devices == 0 ? UINT_MAX : max_devices;
}

static int cmp_uid(const void *a, const void *b)
{
        const PolicyUserUsage *x = a, *y = b;

        CMP(x->uid, y->uid);
        return 0;
}

/* Sort an index array: insertion sort up to SORT_SMALL_MAX entries (a lab's
 * 4-16 devices, mostly in order already: a few comparisons instead of
 * qsort_r's merge set-up, ~5 k instructions of each acquire, issue 16),
 * qsort_r above. Every comparator here is a total order on the input
 * ctx_build accepts (ties end on the indices; uuids are distinct, or
 * refused right after their sort), so both give the same result. */
#define SORT_SMALL_MAX 32

static void sort_indices(size_t *a, size_t n, int (*cmp)(const void *, const void *, void *),
                         void *userdata)
{
        if (n > SORT_SMALL_MAX) {
                qsort_r(a, n, sizeof(size_t), cmp, userdata);
                return;
        }
        for (size_t i = 1; i < n; i++) {
                size_t v = a[i], j = i;

                for (; j > 0 && cmp(&a[j - 1], &v, userdata) > 0; j--)
                        a[j] = a[j - 1];
                a[j] = v;
        }
}

/* Build the view of the devices. limits may be NULL (policy_check_request):
 * then nothing is grantable. -EINVAL for NULL strings and duplicate uuids. */
static int ctx_build(Ctx *c, const PolicyDevice *devices, size_t n, const PolicyLimits *limits)
{
        size_t n_mig = 0;

        *c = (Ctx){.devices = devices,
                   .n_devices = n,
                   .unleased_memory_max = limits ? limits->unleased_memory_max : 0,
                   .has_limits = limits != NULL};

        if (n > POLICY_MAX_DEVICES || (n > 0 && !devices))
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!devices[i].uuid || !devices[i].parent_uuid || !devices[i].pci_bus_id)
                        return -EINVAL;

        /* One zeroed block for the 15 arrays: their callocs and frees were
         * ~7 k instructions of each acquire (issue 16, sixth pass). n is at
         * most POLICY_MAX_DEVICES. */
        c->block = calloc(1, ctx_layout(c, n + 1, NULL));
        if (!c->block)
                return -ENOMEM;
        (void)ctx_layout(c, n + 1, c->block);

        for (size_t i = 0; i < n; i++) {
                const PolicyDevice *d = &devices[i];

                c->by_uuid[i] = i;
                c->bus_key[i] = bus_key(d->pci_bus_id);
                c->grantable[i] = limits && !d->leased && d->healthy && !d->drained &&
                                  d->unleased_memory_bytes <= limits->unleased_memory_max;
                /* A GPU with shared leases is not free for a whole-GPU one. */
                c->share_ok[i] = c->grantable[i] && !d->profile && d->share_capacity_bytes > 0;
                if (d->shared_leases > 0 || d->shared_budget_bytes > 0)
                        c->grantable[i] = false;
                if (d->profile)
                        c->order_bus[n_mig++] = i; /* borrowed as scratch below */
        }
        sort_indices(c->by_uuid, n, cmp_uuid, (void *)devices);
        for (size_t i = 1; i < n; i++)
                if (strcmp(devices[c->by_uuid[i - 1]].uuid, devices[c->by_uuid[i]].uuid) == 0)
                        return -EINVAL;

        /* Classes: 0 for whole GPUs, then one per distinct profile, sorted. */
        sort_indices(c->order_bus, n_mig, cmp_profile, (void *)devices);
        c->n_classes = 1;
        for (size_t k = 0; k < n_mig; k++) {
                size_t i = c->order_bus[k];

                if (k == 0 || strcmp(devices[c->order_bus[k - 1]].profile, devices[i].profile) != 0)
                        c->profiles[c->n_classes++] = devices[i].profile;
                c->cls[i] = c->n_classes - 1;
        }
        for (size_t i = 0; i < n; i++) {
                c->class_start[c->cls[i] + 1]++;
                c->order_numa[i] = i;
                c->order_bus[i] = i;
        }
        for (size_t k = 0; k < c->n_classes; k++)
                c->class_start[k + 1] += c->class_start[k];
        sort_indices(c->order_numa, n, cmp_numa, c);
        sort_indices(c->order_bus, n, cmp_bus, c);
        return 0;
}

/* Devices in a class, in any state. */
static size_t class_size(const Ctx *c, size_t cls)
{
        return c->class_start[cls + 1] - c->class_start[cls];
}

static bool ctx_find_uuid(const Ctx *c, const char *uuid, size_t *ret)
{
        size_t lo = 0, hi = c->n_devices;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int r = strcmp(uuid, c->devices[c->by_uuid[mid]].uuid);

                if (r == 0) {
                        *ret = c->by_uuid[mid];
                        return true;
                }
                if (r < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return false;
}

static bool ctx_find_profile(const Ctx *c, const char *profile, size_t *ret)
{
        size_t lo = 1, hi = c->n_classes;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int r = strcmp(profile, c->profiles[mid]);

                if (r == 0) {
                        *ret = mid;
                        return true;
                }
                if (r < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return false;
}

/* Checks that do not depend on the devices: pointers and string bounds the
 * caller must get right. Runs before anything is written to the output. */
static int request_validate(const PolicyRequest *r)
{
        if ((r->n_named > 0 && !r->named) || (r->n_mig > 0 && !r->mig))
                return -EINVAL;
        if (r->n_named <= POLICY_MAX_REQUEST_ITEMS)
                for (size_t i = 0; i < r->n_named; i++)
                        if (!r->named[i])
                                return -EINVAL;
        if (r->n_mig <= POLICY_MAX_REQUEST_ITEMS)
                for (size_t i = 0; i < r->n_mig; i++)
                        if (strnlen(r->mig[i].profile, POLICY_PROFILE_MAX) == POLICY_PROFILE_MAX)
                                return -EINVAL;
        return 0;
}

static void format_bytes(char *buf, size_t len, uint64_t v)
{
        (void)format_size(buf, len, v);
}

/* A shared request: one slice of one shareable whole GPU, which must exist
 * with enough capacity (in any state). */
static int share_resolve(const Ctx *c, const PolicyRequest *r, unsigned max_devices, Want *w,
                         char *reason, size_t len)
{
        uint64_t largest = 0;
        char want[32], have[32];

        if (r->n_named > 0 || r->n_mig > 0 || r->n_gpus > 1) {
                snprintf(reason, len,
                         "a shared lease is a slice of one GPU: --share goes without --gpus N, "
                         "--device and --mig");
                return POLICY_IMPOSSIBLE;
        }
        if (r->share_bytes < POLICY_SHARE_MIN_BYTES) {
                snprintf(reason, len, "a shared lease's budget is at least 1 MiB");
                return POLICY_IMPOSSIBLE;
        }
        for (size_t i = 0; i < c->n_devices; i++)
                if (!c->devices[i].profile)
                        largest = MAX(largest, c->devices[i].share_capacity_bytes);
        format_bytes(want, sizeof want, r->share_bytes);
        format_bytes(have, sizeof have, largest);
        if (largest == 0) {
                snprintf(reason, len,
                         "no GPU here is shareable (the admin lists them in sharing: gpus or "
                         "models of gpukeeper.yaml)");
                return POLICY_IMPOSSIBLE;
        }
        if (largest < r->share_bytes) {
                snprintf(reason, len,
                         "asks for %s of a shared GPU, the largest shared GPU takes %s", want,
                         have);
                return POLICY_IMPOSSIBLE;
        }
        if (cap_of(max_devices) < 1) {
                snprintf(reason, len, "asks for 1 device, above your limit of %u devices",
                         max_devices);
                return POLICY_IMPOSSIBLE;
        }
        w->form = WANT_SHARE;
        w->size = 1;
        w->share_bytes = r->share_bytes;
        return 0;
}

/* Resolve a request against the devices that exist, in any state. Returns
 * 0, POLICY_IMPOSSIBLE with a reason, or -EINVAL. */
static int request_resolve(const Ctx *c, const PolicyRequest *r, unsigned max_devices, Want *w,
                           char *reason, size_t len)
{
        int forms = (r->n_gpus > 0) + (r->n_named > 0) + (r->n_mig > 0);
        int k;

        k = request_validate(r);
        if (k < 0)
                return k;

        *w = (Want){};
        if (r->share_bytes > 0)
                return share_resolve(c, r, max_devices, w, reason, len);
        if (forms == 0) {
                snprintf(reason, len,
                         "empty request: ask for a number of GPUs, MIG instances or "
                         "devices by name");
                return POLICY_IMPOSSIBLE;
        }
        if (forms > 1) {
                snprintf(reason, len,
                         "a request asks for a number of GPUs, MIG instances or "
                         "devices by name, not a mix");
                return POLICY_IMPOSSIBLE;
        }
        if (r->n_named > POLICY_MAX_REQUEST_ITEMS || r->n_mig > POLICY_MAX_REQUEST_ITEMS) {
                snprintf(reason, len, "asks for %zu items, at most %d fit in one request",
                         MAX(r->n_named, r->n_mig), POLICY_MAX_REQUEST_ITEMS);
                return POLICY_IMPOSSIBLE;
        }

        if (r->n_gpus > 0) {
                w->form = WANT_GPUS;
                w->size = r->n_gpus;
                if (w->size > class_size(c, WHOLE_CLASS)) {
                        if (class_size(c, WHOLE_CLASS) == 0)
                                snprintf(reason, len,
                                         "asks for %u GPU%s, this machine has no GPU outside MIG "
                                         "mode",
                                         r->n_gpus, plural(r->n_gpus));
                        else
                                snprintf(reason, len,
                                         "asks for %u GPU%s, this machine has %zu whole GPU%s",
                                         r->n_gpus, plural(r->n_gpus), class_size(c, WHOLE_CLASS),
                                         plural(class_size(c, WHOLE_CLASS)));
                        return POLICY_IMPOSSIBLE;
                }
        } else if (r->n_named > 0) {
                w->form = WANT_NAMED;
                for (size_t i = 0; i < r->n_named; i++) {
                        if (!ctx_find_uuid(c, r->named[i], &w->idx[i])) {
                                snprintf(reason, len, "unknown device %.64s", r->named[i]);
                                return POLICY_IMPOSSIBLE;
                        }
                        for (size_t j = 0; j < i; j++)
                                if (w->idx[j] == w->idx[i]) {
                                        snprintf(reason, len, "device %.64s is named twice",
                                                 r->named[i]);
                                        return POLICY_IMPOSSIBLE;
                                }
                }
                w->n = w->size = r->n_named;
        } else {
                w->form = WANT_MIG;
                for (size_t i = 0; i < r->n_mig; i++) {
                        const PolicyMigItem *m = &r->mig[i];
                        uint64_t total = 0;

                        if (m->profile[0] == '\0') {
                                snprintf(reason, len, "empty MIG profile");
                                return POLICY_IMPOSSIBLE;
                        }
                        if (m->count == 0) {
                                snprintf(reason, len, "asks for 0 MIG instances of profile %s",
                                         m->profile);
                                return POLICY_IMPOSSIBLE;
                        }
                        if (!ctx_find_profile(c, m->profile, &w->idx[i])) {
                                snprintf(reason, len, "no MIG instance of profile %s", m->profile);
                                return POLICY_IMPOSSIBLE;
                        }
                        /* The same profile may be listed more than once: its items add up. */
                        for (size_t j = 0; j < r->n_mig; j++)
                                if (strcmp(r->mig[j].profile, m->profile) == 0)
                                        total += r->mig[j].count;
                        if (total > class_size(c, w->idx[i])) {
                                snprintf(reason, len,
                                         "asks for %" PRIu64 " MIG instance%s of profile %s, this "
                                         "machine has %zu",
                                         total, plural(total), m->profile,
                                         class_size(c, w->idx[i]));
                                return POLICY_IMPOSSIBLE;
                        }
                        w->count[i] = m->count;
                        w->size += m->count;
                }
                w->n = r->n_mig;
        }

        if (w->size > cap_of(max_devices)) {
                snprintf(reason, len, "asks for %zu device%s, above your limit of %u device%s",
                         w->size, plural(w->size), max_devices, plural(max_devices));
                return POLICY_IMPOSSIBLE;
        }
        return 0;
}

static bool available(const Ctx *c, size_t i)
{
        return c->grantable[i] && !c->taken[i] && !c->reserved[i] && c->share_extra[i] == 0;
}

/* Available devices of a class, and those only kept back by reservations. */
static size_t class_free(const Ctx *c, size_t cls, size_t *ret_kept)
{
        size_t n = 0, kept = 0;

        for (size_t k = c->class_start[cls]; k < c->class_start[cls + 1]; k++) {
                size_t i = c->order_bus[k];

                if (available(c, i))
                        n++;
                else if (c->grantable[i] && !c->taken[i])
                        kept++;
        }
        *ret_kept = kept;
        return n;
}

/* Among the windows of want consecutive candidates cand[from..to), pick the
 * one with the smallest bus-id spread, then the smallest most-recent
 * release (LRU), then the first. Updates *best_* when it finds a better one.
 * The maximum release time per window comes from a monotonic deque, so a
 * scan is linear. */
static void scan_windows(Ctx *c, size_t from, size_t to, size_t want, size_t *best_start,
                         uint64_t *best_spread, uint64_t *best_lru, bool *found)
{
        size_t head = 0, tail = 0;

        for (size_t e = from; e < to; e++) {
                uint64_t lru = c->devices[c->cand[e]].last_released_usec;

                while (tail > head &&
                       c->devices[c->cand[c->deque[tail - 1]]].last_released_usec <= lru)
                        tail--;
                c->deque[tail++] = e;
                if (e + 1 < from + want)
                        continue;

                size_t s = e + 1 - want;
                uint64_t first = c->bus_key[c->cand[s]], last = c->bus_key[c->cand[e]];
                uint64_t spread = last == BUS_UNKNOWN ? BUS_UNKNOWN : last - first;

                while (c->deque[head] < s)
                        head++;
                uint64_t max_lru = c->devices[c->cand[c->deque[head]]].last_released_usec;

                if (!*found || spread < *best_spread ||
                    (spread == *best_spread && max_lru < *best_lru)) {
                        *found = true;
                        *best_start = s;
                        *best_spread = spread;
                        *best_lru = max_lru;
                }
        }
}

/* Pick `want` available devices of a class into ret (the caller checked
 * that there are enough) and mark them taken. A multi-device pick stays on
 * one NUMA node when one has enough; in any case it prefers the smallest
 * bus-id spread, then the least recently used. One device: the least
 * recently used, then the lowest index. Windows that tie on everything go
 * to the first in bus order, whose last key is the device index, so the
 * choice is deterministic. */
static unsigned rank_of(const Ctx *c, size_t i);

static void choose_ranked(Ctx *c, size_t cls, size_t want, unsigned max_rank, size_t *ret)
{
        size_t m = 0, best_start = 0;
        uint64_t best_spread = 0, best_lru = 0;
        bool found = false;

        if (want > 1) {
                for (size_t k = c->class_start[cls]; k < c->class_start[cls + 1]; k++)
                        if (available(c, c->order_numa[k]) && rank_of(c, c->order_numa[k]) <= max_rank)
                                c->cand[m++] = c->order_numa[k];
                for (size_t s = 0, e; s < m; s = e) {
                        int node = c->devices[c->cand[s]].numa_node;

                        for (e = s + 1; e < m && c->devices[c->cand[e]].numa_node == node; e++)
                                ;
                        if (node >= 0 && e - s >= want)
                                scan_windows(c, s, e, want, &best_start, &best_spread, &best_lru,
                                             &found);
                }
        }
        if (!found) {
                m = 0;
                for (size_t k = c->class_start[cls]; k < c->class_start[cls + 1]; k++)
                        if (available(c, c->order_bus[k]) && rank_of(c, c->order_bus[k]) <= max_rank)
                                c->cand[m++] = c->order_bus[k];
                if (want == 1) {
                        /* The bus order breaks ties by LRU only within one bus id. */
                        for (size_t k = 1; k < m; k++) {
                                const PolicyDevice *a = &c->devices[c->cand[k]],
                                                   *b = &c->devices[c->cand[best_start]];

                                if (a->last_released_usec < b->last_released_usec ||
                                    (a->last_released_usec == b->last_released_usec &&
                                     c->cand[k] < c->cand[best_start]))
                                        best_start = k;
                        }
                } else
                        scan_windows(c, 0, m, want, &best_start, &best_spread, &best_lru, &found);
        }
        for (size_t k = 0; k < want; k++) {
                ret[k] = c->cand[best_start + k];
                c->taken[ret[k]] = true;
        }
}

/* How much others use a free device: 0 nobody, 2 busy (utilisation at or
 * above POLICY_BUSY_UTILIZATION), 4 processes without a lease run there;
 * plus 1 for a shareable GPU, which a whole-GPU lease takes only after the
 * others of its rank (shared leases need it more). */
static unsigned rank_of(const Ctx *c, size_t i)
{
        const PolicyDevice *d = &c->devices[i];

        unsigned shareable = d->share_capacity_bytes > 0;

        if (d->unleased_processes > 0 || d->unleased_memory_bytes > 0)
                return 4 + shareable;
        return (d->utilization_pct >= POLICY_BUSY_UTILIZATION ? 2 : 0) + shareable;
}

#define MAX_RANK 5

/* The least used devices first: the pick is made among the devices of the
 * lowest rank that has enough of them (the caller checked that all the
 * available ones are enough, so MAX_RANK always is). */
static void choose(Ctx *c, size_t cls, size_t want, size_t *ret)
{
        for (unsigned max_rank = 0; max_rank < MAX_RANK; max_rank++) {
                size_t n = 0;

                for (size_t k = c->class_start[cls]; k < c->class_start[cls + 1]; k++)
                        if (available(c, c->order_bus[k]) && rank_of(c, c->order_bus[k]) <= max_rank)
                                n++;
                if (n >= want) {
                        choose_ranked(c, cls, want, max_rank, ret);
                        return;
                }
        }
        choose_ranked(c, cls, want, MAX_RANK, ret);
}

static const char *device_state(const Ctx *c, size_t i)
{
        const PolicyDevice *d = &c->devices[i];

        if (d->leased || c->taken[i])
                return "leased";
        if (d->shared_leases > 0 || c->share_extra[i] > 0)
                return "shared leases hold it";
        if (!d->healthy)
                return "unhealthy";
        if (d->drained)
                return "drained";
        if (d->unleased_memory_bytes > c->unleased_memory_max)
                return "in use by processes without a lease";
        return "kept for an earlier request";
}

/* Waiting for `want` devices of a class: say how many are free and how many
 * more are kept back for earlier requests. */
static void wait_reason(char *reason, size_t len, const char *what, size_t want, size_t n_free,
                        size_t kept)
{
        int n;

        if (want == 1)
                n = snprintf(reason, len, "waiting for a %s", what);
        else
                n = snprintf(reason, len, "waiting for %zu %ss: %zu free", want, what, n_free);
        if (kept > 0 && n >= 0 && (size_t)n < len)
                snprintf(reason + n, len - (size_t)n, "%s%zu free kept for earlier requests",
                         want == 1 ? ": " : ", ", kept);
}

/* Grant the request now if every device it needs is available: returns
 * true with the devices in ret (w->size of them, marked taken). Otherwise
 * false with a reason, and nothing taken. */
/* A named device that is not grantable only because of the unleased memory
 * of `uid`'s own processes is available to `uid` (allocate.h). */
static bool available_to(const Ctx *c, size_t i, uid_t uid)
{
        const PolicyDevice *d = &c->devices[i];

        if (available(c, i))
                return true;
        return !c->taken[i] && !c->reserved[i] && c->unleased_memory_max != UINT64_MAX &&
               !d->leased && d->healthy && !d->drained && d->unleased_by_one &&
               d->unleased_uid == uid && c->has_limits;
}

/* May take a shared lease now: shareable, free of whole leases, healthy,
 * not drained, not granted whole in this call, not kept for an earlier
 * request. */
static bool share_available(const Ctx *c, size_t i)
{
        return c->share_ok[i] && !c->taken[i] && !c->reserved[i];
}

static bool try_share(Ctx *c, const Want *w, size_t *ret, char *reason, size_t len)
{
        uint64_t most = 0, most_kept = 0;
        size_t m = 0, pick;
        char want[32], have[32];
        int n;

        for (size_t i = 0; i < c->n_devices; i++) {
                uint64_t f = policy_share_free(&c->devices[i], c->share_extra[i]);

                if (share_available(c, i)) {
                        c->cand[m++] = i;
                        most = MAX(most, f);
                } else if (c->share_ok[i] && !c->taken[i])
                        most_kept = MAX(most_kept, f);
        }
        if (policy_share_best_fit(c->devices, c->cand, m, c->share_extra, w->share_bytes, &pick)) {
                c->share_extra[pick] += w->share_bytes;
                c->grantable[pick] = false; /* no whole-GPU lease on it now */
                ret[0] = pick;
                return true;
        }
        format_bytes(want, sizeof want, w->share_bytes);
        format_bytes(have, sizeof have, most);
        n = snprintf(reason, len, "waiting for %s on a shared GPU: %s free on one at most", want,
                     have);
        if (most_kept >= w->share_bytes && n >= 0 && (size_t)n < len)
                snprintf(reason + n, len - (size_t)n, ", more kept for earlier requests");
        return false;
}

static bool try_grant(Ctx *c, const Want *w, uid_t uid, size_t *ret, char *reason, size_t len)
{
        size_t kept;

        switch (w->form) {
        case WANT_SHARE:
                return try_share(c, w, ret, reason, len);
        case WANT_GPUS: {
                size_t n_free = class_free(c, WHOLE_CLASS, &kept);

                if (n_free < w->size) {
                        wait_reason(reason, len, "GPU", w->size, n_free, kept);
                        return false;
                }
                choose(c, WHOLE_CLASS, w->size, ret);
                return true;
        }
        case WANT_NAMED:
                for (size_t i = 0; i < w->n; i++)
                        if (!available_to(c, w->idx[i], uid)) {
                                snprintf(reason, len, "waiting for %.64s (%s)",
                                         c->devices[w->idx[i]].uuid, device_state(c, w->idx[i]));
                                return false;
                        }
                for (size_t i = 0; i < w->n; i++) {
                        ret[i] = w->idx[i];
                        c->taken[ret[i]] = true;
                }
                return true;
        case WANT_MIG:
                /* Classes are disjoint, so per-class counts decide it exactly. */
                for (size_t i = 0; i < w->n; i++) {
                        size_t total = 0, n_free = class_free(c, w->idx[i], &kept);
                        char what[POLICY_PROFILE_MAX + 16];

                        for (size_t j = 0; j < w->n; j++)
                                if (w->idx[j] == w->idx[i])
                                        total += w->count[j];
                        if (n_free < total) {
                                snprintf(what, sizeof(what), "%s MIG instance",
                                         c->profiles[w->idx[i]]);
                                wait_reason(reason, len, what, total, n_free, kept);
                                return false;
                        }
                }
                for (size_t i = 0, n = 0; i < w->n; n += w->count[i], i++)
                        choose(c, w->idx[i], w->count[i], ret + n);
                return true;
        }
        return false;
}

static void reserve_class(Ctx *c, size_t cls)
{
        if (c->class_reserved[cls])
                return;
        c->class_reserved[cls] = true;
        for (size_t k = c->class_start[cls]; k < c->class_start[cls + 1]; k++)
                c->reserved[c->order_bus[k]] = true;
}

/* Keep every device the waiting request could ever use from later ones. */
static void reserve(Ctx *c, const Want *w)
{
        switch (w->form) {
        case WANT_GPUS:
                reserve_class(c, WHOLE_CLASS);
                break;
        case WANT_NAMED:
                for (size_t i = 0; i < w->n; i++)
                        c->reserved[w->idx[i]] = true;
                break;
        case WANT_MIG:
                for (size_t i = 0; i < w->n; i++)
                        reserve_class(c, w->idx[i]);
                break;
        case WANT_SHARE:
                for (size_t i = 0; i < c->n_devices; i++)
                        if (!c->devices[i].profile &&
                            c->devices[i].share_capacity_bytes >= w->share_bytes)
                                c->reserved[i] = true;
                break;
        }
}

int policy_check_request(const PolicyDevice *devices, size_t n_devices, const PolicyRequest *req,
                         const PolicyUserUsage *usage, char *ret_reason, size_t reason_len)
{
        _cleanup_(ctx_done) Ctx c = {};
        char reason[sizeof(((PolicyDecision *)NULL)->reason)];
        Want w;
        int r;

        if (!req || !ret_reason || reason_len == 0)
                return -EINVAL;
        r = ctx_build(&c, devices, n_devices, NULL);
        if (r < 0)
                return r;
        r = request_resolve(&c, req, usage ? usage->max_devices : 0, &w, reason, sizeof(reason));
        if (r == POLICY_IMPOSSIBLE)
                snprintf(ret_reason, reason_len, "%s", reason);
        return r;
}

void policy_decisions_free(PolicyDecision *d, size_t n)
{
        if (!d)
                return;
        for (size_t i = 0; i < n; i++) {
                free(d[i].devices);
                d[i].devices = NULL;
                d[i].n_devices = 0;
        }
}

int policy_allocate(const PolicyDevice *devices, size_t n_devices, const PolicyRequest *queue,
                    size_t n_queue, const PolicyUserUsage *usage, size_t n_usage,
                    const PolicyLimits *limits, PolicyDecision *ret)
{
        _cleanup_(ctx_done) Ctx c = {};
        _cleanup_free_ PolicyUserUsage *users = NULL;
        size_t picks[POLICY_MAX_DEVICES], q;
        int r;

        if (n_queue > POLICY_MAX_QUEUE || (n_queue > 0 && (!queue || !ret)) || !limits ||
            n_usage > POLICY_MAX_QUEUE || (n_usage > 0 && !usage))
                return -EINVAL;
        r = ctx_build(&c, devices, n_devices, limits);
        if (r < 0)
                return r;

        /* A private copy sorted by uid: held counts grow as grants are made. */
        users = calloc(n_usage + 1, sizeof(PolicyUserUsage));
        if (!users)
                return -ENOMEM;
        if (n_usage > 0)
                memcpy(users, usage, n_usage * sizeof(PolicyUserUsage));
        qsort(users, n_usage, sizeof(PolicyUserUsage), cmp_uid);
        for (size_t i = 1; i < n_usage; i++)
                if (users[i - 1].uid == users[i].uid)
                        return -EINVAL;
        for (q = 0; q < n_queue; q++) {
                PolicyUserUsage key = {.uid = queue[q].uid};

                if (!bsearch(&key, users, n_usage, sizeof(PolicyUserUsage), cmp_uid))
                        return -EINVAL;
                r = request_validate(&queue[q]);
                if (r < 0)
                        return r;
        }

        for (q = 0; q < n_queue; q++) {
                PolicyUserUsage key = {.uid = queue[q].uid};
                PolicyUserUsage *u =
                    bsearch(&key, users, n_usage, sizeof(PolicyUserUsage), cmp_uid);
                PolicyDecision *d = &ret[q];
                Want w;

                *d = (PolicyDecision){};
                r = request_resolve(&c, &queue[q], u->max_devices, &w, d->reason,
                                    sizeof(d->reason));
                if (r < 0)
                        goto fail;
                if (r == POLICY_IMPOSSIBLE) {
                        d->verdict = POLICY_IMPOSSIBLE;
                        continue;
                }
                if ((uint64_t)u->held + w.size > cap_of(u->max_devices)) {
                        d->verdict = POLICY_WAIT;
                        snprintf(d->reason, sizeof(d->reason),
                                 "waiting for your own leases: limit %u device%s", u->max_devices,
                                 plural(u->max_devices));
                        continue;
                }
                if (!try_grant(&c, &w, queue[q].uid, picks, d->reason, sizeof(d->reason))) {
                        d->verdict = POLICY_WAIT;
                        reserve(&c, &w);
                        continue;
                }
                d->devices = malloc(w.size * sizeof(size_t));
                if (!d->devices) {
                        r = -ENOMEM;
                        goto fail;
                }
                memcpy(d->devices, picks, w.size * sizeof(size_t));
                d->n_devices = w.size;
                d->verdict = POLICY_GRANT;
                d->reason[0] = '\0';
                u->held += (unsigned)w.size;
        }
        return 0;

fail:
        /* Entries after q were never written. */
        policy_decisions_free(ret, q + 1);
        return r;
}
