/* The JSON scanner and re-spacing writer of json-scan.h: one pass over the
 * bytes, an explicit stack of at most JSON_SCAN_DEPTH_MAX container kinds
 * (a bit each) instead of recursion, nothing allocated. The rules are
 * jansson 2.14's load.c (lexer and parser, flags 0) and dump.c (indent).
 * The stream scanner (json_scan_stream_*) is the same rules and the same
 * output in one pass over text that arrives in pieces: its token scanners
 * say NEED rather than refuse where a token may go on past the piece. */
#include "proto/json-scan.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "basic/macro.h"
#include "basic/utf8.h"

/* Bytes a string may hold as they are: printable ASCII but '"' and '\\'.
 * Others (control characters, escapes, UTF-8 sequences) take the slow path. */
static const bool plain[256] = {
    [0x20 ... 0x21] = true,
    [0x23 ... 0x5B] = true, /* '"' is 0x22 */
    [0x5D ... 0x7F] = true, /* '\\' is 0x5C */
};

/* The first byte at or after s[p] that is not plain (or len). Strings are
 * most of a status reply's bytes: 16 at a time where SSE2 is there (always
 * on x86-64: json_scan_plain_stops16()). */
static size_t skip_plain(const char *s, size_t len, size_t p)
{
#ifdef __SSE2__
        while (len - p >= 16) {
                unsigned bits = json_scan_plain_stops16(s + p);

                if (bits != 0)
                        return p + (size_t)__builtin_ctz(bits);
                p += 16;
        }
#endif
        while (p < len && plain[(unsigned char)s[p]])
                p++;
        return p;
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static int hex_value(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* The four hex digits of a \u escape at s[p..p+4), or -1. */
static int32_t hex4(const char *s, size_t len, size_t p)
{
        int32_t v = 0;

        if (len - p < 4)
                return -1;
        for (size_t i = 0; i < 4; i++) {
                int h = hex_value(s[p + i]);
                if (h < 0)
                        return -1;
                v = v << 4 | h;
        }
        return v;
}

/* The character an escape at s[p] (just after the backslash) stands for,
 * surrogate pairs joined; *ret_next is the byte after it. UTF8_INVALID for
 * what jansson refuses: an unknown escape, bad hex, a lone or ill-paired
 * surrogate. \u0000 decodes to 0, which the caller refuses or compares. */
static uint32_t unescape(const char *s, size_t len, size_t p, size_t *ret_next)
{
        int32_t v, lo;

        if (p >= len)
                return UTF8_INVALID;
        *ret_next = p + 1;
        switch (s[p]) {
        case '"':
        case '\\':
        case '/':
                return (unsigned char)s[p];
        case 'b':
                return '\b';
        case 'f':
                return '\f';
        case 'n':
                return '\n';
        case 'r':
                return '\r';
        case 't':
                return '\t';
        case 'u':
                break;
        default:
                return UTF8_INVALID;
        }
        v = hex4(s, len, p + 1);
        if (v < 0 || (v >= 0xDC00 && v <= 0xDFFF))
                return UTF8_INVALID;
        *ret_next = p + 5;
        if (v < 0xD800 || v > 0xDBFF)
                return (uint32_t)v;
        if (len - *ret_next < 2 || s[*ret_next] != '\\' || s[*ret_next + 1] != 'u')
                return UTF8_INVALID;
        lo = hex4(s, len, *ret_next + 2);
        if (lo < 0xDC00 || lo > 0xDFFF)
                return UTF8_INVALID;
        *ret_next += 6;
        return 0x10000u + ((uint32_t)(v - 0xD800) << 10) + (uint32_t)(lo - 0xDC00);
}

/* What the stream scanner's token functions return when the token may go
 * on past the bytes it was given (never when they are the last). */
#define NEED SIZE_MAX

/* The longest escape (a surrogate pair, \uD83D\uDE00) or UTF-8 sequence. */
#define LONGEST_CHAR 12u

/* A string whose opening quote is at s[p]: the byte after its closing
 * quote, or 0 (never a valid end) when jansson would refuse it. Unless
 * `last`, NEED when s[0..len) ends before the string does (or closer to an
 * escape or a multi-byte character than LONGEST_CHAR). */
static size_t scan_string_part(const char *s, size_t len, size_t p, bool last)
{
        p++;
        for (;;) {
                unsigned char c;
                uint32_t cp;

                p = skip_plain(s, len, p);
                if (p >= len)
                        return last ? 0 : NEED;
                c = (unsigned char)s[p];
                if (c == '"')
                        return p + 1;
                if (!last && len - p < LONGEST_CHAR)
                        return NEED;
                if (c == '\\') {
                        cp = unescape(s, len, p + 1, &p);
                        if (cp == UTF8_INVALID || cp == 0)
                                return 0;
                        continue;
                }
                if (c < 0x20)
                        return 0;
                p += utf8_decode(s + p, len - p, &cp);
                if (cp == UTF8_INVALID)
                        return 0;
        }
}

static size_t scan_string(const char *s, size_t len, size_t p)
{
        return scan_string_part(s, len, p, true);
}

size_t json_scan_string_end_slow(const char *s, size_t len, size_t p, bool *ret_plain)
{
        size_t q = skip_plain(s, len, p + 1);

        /* Most strings (keys, names) hold no escape, control or non-ASCII
         * byte: the plain run ends at the closing quote. */
        *ret_plain = q < len && s[q] == '"';
        return *ret_plain ? q + 1 : scan_string(s, len, p);
}

/* 2^1024 - 2^970: the least decimal value strtod() rounds to infinity (the
 * midpoint between DBL_MAX and 2^1024 rounds to even, away from DBL_MAX). */
static const char overflow_digits[] =
    "17976931348623158079372897140530341507993413271003782693617377898044496829276475094664901797"
    "75872070963302864166928879109465555478519404026306574886715058206819089020007083836762738548"
    "45817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711"
    "559699508093042880177904174497792";

/* Whether the real number s[b..e) (grammar already checked) overflows a
 * double, as jansson's strtod() check finds: exactly, and without copying it
 * into a NUL-terminated buffer or depending on the locale's decimal point. */
static bool real_overflows(const char *s, size_t b, size_t e)
{
        size_t p = b, first = 0, k;
        int64_t exp10 = 0, exp = 0;
        bool in_frac = false, found = false, exp_neg = false;

        if (s[p] == '-')
                p++;
        /* Value = 0.d1d2d3... * 10^exp10 with d1 the first nonzero digit. */
        for (; p < e && s[p] != 'e' && s[p] != 'E'; p++) {
                if (s[p] == '.') {
                        in_frac = true;
                        continue;
                }
                if (!found && s[p] == '0') {
                        if (in_frac)
                                exp10--;
                        continue;
                }
                if (!found) {
                        found = true;
                        first = p;
                }
                if (!in_frac)
                        exp10++;
        }
        if (!found)
                return false;
        if (p < e) {
                p++;
                if (s[p] == '+' || s[p] == '-')
                        exp_neg = s[p++] == '-';
                for (; p < e; p++)
                        if (exp < 1000000000)
                                exp = exp * 10 + (s[p] - '0');
        }
        exp10 += exp_neg ? -exp : exp;
        if (exp10 != (int64_t)sizeof overflow_digits - 1)
                return exp10 > (int64_t)sizeof overflow_digits - 1;
        /* As many digits as the threshold: compare them in order. */
        k = 0;
        for (p = first; p < e && s[p] != 'e' && s[p] != 'E'; p++) {
                if (s[p] == '.')
                        continue;
                if (k == sizeof overflow_digits - 1)
                        return true; /* equal so far, and more digits: at least as large */
                if (s[p] != overflow_digits[k])
                        return s[p] > overflow_digits[k];
                k++;
        }
        return k == sizeof overflow_digits - 1;
}

/* A run of at least one digit at s[p]: the byte after it, else 0. */
static size_t scan_digits(const char *s, size_t len, size_t p)
{
        if (p >= len || !is_digit(s[p]))
                return 0;
        while (p < len && is_digit(s[p]))
                p++;
        return p;
}

/* A number starting at s[p]: the byte after it, or 0 when jansson refuses
 * it (grammar, an integer outside int64_t, a real that overflows). */
static size_t scan_number(const char *s, size_t len, size_t p)
{
        size_t b = p, digits;
        bool real = false, neg;

        if (s[p] == '-')
                p++;
        if (p < len && s[p] == '0') {
                p++;
                if (p < len && is_digit(s[p]))
                        return 0;
        } else if ((p = scan_digits(s, len, p)) == 0)
                return 0;
        if (p < len && s[p] == '.') {
                p = scan_digits(s, len, p + 1);
                if (p == 0)
                        return 0;
                real = true;
        }
        if (p < len && (s[p] == 'e' || s[p] == 'E')) {
                p++;
                if (p < len && (s[p] == '+' || s[p] == '-'))
                        p++;
                p = scan_digits(s, len, p);
                if (p == 0)
                        return 0;
                real = true;
        }
        if (real)
                return real_overflows(s, b, p) ? 0 : p;

        /* strtoll()'s range; only "0" starts with a zero, so the count of
         * digits gives the magnitude. */
        neg = s[b] == '-';
        digits = p - b - neg;
        if (digits < 19)
                return p;
        if (digits > 19)
                return 0;
        return memcmp(s + b + neg, neg ? "9223372036854775808" : "9223372036854775807", 19) <= 0
                   ? p
                   : 0;
}

size_t json_scan_number_end(const char *s, size_t len, size_t p)
{
        return scan_number(s, len, p);
}

/* A key and its colon, at or after s[p]: the byte after the colon, or 0. */
static size_t scan_key(const char *s, size_t len, size_t p)
{
        p = json_scan_skip_ws(s, len, p);
        if (p >= len || s[p] != '"')
                return 0;
        p = scan_string(s, len, p);
        if (p == 0)
                return 0;
        p = json_scan_skip_ws(s, len, p);
        if (p >= len || s[p] != ':')
                return 0;
        return p + 1;
}

/* One value at or after s[p] (whitespace skipped first) inside `depth` open
 * containers: the byte after it, or 0 (no value ends there) when jansson
 * would refuse it or it nests deeper than max_depth. Containers are a stack
 * of bits (object or array) rather than recursion. */
static size_t scan_value(const char *s, size_t len, size_t p, unsigned depth, unsigned max_depth)
{
        uint64_t objects = 0; /* bit i: the container opened at level i is an object */
        unsigned level = 0;   /* containers this call opened and has not closed */

        assert(max_depth <= JSON_SCAN_DEPTH_MAX);
        for (;;) {
                char c;

                p = json_scan_skip_ws(s, len, p);
                if (p >= len)
                        return 0;
                c = s[p];
                if (c == '{' || c == '[') {
                        if (depth + level + 1 > max_depth)
                                return 0;
                        p = json_scan_skip_ws(s, len, p + 1);
                        if (p < len && s[p] == (c == '{' ? '}' : ']'))
                                p++; /* empty: a complete value */
                        else {
                                objects &= ~(UINT64_C(1) << level);
                                if (c == '{') {
                                        objects |= UINT64_C(1) << level;
                                        p = scan_key(s, len, p);
                                        if (p == 0)
                                                return 0;
                                }
                                level++;
                                continue;
                        }
                } else if (c == '"')
                        p = scan_string(s, len, p);
                else {
                        p = c == '-' || is_digit(c) ? scan_number(s, len, p)
                                                    : json_scan_literal_end(s, len, p);
                        /* jansson's lexer reads one byte past a number or a
                         * word and puts it back; a NUL put back is lost. */
                        if (p != 0 && p < len && s[p] == '\0')
                                p++;
                }
                if (p == 0)
                        return 0;

                /* After a value: close what ends here, then the next element. */
                for (;;) {
                        bool object;

                        if (level == 0)
                                return p;
                        object = objects >> (level - 1) & 1;
                        p = json_scan_skip_ws(s, len, p);
                        if (p >= len)
                                return 0;
                        if (s[p] == (object ? '}' : ']')) {
                                p++;
                                level--;
                                continue;
                        }
                        if (s[p] != ',')
                                return 0;
                        p++;
                        if (object) {
                                p = scan_key(s, len, p);
                                if (p == 0)
                                        return 0;
                        }
                        break;
                }
        }
}

bool json_scan_document(const char *s, size_t len, unsigned max_depth, size_t *ret_begin,
                        size_t *ret_end)
{
        size_t b, e;

        assert(s || len == 0);
        assert(max_depth >= 1 && max_depth <= JSON_SCAN_DEPTH_MAX);

        b = json_scan_skip_ws(s, len, 0);
        if (b >= len || (s[b] != '{' && s[b] != '['))
                return false;
        e = scan_value(s, len, b, 0, max_depth);
        if (e == 0 || json_scan_skip_ws(s, len, e) != len)
                return false;
        if (ret_begin)
                *ret_begin = b;
        if (ret_end)
                *ret_end = e;
        return true;
}

void json_scan_members_init(JsonScanMembers *it, const char *s, size_t len, unsigned max_depth)
{
        assert(it);
        assert(s || len == 0);
        assert(max_depth >= 1 && max_depth <= JSON_SCAN_DEPTH_MAX);
        *it = (JsonScanMembers){.s = s, .len = len, .max_depth = max_depth};
}

static int members_fail(JsonScanMembers *it)
{
        it->state = -1;
        return -EBADMSG;
}

int json_scan_members_next(JsonScanMembers *it, JsonScanMember *ret)
{
        const char *s = it->s;
        size_t len = it->len, p = it->pos, key, value, end;

        assert(ret);
        switch (it->state) {
        case 0:
                p = json_scan_skip_ws(s, len, p);
                if (p >= len || s[p] != '{')
                        return members_fail(it);
                p = json_scan_skip_ws(s, len, p + 1);
                if (p < len && s[p] == '}') {
                        it->pos = p + 1;
                        it->state = 2;
                        return json_scan_members_next(it, ret);
                }
                break;
        case 1:
                break;
        case 2:
                return json_scan_skip_ws(s, len, p) == len ? 0 : members_fail(it);
        default:
                return -EBADMSG;
        }

        p = json_scan_skip_ws(s, len, p);
        if (p >= len || s[p] != '"')
                return members_fail(it);
        key = p + 1;
        p = scan_key(s, len, p);
        if (p == 0)
                return members_fail(it);
        value = json_scan_skip_ws(s, len, p);
        end = scan_value(s, len, value, 1, it->max_depth);
        if (end == 0)
                return members_fail(it);
        /* The closing quote is the last byte before the colon that is not whitespace. */
        ret->key = s + key;
        ret->key_len = (size_t)((const char *)memrchr(s + key, '"', p - key) - (s + key));
        ret->value = s + value;
        /* Not the NUL jansson drops after a number or a word (scan_value
         * stepped over it): the value's own text is before it. */
        ret->value_len = end - value - (s[end - 1] == '\0');

        p = json_scan_skip_ws(s, len, end);
        if (p < len && s[p] == ',')
                it->state = 1;
        else if (p < len && s[p] == '}')
                it->state = 2;
        else
                return members_fail(it);
        it->pos = p + 1;
        return 1;
}

/* The next character of a string's text from s[*pos] (escapes decoded when
 * `escaped`): its code point, *pos moved past it. The text was validated. */
static uint32_t next_char(const char *s, size_t len, size_t *pos, bool escaped)
{
        uint32_t cp;

        if (escaped && s[*pos] == '\\')
                return unescape(s, len, *pos + 1, pos);
        *pos += utf8_decode(s + *pos, len - *pos, &cp);
        return cp;
}

static bool text_equal(const char *a, size_t alen, bool aesc, const char *b, size_t blen, bool besc)
{
        size_t i = 0, j = 0;

        while (i < alen && j < blen)
                if (next_char(a, alen, &i, aesc) != next_char(b, blen, &j, besc))
                        return false;
        return i == alen && j == blen;
}

bool json_scan_key_is(const JsonScanMember *m, const char *key)
{
        assert(m);
        assert(key);
        return text_equal(m->key, m->key_len, true, key, strlen(key), false);
}

bool json_scan_keys_equal(const JsonScanMember *a, const JsonScanMember *b)
{
        assert(a);
        assert(b);
        return text_equal(a->key, a->key_len, true, b->key, b->key_len, true);
}

/* ---- Decoding ---------------------------------------------------------------------------- */

/* cp (at most U+10FFFF, not a surrogate) as UTF-8 at out: the bytes written. */
static size_t put_utf8(char *out, uint32_t cp)
{
        if (cp < 0x80) {
                out[0] = (char)cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (char)(0xC0 | cp >> 6);
                out[1] = (char)(0x80 | (cp & 0x3F));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (char)(0xE0 | cp >> 12);
                out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
                out[2] = (char)(0x80 | (cp & 0x3F));
                return 3;
        }
        out[0] = (char)(0xF0 | cp >> 18);
        out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        return 4;
}

size_t json_scan_string_decode(const char *s, size_t len, size_t p, char *out, size_t *ret_len)
{
        size_t n = 0;

        assert(s && p < len && s[p] == '"');
        assert(out && ret_len);
        p++;
        for (;;) {
                size_t e = skip_plain(s, len, p);
                uint32_t cp;

                memcpy(out + n, s + p, e - p);
                n += e - p;
                p = e;
                assert(p < len);
                if (s[p] == '"')
                        break;
                if (s[p] == '\\') {
                        cp = unescape(s, len, p + 1, &p);
                        assert(cp != UTF8_INVALID && cp != 0);
                        n += put_utf8(out + n, cp);
                        continue;
                }
                /* A byte of a UTF-8 sequence (validated): as it stands. */
                out[n++] = s[p++];
        }
        *ret_len = n;
        return p + 1;
}

/* ---- Writer ----------------------------------------------------------------------------- */

/* Output gathered in o->buf and handed to stdio a whole buffer at a time
 * (an fwrite per token costs more than the copy; pieces of exactly
 * JSON_SCAN_OUT_SIZE go out as one write(2) each while stdio's own buffer is
 * empty, which it is when nothing else writes between them). */
static void out_flush(JsonScanOut *o)
{
        if (o->n > 0)
                fwrite_unlocked(o->buf, 1, o->n, o->f);
        o->n = 0;
}

/* Not inlined: it is the rare path, and GCC's -O3 (release builds) inlines it
 * into out_indent() and then warns about the loop below reading past the
 * indentation string, a path that cannot run there (len <= 129 there). */
static __attribute__((noinline)) void out_put_slow(JsonScanOut *o, const char *s, size_t len)
{
        size_t k = sizeof o->buf - o->n;

        memcpy(o->buf + o->n, s, k);
        o->n += k;
        s += k;
        len -= k;
        out_flush(o);
        for (; len >= sizeof o->buf; s += sizeof o->buf, len -= sizeof o->buf)
                fwrite_unlocked(s, 1, sizeof o->buf, o->f);
        memcpy(o->buf, s, len);
        o->n = len;
}

static inline void out_put(JsonScanOut *o, const char *s, size_t len)
{
        if (len > sizeof o->buf - o->n) {
                out_put_slow(o, s, len);
                return;
        }
        memcpy(o->buf + o->n, s, len);
        o->n += len;
}

#define SPACES16 "                "
/* A newline and two spaces per level, as JSON_INDENT(2) writes before an
 * element and before a closing bracket. */
static void out_indent(JsonScanOut *o, unsigned depth)
{
        static const char indent[] = "\n" SPACES16 SPACES16 SPACES16 SPACES16 SPACES16 SPACES16
            SPACES16 SPACES16;

        _Static_assert(sizeof indent - 2 >= 2 * JSON_SCAN_DEPTH_MAX, "indent too short");
        out_put(o, indent, 1 + 2 * (size_t)depth);
}

/* The byte after the string whose opening quote is at s[p] (validated). */
static size_t string_end(const char *s, size_t len, size_t p)
{
        for (p++;; p++) {
                p = skip_plain(s, len, p);
                assert(p < len);
                if (s[p] == '"')
                        return p + 1;
                if (s[p] == '\\')
                        p++; /* and the escaped character; \u's digits are plain */
        }
}

static bool is_delimiter(char c)
{
        return json_scan_is_ws(c) || c == ',' || c == ']' || c == '}' || c == ':' || c == '\0';
}

void json_scan_write_indented(FILE *f, const char *s, size_t len)
{
        JsonScanOut o;
        unsigned depth = 0;
        size_t p = 0, e;

        assert(f);
        assert(s || len == 0);
        o.f = f;
        o.n = 0;
        while (p < len) {
                switch (s[p]) {
                case '"':
                        e = string_end(s, len, p);
                        out_put(&o, s + p, e - p);
                        p = e;
                        break;
                case '{':
                case '[':
                        e = json_scan_skip_ws(s, len, p + 1);
                        if (e < len && s[e] == (s[p] == '{' ? '}' : ']')) {
                                out_put(&o, s[p] == '{' ? "{}" : "[]", 2);
                                p = e + 1;
                                break;
                        }
                        out_put(&o, s + p, 1);
                        out_indent(&o, ++depth);
                        p = e;
                        break;
                case '}':
                case ']':
                        assert(depth > 0);
                        out_indent(&o, --depth);
                        out_put(&o, s + p, 1);
                        p++;
                        break;
                case ',':
                        out_put(&o, ",", 1);
                        out_indent(&o, depth);
                        p++;
                        break;
                case ':':
                        out_put(&o, ": ", 2);
                        p++;
                        break;
                case ' ':
                case '\t':
                case '\n':
                case '\r':
                case '\0': /* the one jansson drops after a number or word */
                        p++;
                        break;
                default: /* a number or literal */
                        for (e = p + 1; e < len && !is_delimiter(s[e]); e++)
                                ;
                        out_put(&o, s + p, e - p);
                        p = e;
                        break;
                }
        }
        out_flush(&o);
}

/* ---- Scanning and writing a value that arrives in pieces -------------------------------- */

enum {
        STREAM_VALUE, /* a value comes next */
        STREAM_KEY,   /* a key and its colon come next (inside an object) */
        STREAM_AFTER, /* after a value inside a container: ',' or its closing bracket */
        STREAM_DONE,
        STREAM_FAILED,
};

void json_scan_stream_init(JsonScanStream *st, FILE *f, unsigned depth, unsigned max_depth)
{
        assert(st);
        assert(f);
        assert(max_depth >= 1 && max_depth <= JSON_SCAN_DEPTH_MAX && depth < max_depth);
        st->objects = 0;
        st->level = 0;
        st->depth = depth;
        st->max_depth = max_depth;
        st->state = STREAM_VALUE;
        st->out.f = f;
        st->out.n = 0;
}

/* A number or word at s[p]: the byte after it, 0 when jansson refuses it,
 * NEED when it may go on past s[0..len) (unless `last`). */
static size_t scan_word_part(const char *s, size_t len, size_t p, bool last)
{
        size_t e;

        e = json_scan_plain_integer_end(s, len, p);
        if (e != 0)
                return e;
        e = s[p] == '-' || is_digit(s[p]) ? scan_number(s, len, p)
                                           : json_scan_literal_end(s, len, p);

        if (!last && (e == 0 || e == len)) {
                size_t t = p;

                while (t < len && !is_delimiter(s[t]))
                        t++;
                if (t == len)
                        return NEED;
        }
        return e;
}

/* A string at s[p] whose closing quote comes within the 16 bytes after its
 * opening one, with nothing but printable ASCII before it: the byte after
 * it, else 0 (the caller takes the general path). Most strings of a status
 * reply are keys and short values. */
static inline size_t short_string(const char *s, size_t len, size_t p)
{
#ifdef __SSE2__
        if (len - p > 16) {
                __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + p + 1));
                __m128i stop = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                                            _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
                unsigned q = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')));
                unsigned x = (unsigned)_mm_movemask_epi8(stop);

                /* The first quote, with nothing to stop at before it. */
                if (q != 0 && (x & ((q & -q) - 1)) == 0)
                        return p + 2 + (size_t)__builtin_ctz(q);
        }
#endif
        return 0;
}

/* A string at s[p] as the stream scanner takes it: the short path first,
 * then scan_string_part() (0: refused, NEED: more bytes wanted). */
static inline size_t stream_string(const char *s, size_t len, size_t p, bool last)
{
        size_t e = short_string(s, len, p);

        return e != 0 ? e : scan_string_part(s, len, p, last);
}

/* out_put() of s[b..e) where s is readable to s[len): runs of up to 16
 * bytes (most) are one unaligned load and store while 16 bytes are
 * readable and there is room for 16. */
static inline void out_run(JsonScanOut *o, const char *s, size_t len, size_t b, size_t e)
{
#ifdef __SSE2__
        if (e - b <= 16 && len - b >= 16 && sizeof o->buf - o->n >= 16) {
                _mm_storeu_si128((__m128i *)(void *)(o->buf + o->n),
                                 _mm_loadu_si128((const __m128i *)(const void *)(s + b)));
                o->n += e - b;
                return;
        }
#endif
        out_put(o, s + b, e - b);
}

/* out_indent() with the same shortcut for the first 7 levels. */
static inline void out_indent_fast(JsonScanOut *o, unsigned depth)
{
#ifdef __SSE2__
        static const char nl[16] = "\n               ";

        if (depth <= 7 && sizeof o->buf - o->n >= 16) {
                _mm_storeu_si128((__m128i *)(void *)(o->buf + o->n),
                                 _mm_loadu_si128((const __m128i *)(const void *)nl));
                o->n += 1 + 2 * (size_t)depth;
                return;
        }
#endif
        out_indent(o, depth);
}

/* The word at s[p] when it is true, false or null and a byte follows it
 * (so it cannot go on past s[0..len)): the byte after it, else 0. */
static inline size_t short_literal(const char *s, size_t len, size_t p)
{
        uint32_t w;

        if (len - p < 6)
                return 0;
        memcpy(&w, s + p, 4);
        if (memcmp(&w, "null", 4) == 0 || memcmp(&w, "true", 4) == 0)
                return p + 4;
        if (memcmp(&w, "fals", 4) == 0 && s[p + 4] == 'e')
                return p + 5;
        return 0;
}

/* An integer at s[p] of 1 to 18 digits without sign, fraction or exponent,
 * and a byte after it: always in int64_t's range, the byte after it; else
 * 0 (scan_word_part() decides). */
static inline size_t short_integer(const char *s, size_t len, size_t p)
{
        size_t e;

        if (s[p] < '1' || s[p] > '9')
                return 0;
        for (e = p + 1; e < len && is_digit(s[e]); e++)
                ;
        return e < len && e - p < 19 && s[e] != '.' && s[e] != 'e' && s[e] != 'E' ? e : 0;
}

/* The rules of scan_value() (the same checks in the same order), resumable
 * at token boundaries, writing as json_scan_write_indented() does. The
 * states are labels (a value next, a key next, after a value) rather than
 * a switch in a loop: the common paths (key, value, comma) run straight
 * from one to the next. Output is copied in runs: from `run` to the
 * current token the bytes are the input's; only whitespace and the
 * re-spacing break a run. */
int json_scan_stream_feed(JsonScanStream *st, const char *s, size_t len, bool last,
                          size_t *ret_consumed)
{
        JsonScanOut *o = &st->out;
        uint64_t objects = st->objects;
        unsigned level = st->level;
        int state = st->state;
        size_t p = 0, run = 0, e, q;
        char c;

        assert(s || len == 0);
        assert(ret_consumed);
        switch (state) {
        case STREAM_VALUE:
                goto value;
        case STREAM_KEY:
                goto key;
        case STREAM_AFTER:
                goto after;
        case STREAM_DONE:
                goto done;
        default:
                return -EBADMSG;
        }

value:
        state = STREAM_VALUE;
        if (p >= len)
                goto out_of_bytes;
        c = s[p];
        if (c == '"') {
                e = stream_string(s, len, p, last);
                if (e == NEED)
                        goto need;
                if (e == 0)
                        goto fail;
                p = e;
                goto value_done;
        }
        if ((e = short_integer(s, len, p)) > 0 || (e = short_literal(s, len, p)) > 0) {
                p = e;
                goto word_done;
        }
        if (c == '{' || c == '[') {
                char close = c == '{' ? '}' : ']';

                if (st->depth + level + 1 > st->max_depth)
                        goto fail;
                e = json_scan_skip_ws(s, len, p + 1);
                if (e >= len)
                        goto out_of_bytes;
                if (s[e] == close) { /* empty: "{}" or "[]" */
                        if (e > p + 1) {
                                out_run(o, s, len, run, p + 1);
                                run = e;
                        }
                        p = e + 1;
                        goto value_done;
                }
                objects &= ~(UINT64_C(1) << level);
                if (c == '{')
                        objects |= UINT64_C(1) << level;
                level++;
                out_run(o, s, len, run, p + 1);
                out_indent_fast(o, level);
                p = run = e;
                if (c == '{')
                        goto key;
                goto value;
        }
        if (json_scan_is_ws(c)) {
                out_run(o, s, len, run, p);
                p = run = json_scan_skip_ws(s, len, p);
                goto value;
        }
        e = scan_word_part(s, len, p, last);
        if (e == NEED)
                goto need;
        if (e == 0)
                goto fail;
        p = e;
word_done:
        if (p < len && s[p] == '\0') {
                /* jansson's lexer reads one byte past a number or a word
                 * and puts it back; a NUL put back is lost. */
                out_run(o, s, len, run, p);
                run = ++p;
        }
value_done:
        if (level == 0)
                goto done;
after:
        state = STREAM_AFTER;
        if (p >= len)
                goto out_of_bytes;
        c = s[p];
        if (c == ',') {
                out_run(o, s, len, run, p + 1);
                out_indent_fast(o, level);
                p = run = p + 1;
                if (objects >> (level - 1) & 1)
                        goto key;
                goto value;
        }
        if (c == (objects >> (level - 1) & 1 ? '}' : ']')) {
                out_run(o, s, len, run, p);
                out_indent_fast(o, --level);
                out_put(o, &c, 1);
                p = run = p + 1;
                goto value_done;
        }
        if (json_scan_is_ws(c)) {
                out_run(o, s, len, run, p);
                p = run = json_scan_skip_ws(s, len, p);
                goto after;
        }
        goto fail;

key:
        state = STREAM_KEY;
        if (p >= len)
                goto out_of_bytes;
        c = s[p];
        if (c != '"') {
                if (!json_scan_is_ws(c))
                        goto fail;
                out_run(o, s, len, run, p);
                p = run = json_scan_skip_ws(s, len, p);
                goto key;
        }
        e = stream_string(s, len, p, last);
        if (e == NEED)
                goto need;
        if (e == 0)
                goto fail;
        q = e < len && s[e] == ':' ? e : json_scan_skip_ws(s, len, e);
        if (q >= len)
                goto out_of_bytes;
        if (s[q] != ':')
                goto fail;
        out_run(o, s, len, run, e);
        out_put(o, ": ", 2);
        p = run = q + 1;
        goto value;

out_of_bytes:
        if (last)
                goto fail;
need:
        out_run(o, s, len, run, p);
        st->objects = objects;
        st->level = level;
        st->state = state;
        *ret_consumed = p;
        return 0;

done:
        out_run(o, s, len, run, p);
        st->level = level;
        st->state = STREAM_DONE;
        *ret_consumed = p;
        return 1;

fail:
        st->state = STREAM_FAILED;
        return -EBADMSG;
}

void json_scan_stream_flush(JsonScanStream *st)
{
        assert(st);
        out_flush(&st->out);
}
