/* Unit tests for src/proto/json-scan and json-index: the scanner and the
 * index against jansson on edge cases and on random trees (and their mangled
 * dumps), the member walk and key comparison, the writer against
 * json_dumps(JSON_INDENT(2)), and the index's accessors. The check itself
 * is json-scan-check.h, shared with tests/fuzz/fuzz-json-scan.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json-scan-check.h"

static void check_text(const char *s, size_t len)
{
        const char *why = json_scan_check(s, len);

        if (why)
                fail_msg("%s: '%.*s' (%zu bytes)", why, (int)(len > 200 ? 200 : len), s, len);
}

#define CHECK(lit) check_text(lit, sizeof(lit) - 1)

/* 2^1024 - 2^970, the least value that overflows a double, and its neighbour below. */
#define OVERFLOW_K                                                                                 \
        "17976931348623158079372897140530341507993413271003782693617377898044496829276475094664901797" \
        "75872070963302864166928879109465555478519404026306574886715058206819089020007083836762738548" \
        "45817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711" \
        "5596995080930428801779041744977"

static void test_edge_cases(void **state)
{
        static const char *const texts[] = {
            /* containers, whitespace, trailing bytes */
            "{}", "[]", " {} ", "\t[\n]\r", "{ }", "[ ]", "{\"a\":1}", "[1,2]", "[[[]]]",
            "{\"a\":{},\"b\":[],\"c\":[{}]}", "", " ", "1", "\"a\"", "true", "null", "[] x",
            "[]]", "{}{}", "[1,]", "[,1]", "[,]", "{\"a\"}", "{\"a\":}", "{a:1}", "{\"a\":1,}",
            "{,}", "{\"a\" 1}", "{\"a\"::1}", "[1 2]", "[", "{", "]", "}", "[}", "{]", "[1:2]",
            "{\"a\":1 \"b\":2}", "{1:2}", "{\"a\":1}}", "\xef\xbb\xbf[]", "[\f]", "[\v]",
            /* a member json_index_rebuild_taking() hands its reader (the first key's) */
            "{\"a\":[1,2],\"b\":3}", "{ \"a\" : [ ] }", "{\"a\":[1,]}", "{\"a\":[1 2]}",
            "{\"a\":[1}", "{\"a\":[1],\"a\":null}", "{\"a\":null,\"a\":[3]}",
            "{\"a\":[1],\"a\":[2,[3]]}", "{\"a\":[[[{}]]],\"b\":[]}", "{\"a\":[\"x\\u0000\"]}",
            "{\"b\":{\"a\":[1]},\"a\":[2]}", "{\"a\":[1]]}", "{\"a\":[1]} x",
            /* literals */
            "[true,false,null]", "[tru]", "[truex]", "[nul]", "[True]", "[nulll]", "[true1]",
            "[-true]", "[fals]", "[ true ]",
            /* numbers */
            "[0]", "[-0]", "[-0.0]", "[1e5]", "[1E+5]", "[1e-5]", "[0.5]", "[01]", "[1.]",
            "[-]", "[1e]", "[1e+]", "[.5]", "[+1]", "[-01]", "[1.e5]", "[0x10]", "[1.5.3]",
            "[1e5e5]", "[--1]", "[- 1]", "[0e0]", "[0E-0]", "[1.0e+308]", "[12345678901234567]",
            /* the index's plain-integer path and its edges */
            "[123456789012345678]", "[-123456789012345678]", "[1234567890123456789]",
            "[00]", "[-00]", "[0,1]", "{\"a\":12}", "[1 ]", "[1\n,2]", "[5", "[-5", "[1a]",
            "[12E3]", "[7.]", "[0.0,-0,0]",
            "[9223372036854775807]", "[-9223372036854775808]", "[9223372036854775808]",
            "[-9223372036854775809]", "[99999999999999999999]", "[10000000000000000000]",
            "[9223372036854775807.0]", "[1e309]", "[1e308]", "[1.7976931348623157e308]",
            "[1.7976931348623158e308]", "[1.797693134862315807e308]",
            "[1.797693134862315808e308]", "[1.7976931348623159e308]", "[-1e309]",
            "[1e-400]", "[0.0e999999999999999999999]", "[1e99999999999999999999]",
            "[1e-99999999999999999999]", "[0.00001e314]", "[0.00001e313]", "[100e306]",
            "[1000e306]", "[" OVERFLOW_K "792]", "[" OVERFLOW_K "791]",
            "[" OVERFLOW_K "792.0]", "[" OVERFLOW_K "791.999999]", "[" OVERFLOW_K "7920]",
            "[0." OVERFLOW_K "792e309]", "[0." OVERFLOW_K "791e309]",
            "[00." OVERFLOW_K "791e309]", "[0.0" OVERFLOW_K "792e310]",
            "[0.0" OVERFLOW_K "791999e310]", "[" OVERFLOW_K "792e-1]",
            /* strings */
            "[\"\"]", "[\"abc]", "[\"\\u00e9\"]", "[\"\\ud83d\\ude00\"]", "[\"\\uD83D\\uDE00\"]",
            "[\"\\/\"]", "[\"\\\"\\\\\\b\\f\\n\\r\\t\"]", "[\"\\u0000\"]", "{\"\\u0000\":1}",
            "[\"a\\u0000b\"]", "[\"\\ud800\"]", "[\"\\udc00\"]", "[\"\\ud800\\u0041\"]",
            "[\"\\ud800x\"]", "[\"\\ud800\\ud800\"]", "[\"\\udbff\\udfff\"]", "[\"\\x\"]",
            "[\"\\u12G4\"]", "[\"\\u12\"]", "[\"\\u\"]", "[\"\\\"]", "[\"\\'\"]", "[\"a\nb\"]",
            "[\"\x01\"]", "[\"\x1f\"]", "[\"\x7f\"]", "[\"\t\"]", "[\"\xc0\xaf\"]",
            "[\"\xc1\xbf\"]", "[\"\xe0\x80\xaf\"]", "[\"\xed\xa0\x80\"]", "[\"\xed\x9f\xbf\"]",
            "[\"\xf4\x90\x80\x80\"]", "[\"\xf4\x8f\xbf\xbf\"]", "[\"\xf5\x80\x80\x80\"]",
            "[\"\xe2\x82\"]", "[\"\xe2\x82\xac\"]", "[\"\x80\"]", "[\"\xff\"]", "[\"\xc3\"]",
            "[\"\xf0\x9f\x98\x80\"]", "[\"\xe2\x80\xa8\"]", "[\xc3\xa9]", "{\"\xc3\xa9\":1}",
            "{\"a\":1,\"a\":2}", "{\"a\":1,\"\\u0061\":2,\"b\":3}", "[\"\\u00\"]",
            "[\"\\uDFFF\"]", "[\"\\uD7FF\"]", "[\"\\uE000\"]", "[\"\\uFFFF\"]",
        };

        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
                check_text(texts[i], strlen(texts[i]));
        /* NUL bytes */
        CHECK("[]\0");
        CHECK("[\0]");
        CHECK("[\"\0\"]");
        CHECK("\0[]");
        CHECK("{\"a\0\":1}");
        /* jansson drops one NUL right after a number or word (it reads a byte
         * past them and the put-back NUL is lost); two are refused. */
        CHECK("[1\0]");
        CHECK("[true\0]");
        CHECK("[1\0\0]");
        CHECK("[1.5\0,2]");
        CHECK("[1e5\0 ]");
        CHECK("{\"a\":null\0}");
        CHECK("[\"a\"\0]");
        CHECK("[[]\0]");
        CHECK("[-\0 1]");
}

static void test_depth(void **state)
{
        char buf[256];

        /* Containers nested PROTO_MAX_DEPTH - 1 .. + 1 deep, empty or holding scalars. */
        for (unsigned d = PROTO_MAX_DEPTH - 1; d <= PROTO_MAX_DEPTH + 1; d++) {
                for (unsigned kind = 0; kind < 4; kind++) {
                        size_t n = 0;

                        for (unsigned i = 0; i < d; i++)
                                n += (size_t)sprintf(buf + n, kind % 2 && i % 2 && i + 1 < d ? "{\"k\":" : "[");
                        if (kind >= 2)
                                n += (size_t)sprintf(buf + n, "1");
                        for (unsigned i = d; i-- > 0;)
                                n += (size_t)sprintf(buf + n, kind % 2 && i % 2 && i + 1 < d ? "}" : "]");
                        check_text(buf, n);
                        assert_int_equal(json_scan_document(buf, n, PROTO_MAX_DEPTH, NULL, NULL),
                                         d <= PROTO_MAX_DEPTH);
                }
        }
        /* Brackets inside strings do not count. */
        CHECK("[\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"]");
        /* A smaller limit. */
        assert_true(json_scan_document("[[1]]", 5, 2, NULL, NULL));
        assert_false(json_scan_document("[[[1]]]", 7, 2, NULL, NULL));
        assert_true(json_scan_document("[[[]]]", 6, 3, NULL, NULL));
}

/* ---- Random trees ------------------------------------------------------------------------ */

static uint64_t rng = 88172645463325252u;

static uint64_t rnd(void)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

static void put_utf8(char *buf, size_t *n, uint32_t cp)
{
        if (cp < 0x80)
                buf[(*n)++] = (char)cp;
        else if (cp < 0x800) {
                buf[(*n)++] = (char)(0xC0 | cp >> 6);
                buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
                buf[(*n)++] = (char)(0xE0 | cp >> 12);
                buf[(*n)++] = (char)(0x80 | (cp >> 6 & 0x3F));
                buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
        } else {
                buf[(*n)++] = (char)(0xF0 | cp >> 18);
                buf[(*n)++] = (char)(0x80 | (cp >> 12 & 0x3F));
                buf[(*n)++] = (char)(0x80 | (cp >> 6 & 0x3F));
                buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
        }
}

static json_t *random_string(void)
{
        static const uint32_t special[] = {'"', '\\', '/', '\b', '\f', '\n', '\r', '\t', 0x01,
                                           0x1F, 0x7F, 0xE9, 0x2028, 0xFFFD, 0x1F600, 0x10FFFF,
                                           '[', ']', '{', '}', ',', ':', ' '};
        char buf[64 * 4];
        size_t n = 0, len = rnd() % 4 ? rnd() % 12 : rnd() % 60;

        for (size_t i = 0; i < len; i++) {
                uint32_t cp;

                switch (rnd() % 4) {
                case 0:
                        cp = special[rnd() % (sizeof special / sizeof special[0])];
                        break;
                case 1:
                        do
                                cp = 1 + (uint32_t)(rnd() % 0x10FFFF);
                        while (cp >= 0xD800 && cp <= 0xDFFF);
                        break;
                default:
                        cp = 0x20 + (uint32_t)(rnd() % 0x5F);
                        break;
                }
                put_utf8(buf, &n, cp);
        }
        return json_stringn(buf, n);
}

static json_t *random_number(void)
{
        static const json_int_t ints[] = {0, 1, -1, INT64_MAX, INT64_MIN, 4294967295, 1000000};
        double d;

        switch (rnd() % 5) {
        case 0:
                return json_integer(ints[rnd() % (sizeof ints / sizeof ints[0])]);
        case 1:
                return json_integer((json_int_t)rnd());
        case 2:
                do {
                        uint64_t bits = rnd();
                        memcpy(&d, &bits, sizeof d);
                } while (!isfinite(d));
                return json_real(d);
        case 3:
                return json_real((double)(rnd() % 100000) / 100.0);
        default:
                return json_real(rnd() % 2 ? 1.7976931348623157e308 : -5e-324);
        }
}

static json_t *random_tree(unsigned depth, unsigned max)
{
        unsigned kind = depth == 0 ? (unsigned)(rnd() % 2) : (unsigned)(rnd() % 8);
        json_t *j;

        if (depth > 0 && depth + 1 >= max && kind < 2)
                kind = 2 + (unsigned)(rnd() % 6);
        switch (kind) {
        case 0:
        case 1: {
                size_t n = rnd() % 4 == 0 ? 0 : rnd() % 6 + 1;

                j = kind == 0 ? json_object() : json_array();
                for (size_t i = 0; i < n; i++) {
                        json_t *v = random_tree(depth + 1, max);
                        if (kind == 0) {
                                json_t *k = random_string();
                                json_object_set_new(j, json_string_value(k), v);
                                json_decref(k);
                        } else
                                json_array_append_new(j, v);
                }
                return j;
        }
        case 2:
        case 3:
                return random_string();
        case 4:
        case 5:
                return random_number();
        case 6:
                return rnd() % 2 ? json_true() : json_false();
        default:
                return json_null();
        }
}

static void test_random_trees(void **state)
{
        for (unsigned i = 0; i < 20000; i++) {
                json_t *j = random_tree(0, 1 + (unsigned)(rnd() % (PROTO_MAX_DEPTH + 4)));
                char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
                size_t len;

                assert_non_null(text);
                len = strlen(text);
                check_text(text, len);
                /* Mangled copies: a byte changed, dropped or cut off. */
                for (unsigned m = 0; m < 8 && len > 0; m++) {
                        char *copy = malloc(len + 1);
                        size_t at = rnd() % len, n = len;

                        memcpy(copy, text, len + 1);
                        switch (rnd() % 3) {
                        case 0:
                                copy[at] = "\"\\{}[],:0-.eE1u \x80\xc3\xed\x00"[rnd() % 21];
                                break;
                        case 1:
                                memmove(copy + at, copy + at + 1, len - at);
                                n--;
                                break;
                        default:
                                n = at;
                                break;
                        }
                        check_text(copy, n);
                        free(copy);
                }
                free(text);
                json_decref(j);
        }
}

/* ---- Member walk and keys ---------------------------------------------------------------- */

static void test_members(void **state)
{
        static const char text[] =
            " {\"v\":1, \"\\u0069d\" : 7,\"ok\":true,\"result\":{\"a\":[1,{\"b\":\"}\"}]},"
            "\"k\\u00e9\\ud83d\\ude00\":null,\"\\\"\":\"x\"} ";
        JsonScanMembers it;
        JsonScanMember m, first;

        json_scan_members_init(&it, text, sizeof text - 1, PROTO_MAX_DEPTH);
        assert_int_equal(json_scan_members_next(&it, &m), 1);
        assert_true(json_scan_key_is(&m, "v"));
        assert_false(json_scan_key_is(&m, "vv"));
        assert_false(json_scan_key_is(&m, ""));
        assert_int_equal(m.value_len, 1);
        first = m;
        assert_int_equal(json_scan_members_next(&it, &m), 1);
        assert_true(json_scan_key_is(&m, "id"));
        assert_false(json_scan_keys_equal(&m, &first));
        assert_memory_equal(m.value, "7", 1);
        assert_int_equal(json_scan_members_next(&it, &m), 1);
        assert_true(json_scan_key_is(&m, "ok"));
        assert_int_equal(m.value_len, 4);
        assert_int_equal(json_scan_members_next(&it, &m), 1);
        assert_true(json_scan_key_is(&m, "result"));
        assert_int_equal(m.value_len, strlen("{\"a\":[1,{\"b\":\"}\"}]}"));
        assert_memory_equal(m.value, "{\"a\":[1,{\"b\":\"}\"}]}", m.value_len);
        assert_int_equal(json_scan_members_next(&it, &m), 1);
        assert_true(json_scan_key_is(&m, "k\xc3\xa9\xf0\x9f\x98\x80"));
        assert_false(json_scan_key_is(&m, "k\xc3\xa9"));
        assert_int_equal(json_scan_members_next(&it, &m), 1);
        assert_true(json_scan_key_is(&m, "\""));
        assert_int_equal(json_scan_members_next(&it, &m), 0);
        assert_int_equal(json_scan_members_next(&it, &m), 0);

        /* Escaped and plain forms of one key are equal. */
        {
                static const char two[] = "{\"ab\":1,\"\\u0061\\u0062\":2}";
                JsonScanMember a;

                json_scan_members_init(&it, two, sizeof two - 1, PROTO_MAX_DEPTH);
                assert_int_equal(json_scan_members_next(&it, &a), 1);
                assert_int_equal(json_scan_members_next(&it, &m), 1);
                assert_true(json_scan_keys_equal(&a, &m));
                assert_int_equal(json_scan_members_next(&it, &m), 0);
        }
        /* The NUL jansson drops after a number or a word is not part of
         * the value (the fuzzer's find: "id":3 then a NUL made the scanned
         * id "3\0", and proto_scan_ok_reply() refused a reply the index
         * and jansson take). */
        {
                static const char nul[] = "{\"id\":3\0,\"ok\":true\0}";
                uint32_t id = 0;
                const char *res = NULL;
                size_t res_len = 0;

                json_scan_members_init(&it, nul, sizeof nul - 1, PROTO_MAX_DEPTH);
                assert_int_equal(json_scan_members_next(&it, &m), 1);
                assert_int_equal(m.value_len, 1);
                assert_memory_equal(m.value, "3", 1);
                assert_int_equal(json_scan_members_next(&it, &m), 1);
                assert_int_equal(m.value_len, 4);
                assert_int_equal(json_scan_members_next(&it, &m), 0);
                static const char reply[] = "{\"v\":1,\"id\":3\0,\"ok\":true,\"result\":{}}";
                assert_int_equal(proto_scan_ok_reply(reply, sizeof reply - 1, &id, &res, &res_len), 1);
                assert_int_equal(id, 3);
                assert_int_equal(res_len, 2);
        }
        /* An empty object, an array, garbage after the object. */
        json_scan_members_init(&it, "{ }", 3, PROTO_MAX_DEPTH);
        assert_int_equal(json_scan_members_next(&it, &m), 0);
        json_scan_members_init(&it, "[1]", 3, PROTO_MAX_DEPTH);
        assert_int_equal(json_scan_members_next(&it, &m), -EBADMSG);
        json_scan_members_init(&it, "{\"a\":1}x", 8, PROTO_MAX_DEPTH);
        assert_int_equal(json_scan_members_next(&it, &m), 1);
        assert_int_equal(json_scan_members_next(&it, &m), -EBADMSG);
        assert_int_equal(json_scan_members_next(&it, &m), -EBADMSG);
}

/* ---- Writer ------------------------------------------------------------------------------ */

static void test_writer(void **state)
{
        static const struct {
                const char *in, *out;
        } cases[] = {
            {"{}", "{}"},
            {"[]", "[]"},
            {"{\"a\":[],\"b\":{},\"c\":[1,{\"x\":null}],\"d\":\"\\u00e9:,{\"}",
             "{\n  \"a\": [],\n  \"b\": {},\n  \"c\": [\n    1,\n    {\n      \"x\": null\n    }\n  "
             "],\n  \"d\": \"\\u00e9:,{\"\n}"},
            {" [ [ ] , { } , -1.5e3 ] ", "[\n  [],\n  {},\n  -1.5e3\n]"},
            {"{\"a\\\\\":\"b\\\\\"}", "{\n  \"a\\\\\": \"b\\\\\"\n}"},
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char *got = json_scan_check_write(cases[i].in, strlen(cases[i].in));
                assert_string_equal(got, cases[i].out);
                free(got);
        }

        /* A string longer than the writer's buffer, and a large document. */
        {
                size_t n = 100000;
                json_t *j = json_array();
                char *big = malloc(n + 1);
                const char *why;

                memset(big, 'x', n);
                big[n] = '\0';
                json_array_append_new(j, json_string(big));
                for (unsigned i = 0; i < 5000; i++)
                        json_array_append_new(j, json_pack("{s:i,s:s}", "pid", i, "cmd", "python"));
                why = json_scan_check_writer(j, JSON_COMPACT);
                assert_null(why);
                json_decref(j);
                free(big);
        }
}

/* ---- Index ------------------------------------------------------------------------------- */

/* The index's accessors on a text with a bit of everything (the agreement
 * with jansson itself is checked on every text above, in json_scan_check). */
static void test_index(void **state)
{
        static const char text[] =
            " {\"a\":1,\"a\":[2,-9223372036854775808,1.5e3],\"k\\u00e9\":\"x\\u00e9\\ud83d\\ude00\\n\","
            "\"o\":{},\"t\":true,\"f\":false,\"n\":null,\"\":\"\"} ";
        JsonIndex *ix = NULL;
        JsonIndexRef root, a, e, o;
        const char *str, *at;
        size_t len, left;
        int64_t i;
        double d;

        assert_int_equal(json_index_build(text, sizeof text - 1, PROTO_MAX_DEPTH, &ix), 0);
        root = json_index_root(ix);
        assert_true(json_index_is_object(ix, root));
        assert_int_equal(json_index_size(ix, root), 8);
        /* A key given twice: the last value, as jansson keeps it. */
        a = json_index_get(ix, root, "a");
        assert_true(json_index_is_array(ix, a));
        assert_int_equal(json_index_size(ix, a), 3);
        at = json_index_container_text(ix, a, &left);
        assert_non_null(at);
        assert_int_equal(at[0], '[');
        assert_int_equal(left, sizeof text - 1 - (size_t)(at - text));
        e = json_index_array_get(ix, a, 1);
        assert_true(json_index_integer(ix, e, &i));
        assert_true(i == INT64_MIN);
        assert_true(json_index_number(ix, json_index_array_get(ix, a, 2), &d));
        assert_true(d == 1500.0);
        assert_false(json_index_integer(ix, json_index_array_get(ix, a, 2), &i));
        assert_int_equal(json_index_array_get(ix, a, 3), 0);
        assert_int_equal(json_index_get(ix, a, "a"), 0); /* not an object */
        str = json_index_string(ix, json_index_get(ix, root, "k\xc3\xa9"), &len);
        assert_non_null(str);
        assert_int_equal(len, 8);
        assert_string_equal(str, "x\xc3\xa9\xf0\x9f\x98\x80\n");
        assert_false(json_index_number(ix, json_index_get(ix, root, "k\xc3\xa9"), &d));
        o = json_index_get(ix, root, "o");
        assert_true(json_index_is_object(ix, o));
        assert_int_equal(json_index_first(ix, o), 0);
        assert_true(json_index_is_true(ix, json_index_get(ix, root, "t")));
        assert_true(json_index_is_false(ix, json_index_get(ix, root, "f")));
        assert_true(json_index_is_null(ix, json_index_get(ix, root, "n")));
        str = json_index_string(ix, json_index_get(ix, root, ""), &len);
        assert_non_null(str);
        assert_int_equal(len, 0);
        assert_int_equal(json_index_get(ix, root, "missing"), 0);
        /* Ref 0 chains as a missing member. */
        assert_int_equal(json_index_get(ix, json_index_get(ix, root, "missing"), "a"), 0);
        assert_null(json_index_container_text(ix, 0, &left));
        json_index_free(ix);

        /* What the scanner refuses, the index refuses. */
        assert_int_equal(json_index_build("[\"\\u0000\"]", 10, PROTO_MAX_DEPTH, &ix), -EBADMSG);
        assert_int_equal(json_index_build("[1,]", 4, PROTO_MAX_DEPTH, &ix), -EBADMSG);
        assert_int_equal(json_index_build("[[1]]", 5, 1, &ix), -EBADMSG);
        json_index_free(NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_edge_cases), cmocka_unit_test(test_depth),
            cmocka_unit_test(test_random_trees), cmocka_unit_test(test_members),
            cmocka_unit_test(test_writer), cmocka_unit_test(test_index),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
