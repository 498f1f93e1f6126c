/* Tests of the allocator (src/policy/allocate.c).
 *
 * Table tests pin each rule down on a small hand-made lab: LRU choice,
 * NUMA grouping and bus-id closeness, skipped device states, MIG profile
 * matching, named devices, FIFO order, the backfill rule, user caps, every
 * kind of impossible request, and -EINVAL for malformed input.
 *
 * The property test then runs thousands of random labs and queues through
 * simulated time (grants, releases, devices changing state, new arrivals)
 * and checks every decision against an independent re-statement of the
 * rules: no device granted twice or while unusable, grants match requests
 * exactly, caps hold, backfill never takes a device an earlier waiting
 * request could use, a request waits only when it really cannot start, and
 * the queue drains in bounded steps once arrivals stop. A failure prints
 * the seed; POLICY_SEED=<n> replays that one scenario. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "policy/allocate.h"

#define LAB_MAX 64
#define GIB (UINT64_C(1) << 30)
#define ELEMENTS(x) (sizeof(x) / sizeof((x)[0]))

typedef struct Lab {
        PolicyDevice d[LAB_MAX];
        char uuid[LAB_MAX][48];
        char parent[LAB_MAX][48];
        char bus[LAB_MAX][32];
        size_t n;
} Lab;

static size_t lab_add(Lab *l, const char *uuid, const char *parent, const char *bus,
                      const char *profile, int numa, uint64_t lru)
{
        size_t i = l->n++;

        assert_true(i < LAB_MAX);
        snprintf(l->uuid[i], sizeof(l->uuid[i]), "%s", uuid);
        snprintf(l->parent[i], sizeof(l->parent[i]), "%s", parent ? parent : uuid);
        snprintf(l->bus[i], sizeof(l->bus[i]), "%s", bus);
        l->d[i] = (PolicyDevice){.uuid = l->uuid[i],
                                 .parent_uuid = l->parent[i],
                                 .pci_bus_id = l->bus[i],
                                 .profile = profile,
                                 .numa_node = numa,
                                 .healthy = true,
                                 .last_released_usec = lru};
        return i;
}

/* Whole GPU "GPU-<i>" on bus 00000000:<bus>:00.0. */
static size_t gpu(Lab *l, unsigned bus, int numa, uint64_t lru)
{
        char uuid[32], b[32];

        snprintf(uuid, sizeof(uuid), "GPU-%zu", l->n);
        snprintf(b, sizeof(b), "00000000:%02X:00.0", bus);
        return lab_add(l, uuid, NULL, b, NULL, numa, lru);
}

/* MIG instance "MIG-<i>" of profile on GPU-m<bus>. */
static size_t mig(Lab *l, unsigned bus, const char *profile, int numa, uint64_t lru)
{
        char uuid[32], parent[32], b[32];

        snprintf(uuid, sizeof(uuid), "MIG-%zu", l->n);
        snprintf(parent, sizeof(parent), "GPU-m%u", bus);
        snprintf(b, sizeof(b), "00000000:%02X:00.0", bus);
        return lab_add(l, uuid, parent, b, profile, numa, lru);
}

static const PolicyLimits limits = {.unleased_memory_max = 1 * GIB};

/* Run the allocator with one user (uid 1000, cap 8, nothing held) unless
 * usage is given; the caller frees the decisions. */
static PolicyDecision *run(const Lab *l, const PolicyRequest *q, size_t n, const PolicyUserUsage *u,
                           size_t n_u)
{
        static const PolicyUserUsage one = {.uid = 1000, .held = 0, .max_devices = 8};
        PolicyDecision *d = calloc(n, sizeof(*d));

        assert_non_null(d);
        assert_int_equal(policy_allocate(l->d, l->n, q, n, u ? u : &one, u ? n_u : 1, &limits, d),
                         0);
        return d;
}

static void done(PolicyDecision *d, size_t n)
{
        policy_decisions_free(d, n);
        free(d);
}

#define GPUS(n_) ((PolicyRequest){.id = __LINE__, .uid = 1000, .n_gpus = (n_)})
#define NAMED(...)                                                                                 \
        ((PolicyRequest){.id = __LINE__,                                                           \
                         .uid = 1000,                                                              \
                         .named = (const char *const[]){__VA_ARGS__},                              \
                         .n_named =                                                                \
                             sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)})
#define MIG(...)                                                                                   \
        ((PolicyRequest){.id = __LINE__,                                                           \
                         .uid = 1000,                                                              \
                         .mig = (const PolicyMigItem[]){__VA_ARGS__},                              \
                         .n_mig = sizeof((const PolicyMigItem[]){__VA_ARGS__}) /                   \
                                  sizeof(PolicyMigItem)})

static void assert_grant(const PolicyDecision *d, size_t n, const size_t *want)
{
        if (d->verdict != POLICY_GRANT)
                fail_msg("expected a grant, got verdict %d: %s", d->verdict, d->reason);
        assert_int_equal(d->n_devices, n);
        for (size_t i = 0; i < n; i++) {
                bool found = false;

                for (size_t j = 0; j < n; j++)
                        found |= d->devices[j] == want[i];
                if (!found)
                        fail_msg("device %zu not granted", want[i]);
        }
}

#define GRANTS(d, ...)                                                                             \
        assert_grant((d), sizeof((size_t[]){__VA_ARGS__}) / sizeof(size_t), (size_t[]){__VA_ARGS__})

static void assert_wait(const PolicyDecision *d, const char *reason)
{
        if (d->verdict != POLICY_WAIT)
                fail_msg("expected to wait (%s), got verdict %d", reason, d->verdict);
        assert_null(d->devices);
        assert_string_equal(d->reason, reason);
}

/* ---- table tests ---- */

static void test_lru_choice(void **state)
{
        Lab l = {};
        PolicyRequest q[] = {GPUS(1), GPUS(1), GPUS(1), GPUS(1)};
        PolicyDecision *d;

        gpu(&l, 0x07, 0, 500);
        gpu(&l, 0x0a, 0, 100);
        gpu(&l, 0x41, 1, 300);
        gpu(&l, 0x44, 1, 100);
        d = run(&l, q, 4, NULL, 0);
        /* Oldest release first; equal times go to the lower index. */
        GRANTS(&d[0], 1);
        GRANTS(&d[1], 3);
        GRANTS(&d[2], 2);
        GRANTS(&d[3], 0);
        done(d, 4);

        /* Never-leased devices (0) come before any released one. */
        l.d[2].last_released_usec = 0;
        d = run(&l, q, 1, NULL, 0);
        GRANTS(&d[0], 2);
        done(d, 1);
}

/* Free devices nobody else uses come before busy ones, and those before
 * devices where processes without a lease run, whatever their LRU order
 * (issue 17: a root job at 87 % was picked over an idle GPU). */
static void test_prefers_unused_devices(void **state)
{
        Lab l = {};
        PolicyRequest q[] = {GPUS(1), GPUS(1), GPUS(1)};
        PolicyRequest two[] = {GPUS(2)};
        PolicyDecision *d;

        gpu(&l, 0x07, 0, 0);   /* never leased, but a root job at 87 % with memory */
        gpu(&l, 0x0a, 0, 900); /* busy (utilisation 50 %), no process */
        gpu(&l, 0x41, 1, 500); /* idle */
        l.d[0].unleased_processes = 1;
        l.d[0].unleased_memory_bytes = GIB / 2;
        l.d[0].utilization_pct = 87;
        l.d[1].utilization_pct = 50;
        l.d[2].utilization_pct = -1; /* unknown counts as not busy */
        d = run(&l, q, 3, NULL, 0);
        GRANTS(&d[0], 2);
        GRANTS(&d[1], 1);
        GRANTS(&d[2], 0);
        done(d, 3);

        /* Two devices: the idle and the busy one, not the foreign one. */
        d = run(&l, two, 1, NULL, 0);
        GRANTS(&d[0], 1, 2);
        done(d, 1);

        /* A process without memory still marks a device as someone's. */
        l.d[0].unleased_memory_bytes = 0;
        l.d[0].utilization_pct = 0;
        l.d[1].utilization_pct = 0;
        d = run(&l, q, 3, NULL, 0);
        GRANTS(&d[0], 2);
        GRANTS(&d[1], 1);
        GRANTS(&d[2], 0);
        done(d, 3);
}

/* A device named by the user whose own unleased processes hold memory
 * there is theirs to lease (lease adopt); to others the limit applies. */
static void test_named_own_unleased_memory(void **state)
{
        Lab l = {};
        PolicyDecision *d;
        PolicyRequest r;

        gpu(&l, 0x07, 0, 0);
        l.d[0].unleased_memory_bytes = 8 * GIB;
        l.d[0].unleased_processes = 1;
        l.d[0].unleased_by_one = true;
        l.d[0].unleased_uid = 1000; /* run()'s requests are uid 1000's */
        r = NAMED(l.uuid[0]);
        d = run(&l, &r, 1, NULL, 0);
        GRANTS(&d[0], 0);
        done(d, 1);
        l.d[0].unleased_uid = 1001;
        d = run(&l, &r, 1, NULL, 0);
        assert_wait(&d[0], "waiting for GPU-0 (in use by processes without a lease)");
        done(d, 1);
        /* Not by name: never (the allocator does not pick it for anyone). */
        d = run(&l, (PolicyRequest[]){GPUS(1)}, 1, NULL, 0);
        assert_int_equal(d[0].verdict, POLICY_WAIT);
        done(d, 1);
        /* Two owners there: the limit applies to both. */
        l.d[0].unleased_uid = 1000;
        l.d[0].unleased_by_one = false;
        d = run(&l, &r, 1, NULL, 0);
        assert_int_equal(d[0].verdict, POLICY_WAIT);
        done(d, 1);
}

static void test_numa_grouping(void **state)
{
        Lab l = {};
        PolicyRequest q[] = {GPUS(2)};
        PolicyDecision *d;

        gpu(&l, 0x07, 0, 0); /* the least recently used, but alone on node 0 */
        gpu(&l, 0x0a, 0, 0);
        gpu(&l, 0x41, 1, 900);
        gpu(&l, 0x44, 1, 800);
        gpu(&l, 0x47, 1, 700);
        l.d[1].leased = true;
        d = run(&l, q, 1, NULL, 0);
        /* Node 1 has room; within it the two closest, then least recent. */
        GRANTS(&d[0], 3, 4);
        done(d, 1);

        /* No node has two free: fall back to bus closeness across nodes. */
        l.d[3].leased = l.d[4].leased = true;
        d = run(&l, q, 1, NULL, 0);
        GRANTS(&d[0], 0, 2);
        done(d, 1);

        /* Unknown NUMA nodes never form a group. */
        l = (Lab){};
        gpu(&l, 0x07, -1, 0);
        gpu(&l, 0x08, -1, 0);
        gpu(&l, 0x81, 3, 0);
        gpu(&l, 0xc1, 3, 0);
        d = run(&l, q, 1, NULL, 0);
        GRANTS(&d[0], 2, 3);
        done(d, 1);

        /* A single GPU ignores NUMA: the least recently used wins. */
        l.d[0].last_released_usec = 5;
        l.d[1].last_released_usec = 1;
        l.d[2].last_released_usec = 9;
        l.d[3].last_released_usec = 9;
        d = run(&l, (PolicyRequest[]){GPUS(1)}, 1, NULL, 0);
        GRANTS(&d[0], 1);
        done(d, 1);
}

static void test_bus_closeness(void **state)
{
        Lab l = {};
        PolicyDecision *d;

        gpu(&l, 0x01, -1, 10);
        gpu(&l, 0x80, -1, 10);
        gpu(&l, 0x02, -1, 10);
        gpu(&l, 0x81, -1, 20);
        gpu(&l, 0x40, -1, 0);
        /* Pairs (01,02) and (80,81) both span 1; (01,02) was used longer ago. */
        d = run(&l, (PolicyRequest[]){GPUS(2)}, 1, NULL, 0);
        GRANTS(&d[0], 0, 2);
        done(d, 1);

        /* Equal spread and equal age: the lower indices. */
        l.d[3].last_released_usec = 10;
        d = run(&l, (PolicyRequest[]){GPUS(2)}, 1, NULL, 0);
        GRANTS(&d[0], 0, 2);
        done(d, 1);

        /* Three: (01,02,40) spans 0x3f, better than anything with 0x80. */
        d = run(&l, (PolicyRequest[]){GPUS(3)}, 1, NULL, 0);
        GRANTS(&d[0], 0, 2, 4);
        done(d, 1);

        /* Domains count: 0001:01:00.0 is far from 0000:02:00.0. */
        l = (Lab){};
        lab_add(&l, "GPU-a", NULL, "0001:01:00.0", NULL, -1, 0);
        lab_add(&l, "GPU-b", NULL, "0000:02:00.0", NULL, -1, 5);
        lab_add(&l, "GPU-c", NULL, "0000:09:00.0", NULL, -1, 5);
        d = run(&l, (PolicyRequest[]){GPUS(2)}, 1, NULL, 0);
        GRANTS(&d[0], 1, 2);
        done(d, 1);

        /* Short and unparsable bus ids: unknown ones count as far from all. */
        l = (Lab){};
        lab_add(&l, "GPU-a", NULL, "", NULL, -1, 0);
        lab_add(&l, "GPU-b", NULL, "07:00.0", NULL, -1, 5);
        lab_add(&l, "GPU-c", NULL, "zz:00.0", NULL, -1, 0);
        lab_add(&l, "GPU-d", NULL, "0000:08:00.1", NULL, -1, 5);
        lab_add(&l, "GPU-e", NULL, "0000:08:00.1x", NULL, -1, 0);
        d = run(&l, (PolicyRequest[]){GPUS(2)}, 1, NULL, 0);
        GRANTS(&d[0], 1, 3);
        done(d, 1);

        /* All unknown: the two least recently used. */
        l = (Lab){};
        lab_add(&l, "GPU-a", NULL, "", NULL, -1, 9);
        lab_add(&l, "GPU-b", NULL, "", NULL, -1, 3);
        lab_add(&l, "GPU-c", NULL, "", NULL, -1, 7);
        lab_add(&l, "GPU-d", NULL, "", NULL, -1, 1);
        d = run(&l, (PolicyRequest[]){GPUS(2)}, 1, NULL, 0);
        GRANTS(&d[0], 1, 3);
        done(d, 1);
}

static void test_skips_unusable(void **state)
{
        Lab l = {};
        PolicyRequest q[] = {GPUS(1), GPUS(1)};
        PolicyDecision *d;

        gpu(&l, 1, 0, 0);
        gpu(&l, 2, 0, 0);
        gpu(&l, 3, 0, 0);
        gpu(&l, 4, 0, 0);
        gpu(&l, 5, 0, 99);
        gpu(&l, 6, 0, 100);
        l.d[0].drained = true;
        l.d[1].healthy = false;
        l.d[2].unleased_memory_bytes = 1 * GIB + 1;
        l.d[3].leased = true;
        l.d[4].unleased_memory_bytes = 1 * GIB; /* at the limit is still fine */
        d = run(&l, q, 2, NULL, 0);
        /* ...but comes after a device nobody uses, whatever the LRU order. */
        GRANTS(&d[0], 5);
        GRANTS(&d[1], 4);
        done(d, 2);

        l.d[5].drained = true;
        d = run(&l, q, 2, NULL, 0);
        GRANTS(&d[0], 4);
        assert_wait(&d[1], "waiting for a GPU");
        done(d, 2);

        /* The same states, named. */
        const char *const why[] = {
            "waiting for GPU-0 (drained)",
            "waiting for GPU-1 (unhealthy)",
            "waiting for GPU-2 (in use by processes without a lease)",
            "waiting for GPU-3 (leased)",
        };
        for (size_t i = 0; i < 4; i++) {
                PolicyRequest r = NAMED(l.uuid[i]);

                d = run(&l, &r, 1, NULL, 0);
                assert_wait(&d[0], why[i]);
                done(d, 1);
        }
        /* Unhealthy wins over drained in the reason, leased over both. */
        l.d[0].healthy = false;
        d = run(&l, (PolicyRequest[]){NAMED("GPU-0")}, 1, NULL, 0);
        assert_wait(&d[0], "waiting for GPU-0 (unhealthy)");
        done(d, 1);
}

static void test_mig_profiles(void **state)
{
        Lab l = {};
        PolicyDecision *d;

        gpu(&l, 0x01, 0, 0);            /* 0 */
        mig(&l, 0x02, "1g.10gb", 0, 5); /* 1 */
        mig(&l, 0x02, "1g.10gb", 0, 1); /* 2 */
        mig(&l, 0x02, "3g.40gb", 0, 0); /* 3 */
        mig(&l, 0x03, "3g.40gb", 1, 0); /* 4 */
        mig(&l, 0x03, "3g.40gb", 1, 0); /* 5 */

        d = run(&l, (PolicyRequest[]){MIG({"1g.10gb", 1})}, 1, NULL, 0);
        GRANTS(&d[0], 2);
        done(d, 1);

        /* Two 3g instances: both on node 1, not the LRU-tied one on node 0. */
        d = run(&l, (PolicyRequest[]){MIG({"3g.40gb", 2})}, 1, NULL, 0);
        GRANTS(&d[0], 4, 5);
        done(d, 1);

        /* Mixed profiles, and a profile listed twice adds up. */
        d = run(&l, (PolicyRequest[]){MIG({"1g.10gb", 1}, {"3g.40gb", 1}, {"1g.10gb", 1})}, 1, NULL,
                0);
        GRANTS(&d[0], 1, 2, 3);
        assert_string_equal(l.d[d[0].devices[0]].profile, "1g.10gb");
        assert_string_equal(l.d[d[0].devices[1]].profile, "3g.40gb");
        assert_string_equal(l.d[d[0].devices[2]].profile, "1g.10gb");
        done(d, 1);

        /* Whole-GPU requests never get MIG instances, and the reverse. */
        d = run(&l, (PolicyRequest[]){GPUS(1), GPUS(1)}, 2, NULL, 0);
        GRANTS(&d[0], 0);
        assert_wait(&d[1], "waiting for a GPU");
        done(d, 2);

        /* Named MIG instance. */
        d = run(&l, (PolicyRequest[]){NAMED("MIG-3", "GPU-0")}, 1, NULL, 0);
        GRANTS(&d[0], 3, 0);
        done(d, 1);

        /* Waiting reasons. */
        l.d[3].leased = l.d[4].leased = true;
        d = run(&l, (PolicyRequest[]){MIG({"3g.40gb", 2})}, 1, NULL, 0);
        assert_wait(&d[0], "waiting for 2 3g.40gb MIG instances: 1 free");
        done(d, 1);
        l.d[5].drained = true;
        d = run(&l, (PolicyRequest[]){MIG({"1g.10gb", 1}, {"3g.40gb", 1})}, 1, NULL, 0);
        assert_wait(&d[0], "waiting for a 3g.40gb MIG instance");
        done(d, 1);
}

static void test_named(void **state)
{
        Lab l = {};
        PolicyDecision *d;

        for (unsigned i = 0; i < 4; i++)
                gpu(&l, i + 1, 0, 0);
        /* Named devices are granted exactly, in the order asked. */
        d = run(&l, (PolicyRequest[]){NAMED("GPU-3", "GPU-1")}, 1, NULL, 0);
        GRANTS(&d[0], 3, 1);
        assert_int_equal(d[0].devices[0], 3);
        assert_int_equal(d[0].devices[1], 1);
        done(d, 1);

        /* One of them leased: the whole request waits and takes nothing. */
        l.d[1].leased = true;
        d = run(&l, (PolicyRequest[]){NAMED("GPU-3", "GPU-1"), NAMED("GPU-3")}, 2, NULL, 0);
        assert_wait(&d[0], "waiting for GPU-1 (leased)");
        assert_wait(&d[1], "waiting for GPU-3 (kept for an earlier request)");
        done(d, 2);

        /* Granted earlier in the same call counts as leased. */
        l.d[1].leased = false;
        d = run(&l, (PolicyRequest[]){NAMED("GPU-2"), NAMED("GPU-2", "GPU-0")}, 2, NULL, 0);
        GRANTS(&d[0], 2);
        assert_wait(&d[1], "waiting for GPU-2 (leased)");
        done(d, 2);
}

static void test_fifo(void **state)
{
        Lab l = {};
        PolicyRequest q[] = {GPUS(1), GPUS(2), GPUS(1), GPUS(1)};
        PolicyDecision *d;

        gpu(&l, 1, 0, 0);
        gpu(&l, 2, 0, 0);
        gpu(&l, 3, 0, 0);
        /* Three free: the first takes one, the second two, the rest wait. */
        d = run(&l, q, 4, NULL, 0);
        assert_int_equal(d[0].verdict, POLICY_GRANT);
        assert_int_equal(d[1].verdict, POLICY_GRANT);
        assert_wait(&d[2], "waiting for a GPU");
        assert_wait(&d[3], "waiting for a GPU");
        done(d, 4);

        /* With one free, the queue order decides. */
        l.d[0].leased = l.d[1].leased = true;
        d = run(&l, (PolicyRequest[]){GPUS(1), GPUS(1)}, 2, NULL, 0);
        GRANTS(&d[0], 2);
        assert_wait(&d[1], "waiting for a GPU");
        done(d, 2);
}

static void test_backfill(void **state)
{
        Lab l = {};
        PolicyUserUsage u[] = {{1000, 0, 8}, {1001, 0, 8}};
        PolicyDecision *d;

        for (unsigned i = 0; i < 4; i++)
                gpu(&l, i + 1, 0, 0);
        mig(&l, 9, "3g.40gb", 1, 0); /* 4 */
        l.d[0].leased = l.d[1].leased = true;

        /* Head wants 3 GPUs with 2 free: a MIG instance may start behind it,
         * a GPU may not, nor a named GPU. */
        PolicyRequest q[] = {GPUS(3), MIG({"3g.40gb", 1}), GPUS(1), NAMED("GPU-2")};
        q[1].uid = 1001;
        d = run(&l, q, 4, u, 2);
        assert_wait(&d[0], "waiting for 3 GPUs: 2 free");
        GRANTS(&d[1], 4);
        assert_wait(&d[2], "waiting for a GPU: 2 free kept for earlier requests");
        assert_wait(&d[3], "waiting for GPU-2 (kept for an earlier request)");
        done(d, 4);

        /* A named head reserves only its own devices. */
        d = run(&l, (PolicyRequest[]){NAMED("GPU-0", "GPU-2"), GPUS(1), GPUS(2)}, 3, u, 2);
        assert_wait(&d[0], "waiting for GPU-0 (leased)");
        GRANTS(&d[1], 3);
        assert_wait(&d[2], "waiting for 2 GPUs: 0 free, 1 free kept for earlier requests");
        done(d, 3);

        /* Reserved devices that are not free now are reserved all the same:
         * they may come back. */
        l.d[2].drained = true;
        l.d[3].healthy = false;
        d = run(&l, (PolicyRequest[]){NAMED("GPU-2"), NAMED("GPU-2", "GPU-3")}, 2, u, 2);
        assert_wait(&d[0], "waiting for GPU-2 (drained)");
        assert_wait(&d[1], "waiting for GPU-2 (drained)");
        done(d, 2);
        l.d[2].drained = false;
        l.d[3].healthy = true;

        /* A MIG head reserves its profile only. */
        l.d[4].leased = true;
        d = run(&l, (PolicyRequest[]){MIG({"3g.40gb", 1}), GPUS(1)}, 2, u, 2);
        assert_wait(&d[0], "waiting for a 3g.40gb MIG instance");
        GRANTS(&d[1], 2);
        done(d, 2);
}

static void test_user_cap(void **state)
{
        Lab l = {};
        PolicyUserUsage u[] = {{1001, 0, 4}, {1000, 1, 2}};
        PolicyDecision *d;

        gpu(&l, 1, 0, 0);
        gpu(&l, 2, 0, 0);
        gpu(&l, 3, 0, 0);
        gpu(&l, 4, 0, 0);
        l.d[3].leased = true; /* user 1000's */

        /* A request blocked by its own cap reserves nothing: user 1001 goes ahead. */
        PolicyRequest q[] = {GPUS(2), GPUS(1), GPUS(1)};
        q[1].uid = q[2].uid = 1001;
        d = run(&l, q, 3, u, 2);
        assert_wait(&d[0], "waiting for your own leases: limit 2 devices");
        assert_int_equal(d[1].verdict, POLICY_GRANT);
        assert_int_equal(d[2].verdict, POLICY_GRANT);
        done(d, 3);

        /* Grants within one call count towards the cap. */
        u[0].max_devices = 2;
        PolicyRequest q2[] = {GPUS(1), GPUS(1), GPUS(1)};
        q2[0].uid = q2[1].uid = q2[2].uid = 1001;
        d = run(&l, q2, 3, u, 2);
        assert_int_equal(d[0].verdict, POLICY_GRANT);
        assert_int_equal(d[1].verdict, POLICY_GRANT);
        assert_wait(&d[2], "waiting for your own leases: limit 2 devices");
        done(d, 3);

        /* A cap lowered below what is held: waits, not impossible. */
        u[1].held = 3;
        u[1].max_devices = 1;
        d = run(&l, (PolicyRequest[]){GPUS(1)}, 1, u, 2);
        assert_wait(&d[0], "waiting for your own leases: limit 1 device");
        done(d, 1);

        /* max_devices 0 is no cap (as in the config). */
        u[1].held = 100;
        u[1].max_devices = 0;
        d = run(&l, (PolicyRequest[]){GPUS(3)}, 1, u, 2);
        assert_int_equal(d[0].verdict, POLICY_GRANT);
        done(d, 1);
        char buf[64];
        assert_int_equal(policy_check_request(l.d, l.n, &(PolicyRequest){.uid = 1000, .n_gpus = 4},
                                              &u[1], buf, sizeof(buf)),
                         0);
}

/* Both entry points agree on each impossible request and its reason. */
static void impossible(const Lab *l, PolicyRequest r, unsigned cap, const char *reason)
{
        PolicyUserUsage u = {.uid = r.uid, .held = 0, .max_devices = cap};
        char buf[160] = "untouched";
        PolicyDecision d[1];

        assert_int_equal(policy_check_request(l->d, l->n, &r, &u, buf, sizeof(buf)),
                         POLICY_IMPOSSIBLE);
        assert_string_equal(buf, reason);
        assert_int_equal(policy_allocate(l->d, l->n, &r, 1, &u, 1, &limits, d), 0);
        assert_int_equal(d[0].verdict, POLICY_IMPOSSIBLE);
        assert_null(d[0].devices);
        assert_string_equal(d[0].reason, reason);
}

static void test_impossible(void **state)
{
        Lab l = {}, migonly = {};
        const char *many[POLICY_MAX_REQUEST_ITEMS + 1];
        PolicyMigItem items[POLICY_MAX_REQUEST_ITEMS + 1];
        char buf[160] = "untouched";

        gpu(&l, 1, 0, 0);
        gpu(&l, 2, 0, 0);
        mig(&l, 3, "3g.40gb", 0, 0);
        mig(&l, 3, "3g.40gb", 0, 0);
        /* Unusable GPUs still count: they may come back. */
        l.d[0].drained = true;
        l.d[1].healthy = false;
        mig(&migonly, 3, "1g.10gb", 0, 0);

        impossible(&l, GPUS(3), 8, "asks for 3 GPUs, this machine has 2 whole GPUs");
        impossible(&migonly, GPUS(1), 8,
                   "asks for 1 GPU, this machine has no GPU outside MIG mode");
        impossible(&l, MIG({"7g.80gb", 1}), 8, "no MIG instance of profile 7g.80gb");
        impossible(&l, MIG({"3g.40gb", 3}), 8,
                   "asks for 3 MIG instances of profile 3g.40gb, this machine has 2");
        impossible(&l, MIG({"3g.40gb", 2}, {"3g.40gb", 1}), 8,
                   "asks for 3 MIG instances of profile 3g.40gb, this machine has 2");
        impossible(&l, MIG({"3g.40gb", 0}), 8, "asks for 0 MIG instances of profile 3g.40gb");
        impossible(&l, MIG({"", 1}), 8, "empty MIG profile");
        impossible(&l, NAMED("GPU-0", "GPU-nope"), 8, "unknown device GPU-nope");
        impossible(&l, NAMED("GPU-0", "MIG-2", "GPU-0"), 8, "device GPU-0 is named twice");
        impossible(&l, (PolicyRequest){.uid = 1000}, 8,
                   "empty request: ask for a number of GPUs, MIG instances or devices by name");

        PolicyRequest mix = GPUS(1);
        mix.named = (const char *const[]){"GPU-0"};
        mix.n_named = 1;
        impossible(&l, mix, 8,
                   "a request asks for a number of GPUs, MIG instances or devices by name, not a "
                   "mix");
        mix = MIG({"3g.40gb", 1});
        mix.n_gpus = 1;
        impossible(&l, mix, 8,
                   "a request asks for a number of GPUs, MIG instances or devices by name, not a "
                   "mix");

        for (size_t i = 0; i < ELEMENTS(many); i++) {
                many[i] = "GPU-0";
                items[i] = (PolicyMigItem){"3g.40gb", 1};
        }
        impossible(&l, (PolicyRequest){.uid = 1, .named = many, .n_named = ELEMENTS(many)}, 8,
                   "asks for 65 items, at most 64 fit in one request");
        impossible(&l, (PolicyRequest){.uid = 1, .mig = items, .n_mig = ELEMENTS(items)}, 8,
                   "asks for 65 items, at most 64 fit in one request");

        impossible(&l, GPUS(2), 1, "asks for 2 devices, above your limit of 1 device");
        impossible(&l, NAMED("MIG-2", "MIG-3"), 1,
                   "asks for 2 devices, above your limit of 1 device");

        /* Possible: 0 and the reason untouched; without usage no cap applies. */
        assert_int_equal(
            policy_check_request(l.d, l.n, &(PolicyRequest){.n_gpus = 2}, NULL, buf, sizeof(buf)),
            0);
        assert_string_equal(buf, "untouched");
        assert_int_equal(policy_check_request(l.d, l.n, &(PolicyRequest){.n_gpus = 2},
                                              &(PolicyUserUsage){.max_devices = 2, .held = 2}, buf,
                                              sizeof(buf)),
                         0);
        /* A small reason buffer is truncated, never overrun. */
        char small[8];
        assert_int_equal(policy_check_request(l.d, l.n, &(PolicyRequest){.n_gpus = 9}, NULL, small,
                                              sizeof(small)),
                         POLICY_IMPOSSIBLE);
        assert_string_equal(small, "asks fo");

        /* A queue entry that became impossible (a GPU went away) is said so,
         * and blocks nobody. */
        PolicyRequest q[] = {GPUS(3), GPUS(1)};
        PolicyDecision d[2];
        l.d[0].drained = false;
        assert_int_equal(policy_allocate(l.d, l.n, q, 2,
                                         &(PolicyUserUsage){.uid = 1000, .max_devices = 9}, 1,
                                         &limits, d),
                         0);
        assert_int_equal(d[0].verdict, POLICY_IMPOSSIBLE);
        GRANTS(&d[1], 0);
        policy_decisions_free(d, 2);
}

static void test_invalid(void **state)
{
        Lab l = {};
        PolicyUserUsage u[] = {{1000, 0, 8}, {1000, 0, 8}};
        PolicyRequest q = GPUS(1);
        PolicyDecision d[1];
        char buf[64];
        PolicyDevice *big = calloc(POLICY_MAX_DEVICES + 1, sizeof(*big));
        PolicyRequest *longq = calloc(POLICY_MAX_QUEUE + 1, sizeof(*longq));

        assert_non_null(big);
        assert_non_null(longq);
        gpu(&l, 1, 0, 0);
        gpu(&l, 2, 0, 0);

        assert_int_equal(policy_allocate(l.d, l.n, &q, 1, u, 1, NULL, d), -EINVAL);
        assert_int_equal(policy_allocate(l.d, l.n, &q, 1, u, 1, &limits, NULL), -EINVAL);
        assert_int_equal(policy_allocate(l.d, l.n, NULL, 1, u, 1, &limits, d), -EINVAL);
        assert_int_equal(policy_allocate(NULL, 1, &q, 1, u, 1, &limits, d), -EINVAL);
        assert_int_equal(policy_allocate(l.d, l.n, &q, 1, NULL, 1, &limits, d), -EINVAL);
        /* Duplicate and missing users. */
        assert_int_equal(policy_allocate(l.d, l.n, &q, 1, u, 2, &limits, d), -EINVAL);
        q.uid = 7;
        assert_int_equal(policy_allocate(l.d, l.n, &q, 1, u, 1, &limits, d), -EINVAL);
        q.uid = 1000;
        /* Sizes above the limits. */
        for (size_t i = 0; i <= POLICY_MAX_DEVICES; i++)
                big[i] = l.d[0];
        assert_int_equal(policy_allocate(big, POLICY_MAX_DEVICES + 1, &q, 1, u, 1, &limits, d),
                         -EINVAL);
        assert_int_equal(policy_check_request(big, POLICY_MAX_DEVICES + 1, &q, u, buf, sizeof(buf)),
                         -EINVAL);
        assert_int_equal(policy_allocate(l.d, l.n, longq, POLICY_MAX_QUEUE + 1, u, 1, &limits, d),
                         -EINVAL);
        /* Duplicate uuids. */
        assert_int_equal(policy_allocate(big, 2, &q, 1, u, 1, &limits, d), -EINVAL);
        /* NULL strings in devices. */
        for (int field = 0; field < 3; field++) {
                Lab bad = l;

                bad.d[1].uuid = field == 0 ? NULL : bad.uuid[1];
                bad.d[1].parent_uuid = field == 1 ? NULL : bad.parent[1];
                bad.d[1].pci_bus_id = field == 2 ? NULL : bad.bus[1];
                assert_int_equal(policy_allocate(bad.d, bad.n, &q, 1, u, 1, &limits, d), -EINVAL);
                assert_int_equal(policy_check_request(bad.d, bad.n, &q, u, buf, sizeof(buf)),
                                 -EINVAL);
        }
        /* Malformed requests: NULL arrays and names, unterminated profiles.
         * A bad entry anywhere in the queue fails the call before any output. */
        PolicyRequest bad[] = {
            {.uid = 1000, .n_named = 1},
            {.uid = 1000, .n_mig = 1},
            NAMED("GPU-0", NULL),
            MIG({"3g.40gb", 1}),
        };
        PolicyMigItem unterminated;
        memset(unterminated.profile, 'x', sizeof(unterminated.profile));
        unterminated.count = 1;
        bad[3].mig = &unterminated;
        for (size_t i = 0; i < ELEMENTS(bad); i++) {
                PolicyRequest two[2] = {GPUS(1), bad[i]};

                assert_int_equal(
                    policy_allocate(l.d, l.n, two, 2, u, 1, &limits, (PolicyDecision[2]){}),
                    -EINVAL);
                assert_int_equal(policy_check_request(l.d, l.n, &bad[i], u, buf, sizeof(buf)),
                                 -EINVAL);
        }
        assert_int_equal(policy_check_request(l.d, l.n, NULL, u, buf, sizeof(buf)), -EINVAL);
        assert_int_equal(policy_check_request(l.d, l.n, &q, u, NULL, 10), -EINVAL);
        assert_int_equal(policy_check_request(l.d, l.n, &q, u, buf, 0), -EINVAL);

        /* Empty inputs are fine. */
        assert_int_equal(policy_allocate(NULL, 0, NULL, 0, NULL, 0, &limits, NULL), 0);
        policy_decisions_free(NULL, 3);
        free(big);
        free(longq);
}

/* The largest inputs the limits allow, in well under a second. */
static void test_limits_scale(void **state)
{
        PolicyDevice *dev = calloc(POLICY_MAX_DEVICES, sizeof(*dev));
        PolicyRequest *q = calloc(POLICY_MAX_QUEUE, sizeof(*q));
        PolicyDecision *d = calloc(POLICY_MAX_QUEUE, sizeof(*d));
        PolicyUserUsage u[64];
        char(*uuid)[24] = calloc(POLICY_MAX_DEVICES, sizeof(*uuid));
        char(*bus)[24] = calloc(POLICY_MAX_DEVICES, sizeof(*bus));
        static const char *const profiles[] = {"1g.10gb", "2g.20gb", "3g.40gb", "7g.80gb"};
        struct timespec a, b;
        size_t granted = 0;

        assert_non_null(dev);
        assert_non_null(q);
        assert_non_null(d);
        assert_non_null(uuid);
        assert_non_null(bus);
        for (size_t i = 0; i < POLICY_MAX_DEVICES; i++) {
                snprintf(uuid[i], sizeof(uuid[i]), "GPU-%04zx", i * 7919 % 65521);
                snprintf(bus[i], sizeof(bus[i]), "0000:%02zx:%02zx.0", i / 32, i % 32);
                dev[i] = (PolicyDevice){.uuid = uuid[i],
                                        .parent_uuid = uuid[i],
                                        .pci_bus_id = bus[i],
                                        .profile = i % 2 ? profiles[i / 2 % 4] : NULL,
                                        .numa_node = (int)(i % 8) - 1,
                                        .healthy = true,
                                        .leased = i % 5 == 0,
                                        .last_released_usec = (i * 31) % 97};
        }
        for (size_t i = 0; i < 64; i++)
                u[i] = (PolicyUserUsage){.uid = (uid_t)(1000 + i), .max_devices = 300};
        for (size_t i = 0; i < POLICY_MAX_QUEUE; i++) {
                q[i] = (PolicyRequest){.id = i, .uid = (uid_t)(1000 + i % 64)};
                if (i % 3 == 0)
                        q[i].n_gpus = 1 + i % 200;
                else if (i % 3 == 1) {
                        q[i].named = (const char *const *)&dev[(i * 13) % POLICY_MAX_DEVICES].uuid;
                        q[i].n_named = 1;
                } else {
                        static PolicyMigItem items[4] = {
                            {"1g.10gb", 3},
                            {"2g.20gb", 2},
                            {"3g.40gb", 1},
                            {"7g.80gb", 1},
                        };
                        q[i].mig = &items[i % 4];
                        q[i].n_mig = 1;
                }
        }
        clock_gettime(CLOCK_MONOTONIC, &a);
        assert_int_equal(
            policy_allocate(dev, POLICY_MAX_DEVICES, q, POLICY_MAX_QUEUE, u, 64, &limits, d), 0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        for (size_t i = 0; i < POLICY_MAX_QUEUE; i++)
                granted += d[i].verdict == POLICY_GRANT;
        double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
        print_message("512 devices x 4096 requests: %.2f ms, %zu granted\n", ms, granted);
        assert_true(granted > 0);
        assert_true(ms < 1000);
        policy_decisions_free(d, POLICY_MAX_QUEUE);
        free(dev);
        free(q);
        free(d);
        free(uuid);
        free(bus);
}

/* ---- property test ---- */

#define SIM_USERS 4
#define SIM_QUEUE 48
#define SIM_ARRIVAL_STEPS 16
#define SIM_STEPS 200

static const char *const sim_profiles[] = {"1g.10gb", "2g.20gb", "3g.40gb"};

/* A queued request with its own storage; PolicyRequest views point into it. */
typedef struct SimReq {
        uint64_t id;
        uid_t uid;
        unsigned n_gpus;
        const char *names[4];
        size_t n_named;
        PolicyMigItem mig[3];
        size_t n_mig;
} SimReq;

typedef struct SimLease {
        uid_t uid;
        size_t dev[LAB_MAX];
        size_t n;
} SimLease;

typedef struct Sim {
        uint64_t seed, rng;
        int step;
        Lab lab;
        PolicyUserUsage users[SIM_USERS];
        size_t n_users;
        SimReq queue[SIM_QUEUE];
        size_t n_queue;
        SimLease leases[LAB_MAX];
        size_t n_leases;
        uint64_t now, next_id;
        /* totals, for the report */
        uint64_t calls, grants, waits, impossibles;
} Sim;

#define PCHECK(s, cond)                                                                            \
        do {                                                                                       \
                if (!(cond))                                                                       \
                        fail_msg("seed %" PRIu64 " step %d: %s (line %d); replay with "            \
                                 "POLICY_SEED=%" PRIu64,                                           \
                                 (s)->seed, (s)->step, #cond, __LINE__, (s)->seed);                \
        } while (0)

static uint64_t xorshift(Sim *s)
{
        uint64_t x = s->rng;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return s->rng = x;
}

/* Uniform enough in [0, n). */
static unsigned rnd(Sim *s, unsigned n)
{
        return (unsigned)(xorshift(s) % n);
}

static bool chance(Sim *s, unsigned percent)
{
        return rnd(s, 100) < percent;
}

/* max_devices 0 is no cap. */
static unsigned sim_cap(const PolicyUserUsage *u)
{
        return u->max_devices ? u->max_devices : UINT_MAX;
}

static PolicyUserUsage *sim_user(Sim *s, uid_t uid)
{
        for (size_t i = 0; i < s->n_users; i++)
                if (s->users[i].uid == uid)
                        return &s->users[i];
        return NULL;
}

static void sim_states(Sim *s, PolicyDevice *d)
{
        d->healthy = !chance(s, 10);
        d->drained = chance(s, 10);
        d->unleased_memory_bytes = chance(s, 75) ? 0 : chance(s, 50) ? 1 * GIB : 2 * GIB;
        d->unleased_processes = d->unleased_memory_bytes > 0 || chance(s, 10) ? 1 : 0;
        d->utilization_pct = chance(s, 20) ? -1 : (int)rnd(s, 101);
}

static void sim_lab(Sim *s)
{
        unsigned n_whole = rnd(s, 9), n_mig_gpus = rnd(s, 4);

        for (unsigned i = 0; i < n_whole; i++)
                gpu(&s->lab, rnd(s, 256), (int)rnd(s, 3) - 1, rnd(s, 5));
        for (unsigned g = 0; g < n_mig_gpus; g++) {
                unsigned bus = rnd(s, 256), n = 1 + rnd(s, 4);
                int numa = (int)rnd(s, 3) - 1;

                for (unsigned i = 0; i < n; i++)
                        mig(&s->lab, bus, sim_profiles[rnd(s, ELEMENTS(sim_profiles))], numa,
                            rnd(s, 5));
        }
        for (size_t i = 0; i < s->lab.n; i++)
                sim_states(s, &s->lab.d[i]);
        s->n_users = 1 + rnd(s, SIM_USERS);
        for (size_t i = 0; i < s->n_users; i++)
                s->users[i] = (PolicyUserUsage){.uid = (uid_t)(1000 + i),
                                                .max_devices = chance(s, 5) ? 0 : 1 + rnd(s, 5)};
}

static const char *sim_name(Sim *s)
{
        if (s->lab.n == 0 || chance(s, 3))
                return "GPU-nope";
        return s->lab.uuid[rnd(s, (unsigned)s->lab.n)];
}

static SimReq sim_request(Sim *s)
{
        SimReq r = {.id = s->next_id++, .uid = s->users[rnd(s, (unsigned)s->n_users)].uid};
        unsigned form = rnd(s, 100);

        if (form < 50)
                r.n_gpus = 1 + rnd(s, 3) + (chance(s, 5) ? 8 : 0);
        else if (form < 75) {
                r.n_mig = 1 + rnd(s, 2);
                for (size_t i = 0; i < r.n_mig; i++) {
                        snprintf(r.mig[i].profile, sizeof(r.mig[i].profile), "%s",
                                 chance(s, 5) ? "7g.80gb"
                                              : sim_profiles[rnd(s, ELEMENTS(sim_profiles))]);
                        r.mig[i].count = 1 + rnd(s, 2) - (chance(s, 2) ? 1 : 0);
                }
        } else if (form < 97) {
                r.n_named = 1 + rnd(s, 3);
                for (size_t i = 0; i < r.n_named; i++)
                        r.names[i] = sim_name(s);
        } else if (form < 99) {
                /* a mix of forms */
                r.n_gpus = 1;
                r.n_named = 1;
                r.names[0] = sim_name(s);
        }
        /* else: an empty request */
        return r;
}

static PolicyRequest sim_view(const SimReq *r)
{
        return (PolicyRequest){.id = r->id,
                               .uid = r->uid,
                               .n_gpus = r->n_gpus,
                               .named = r->n_named ? r->names : NULL,
                               .n_named = r->n_named,
                               .mig = r->n_mig ? r->mig : NULL,
                               .n_mig = r->n_mig};
}

/* The rules, restated independently of allocate.c. */
static bool sim_grantable(const Sim *s, size_t i)
{
        const PolicyDevice *d = &s->lab.d[i];

        return !d->leased && d->healthy && !d->drained &&
               d->unleased_memory_bytes <= limits.unleased_memory_max;
}

/* The allocator's preference rank of a free device (allocate.h). */
static unsigned sim_rank(const PolicyDevice *d)
{
        if (d->unleased_processes > 0 || d->unleased_memory_bytes > 0)
                return 2;
        return d->utilization_pct >= POLICY_BUSY_UTILIZATION ? 1 : 0;
}

static bool same_profile(const char *a, const char *b)
{
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static size_t find_uuid(const Sim *s, const char *uuid)
{
        for (size_t i = 0; i < s->lab.n; i++)
                if (strcmp(s->lab.uuid[i], uuid) == 0)
                        return i;
        return SIZE_MAX;
}

static size_t count_profile(const Sim *s, const char *profile)
{
        size_t n = 0;

        for (size_t i = 0; i < s->lab.n; i++)
                n += same_profile(s->lab.d[i].profile, profile);
        return n;
}

static unsigned mig_total(const PolicyRequest *r, const char *profile)
{
        unsigned n = 0;

        for (size_t i = 0; i < r->n_mig; i++)
                if (strcmp(r->mig[i].profile, profile) == 0)
                        n += r->mig[i].count;
        return n;
}

static bool sim_impossible(const Sim *s, const PolicyRequest *r, unsigned cap, size_t *ret_size)
{
        size_t size = 0;

        if ((r->n_gpus > 0) + (r->n_named > 0) + (r->n_mig > 0) != 1)
                return true;
        if (r->n_gpus > 0) {
                if (r->n_gpus > count_profile(s, NULL))
                        return true;
                size = r->n_gpus;
        }
        for (size_t i = 0; i < r->n_named; i++) {
                if (find_uuid(s, r->named[i]) == SIZE_MAX)
                        return true;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(r->named[i], r->named[j]) == 0)
                                return true;
                size++;
        }
        for (size_t i = 0; i < r->n_mig; i++) {
                if (r->mig[i].count == 0 ||
                    mig_total(r, r->mig[i].profile) > count_profile(s, r->mig[i].profile))
                        return true;
                size += r->mig[i].count;
        }
        *ret_size = size;
        return size > cap;
}

/* Whether device i could ever serve request r (the backfill reservation). */
static bool sim_could_use(const Sim *s, const PolicyRequest *r, size_t i)
{
        const PolicyDevice *d = &s->lab.d[i];

        if (r->n_gpus > 0)
                return !d->profile;
        for (size_t k = 0; k < r->n_named; k++)
                if (strcmp(r->named[k], d->uuid) == 0)
                        return true;
        for (size_t k = 0; k < r->n_mig; k++)
                if (same_profile(r->mig[k].profile, d->profile))
                        return true;
        return false;
}

/* Check one call's decisions against the rules. */
static void sim_oracle(Sim *s, const PolicyRequest *q, size_t n, const PolicyDecision *d)
{
        bool taken[LAB_MAX] = {}, reserved[LAB_MAX] = {};
        unsigned held[SIM_USERS];

        for (size_t u = 0; u < s->n_users; u++)
                held[u] = s->users[u].held;

        for (size_t k = 0; k < n; k++) {
                const PolicyRequest *r = &q[k];
                PolicyUserUsage *u = sim_user(s, r->uid);
                size_t ui = (size_t)(u - s->users), size = 0;
                bool usable[LAB_MAX], feasible = true;
                char reason[160];

                if (sim_impossible(s, r, sim_cap(u), &size)) {
                        PCHECK(s, d[k].verdict == POLICY_IMPOSSIBLE);
                        PCHECK(s, !d[k].devices && d[k].n_devices == 0);
                        PCHECK(s, policy_check_request(s->lab.d, s->lab.n, r, u, reason,
                                                       sizeof(reason)) == POLICY_IMPOSSIBLE);
                        PCHECK(s, strcmp(reason, d[k].reason) == 0 && reason[0]);
                        s->impossibles++;
                        continue;
                }
                PCHECK(s,
                       policy_check_request(s->lab.d, s->lab.n, r, u, reason, sizeof(reason)) == 0);
                PCHECK(s, d[k].verdict != POLICY_IMPOSSIBLE);

                if (held[ui] + size > sim_cap(u)) {
                        PCHECK(s, d[k].verdict == POLICY_WAIT && !d[k].devices);
                        PCHECK(s, strncmp(d[k].reason, "waiting for your own leases", 27) == 0);
                        s->waits++;
                        continue;
                }

                for (size_t i = 0; i < s->lab.n; i++)
                        usable[i] = sim_grantable(s, i) && !taken[i] && !reserved[i];
                if (r->n_gpus > 0) {
                        size_t free_whole = 0;

                        for (size_t i = 0; i < s->lab.n; i++)
                                free_whole += usable[i] && !s->lab.d[i].profile;
                        feasible = free_whole >= r->n_gpus;
                }
                for (size_t j = 0; j < r->n_named; j++)
                        feasible &= usable[find_uuid(s, r->named[j])];
                for (size_t j = 0; j < r->n_mig; j++) {
                        size_t free_mig = 0;

                        for (size_t i = 0; i < s->lab.n; i++)
                                free_mig += usable[i] &&
                                            same_profile(s->lab.d[i].profile, r->mig[j].profile);
                        feasible &= free_mig >= mig_total(r, r->mig[j].profile);
                }

                if (!feasible) {
                        /* Waits only when it really cannot start, and then
                         * keeps everything it could use from later requests. */
                        PCHECK(s, d[k].verdict == POLICY_WAIT && !d[k].devices);
                        PCHECK(s, strncmp(d[k].reason, "waiting for ", 12) == 0);
                        for (size_t i = 0; i < s->lab.n; i++)
                                reserved[i] |= sim_could_use(s, r, i);
                        s->waits++;
                        continue;
                }

                PCHECK(s, d[k].verdict == POLICY_GRANT);
                PCHECK(s, d[k].n_devices == size && d[k].devices);
                for (size_t j = 0; j < size; j++) {
                        size_t i = d[k].devices[j];

                        PCHECK(s, i < s->lab.n);
                        /* Free, usable, not granted twice, not reserved by an
                         * earlier waiting request. */
                        PCHECK(s, usable[i] && !taken[i]);
                        taken[i] = true;
                        if (r->n_gpus > 0)
                                PCHECK(s, !s->lab.d[i].profile);
                        if (r->n_named > 0)
                                PCHECK(s, i == find_uuid(s, r->named[j]));
                }
                for (size_t j = 0; j < r->n_mig; j++) {
                        size_t got = 0;

                        for (size_t m = 0; m < size; m++)
                                got += same_profile(s->lab.d[d[k].devices[m]].profile,
                                                    r->mig[j].profile);
                        PCHECK(s, got == mig_total(r, r->mig[j].profile));
                }
                if (r->n_gpus == 1)
                        /* One GPU: the least used rank, then the least recently
                         * released, then the lowest index. */
                        for (size_t i = 0; i < s->lab.n; i++) {
                                const PolicyDevice *a = &s->lab.d[i],
                                                   *g = &s->lab.d[d[k].devices[0]];

                                if (usable[i] && !a->profile)
                                        PCHECK(s, sim_rank(a) > sim_rank(g) ||
                                                      (sim_rank(a) == sim_rank(g) &&
                                                       a->last_released_usec > g->last_released_usec) ||
                                                      (sim_rank(a) == sim_rank(g) &&
                                                       a->last_released_usec ==
                                                           g->last_released_usec &&
                                                       i >= d[k].devices[0]));
                        }
                held[ui] += (unsigned)size;
                PCHECK(s, held[ui] <= sim_cap(u));
                s->grants++;
        }
}

/* One allocation round: decide, check, and carry out the decisions. Returns
 * how many requests left the queue. */
static size_t sim_round(Sim *s)
{
        PolicyRequest q[SIM_QUEUE];
        PolicyDecision d[SIM_QUEUE], again[SIM_QUEUE];
        size_t kept = 0, n = s->n_queue;

        for (size_t i = 0; i < n; i++)
                q[i] = sim_view(&s->queue[i]);
        PCHECK(s, policy_allocate(s->lab.d, s->lab.n, q, n, s->users, s->n_users, &limits, d) == 0);
        s->calls++;
        sim_oracle(s, q, n, d);

        /* Deterministic: the same inputs give the same decisions. */
        PCHECK(s, policy_allocate(s->lab.d, s->lab.n, q, n, s->users, s->n_users, &limits, again) ==
                      0);
        for (size_t i = 0; i < n; i++) {
                PCHECK(s, d[i].verdict == again[i].verdict && d[i].n_devices == again[i].n_devices);
                PCHECK(s, strcmp(d[i].reason, again[i].reason) == 0);
                for (size_t j = 0; j < d[i].n_devices; j++)
                        PCHECK(s, d[i].devices[j] == again[i].devices[j]);
        }
        policy_decisions_free(again, n);

        for (size_t i = 0; i < n; i++) {
                if (d[i].verdict == POLICY_GRANT) {
                        SimLease *l = &s->leases[s->n_leases++];

                        *l = (SimLease){.uid = q[i].uid, .n = d[i].n_devices};
                        for (size_t j = 0; j < d[i].n_devices; j++) {
                                l->dev[j] = d[i].devices[j];
                                PCHECK(s, !s->lab.d[l->dev[j]].leased);
                                s->lab.d[l->dev[j]].leased = true;
                        }
                        sim_user(s, q[i].uid)->held += (unsigned)l->n;
                } else if (d[i].verdict == POLICY_WAIT)
                        s->queue[kept++] = s->queue[i];
        }
        policy_decisions_free(d, n);
        s->n_queue = kept;
        return n - kept;
}

static void sim_release(Sim *s, size_t k)
{
        SimLease *l = &s->leases[k];

        s->now++;
        for (size_t j = 0; j < l->n; j++) {
                s->lab.d[l->dev[j]].leased = false;
                s->lab.d[l->dev[j]].last_released_usec = s->now;
        }
        sim_user(s, l->uid)->held -= (unsigned)l->n;
        s->leases[k] = s->leases[--s->n_leases];
}

static void sim_arrive(Sim *s, unsigned n)
{
        for (unsigned i = 0; i < n && s->n_queue < SIM_QUEUE; i++) {
                SimReq r = sim_request(s);
                PolicyRequest v = sim_view(&r);
                PolicyUserUsage *u = sim_user(s, r.uid);
                char reason[160];
                size_t size;
                int k = policy_check_request(s->lab.d, s->lab.n, &v, u, reason, sizeof(reason));

                PCHECK(s, k == (sim_impossible(s, &v, sim_cap(u), &size) ? POLICY_IMPOSSIBLE : 0));
                /* The daemon refuses these up front; some slip in anyway
                 * (as when a GPU goes away) so the allocator sees them too. */
                if (k == 0 || chance(s, 30))
                        s->queue[s->n_queue++] = r;
        }
}

static void sim_run(Sim *s)
{
        size_t bound;

        sim_lab(s);
        sim_arrive(s, rnd(s, 12));
        for (s->step = 0; s->step < SIM_ARRIVAL_STEPS; s->step++) {
                sim_round(s);
                for (size_t k = s->n_leases; k-- > 0;)
                        if (chance(s, 30))
                                sim_release(s, k);
                for (size_t i = 0; i < s->lab.n; i++)
                        if (chance(s, 5))
                                sim_states(s, &s->lab.d[i]);
                if (chance(s, 60))
                        sim_arrive(s, 1 + rnd(s, 3));
        }

        /* Arrivals stop and every device comes back. Each round either
         * grants (the queue shrinks and a lease appears) or finds a lease
         * to release, and with no lease left the head must start: so the
         * queue drains within 2 × queue + leases rounds. */
        for (size_t i = 0; i < s->lab.n; i++) {
                s->lab.d[i].healthy = true;
                s->lab.d[i].drained = false;
                s->lab.d[i].unleased_memory_bytes = 0;
        }
        bound = 2 * s->n_queue + s->n_leases + 1;
        for (size_t round = 0; s->n_queue > 0; round++, s->step++) {
                PCHECK(s, round < bound);
                if (sim_round(s) == 0 && s->n_leases == 0)
                        PCHECK(s, s->n_queue == 0);
                if (s->n_leases > 0) {
                        size_t released = 0;

                        for (size_t k = s->n_leases; k-- > 0;)
                                if (chance(s, 30)) {
                                        sim_release(s, k);
                                        released++;
                                }
                        if (released == 0)
                                sim_release(s, rnd(s, (unsigned)s->n_leases));
                }
        }
        PCHECK(s, s->step < SIM_ARRIVAL_STEPS + SIM_STEPS);
        while (s->n_leases > 0)
                sim_release(s, 0);
        for (size_t u = 0; u < s->n_users; u++)
                PCHECK(s, s->users[u].held == 0);
}

static void test_property(void **state)
{
        const char *env = getenv("POLICY_SEED");
        uint64_t first = 1, n = 2000, calls = 0, grants = 0, waits = 0, impossibles = 0;
        struct timespec a, b;
        Sim *s = malloc(sizeof(*s));

        assert_non_null(s);
        if (env) {
                first = strtoull(env, NULL, 10);
                n = 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (uint64_t seed = first; seed < first + n; seed++) {
                *s = (Sim){.seed = seed, .rng = seed * UINT64_C(0x9E3779B97F4A7C15) | 1};
                sim_run(s);
                calls += s->calls;
                grants += s->grants;
                waits += s->waits;
                impossibles += s->impossibles;
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        print_message("%" PRIu64 " scenarios, %" PRIu64 " calls: %" PRIu64 " grants, %" PRIu64
                      " waits, %" PRIu64 " impossible, %.0f ms\n",
                      n, calls, grants, waits, impossibles,
                      (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6);
        assert_true(grants > 0 && waits > 0 && impossibles > 0);
        free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_lru_choice), cmocka_unit_test(test_prefers_unused_devices),
            cmocka_unit_test(test_named_own_unleased_memory),    cmocka_unit_test(test_numa_grouping),
            cmocka_unit_test(test_bus_closeness), cmocka_unit_test(test_skips_unusable),
            cmocka_unit_test(test_mig_profiles),  cmocka_unit_test(test_named),
            cmocka_unit_test(test_fifo),          cmocka_unit_test(test_backfill),
            cmocka_unit_test(test_user_cap),      cmocka_unit_test(test_impossible),
            cmocka_unit_test(test_invalid),       cmocka_unit_test(test_limits_scale),
            cmocka_unit_test(test_property),
        };

        return cmocka_run_group_tests_name("allocate", tests, NULL, NULL);
}
