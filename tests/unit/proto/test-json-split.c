/* Unit tests for src/proto/json-split: an object read a member at a time,
 * one array member an element at a time, from text that arrives in pieces.
 * Every text is fed whole and in pieces of every size from 1 byte, the way
 * the client library feeds it (what was not taken comes again, followed by
 * the next bytes); the events must be the same each time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "proto/json-split.h"

/* The events of `text` as a transcript ("M key=value", "A key", "E value",
 * "]", "}", then "rest:" and what followed the object), or "error" at the
 * first error. `split_key` is set once a member named "go" was seen, to
 * check it may change on the way. */
static char *transcript(const char *text, size_t chunk, const char *split_key)
{
        size_t len = strlen(text), have = 0, pos = 0, fed = 0;
        char *buf = malloc(len + 1), *out = NULL;
        size_t out_len = 0;
        FILE *f = open_memstream(&out, &out_len);
        JsonSplit js;
        bool done = false;

        assert_non_null(buf);
        assert_non_null(f);
        json_split_init(&js, NULL);
        while (!done) {
                size_t k = MIN(chunk, len - fed);
                bool last;

                memcpy(buf + have, text + fed, k);
                have += k;
                fed += k;
                last = fed == len;
                for (;;) {
                        JsonSplitItem it;
                        int r = json_split_next(&js, buf + pos, have - pos, last, &it);

                        if (r < 0) {
                                fputs("error", f);
                                done = true;
                                break;
                        }
                        if (r == JSON_SPLIT_MORE) {
                                assert_false(last);
                                pos += json_split_taken(&js);
                                break;
                        }
                        switch (r) {
                        case JSON_SPLIT_MEMBER:
                                fprintf(f, "M %.*s=%.*s\n", (int)it.key_len, it.key,
                                        (int)it.value_len, it.value);
                                if (it.key_len == 4 && memcmp(it.key, "\"go\"", 4) == 0)
                                        js.split_key = split_key;
                                break;
                        case JSON_SPLIT_ARRAY:
                                fprintf(f, "A %.*s\n", (int)it.key_len, it.key);
                                break;
                        case JSON_SPLIT_ELEMENT:
                                fprintf(f, "E %.*s\n", (int)it.value_len, it.value);
                                break;
                        case JSON_SPLIT_ARRAY_END:
                                fputs("]\n", f);
                                break;
                        case JSON_SPLIT_END:
                                pos += json_split_taken(&js);
                                /* Later calls say the same. */
                                assert_int_equal(json_split_next(&js, buf + pos, have - pos, last, &it),
                                                 JSON_SPLIT_END);
                                assert_int_equal(json_split_taken(&js), 0);
                                fprintf(f, "}\nrest:%.*s%s|", (int)(have - pos), buf + pos,
                                        text + fed);
                                done = true;
                                break;
                        }
                        if (done)
                                break;
                }
                /* Drop what was taken, as the client's buffer does. */
                memmove(buf, buf + pos, have - pos);
                have -= pos;
                pos = 0;
        }
        assert_int_equal(fclose(f), 0);
        free(buf);
        return out;
}

/* The transcript of `text` fed whole, compared with `want` and with the
 * transcripts of the text fed in pieces of every size. */
static void check(const char *text, const char *split_key, const char *want)
{
        char *whole = transcript(text, strlen(text) + 1, split_key);

        if (strcmp(whole, want) != 0)
                fail_msg("text '%s': got\n%s\nwant\n%s", text, whole, want);
        /* Every size up to 80 bytes, then sizes growing by half. */
        for (size_t chunk = 1; chunk <= strlen(text);
             chunk = chunk < 80 ? chunk + 1 : chunk * 3 / 2) {
                char *got = transcript(text, chunk, split_key);

                if (strcmp(got, whole) != 0)
                        fail_msg("text '%s' in pieces of %zu: got\n%s\nwant\n%s", text, chunk, got,
                                 whole);
                free(got);
        }
        free(whole);
}

static void test_members(void **state)
{
        (void)state;
        check("{}", NULL, "}\nrest:|");
        check(" \n{ } ", NULL, "}\nrest: |");
        check("{\"a\":1}", NULL, "M \"a\"=1\n}\nrest:|");
        check("{ \"a\" : 1 , \"b\":[1,{\"c\":\"}]\"}] ,\"d\":\"x\\\"y\\\\\"}", NULL,
              "M \"a\"=1\nM \"b\"=[1,{\"c\":\"}]\"}]\nM \"d\"=\"x\\\"y\\\\\"\n}\nrest:|");
        check("{\"k\\\"ey\":true,\"n\":null,\"f\":-1.5e3}}, \"tail\"", NULL,
              "M \"k\\\"ey\"=true\nM \"n\"=null\nM \"f\"=-1.5e3\n}\nrest:}, \"tail\"|");
        /* A key without split_key set is a member whatever its value. */
        check("{\"gpus\":[1,2]}", NULL, "M \"gpus\"=[1,2]\n}\nrest:|");
}

static void test_split(void **state)
{
        (void)state;
        /* The split key is set after "go": a "gpus" before it is a member. */
        check("{\"gpus\":[0],\"go\":1,\"gpus\":[{\"a\":[1]}, \"s]\" ,3,[],{}],\"q\":[]}", "gpus",
              "M \"gpus\"=[0]\nM \"go\"=1\nA \"gpus\"\nE {\"a\":[1]}\nE \"s]\"\nE 3\nE []\nE {}\n]\n"
              "M \"q\"=[]\n}\nrest:|");
        check("{\"go\":1,\"gpus\":[ ]}", "gpus", "M \"go\"=1\nA \"gpus\"\n]\n}\nrest:|");
        /* Split only an array; a key that differs in length or bytes is a member. */
        check("{\"go\":1,\"gpus\":{\"x\":1},\"gpu\":[1],\"gpusx\":[1]}", "gpus",
              "M \"go\"=1\nM \"gpus\"={\"x\":1}\nM \"gpu\"=[1]\nM \"gpusx\"=[1]\n}\nrest:|");
}

/* Random containers whose strings are made of the bytes that matter
 * (quotes, backslashes, brackets), as jansson writes them: each is one
 * member, and one element, whole, at every split of the text. */
static char *random_value(unsigned *seed, int depth)
{
        static const char *const atoms[] = {
            "\"\"", "\"\\\\\"", "\"\\\"\"", "\"]\"", "\"}\"", "\"[{\"", "\"\\\\\\\"]\"", "1", "-2.5",
            "null", "true", "\"\\u005d\"",
            /* long enough to fill the 64-byte blocks of the scan */
            "\"a string of seventy bytes and more, with ] and } and [ and { in it\"",
            "\"sixty-four bytes or so of plain text, none of it special at all..\"",
            "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27]",
            "{\"key one\":\"value one\",\"key two\":[\"]\",\"}\"],\"key three\":{\"x\":[[[]]]}}",
        };
        int kind = depth > 4 ? 0 : rand_r(seed) % 3;
        char *out = NULL;

        if (kind == 0)
                return strdup(atoms[rand_r(seed) % ELEMENTSOF(atoms)]);
        out = strdup(kind == 1 ? "[" : "{");
        for (int n = rand_r(seed) % 6, k = 0; k < n; k++) {
                char *v = random_value(seed, depth + 1), *grown = NULL;

                assert_true(asprintf(&grown, "%s%s%s%s", out, k ? "," : "",
                                     kind == 2 ? "\"k\\\"]\":" : "", v) > 0);
                free(out);
                free(v);
                out = grown;
        }
        {
                char *closed = NULL;

                assert_true(asprintf(&closed, "%s%s", out, kind == 1 ? "]" : "}") > 0);
                free(out);
                out = closed;
        }
        return out;
}

static void test_random(void **state)
{
        unsigned seed = 16;

        (void)state;
        for (int i = 0; i < 300; i++) {
                char *v = random_value(&seed, 0), *text = NULL, *want = NULL;

                assert_true(asprintf(&text, "{\"v\":%s,\"go\":0,\"gpus\":[%s,%s]}", v, v, v) > 0);
                assert_true(asprintf(&want, "M \"v\"=%s\nM \"go\"=0\nA \"gpus\"\nE %s\nE %s\n]\n}\nrest:|",
                                     v, v, v) > 0);
                check(text, "gpus", want);
                free(v);
                free(text);
                free(want);
        }
}

static void test_errors(void **state)
{
        static const char *const bad[] = {
            "",          "[]",          "{",           "{\"a\"",      "{\"a\":",
            "{\"a\":1",  "{\"a\" 1}",   "{\"a\":1 \"b\":2}", "{,}",     "{\"a\":1,}",
            "{a:1}",     "{\"a\":}",    "{\"a\":\"x}",  "{\"a\":[1,2}", "{\"go\":1,\"gpus\":[1,]}",
            "{\"go\":1,\"gpus\":[,1]}", "{\"go\":1,\"gpus\":[1 2]}", "{\"go\":1,\"gpus\":[1",
            "{\"go\":1,\"gpus\":[1]", "x{}",
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char *got = transcript(bad[i], strlen(bad[i]) + 1, "gpus");

                if (!strstr(got, "error"))
                        fail_msg("'%s' was taken: %s", bad[i], got);
                free(got);
                for (size_t chunk = 1; chunk < strlen(bad[i]); chunk++) {
                        got = transcript(bad[i], chunk, "gpus");
                        if (!strstr(got, "error"))
                                fail_msg("'%s' in pieces of %zu was taken: %s", bad[i], chunk, got);
                        free(got);
                }
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_members),
            cmocka_unit_test(test_split),
            cmocka_unit_test(test_random),
            cmocka_unit_test(test_errors),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
