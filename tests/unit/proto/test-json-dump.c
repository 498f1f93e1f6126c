/* json_dump_compact against json_dumps(JSON_COMPACT): the same bytes for
 * every tree it accepts, and -EOPNOTSUPP only where it says it declines. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/json-dump.h"

/* Dump `v` both ways, in insertion order (json_dump_compact) or sorted
 * (json_dump_compact_sorted, JSON_SORT_KEYS); with `must_accept`, the
 * writer may not decline. */
static void same_as_jansson_as(json_t *v, bool must_accept, bool sorted)
{
        char *mine = NULL,
             *theirs = json_dumps(v, JSON_COMPACT | (sorted ? JSON_SORT_KEYS : 0));
        size_t len = 0;
        int r = sorted ? json_dump_compact_sorted(v, &mine, &len)
                       : json_dump_compact(v, &mine, &len);

        if (r == -EOPNOTSUPP) {
                assert_false(must_accept);
                free(theirs);
                return;
        }
        assert_int_equal(r, 0);
        assert_non_null(theirs);
        assert_string_equal(mine, theirs);
        assert_int_equal(len, strlen(theirs));
        free(mine);
        free(theirs);
}

static void same_as_jansson(json_t *v, bool must_accept)
{
        same_as_jansson_as(v, must_accept, false);
        same_as_jansson_as(v, must_accept, true);
}

static void test_cases(void **state)
{
        static const double reals[] = {0.0, -0.0, 0.1, 1.0, -1.5, 1e300, -1e-300, 1e-5, 1e21,
                                       123456789.0, 1733456789.123456, 1.0 / 3.0, 5e-324,
                                       1.7976931348623157e308, 3600.0, 0.001};
        json_t *a = json_array();

        for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++)
                json_array_append_new(a, json_real(reals[i]));
        json_array_append_new(a, json_integer(INT64_MIN));
        json_array_append_new(a, json_integer(INT64_MAX));
        json_array_append_new(a, json_integer(0));
        json_array_append_new(a, json_stringn("a\0b", 3));
        json_array_append_new(a, json_string("quote \" backslash \\ slash / tab \t nl \n cr \r "
                                             "bs \b ff \f x01 \x01 x1f \x1f del \x7f"));
        json_array_append_new(a, json_string(""));
        json_array_append_new(a, json_object());
        json_array_append_new(a, json_array());
        json_array_append_new(a, json_null());
        json_array_append_new(a, json_true());
        json_array_append_new(a, json_false());
        json_array_append_new(a, json_pack("{s:{s:[i,s,n]}, s:b, s:o}", "lease", "devices", 1,
                                           "GPU-x", "attached", 0, "\"odd\\key\"", json_object()));
        same_as_jansson(a, true);
        json_decref(a);

        /* Sorted keys: prefixes before longer keys, bytes compared as
         * unsigned, more members than the writer's stack array holds. */
        a = json_object();
        for (int i = 40; i > 0; i--) {
                char key[8];

                snprintf(key, sizeof key, "k%d", i);
                json_object_set_new(a, key, json_integer(i));
        }
        json_object_set_new(a, "a", json_pack("{s:i, s:i, s:i, s:i}", "b", 1, "ab", 2, "a", 3,
                                              "A", 4));
        json_object_set_new(a, "a\x7f", json_null());
        json_object_set_new(a, "", json_true());
        json_object_set_new(a, "\x01", json_false());
        json_object_set_new(a, "list", json_pack("[{s:i, s:i}]", "z", 1, "y", 2));
        same_as_jansson(a, true);
        json_decref(a);

        /* Declined: not a container at the top (json_dumps refuses too),
         * non-ASCII text (jansson's to validate), deeper than the limit. */
        a = json_string("x");
        same_as_jansson(a, false);
        json_decref(a);
        a = json_pack("{s:s}", "user", "J\xc3\xbcrgen");
        same_as_jansson(a, false);
        json_decref(a);
        a = json_array();
        for (int i = 0; i < JSON_DUMP_MAX_DEPTH + 1; i++) {
                json_t *outer = json_array();

                json_array_append_new(outer, a);
                a = outer;
        }
        same_as_jansson(a, false);
        json_decref(a);
}

static uint64_t next(uint64_t *s)
{
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

static json_t *random_tree(uint64_t *s, int depth)
{
        char text[24];
        size_t n;
        double d;
        uint64_t bits;

        switch (next(s) % (depth > 4 ? 6 : 8)) {
        case 0:
                return json_null();
        case 1:
                return json_boolean(next(s) & 1);
        case 2:
                return json_integer((json_int_t)next(s) >> (next(s) % 64));
        case 3:
                do {
                        bits = next(s);
                        memcpy(&d, &bits, sizeof d);
                } while (!isfinite(d));
                return json_real(next(s) & 1 ? d : (double)(int64_t)(bits % 100000) / 1000.0);
        case 4:
        case 5:
                n = next(s) % sizeof text;
                for (size_t i = 0; i < n; i++)
                        text[i] = (char)(next(s) % 0x80);
                return json_stringn(text, n);
        case 6: {
                json_t *a = json_array();

                for (size_t i = next(s) % 5; i > 0; i--)
                        json_array_append_new(a, random_tree(s, depth + 1));
                return a;
        }
        default: {
                json_t *o = json_object();

                for (size_t i = next(s) % 5; i > 0; i--) {
                        n = 1 + next(s) % 8;
                        for (size_t k = 0; k < n; k++)
                                text[k] = (char)(0x20 + next(s) % 0x60);
                        json_object_setn_new(o, text, n, random_tree(s, depth + 1));
                }
                return o;
        }
        }
}

static void test_random_trees(void **state)
{
        uint64_t seed = 0x9e3779b97f4a7c15u;

        for (int i = 0; i < 20000; i++) {
                json_t *o = json_object();

                json_object_set_new(o, "v", random_tree(&seed, 0));
                same_as_jansson(o, true);
                json_decref(o);
        }
}

/* One real through json_out_real() and through jansson's dump. */
static void same_real(double v)
{
        JsonOut o = {0};
        json_t *j = json_real(v);
        char *theirs = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY), *mine;
        size_t len;

        assert_non_null(theirs);
        assert_int_equal(json_out_real(&o, v), 0);
        assert_int_equal(json_out_finish(&o, &mine, &len), 0);
        if (strcmp(mine, theirs) != 0)
                fail_msg("%a: json_out_real wrote %s, jansson %s", v, mine, theirs);
        free(mine);
        free(theirs);
        json_decref(j);
}

/* Reals, which json-dump formats itself where their exact value is cheap
 * to have (wall-clock seconds above all) and through snprintf otherwise:
 * the same text as jansson's either way. */
static void test_reals(void **state)
{
        static const double fixed[] = {0.0, -0.0, 1.0, -1.0, 0.5, 100.0, 1e-4, 9.9999999999999e-5,
                                       1e16, 1e17, 99999999999999999.0, 9.999999999999999e16,
                                       0.1, 0.3, 2.5, 1765000000.25, 1765000000.123456,
                                       4503599627370496.5, 1.5e-3, 123.456};
        uint64_t seed = 0x6a09e667f3bcc909u;

        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
                same_real(fixed[i]);
                same_real(-fixed[i]);
        }
        for (int i = 0; i < 200000; i++) {
                uint64_t r = next(&seed), bits = next(&seed);
                double d;

                switch (r % 5) {
                case 0: /* a wall-clock time in µs, as seconds */
                        d = (double)(UINT64_C(1700000000000000) + bits % (UINT64_C(1) << 44)) /
                            1e6;
                        break;
                case 1: /* any µs count */
                        d = (double)(bits >> (r >> 8) % 64) / 1e6;
                        break;
                case 2: /* a few binary places: exact halves, quarters, ... */
                        d = ldexp((double)(bits >> 11), -(int)((r >> 8) % 60));
                        break;
                case 3: /* near a power of ten */
                        d = pow(10.0, (double)((int)((r >> 8) % 24) - 5)) *
                            (1.0 + ((double)(bits % 2001) - 1000.0) * 1e-16);
                        break;
                default:
                        memcpy(&d, &bits, sizeof d);
                        if (!isfinite(d))
                                continue;
                        break;
                }
                same_real(r & (1u << 20) ? -d : d);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cases),
                cmocka_unit_test(test_random_trees),
                cmocka_unit_test(test_reals),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
