/* Terminal text for the CLI: terminal detection and printing untrusted
 * strings into fixed-width fields. See text.h for the rules. A field or
 * clip of printable ASCII that fits (most of what `status` prints, a few
 * per process line) is measured once and written in one call. */
#include "cli/text.h"

#include <langinfo.h>
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <wchar.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "basic/macro.h"
#include "basic/utf8.h"


/* One character as it will be printed: the bytes to write and its columns. */
typedef struct glyph {
        const char *bytes;
        size_t len;
        size_t width;
        const char *next; /* where the following character starts */
} glyph;

/* The LC_CTYPE locale's name as setlocale(LC_CTYPE, "") would pick it:
 * LC_ALL, LC_CTYPE, then LANG, the first that is set and not empty. */
static const char *ctype_name(void)
{
        static const char *const vars[] = {"LC_ALL", "LC_CTYPE", "LANG"};

        for (size_t i = 0; i < ELEMENTSOF(vars); i++) {
                const char *v = getenv(vars[i]);

                if (v && v[0])
                        return v;
        }
        return NULL;
}

/* Whether a locale name spells its codeset as UTF-8 ("C.UTF-8",
 * "de_DE.utf8@euro"): glibc normalises the codeset by dropping everything
 * but letters and digits and lowering case, so "UTF-8", "utf8" and "Utf_8"
 * are one. A name without a codeset says nothing by itself. */
static bool name_says_utf8(const char *name)
{
        const char *dot = name ? strchr(name, '.') : NULL;
        char norm[8];
        size_t n = 0;

        if (!dot)
                return false;
        for (const char *p = dot + 1; *p && *p != '@'; p++) {
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
                        continue;
                if (n + 1 >= sizeof norm)
                        return false;
                norm[n++] = (char)(*p | 0x20);
        }
        norm[n] = '\0';
        return strcmp(norm, "utf8") == 0;
}

static bool locale_loaded;

/* Character widths need the user's LC_CTYPE (numbers stay in the C
 * locale). It is loaded the first time it is needed, not at startup:
 * setlocale() maps the locale's files (five system calls, a 350 KB map,
 * about 0.4 ms on a VM), and a view of plain ASCII never needs them. */
static void load_locale(void)
{
        if (!locale_loaded) {
                setlocale(LC_CTYPE, "");
                locale_loaded = true;
        }
}

void cli_term_detect(FILE *f, cli_term *ret)
{
        bool unicode;

        /* A name that spells its codeset as UTF-8 is taken at its word, so
         * the locale's files wait until a character outside ASCII must be
         * measured (next_glyph()); if they turn out not to be installed,
         * such characters print as '?'. Any other name is loaded now and
         * asked. */
        if (name_says_utf8(ctype_name()))
                unicode = true;
        else {
                load_locale();
                unicode = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
        }
        const char *no_color = getenv("NO_COLOR"), *term = getenv("TERM");
        int fd = fileno(f);
        bool tty = fd >= 0 && isatty(fd);
        struct winsize ws;
        cli_term t = {
            /* no-color.org: set and non-empty disables colour. */
            .color = tty && !(no_color && no_color[0]) && !(term && strcmp(term, "dumb") == 0),
            .unicode = unicode,
            .columns = CLI_TERM_MIN_COLUMNS,
            .tty = tty,
        };

        if (tty && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > CLI_TERM_MIN_COLUMNS)
                t.columns = MIN((size_t)ws.ws_col, (size_t)CLI_TERM_MAX_COLUMNS);
        *ret = t;
}

/* Characters that would change what the terminal shows elsewhere: C0/C1
 * controls (escape sequences, newlines, tabs), DEL, and the bidirectional
 * embedding/override/isolate marks that reorder the rest of the line. */
static bool codepoint_is_hostile(uint32_t cp)
{
        return cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || cp == 0x061c || cp == 0x200e ||
               cp == 0x200f || cp == 0x2028 || cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) ||
               (cp >= 0x2066 && cp <= 0x2069);
}

static void next_glyph(const char *s, bool unicode, glyph *ret)
{
        uint32_t cp;
        size_t n = utf8_decode(s, SIZE_MAX, &cp);
        int w;

        *ret = (glyph){.bytes = "?", .len = 1, .width = 1, .next = s + n};
        if (cp == UTF8_INVALID || codepoint_is_hostile(cp))
                return;
        if (cp < 0x80) {
                *ret = (glyph){.bytes = s, .len = 1, .width = 1, .next = s + 1};
                return;
        }
        if (!unicode)
                return;
        /* glibc's wchar_t is UCS-4 in every locale (__STDC_ISO_10646__). */
        load_locale();
        w = wcwidth((wchar_t)cp);
        if (w < 0)
                return;
        *ret = (glyph){.bytes = s, .len = n, .width = (size_t)w, .next = s + n};
}

/* Printable ASCII (0x20..0x7e) is most of what the views print: one byte,
 * one column, printed as itself, so a run of it is measured and written in
 * one go instead of a glyph at a time (a status at 4,096 processes prints
 * 1 MB of it). Everything else goes through next_glyph(). */
static size_t plain_run(const char *s)
{
        const unsigned char *p = (const unsigned char *)s;

#ifdef __SSE2__
        /* Sixteen bytes at a time within the string (strlen() first: no
         * read past its NUL), a command line of 80 bytes in five looks
         * instead of eighty. As signed bytes, 0x80 and up are negative: one
         * compare finds them with the controls; DEL is the other stop. */
        size_t len = strlen(s), i = 0;

        for (; len - i >= 16; i += 16) {
                __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
                unsigned stop = (unsigned)_mm_movemask_epi8(
                        _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                                     _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f))));

                if (stop)
                        return i + (size_t)__builtin_ctz(stop);
        }
        p += i;
#endif
        while (*p >= 0x20 && *p < 0x7f)
                p++;
        return (size_t)(p - (const unsigned char *)s);
}

size_t cli_text_width(const char *s, bool unicode)
{
        size_t width = 0, n;
        glyph g;

        for (const char *p = s; *p;) {
                n = plain_run(p);
                if (n > 0) {
                        width += n;
                        p += n;
                        continue;
                }
                next_glyph(p, unicode, &g);
                width += g.width;
                p = g.next;
        }
        return width;
}

size_t cli_text_clip(FILE *f, const char *s, size_t max_columns, bool unicode)
{
        const char *ellipsis = unicode ? "…" : "...";
        size_t ellipsis_width = unicode ? 1 : 3, budget, used = 0, n;
        glyph g;

        /* All printable ASCII that fits (user names, numbers, most command
         * lines): written in one go, measured once. */
        n = plain_run(s);
        if (!s[n] && n <= max_columns) {
                if (f && n > 0)
                        fwrite_unlocked(s, 1, n, f);
                return n;
        }
        if (cli_text_width(s, unicode) <= max_columns)
                budget = max_columns;
        else if (max_columns >= ellipsis_width)
                budget = max_columns - ellipsis_width;
        else /* no room even for the ellipsis: cut bare */
                budget = max_columns, ellipsis = NULL;

        for (const char *p = s; *p;) {
                n = plain_run(p);
                if (n > 0) {
                        /* used <= budget holds throughout */
                        bool cut = n > budget - used;

                        if (cut)
                                n = budget - used;
                        if (f && n > 0)
                                fwrite_unlocked(p, 1, n, f);
                        used += n;
                        p += n;
                        if (cut)
                                break;
                        if (!*p) /* everything fitted */
                                return used;
                        continue;
                }
                next_glyph(p, unicode, &g);
                if (used + g.width > budget)
                        break;
                if (f)
                        fwrite_unlocked(g.bytes, 1, g.len, f);
                used += g.width;
                if (!*g.next) /* everything fitted */
                        return used;
                p = g.next;
        }
        if (!*s)
                return 0;
        if (ellipsis) {
                if (f)
                        fputs_unlocked(ellipsis, f);
                used += ellipsis_width;
        }
        return used;
}

void cli_text_spaces(FILE *f, size_t n)
{
        static const char spaces[] = "                                                                ";

        while (n > 0) {
                size_t k = MIN(n, sizeof spaces - 1);

                fwrite_unlocked(spaces, 1, k, f);
                n -= k;
        }
}

size_t cli_text_plain(const char *s)
{
        return plain_run(s);
}

void cli_text_field(FILE *f, const char *s, size_t columns, cli_align align, bool unicode)
{
        size_t n = plain_run(s), width;

        /* Printable ASCII that fits, the usual field: one measure, one write. */
        if (!s[n] && n <= columns) {
                if (align == CLI_ALIGN_RIGHT)
                        cli_text_spaces(f, columns - n);
                fwrite_unlocked(s, 1, n, f);
                if (align == CLI_ALIGN_LEFT)
                        cli_text_spaces(f, columns - n);
                return;
        }
        width = cli_text_clip(NULL, s, columns, unicode);

        if (align == CLI_ALIGN_RIGHT)
                cli_text_spaces(f, columns - width);
        cli_text_clip(f, s, columns, unicode);
        if (align == CLI_ALIGN_LEFT)
                cli_text_spaces(f, columns - width);
}

static void print_range(FILE *f, const char *from, const char *to, bool unicode)
{
        glyph g;

        for (const char *p = from; p < to;) {
                size_t n = MIN(plain_run(p), (size_t)(to - p));

                if (n > 0) {
                        fwrite_unlocked(p, 1, n, f);
                        p += n;
                        continue;
                }
                next_glyph(p, unicode, &g);
                fwrite_unlocked(g.bytes, 1, g.len, f);
                p = g.next;
        }
}

void cli_text_wrap(FILE *f, const cli_term *term, const char *sgr, const char *s, size_t indent)
{
        /* Keep a readable measure even if the indent eats the line. */
        size_t avail = term->columns >= indent + 20 ? term->columns - indent : 20;
        bool unicode = term->unicode;
        const char *p = s;
        bool first = true;

        for (;;) {
                const char *q, *space = NULL, *end;
                size_t used = 0;
                glyph g;

                while (*p == ' ')
                        p++;
                if (!*p && !first)
                        break;
                first = false;

                for (q = p; *q; q = g.next) {
                        next_glyph(q, unicode, &g);
                        if (used + g.width > avail)
                                break;
                        if (*q == ' ')
                                space = q;
                        used += g.width;
                }
                if (!*q || *q == ' ')
                        end = q;
                else if (space)
                        end = space;
                else if (q > p)
                        end = q; /* one word longer than the line: break inside it */
                else
                        end = g.next;

                cli_text_spaces(f, indent);
                if (sgr)
                        cli_text_style(f, term, sgr);
                print_range(f, p, end, unicode);
                if (sgr)
                        cli_text_style(f, term, CLI_STYLE_RESET);
                fputc('\n', f);
                p = end;
        }
}

void cli_text_style(FILE *f, const cli_term *term, const char *sgr)
{
        if (term->color) {
                fputs_unlocked("\033[", f);
                fputs_unlocked(sgr, f);
                putc_unlocked('m', f);
        }
}

void cli_text_heading(FILE *f, const cli_term *term, const cli_column *columns, size_t n,
                      const char *last)
{
        cli_text_style(f, term, CLI_STYLE_BOLD);
        for (size_t i = 0; i < n; i++) {
                cli_text_field(f, columns[i].title, columns[i].width, columns[i].align, false);
                cli_text_spaces(f, columns[i].gap);
        }
        fputs(last, f);
        cli_text_style(f, term, CLI_STYLE_RESET);
        fputc('\n', f);
}
