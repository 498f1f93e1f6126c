/* The differential check of src/proto/json-scan and src/proto/json-index
 * against jansson, shared by the unit test (test-json-scan.c) and the fuzz
 * target (fuzz-json-scan.c): the scanner accepts a text iff json_loadb(text,
 * 0) does and its containers nest at most PROTO_MAX_DEPTH deep; the member
 * walk agrees; the writer prints jansson's compact dump of the parsed value
 * exactly as json_dumps(JSON_INDENT(2) | JSON_PRESERVE_ORDER) does; and the
 * index builds exactly when the scanner accepts, holding jansson's values
 * (types, decoded strings, integers, reals, members in order, lookups),
 * and the jansson tree built from it is the one jansson builds; json-split
 * reads an object's members (and the elements of its array member "a")
 * whatever pieces the text comes in, and for a text jansson takes they are
 * jansson's. */
#pragma once

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/json-index.h"
#include "proto/json-scan.h"
#include "proto/json-split.h"
#include "proto/proto.h"

static unsigned json_scan_check_depth(json_t *j)
{
        unsigned d = 0, sub;
        const char *key;
        json_t *v;
        size_t i;

        if (json_is_object(j)) {
                json_object_foreach (j, key, v) {
                        sub = json_scan_check_depth(v);
                        d = sub > d ? sub : d;
                }
                return d + 1;
        }
        if (json_is_array(j)) {
                json_array_foreach (j, i, v) {
                        sub = json_scan_check_depth(v);
                        d = sub > d ? sub : d;
                }
                return d + 1;
        }
        return 0;
}

/* json_scan_write_indented() of s[0..len) into a new string. */
static char *json_scan_check_write(const char *s, size_t len)
{
        char *out = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&out, &size);

        if (!f)
                abort();
        json_scan_write_indented(f, s, len);
        if (fclose(f) != 0)
                abort();
        return out;
}

/* Whether the writer, given `flags`' dump of j, prints jansson's indented dump. */
static const char *json_scan_check_writer(json_t *j, size_t flags)
{
        char *in = json_dumps(j, flags | JSON_PRESERVE_ORDER);
        char *want = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        char *got;
        const char *why = NULL;

        if (!in || !want)
                abort();
        got = json_scan_check_write(in, strlen(in));
        if (strcmp(got, want) != 0)
                why = "writer output differs from json_dumps(JSON_INDENT(2))";
        free(in);
        free(want);
        free(got);
        return why;
}

/* The stream scanner fed s[0..len) `piece` bytes at a time (the bytes it
 * did not take presented again), as a document: its verdict is `want`, and
 * what it writes is json_scan_write_indented()'s output for the value. Only
 * for texts whose first byte but whitespace opens a container. */
static const char *json_scan_check_stream(const char *s, size_t len, size_t piece, bool want,
                                          size_t b, size_t e)
{
        JsonScanStream *st = malloc(sizeof *st);
        char *out = NULL, *expect = NULL;
        size_t size = 0, pos = 0, fed = 0, taken;
        FILE *f = open_memstream(&out, &size);
        const char *why = NULL;
        int r = 0;

        if (!st || !f)
                abort();
        json_scan_stream_init(st, f, 0, PROTO_MAX_DEPTH);
        do {
                fed = len - fed < piece ? len : fed + piece;
                r = json_scan_stream_feed(st, s + pos, fed - pos, fed == len, &taken);
                if (r >= 0)
                        pos += taken;
        } while (r == 0 && fed < len);
        if (r == 0)
                why = "stream scanner wants more after the last byte";
        else if (r > 0) {
                while (pos < len && strchr(" \t\r\n", s[pos]) && s[pos])
                        pos++;
                r = pos == len; /* a document: nothing but whitespace after it */
        } else
                r = 0;
        json_scan_stream_flush(st);
        if (fclose(f) != 0)
                abort();
        if (!why && (r == 1) != want)
                why = r ? "stream scanner accepts what jansson refuses"
                        : "stream scanner refuses what jansson accepts";
        if (!why && want) {
                expect = json_scan_check_write(s + b, e - b);
                if (strcmp(out, expect) != 0)
                        why = "stream writer output differs from json_scan_write_indented()";
        }
        free(expect);
        free(out);
        free(st);
        return why;
}

/* The member walk over a document the scanner accepted or refused: its
 * verdict is the scanner's, and for an object without duplicate keys it
 * yields jansson's keys and values in order. */
static const char *json_scan_check_members(const char *s, size_t len, json_t *j, bool accepted)
{
        bool object = accepted && json_is_object(j);
        JsonScanMembers it;
        JsonScanMember m;
        void *iter = object ? json_object_iter(j) : NULL;
        bool differs = false;
        size_t n = 0;
        int r;

        json_scan_members_init(&it, s, len, PROTO_MAX_DEPTH);
        while ((r = json_scan_members_next(&it, &m)) > 0) {
                json_t *got;

                n++;
                if (!iter)
                        continue; /* refused (a prefix may look fine), or past jansson's keys */
                got = json_loadb(m.value, m.value_len, JSON_DECODE_ANY, NULL);
                if (!got)
                        return "member value is not one JSON value";
                if (!json_scan_key_is(&m, json_object_iter_key(iter)) ||
                    !json_equal(got, json_object_iter_value(iter)))
                        differs = true;
                json_decref(got);
                iter = json_object_iter_next(j, iter);
        }
        if (r != 0 && r != -EBADMSG)
                return "member walk returned an unknown value";
        if (json_scan_members_next(&it, &m) != r)
                return "member walk does not stay at its end";
        if ((r == 0) != object)
                return "member walk verdict differs from the scanner's";
        /* With a key given twice jansson keeps its first place and last value. */
        if (r == 0 && n < json_object_size(j))
                return "member walk yields fewer members than jansson's";
        if (r == 0 && n == json_object_size(j) && differs)
                return "member walk yields other members than jansson's";
        return NULL;
}

/* NULL when the index's value `r` is jansson's `j`, else what differs. */
static const char *json_index_check_value(const JsonIndex *ix, JsonIndexRef r, json_t *j)
{
        const char *why = NULL, *str;
        size_t len, n = 0;
        int64_t i;
        double d;

        switch (json_typeof(j)) {
        case JSON_OBJECT:
                if (!json_index_is_object(ix, r))
                        return "index: not an object";
                if (json_index_size(ix, r) == json_object_size(j)) {
                        /* No key twice: the members in order, each found by its key. */
                        void *iter = json_object_iter(j);

                        for (JsonIndexRef k = json_index_first(ix, r); k && !why;
                             k = json_index_next(ix, k), n++) {
                                str = json_index_string(ix, k, NULL);
                                if (!iter || !str || strcmp(str, json_object_iter_key(iter)) != 0)
                                        return "index: member keys differ";
                                if (json_index_get(ix, r, str) != json_index_value(ix, k))
                                        return "index: lookup finds another member";
                                why = json_index_check_value(ix, json_index_value(ix, k),
                                                             json_object_iter_value(iter));
                                iter = json_object_iter_next(j, iter);
                        }
                        return why ? why : n != json_object_size(j) ? "index: member count" : NULL;
                } else {
                        /* A key given twice: jansson keeps the last value. */
                        const char *key;
                        json_t *v;

                        if (json_index_size(ix, r) < json_object_size(j))
                                return "index: fewer members than jansson's";
                        json_object_foreach (j, key, v) {
                                why = json_index_check_value(ix, json_index_get(ix, r, key), v);
                                if (why)
                                        return why;
                        }
                        return NULL;
                }
        case JSON_ARRAY:
                if (!json_index_is_array(ix, r) || json_index_size(ix, r) != json_array_size(j))
                        return "index: not an array of jansson's size";
                for (JsonIndexRef e = json_index_first(ix, r); e && !why; e = json_index_next(ix, e), n++) {
                        if (n < 3 && json_index_array_get(ix, r, n) != e)
                                return "index: array_get differs from the walk";
                        why = json_index_check_value(ix, e, json_array_get(j, n));
                }
                return why ? why : n != json_array_size(j) ? "index: element count" : NULL;
        case JSON_STRING:
                str = json_index_string(ix, r, &len);
                if (!str || len != json_string_length(j) || strlen(str) != len ||
                    memcmp(str, json_string_value(j), len) != 0)
                        return "index: strings differ";
                return NULL;
        case JSON_INTEGER:
                if (!json_index_integer(ix, r, &i) || i != json_integer_value(j) ||
                    !json_index_number(ix, r, &d) || d != json_number_value(j))
                        return "index: integers differ";
                return NULL;
        case JSON_REAL:
                if (json_index_type(ix, r) != JSON_INDEX_REAL || json_index_integer(ix, r, &i) ||
                    !json_index_number(ix, r, &d) || memcmp(&d, &(double){json_real_value(j)}, sizeof d) != 0)
                        return "index: reals differ";
                return NULL;
        case JSON_TRUE:
                return json_index_is_true(ix, r) ? NULL : "index: not true";
        case JSON_FALSE:
                return json_index_is_false(ix, r) ? NULL : "index: not false";
        case JSON_NULL:
                return json_index_is_null(ix, r) ? NULL : "index: not null";
        }
        return "index: unknown jansson type";
}

/* json_index_to_json() of an index of s[0..len): the tree json_loadb(s,
 * len, JSON_REJECT_DUPLICATES) builds (the same compact dump, members in
 * order, reals to the bit, integers apart from reals, and json_equal), or
 * NULL exactly where that refuses the text (a key twice). */
static const char *json_index_check_tree(const char *s, size_t len, const JsonIndex *ix)
{
        json_t *mine = json_index_to_json(ix, json_index_root(ix));
        json_t *theirs = json_loadb(s, len, JSON_REJECT_DUPLICATES, NULL);
        const char *why = NULL;
        char *a, *b;

        if (!mine || !theirs) {
                why = mine ? "index tree: built where jansson refuses a key twice"
                    : theirs ? "index tree: not built where jansson builds one"
                             : NULL;
                json_decref(mine);
                json_decref(theirs);
                return why;
        }
        a = json_dumps(mine, JSON_COMPACT | JSON_ENCODE_ANY);
        b = json_dumps(theirs, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!a || !b)
                abort();
        if (strcmp(a, b) != 0 || !json_equal(mine, theirs))
                why = "index tree: differs from jansson's";
        free(a);
        free(b);
        json_decref(mine);
        json_decref(theirs);
        return why;
}

/* The index of s[0..len) builds exactly when the scanner accepted it
 * (`accepted`), and then holds jansson's tree `j`; ref 0 answers as nothing. */
static const char *json_index_check(const char *s, size_t len, json_t *j, bool accepted)
{
        JsonIndex *ix = NULL;
        const char *why;
        int r = json_index_build(s, len, PROTO_MAX_DEPTH, &ix);

        if (r != 0 && r != -EBADMSG)
                abort(); /* out of memory */
        if ((r == 0) != accepted)
                return r == 0 ? "index builds from text the scanner refuses"
                              : "index refuses text the scanner accepts";
        if (r != 0)
                return NULL;
        why = json_index_check_value(ix, json_index_root(ix), j);
        if (!why && json_scan_check_depth(j) > 1) {
                /* One level shallower than the tree: the scanner's verdict
                 * at that depth (refused), from the same single pass. */
                unsigned shallower = json_scan_check_depth(j) - 1;
                JsonIndex *again = NULL;
                int rs = json_index_build(s, len, shallower, &again);

                if (rs != 0 && rs != -EBADMSG)
                        abort();
                if ((rs == 0) != json_scan_document(s, len, shallower, NULL, NULL))
                        why = "index: the depth limit differs from the scanner's";
                json_index_free(again);
        }
        if (!why)
                why = json_index_check_tree(s, len, ix);
        if (!why && (json_index_type(ix, 0) != JSON_INDEX_NONE || json_index_size(ix, 0) != 0 ||
                     json_index_get(ix, 0, "a") != 0 || json_index_next(ix, 0) != 0 ||
                     json_index_string(ix, 0, NULL) != NULL))
                why = "index: ref 0 is not nothing";
        json_index_free(ix);
        return why;
}

/* What the JsonIndexTake reader of the check saw: its last array, as
 * jansson's tree of json_index_rebuild_value()'s index of it. */
typedef struct json_take_seen {
        json_t *last;
        unsigned calls;
} json_take_seen;

static ssize_t json_take_read(void *userdata, const char *s, size_t len, size_t p, unsigned depth)
{
        json_take_seen *seen = userdata;
        JsonIndex *ix = calloc(1, sizeof *ix);
        size_t end = 0;
        int r;

        if (!ix)
                abort();
        r = json_index_rebuild_value(ix, s, len, p, depth, &end);
        if (r != 0 && r != -EBADMSG)
                abort();
        seen->calls++;
        json_decref(seen->last);
        seen->last = r == 0 ? json_index_to_json(ix, json_index_root(ix)) : NULL;
        json_index_free(ix);
        return r < 0 ? r : (ssize_t)end;
}

/* The key of the first member of the object s[0..len) starts with, as
 * written (one without escapes), into key[64]; "a" when there is none. */
static void json_take_first_key(const char *s, size_t len, char key[static 64])
{
        size_t p = json_scan_skip_ws(s, len, 0), q;

        strcpy(key, "a");
        if (p >= len || s[p] != '{')
                return;
        p = json_scan_skip_ws(s, len, p + 1);
        if (p >= len || s[p] != '"')
                return;
        for (q = p + 1; q < len && s[q] != '"' && s[q] != '\\' && s[q] != '\0'; q++)
                ;
        if (q < len && s[q] == '"' && q - p - 1 < 64) {
                memcpy(key, s + p + 1, q - p - 1);
                key[q - p - 1] = '\0';
        }
}

/* json_index_rebuild_taking() of s[0..len), taking the first member's key
 * (a reader that indexes each array it is handed on its own): it builds
 * exactly when the scanner accepts at that depth, holds jansson's tree with
 * that member's array emptied, and the reader saw the array jansson keeps. */
static const char *json_index_take_check_at(const char *s, size_t len, json_t *j, unsigned depth)
{
        json_take_seen seen = {};
        char key[64];
        JsonIndexTake take = {.key = key, .read = json_take_read, .userdata = &seen};
        JsonIndex *ix = calloc(1, sizeof *ix);
        const char *why = NULL;
        bool accepted = json_scan_document(s, len, depth, NULL, NULL);
        int r;

        if (!ix)
                abort();
        json_take_first_key(s, len, key);
        take.key_len = strlen(key);
        r = json_index_rebuild_taking(ix, s, len, depth, &take);
        if (r != 0 && r != -EBADMSG)
                abort();
        if ((r == 0) != accepted)
                why = r == 0 ? "index taking: builds from text the scanner refuses"
                             : "index taking: refuses text the scanner accepts";
        if (!why && r == 0 && json_is_object(j)) {
                json_t *kept = json_object_get(j, key), *emptied = json_deep_copy(j);

                if (!emptied)
                        abort();
                if (json_is_array(kept)) {
                        json_object_set_new(emptied, key, json_array());
                        if (!seen.last || !json_equal(seen.last, kept))
                                why = "index taking: the reader did not see the array jansson keeps";
                } else if (seen.last && !kept)
                        why = "index taking: the reader saw an array jansson does not have";
                if (!why)
                        why = json_index_check_value(ix, json_index_root(ix), emptied);
                json_decref(emptied);
        }
        json_decref(seen.last);
        json_index_free(ix);
        return why;
}

static const char *json_index_take_check(const char *s, size_t len, json_t *j)
{
        const char *why = json_index_take_check_at(s, len, j, PROTO_MAX_DEPTH);

        if (!why && j && json_scan_check_depth(j) > 1 && json_scan_check_depth(j) <= PROTO_MAX_DEPTH)
                why = json_index_take_check_at(s, len, j, json_scan_check_depth(j) - 1);
        return why;
}

/* json-split over s[0..len) fed `piece` bytes at a time, as the client
 * library feeds it, splitting the array member "a": a transcript of what it
 * returned, into *ret (malloc'd); "E" at an error. For a text jansson takes
 * as the object `j` (NULL otherwise) each member's and element's text is
 * also parsed and compared with jansson's; what differs is returned. */
static const char *json_split_check_pieces(const char *s, size_t len, size_t piece, json_t *j,
                                           char **ret)
{
        char *buf = malloc(len + 1), *out = NULL;
        size_t size = 0, have = 0, pos = 0, fed = 0, members = 0, elements = 0;
        FILE *f = open_memstream(&out, &size);
        void *iter = j ? json_object_iter(j) : NULL;
        json_t *array = NULL;
        const char *why = NULL;
        bool done = false, differs = false, refused = false;
        JsonSplit js;

        if (!buf || !f)
                abort();
        json_split_init(&js, "a");
        while (!done) {
                size_t k = len - fed < piece ? len - fed : piece;

                memcpy(buf + have, s + fed, k);
                have += k;
                fed += k;
                for (;;) {
                        JsonSplitItem it;
                        int r = json_split_next(&js, buf + pos, have - pos, fed == len, &it);
                        json_t *got;

                        if (r < 0 || r == JSON_SPLIT_END) {
                                if (r == JSON_SPLIT_END)
                                        pos += json_split_taken(&js);
                                fprintf(f, r < 0 ? "error" : "end at %zu", fed - (have - pos));
                                refused = r < 0;
                                done = true;
                                break;
                        }
                        if (r == JSON_SPLIT_MORE) {
                                if (fed == len)
                                        why = "split wants more after the last byte";
                                pos += json_split_taken(&js);
                                break;
                        }
                        fprintf(f, "%d:%.*s=%.*s;", r, (int)it.key_len, it.key ? it.key : "",
                                (int)it.value_len, it.value ? it.value : "");
                        if (r == JSON_SPLIT_MEMBER || r == JSON_SPLIT_ARRAY)
                                members++;
                        if (!iter)
                                continue;
                        if (r == JSON_SPLIT_MEMBER || r == JSON_SPLIT_ARRAY) {
                                JsonScanMember m = {.key = it.key + 1, .key_len = it.key_len - 2};

                                if (!json_scan_key_is(&m, json_object_iter_key(iter)))
                                        differs = true;
                                array = json_object_iter_value(iter);
                                elements = 0;
                                if (r == JSON_SPLIT_MEMBER) {
                                        got = json_loadb(it.value, it.value_len, JSON_DECODE_ANY, NULL);
                                        if (!got || !json_equal(got, array))
                                                differs = true;
                                        json_decref(got);
                                }
                                iter = json_object_iter_next(j, iter);
                        } else if (r == JSON_SPLIT_ELEMENT) {
                                got = json_loadb(it.value, it.value_len, JSON_DECODE_ANY, NULL);
                                if (!got || !json_equal(got, json_array_get(array, elements)))
                                        differs = true;
                                json_decref(got);
                                elements++;
                        } else if (r == JSON_SPLIT_ARRAY_END && elements != json_array_size(array))
                                differs = true;
                }
                memmove(buf, buf + pos, have - pos);
                have -= pos;
                pos = 0;
        }
        if (fclose(f) != 0)
                abort();
        /* With a key given twice jansson keeps its first place and last value. */
        if (!why && j && members == json_object_size(j) && differs)
                why = "split yields other members or elements than jansson's";
        if (!why && j && members < json_object_size(j))
                why = "split yields fewer members than jansson's";
        if (!why && j && refused)
                why = "split refuses an object jansson takes";
        free(buf);
        *ret = out;
        return why;
}

static const char *json_split_check(const char *s, size_t len, json_t *j, bool accepted)
{
        /* A piece at a time costs a pass over the item in progress per
         * piece: byte by byte only for short texts. */
        static const size_t pieces[] = {1, 16, SIZE_MAX};
        char *first = NULL;
        const char *why = NULL;

        for (size_t i = len > 512 ? 1 : 0; !why && i < sizeof pieces / sizeof pieces[0]; i++) {
                char *t = NULL;

                why = json_split_check_pieces(s, len, pieces[i], accepted && json_is_object(j) ? j : NULL,
                                              &t);
                if (!why && first && strcmp(first, t) != 0)
                        why = "split reads the text differently in other pieces";
                if (first)
                        free(t);
                else
                        first = t;
        }
        free(first);
        return why;
}

/* NULL when the scanner, the member walk and the writer agree with jansson
 * about s[0..len), else what differed. */
static const char *json_scan_check(const char *s, size_t len)
{
        json_t *j = json_loadb(s, len, 0, NULL);
        bool want = j && json_scan_check_depth(j) <= PROTO_MAX_DEPTH;
        size_t b = SIZE_MAX, e = SIZE_MAX;
        bool got = json_scan_document(s, len, PROTO_MAX_DEPTH, &b, &e);
        const char *why = NULL;

        if (got != want)
                why = got ? "scanner accepts what jansson refuses" : "scanner refuses what jansson accepts";
        if (!why && got && (b >= e || e > len || (s[b] != '{' && s[b] != '[')))
                why = "scanner's value range is wrong";
        if (!why)
                why = json_scan_check_members(s, len, j, want);
        if (!why) {
                size_t f = 0;

                while (f < len && strchr(" \t\r\n", s[f]) && s[f])
                        f++;
                if (f < len && (s[f] == '{' || s[f] == '[')) {
                        static const size_t pieces[] = {1, 2, 3, 7, 16, 64, SIZE_MAX};

                        for (size_t i = 0; !why && i < sizeof pieces / sizeof pieces[0]; i++)
                                why = json_scan_check_stream(s, len, pieces[i], want, b, e);
                }
        }
        if (!why)
                why = json_index_check(s, len, j, want);
        if (!why)
                why = json_index_take_check(s, len, want ? j : NULL);
        if (!why)
                why = json_split_check(s, len, j, want);
        if (!why && want)
                why = json_scan_check_writer(j, JSON_COMPACT);
        if (!why && want) /* whitespace between every token: only re-spaced */
                why = json_scan_check_writer(j, JSON_INDENT(3));
        if (!why && want)
                why = json_scan_check_writer(j, 0);
        json_decref(j);
        return why;
}
