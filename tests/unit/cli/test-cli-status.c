/* Unit tests for the text view of `gpukeeper status` and the terminal text
 * helpers under it: representative daemon replies (MIG, a lost GPU, null
 * readings, vanished processes, long and multibyte command lines, hostile
 * control characters, many GPUs) rendered to memory, then checked for the
 * content people look for and for lines that fit the terminal. Widths are
 * measured independently of the code under test (text-check.c, mbrtowc()/wcwidth()
 * in C.UTF-8). Lines must stay one column short of the terminal width. */
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

#include <cmocka.h>

#include "basic/macro.h"
#include "basic/utf8.h"
#include "cli/lease-render.h"
#include "cli/status-render.h"
#include "cli/text.h"
#include "status-stream-check.h"
#include "text-check.h"

#define GIB "1073741824"

/* A simulated lab of 8 GPUs with a bit of everything. */
static const char *const lab_json =
    "{\"simulated\": true, \"driver_version\": \"550.54.15\", \"hostname\": \"gpu-node-01\","
    " \"sampled_at\": 1712345678.25, \"nvml_available\": true, \"message\": null, \"gpus\": ["
    /* 0: busy, two processes given smallest first: the view must sort them */
    "{\"index\": 0, \"uuid\": \"GPU-5e2c1a3b-0000-1111-2222-333344445555\","
    " \"name\": \"NVIDIA A100-SXM4-80GB\", \"pci_bus_id\": \"00000000:07:00.0\","
    " \"memory_total_bytes\": 85899345920, \"memory_used_bytes\": 6442450944,"
    " \"utilization_gpu\": 37, \"temperature_c\": 34, \"power_w\": 61.0, \"healthy\": true,"
    " \"error\": null, \"mig_enabled\": false, \"instances\": [], \"processes\": ["
    "  {\"pid\": 4243, \"uid\": 1001, \"user\": \"alice\", \"command\": \"python eval.py\","
    "   \"memory_used_bytes\": 1073741824, \"instance_uuid\": null, \"vanished\": false},"
    "  {\"pid\": 4242, \"uid\": 1001, \"user\": \"alice\","
    "   \"command\": \"python train.py --epochs 10\", \"memory_used_bytes\": 5368709120,"
    "   \"instance_uuid\": null, \"vanished\": false}]},"
    /* 1: idle */
    "{\"index\": 1, \"uuid\": \"GPU-11111111-0000-1111-2222-333344445555\","
    " \"name\": \"NVIDIA A100-SXM4-80GB\", \"pci_bus_id\": \"00000000:0F:00.0\","
    " \"memory_total_bytes\": 85899345920, \"memory_used_bytes\": 0,"
    " \"utilization_gpu\": 0, \"temperature_c\": 31, \"power_w\": 55.5, \"healthy\": true,"
    " \"error\": null, \"mig_enabled\": false, \"instances\": [], \"processes\": []},"
    /* 2: MIG, utilisation unknown, processes in two instances */
    "{\"index\": 2, \"uuid\": \"GPU-22222222-0000-1111-2222-333344445555\","
    " \"name\": \"NVIDIA A100-SXM4-80GB\", \"pci_bus_id\": \"00000000:47:00.0\","
    " \"memory_total_bytes\": 85899345920, \"memory_used_bytes\": 12884901888,"
    " \"utilization_gpu\": null, \"temperature_c\": 40, \"power_w\": 90.0, \"healthy\": true,"
    " \"error\": null, \"mig_enabled\": true, \"instances\": ["
    "  {\"uuid\": \"MIG-1f0a2b3c-aaaa-bbbb-cccc-ddddeeeeffff\", \"profile\": \"3g.40gb\","
    "   \"gpu_instance_id\": 1, \"compute_instance_id\": 0,"
    "   \"memory_total_bytes\": 42144366592, \"memory_used_bytes\": 5368709120},"
    "  {\"uuid\": \"MIG-9f9f9f9f-aaaa-bbbb-cccc-ddddeeeeffff\", \"profile\": \"1g.10gb\","
    "   \"gpu_instance_id\": 9, \"compute_instance_id\": 0,"
    "   \"memory_total_bytes\": 10485760000, \"memory_used_bytes\": 1073741824}],"
    " \"processes\": ["
    "  {\"pid\": 4343, \"uid\": 1002, \"user\": \"bob\", \"command\": \"python infer.py\","
    "   \"memory_used_bytes\": 5368709120,"
    "   \"instance_uuid\": \"MIG-1f0a2b3c-aaaa-bbbb-cccc-ddddeeeeffff\", \"vanished\": false},"
    "  {\"pid\": 4444, \"uid\": 1003, \"user\": \"carol\", \"command\": \"jupyter-kernel\","
    "   \"memory_used_bytes\": 1073741824,"
    "   \"instance_uuid\": \"MIG-9f9f9f9f-aaaa-bbbb-cccc-ddddeeeeffff\", \"vanished\": false}]},"
    /* 3: lost */
    "{\"index\": 3, \"uuid\": \"\","
    " \"name\": \"\", \"pci_bus_id\": \"00000000:4E:00.0\","
    " \"memory_total_bytes\": null, \"memory_used_bytes\": null,"
    " \"utilization_gpu\": null, \"temperature_c\": null, \"power_w\": null, \"healthy\": false,"
    " \"error\": \"nvmlDeviceGetMemoryInfo_v2: GPU is lost\", \"mig_enabled\": false,"
    " \"instances\": [], \"processes\": []},"
    /* 4: every reading unknown, a process with unknown memory and no passwd entry */
    "{\"index\": 4, \"uuid\": \"GPU-44444444-0000-1111-2222-333344445555\","
    " \"name\": \"NVIDIA H100 80GB HBM3\", \"pci_bus_id\": \"00000000:87:00.0\","
    " \"memory_total_bytes\": null, \"memory_used_bytes\": null,"
    " \"utilization_gpu\": null, \"temperature_c\": null, \"power_w\": null, \"healthy\": true,"
    " \"error\": null, \"mig_enabled\": false, \"instances\": [], \"processes\": ["
    "  {\"pid\": 777, \"uid\": 54321, \"user\": null, \"command\": \"./a.out\","
    "   \"memory_used_bytes\": null, \"instance_uuid\": null, \"vanished\": false}]},"
    /* 5: long name, long multibyte command lines, a hostile one */
    "{\"index\": 5, \"uuid\": \"GPU-55555555-0000-1111-2222-333344445555\","
    " \"name\": \"NVIDIA RTX 6000 Ada Generation with a much longer name\","
    " \"pci_bus_id\": \"00000000:8F:00.0\","
    " \"memory_total_bytes\": 51539607552, \"memory_used_bytes\": 51539607552,"
    " \"utilization_gpu\": 100, \"temperature_c\": 88, \"power_w\": 1000.4, \"healthy\": true,"
    " \"error\": null, \"mig_enabled\": false, \"instances\": [], \"processes\": ["
    "  {\"pid\": 4194304, \"uid\": 1004, \"user\": \"a-very-long-user-name-indeed\","
    "   \"command\": \"python 训练模型.py --数据集 /home/用户/データセット/画像 --comment "
    "naïve café ☃ 🚀🚀🚀 e\\u0301e\\u0301e\\u0301 and more words to overflow the line\","
    "   \"memory_used_bytes\": 21474836480, \"instance_uuid\": null, \"vanished\": false},"
    "  {\"pid\": 31337, \"uid\": 1005, \"user\": \"mallory\","
    "   \"command\": \"sh -c \\u001b[2J\\u001b]0;pwned\\u0007 \\u202eevil\\ttab\\nnewline\","
    "   \"memory_used_bytes\": 1073741824, \"instance_uuid\": null, \"vanished\": false}]},"
    /* 6: a vanished process */
    "{\"index\": 6, \"uuid\": \"GPU-66666666-0000-1111-2222-333344445555\","
    " \"name\": \"NVIDIA A100-SXM4-80GB\", \"pci_bus_id\": \"00000000:C7:00.0\","
    " \"memory_total_bytes\": 85899345920, \"memory_used_bytes\": 2147483648,"
    " \"utilization_gpu\": 3, \"temperature_c\": 35, \"power_w\": 70.0, \"healthy\": true,"
    " \"error\": null, \"mig_enabled\": false, \"instances\": [], \"processes\": ["
    "  {\"pid\": 9999, \"uid\": null, \"user\": null, \"command\": \"python old.py\","
    "   \"memory_used_bytes\": 2147483648, \"instance_uuid\": null, \"vanished\": true}]},"
    /* 7: healthy, but one reading failed */
    "{\"index\": 7, \"uuid\": \"GPU-77777777-0000-1111-2222-333344445555\","
    " \"name\": \"NVIDIA A100-SXM4-80GB\", \"pci_bus_id\": \"00000000:CF:00.0\","
    " \"memory_total_bytes\": 85899345920, \"memory_used_bytes\": 0,"
    " \"utilization_gpu\": 0, \"temperature_c\": null, \"power_w\": 50.0, \"healthy\": true,"
    " \"error\": \"nvmlDeviceGetTemperature: Not Supported\", \"mig_enabled\": false,"
    " \"instances\": [], \"processes\": []}"
    "]}";

/* Render `status` into a malloc'd string. */
static char *render(json_t *status, const cli_term *term, int *ret)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        assert_non_null(f);
        *ret = cli_status_render(status, f, term, 1712345678.0);
        assert_int_equal(fclose(f), 0);
        return buf;
}

static void test_lab_unicode(void **state)
{
        json_t *status = cli_test_load(lab_json);
        cli_term term = {.color = false, .unicode = true, .columns = 80};
        _cleanup_free_ char *out = NULL, *gpu0 = NULL, *gpu2 = NULL, *gpu3 = NULL, *gpu4 = NULL,
                            *p777 = NULL, *exited = NULL, *header = NULL, *lost = NULL;
        int r;

        out = render(status, &term, &r);
        assert_int_equal(r, 0);
        cli_test_check_lines(out, 79);

        header = cli_test_line_with(out, "gpu-node-01");
        assert_non_null(strstr(header, "SIMULATED"));
        assert_non_null(strstr(header, "driver 550.54.15"));
        assert_non_null(strstr(header, "8 GPUs"));
        assert_non_null(strstr(header, "19:34:38")); /* 1712345678 in UTC */

        gpu0 = cli_test_line_with(out, "[0]");
        assert_non_null(strstr(gpu0, "NVIDIA A100-SXM4-80GB"));
        assert_non_null(strstr(gpu0, "GPU-5e2c1a3b…"));
        assert_non_null(strstr(gpu0, "34°C"));
        assert_non_null(strstr(gpu0, "61 W"));
        assert_non_null(strstr(gpu0, "37 %"));
        assert_non_null(strstr(gpu0, "6.0/80.0 GiB"));
        /* largest first */
        assert_true(strstr(out, "python train.py --epochs 10") < strstr(out, "python eval.py"));
        assert_non_null(strstr(out, "4242 alice"));

        gpu2 = cli_test_line_with(out, "[2]");
        assert_non_null(strstr(gpu2, "MIG"));
        assert_non_null(strstr(gpu2, " - %")); /* not supported on MIG: unknown, not 0 */
        assert_non_null(strstr(out, "├─ 3g.40gb"));
        assert_non_null(strstr(out, "└─ 1g.10gb"));
        assert_non_null(strstr(out, "gi 1 ci 0"));
        assert_non_null(strstr(out, "5.0/39.2 GiB"));
        assert_non_null(strstr(out, "│     4343 bob"));
        /* each process under its own instance */
        assert_true(strstr(out, "3g.40gb") < strstr(out, "python infer.py"));
        assert_true(strstr(out, "python infer.py") < strstr(out, "1g.10gb"));
        assert_true(strstr(out, "1g.10gb") < strstr(out, "jupyter-kernel"));

        gpu3 = cli_test_line_with(out, "[3]");
        assert_non_null(strstr(gpu3, "UNHEALTHY"));
        /* a lost GPU's name and UUID are unknown (empty): "-", not blank */
        assert_true(strncmp(gpu3, "[3] -    ", 9) == 0);
        assert_non_null(strstr(gpu3, "  -"
                                     "              "
                                     "UNHEALTHY"));
        lost = cli_test_line_with(out, "GPU is lost");
        assert_string_equal(lost, "    nvmlDeviceGetMemoryInfo_v2: GPU is lost");
        assert_true(strstr(out, "[3]") < strstr(out, "GPU is lost"));

        gpu4 = cli_test_line_with(out, "[4]");
        assert_non_null(strstr(gpu4, " -°C"));
        assert_non_null(strstr(gpu4, " - W"));
        assert_non_null(strstr(gpu4, "-/- GiB"));
        assert_null(strstr(gpu4, " 0 "));
        p777 = cli_test_line_with(out, "777 ");
        assert_non_null(strstr(p777, "54321")); /* no passwd entry: the uid */
        assert_non_null(strstr(p777, "- GiB"));

        assert_non_null(strstr(out, "RTX 6000 Ada"));
        assert_non_null(strstr(out, "1000 W"));
        assert_non_null(strstr(out, "python 训练模型.py"));
        assert_non_null(strstr(out, "a-very-lo…"));

        exited = cli_test_line_with(out, "9999");
        assert_non_null(strstr(exited, "(exited) python old.py"));

        assert_non_null(strstr(out, "nvmlDeviceGetTemperature: Not Supported"));

        /* escape sequences, newlines and bidi overrides from a command line never reach the
         * terminal */
        assert_null(strchr(out, '\033'));
        assert_null(strchr(out, '\t'));
        assert_null(strstr(out, "\u202e"));
        assert_non_null(strstr(out, "sh -c ?[2J?]0;pwned? ?evil?tab?newline"));
        json_decref(status);
}

static void test_lab_ascii(void **state)
{
        json_t *status = cli_test_load(lab_json);
        cli_term term = {.color = false, .unicode = false, .columns = 80};
        _cleanup_free_ char *out = NULL;
        int r;

        out = render(status, &term, &r);
        assert_int_equal(r, 0);
        cli_test_check_lines(out, 79);
        for (const char *p = out; *p; p++)
                assert_true((unsigned char)*p < 0x80);
        assert_non_null(strstr(out, "|- 3g.40gb"));
        assert_non_null(strstr(out, "`- 1g.10gb"));
        assert_non_null(strstr(out, "GPU-5e2c1a..."));
        assert_non_null(strstr(out, "34 C"));
        assert_non_null(strstr(out, "python ????.py"));
        json_decref(status);
}

static void test_lab_color(void **state)
{
        json_t *status = cli_test_load(lab_json);
        cli_term term = {.color = true, .unicode = true, .columns = 80};
        _cleanup_free_ char *out = NULL, *gpu3 = NULL;
        int r;

        out = render(status, &term, &r);
        assert_int_equal(r, 0);
        cli_test_check_lines(out, 79);
        assert_non_null(strstr(out, "\033[1m"));
        gpu3 = cli_test_line_with(out, "[3]");
        assert_true(strncmp(gpu3, "\033[1;31m", 7) == 0); /* a lost GPU is red */
        assert_non_null(strstr(gpu3, "UNHEALTHY\033[0m"));
        assert_non_null(
            strstr(out, "    \033[1;31mnvmlDeviceGetMemoryInfo_v2: GPU is lost\033[0m\n"));
        json_decref(status);
}

static void test_wide_terminal(void **state)
{
        json_t *status = cli_test_load(lab_json);
        cli_term narrow = {.unicode = true, .columns = 80}, wide = narrow, tiny = narrow;
        _cleanup_free_ char *out80 = NULL, *out200 = NULL, *out40 = NULL;
        int r;

        /* below 80 columns the layout stays that of 80 */
        tiny.columns = 40;
        out40 = render(status, &tiny, &r);
        assert_int_equal(r, 0);
        assert_int_equal(cli_test_check_lines(out40, 79), 79);

        wide.columns = 200;
        out80 = render(status, &narrow, &r);
        assert_int_equal(r, 0);
        out200 = render(status, &wide, &r);
        assert_int_equal(r, 0);
        assert_int_equal(cli_test_check_lines(out80, 79), 79);
        assert_true(cli_test_check_lines(out200, 199) > 79);
        /* the long command shows more of itself, GPU lines keep their layout */
        assert_null(strstr(out80, "overflow the line"));
        assert_non_null(strstr(out200, "overflow the line"));
        json_decref(status);
}

/* More than ten GPUs widen the index column; names shrink, lines still fit. */
static void test_many_gpus(void **state)
{
        json_t *status =
            json_pack("{s:b, s:s, s:s, s:f, s:b, s:n, s:[]}", "simulated", 0, "driver_version",
                      "535.104.05", "hostname", "a-rather-long-hostname.cluster.example.org",
                      "sampled_at", 1712345678.0, "nvml_available", 1, "message", "gpus");
        cli_term term = {.unicode = true, .columns = 80};
        _cleanup_free_ char *out = NULL, *header = NULL;
        int r;

        assert_non_null(status);
        for (int i = 0; i < 16; i++) {
                json_t *g = json_pack(
                    "{s:i, s:s, s:s, s:I, s:I, s:i, s:i, s:f, s:b, s:n, s:b, s:[], s:[]}", "index",
                    i, "uuid", "GPU-abcdef01-2345-6789-abcd-ef0123456789", "name",
                    "NVIDIA H200 NVL 141GB HBM3e", "memory_total_bytes", (json_int_t)151397597184,
                    "memory_used_bytes", (json_int_t)151397597184, "utilization_gpu", 100,
                    "temperature_c", 101, "power_w", 600.0, "healthy", 1, "error", "mig_enabled", 0,
                    "instances", "processes");

                assert_non_null(g);
                assert_int_equal(json_array_append_new(json_object_get(status, "gpus"), g), 0);
        }
        out = render(status, &term, &r);
        assert_int_equal(r, 0);
        cli_test_check_lines(out, 79);
        header = cli_test_line_with(out, "a-rather-long");
        assert_null(strstr(header, "SIMULATED"));
        assert_non_null(strstr(header, "16 GPUs"));
        assert_non_null(strstr(out, "[15] NVIDIA"));
        assert_non_null(strstr(out, "141.0/141.0 GiB"));
        assert_non_null(strstr(out, "101°C"));
        json_decref(status);
}

static void test_nvml_unavailable(void **state)
{
        json_t *status =
            cli_test_load("{\"simulated\": false, \"driver_version\": null, \"hostname\": \"box\","
                 " \"sampled_at\": 1712345678.0, \"nvml_available\": false, \"message\":"
                 " \"NVML not available: libnvidia-ml.so.1: cannot open shared object file: No "
                 "such file or directory (install the NVIDIA driver, or set nvml_library in "
                 "/etc/gpukeeper/gpukeeper.yaml)\", \"gpus\": []}");
        cli_term term = {.unicode = true, .columns = 80};
        _cleanup_free_ char *out = NULL;
        int r;

        out = render(status, &term, &r);
        assert_int_equal(r, 0);
        cli_test_check_lines(out, 79);
        assert_non_null(strstr(out, "NVML not available: libnvidia-ml.so.1: cannot open"));
        assert_non_null(strstr(out, "nvml_library"));
        assert_null(strstr(out, "GPUs"));
        assert_null(strstr(out, "No GPUs"));
        json_decref(status);
}

static void test_no_gpus_and_junk(void **state)
{
        json_t *empty = cli_test_load("{\"nvml_available\": true, \"gpus\": []}");
        /* a daemon of another version: wrong types everywhere must not crash */
        json_t *junk = cli_test_load("{\"nvml_available\": true, \"hostname\": 5, \"gpus\": ["
                            "{\"index\": \"x\", \"healthy\": true, \"instances\": 3,"
                            " \"processes\": [7, {\"pid\": \"y\"}]}, 1]}");
        json_t *array = cli_test_load("[]");
        cli_term term = {.unicode = true, .columns = 80};
        _cleanup_free_ char *out1 = NULL, *out2 = NULL, *out3 = NULL;
        int r;

        out1 = render(empty, &term, &r);
        assert_int_equal(r, 0);
        assert_non_null(strstr(out1, "No GPUs found."));
        out2 = render(junk, &term, &r);
        assert_int_equal(r, 0);
        cli_test_check_lines(out2, 79);
        assert_non_null(strstr(out2, "[-]"));
        out3 = render(array, &term, &r);
        assert_int_equal(r, -EBADMSG);
        json_decref(empty);
        json_decref(junk);
        json_decref(array);
}

static char *clip_to_string(const char *s, size_t max, bool unicode, size_t *ret_cols)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        assert_non_null(f);
        *ret_cols = cli_text_clip(f, s, max, unicode);
        assert_int_equal(fclose(f), 0);
        return buf;
}

static void test_text_clip(void **state)
{
        struct {
                const char *in;
                size_t max;
                bool unicode;
                const char *out;
        } cases[] = {
            {"hello", 5, true, "hello"},
            {"hello!", 5, true, "hell…"},
            {"hello!", 5, false, "he..."},
            {"日本語テキスト", 5, true, "日本…"},                   /* wide: 2 columns each */
            {"日本語テキスト", 6, true, "日本…"},                   /* never half a character */
            {"e\u0301e\u0301e\u0301x", 3, true, "e\u0301e\u0301…"}, /* combining */
            {"ab\xff\xfe", 10, true, "ab??"},                       /* invalid UTF-8 */
            {"\xe6\x97", 10, true, "?"},                            /* truncated */
            {"\xc0\xaf", 10, true, "??"},                           /* overlong */
            {"\xed\xa0\x80", 10, true, "?"},                        /* surrogate */
            {"caf\u00e9", 10, false, "caf?"},
            {"abc", 0, true, ""},
            {"abcdef", 2, false, "ab"},
            {"", 4, true, ""},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                size_t cols;
                _cleanup_free_ char *out =
                    clip_to_string(cases[i].in, cases[i].max, cases[i].unicode, &cols);

                if (strcmp(out, cases[i].out) != 0)
                        fail_msg("case %zu: got \"%s\", want \"%s\"", i, out, cases[i].out);
                assert_int_equal(cols, cli_test_columns(out, strlen(out)));
                assert_true(cols <= cases[i].max);
                assert_int_equal(cli_text_clip(NULL, cases[i].in, cases[i].max, cases[i].unicode),
                                 cols);
        }
        assert_int_equal(cli_text_width("日本", true), 4);
        assert_int_equal(cli_text_width("日本", false), 2);
}

/* The rule the fast paths must keep, a glyph at a time as text.c applied it
 * before printable ASCII was written in runs: the oracle for the test below. */
static bool oracle_hostile(uint32_t cp)
{
        return cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || cp == 0x061c || cp == 0x200e ||
               cp == 0x200f || cp == 0x2028 || cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) ||
               (cp >= 0x2066 && cp <= 0x2069);
}

static const char *oracle_glyph(const char *s, bool unicode, const char **bytes, size_t *len,
                                size_t *width)
{
        uint32_t cp;
        size_t n = utf8_decode(s, SIZE_MAX, &cp);
        int w;

        *bytes = "?", *len = 1, *width = 1;
        if (cp == UTF8_INVALID || oracle_hostile(cp))
                return s + n;
        if (cp < 0x80) {
                *bytes = s;
                return s + 1;
        }
        if (!unicode || (w = wcwidth((wchar_t)cp)) < 0)
                return s + n;
        *bytes = s, *len = n, *width = (size_t)w;
        return s + n;
}

static size_t oracle_clip(FILE *f, const char *s, size_t max, bool unicode)
{
        const char *ellipsis = unicode ? "…" : "...", *bytes;
        size_t ew = unicode ? 1 : 3, budget, used = 0, total = 0, len, w;

        for (const char *p = s; *p;)
                p = oracle_glyph(p, unicode, &bytes, &len, &w), total += w;
        if (total <= max)
                budget = max;
        else if (max >= ew)
                budget = max - ew;
        else
                budget = max, ellipsis = NULL;
        for (const char *p = s; *p;) {
                const char *next = oracle_glyph(p, unicode, &bytes, &len, &w);

                if (used + w > budget)
                        break;
                fwrite(bytes, 1, len, f);
                used += w;
                if (!*next)
                        return used;
                p = next;
        }
        if (!*s)
                return 0;
        if (ellipsis) {
                fputs(ellipsis, f);
                used += ew;
        }
        return used;
}

/* cli_text_clip_plain() and cli_text_field_plain() of the printable ASCII
 * `in` starts with (cli_text_plain()): what cli_text_clip() and
 * cli_text_field() print (`want`, `field`) for every string of it that
 * fits and every one that starts with more of it than fits (clipped), or
 * NULL; and nothing written past `end`. */
static void check_plain(const char *in, size_t max, bool u, const char *want, size_t want_len,
                        const char *field, size_t field_len)
{
        char buf[512], *end;
        size_t n = cli_text_plain(in);
        bool whole = !in[n];

        memset(buf, '#', sizeof buf);
        if (whole || n > max) {
                end = cli_text_clip_plain(buf, buf + sizeof buf, in, n, max, u);
                if (n <= max || max >= (u ? 1u : 3u))
                        assert_non_null(end);
                else
                        assert_null(end);
                if (end) {
                        assert_int_equal((size_t)(end - buf), want_len);
                        assert_memory_equal(buf, want, want_len);
                        /* one byte short of room: declined, nothing written */
                        if (want_len > 0) {
                                memset(buf, '#', sizeof buf);
                                assert_null(cli_text_clip_plain(buf, buf + want_len - 1, in, n,
                                                                max, u));
                                assert_int_equal(buf[0], '#');
                        }
                }
        }
        if (!whole)
                return;
        memset(buf, '#', sizeof buf);
        end = cli_text_field_plain(buf, in, n, max, CLI_ALIGN_RIGHT);
        if (n <= max) {
                assert_non_null(end);
                assert_int_equal((size_t)(end - buf), field_len);
                assert_memory_equal(buf, field, field_len);
        } else {
                assert_null(end);
                assert_int_equal(buf[0], '#');
        }
        end = cli_text_field_plain(buf, in, n, max, CLI_ALIGN_LEFT);
        if (end) {
                assert_memory_equal(buf, in, n);
                for (size_t i = n; i < max; i++)
                        assert_int_equal(buf[i], ' ');
        }
}

/* Printable ASCII is measured and written in runs (text.c's fast path):
 * every string built from runs of ASCII, controls, DEL, wide, combining,
 * hostile and broken characters, cut at every width, prints exactly what
 * the glyph-at-a-time rule prints, with and without unicode. */
static void test_text_clip_runs(void **state)
{
        static const char *const parts[] = {
            "a", "hello world", " ", "~", "\x7f", "\t", "\x1b[31m", "é", "日本", "e\u0301",
            "\u202e", "\xff", "\xe6\x97", "…", "\u200b", "x/y\\z\"q",
        };
        uint32_t seed = 12345;

        for (int round = 0; round < 400; round++) {
                char in[256] = "";
                size_t n_parts;

                seed = seed * 1103515245u + 12345u;
                n_parts = 1 + (seed >> 16) % 6;
                for (size_t k = 0; k < n_parts; k++) {
                        seed = seed * 1103515245u + 12345u;
                        strcat(in, parts[(seed >> 16) % ELEMENTSOF(parts)]);
                }
                for (size_t max = 0; max <= 30; max++)
                        for (int u = 0; u < 2; u++) {
                                char *got = NULL, *want = NULL, *field = NULL;
                                size_t got_len = 0, want_len = 0, field_len = 0, gc, wc;
                                FILE *g = open_memstream(&got, &got_len),
                                     *w = open_memstream(&want, &want_len),
                                     *fl = open_memstream(&field, &field_len);

                                assert_non_null(g);
                                assert_non_null(w);
                                assert_non_null(fl);
                                gc = cli_text_clip(g, in, max, u);
                                wc = oracle_clip(w, in, max, u);
                                cli_text_field(fl, in, max, CLI_ALIGN_RIGHT, u);
                                assert_int_equal(fclose(g), 0);
                                assert_int_equal(fclose(w), 0);
                                assert_int_equal(fclose(fl), 0);
                                if (strcmp(got, want) != 0 || gc != wc)
                                        fail_msg("\"%s\" max %zu unicode %d: got \"%s\" (%zu), "
                                                 "want \"%s\" (%zu)",
                                                 in, max, u, got, gc, want, wc);
                                assert_int_equal(cli_text_clip(NULL, in, max, u), wc);
                                /* the field is the clip, padded on the left to max */
                                assert_int_equal(field_len, max - wc + want_len);
                                assert_string_equal(field + (max - wc), want);
                                /* The in-memory forms a line is built with
                                 * print the same, or decline. */
                                check_plain(in, max, u, want, want_len, field, field_len);
                                free(got);
                                free(want);
                                free(field);
                        }
        }
}

/* Integers are written without printf: the same text as "%.0f" of the
 * number, on both sides of 2^53 and for reals. */
static void test_json_int_text(void **state)
{
        static const json_int_t ints[] = {
            0, 1, -1, 9, 10, 4194304, -4194304, 65534, 4294967295LL, (1LL << 53) - 1,
            -((1LL << 53) - 1), 1LL << 53, -(1LL << 53), (1LL << 53) + 1, INT64_MAX, INT64_MIN,
        };
        static const double reals[] = {0.0, -0.0, 1.5, 2.5, -7.49, 1e300};

        for (size_t i = 0; i < ELEMENTSOF(ints) + ELEMENTSOF(reals); i++) {
                json_t *o = i < ELEMENTSOF(ints)
                                ? json_pack("{s:I}", "n", ints[i])
                                : json_pack("{s:f}", "n", reals[i - ELEMENTSOF(ints)]);
                char got[32], want[32]; /* the same truncation for huge reals */

                assert_non_null(o);
                snprintf(want, sizeof want, "%.0f", json_number_value(json_object_get(o, "n")));
                assert_string_equal(cli_json_int_text(got, sizeof got, o, "n"), want);
                json_decref(o);
        }
}

static void test_text_field_and_wrap(void **state)
{
        cli_term t22 = {.unicode = true, .columns = 22}, t80 = {.unicode = true, .columns = 80},
                 t20 = {.color = true, .unicode = true, .columns = 20};
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        assert_non_null(f);
        cli_text_field(f, "ab", 4, CLI_ALIGN_RIGHT, true);
        fputc('|', f);
        cli_text_field(f, "日", 4, CLI_ALIGN_LEFT, true);
        fputc('|', f);
        cli_text_wrap(f, &t22, NULL, "one two three four five six seven eight nine ten eleven", 2);
        cli_text_wrap(f, &t80, NULL, "", 0);
        cli_text_wrap(f, &t20, NULL, "averyveryveryverylongwordthatcannotbreak", 0);
        cli_text_wrap(f, &t20, CLI_STYLE_RED, "red text", 1);
        assert_int_equal(fclose(f), 0);
        assert_string_equal(buf, "  ab|日  |"
                                 "  one two three four\n"
                                 "  five six seven eight\n"
                                 "  nine ten eleven\n"
                                 "\n"
                                 "averyveryveryverylon\n"
                                 "gwordthatcannotbreak\n"
                                 " \033[1;31mred text\033[0m\n");
        free(buf);
}

/* The text entry point (what `gpukeeper status` uses): the lab's own text,
 * spaced as written here, prints what the tree wrapper prints; text that
 * is not an object, or not JSON the scanner takes, is -EBADMSG. */
static void test_render_text(void **state)
{
        json_t *status = cli_test_load(lab_json);
        cli_term term = {.color = true, .unicode = true, .columns = 132};
        _cleanup_free_ char *want = NULL, *got = NULL;
        size_t len = 0;
        FILE *f;
        int r;

        want = render(status, &term, &r);
        assert_int_equal(r, 0);
        f = open_memstream(&got, &len);
        assert_non_null(f);
        assert_int_equal(cli_status_render_text(lab_json, strlen(lab_json), f, &term, 1712345678.0), 0);
        assert_int_equal(fclose(f), 0);
        assert_string_equal(got, want);
        json_decref(status);

        free(got);
        got = NULL;
        f = open_memstream(&got, &len);
        assert_non_null(f);
        assert_int_equal(cli_status_render_text("[]", 2, f, &term, 0), -EBADMSG);
        assert_int_equal(cli_status_render_text("{\"gpus\":[}", 11, f, &term, 0), -EBADMSG);
        assert_int_equal(cli_status_render_text("{\"a\":\"\\u0000\"}", 14, f, &term, 0), -EBADMSG);
        assert_int_equal(fclose(f), 0);
        assert_string_equal(got, "");
}

/* `text` rendered by the streaming view (cli_status_stream_*) fed in pieces
 * of `chunk` bytes, the way the client library feeds it
 * (status-stream-check.h): the view's return; its output in *ret_out. */
static int stream_render(const char *text, size_t chunk, const cli_term *term, char **ret_out)
{
        size_t used;
        int r = status_stream_render(text, strlen(text), chunk, term, 1712345678.0, ret_out, &used);

        assert_int_not_equal(r, -EPROTO);
        assert_int_not_equal(r, -ENOMEM);
        return r;
}

/* `text` with "gpu_count": n before its "gpus", as gpukeeperd writes it. */
static char *with_count(const char *text, int n)
{
        const char *at = strstr(text, "\"gpus\"");
        char *out = NULL;

        assert_non_null(at);
        assert_true(asprintf(&out, "%.*s\"gpu_count\": %d, %s", (int)(at - text), text, n, at) > 0);
        return out;
}

/* The view printed as the reply arrives (issue 16, eighth pass) prints
 * what the view of the whole reply prints, in pieces of any size: with a
 * gpu_count before "gpus" (each GPU printed as it comes) and without one
 * (the members kept, the view rendered at the end). */
static void test_stream(void **state)
{
        static const char *const queue_fence =
            ", \"queue\": [{\"position\": 1, \"uid\": 1003, \"user\": \"carol\", \"gpus\": 2,"
            " \"kind\": \"run\", \"since\": 1712345000.0,"
            " \"reason\": \"waiting for 2 GPUs: 1 free\"}],"
            " \"fence\": {\"mode\": \"strict\", \"active\": true, \"denied_total\": 3}}";
        const cli_term terms[] = {
            {.unicode = true, .columns = 80},
            {.color = true, .unicode = false, .columns = 132},
        };
        _cleanup_free_ char *lab_tail = NULL, *lab_count = NULL, *many = NULL, *many_count = NULL;
        char *texts[8];
        size_t n = 0;

        (void)state;
        /* The lab with a queue and strict mode's fence after the GPUs. */
        lab_tail = strndup(lab_json, strlen(lab_json) - 1);
        assert_non_null(lab_tail);
        assert_true(asprintf(&texts[n++], "%s%s", lab_tail, queue_fence) > 0);
        lab_count = with_count(lab_json, 8);
        texts[n++] = with_count(texts[0], 8);
        texts[n++] = strdup(lab_count);
        texts[n++] = strdup("{\"nvml_available\": true, \"gpu_count\": 0, \"gpus\": [],"
                            " \"fence\": {\"mode\": \"strict\", \"active\": false}}");
        texts[n++] = strdup("{\"nvml_available\": false, \"message\": \"no driver\","
                            " \"gpu_count\": 1, \"gpus\": [{\"index\": 0}]}");
        texts[n++] = strdup("{\"nvml_available\": true, \"hostname\": 5, \"gpu_count\": 2,"
                            " \"gpus\": [{\"index\": \"x\", \"healthy\": true, \"instances\": 3,"
                            " \"processes\": [7, {\"pid\": \"y\"}]}, 1]}");
        /* 12 GPUs: "[11]" is the widest index, from the count. */
        many = strdup("{\"simulated\": false, \"hostname\": \"h\", \"nvml_available\": true,"
                      " \"gpus\": []}");
        for (int i = 0; i < 12; i++) {
                char *grown = NULL;

                assert_true(asprintf(&grown, "%.*s%s{\"index\": %d, \"name\": \"N\","
                                             " \"healthy\": true, \"processes\": []}]}",
                                     (int)(strlen(many) - 2), many, i ? ", " : "", i) > 0);
                free(many);
                many = grown;
        }
        many_count = with_count(many, 12);
        texts[n++] = strdup(many);
        texts[n++] = strdup(many_count);
        assert_int_equal(n, ELEMENTSOF(texts));

        for (size_t t = 0; t < ELEMENTSOF(terms); t++)
                for (size_t i = 0; i < n; i++) {
                        static const size_t chunks[] = {1, 2, 7, 64, 1000, SIZE_MAX};
                        _cleanup_free_ char *want = NULL;
                        int r;

                        json_t *tree = cli_test_load(texts[i]);

                        /* cli_status_render(): the tree dumped, then
                         * cli_status_render_text(). */
                        want = render(tree, &terms[t], &r);
                        json_decref(tree);
                        assert_int_equal(r, 0);
                        for (size_t c = 0; c < ELEMENTSOF(chunks); c++) {
                                _cleanup_free_ char *got = NULL;

                                r = stream_render(texts[i], chunks[c], &terms[t], &got);
                                assert_int_equal(r, 0);
                                if (strcmp(got, want) != 0)
                                        fail_msg("text %zu in pieces of %zu: got\n%s\nwant\n%s", i,
                                                 chunks[c], got, want);
                        }
                }
        /* The queue and the fence are there, and [11] lines up with [0]. */
        {
                _cleanup_free_ char *out = NULL, *out_many = NULL;

                assert_int_equal(stream_render(texts[1], 100, &terms[0], &out), 0);
                assert_non_null(strstr(out, "Queue: 1 waiting"));
                assert_non_null(strstr(out, "Fence: active (strict mode)"));
                assert_non_null(strstr(out, "8 GPUs"));
                assert_int_equal(stream_render(many_count, 100, &terms[0], &out_many), 0);
                assert_non_null(strstr(out_many, "[0]  N"));
                assert_non_null(strstr(out_many, "[11] N"));
        }
        for (size_t i = 0; i < n; i++)
                free(texts[i]);
}

/* `objects` (a status with processes as objects) as the daemon writes it
 * for "process_rows": "process_fields" (`fields`) before "gpus", each
 * process a row of its values in that order (null where it has none). */
static char *to_rows(json_t *objects, const char *const *fields, size_t n_fields)
{
        json_t *rows = json_object(), *names = json_array();
        const char *key;
        json_t *value;
        char *text;

        assert_non_null(rows);
        for (size_t i = 0; i < n_fields; i++)
                assert_int_equal(json_array_append_new(names, json_string(fields[i])), 0);
        json_object_foreach(objects, key, value) {
                json_t *gpus;

                if (strcmp(key, "gpus") != 0) {
                        assert_int_equal(json_object_set(rows, key, value), 0);
                        continue;
                }
                assert_int_equal(json_object_set_new(rows, "process_fields", names), 0);
                gpus = json_deep_copy(value);
                for (size_t g = 0; g < json_array_size(gpus); g++) {
                        json_t *procs = json_object_get(json_array_get(gpus, g), "processes");

                        for (size_t i = 0; i < json_array_size(procs); i++) {
                                json_t *p = json_array_get(procs, i), *row;

                                if (!json_is_object(p))
                                        continue;
                                row = json_array();
                                for (size_t k = 0; k < n_fields; k++) {
                                        json_t *v = json_object_get(p, fields[k]);

                                        json_array_append(row, v ? v : json_null());
                                }
                                assert_int_equal(json_array_set_new(procs, i, row), 0);
                        }
                }
                assert_int_equal(json_object_set_new(rows, "gpus", gpus), 0);
        }
        text = json_dumps(rows, JSON_COMPACT | JSON_PRESERVE_ORDER);
        assert_non_null(text);
        json_decref(rows);
        return text;
}

/* Processes as rows ("process_rows", the text view's request) print as the
 * same processes as objects do, whole or as the reply arrives, whatever
 * the order of "process_fields", with fields this view does not know and
 * without some it reads (as an object without those keys prints). */
static void test_process_rows(void **state)
{
        static const char *const daemon_order[] = {
            "pid", "uid", "user", "command", "memory_used_bytes", "instance_uuid",
            "vanished", "zombie", "exited", "leased", "violation",
        };
        static const char *const shuffled[] = {
            "violation", "command", "cpu_percent", "memory_used_bytes", "user", "pid",
            "instance_uuid", "uid", "vanished", "leased",
        };
        static const struct {
                const char *const *fields;
                size_t n;
        } orders[] = {
            {daemon_order, ELEMENTSOF(daemon_order)},
            {shuffled, ELEMENTSOF(shuffled)},
        };
        static const char *const extra =
            "{\"nvml_available\": true, \"gpu_count\": 1, \"gpus\": [{\"index\": 0,"
            " \"name\": \"N\", \"uuid\": \"GPU-1\", \"healthy\": true, \"lease\": null,"
            " \"processes\": [{\"pid\": 5151, \"uid\": 1006, \"user\": \"mallory\","
            " \"command\": \"./miner\", \"memory_used_bytes\": 536870912, \"leased\": false,"
            " \"violation\": {\"outcome\": null, \"stop_at\": 1712345999.0}},"
            " {\"pid\": 6000, \"uid\": 1007, \"user\": \"zed\", \"command\": \"z\","
            " \"memory_used_bytes\": 1, \"zombie\": true, \"exited\": true},"
            /* escapes and non-ASCII, a real, numbers as text: the long way */
            " {\"pid\": 7000, \"uid\": 1008, \"user\": \"b\\u00e9a\","
            " \"command\": \"tab\\there \\\"q\\\" caf\\u00e9\", \"memory_used_bytes\": 2.5e9,"
            " \"leased\": true},"
            " {\"pid\": 7001, \"uid\": 1008, \"user\": \"b\\u00e9a\","
            " \"command\": \"tab\\there \\\"q\\\" caf\\u00e9\", \"memory_used_bytes\": \"7\","
            " \"leased\": true},"
            " {\"pid\": -0, \"uid\": \"x\", \"user\": \"\", \"command\": 5,"
            " \"memory_used_bytes\": null, \"violation\": {\"sigkill_at\": 1}}]}]}";
        const cli_term term = {.color = true, .unicode = true, .columns = 100};
        _cleanup_free_ char *lab = with_count(lab_json, 8);
        const char *const texts[] = {lab, extra};

        (void)state;
        for (size_t t = 0; t < ELEMENTSOF(texts); t++)
                for (size_t o = 0; o < ELEMENTSOF(orders); o++) {
                        static const size_t chunks[] = {1, 7, 64, SIZE_MAX};
                        json_t *objects = cli_test_load(texts[t]), *rows_tree;
                        _cleanup_free_ char *rows = NULL, *want = NULL, *whole = NULL;
                        int r;

                        want = render(objects, &term, &r);
                        assert_int_equal(r, 0);
                        rows = to_rows(objects, orders[o].fields, orders[o].n);
                        json_decref(objects);
                        assert_non_null(strstr(rows, "\"process_fields\":["));
                        assert_null(strstr(rows, "\"pid\":"));
                        rows_tree = cli_test_load(rows);
                        whole = render(rows_tree, &term, &r);
                        json_decref(rows_tree);
                        assert_int_equal(r, 0);
                        if (o == 0 && strcmp(whole, want) != 0)
                                fail_msg("rows, whole: got\n%s\nwant\n%s", whole, want);
                        /* A field the order leaves out reads as absent: the
                         * objects' view without it is the one to match. */
                        if (o == 1) {
                                json_t *pruned = cli_test_load(texts[t]);
                                json_t *gpus = json_object_get(pruned, "gpus");

                                for (size_t g = 0; g < json_array_size(gpus); g++) {
                                        json_t *procs = json_object_get(json_array_get(gpus, g),
                                                                        "processes");

                                        for (size_t i = 0; i < json_array_size(procs); i++) {
                                                json_object_del(json_array_get(procs, i), "zombie");
                                                json_object_del(json_array_get(procs, i), "exited");
                                        }
                                }
                                free(want);
                                want = render(pruned, &term, &r);
                                json_decref(pruned);
                                assert_int_equal(r, 0);
                                assert_string_equal(whole, want);
                        }
                        for (size_t c = 0; c < ELEMENTSOF(chunks); c++) {
                                _cleanup_free_ char *got = NULL;

                                assert_int_equal(stream_render(rows, chunks[c], &term, &got), 0);
                                if (strcmp(got, want) != 0)
                                        fail_msg("rows in pieces of %zu: got\n%s\nwant\n%s",
                                                 chunks[c], got, want);
                        }
                }
        /* The marks rows carry: the violation's, the zombie's. */
        {
                json_t *objects = cli_test_load(extra);
                _cleanup_free_ char *rows = to_rows(objects, daemon_order, ELEMENTSOF(daemon_order));
                _cleanup_free_ char *got = NULL;

                json_decref(objects);
                assert_int_equal(stream_render(rows, 16, &term, &got), 0);
                assert_non_null(strstr(got, "VIOLATION: stop at"));
                assert_non_null(strstr(got, "(zombie)"));
                assert_non_null(strstr(got, "5151"));
        }
}

/* Rows in the daemon's own order of fields that are longer or shorter
 * than the fields: values past the last field are read and left, a short
 * row's missing fields are absent, as the whole reply's view
 * (row_members()) reads them; bad text in such a row is refused. */
static void test_process_rows_in_daemon_order(void **state)
{
#define FIELDS                                                                                             "\"process_fields\": [\"pid\", \"uid\", \"user\", \"command\", "                           \
        "\"memory_used_bytes\", \"instance_uuid\", \"vanished\", \"zombie\", \"exited\", "          \
        "\"leased\", \"violation\"]"
        static const char rows[] =
            "{\"nvml_available\": true, \"gpu_count\": 1, " FIELDS ", \"gpus\": [{\"index\": 0,"
            " \"name\": \"N\", \"uuid\": \"GPU-1\", \"healthy\": true, \"lease\": null,"
            " \"processes\": ["
            "[4242, 1001, \"alice\", \"train.py\", 1073741824, null, false, false, false, false,"
            " null, {\"future\": [1, 2]}, \"more\"],"
            "[4243, 1001, \"alice\"],"
            "[4244, 1002, \"bob\", \"x\", 2147483648, null, false, false, false, false,"
            " {\"stop_at\": 1712345999.0}],"
            "[]]}]}";
        static const char objects[] =
            "{\"nvml_available\": true, \"gpu_count\": 1, \"gpus\": [{\"index\": 0,"
            " \"name\": \"N\", \"uuid\": \"GPU-1\", \"healthy\": true, \"lease\": null,"
            " \"processes\": ["
            "{\"pid\": 4242, \"uid\": 1001, \"user\": \"alice\", \"command\": \"train.py\","
            " \"memory_used_bytes\": 1073741824, \"instance_uuid\": null, \"vanished\": false,"
            " \"zombie\": false, \"exited\": false, \"leased\": false, \"violation\": null},"
            "{\"pid\": 4243, \"uid\": 1001, \"user\": \"alice\"},"
            "{\"pid\": 4244, \"uid\": 1002, \"user\": \"bob\", \"command\": \"x\","
            " \"memory_used_bytes\": 2147483648, \"instance_uuid\": null, \"vanished\": false,"
            " \"zombie\": false, \"exited\": false, \"leased\": false,"
            " \"violation\": {\"stop_at\": 1712345999.0}},"
            "{}]}]}";
        static const char *const bad[] = {
            "{\"nvml_available\": true, \"gpu_count\": 1, " FIELDS ","
            " \"gpus\": [{\"index\": 0, \"processes\": [[1, 2, \"a\", \"b\", 3, null, false,"
            " false, false, false, null,]]}]}",
            "{\"nvml_available\": true, \"gpu_count\": 1, " FIELDS ","
            " \"gpus\": [{\"index\": 0, \"processes\": [[1, 2, \"a\" \"b\"]]}]}",
            "{\"nvml_available\": true, \"gpu_count\": 1, " FIELDS ","
            " \"gpus\": [{\"index\": 0, \"processes\": [[1, 2, \"a\", \"b\", 3, nul]]}]}",
            "{\"nvml_available\": true, \"gpu_count\": 1, " FIELDS ","
            " \"gpus\": [{\"index\": 0, \"processes\": [[01]]}]}",
            "{\"nvml_available\": true, \"gpu_count\": 1, " FIELDS ","
            " \"gpus\": [{\"index\": 0, \"processes\": [[1, 2, \"a\", \"b\", 3, null, false,"
            " false, false, false, null, {\"x\": }]]}]}",
        };
#undef FIELDS
        const cli_term term = {.unicode = true, .columns = 100};
        static const size_t chunks[] = {1, 7, 64, SIZE_MAX};
        json_t *tree = cli_test_load(objects), *rows_tree = cli_test_load(rows);
        _cleanup_free_ char *want = NULL, *whole = NULL;
        int r;

        (void)state;
        want = render(tree, &term, &r);
        assert_int_equal(r, 0);
        whole = render(rows_tree, &term, &r);
        assert_int_equal(r, 0);
        json_decref(tree);
        json_decref(rows_tree);
        assert_string_equal(whole, want);
        assert_non_null(strstr(want, "4243"));
        assert_non_null(strstr(want, "VIOLATION"));
        for (size_t c = 0; c < ELEMENTSOF(chunks); c++) {
                _cleanup_free_ char *got = NULL;

                assert_int_equal(stream_render(rows, chunks[c], &term, &got), 0);
                if (strcmp(got, want) != 0)
                        fail_msg("rows in pieces of %zu: got\n%s\nwant\n%s", chunks[c], got, want);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *got = NULL;

                if (stream_render(bad[i], SIZE_MAX, &term, &got) != -EBADMSG)
                        fail_msg("taken: %s", bad[i]);
        }
}

/* "instances" and "processes" as objects (a daemon of another shape):
 * no instance and no process, whole or as the reply arrives. Their keys
 * were once walked as elements into room made for none (found by
 * fuzz-status; a sanitizer build caught the write). */
static void test_devices_not_arrays(void **state)
{
        static const char text[] =
            "{\"nvml_available\": true, \"gpu_count\": 1, \"gpus\": [{\"index\": 0,"
            " \"name\": \"N\", \"uuid\": \"GPU-1\", \"healthy\": true, \"mig_enabled\": true,"
            " \"instances\": {\"a\": {\"uuid\": \"MIG-1\"}, \"b\": 2, \"c\": 3},"
            " \"processes\": {\"p\": {\"pid\": 4242}, \"q\": 1, \"r\": 2}}]}";
        static const size_t chunks[] = {1, 7, 64, SIZE_MAX};
        const cli_term term = {.unicode = true, .columns = 100};
        json_t *tree = cli_test_load(text);
        _cleanup_free_ char *whole = NULL;
        int r;

        (void)state;
        whole = render(tree, &term, &r);
        json_decref(tree);
        assert_int_equal(r, 0);
        assert_null(strstr(whole, "4242"));
        assert_null(strstr(whole, "MIG-1"));
        for (size_t c = 0; c < ELEMENTSOF(chunks); c++) {
                _cleanup_free_ char *got = NULL;

                assert_int_equal(stream_render(text, chunks[c], &term, &got), 0);
                assert_string_equal(got, whole);
        }
}

/* Text found invalid part-way: what was printed stays printed, and the
 * stream fails; a second "gpus" is refused. */
static void test_stream_errors(void **state)
{
        static const char *const bad[] = {
            "{\"nvml_available\": true, \"gpu_count\": 2, \"gpus\": [{\"index\": 0},"
            " {\"index\": 1,}]}",
            "{\"nvml_available\": true, \"gpu_count\": 2, \"gpus\": [{\"index\": 0},"
            " {\"index\": \"\\u0000\"}]}",
            "{\"nvml_available\": true, \"gpu_count\": 1, \"gpus\": [{\"index\": 0}],"
            " \"gpus\": [{\"index\": 1}]}",
            "{\"nvml_available\": true, \"gpu_count\": 1, \"gpus\": [{\"index\": 0}],"
            " \"gpus\": 7}",
            "{\"nvml_available\": true, \"gpu_count\": 1, \"gpus\": [{\"index\": 0}],"
            " \"queue\": [1,]}",
            "{\"nvml_available\": true, \"gpu_count\": 1, \"gpus\": [{\"index\": 0}]",
            "{\"nvml_available\": tru, \"gpus\": []}",
            /* nothing shown after the header, but all of it checked */
            "{\"nvml_available\": false, \"gpu_count\": 1, \"gpus\": [{\"index\": 0,}]}",
            "{\"nvml_available\": true, \"gpu_count\": 0, \"gpus\": [{\"index\": \"\\u0000\"}]}",
            /* processes read from the text as it is indexed: refused as the
             * index refuses them */
            "{\"nvml_available\": true, \"gpu_count\": 1, \"process_fields\": [\"pid\"],"
            " \"gpus\": [{\"index\": 0, \"processes\": [[1,]]}]}",
            "{\"nvml_available\": true, \"gpu_count\": 1, \"process_fields\": [\"pid\"],"
            " \"gpus\": [{\"index\": 0, \"processes\": [[1 2]]}]}",
            "{\"nvml_available\": true, \"gpu_count\": 1, \"process_fields\": [\"violation\"],"
            " \"gpus\": [{\"index\": 0, \"processes\": [[{\"a\": 1,}]]}]}",
            "{\"nvml_available\": true, \"gpu_count\": 1, \"process_fields\": [\"user\"],"
            " \"gpus\": [{\"index\": 0, \"processes\": [[\"\\u0000\"]]}]}",
            "{\"nvml_available\": true, \"gpu_count\": 1, \"process_fields\": [\"pid\"],"
            " \"gpus\": [{\"index\": 0, \"processes\": [[1],]}]}",
            "{\"nvml_available\": true, \"gpu_count\": 1, \"process_fields\": [\"pid\"],"
            " \"gpus\": [{\"index\": 0, \"processes\": [[01]]}]}",
            "{\"nvml_available\": true, \"gpu_count\": 1,"
            " \"gpus\": [{\"index\": 0, \"processes\": [{\"pid\": 1,}]}]}",
            "{\"nvml_available\": true, \"gpu_count\": 1,"
            " \"gpus\": [{\"index\": 0, \"processes\": [tru]}]}",
            "{\"nvml_available\": true, \"gpu_count\": 1, \"process_fields\": [\"pid\"],"
            " \"gpus\": [{\"index\": 0, \"processes\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
            "]]]]]]]]]]]]]]]]]]]]]]]]]}]}",
        };
        cli_term term = {.unicode = true, .columns = 80};

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                for (size_t chunk = 1; chunk <= strlen(bad[i]); chunk += 5) {
                        _cleanup_free_ char *got = NULL;

                        if (stream_render(bad[i], chunk, &term, &got) != -EBADMSG)
                                fail_msg("text %zu in pieces of %zu was taken: %s", i, chunk, got);
                        if (i < 2)
                                assert_non_null(strstr(got, "[0]"));
                }
}

/* cli_term_detect() takes a locale name that spells its codeset as UTF-8
 * at its word without loading the locale (issue 16: the files cost 0.4 ms);
 * a name without a codeset, or another codeset, is loaded and asked. main()
 * has loaded C.UTF-8 for the other tests, so a loaded name answers UTF-8
 * here too: the cases below only check the names that are not loaded. */
static void test_term_detect_names(void **state)
{
        static const struct {
                const char *lc_all;
                bool unicode;
        } cases[] = {
            {"C.UTF-8", true},     {"en_US.utf8", true}, {"de_DE.UTF-8@euro", true},
            {"xx_YY.Utf_8", true}, {"C.utf-8", true},
        };
        FILE *f = tmpfile();
        cli_term t;

        (void)state;
        assert_non_null(f);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                assert_int_equal(setenv("LC_ALL", cases[i].lc_all, 1), 0);
                cli_term_detect(f, &t);
                assert_int_equal(t.unicode, cases[i].unicode);
                assert_false(t.tty);
                assert_false(t.color);
                assert_int_equal(t.columns, CLI_TERM_MIN_COLUMNS);
        }
        /* Not UTF-8 by name: the answer is the loaded locale's (loaded
         * once per process, here already by the tests before). */
        assert_int_equal(setenv("LC_ALL", "C", 1), 0);
        cli_term_detect(f, &t);
        assert_int_equal(t.unicode, strcmp(nl_langinfo(CODESET), "UTF-8") == 0);
        unsetenv("LC_ALL");
        setlocale(LC_CTYPE, "C.UTF-8");
        fclose(f);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_lab_unicode),         cmocka_unit_test(test_lab_ascii),
            cmocka_unit_test(test_lab_color),           cmocka_unit_test(test_wide_terminal),
            cmocka_unit_test(test_many_gpus),           cmocka_unit_test(test_nvml_unavailable),
            cmocka_unit_test(test_no_gpus_and_junk),    cmocka_unit_test(test_text_clip),
            cmocka_unit_test(test_text_clip_runs),
            cmocka_unit_test(test_json_int_text),
            cmocka_unit_test(test_text_field_and_wrap),
            cmocka_unit_test(test_render_text),
            cmocka_unit_test(test_stream),
            cmocka_unit_test(test_stream_errors),
            cmocka_unit_test(test_process_rows),
            cmocka_unit_test(test_process_rows_in_daemon_order),
            cmocka_unit_test(test_devices_not_arrays),
            cmocka_unit_test(test_term_detect_names),
        };

        /* Widths as a UTF-8 terminal sees them; times in UTC so they are fixed. */
        if (!setlocale(LC_CTYPE, "C.UTF-8"))
                return 77; /* meson: skipped */
        setenv("TZ", "UTC", 1);
        tzset();
        return cmocka_run_group_tests_name("cli-status", tests, NULL, NULL);
}
