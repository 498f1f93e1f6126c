/* Table-driven tests of the value parsers in src/basic/parse.c: for each
 * parser, inputs that must parse (with the expected value) and inputs that
 * must fail (with the expected errno), including overflow, signs,
 * whitespace and trailing junk; plus format_duration() round trips. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "basic/macro.h"
#include "basic/parse.h"

typedef struct {
        const char *in;
        int r;      /* expected return */
        uint64_t v; /* expected value when r == 0 */
} Case;

/* Run every case; a failing value is untouched, so *ret keeps a sentinel. */
static void run_cases(const Case *cases, size_t n, int (*parse)(const char *, uint64_t *))
{
        for (size_t i = 0; i < n; i++) {
                uint64_t v = UINT64_C(0xdeadbeef);
                int r = parse(cases[i].in, &v);

                if (r != cases[i].r || (r == 0 && v != cases[i].v))
                        fail_msg("input '%s': got r=%d v=%" PRIu64 ", want r=%d v=%" PRIu64,
                                 cases[i].in, r, v, cases[i].r, cases[i].v);
                if (r < 0)
                        assert_int_equal(v, UINT64_C(0xdeadbeef));
        }
}

static void test_duration(void **state)
{
        static const Case cases[] = {
                {"30s", 0, 30 * USEC_PER_SEC},
                {"5m", 0, 5 * USEC_PER_MINUTE},
                {"2h", 0, 2 * USEC_PER_HOUR},
                {"1d", 0, USEC_PER_DAY},
                {"500ms", 0, 500 * USEC_PER_MSEC},
                {"250us", 0, 250},
                {"0s", 0, 0},
                {"0ms", 0, 0},
                {"007s", 0, 7 * USEC_PER_SEC},
                {"1h30m", 0, 90 * USEC_PER_MINUTE},
                {"2m30s", 0, 150 * USEC_PER_SEC},
                {"1s500ms", 0, 1500 * USEC_PER_MSEC},
                {"1d2h3m4s5ms6us", 0,
                 USEC_PER_DAY + 2 * USEC_PER_HOUR + 3 * USEC_PER_MINUTE + 4 * USEC_PER_SEC +
                         5 * USEC_PER_MSEC + 6},
                {"90m", 0, 90 * USEC_PER_MINUTE}, /* a component may exceed the next unit */
                {"18446744073709551615us", 0, UINT64_MAX},
                {"213503982d8h1m49s551ms615us", 0, UINT64_MAX},
                /* overflow */
                {"18446744073709551616us", -ERANGE, 0},
                {"213503982d8h1m49s551ms616us", -ERANGE, 0},
                {"213503983d", -ERANGE, 0},
                {"99999999999999999999999s", -ERANGE, 0},
                {"18446744073709551615s", -ERANGE, 0},
                /* unit required */
                {"30", -EINVAL, 0},
                {"0", -EINVAL, 0},
                {"1h30", -EINVAL, 0},
                {"99999999999999999999999", -EINVAL, 0},
                /* malformed */
                {"", -EINVAL, 0},
                {"s", -EINVAL, 0},
                {"ms", -EINVAL, 0},
                {"-5s", -EINVAL, 0},
                {"+5s", -EINVAL, 0},
                {" 5s", -EINVAL, 0},
                {"5s ", -EINVAL, 0},
                {"5 s", -EINVAL, 0},
                {"1h 30m", -EINVAL, 0},
                {"\t5s", -EINVAL, 0},
                {"5s\n", -EINVAL, 0},
                {"1.5h", -EINVAL, 0},
                {"5S", -EINVAL, 0},
                {"5H", -EINVAL, 0},
                {"5sec", -EINVAL, 0},
                {"5min", -EINVAL, 0},
                {"5w", -EINVAL, 0},
                {"5y", -EINVAL, 0},
                {"5ns", -EINVAL, 0},
                {"5sx", -EINVAL, 0},
                {"5s5", -EINVAL, 0},
                {"1h1h", -EINVAL, 0},   /* repeated unit */
                {"30m1h", -EINVAL, 0},  /* out of order */
                {"1s1m", -EINVAL, 0},
                {"5ms1s", -EINVAL, 0},
                {"0x10s", -EINVAL, 0},
                {"five seconds", -EINVAL, 0},
        };

        run_cases(cases, ELEMENTSOF(cases), parse_duration_usec);
}

static void test_size(void **state)
{
        static const Case cases[] = {
                {"0", 0, 0},
                {"1024", 0, 1024},
                {"1024B", 0, 1024},
                {"4K", 0, 4096},
                {"4KB", 0, 4096},
                {"4KiB", 0, 4096},
                {"512M", 0, UINT64_C(512) << 20},
                {"512MiB", 0, UINT64_C(512) << 20},
                {"10G", 0, UINT64_C(10) << 30},
                {"10GB", 0, UINT64_C(10) << 30}, /* binary: GB means GiB */
                {"10GiB", 0, UINT64_C(10) << 30},
                {"1T", 0, UINT64_C(1) << 40},
                {"2P", 0, UINT64_C(2) << 50},
                {"15E", 0, UINT64_C(15) << 60},
                {"0G", 0, 0},
                {"18446744073709551615", 0, UINT64_MAX},
                {"16777215T", 0, UINT64_C(16777215) << 40},
                /* overflow */
                {"16E", -ERANGE, 0},
                {"16777216T", -ERANGE, 0},
                {"18446744073709551616", -ERANGE, 0},
                {"99999999999999999999999G", -ERANGE, 0},
                /* malformed */
                {"", -EINVAL, 0},
                {"G", -EINVAL, 0},
                {"B", -EINVAL, 0},
                {"-1", -EINVAL, 0},
                {"-1G", -EINVAL, 0},
                {"+1G", -EINVAL, 0},
                {" 1G", -EINVAL, 0},
                {"1G ", -EINVAL, 0},
                {"1 G", -EINVAL, 0},
                {"1.5G", -EINVAL, 0},
                {"1g", -EINVAL, 0},
                {"1k", -EINVAL, 0},
                {"1Gb", -EINVAL, 0},
                {"1GIB", -EINVAL, 0},
                {"1Gi", -EINVAL, 0},
                {"1iB", -EINVAL, 0},
                {"1BB", -EINVAL, 0},
                {"1GBx", -EINVAL, 0},
                {"1GG", -EINVAL, 0},
                {"1X", -EINVAL, 0},
                {"0x10", -EINVAL, 0},
                {"99999999999999999999999X", -EINVAL, 0}, /* junk wins over overflow */
        };

        run_cases(cases, ELEMENTSOF(cases), parse_size_bytes);
}

static void test_uint64(void **state)
{
        static const Case cases[] = {
                {"0", 0, 0},
                {"1", 0, 1},
                {"0042", 0, 42},
                {"4294967296", 0, UINT64_C(4294967296)},
                {"18446744073709551615", 0, UINT64_MAX},
                {"18446744073709551616", -ERANGE, 0},
                {"18446744073709551620", -ERANGE, 0},
                {"100000000000000000000", -ERANGE, 0},
                {"", -EINVAL, 0},
                {"-1", -EINVAL, 0},
                {"-0", -EINVAL, 0},
                {"+1", -EINVAL, 0},
                {" 1", -EINVAL, 0},
                {"1 ", -EINVAL, 0},
                {"1\n", -EINVAL, 0},
                {"1x", -EINVAL, 0},
                {"1.0", -EINVAL, 0},
                {"1e3", -EINVAL, 0},
                {"0x10", -EINVAL, 0},
                {"1,000", -EINVAL, 0},
                {"1_000", -EINVAL, 0},
        };

        run_cases(cases, ELEMENTSOF(cases), parse_uint64);
}

static void test_bool(void **state)
{
        static const struct {
                const char *in;
                int r;
                bool v;
        } cases[] = {
                {"true", 0, true},   {"TRUE", 0, true},    {"True", 0, true},  {"yes", 0, true},
                {"Yes", 0, true},    {"on", 0, true},      {"ON", 0, true},    {"1", 0, true},
                {"false", 0, false}, {"FALSE", 0, false},  {"no", 0, false},   {"NO", 0, false},
                {"off", 0, false},   {"Off", 0, false},    {"0", 0, false},    {"", -EINVAL, 0},
                {"y", -EINVAL, 0},   {"n", -EINVAL, 0},    {"2", -EINVAL, 0},  {"-1", -EINVAL, 0},
                {"01", -EINVAL, 0},  {" true", -EINVAL, 0}, {"true ", -EINVAL, 0},
                {"truex", -EINVAL, 0}, {"enabled", -EINVAL, 0},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                bool v = !cases[i].v;
                int r = parse_bool(cases[i].in, &v);

                if (r != cases[i].r)
                        fail_msg("input '%s': got r=%d, want %d", cases[i].in, r, cases[i].r);
                if (r == 0)
                        assert_int_equal(v, cases[i].v);
        }
}

static void test_format_duration(void **state)
{
        static const struct {
                uint64_t usec;
                const char *out;
        } cases[] = {
                {0, "0s"},
                {1, "1us"},
                {999, "999us"},
                {500 * USEC_PER_MSEC, "500ms"},
                {45 * USEC_PER_SEC, "45s"},
                {2 * USEC_PER_SEC, "2s"},
                {2 * USEC_PER_HOUR, "2h"},
                {90 * USEC_PER_MINUTE, "1h30m"},
                {USEC_PER_DAY, "1d"},
                {USEC_PER_DAY + USEC_PER_SEC, "1d1s"},
                {1500 * USEC_PER_MSEC, "1s500ms"},
                {USEC_PER_SEC + 1, "1s1us"},
                {UINT64_MAX, "213503982d8h1m49s551ms615us"},
        };
        char buf[FORMAT_DURATION_MAX];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t back = 0;
                int r = format_duration(buf, sizeof buf, cases[i].usec);

                assert_int_equal(r, strlen(cases[i].out));
                assert_string_equal(buf, cases[i].out);
                assert_int_equal(parse_duration_usec(buf, &back), 0);
                assert_int_equal(back, cases[i].usec);
        }
}

/* Values spread over the whole range, including every unit boundary ±1,
 * survive format → parse unchanged. */
static void test_format_duration_round_trip(void **state)
{
        static const uint64_t units[] = {1,          USEC_PER_MSEC, USEC_PER_SEC,
                                         USEC_PER_MINUTE, USEC_PER_HOUR, USEC_PER_DAY};
        char buf[FORMAT_DURATION_MAX];

        for (size_t u = 0; u < ELEMENTSOF(units); u++)
                for (uint64_t k = 1; k < 200; k += 7)
                        for (int d = -1; d <= 1; d++) {
                                uint64_t v = k * units[u] + (uint64_t)(int64_t)d, back = 0;

                                assert_true(format_duration(buf, sizeof buf, v) > 0);
                                assert_int_equal(parse_duration_usec(buf, &back), 0);
                                assert_int_equal(back, v);
                        }

        for (uint64_t v = UINT64_MAX; v > 0; v /= 3) {
                uint64_t back = 0;

                assert_true(format_duration(buf, sizeof buf, v) > 0);
                assert_int_equal(parse_duration_usec(buf, &back), 0);
                assert_int_equal(back, v);
        }
}

static void test_format_duration_small_buffer(void **state)
{
        char buf[8];

        /* "1h30m" needs 6 bytes with the NUL. */
        assert_int_equal(format_duration(buf, 6, 90 * USEC_PER_MINUTE), 5);
        assert_string_equal(buf, "1h30m");
        assert_int_equal(format_duration(buf, 5, 90 * USEC_PER_MINUTE), -ENOBUFS);
        assert_int_equal(format_duration(buf, 3, 90 * USEC_PER_MINUTE), -ENOBUFS);
        assert_int_equal(format_duration(buf, 2, 0), -ENOBUFS);
        assert_int_equal(format_duration(buf, 3, 0), 2);
        assert_string_equal(buf, "0s");
        assert_int_equal(format_duration(NULL, 0, 5), -ENOBUFS);
}

/* Messages: whole seconds under a minute, minutes under a day, hours above. */
static void test_format_duration_short(void **state)
{
        static const struct {
                uint64_t usec;
                const char *out;
        } cases[] = {
                {0, "0s"},
                {999 * USEC_PER_MSEC, "0s"},
                {45 * USEC_PER_SEC + 300, "45s"},
                {59 * USEC_PER_SEC, "59s"},
                {90 * USEC_PER_SEC, "1m"},
                {12 * USEC_PER_MINUTE + 5 * USEC_PER_SEC, "12m"},
                {14400 * USEC_PER_SEC, "4h"},
                {23400 * USEC_PER_SEC, "6h30m"},
                {USEC_PER_DAY + 59 * USEC_PER_MINUTE, "1d"},
                {2 * USEC_PER_DAY + 3 * USEC_PER_HOUR + 7, "2d3h"},
        };
        char buf[FORMAT_DURATION_MAX];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                assert_int_equal(format_duration_short(buf, sizeof buf, cases[i].usec),
                                 strlen(cases[i].out));
                assert_string_equal(buf, cases[i].out);
        }
}

/* string_copy() (basic/macro.h): snprintf's "%s" without the format. */
static void test_string_copy(void **state)
{
        char buf[4];

        assert_true(string_copy(buf, sizeof buf, ""));
        assert_string_equal(buf, "");
        assert_true(string_copy(buf, sizeof buf, "abc"));
        assert_string_equal(buf, "abc");
        assert_false(string_copy(buf, sizeof buf, "abcd"));
        assert_string_equal(buf, "abc");
        assert_false(string_copy(buf, sizeof buf, "abcdefgh"));
        assert_string_equal(buf, "abc");
        assert_false(string_copy(buf, 1, "x"));
        assert_string_equal(buf, "");
        buf[0] = 'z';
        assert_false(string_copy(buf, 0, "x"));
        assert_int_equal(buf[0], 'z');
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_duration),
                cmocka_unit_test(test_size),
                cmocka_unit_test(test_uint64),
                cmocka_unit_test(test_bool),
                cmocka_unit_test(test_format_duration),
                cmocka_unit_test(test_format_duration_round_trip),
                cmocka_unit_test(test_format_duration_small_buffer),
                cmocka_unit_test(test_format_duration_short),
                cmocka_unit_test(test_string_copy),
        };

        return cmocka_run_group_tests_name("test-parse", tests, NULL, NULL);
}
