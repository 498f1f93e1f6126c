/* Terminal text for the CLI's human-readable views: what the terminal can
 * show (colour, UTF-8, width) and printing untrusted strings into fixed-width
 * fields.
 *
 * Strings shown by the CLI (command lines of other users' processes, GPU
 * names, daemon messages) come from outside, so every byte goes through one
 * filter: control characters, invalid UTF-8 and bidirectional overrides are
 * shown as '?' (they could move the cursor or restyle the terminal), and
 * truncation never splits a multibyte character and counts double-width
 * characters as two columns. Widths come from wcwidth(), so callers must have
 * set LC_CTYPE (setlocale) when `unicode` is true. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* The narrowest terminal the views are laid out for. */
#define CLI_TERM_MIN_COLUMNS 80
/* Wider terminals give long command lines more room, up to this. */
#define CLI_TERM_MAX_COLUMNS 400

typedef struct cli_term {
        bool color;     /* emit ANSI SGR sequences */
        bool unicode;   /* the terminal takes UTF-8: "…", "°", box drawing, non-ASCII text */
        size_t columns; /* line width to lay out for, CLI_TERM_MIN_COLUMNS..CLI_TERM_MAX_COLUMNS */
        bool tty;       /* a terminal: free text may be cut to `columns`; else never cut */
} cli_term;

/* Describe the terminal behind `f`: colour only when it is a tty, $NO_COLOR
 * is unset or empty and $TERM is not "dumb"; unicode when the LC_CTYPE
 * codeset is UTF-8; columns from the tty size, never below 80. */
void cli_term_detect(FILE *f, cli_term *ret);

typedef enum cli_align {
        CLI_ALIGN_LEFT,
        CLI_ALIGN_RIGHT,
} cli_align;

/* Display columns `s` takes when printed by the functions below. */
size_t cli_text_width(const char *s, bool unicode);

/* Print `s`, cut to at most `max_columns` columns with an ellipsis ("…", or
 * "..." without unicode) when it does not fit. Returns the columns printed;
 * with f == NULL prints nothing and only returns the columns it would take. */
size_t cli_text_clip(FILE *f, const char *s, size_t max_columns, bool unicode);

/* Print `s` in a field of exactly `columns` columns: cut as cli_text_clip()
 * does, then padded with spaces on the right (CLI_ALIGN_LEFT) or left. */
void cli_text_field(FILE *f, const char *s, size_t columns, cli_align align, bool unicode);

/* Bytes of printable ASCII (0x20..0x7e) `s` starts with: printed as they
 * are, a column each. */
size_t cli_text_plain(const char *s);

/* cli_text_field() into memory, for a line built in a buffer and written
 * once, of s[0..n), printable ASCII (cli_text_plain() counted it, or the
 * caller knows): when n is at most `columns` (then cli_text_field() prints
 * it as it is), writes the field's `columns` bytes at `to` and returns the
 * end of them; otherwise writes nothing and returns NULL (print that field
 * with cli_text_field()). Inline, as the next: `gpukeeper status` builds a
 * line per process with them. */
static inline char *cli_text_field_plain(char *to, const char *s, size_t n, size_t columns,
                                         cli_align align)
{
        if (n > columns)
                return NULL;
        if (align == CLI_ALIGN_RIGHT) {
                memset(to, ' ', columns - n);
                memcpy(to + columns - n, s, n);
        } else {
                memcpy(to, s, n);
                memset(to + n, ' ', columns - n);
        }
        return to + columns;
}

/* cli_text_clip() into memory, of a string that is s[0..n), printable
 * ASCII, or that starts with n > max_columns bytes of it: writes what
 * cli_text_clip() would print (the string, or its head and the ellipsis)
 * at `to` and returns the end of it; NULL (nothing written) when that would
 * not fit before `end`, or the ellipsis does not fit in max_columns. */
static inline char *cli_text_clip_plain(char *to, const char *end, const char *s, size_t n,
                                        size_t max_columns, bool unicode)
{
        /* "…" in UTF-8 and "..." are three bytes each. */
        const char *ellipsis = unicode ? "…" : "...";
        size_t ellipsis_width = unicode ? 1 : 3, ellipsis_len = 3, room = (size_t)(end - to);

        if (n <= max_columns) {
                /* All of it fits: as it is. */
                if (n > room)
                        return NULL;
                memcpy(to, s, n);
                return to + n;
        }
        /* More plain text than fits, whatever follows: its head and the
         * ellipsis, as cli_text_clip() cuts it. */
        if (max_columns < ellipsis_width || max_columns - ellipsis_width + ellipsis_len > room)
                return NULL;
        memcpy(to, s, max_columns - ellipsis_width);
        to += max_columns - ellipsis_width;
        memcpy(to, ellipsis, ellipsis_len);
        return to + ellipsis_len;
}

/* Print `s` as one or more lines of at most term->columns columns, each
 * starting with `indent` spaces and, when `sgr` is not NULL, shown in that
 * style (one of CLI_STYLE_*, reset before each newline), breaking at spaces
 * where possible. Ends with '\n'; an empty `s` gives one empty line. */
void cli_text_wrap(FILE *f, const cli_term *term, const char *sgr, const char *s, size_t indent);

/* Print `n` spaces. */
void cli_text_spaces(FILE *f, size_t n);

/* SGR attributes for cli_text_style(). */
#define CLI_STYLE_RESET "0"
#define CLI_STYLE_BOLD "1"
#define CLI_STYLE_DIM "2"
#define CLI_STYLE_RED "1;31"
#define CLI_STYLE_YELLOW "1;33"

/* Switch to `sgr` (one of CLI_STYLE_*) when term->color, else print nothing. */
void cli_text_style(FILE *f, const cli_term *term, const char *sgr);

/* One column of a table's heading line: its title in a field of `width`
 * columns, then `gap` spaces. */
typedef struct cli_column {
        const char *title;
        size_t width;
        cli_align align;
        size_t gap;
} cli_column;

/* Print a table's heading line in bold: the `n` columns, then `last` (the
 * title of the column that takes the rest of the line) and a newline. */
void cli_text_heading(FILE *f, const cli_term *term, const cli_column *columns, size_t n,
                      const char *last);
