/* json_dumps(JSON_COMPACT) without jansson's dump; see json-dump.h. Every
 * rule below is jansson 2.14's (dump.c, strconv.c), and test-json-dump
 * compares the two on generated trees, with and without JSON_SORT_KEYS. */
#include "proto/json-dump.h"

#include "basic/macro.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef JsonOut Out;

static int reserve(Out *o, size_t n)
{
        size_t cap = o->cap ? o->cap : 1024;
        char *b;

        if (o->len + n < o->cap)
                return 0;
        while (cap <= o->len + n)
                cap *= 2;
        b = realloc(o->buf, cap);
        if (!b)
                return -ENOMEM;
        o->buf = b;
        o->cap = cap;
        return 0;
}

static int put(Out *o, const char *s, size_t n)
{
        int r = reserve(o, n);

        if (r < 0)
                return r;
        memcpy(o->buf + o->len, s, n);
        o->len += n;
        return 0;
}

/* What jansson escapes with one letter; other control characters are \u00XX. */
static const char short_escapes[0x80] = {
    ['"'] = '"', ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't',
};

/* jansson's dump_string without JSON_ENSURE_ASCII or JSON_ESCAPE_SLASH, for
 * ASCII text (anything else is jansson's to validate). */
static int put_string(Out *o, const char *s, size_t n)
{
        static const char hex[] = "0123456789ABCDEF";
        int r = reserve(o, n + 2);

        if (r < 0)
                return r;
        o->buf[o->len++] = '"';
        for (size_t i = 0; i < n;) {
                size_t run = i;
                unsigned char c;
                char esc[6];
                size_t k = 2;

                while (run < n && (unsigned char)s[run] >= 0x20 && s[run] != '"' &&
                       s[run] != '\\' && (unsigned char)s[run] < 0x80)
                        run++;
                if (run > i && (r = put(o, s + i, run - i)) < 0)
                        return r;
                if (run == n)
                        break;
                c = (unsigned char)s[run];
                if (c >= 0x80)
                        return -EOPNOTSUPP;
                esc[0] = '\\';
                esc[1] = short_escapes[c];
                if (!esc[1]) {
                        memcpy(esc + 1, "u00", 3);
                        esc[4] = hex[c >> 4];
                        esc[5] = hex[c & 0xf];
                        k = 6;
                }
                if ((r = put(o, esc, k)) < 0)
                        return r;
                i = run + 1;
        }
        if ((r = reserve(o, 1)) < 0)
                return r;
        o->buf[o->len++] = '"';
        return 0;
}

size_t json_format_integer(json_int_t v, char buf[static JSON_INTEGER_TEXT_MAX])
{
        char num[JSON_INTEGER_TEXT_MAX], *p = num + sizeof num;
        uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
        size_t n;

        do {
                *--p = (char)('0' + u % 10);
                u /= 10;
        } while (u);
        if (v < 0)
                *--p = '-';
        n = (size_t)(num + sizeof num - p);
        memcpy(buf, p, n);
        return n;
}

static int put_integer(Out *o, json_int_t v)
{
        char num[JSON_INTEGER_TEXT_MAX];

        return put(o, num, json_format_integer(v, num));
}

typedef unsigned __int128 u128;

/* 10^i and 5^i as 128-bit integers (10^38 is the largest below 2^128). */
static u128 pow10_128(unsigned i)
{
        u128 p = 1;

        while (i--)
                p *= 10;
        return p;
}

/* snprintf(b, 64, "%.17g", v) for a v whose exact decimal value is cheap to
 * have: zero, or v = m * 2^e with -32 <= e <= 10 (m < 2^53), so that m *
 * 5^-e fits in 128 bits, and printed without an exponent (1e-4 <= |v| <
 * 1e17). Wall-clock seconds (a lease's created_at, 1.7e9 with 22 binary
 * places) are such values; glibc's printf reads them through its
 * multi-precision code, ~4.5 k instructions each. The digits are the exact
 * value rounded to 17 significant ones, half to even as glibc rounds (an
 * exact half is declined anyway), trailing zeros of the fraction and a
 * bare point dropped, as %g does. Returns the length, or -1 for every
 * other value (snprintf does those). */
static int fast_g17(double v, char b[static 64])
{
        static const uint64_t e17 = UINT64_C(100000000000000000);
        bool neg = signbit(v);
        double a = fabs(v);
        char dig[17];
        uint64_t m, q;
        int exp, e, k, d = 1, x, nd = 17, n = 0;
        u128 big;

        if (a == 0) {
                memcpy(b, neg ? "-0" : "0", neg ? 3 : 2);
                return neg ? 2 : 1;
        }
        if (!isfinite(a) || a < 1e-4 || a >= 1e17)
                return -1;
        m = (uint64_t)ldexp(frexp(a, &exp), 53);
        e = exp - 53;
        while (e < 0 && !(m & 1)) {
                m >>= 1;
                e++;
        }
        if (e < -32 || e > 10)
                return -1;
        k = e < 0 ? -e : 0;
        /* a = big / 10^k exactly. */
        big = e < 0 ? (u128)m * (pow10_128((unsigned)k) >> k) : (u128)m << e;
        for (u128 p = 10; d < 39 && big >= p; p *= 10)
                d++;
        x = d - 1 - k; /* a = 0.d... * 10^(x + 1) */
        if (d > 17) {
                u128 div = pow10_128((unsigned)(d - 17)), rem = big % div;

                q = (uint64_t)(big / div);
                if (rem == div / 2)
                        return -1;
                if (rem > div / 2 && ++q == e17) {
                        q = e17 / 10;
                        x++;
                }
        } else
                q = (uint64_t)big * (uint64_t)pow10_128((unsigned)(17 - d));
        if (x < -4 || x >= 17)
                return -1;
        for (int i = 16; i >= 0; i--, q /= 10)
                dig[i] = (char)('0' + q % 10);
        while (nd > 1 && dig[nd - 1] == '0')
                nd--;
        if (neg)
                b[n++] = '-';
        if (x >= 0) {
                memcpy(b + n, dig, (size_t)x + 1);
                n += x + 1;
                if (nd > x + 1) {
                        b[n++] = '.';
                        memcpy(b + n, dig + x + 1, (size_t)(nd - x - 1));
                        n += nd - x - 1;
                }
        } else {
                b[n++] = '0';
                b[n++] = '.';
                for (int i = 0; i < -x - 1; i++)
                        b[n++] = '0';
                memcpy(b + n, dig, (size_t)nd);
                n += nd;
        }
        b[n] = '\0';
        return n;
}

/* jansson's jsonp_dtostr with its default precision (17). */
static int put_real(Out *o, double v)
{
        char b[64], *e;
        int n = fast_g17(v, b);
        size_t len;

        if (n < 0)
                n = snprintf(b, sizeof b, "%.17g", v);

        if (n < 0 || (size_t)n >= sizeof b - 3)
                return -EOPNOTSUPP;
        len = (size_t)n;
        /* A locale's decimal comma, which jansson would turn into '.'. */
        if (memchr(b, ',', len))
                return -EOPNOTSUPP;
        /* A dot or an 'e', or the real would read back as an integer. */
        if (!memchr(b, '.', len) && !memchr(b, 'e', len)) {
                memcpy(b + len, ".0", 3);
                len += 2;
        }
        /* No '+' and no leading zeros in the exponent. */
        e = memchr(b, 'e', len);
        if (e) {
                char *start = e + 1, *end = e + 2;

                if (*start == '-')
                        start++;
                while (*end == '0')
                        end++;
                if (end != start) {
                        memmove(start, end, len - (size_t)(end - b) + 1);
                        len -= (size_t)(end - start);
                }
        }
        return put(o, b, len);
}

/* jansson's compare_keys: bytes, then the shorter first. Keys of one
 * object are never equal, so qsort's order is the only one. */
typedef struct Key {
        const char *key;
        size_t len;
        const json_t *value;
} Key;

static int compare_keys(const void *a, const void *b)
{
        const Key *x = a, *y = b;
        int r = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);

        return r ? r : (x->len > y->len) - (x->len < y->len);
}

static int dump_value(Out *o, const json_t *v, unsigned depth, bool sort);

/* An object's members in key order (JSON_SORT_KEYS). */
static int dump_sorted(Out *o, const json_t *v, unsigned depth)
{
        Key small[16], *keys = small;
        size_t n = json_object_size(v), i = 0;
        int r = 0;

        if (n > sizeof small / sizeof small[0]) {
                keys = malloc(n * sizeof *keys);
                if (!keys)
                        return -ENOMEM;
        }
        for (void *it = json_object_iter((json_t *)v); it && i < n;
             it = json_object_iter_next((json_t *)v, it), i++)
                keys[i] = (Key){json_object_iter_key(it), json_object_iter_key_len(it),
                                json_object_iter_value(it)};
        qsort(keys, i, sizeof *keys, compare_keys);
        for (size_t k = 0; k < i; k++)
                if ((k && (r = put(o, ",", 1)) < 0) ||
                    (r = put_string(o, keys[k].key, keys[k].len)) < 0 ||
                    (r = put(o, ":", 1)) < 0 ||
                    (r = dump_value(o, keys[k].value, depth + 1, true)) < 0)
                        break;
        if (keys != small)
                free(keys);
        return r;
}

static int dump_value(Out *o, const json_t *v, unsigned depth, bool sort)
{
        int r;

        switch (json_typeof(v)) {
        case JSON_NULL:
                return put(o, "null", 4);
        case JSON_TRUE:
                return put(o, "true", 4);
        case JSON_FALSE:
                return put(o, "false", 5);
        case JSON_INTEGER:
                return put_integer(o, json_integer_value(v));
        case JSON_REAL:
                return put_real(o, json_real_value(v));
        case JSON_STRING:
                return put_string(o, json_string_value(v), json_string_length(v));
        case JSON_ARRAY:
                if (depth >= JSON_DUMP_MAX_DEPTH)
                        return -EOPNOTSUPP;
                if ((r = put(o, "[", 1)) < 0)
                        return r;
                for (size_t i = 0; i < json_array_size(v); i++)
                        if ((i && (r = put(o, ",", 1)) < 0) ||
                            (r = dump_value(o, json_array_get(v, i), depth + 1, sort)) < 0)
                                return r;
                return put(o, "]", 1);
        case JSON_OBJECT: {
                bool first = true;

                if (depth >= JSON_DUMP_MAX_DEPTH)
                        return -EOPNOTSUPP;
                if ((r = put(o, "{", 1)) < 0)
                        return r;
                if (sort) {
                        if ((r = dump_sorted(o, v, depth)) < 0)
                                return r;
                        return put(o, "}", 1);
                }
                /* Insertion order, as jansson's dump without JSON_SORT_KEYS. */
                for (void *it = json_object_iter((json_t *)v); it;
                     it = json_object_iter_next((json_t *)v, it)) {
                        if ((!first && (r = put(o, ",", 1)) < 0) ||
                            (r = put_string(o, json_object_iter_key(it),
                                            json_object_iter_key_len(it))) < 0 ||
                            (r = put(o, ":", 1)) < 0 ||
                            (r = dump_value(o, json_object_iter_value(it), depth + 1, false)) < 0)
                                return r;
                        first = false;
                }
                return put(o, "}", 1);
        }
        }
        return -EOPNOTSUPP;
}

static int dump(const json_t *v, bool sort, char **ret, size_t *ret_len)
{
        Out o = {0};
        int r;

        if (!json_is_object(v) && !json_is_array(v))
                return -EOPNOTSUPP;
        r = dump_value(&o, v, 0, sort);
        if (r >= 0)
                r = json_out_finish(&o, ret, ret_len);
        if (r < 0)
                json_out_done(&o);
        return r;
}

int json_dump_compact(const json_t *v, char **ret, size_t *ret_len)
{
        return dump(v, false, ret, ret_len);
}

int json_dump_compact_sorted(const json_t *v, char **ret, size_t *ret_len)
{
        return dump(v, true, ret, ret_len);
}

/* Keeps the first error of a JsonOut's calls (json-dump.h). */
static int sticky(JsonOut *o, int r)
{
        if (r < 0 && o->error == 0)
                o->error = r;
        return o->error;
}

int json_out_raw(JsonOut *o, const char *s, size_t n)
{
        return o->error ? o->error : sticky(o, put(o, s, n));
}

int json_out_string(JsonOut *o, const char *s, size_t n)
{
        return o->error ? o->error : sticky(o, put_string(o, s, n));
}

int json_out_integer(JsonOut *o, json_int_t v)
{
        return o->error ? o->error : sticky(o, put_integer(o, v));
}

int json_out_real(JsonOut *o, double v)
{
        return o->error ? o->error : sticky(o, put_real(o, v));
}

int json_out_text(JsonOut *o, const char *s)
{
        return s ? json_out_string(o, s, strlen(s)) : json_out_null(o);
}

int json_out_finish(JsonOut *o, char **ret, size_t *ret_len)
{
        int r = o->error ? o->error : sticky(o, reserve(o, 1));

        if (r < 0)
                return r;
        o->buf[o->len] = '\0';
        *ret_len = o->len;
        *ret = TAKE_PTR(o->buf);
        *o = (JsonOut){0};
        return 0;
}

void json_out_done(JsonOut *o)
{
        free(o->buf);
        *o = (JsonOut){0};
}
