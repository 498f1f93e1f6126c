/* See json-split.h. */
#include "proto/json-split.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "basic/macro.h"
#include "proto/json-scan.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

enum {
        S_OPEN,      /* before the opening brace */
        S_FIRST,     /* after it: a member or the closing brace */
        S_NEXT,      /* after a member: a comma or the closing brace */
        S_ARR_FIRST, /* after the split array's bracket: an element or its end */
        S_ARR_NEXT,  /* after an element: a comma or the array's end */
        S_END,
};

void json_split_init(JsonSplit *js, const char *split_key)
{
        assert(js);
        *js = (JsonSplit){.split_key = split_key, .state = S_OPEN};
}

size_t json_split_taken(JsonSplit *js)
{
        size_t n = js->pos;

        js->pos = 0;
        return n;
}

/* The end of the string whose quote is at s[p] (after its closing quote),
 * 0 when the closing quote is not there yet. A quote preceded by an odd
 * number of backslashes is escaped. */
static size_t string_skip(const char *s, size_t len, size_t p)
{
        for (size_t j = p + 1; j < len;) {
                const char *q = memchr(s + j, '"', len - j);
                size_t k, n = 0;

                if (!q)
                        return 0;
                k = (size_t)(q - s);
                while (k - n - 1 > p && s[k - n - 1] == '\\')
                        n++;
                if (n % 2 == 0)
                        return k + 1;
                j = k + 1;
        }
        return 0;
}

/* The bytes that decide where a container ends: bit k of each mask is set
 * when s[k] is a quote, a backslash, an opening bracket, a closing one. */
typedef struct Marks {
        uint64_t quote, backslash, open, close;
} Marks;

/* The marks of s[0..n), n <= 16: 16 bytes at once where SSE2 is there. */
static Marks marks16(const char *s, size_t n)
{
        Marks m = {};

#ifdef __SSE2__
        if (n == 16) {
                __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);

                m.quote = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')));
                m.backslash = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
                m.open = (unsigned)_mm_movemask_epi8(_mm_or_si128(
                        _mm_cmpeq_epi8(v, _mm_set1_epi8('{')), _mm_cmpeq_epi8(v, _mm_set1_epi8('['))));
                m.close = (unsigned)_mm_movemask_epi8(_mm_or_si128(
                        _mm_cmpeq_epi8(v, _mm_set1_epi8('}')), _mm_cmpeq_epi8(v, _mm_set1_epi8(']'))));
                return m;
        }
#endif
        for (size_t k = 0; k < n; k++) {
                uint64_t bit = UINT64_C(1) << k;

                if (s[k] == '"')
                        m.quote |= bit;
                else if (s[k] == '\\')
                        m.backslash |= bit;
                else if (s[k] == '{' || s[k] == '[')
                        m.open |= bit;
                else if (s[k] == '}' || s[k] == ']')
                        m.close |= bit;
        }
        return m;
}

/* The marks of s[0..64): the four quarters written out (a GPU's part of a
 * status is 10 to 65 KB; the loop and its shifts by a variable were a
 * third of the scan). */
static Marks marks64(const char *s)
{
        Marks a = marks16(s, 16), b = marks16(s + 16, 16), c = marks16(s + 32, 16),
              d = marks16(s + 48, 16);

        return (Marks){
            .quote = a.quote | b.quote << 16 | c.quote << 32 | d.quote << 48,
            .backslash = a.backslash | b.backslash << 16 | c.backslash << 32 | d.backslash << 48,
            .open = a.open | b.open << 16 | c.open << 32 | d.open << 48,
            .close = a.close | b.close << 16 | c.close << 32 | d.close << 48,
        };
}

/* Bit k: the xor of bits 0..k of x. Of a quote mask: set from an opening
 * quote up to the byte before its closing quote. */
static uint64_t prefix_xor(uint64_t x)
{
        x ^= x << 1;
        x ^= x << 2;
        x ^= x << 4;
        x ^= x << 8;
        x ^= x << 16;
        x ^= x << 32;
        return x;
}

/* The bits set in x, few here (brackets outside strings): a loop rather
 * than __builtin_popcountll(), a library call without POPCNT in the
 * baseline x86-64 instruction set. */
static size_t bits_set(uint64_t x)
{
        size_t n = 0;

        for (; x; x &= x - 1)
                n++;
        return n;
}

/* Where the container starting at s[v] ends (after its closing bracket):
 * 1 and *ret_end, or 0 when it is not all there, its scan kept in js to go
 * on from when the same item is tried again with more text (a GPU's part
 * of a status reply comes in several reads; it is scanned once). Strings
 * are followed (a bracket in one does not count; a backslash escapes the
 * byte after it), the rest is the caller's to check. */
static int container_end(JsonSplit *js, const char *s, size_t len, size_t v, size_t *ret_end)
{
        size_t i = v, skip = 0, depth = 0;
        bool in_string = false;

        if (js->scan_saved) {
                i = js->pos + js->scan_at;
                skip = i;
                depth = js->scan_depth;
                in_string = js->scan_in_string;
        }
        while (i < len) {
                size_t n = MIN(len - i, (size_t)16);
                uint64_t bits;
                Marks m;

                /* 64 bytes without a backslash at once: which bytes are in
                 * strings follows from the quotes alone (prefix_xor()), and
                 * the brackets outside them count only when the closing
                 * ones could bring the depth to 0 here. */
                if (len - i >= 64 && skip <= i && (m = marks64(s + i)).backslash == 0) {
                        uint64_t in = prefix_xor(m.quote) ^ (in_string ? ~UINT64_C(0) : 0);
                        uint64_t open = m.open & ~in, close = m.close & ~in;

                        if (bits_set(close) < depth)
                                depth = depth + bits_set(open) - bits_set(close);
                        else
                                for (bits = open | close; bits; bits &= bits - 1) {
                                        unsigned k = (unsigned)__builtin_ctzll(bits);

                                        if (open >> k & 1)
                                                depth++;
                                        else if (--depth == 0) {
                                                js->scan_saved = false;
                                                *ret_end = i + k + 1;
                                                return 1;
                                        }
                                }
                        in_string = in >> 63;
                        i += 64;
                        continue;
                }
                /* Otherwise 16 (or the last few) a mark at a time. */
                m = marks16(s + i, n);
                for (bits = m.quote | m.backslash | m.open | m.close; bits; bits &= bits - 1) {
                        size_t at = i + (size_t)__builtin_ctzll(bits);
                        char c = s[at];

                        if (at < skip)
                                continue;
                        if (in_string) {
                                if (c == '\\')
                                        skip = at + 2;
                                else if (c == '"')
                                        in_string = false;
                        } else if (c == '"')
                                in_string = true;
                        else if (c == '{' || c == '[')
                                depth++;
                        else if ((c == '}' || c == ']') && --depth == 0) {
                                js->scan_saved = false;
                                *ret_end = at + 1;
                                return 1;
                        }
                }
                i += n;
        }
        js->scan_saved = true;
        js->scan_at = MAX(i, skip) - js->pos;
        js->scan_depth = depth;
        js->scan_in_string = in_string;
        return 0;
}

/* Where the value starting at s[v] ends: 1 and *ret_end, 0 when it is not
 * all there. Only its extent (container_end()); a number or word runs to
 * the next delimiter. */
static int value_end(JsonSplit *js, const char *s, size_t len, size_t v, bool last, size_t *ret_end)
{
        size_t q;

        switch (s[v]) {
        case '"':
                q = string_skip(s, len, v);
                if (q == 0)
                        return 0;
                *ret_end = q;
                return 1;
        case '{':
        case '[':
                return container_end(js, s, len, v, ret_end);
        default:
                for (q = v; q < len; q++)
                        if (s[q] == ',' || s[q] == '}' || s[q] == ']' || json_scan_is_ws(s[q]))
                                break;
                if (q == len && !last)
                        return 0;
                if (q == v)
                        return -EBADMSG;
                *ret_end = q;
                return 1;
        }
}

/* Byte c, the first after whitespace at or after s[p]: 1 and *ret its
 * offset; JSON_SPLIT_MORE (0) when the text ends before; -EBADMSG for
 * another byte. */
static int expect(const char *s, size_t len, size_t p, char c, size_t *ret)
{
        p = json_scan_skip_ws(s, len, p);
        if (p >= len)
                return JSON_SPLIT_MORE;
        if (s[p] != c)
                return -EBADMSG;
        *ret = p;
        return 1;
}

/* A member from its key at or after s[p] (whitespace first). */
static int member(JsonSplit *js, const char *s, size_t len, size_t p, bool last, JsonSplitItem *ret)
{
        size_t k, kend, q, v, end;
        int r;

        r = expect(s, len, p, '"', &k);
        if (r <= 0)
                return r;
        kend = string_skip(s, len, k);
        if (kend == 0)
                return JSON_SPLIT_MORE;
        r = expect(s, len, kend, ':', &q);
        if (r <= 0)
                return r;
        v = json_scan_skip_ws(s, len, q + 1);
        if (v >= len)
                return JSON_SPLIT_MORE;
        *ret = (JsonSplitItem){.key = s + k, .key_len = kend - k};
        if (js->split_key && s[v] == '[' && ret->key_len == strlen(js->split_key) + 2 &&
            memcmp(s + k + 1, js->split_key, ret->key_len - 2) == 0) {
                js->pos = v + 1;
                js->state = S_ARR_FIRST;
                return JSON_SPLIT_ARRAY;
        }
        r = value_end(js, s, len, v, last, &end);
        if (r <= 0)
                return r < 0 ? r : JSON_SPLIT_MORE;
        ret->value = s + v;
        ret->value_len = end - v;
        js->pos = end;
        js->state = S_NEXT;
        return JSON_SPLIT_MEMBER;
}

/* An element at or after s[p] (whitespace first). */
static int element(JsonSplit *js, const char *s, size_t len, size_t p, bool last, JsonSplitItem *ret)
{
        size_t v = json_scan_skip_ws(s, len, p), end;
        int r;

        if (v >= len)
                return JSON_SPLIT_MORE;
        if (s[v] == ']' || s[v] == '}' || s[v] == ',')
                return -EBADMSG;
        r = value_end(js, s, len, v, last, &end);
        if (r <= 0)
                return r < 0 ? r : JSON_SPLIT_MORE;
        *ret = (JsonSplitItem){.value = s + v, .value_len = end - v};
        js->pos = end;
        js->state = S_ARR_NEXT;
        return JSON_SPLIT_ELEMENT;
}

static int next(JsonSplit *js, const char *s, size_t len, bool last, JsonSplitItem *ret)
{
        size_t p = json_scan_skip_ws(s, len, js->pos);
        bool array;

        if (js->state == S_END)
                return JSON_SPLIT_END;
        if (p >= len)
                return JSON_SPLIT_MORE;
        if (js->state == S_OPEN) {
                if (s[p] != '{')
                        return -EBADMSG;
                js->pos = p + 1;
                js->state = S_FIRST;
                return next(js, s, len, last, ret);
        }
        /* In the object or in its split array: the container's end, or
         * (after a comma but for the first) its next item. */
        array = js->state == S_ARR_FIRST || js->state == S_ARR_NEXT;
        if (s[p] == (array ? ']' : '}')) {
                js->pos = p + 1;
                js->state = array ? S_NEXT : S_END;
                return array ? JSON_SPLIT_ARRAY_END : JSON_SPLIT_END;
        }
        if (js->state == S_NEXT || js->state == S_ARR_NEXT) {
                if (s[p] != ',')
                        return -EBADMSG;
                p++;
        }
        return array ? element(js, s, len, p, last, ret) : member(js, s, len, p, last, ret);
}

int json_split_next(JsonSplit *js, const char *s, size_t len, bool last, JsonSplitItem *ret)
{
        int r;

        assert(js && ret);
        assert(s || len == 0);
        assert(js->pos <= len);
        *ret = (JsonSplitItem){};
        r = next(js, s, len, last, ret);
        if (r == JSON_SPLIT_MORE && last)
                return -EBADMSG;
        return r;
}
