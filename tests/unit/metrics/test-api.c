/* Tests of the dashboard's JSON API (metrics/api.c) over a synthetic daemon:
 * a snapshot with a whole GPU and a MIG-enabled one, a lease, and a real
 * store in a temporary directory holding a violation, alert audit records
 * and history samples. Also the parameter parser and the embedded page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "basic/macro.h"
#include "basic/time-util.h"
#include "config/config.h"
#include "daemon/daemon.h"
#include "daemon/metrics-source.h"
#include "metrics/api.h"
#include "metrics/dashboard.h"
#include "metrics/http.h"
#include "store/history-store.h"
#include "store/violation-store.h"

#define GPU0 "GPU-00000000-0000-0000-0000-000000000000"
#define GPU1 "GPU-11111111-1111-1111-1111-111111111111"
#define MIG1 "MIG-22222222-2222-2222-2222-222222222222"

typedef struct Fixture {
        char dir[64];
        Daemon d;
        MetricsSource src; /* what the API reads: the daemon's own source over d */
        UserMemo names;
        GpuSnapshot snapshot;
        GpuDevice gpus[2];
        GpuInstance instance;
        LeaseDevice held;
        Lease lease;
} Fixture;

static int setup(void **state)
{
        Fixture *f = calloc(1, sizeof *f);
        _cleanup_free_ char *error = NULL;

        assert_non_null(f);
        strcpy(f->dir, "/tmp/gk-test-api-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        assert_int_equal(store_open(f->dir, &f->d.store, &error), 0);
        assert_int_equal(config_new_defaults(&f->d.config), 0);
        f->d.user_names = &f->names;
        strcpy(f->d.hostname, "testhost");

        f->gpus[0] = (GpuDevice){.index = 0, .uuid = GPU0, .name = "NVIDIA A100-SXM4-80GB",
                                 .memory_total_bytes = UINT64_C(80) << 30,
                                 .memory_used_bytes = UINT64_C(5) << 30, .utilization_gpu = 37,
                                 .temperature_c = 34, .power_mw = 61000, .healthy = true};
        f->instance = (GpuInstance){.uuid = MIG1, .profile = "3g.40gb", .gpu_instance_id = 1,
                                    .memory_total_bytes = UINT64_C(40) << 30};
        f->gpus[1] = (GpuDevice){.index = 1, .uuid = GPU1, .name = "NVIDIA A100-SXM4-80GB",
                                 .memory_total_bytes = UINT64_C(80) << 30, .memory_used_bytes = 0,
                                 .utilization_gpu = -1, .temperature_c = -1, .power_mw = -1,
                                 .mig_enabled = true, .healthy = true, .instances = &f->instance,
                                 .n_instances = 1};
        f->snapshot = (GpuSnapshot){.gpus = f->gpus, .n_gpus = 2, .simulated = true,
                                    .nvml_available = true,
                                    .taken_usec = now_usec(CLOCK_REALTIME)};
        f->d.snapshot = &f->snapshot;

        f->held = (LeaseDevice){.uuid = GPU0, .gpu_uuid = GPU0};
        f->lease = (Lease){.rec = {.id = 7, .uid = 0, .kind = LEASE_MANUAL,
                                   .created_usec = now_usec(CLOCK_REALTIME),
                                   .devices = &f->held, .n_devices = 1}};
        f->d.leases.leases = &f->lease;
        f->d.leases.n_leases = 1;
        daemon_metrics_source(&f->d, &f->src);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        Fixture *f = *state;
        char path[128];

        store_close(f->d.store);
        config_free(f->d.config);
        /* The database and its WAL files: nothing else is created there. */
        for (size_t i = 0; i < 3; i++) {
                snprintf(path, sizeof path, "%s/%s%s", f->dir, STORE_DB_NAME,
                         (const char *[]){"", "-wal", "-shm"}[i]);
                (void)unlink(path);
        }
        assert_int_equal(rmdir(f->dir), 0);
        free(f);
        return 0;
}

static void test_parse_count(void **state)
{
        unsigned n = 99;

        assert_int_equal(api_parse_count("1", 1, 90, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(api_parse_count("90", 1, 90, &n), 0);
        assert_int_equal(n, 90);
        n = 5;
        assert_int_equal(api_parse_count("91", 1, 90, &n), -EINVAL);
        assert_int_equal(api_parse_count("0", 1, 90, &n), -EINVAL);
        assert_int_equal(api_parse_count("", 1, 90, &n), -EINVAL);
        assert_int_equal(api_parse_count(NULL, 1, 90, &n), -EINVAL);
        assert_int_equal(api_parse_count("-1", 1, 90, &n), -EINVAL);
        assert_int_equal(api_parse_count("+1", 1, 90, &n), -EINVAL);
        assert_int_equal(api_parse_count("07", 1, 90, &n), -EINVAL);
        assert_int_equal(api_parse_count("7 ", 1, 90, &n), -EINVAL);
        assert_int_equal(api_parse_count("99999999999999999999", 1, 90, &n), -EINVAL);
        assert_int_equal(n, 5);
}

static void test_status(void **state)
{
        Fixture *f = *state;
        uint64_t now = now_usec(CLOCK_REALTIME);
        StoredViolation v = {.pid = 4242, .start_time = 1, .uid = 0, .device_uuid = GPU0,
                             .gpu_uuid = GPU0, .gpu_index = 0, .memory_bytes = 1 << 20,
                             .command = (char *)"python stolen.py", .detected_usec = now};
        StoredViolation old = v;
        json_t *o = NULL, *alerts, *violations, *a;

        old.pid = 4343;
        old.detected_usec = now - 2 * 24 * USEC_PER_HOUR;
        assert_int_equal(store_violation_open(f->d.store, &old), 0);
        assert_int_equal(store_violation_open(f->d.store, &v), 0);
        assert_int_equal(store_audit(f->d.store, -1, "alert.sent", "violation:GPU0",
                                     "{\"sink\":\"ops\",\"event\":\"violation\"}"), 0);
        assert_int_equal(store_audit(f->d.store, -1, "alert.attempt_failed", "violation:GPU0",
                                     NULL), 0);
        assert_int_equal(store_audit(f->d.store, -1, "alert.failed", "gpu.hot:GPU1", "not json"),
                         0);
        assert_int_equal(store_audit(f->d.store, -1, "lease.grant", "7", NULL), 0);

        assert_int_equal(api_status(&f->src, &o), 0);
        assert_string_equal(json_string_value(json_object_get(o, "hostname")), "testhost");
        assert_int_equal(json_array_size(json_object_get(o, "gpus")), 2);
        assert_int_equal(json_array_size(json_object_get(o, "queue")), 0);
        assert_string_equal(json_string_value(json_object_get(
                                json_object_get(json_array_get(json_object_get(o, "gpus"), 0),
                                                "lease"),
                                "user")),
                            "root");

        /* Only the violation of the last day. */
        violations = json_object_get(o, "violations");
        assert_int_equal(json_array_size(violations), 1);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(violations, 0), "pid")),
                         4242);
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(violations, 0), "command")),
            "python stolen.py");

        /* Delivered and given-up alerts only, newest first; a detail that is
         * not JSON is null. */
        alerts = json_object_get(o, "alerts");
        assert_int_equal(json_array_size(alerts), 2);
        a = json_array_get(alerts, 0);
        assert_string_equal(json_string_value(json_object_get(a, "action")), "alert.failed");
        assert_string_equal(json_string_value(json_object_get(a, "key")), "gpu.hot:GPU1");
        assert_true(json_is_null(json_object_get(a, "detail")));
        a = json_array_get(alerts, 1);
        assert_string_equal(json_string_value(json_object_get(a, "action")), "alert.sent");
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(a, "detail"), "sink")), "ops");
        assert_true(json_real_value(json_object_get(a, "at")) > (double)(now / USEC_PER_SEC) - 60);
        json_decref(o);
}

/* Ten minutes of one-minute samples: root holds GPU0 throughout, busy
 * (50 %) for the first half; the MIG instance is free. */
static void write_history(Fixture *f, uint64_t now)
{
        for (unsigned i = 0; i < 10; i++) {
                HistorySample s[2] = {
                    {.device_uuid = GPU0, .gpu_uuid = GPU0, .util_percent = i < 5 ? 50 : 0, .busy = i < 5,
                     .memory_used_bytes = UINT64_C(4) << 30, .power_mw = 100000,
                     .holder_uid = 0, .lease_id = 7},
                    {.device_uuid = MIG1, .gpu_uuid = GPU1, .util_percent = -1,
                     .memory_used_bytes = 0, .holder_uid = -1},
                };

                assert_int_equal(store_history_write(f->d.store, now - (10 - i) * 60 * USEC_PER_SEC,
                                                     60 * USEC_PER_SEC, s, 2),
                                 0);
        }
}

static void test_usage(void **state)
{
        Fixture *f = *state;
        json_t *o = NULL, *users, *u;

        write_history(f, now_usec(CLOCK_REALTIME));
        assert_int_equal(api_usage(&f->src, 1, &o), 0);
        assert_int_equal(json_integer_value(json_object_get(o, "days")), 1);
        users = json_object_get(o, "users");
        assert_int_equal(json_array_size(users), 1);
        u = json_array_get(users, 0);
        assert_int_equal(json_integer_value(json_object_get(u, "uid")), 0);
        assert_string_equal(json_string_value(json_object_get(u, "user")), "root");
        assert_float_equal(json_real_value(json_object_get(u, "leased_device_hours")), 10.0 / 60,
                           1e-6);
        assert_float_equal(json_real_value(json_object_get(u, "busy_device_hours")), 5.0 / 60,
                           1e-6);
        assert_float_equal(json_real_value(json_object_get(u, "memory_gib_hours")), 4 * 10.0 / 60,
                           1e-6);
        assert_float_equal(json_real_value(json_object_get(json_object_get(o, "totals"),
                                                           "leased_device_hours")),
                           10.0 / 60, 1e-6);
        json_decref(o);
}

static void test_history(void **state)
{
        Fixture *f = *state;
        uint64_t now = now_usec(CLOCK_REALTIME);
        json_t *o = NULL, *points, *p;

        assert_int_equal(api_history(&f->src, "GPU-not-here", 24, &o), -ENOENT);
        assert_null(o);

        /* No history yet: an empty series, not an error. */
        assert_int_equal(api_history(&f->src, GPU0, 24, &o), 0);
        assert_int_equal(json_array_size(json_object_get(o, "points")), 0);
        json_decref(o);

        write_history(f, now);
        assert_int_equal(api_history(&f->src, GPU0, 24, &o), 0);
        assert_string_equal(json_string_value(json_object_get(o, "uuid")), GPU0);
        points = json_object_get(o, "points");
        assert_int_equal(json_array_size(points), 10);
        p = json_array_get(points, 0);
        assert_float_equal(json_real_value(json_object_get(p, "util")), 50, 1e-9);
        assert_int_equal(json_integer_value(json_object_get(p, "memory_used_bytes")),
                         INT64_C(4) << 30);
        assert_int_equal(json_integer_value(json_object_get(p, "holder")), 0);
        assert_float_equal(json_real_value(json_object_get(json_array_get(points, 9), "util")), 0,
                           1e-9);
        json_decref(o);

        /* A MIG instance's utilisation is unknown: null, not 0. */
        assert_int_equal(api_history(&f->src, MIG1, 1, &o), 0);
        points = json_object_get(o, "points");
        assert_int_equal(json_array_size(points), 10);
        assert_true(json_is_null(json_object_get(json_array_get(points, 0), "util")));
        assert_int_equal(json_integer_value(json_object_get(json_array_get(points, 0), "holder")),
                         -1);
        json_decref(o);
}

/* More samples than buckets: averaged down, never more than the limit. */
static void test_history_buckets(void **state)
{
        Fixture *f = *state;
        uint64_t now = now_usec(CLOCK_REALTIME);
        size_t n = API_HISTORY_BUCKETS * 2 + 1;
        HistorySample s = {.device_uuid = GPU0, .gpu_uuid = GPU0, .holder_uid = -1};
        json_t *o = NULL, *points;

        for (size_t i = 0; i < n; i++) {
                s.util_percent = (int)(i % 2) * 100;
                assert_int_equal(store_history_write(f->d.store, now - (n - i) * 10 * USEC_PER_SEC,
                                                     10 * USEC_PER_SEC, &s, 1),
                                 0);
        }
        assert_int_equal(api_history(&f->src, GPU0, 24, &o), 0);
        points = json_object_get(o, "points");
        assert_true(json_array_size(points) <= API_HISTORY_BUCKETS);
        assert_true(json_array_size(points) >= API_HISTORY_BUCKETS / 2);
        /* Three samples per bucket: 0, 100, 0 → 33.3 %. */
        assert_float_equal(json_real_value(json_object_get(json_array_get(points, 0), "util")),
                           100.0 / 3, 1e-6);
        json_decref(o);
}

static void test_page(void **state)
{
        /* The page is there, whole, loads nothing (the only URL in it is
         * the SVG namespace) and fetches only its own API. */
        assert_non_null(strstr(metrics_dashboard_html, "<!DOCTYPE html>"));
        assert_non_null(strstr(metrics_dashboard_html, "</html>"));
        assert_non_null(strstr(metrics_dashboard_html, "/api/status"));
        assert_null(strstr(metrics_dashboard_html, "https://"));
        assert_null(strstr(metrics_dashboard_html, "src="));
        assert_null(strstr(metrics_dashboard_html, "<link"));
        assert_null(strstr(metrics_dashboard_html, "url("));
        assert_null(strstr(metrics_dashboard_html, "@import"));
        assert_null(strstr(metrics_dashboard_html, "innerHTML"));
}

static void test_cookie_authorized(void **state)
{
        assert_true(metrics_cookie_authorized(NULL, NULL));
        assert_true(metrics_cookie_authorized("anything", NULL));
        assert_true(metrics_cookie_authorized("s3cret", "s3cret"));
        assert_false(metrics_cookie_authorized(NULL, "s3cret"));
        assert_false(metrics_cookie_authorized("s3cre", "s3cret"));
        assert_false(metrics_cookie_authorized("s3crets", "s3cret"));
        assert_false(metrics_cookie_authorized("", "s3cret"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_count),
            cmocka_unit_test_setup_teardown(test_status, setup, teardown),
            cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
            cmocka_unit_test_setup_teardown(test_history, setup, teardown),
            cmocka_unit_test_setup_teardown(test_history_buckets, setup, teardown),
            cmocka_unit_test(test_page),
            cmocka_unit_test(test_cookie_authorized),
        };

        return cmocka_run_group_tests_name("test-metrics-api", tests, NULL, NULL);
}
