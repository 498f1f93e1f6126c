/* Unit tests for the status cache (status-cache.h): the validity rule (a
 * chain of harmless iterations extends it; a foreign event, a request that
 * is not read-only, a resolver answer or a clock step breaks it), the
 * sd-event behaviour the rule rests on (one source per iteration), and the
 * spliced reply being byte for byte the dump of the built tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/status-cache.h"
#include "daemon/status.h"
#include "gpu/nvml-abi.h"
#include "proto/proto.h"

static void test_chain_extended_by_harmless_iterations(void **state)
{
        StatusCache c = {};

        status_cache_store(&c, STATUS_OBJECTS, proto_blob_new("{\"a\":1", 6), 10, 3, 0);
        assert_true(status_cache_fresh(&c, STATUS_OBJECTS, 10, 3, 0));
        assert_false(status_cache_fresh(&c, STATUS_OBJECTS, 11, 3, 0)); /* not yet extended */
        status_cache_extend(&c, 11);
        status_cache_extend(&c, 12);
        assert_true(status_cache_fresh(&c, STATUS_OBJECTS, 12, 3, 0));
        status_cache_extend(&c, 12); /* twice in one iteration: no harm */
        assert_true(status_cache_fresh(&c, STATUS_OBJECTS, 12, 3, 0));
        assert_false(status_cache_fresh(&c, STATUS_OBJECTS, 11, 3, 0));
        status_cache_done(&c);
}

static void test_chain_broken_by_a_foreign_event(void **state)
{
        StatusCache c = {};

        status_cache_store(&c, STATUS_OBJECTS, proto_blob_new("{\"a\":1", 6), 10, 3, 0);
        status_cache_extend(&c, 11);
        /* Iteration 12 dispatched a sampler tick (never extends); 13 is a
         * socket again: the chain stays broken. */
        status_cache_extend(&c, 13);
        assert_false(status_cache_fresh(&c, STATUS_OBJECTS, 13, 3, 0));
        status_cache_extend(&c, 14);
        assert_false(status_cache_fresh(&c, STATUS_OBJECTS, 14, 3, 0));
        /* Built again in 14: valid from there. */
        status_cache_store(&c, STATUS_OBJECTS, proto_blob_new("{\"a\":2", 6), 14, 3, 0);
        status_cache_extend(&c, 15);
        assert_true(status_cache_fresh(&c, STATUS_OBJECTS, 15, 3, 0));
        assert_memory_equal(c.slot[STATUS_OBJECTS].body->data, "{\"a\":2", 6);
        status_cache_done(&c);
}

static void test_broken_by_a_mutating_request(void **state)
{
        StatusCache c = {};
        static const char *const mutating[] = {"lease.acquire", "lease.release", "admin.drain",
                                               "admin.undrain", "lease.extend", "debug.tick",
                                               "debug.clock", "limits.apply", "mig.apply",
                                               "report", "no.such.op", ""};

        assert_true(status_cache_op_is_read_only("status"));
        assert_true(status_cache_op_is_read_only("ping"));
        for (size_t i = 0; i < sizeof mutating / sizeof mutating[0]; i++)
                assert_false(status_cache_op_is_read_only(mutating[i]));

        status_cache_store(&c, STATUS_OBJECTS, proto_blob_new("{\"a\":1", 6), 10, 3, 0);
        /* A status, then an acquire, in the same read (iteration 10). */
        assert_true(status_cache_fresh(&c, STATUS_OBJECTS, 10, 3, 0));
        status_cache_invalidate(&c);
        assert_false(status_cache_fresh(&c, STATUS_OBJECTS, 10, 3, 0));
        /* An invalid cache is not revived by harmless iterations. */
        status_cache_extend(&c, 11);
        assert_false(status_cache_fresh(&c, STATUS_OBJECTS, 11, 3, 0));
        status_cache_done(&c);
        status_cache_done(&c); /* twice, and on a zero-filled one */
}

static void test_keyed_by_names_and_clocks(void **state)
{
        StatusCache c = {};

        status_cache_store(&c, STATUS_OBJECTS, proto_blob_new("{\"a\":1", 6), 10, 3, 5000);
        assert_false(status_cache_fresh(&c, STATUS_OBJECTS, 10, 4, 5000)); /* a resolver answer came */
        assert_true(status_cache_fresh(&c, STATUS_OBJECTS, 10, 3, 5000 + STATUS_CACHE_CLOCK_SLACK_USEC));
        assert_true(status_cache_fresh(&c, STATUS_OBJECTS, 10, 3, 5000 - STATUS_CACHE_CLOCK_SLACK_USEC));
        assert_false(status_cache_fresh(&c, STATUS_OBJECTS, 10, 3, 5001 + STATUS_CACHE_CLOCK_SLACK_USEC));
        assert_false(status_cache_fresh(&c, STATUS_OBJECTS, 10, 3, -3600 * INT64_C(1000000))); /* a step */
        status_cache_done(&c);
}

/* A slot per shape: each is filled by its own build, and what breaks the
 * chain (or extends it) does so for both. */
static void test_a_slot_per_shape(void **state)
{
        StatusCache c = {};

        status_cache_store(&c, STATUS_ROWS, proto_blob_new("{\"r\":1", 6), 10, 3, 0);
        assert_true(status_cache_fresh(&c, STATUS_ROWS, 10, 3, 0));
        assert_false(status_cache_fresh(&c, STATUS_OBJECTS, 10, 3, 0)); /* never built */
        status_cache_store(&c, STATUS_OBJECTS, proto_blob_new("{\"o\":1", 6), 10, 3, 0);
        status_cache_extend(&c, 11);
        assert_true(status_cache_fresh(&c, STATUS_ROWS, 11, 3, 0));
        assert_true(status_cache_fresh(&c, STATUS_OBJECTS, 11, 3, 0));
        assert_memory_equal(c.slot[STATUS_ROWS].body->data, "{\"r\":1", 6);
        assert_memory_equal(c.slot[STATUS_OBJECTS].body->data, "{\"o\":1", 6);
        /* Rows built again in 12 after a foreign event in 12: objects stay
         * stale (their chain broke at 12) while rows are valid. */
        status_cache_store(&c, STATUS_ROWS, proto_blob_new("{\"r\":2", 6), 12, 3, 0);
        assert_true(status_cache_fresh(&c, STATUS_ROWS, 12, 3, 0));
        assert_false(status_cache_fresh(&c, STATUS_OBJECTS, 12, 3, 0));
        status_cache_invalidate(&c);
        assert_false(status_cache_fresh(&c, STATUS_ROWS, 12, 3, 0));
        assert_false(status_cache_fresh(&c, STATUS_OBJECTS, 12, 3, 0));
        status_cache_done(&c);
        assert_null(c.slot[STATUS_ROWS].body);
        assert_null(c.slot[STATUS_OBJECTS].body);
}

/* A real resolver: its names generation moves when a first answer comes
 * (found or "no such user"), without any event loop. */
static void test_resolver_answer_moves_the_names_generation(void **state)
{
        Resolver *r = NULL;
        char name[RESOLVER_NAME_MAX];
        uint64_t g0, g1;
        int k = -EAGAIN;

        assert_int_equal(resolver_new(60 * UINT64_C(1000000), 0, &r), 0);
        g0 = resolver_names_generation(r);
        (void)resolver_user_name(r, 0, 0, name, sizeof name); /* queued, no wait */
        for (int i = 0; i < 500 && (k = resolver_user_name(r, 0, 0, name, sizeof name)) == -EAGAIN;
             i++)
                usleep(10000);
        assert_int_equal(k, 0);
        assert_string_equal(name, "root");
        g1 = resolver_names_generation(r);
        assert_true(g1 != g0);
        /* Reading again changes nothing. */
        assert_int_equal(resolver_user_name(r, 0, 0, name, sizeof name), 0);
        assert_true(resolver_names_generation(r) == g1);
        /* A uid nobody has: "no such user" is an answer too. */
        k = resolver_user_name(r, 3999999999u, 0, name, sizeof name);
        for (int i = 0; i < 500 && k == -EAGAIN; i++) {
                usleep(10000);
                k = resolver_user_name(r, 3999999999u, 0, name, sizeof name);
        }
        assert_int_equal(k, -ENOENT);
        assert_true(resolver_names_generation(r) != g1);
        resolver_free(r);
}

/* What the rule rests on: sd_event_run() dispatches one source per
 * iteration, and sd_event_get_iteration() tells them apart. */
static uint64_t seen[3];
static size_t n_seen;

static int on_defer(sd_event_source *s, void *userdata)
{
        sd_event *e = userdata;

        assert_true(n_seen < 3);
        assert_int_equal(sd_event_get_iteration(e, &seen[n_seen]), 0);
        n_seen++;
        return 0;
}

static void test_sd_event_one_source_per_iteration(void **state)
{
        sd_event *e = NULL;
        sd_event_source *s[3] = {};

        assert_int_equal(sd_event_new(&e), 0);
        for (size_t i = 0; i < 3; i++) {
                assert_int_equal(sd_event_add_defer(e, &s[i], on_defer, e), 0);
                assert_int_equal(sd_event_source_set_enabled(s[i], SD_EVENT_ONESHOT), 0);
        }
        /* All three are pending at once; each run dispatches one. */
        for (size_t i = 0; i < 3; i++) {
                assert_true(sd_event_run(e, 0) > 0);
                assert_int_equal(n_seen, i + 1);
        }
        assert_true(seen[1] == seen[0] + 1);
        assert_true(seen[2] == seen[1] + 1);
        for (size_t i = 0; i < 3; i++)
                sd_event_source_unref(s[i]);
        sd_event_unref(e);
}

static GpuSnapshot *make_snapshot(void)
{
        GpuSnapshot *s = calloc(1, sizeof *s);
        GpuDevice *g;

        s->taken_usec = UINT64_C(1700000000) * 1000000 + 123457;
        s->simulated = true;
        s->nvml_available = true;
        strcpy(s->driver_version, "550.54.15");
        s->n_gpus = 1;
        s->gpus = calloc(1, sizeof *s->gpus);
        g = &s->gpus[0];
        strcpy(g->uuid, "GPU-00000000-0000-0000-0000-000000000000");
        strcpy(g->name, "NVIDIA \"A100\"\\ caf\xc3\xa9");
        g->numa_node = -1;
        g->memory_total_bytes = UINT64_C(80) << 30;
        g->memory_used_bytes = GPU_VALUE_UNKNOWN;
        g->utilization_gpu = 40;
        g->temperature_c = -1;
        g->power_mw = 123456;
        g->healthy = true;
        g->n_processes = 1;
        g->processes = calloc(1, sizeof *g->processes);
        g->processes[0] = (GpuProcess){.pid = 4242, .uid = 0, .memory_used_bytes = 1 << 20,
                                       .instance = -1};
        g->processes[0].command = strdup("python train.py \x01");
        return s;
}

/* The reply assembled from the cache (prefix, body, fence, braces) is the
 * dump of the reply built as a tree, with and without a resolver and event
 * loop (the first builds every time, the second caches), miss and hit. */
static void test_reply_is_the_dump_of_the_tree(void **state)
{
        UserMemo names = {};
        Daemon d = {};
        Resolver *r = NULL;

        d.user_names = &names;
        strcpy(d.hostname, "testhost");
        d.snapshot = make_snapshot();
        for (int pass = 0; pass < 2; pass++) {
                if (pass == 1) {
                        assert_int_equal(resolver_new(60 * UINT64_C(1000000), 0, &r), 0);
                        d.resolver = r;
                        assert_int_equal(sd_event_new(&d.event), 0);
                }
                for (int i = 0; i < 6; i++) {
                        StatusShape shape = i % 2 ? STATUS_ROWS : STATUS_OBJECTS;
                        _cleanup_free_ char *want = NULL, *got = NULL;
                        size_t want_len, got_len;
                        StatusReply parts;
                        json_t *result = NULL, *msg;
                        uint64_t hits = d.status_cache.hits;

                        assert_int_equal(status_build(&d, shape, &result), 0);
                        msg = proto_reply_ok(4000000000u, result);
                        assert_non_null(msg);
                        assert_int_equal(proto_dump(msg, GK_PROTO_MAX_REPLY, &want, &want_len), 0);
                        json_decref(msg);
                        assert_int_equal(status_cache_reply(&d, shape, 4000000000u, &parts), 0);
                        got_len = parts.head_len + parts.body->len + parts.tail_len;
                        got = malloc(got_len);
                        assert_non_null(got);
                        memcpy(got, parts.head, parts.head_len);
                        memcpy(got + parts.head_len, parts.body->data, parts.body->len);
                        memcpy(got + parts.head_len + parts.body->len, parts.tail, parts.tail_len);
                        status_reply_done(&parts);
                        assert_int_equal(got_len, want_len);
                        assert_memory_equal(got, want, want_len);
                        /* Without a loop nothing is cached; with one, the
                         * second and third requests of a shape are hits
                         * (unless the resolver's answer about uid 0 came in
                         * between). */
                        if (pass == 0)
                                assert_true(d.status_cache.hits == 0);
                        else if (i >= 4)
                                assert_true(d.status_cache.hits > hits ||
                                            resolver_names_generation(r) !=
                                                    d.status_cache.slot[shape].names);
                }
        }
        status_cache_done(&d.status_cache);
        sd_event_unref(d.event);
        resolver_free(r);
        gpu_snapshot_free(d.snapshot);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_chain_extended_by_harmless_iterations),
                cmocka_unit_test(test_chain_broken_by_a_foreign_event),
                cmocka_unit_test(test_broken_by_a_mutating_request),
                cmocka_unit_test(test_keyed_by_names_and_clocks),
                cmocka_unit_test(test_a_slot_per_shape),
                cmocka_unit_test(test_resolver_answer_moves_the_names_generation),
                cmocka_unit_test(test_sd_event_one_source_per_iteration),
                cmocka_unit_test(test_reply_is_the_dump_of_the_tree),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
