/* Unit tests for the lease side of the CLI, without a daemon: the command
 * lines of `run` and `lease acquire` (device selection forms, conflicts and
 * missing commands are usage errors, exit 64), the lease.acquire arguments
 * they become, --time, the sh quoting of `lease env`, the lease / queue
 * views and the lease additions to the status view (holder, DRAINED, IN USE
 * WITHOUT LEASE, the queue) within 80 columns, and the child of `run`: its
 * environment, exec failures (127 / 126) and exit statuses. */
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "basic/macro.h"
#include "basic/utf8.h"
#include "cli/lease-args.h"
#include "cli/lease-render.h"
#include "cli/run-child.h"
#include "cli/status-render.h"
#include "text-check.h"

#define NOW 1712345678.0

/* Parse a NULL-terminated list of words as `gpukeeper run ...` (or lease
 * acquire): argv[0] is the command name, as main() hands it over. */
static int parse(bool run, cli_acquire_args *a, ...)
{
        /* static: a->command points into it after the call */
        static char *argv[32];
        int argc = 0;
        cli_context ctx = {};
        va_list ap;
        int r;

        argv[argc++] = run ? "run" : "acquire";
        va_start(ap, a);
        for (char *w; (w = va_arg(ap, char *));)
                argv[argc++] = w;
        va_end(ap);
        argv[argc] = NULL;
        r = run ? cli_run_parse(&ctx, argc, argv, a) : cli_lease_acquire_parse(&ctx, argc, argv, a);
        return r;
}

static char *request_text(const cli_acquire_args *a, const char *kind, char *const *command)
{
        json_t *args = cli_acquire_request(a, kind, command);
        char *s;

        assert_non_null(args);
        s = json_dumps(args, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(args);
        return s;
}

static void test_run_parse(void **state)
{
        cli_acquire_args a;
        _cleanup_free_ char *req = NULL;

        assert_int_equal(parse(true, &a, "--gpus", "2", "--", "python", "-u", "train.py", NULL),
                         CLI_EXIT_OK);
        assert_int_equal(a.kind, CLI_SELECT_GPUS);
        assert_int_equal(a.gpus, 2);
        assert_true(a.wait);
        assert_string_equal(a.command[0], "python");
        assert_string_equal(a.command[1], "-u");
        assert_null(a.command[3]);
        req = request_text(&a, "run", a.command);
        assert_string_equal(req, "{\"kind\":\"run\",\"wait\":true,\"gpus\":2,"
                                 "\"command\":\"python -u train.py\"}");
        cli_acquire_args_done(&a);

        /* nothing named: one GPU; the command's own options stay its own */
        assert_int_equal(parse(true, &a, "--no-wait", "--", "sh", "--gpus", "3", NULL),
                         CLI_EXIT_OK);
        assert_int_equal(a.kind, CLI_SELECT_NONE);
        assert_false(a.wait);
        assert_string_equal(a.command[1], "--gpus");
        free(req);
        req = request_text(&a, "run", NULL);
        assert_string_equal(req, "{\"kind\":\"run\",\"wait\":false,\"gpus\":1}");
        cli_acquire_args_done(&a);

        /* --gpu: UUIDs and indices, commas and repetition, in order */
        assert_int_equal(parse(true, &a, "--gpu", "GPU-5e2c1a3b-0000,1", "--gpu",
                               "MIG-1f0a2b3c-aaaa", "--", "x", NULL),
                         CLI_EXIT_OK);
        free(req);
        req = request_text(&a, "run", NULL);
        assert_string_equal(req, "{\"kind\":\"run\",\"wait\":true,\"devices\":"
                                 "[\"GPU-5e2c1a3b-0000\",\"1\",\"MIG-1f0a2b3c-aaaa\"]}");
        cli_acquire_args_done(&a);

        /* --mig PROFILE[:N], repeatable; the same profile adds up */
        assert_int_equal(parse(true, &a, "--mig", "3g.40gb", "--mig", "1g.10gb:2", "--mig",
                               "3g.40gb", "--", "x", NULL),
                         CLI_EXIT_OK);
        free(req);
        req = request_text(&a, "run", NULL);
        assert_string_equal(req, "{\"kind\":\"run\",\"wait\":true,\"mig\":"
                                 "[{\"profile\":\"3g.40gb\",\"count\":2},"
                                 "{\"profile\":\"1g.10gb\",\"count\":2}]}");
        cli_acquire_args_done(&a);

        assert_int_equal(parse(true, &a, "-h", NULL), CLI_EXIT_OK);
        assert_true(a.help);
        cli_acquire_args_done(&a);
}

static void test_run_parse_errors(void **state)
{
        cli_acquire_args a;

        /* conflicting selections */
        assert_int_equal(parse(true, &a, "--gpus", "2", "--gpu", "0", "--", "x", NULL), 64);
        assert_int_equal(parse(true, &a, "--gpu", "0", "--mig", "3g.40gb", "--", "x", NULL), 64);
        assert_int_equal(parse(true, &a, "--mig", "3g.40gb", "--gpus", "1", "--", "x", NULL), 64);
        assert_int_equal(parse(true, &a, "--gpus", "1", "--gpus", "2", "--", "x", NULL), 64);
        /* the command: "--" and something after it */
        assert_int_equal(parse(true, &a, "--gpus", "2", NULL), 64);
        assert_int_equal(parse(true, &a, "--gpus", "2", "--", NULL), 64);
        assert_int_equal(parse(true, &a, "python", "train.py", NULL), 64);
        assert_int_equal(parse(true, &a, NULL), 64);
        /* bad values */
        assert_int_equal(parse(true, &a, "--gpus", "0", "--", "x", NULL), 64);
        assert_int_equal(parse(true, &a, "--gpus", "-1", "--", "x", NULL), 64);
        assert_int_equal(parse(true, &a, "--gpus", "two", "--", "x", NULL), 64);
        assert_int_equal(parse(true, &a, "--gpus", "100000", "--", "x", NULL), 64);
        /* What one lease may hold, as the daemon says (GK_PROTO_MAX_LEASE_DEVICES). */
        assert_int_equal(parse(true, &a, "--gpus", "65", "--", "x", NULL), 64);
        assert_int_equal(parse(true, &a, "--gpus", "64", "--", "x", NULL), 0);
        assert_int_equal(a.gpus, 64);
        cli_acquire_args_done(&a);
        assert_int_equal(parse(true, &a, "--gpu", "", "--", "x", NULL), 64);
        assert_int_equal(parse(true, &a, "--gpu", "0,,1", "--", "x", NULL), 64);
        assert_int_equal(parse(true, &a, "--gpu", "0,", "--", "x", NULL), 64);
        assert_int_equal(parse(true, &a, "--gpu", "0,0", "--", "x", NULL), 64);
        assert_int_equal(parse(true, &a, "--gpu", "GPU-a;rm", "--", "x", NULL), 64);
        assert_int_equal(parse(true, &a, "--gpu", "--", "x", NULL), 64);
        assert_int_equal(parse(true, &a, "--mig", "3g.40gb:0", "--", "x", NULL), 64);
        assert_int_equal(parse(true, &a, "--mig", "3g.40gb:", "--", "x", NULL), 64);
        assert_int_equal(parse(true, &a, "--mig", ":2", "--", "x", NULL), 64);
        assert_int_equal(parse(true, &a, "--mig", "3g 40gb", "--", "x", NULL), 64);
        assert_int_equal(
            parse(true, &a, "--mig", "1g.10gb:40", "--mig", "1g.10gb:40", "--", "x", NULL), 64);
        /* unknown options, missing values, acquire-only options */
        assert_int_equal(parse(true, &a, "--frobnicate", "--", "x", NULL), 64);
        assert_int_equal(parse(true, &a, "--gpus", NULL), 64);
        assert_int_equal(parse(true, &a, "--time", "4h", "--", "x", NULL), 64);
}

static void test_acquire_parse(void **state)
{
        cli_acquire_args a;
        _cleanup_free_ char *req = NULL;
        uint64_t sec = 7;

        assert_int_equal(parse(false, &a, "--gpus", "1", "--time", "4h", "--json", NULL),
                         CLI_EXIT_OK);
        assert_int_equal(a.duration_sec, 4 * 3600);
        assert_true(a.json);
        req = request_text(&a, "manual", NULL);
        assert_string_equal(req, "{\"kind\":\"manual\",\"wait\":true,\"gpus\":1,"
                                 "\"duration_sec\":14400}");
        cli_acquire_args_done(&a);

        assert_int_equal(parse(false, &a, "--mig", "1g.10gb", "--no-wait", NULL), CLI_EXIT_OK);
        free(req);
        req = request_text(&a, "manual", NULL);
        assert_string_equal(req, "{\"kind\":\"manual\",\"wait\":false,\"mig\":"
                                 "[{\"profile\":\"1g.10gb\",\"count\":1}]}");
        cli_acquire_args_done(&a);

        assert_int_equal(parse(false, &a, "--time", "30", NULL), 64);      /* unit required */
        assert_int_equal(parse(false, &a, "--time", "1s500ms", NULL), 64); /* whole seconds */
        assert_int_equal(parse(false, &a, "--time", "0s", NULL), 64);
        assert_int_equal(parse(false, &a, "--time", "1h", "--time", "2h", NULL), 64);
        assert_int_equal(parse(false, &a, "extra", NULL), 64);
        assert_int_equal(parse(false, &a, "--gpus", "2", "--mig", "1g.10gb", NULL), 64);
        assert_int_equal(parse(false, &a, "--", "cmd", NULL), 64);

        assert_int_equal(cli_parse_lease_time("1h30m", &sec), 0);
        assert_int_equal(sec, 5400);
        assert_int_equal(cli_parse_lease_time("1d", &sec), 0);
        assert_int_equal(sec, 86400);
        assert_true(cli_parse_lease_time("", &sec) < 0);
        assert_true(cli_parse_lease_time("500ms", &sec) < 0);
        assert_int_equal(sec, 86400);
}

/* The command shown to others: valid UTF-8, at most 1024 bytes, cut at a
 * character boundary. */
static void test_acquire_command(void **state)
{
        cli_acquire_args a = {.wait = true};
        char *cmd[4], big[2000];
        json_t *args;
        const char *s;

        memset(big, 0, sizeof big);
        /* 'x' then 3-byte characters: 1024 falls inside one */
        big[0] = 'x';
        for (size_t i = 1; i + 3 < sizeof big; i += 3)
                memcpy(big + i, "\xe2\x82\xac", 3);
        cmd[0] = "bad\xff";
        cmd[1] = big;
        cmd[2] = NULL;
        args = cli_acquire_request(&a, "run", cmd);
        assert_non_null(args);
        s = json_string_value(json_object_get(args, "command"));
        assert_non_null(s);
        assert_true(strlen(s) <= CLI_MAX_COMMAND_BYTES);
        assert_true(strncmp(s, "bad\xef\xbf\xbd x\xe2\x82\xac", 11) == 0);
        assert_true(utf8_is_valid(s, strlen(s)));
        json_decref(args);
}

static char *env_text(const char *json, int *ret)
{
        json_t *env = json_loads(json, JSON_ALLOW_NUL, NULL);
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        assert_non_null(env);
        assert_non_null(f);
        *ret = cli_env_render(env, f);
        assert_int_equal(fclose(f), 0);
        json_decref(env);
        return buf;
}

static void test_env_quoting(void **state)
{
        _cleanup_free_ char *ok = NULL, *quotes = NULL, *bad1 = NULL, *bad2 = NULL, *bad3 = NULL,
                            *bad4 = NULL;
        int r;

        ok = env_text("{\"CUDA_VISIBLE_DEVICES\": \"GPU-aaaa,MIG-bbbb\","
                      " \"CUDA_DEVICE_ORDER\": \"PCI_BUS_ID\", \"GPUKEEPER_LEASE_ID\": \"12\"}",
                      &r);
        assert_int_equal(r, 0);
        assert_string_equal(ok, "export CUDA_VISIBLE_DEVICES='GPU-aaaa,MIG-bbbb'\n"
                                "export CUDA_DEVICE_ORDER='PCI_BUS_ID'\n"
                                "export GPUKEEPER_LEASE_ID='12'\n");

        /* whatever the value holds, it stays one word and runs nothing */
        quotes = env_text("{\"X\": \"it's $(rm -rf ~) `id` \\\"q\\\" \\\\ \\n ''\"}", &r);
        assert_int_equal(r, 0);
        assert_string_equal(quotes, "export X='it'\\''s $(rm -rf ~) `id` \"q\" \\ \n "
                                    "'\\'''\\'''\n");

        /* a name that is not a variable name, a non-string, NUL, nothing */
        bad1 = env_text("{\"A\": \"1\", \"X;rm -rf ~\": \"1\"}", &r);
        assert_int_equal(r, -EBADMSG);
        assert_string_equal(bad1, "");
        bad2 = env_text("{\"A\": 1}", &r);
        assert_int_equal(r, -EBADMSG);
        bad3 = env_text("{\"A\": \"a\\u0000b\"}", &r);
        assert_int_equal(r, -EBADMSG);
        bad4 = env_text("{}", &r);
        assert_int_equal(r, -EBADMSG);
}

/* Check the quoting with a real shell: sourcing the lines gives back the
 * exact bytes. */
static void test_env_quoting_sh(void **state)
{
        const char *value = "a'b\"c$HOME`x` \\ '' \n end";
        json_t *env = json_pack("{s:s}", "GK_TEST_VALUE", value);
        char in[] = "/tmp/gk-test-env-XXXXXX", out[] = "/tmp/gk-test-out-XXXXXX", script[200],
             got[256] = "";
        char *argv[] = {"sh", "-c", script, NULL};
        char *envp[] = {"PATH=/usr/bin:/bin", NULL};
        sigset_t mask;
        FILE *f;
        pid_t pid;
        int fd, e, st;
        ssize_t n;

        assert_non_null(env);
        fd = mkstemp(in);
        assert_true(fd >= 0);
        f = fdopen(fd, "w");
        assert_non_null(f);
        assert_int_equal(cli_env_render(env, f), 0);
        assert_int_equal(fclose(f), 0);
        fd = mkstemp(out);
        assert_true(fd >= 0);
        snprintf(script, sizeof script, ". %s && printf %%s \"$GK_TEST_VALUE\" >%s", in, out);
        sigemptyset(&mask);
        assert_int_equal(cli_child_spawn(argv, envp, &mask, &pid, &e), 0);
        assert_int_equal(e, 0);
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_int_equal(cli_exit_status(st), 0);
        n = read(fd, got, sizeof got - 1);
        assert_true(n >= 0);
        got[n] = '\0';
        close(fd);
        unlink(in);
        unlink(out);
        assert_string_equal(got, value);
        json_decref(env);
}

static void test_format_span(void **state)
{
        struct {
                double in;
                const char *out;
        } cases[] = {
            {-5, "0s"},
            {0, "0s"},
            {59.9, "59s"},
            {60, "1m"},
            {3599, "59m"},
            {3600, "1h"},
            {7980, "2h13m"},
            {86399, "23h59m"},
            {86400, "1d"},
            {90000, "1d1h"},
            {1e300, "11574074074d1h"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char buf[32];

                assert_string_equal(cli_format_span(buf, sizeof buf, cases[i].in), cases[i].out);
        }
}

static const char *const leases_json =
    "[{\"id\": 12, \"uid\": 1001, \"user\": \"alice\", \"kind\": \"manual\","
    "  \"state\": \"active\", \"created_at\": 1712337678.0, \"expires_at\": 1712352078.0,"
    "  \"cuda_visible_devices\": \"GPU-aaaa,GPU-bbbb\", \"devices\": ["
    "   {\"uuid\": \"GPU-aaaaaaaa-0000-1111-2222-333344445555\", \"gpu_uuid\": \"GPU-aaaa\","
    "    \"gpu_index\": 0, \"profile\": null},"
    "   {\"uuid\": \"GPU-bbbbbbbb-0000-1111-2222-333344445555\", \"gpu_uuid\": \"GPU-bbbb\","
    "    \"gpu_index\": 1, \"profile\": null}]},"
    " {\"id\": 1234567, \"uid\": 54321, \"user\": null, \"kind\": \"run\", \"state\": \"active\","
    "  \"created_at\": 1712345378.0, \"expires_at\": null, \"devices\": ["
    "   {\"uuid\": \"MIG-1f0a2b3c-aaaa-bbbb-cccc-ddddeeeeffff\", \"gpu_uuid\": \"GPU-cccc\","
    "    \"gpu_index\": 2, \"profile\": \"3g.40gb\"},"
    "   {\"uuid\": \"GPU-dddddddd-0000-1111-2222-333344445555\", \"gpu_index\": null}]},"
    " {\"id\": 14, \"user\": \"a-very-long-user-name\", \"kind\": \"manual\","
    "  \"created_at\": 1712345000.0, \"expires_at\": 1712345000.0, \"devices\": []}]";

static char *render_with(int (*fn)(json_t *, FILE *, const cli_term *, double), json_t *j,
                         const cli_term *term)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        assert_non_null(f);
        assert_int_equal(fn(j, f, term, NOW), 0);
        assert_int_equal(fclose(f), 0);
        return buf;
}

static int list_all(json_t *j, FILE *f, const cli_term *term, double now)
{
        return cli_lease_list_render(j, true, f, term, now);
}

static void test_lease_list(void **state)
{
        json_t *leases = cli_test_load(leases_json), *empty = cli_test_load("[]"),
               *obj = cli_test_load("{}");
        cli_term term = {.unicode = true, .columns = 80, .tty = true};
        _cleanup_free_ char *out = NULL, *l12 = NULL, *lrun = NULL, *l14 = NULL, *none = NULL;
        char buf[64];

        out = render_with(list_all, leases, &term);
        cli_test_check_lines(out, 79);
        assert_true(strncmp(out, "ID       USER       KIND    AGE     EXPIRES    DEVICES\n", 55) ==
                    0);
        l12 = cli_test_line_with(out, "alice");
        assert_string_equal(l12, "12       alice      manual  2h13m   in 1h46m   [0], [1]");
        lrun = cli_test_line_with(out, "1234567");
        assert_string_equal(
            lrun, "1234567  54321      run     5m      -          [2] 3g.40gb, GPU-dddddddd");
        l14 = cli_test_line_with(out, "14 ");
        assert_non_null(strstr(l14, "a-very-lo… manual"));
        assert_non_null(strstr(l14, "expired"));

        none = render_with(list_all, empty, &term);
        assert_string_equal(none, "No leases.\n");
        assert_int_equal(cli_lease_list_render(obj, false, stdout, &term, NOW), -EBADMSG);
        assert_string_equal(cli_lease_devices_short(buf, sizeof buf, obj), "-");
        json_decref(leases);
        json_decref(empty);
        json_decref(obj);
}

static void test_lease_one(void **state)
{
        json_t *leases = cli_test_load(leases_json);
        cli_term term = {.unicode = true, .columns = 80, .tty = true};
        _cleanup_free_ char *out = NULL, *run = NULL;

        out = render_with(cli_lease_render, json_array_get(leases, 0), &term);
        cli_test_check_lines(out, 79);
        assert_string_equal(out, "lease 12 (manual): 2 devices, expires 2024-04-05 21:21 (in "
                                 "1h46m)\n"
                                 "  [0]              GPU-aaaaaaaa-0000-1111-2222-333344445555\n"
                                 "  [1]              GPU-bbbbbbbb-0000-1111-2222-333344445555\n");
        run = render_with(cli_lease_render, json_array_get(leases, 1), &term);
        assert_string_equal(run, "lease 1234567 (run): 2 devices\n"
                                 "  [2]   3g.40gb    MIG-1f0a2b3c-aaaa-bbbb-cccc-ddddeeeeffff\n"
                                 "  [-]              GPU-dddddddd-0000-1111-2222-333344445555\n");
        json_decref(leases);
}

static const char *const queue_json =
    "[{\"request_id\": 4, \"uid\": 1003, \"user\": \"carol\", \"kind\": \"run\","
    "  \"position\": 1, \"since\": 1712344958.0, \"wants\": \"2 GPUs\","
    "  \"reason\": \"waiting for 2 GPUs: 1 free, and a very long explanation that goes on and "
    "on past the end of the line\"},"
    " {\"request_id\": 5, \"uid\": 1004, \"user\": null, \"kind\": \"manual\","
    "  \"position\": 2, \"since\": 1712345658.0, \"wants\": \"1× 3g.40gb\", \"reason\": "
    "\"behind carol \\u001b[31m\"}]";

static void test_queue(void **state)
{
        json_t *queue = cli_test_load(queue_json);
        cli_term term = {.unicode = true, .columns = 80, .tty = true};
        _cleanup_free_ char *out = NULL, *first = NULL, *second = NULL;
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        assert_non_null(f);
        assert_int_equal(cli_queue_render(queue, f, &term, NOW, 0), 2);
        assert_int_equal(cli_queue_render(NULL, f, &term, NOW, 0), 0);
        assert_int_equal(fclose(f), 0);
        out = buf;
        cli_test_check_lines(out, 79);
        assert_true(strncmp(out, "POS  USER       WANTS           WAITING  REASON\n", 48) == 0);
        first = cli_test_line_with(out, "carol ");
        assert_true(
            strncmp(first, "  1  carol      2 GPUs          12m      waiting for 2 GPUs", 58) == 0);
        assert_non_null(strstr(first, "…"));
        second = cli_test_line_with(out, "1004");
        assert_string_equal(second, "  2  1004       1× 3g.40gb      20s      behind carol ?[31m");

        /* Not a terminal (piped, redirected): the reason is never cut. */
        term.tty = false;
        free(TAKE_PTR(out));
        free(TAKE_PTR(first));
        len = 0;
        f = open_memstream(&buf, &len);
        assert_non_null(f);
        assert_int_equal(cli_queue_render(queue, f, &term, NOW, 0), 2);
        assert_int_equal(fclose(f), 0);
        out = buf;
        first = cli_test_line_with(out, "carol ");
        assert_non_null(strstr(first, "goes on and on past the end of the line"));
        assert_null(strstr(first, "…"));
        json_decref(queue);
}

/* A status reply of a daemon that knows leases. */
static const char *const status_json =
    "{\"simulated\": true, \"driver_version\": \"550.54.15\", \"hostname\": \"gpu-node-01\","
    " \"sampled_at\": 1712345678.0, \"nvml_available\": true, \"message\": null, \"gpus\": ["
    "{\"index\": 0, \"uuid\": \"GPU-aaaaaaaa-0000\", \"name\": \"NVIDIA A100-SXM4-80GB\","
    " \"memory_total_bytes\": 85899345920, \"memory_used_bytes\": 6442450944,"
    " \"utilization_gpu\": 37, \"temperature_c\": 34, \"power_w\": 61.0, \"healthy\": true,"
    " \"mig_enabled\": false, \"instances\": [], \"drained\": false,"
    " \"lease\": {\"id\": 12, \"user\": \"alice\", \"uid\": 1001, \"kind\": \"run\","
    "            \"since\": 1712337698.0, \"expires_at\": null},"
    " \"processes\": ["
    "  {\"pid\": 4242, \"uid\": 1001, \"user\": \"alice\", \"command\": \"python train.py\","
    "   \"memory_used_bytes\": 5368709120, \"instance_uuid\": null, \"leased\": true},"
    "  {\"pid\": 5151, \"uid\": 1005, \"user\": \"mallory\", \"command\": \"./miner --all\","
    "   \"memory_used_bytes\": 1073741824, \"instance_uuid\": null, \"leased\": false}]},"
    "{\"index\": 1, \"uuid\": \"GPU-bbbbbbbb-0000\", \"name\": \"NVIDIA A100-SXM4-80GB\","
    " \"memory_total_bytes\": 85899345920, \"memory_used_bytes\": 0,"
    " \"utilization_gpu\": 0, \"temperature_c\": 31, \"power_w\": 55.0, \"healthy\": true,"
    " \"mig_enabled\": false, \"instances\": [], \"processes\": [], \"drained\": false,"
    " \"lease\": null},"
    "{\"index\": 2, \"uuid\": \"GPU-cccccccc-0000\", \"name\": \"NVIDIA A100-SXM4-80GB\","
    " \"memory_total_bytes\": 85899345920, \"memory_used_bytes\": 5368709120,"
    " \"utilization_gpu\": null, \"temperature_c\": 40, \"power_w\": 90.0, \"healthy\": true,"
    " \"mig_enabled\": true, \"drained\": true, \"lease\": null, \"instances\": ["
    "  {\"uuid\": \"MIG-1f0a2b3c-aaaa\", \"profile\": \"3g.40gb\", \"gpu_instance_id\": 1,"
    "   \"compute_instance_id\": 0, \"memory_total_bytes\": 42144366592,"
    "   \"memory_used_bytes\": 5368709120, \"drained\": true,"
    "   \"lease\": {\"id\": 13, \"user\": \"a-user-name-that-goes-on-and-on-and-on-forever\","
    "              \"uid\": 1002, \"kind\": \"manual\", \"since\": 1712344000.0,"
    "              \"expires_at\": 1712349278.0}},"
    "  {\"uuid\": \"MIG-9f9f9f9f-aaaa\", \"profile\": \"1g.10gb\", \"gpu_instance_id\": 9,"
    "   \"compute_instance_id\": 0, \"memory_total_bytes\": 10485760000,"
    "   \"memory_used_bytes\": 0, \"drained\": true, \"lease\": null}],"
    " \"processes\": ["
    "  {\"pid\": 4343, \"uid\": 1002, \"user\": \"bob\", \"command\": \"python infer.py\","
    "   \"memory_used_bytes\": 5368709120, \"instance_uuid\": \"MIG-1f0a2b3c-aaaa\","
    "   \"leased\": false},"
    "  {\"pid\": 4344, \"uid\": 0, \"user\": \"root\", \"command\": \"dcgm\","
    "   \"memory_used_bytes\": 1048576, \"instance_uuid\": \"MIG-1f0a2b3c-aaaa\","
    "   \"leased\": false},"
    "  {\"pid\": 4345, \"uid\": 1002, \"user\": \"bob\", \"command\": \"python other.py\","
    "   \"memory_used_bytes\": 1048576, \"instance_uuid\": \"MIG-1f0a2b3c-aaaa\","
    "   \"leased\": false}]},"
    "{\"index\": 3, \"uuid\": \"\", \"name\": \"\", \"healthy\": false,"
    " \"error\": \"GPU is lost\", \"mig_enabled\": false, \"instances\": [], \"processes\": [],"
    " \"drained\": false, \"lease\": null}],"
    " \"queue\": " /* queue_json follows */;

static char *status_text(const cli_term *term)
{
        char *text, *buf = NULL;
        size_t len = 0;
        json_t *status;
        FILE *f;

        assert_true(asprintf(&text, "%s%s}", status_json, queue_json) > 0);
        status = cli_test_load(text);
        free(text);
        f = open_memstream(&buf, &len);
        assert_non_null(f);
        assert_int_equal(cli_status_render(status, f, term, NOW), 0);
        assert_int_equal(fclose(f), 0);
        json_decref(status);
        return buf;
}

static void test_status_leases(void **state)
{
        cli_term term = {.unicode = true, .columns = 80, .tty = true};
        _cleanup_free_ char *out = NULL, *miner = NULL;

        out = status_text(&term);
        cli_test_check_lines(out, 79);
        /* GPU 0: held by alice's run, and mallory's process runs there without a lease */
        assert_non_null(strstr(out, "GPU-aaaaaaaa…      34°C   61 W  37 %    6.0/80.0 GiB\n"
                                    "    alice run 2h13m (lease 12)  IN USE WITHOUT LEASE: "
                                    "mallory\n"
                                    "       4242 alice        5.0 GiB  python train.py\n"));
        miner = cli_test_line_with(out, "5151");
        assert_string_equal(miner, "       5151 mallory      1.0 GiB  (no lease) ./miner --all");
        /* GPU 1: free */
        assert_non_null(strstr(out, "0.0/80.0 GiB\n    free\n[2]"));
        /* GPU 2, MIG: drained as a whole; each instance says who holds it */
        assert_non_null(strstr(out, "5.0/80.0 GiB\n    DRAINED\n    ├─ 3g.40gb"));
        assert_non_null(strstr(out, "\n    │  DRAINED  a-user-name-tha… manual, 1h left "
                                    "(lease 13)  IN USE WITHOUT LE…\n"));
        /* drained and not leased: nothing more to say */
        assert_non_null(strstr(out, "0.0/9.8 GiB\n       DRAINED\n[3]"));
        /* users listed once each, processes tagged */
        assert_non_null(strstr(out, "4343 bob          5.0 GiB  (no lease) python infer.py"));
        /* the lost GPU is never "free" */
        assert_non_null(strstr(out, "GPU is lost\n\nQueue: 2 waiting\n"));
        assert_non_null(strstr(out, "\nPOS  USER       WANTS"));
        assert_non_null(strstr(out, "  1  carol      2 GPUs          12m "));
}

static void test_status_leases_wide_and_ascii(void **state)
{
        cli_term wide = {.unicode = true, .columns = 200, .tty = true}, ascii = {.columns = 80, .tty = true},
                 color = {.color = true, .unicode = true, .columns = 80, .tty = true};
        _cleanup_free_ char *w = NULL, *a = NULL, *c = NULL;

        w = status_text(&wide);
        cli_test_check_lines(w, 199);
        assert_non_null(strstr(w, "IN USE WITHOUT LEASE: bob, root\n"));
        a = status_text(&ascii);
        cli_test_check_lines(a, 79);
        for (const char *p = a; *p; p++)
                assert_true((unsigned char)*p < 0x80);
        assert_non_null(strstr(a, "    |  DRAINED  a-user-"));
        c = status_text(&color);
        cli_test_check_lines(c, 79);
        assert_non_null(strstr(c, "\033[1;31mIN USE WITHOUT LEASE: mallory\033[0m"));
        assert_non_null(strstr(c, "\033[1;33mDRAINED\033[0m"));
        assert_non_null(strstr(c, "\033[1;31m(no lease)\033[0m ./miner"));
}

/* A daemon without leases: no holder lines, no "free", no marks. */
static void test_status_old_daemon(void **state)
{
        json_t *status = cli_test_load(
            "{\"nvml_available\": true, \"gpus\": [{\"index\": 0, \"uuid\": \"GPU-a\","
            " \"name\": \"A100\", \"healthy\": true, \"mig_enabled\": false,"
            " \"instances\": [], \"processes\": [{\"pid\": 1, \"user\": \"x\","
            " \"command\": \"y\", \"memory_used_bytes\": 0}]}]}");
        cli_term term = {.unicode = true, .columns = 80, .tty = true};
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        assert_non_null(f);
        assert_int_equal(cli_status_render(status, f, &term, NOW), 0);
        assert_int_equal(fclose(f), 0);
        assert_null(strstr(buf, "free"));
        assert_null(strstr(buf, "lease"));
        assert_null(strstr(buf, "Queue"));
        assert_non_null(strstr(buf, "      1 x            0.0 GiB  y\n"));
        free(buf);
        json_decref(status);
}

static void test_lease_env(void **state)
{
        json_t *leases = cli_test_load(leases_json), *env;
        _cleanup_free_ char *s = NULL;

        env = cli_lease_env(json_array_get(leases, 0));
        assert_non_null(env);
        s = json_dumps(env, JSON_COMPACT | JSON_PRESERVE_ORDER);
        assert_string_equal(s,
                            "{\"CUDA_VISIBLE_DEVICES\":\"GPU-aaaa,GPU-bbbb\","
                            "\"CUDA_DEVICE_ORDER\":\"PCI_BUS_ID\",\"GPUKEEPER_LEASE_ID\":\"12\"}");
        json_decref(env);
        /* no cuda_visible_devices: the UUIDs, joined in lease order */
        env = cli_lease_env(json_array_get(leases, 1));
        assert_non_null(env);
        assert_string_equal(json_string_value(json_object_get(env, "CUDA_VISIBLE_DEVICES")),
                            "MIG-1f0a2b3c-aaaa-bbbb-cccc-ddddeeeeffff,"
                            "GPU-dddddddd-0000-1111-2222-333344445555");
        json_decref(env);
        /* no devices, no id */
        assert_null(cli_lease_env(json_array_get(leases, 2)));
        assert_null(cli_lease_env(NULL));
        json_decref(leases);
}

static void test_child_env(void **state)
{
        char *base[] = {"PATH=/usr/bin",          "CUDA_VISIBLE_DEVICES=0,1,2",
                        "HOME=/home/a",           "CUDA_VISIBLE_DEVICES_X=keep",
                        "CUDA_VISIBLE_DEVICES=3", NULL};
        json_t *set = json_pack("{s:s, s:s, s:s}", "CUDA_VISIBLE_DEVICES", "GPU-a,MIG-b",
                                "CUDA_DEVICE_ORDER", "PCI_BUS_ID", "GPUKEEPER_LEASE_ID", "7"),
               *bad = json_pack("{s:i}", "X", 1);
        char **env = NULL;

        assert_int_equal(cli_child_env(base, set, &env), 0);
        assert_string_equal(env[0], "PATH=/usr/bin");
        assert_string_equal(env[1], "HOME=/home/a");
        assert_string_equal(env[2], "CUDA_VISIBLE_DEVICES_X=keep");
        assert_string_equal(env[3], "CUDA_VISIBLE_DEVICES=GPU-a,MIG-b");
        assert_string_equal(env[4], "CUDA_DEVICE_ORDER=PCI_BUS_ID");
        assert_string_equal(env[5], "GPUKEEPER_LEASE_ID=7");
        assert_null(env[6]);
        cli_child_env_free(env);
        env = NULL;
        assert_int_equal(cli_child_env(NULL, set, &env), 0);
        assert_string_equal(env[0], "CUDA_VISIBLE_DEVICES=GPU-a,MIG-b");
        cli_child_env_free(env);
        env = NULL;
        assert_int_equal(cli_child_env(base, bad, &env), -EINVAL);
        assert_null(env);
        cli_child_env_free(NULL);
        json_decref(set);
        json_decref(bad);
}

/* Start `argv` with an empty signal mask and return its wait status. */
static int spawn_wait(char **argv, char **envp, int *ret_exec_errno)
{
        sigset_t mask;
        pid_t pid;
        int st;

        sigemptyset(&mask);
        assert_int_equal(cli_child_spawn(argv, envp, &mask, &pid, ret_exec_errno), 0);
        assert_int_equal(waitpid(pid, &st, 0), pid);
        return st;
}

static void test_child_spawn(void **state)
{
        char *ok[] = {"sh", "-c", "[ \"$GK_X\" = 'a b' ] && exit 3", NULL},
             *sig[] = {"sh", "-c", "kill -TERM $$", NULL},
             *missing[] = {"gk-no-such-command-here", NULL}, *noexec[] = {NULL, NULL};
        char *envp[] = {"GK_X=a b", "PATH=/usr/bin:/bin", NULL};
        char path[] = "/tmp/gk-test-noexec-XXXXXX";
        int e, st, fd;

        st = spawn_wait(ok, envp, &e);
        assert_int_equal(e, 0);
        assert_int_equal(cli_exit_status(st), 3);

        st = spawn_wait(sig, envp, &e);
        assert_int_equal(e, 0);
        assert_int_equal(cli_exit_status(st), 128 + SIGTERM);

        st = spawn_wait(missing, envp, &e);
        assert_int_equal(e, ENOENT);
        assert_int_equal(cli_exit_status(st), CLI_EXIT_NOT_FOUND);

        fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "#!/bin/sh\n", 10), 10);
        close(fd);
        assert_int_equal(chmod(path, 0644), 0);
        noexec[0] = path;
        st = spawn_wait(noexec, envp, &e);
        unlink(path);
        assert_int_equal(e, EACCES);
        assert_int_equal(cli_exit_status(st), CLI_EXIT_NOT_EXECUTABLE);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_run_parse),
            cmocka_unit_test(test_run_parse_errors),
            cmocka_unit_test(test_acquire_parse),
            cmocka_unit_test(test_acquire_command),
            cmocka_unit_test(test_env_quoting),
            cmocka_unit_test(test_env_quoting_sh),
            cmocka_unit_test(test_format_span),
            cmocka_unit_test(test_lease_list),
            cmocka_unit_test(test_lease_one),
            cmocka_unit_test(test_queue),
            cmocka_unit_test(test_status_leases),
            cmocka_unit_test(test_status_leases_wide_and_ascii),
            cmocka_unit_test(test_status_old_daemon),
            cmocka_unit_test(test_lease_env),
            cmocka_unit_test(test_child_env),
            cmocka_unit_test(test_child_spawn),
        };

        if (!setlocale(LC_CTYPE, "C.UTF-8"))
                return 77; /* meson: skipped */
        setenv("TZ", "UTC", 1);
        tzset();
        return cmocka_run_group_tests_name("cli-lease", tests, NULL, NULL);
}
