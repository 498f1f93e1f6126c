/* The daemon's YAML configuration: a generic table-driven loader over
 * libyaml's event API, the row parsers, and the gpukeeperd key table.
 *
 * The event API (rather than yaml_parser_load) is used because it shows
 * anchors and aliases, which are rejected outright (a few lines of aliases
 * expand to gigabytes in a naive tree walk: "billion laughs"), and because
 * the walk can stop at the first unexpected event without building a tree:
 * we only ever descend into mappings and lists the table describes, so
 * nesting depth is bounded by the table, not by the file, and every list has
 * a maximum length.
 *
 * Rules between keys (policy.default_duration <= policy.max_duration, a
 * group inheriting what it leaves out, the keys an alert sink needs for its
 * type) are checked when their section has been read, by the section's check
 * function; the loader remembers where each key was given so that such an
 * error still names a line and column.
 *
 * Some values are secrets (alert sink URLs carry tokens, SMTP passwords):
 * their rows are marked so that no message ever quotes them. */
#include "daemon/config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>
#include <yaml.h>

#include "basic/log.h"
#include "basic/macro.h"
#include "basic/parse.h"

/* Longest key or value quoted back in an error message. */
#define QUOTE_MAX 64
#define QUOTE_BUF_SIZE (QUOTE_MAX * 4 + 4)

/* Room for a row parser's problem phrase. */
#define PROBLEM_MAX 256

/* Room for a dotted key name ("http.listen"): table names are short constants,
 * user-supplied names are quoted through quote() and so bounded as well. */
#define KEY_NAME_MAX 512

/* A key the file gave, and where its value starts (1-based). */
typedef struct Given {
        char *name; /* dotted: "policy.groups[0].max_gpus" */
        size_t line, col;
} Given;

typedef struct Loader {
        const char *path;
        const char *text; /* the whole file, to turn byte offsets into positions */
        size_t size;
        yaml_parser_t parser;
        void *target;
        char *error; /* the first error, "PATH:LINE:COL: ..." */
        /* Every key read so far, for check functions. Bounded by the tables:
         * a key is read at most once per mapping, and lists have max_items. */
        Given *given;
        size_t n_given, cap_given;
} Loader;

struct ConfigCheck {
        Loader *loader;
};

/* Copy at most QUOTE_MAX bytes of s[0..n) into buf for an error message,
 * writing control characters as \xNN so the message stays one line, and
 * marking truncation with "...". */
static const char *quote(char *buf, size_t len, const char *s, size_t n)
{
        size_t o = 0;

        assert(len >= QUOTE_BUF_SIZE);

        for (size_t i = 0; i < n && i < QUOTE_MAX; i++) {
                unsigned char c = (unsigned char)s[i];

                if (c < 0x20 || c == 0x7f)
                        o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
                else
                        buf[o++] = (char)c;
        }
        if (n > QUOTE_MAX) {
                memcpy(buf + o, "...", 3);
                o += 3;
        }
        buf[o] = '\0';
        return buf;
}

/* 1-based line and column (in characters) of byte `offset` of the file. */
static void position_of_offset(const Loader *l, size_t offset, size_t *ret_line,
                               size_t *ret_col)
{
        size_t line = 1, col = 1;

        for (size_t i = 0; i < offset && i < l->size; i++) {
                unsigned char c = (unsigned char)l->text[i];

                if (c == '\n') {
                        line++;
                        col = 1;
                } else if ((c & 0xc0) != 0x80) /* not a UTF-8 continuation byte */
                        col++;
        }
        *ret_line = line;
        *ret_col = col;
}

/* Record an error at 1-based (line, col); keeps only the first one. Returns
 * -EINVAL, or -ENOMEM if the message could not be built. */
_printf_(4, 0) static int loader_verror_at(Loader *l, size_t line, size_t col, const char *fmt,
                                          va_list ap)
{
        _cleanup_free_ char *msg = NULL;

        if (l->error)
                return -EINVAL;

        if (vasprintf(&msg, fmt, ap) < 0) {
                msg = NULL; /* glibc leaves it undefined */
                return -ENOMEM;
        }

        if (asprintf(&l->error, "%s:%zu:%zu: %s", l->path, line, col, msg) < 0) {
                l->error = NULL;
                return -ENOMEM;
        }
        return -EINVAL;
}

_printf_(4, 5) static int loader_error_at(Loader *l, size_t line, size_t col, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = loader_verror_at(l, line, col, fmt, ap);
        va_end(ap);
        return r;
}

/* libyaml marks are 0-based. */
#define loader_error(l, mark, ...)                                                                 \
        loader_error_at((l), (mark).line + 1, (mark).column + 1, __VA_ARGS__)

/* Remember that the file gave the key `name`, with its value at `mark`. */
static int loader_record(Loader *l, const char *name, yaml_mark_t mark)
{
        char *copy;

        if (l->n_given == l->cap_given) {
                size_t cap = l->cap_given ? l->cap_given * 2 : 16;
                Given *g = reallocarray(l->given, cap, sizeof *g);

                if (!g)
                        return -ENOMEM;
                l->given = g;
                l->cap_given = cap;
        }
        copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        l->given[l->n_given++] = (Given){.name = copy, .line = mark.line + 1,
                                         .col = mark.column + 1};
        return 0;
}

static const Given *loader_find_given(const Loader *l, const char *name)
{
        for (size_t i = 0; i < l->n_given; i++)
                if (strcmp(l->given[i].name, name) == 0)
                        return &l->given[i];
        return NULL;
}

bool config_check_given(const ConfigCheck *check, const char *name)
{
        assert(check);
        assert(name);
        return loader_find_given(check->loader, name) != NULL;
}

int config_check_error(ConfigCheck *check, const char *name, const char *fmt, ...)
{
        const Given *g;
        va_list ap;
        int r;

        assert(check);
        assert(name);
        g = loader_find_given(check->loader, name);
        assert(g); /* a check blames only keys the file gave */

        va_start(ap, fmt);
        r = loader_verror_at(check->loader, g->line, g->col, fmt, ap);
        va_end(ap);
        return r;
}

static int loader_syntax_error(Loader *l)
{
        const yaml_parser_t *p = &l->parser;
        size_t line, col;

        if (p->error == YAML_MEMORY_ERROR)
                return -ENOMEM;

        if (p->error == YAML_READER_ERROR) /* bad encoding: only a byte offset is known */
                position_of_offset(l, p->problem_offset, &line, &col);
        else {
                line = p->problem_mark.line + 1;
                col = p->problem_mark.column + 1;
        }

        if (p->context)
                return loader_error_at(l, line, col, "invalid YAML: %s (%s)",
                                       p->problem ? p->problem : "unknown error", p->context);
        return loader_error_at(l, line, col, "invalid YAML: %s",
                               p->problem ? p->problem : "unknown error");
}

static void yaml_event_deletep(yaml_event_t *e)
{
        yaml_event_delete(e);
}

/* Fetch the next event into *ev (which the caller owns and must have
 * zeroed), rejecting the YAML features a configuration never needs:
 * anchors, aliases and explicit tags. `key` names the value being read, for
 * the message, or is NULL. */
static int loader_next(Loader *l, yaml_event_t *ev, const char *key)
{
        const char *anchor = NULL, *tag = NULL;

        yaml_event_delete(ev);
        if (!yaml_parser_parse(&l->parser, ev))
                return loader_syntax_error(l);

        switch (ev->type) {
        case YAML_ALIAS_EVENT:
                return loader_error(l, ev->start_mark, "%s%s%saliases (*%s) are not allowed",
                                    key ? "'" : "", key ?: "", key ? "': " : "",
                                    (const char *)ev->data.alias.anchor);
        case YAML_SCALAR_EVENT:
                anchor = (const char *)ev->data.scalar.anchor;
                tag = (const char *)ev->data.scalar.tag;
                break;
        case YAML_MAPPING_START_EVENT:
                anchor = (const char *)ev->data.mapping_start.anchor;
                tag = (const char *)ev->data.mapping_start.tag;
                break;
        case YAML_SEQUENCE_START_EVENT:
                anchor = (const char *)ev->data.sequence_start.anchor;
                tag = (const char *)ev->data.sequence_start.tag;
                break;
        default:
                break;
        }

        if (anchor)
                return loader_error(l, ev->start_mark, "%s%s%sanchors (&%s) are not allowed",
                                    key ? "'" : "", key ?: "", key ? "': " : "", anchor);
        if (tag)
                return loader_error(l, ev->start_mark, "%s%s%stags (%s) are not allowed",
                                    key ? "'" : "", key ?: "", key ? "': " : "", tag);
        return 0;
}

/* YAML 1.1's null: an unquoted empty value, "~" or "null". */
static bool scalar_is_null(const yaml_event_t *ev)
{
        const char *v = (const char *)ev->data.scalar.value;

        if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        return ev->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
               strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* An escaped "\0" in a double-quoted string yields a NUL inside the value,
 * which C string handling would silently cut short. */
static bool scalar_has_nul(const yaml_event_t *ev)
{
        return memchr(ev->data.scalar.value, '\0', ev->data.scalar.length) != NULL;
}

static const char *event_kind(const yaml_event_t *ev)
{
        switch (ev->type) {
        case YAML_MAPPING_START_EVENT:
                return "a mapping";
        case YAML_SEQUENCE_START_EVENT:
                return "a list";
        default:
                return "a single value";
        }
}

/* "socket, state_dir, ...": the names a user may write in `table`. */
static char *known_keys(const ConfigKey *table)
{
        size_t len = 1;
        char *s, *p;

        for (const ConfigKey *k = table; k->name; k++)
                len += strlen(k->name) + 2;

        s = p = malloc(len);
        if (!s)
                return NULL;
        *p = '\0';
        for (const ConfigKey *k = table; k->name; k++) {
                p = stpcpy(p, p == s ? "" : ", ");
                p = stpcpy(p, k->name);
        }
        return s;
}

static int loader_mapping(Loader *l, const ConfigKey *table, void *base, const char *section,
                          yaml_mark_t start);

/* Run a section's check function; see ConfigChecker. */
static int loader_check(Loader *l, const ConfigKey *key, void *base, const char *name)
{
        ConfigCheck check = {.loader = l};

        return key->check ? key->check(&check, base, name) : 0;
}

/* Read the list `key`, written as `name`, whose first event (a
 * SEQUENCE_START, or a null scalar for an empty list) is `ev`. Each item is
 * appended to the array at base + key->offset before it is read, so that on
 * failure the target's owner still frees everything read so far. */
static int loader_list(Loader *l, const ConfigKey *key, void *base, const char *name,
                       const yaml_event_t *first)
{
        void **items = (void **)((uint8_t *)base + key->offset);
        size_t *n = (size_t *)((uint8_t *)base + key->count_offset);
        int r;

        /* Appending to an array holding defaults would mix them with the file's items. */
        assert(*n == 0 && !*items);

        if (first->type == YAML_SCALAR_EVENT && scalar_is_null(first))
                return 0; /* "groups:" with nothing after it */
        if (first->type != YAML_SEQUENCE_START_EVENT)
                return loader_error(l, first->start_mark,
                                    "'%s' must be a list (of mappings), not %s", name,
                                    event_kind(first));

        for (;;) {
                _cleanup_(yaml_event_deletep) yaml_event_t ev = {0};
                char item_name[KEY_NAME_MAX + 32]; /* name[INDEX] */
                uint8_t *grown, *item;

                r = loader_next(l, &ev, name);
                if (r < 0)
                        return r;
                if (ev.type == YAML_SEQUENCE_END_EVENT)
                        return 0;

                snprintf(item_name, sizeof item_name, "%s[%zu]", name, *n);
                if (*n >= key->max_items)
                        return loader_error(l, ev.start_mark,
                                            "too many items in '%s' (at most %zu)", name,
                                            key->max_items);
                if (ev.type != YAML_MAPPING_START_EVENT)
                        return loader_error(l, ev.start_mark,
                                            "'%s' must be a mapping of keys, not %s", item_name,
                                            event_kind(&ev));

                grown = reallocarray(*items, *n + 1, key->item_size);
                if (!grown)
                        return -ENOMEM;
                item = grown + *n * key->item_size;
                memset(item, 0, key->item_size);
                *items = grown;
                (*n)++;

                r = loader_record(l, item_name, ev.start_mark);
                if (r < 0)
                        return r;
                r = loader_mapping(l, key->section, item, item_name, ev.start_mark);
                if (r < 0)
                        return r;
        }
}

/* Convert the scalar `ev` with key->parse into `field`, reporting errors as
 * the value of `name`. Secret values are never quoted back. */
static int loader_scalar(Loader *l, const ConfigKey *key, const yaml_event_t *ev,
                         const char *name, void *field)
{
        char problem[PROBLEM_MAX] = "";
        char q[QUOTE_BUF_SIZE];
        int r;

        if (ev->type != YAML_SCALAR_EVENT)
                return loader_error(l, ev->start_mark, "'%s' must be a single value, not %s",
                                    name, event_kind(ev));
        if (scalar_is_null(ev))
                return loader_error(l, ev->start_mark, "value required for '%s'", name);
        if (scalar_has_nul(ev))
                return loader_error(l, ev->start_mark, "value of '%s' contains a NUL character",
                                    name);

        r = key->parse(key, (const char *)ev->data.scalar.value, field, problem, sizeof problem);
        if (r != -EINVAL)
                return r;
        if (key->secret)
                return loader_error(l, ev->start_mark, "invalid value for '%s': %s", name,
                                    problem);
        return loader_error(l, ev->start_mark, "invalid value '%s' for '%s': %s",
                            quote(q, sizeof q, (const char *)ev->data.scalar.value,
                                  ev->data.scalar.length),
                            name, problem);
}

/* Read the list of scalars `key` (VALUES or VALUE_SET), written as `name`,
 * whose first event is `first`. VALUES items are appended to the array, each
 * zeroed before it is converted, like the items of loader_list(). */
static int loader_values(Loader *l, const ConfigKey *key, void *base, const char *name,
                         const yaml_event_t *first)
{
        uint8_t *field = (uint8_t *)base + key->offset;
        size_t *n = NULL, count = 0;
        int r;

        if (key->kind == CONFIG_KEY_VALUES) {
                n = (size_t *)((uint8_t *)base + key->count_offset);
                /* Appending to an array holding defaults would mix them with the file's items. */
                assert(*n == 0 && !*(void **)field);
        } else
                memset(field, 0, key->item_size);

        if (first->type == YAML_SCALAR_EVENT && scalar_is_null(first))
                return 0; /* "users:" with nothing after it */
        if (first->type != YAML_SEQUENCE_START_EVENT)
                return loader_error(l, first->start_mark,
                                    "'%s' must be a list (of values), not %s", name,
                                    event_kind(first));

        for (;; count++) {
                _cleanup_(yaml_event_deletep) yaml_event_t ev = {0};
                char item_name[KEY_NAME_MAX + 32]; /* name[INDEX] */
                void *target = field;

                r = loader_next(l, &ev, name);
                if (r < 0)
                        return r;
                if (ev.type == YAML_SEQUENCE_END_EVENT)
                        return 0;

                snprintf(item_name, sizeof item_name, "%s[%zu]", name, count);
                if (count >= key->max_items)
                        return loader_error(l, ev.start_mark,
                                            "too many items in '%s' (at most %zu)", name,
                                            key->max_items);
                r = loader_record(l, item_name, ev.start_mark);
                if (r < 0)
                        return r;

                if (n) {
                        uint8_t *grown = reallocarray(*(void **)field, *n + 1, key->item_size);

                        if (!grown)
                                return -ENOMEM;
                        target = grown + *n * key->item_size;
                        memset(target, 0, key->item_size);
                        *(void **)field = grown;
                        (*n)++;
                }

                r = loader_scalar(l, key, &ev, item_name, target);
                if (r < 0)
                        return r;
        }
}

/* Read the value of `key`, written as `name` (dotted for nested keys), and
 * store it into `base`, descending into it if it is a section or a list. */
static int loader_value(Loader *l, const ConfigKey *key, void *base, const char *name)
{
        _cleanup_(yaml_event_deletep) yaml_event_t ev = {0};
        int r;

        r = loader_next(l, &ev, name);
        if (r < 0)
                return r;
        r = loader_record(l, name, ev.start_mark);
        if (r < 0)
                return r;

        if (key->kind == CONFIG_KEY_SECTION) {
                if (ev.type == YAML_MAPPING_START_EVENT)
                        r = loader_mapping(l, key->section, base, name, ev.start_mark);
                /* "http:" with nothing after it, e.g. all its keys commented out. */
                else if (ev.type == YAML_SCALAR_EVENT && scalar_is_null(&ev))
                        r = 0;
                else
                        return loader_error(l, ev.start_mark,
                                            "'%s' must be a section (a mapping of keys), not %s",
                                            name, event_kind(&ev));
                if (r < 0)
                        return r;
                return loader_check(l, key, base, name);
        }

        if (key->kind == CONFIG_KEY_LIST)
                return loader_list(l, key, base, name, &ev);
        if (key->kind == CONFIG_KEY_VALUES || key->kind == CONFIG_KEY_VALUE_SET)
                return loader_values(l, key, base, name, &ev);

        assert(key->kind == CONFIG_KEY_SCALAR);
        return loader_scalar(l, key, &ev, name, (uint8_t *)base + key->offset);
}

/* Walk a mapping whose MAPPING_START (at `start`) has been consumed, up to
 * and including its MAPPING_END, storing into `base`. `section` is the
 * dotted name of the mapping, or NULL at the top level. */
static int loader_mapping(Loader *l, const ConfigKey *table, void *base, const char *section,
                          yaml_mark_t start)
{
        _cleanup_free_ size_t *first_line = NULL;
        size_t n_keys = 0;
        int r;

        for (const ConfigKey *k = table; k->name; k++)
                n_keys++;
        first_line = calloc(n_keys ?: 1, sizeof *first_line);
        if (!first_line)
                return -ENOMEM;

        for (;;) {
                _cleanup_(yaml_event_deletep) yaml_event_t ev = {0};
                char name[KEY_NAME_MAX], q[QUOTE_BUF_SIZE];
                const ConfigKey *key = NULL;
                const char *v;
                size_t i;

                r = loader_next(l, &ev, NULL);
                if (r < 0)
                        return r;
                if (ev.type == YAML_MAPPING_END_EVENT)
                        break;
                if (ev.type != YAML_SCALAR_EVENT)
                        return loader_error(l, ev.start_mark,
                                            "keys must be plain names, not %s", event_kind(&ev));

                v = (const char *)ev.data.scalar.value;
                snprintf(name, sizeof name, "%s%s%s", section ?: "", section ? "." : "",
                         quote(q, sizeof q, v, ev.data.scalar.length));

                for (i = 0; i < n_keys; i++)
                        if (!scalar_has_nul(&ev) && strcmp(table[i].name, v) == 0) {
                                key = &table[i];
                                break;
                        }

                if (!key) {
                        _cleanup_free_ char *known = known_keys(table);

                        if (!known)
                                return -ENOMEM;
                        if (section)
                                return loader_error(l, ev.start_mark,
                                                    "unknown key '%s' (known keys in '%s': %s)",
                                                    name, section, known);
                        return loader_error(l, ev.start_mark,
                                            "unknown key '%s' (known keys: %s)", name, known);
                }

                if (first_line[i] > 0)
                        return loader_error(l, ev.start_mark,
                                            "duplicate key '%s' (first given on line %zu)", name,
                                            first_line[i]);
                first_line[i] = ev.start_mark.line + 1;

                r = loader_value(l, key, base, name);
                if (r < 0)
                        return r;
        }

        /* Reported at the start of the mapping: the key is nowhere to point at. */
        for (size_t i = 0; i < n_keys; i++)
                if (table[i].required && first_line[i] == 0)
                        return loader_error(l, start, "missing required key '%s%s%s'",
                                            section ?: "", section ? "." : "", table[i].name);
        return 0;
}

/* Walk the event stream: nothing, or exactly one document that is empty or
 * a mapping. */
static int loader_stream(Loader *l, const ConfigKey *table)
{
        _cleanup_(yaml_event_deletep) yaml_event_t ev = {0};
        int r;

        r = loader_next(l, &ev, NULL); /* STREAM_START */
        if (r < 0)
                return r;

        r = loader_next(l, &ev, NULL);
        if (r < 0)
                return r;
        if (ev.type == YAML_STREAM_END_EVENT) /* empty, or only comments */
                return 0;
        assert(ev.type == YAML_DOCUMENT_START_EVENT);

        r = loader_next(l, &ev, NULL);
        if (r < 0)
                return r;
        if (ev.type == YAML_MAPPING_START_EVENT) {
                r = loader_mapping(l, table, l->target, NULL, ev.start_mark);
                if (r < 0)
                        return r;
        } else if (!(ev.type == YAML_SCALAR_EVENT && scalar_is_null(&ev)))
                return loader_error(l, ev.start_mark,
                                    "the top level must be a mapping of keys, not %s",
                                    event_kind(&ev));

        r = loader_next(l, &ev, NULL); /* DOCUMENT_END */
        if (r < 0)
                return r;

        r = loader_next(l, &ev, NULL);
        if (r < 0)
                return r;
        if (ev.type == YAML_DOCUMENT_START_EVENT)
                return loader_error(l, ev.start_mark,
                                    "more than one YAML document; the file must hold exactly one");
        assert(ev.type == YAML_STREAM_END_EVENT);
        return 0;
}

/* Store a message about the file as a whole in *ret_error and return r
 * (or -ENOMEM, leaving NULL there, if the message cannot be built). */
_printf_(3, 4) static int file_error(int r, char **ret_error, const char *fmt, ...)
{
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vasprintf(ret_error, fmt, ap);
        va_end(ap);
        if (k < 0) {
                *ret_error = NULL; /* glibc leaves it undefined */
                return -ENOMEM;
        }
        return r;
}

/* Read the whole file, refusing what is not a regular file or is too large.
 * On failure returns -errno (I/O) or -EINVAL and sets *ret_error. */
static int read_config_file(const char *path, char **ret_text, size_t *ret_size,
                            char **ret_error)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, cap;
        struct stat st;
        int r;

        /* O_NONBLOCK so that opening a FIFO by mistake does not hang the
         * daemon; it has no effect on reading a regular file. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                r = negative_errno();
                goto io_error;
        }
        if (fstat(fd, &st) < 0) {
                r = negative_errno();
                goto io_error;
        }
        if (!S_ISREG(st.st_mode))
                return file_error(-EINVAL, ret_error, "%s: not a regular file", path);
        if ((uint64_t)st.st_size > CONFIG_FILE_MAX)
                goto too_large;

        /* Read until EOF rather than trusting st_size: the file may change
         * under us, and some files (in /proc) report 0. Reading one byte past
         * the limit tells "exactly at the limit" from "too large". */
        cap = (size_t)st.st_size + 1;
        buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k;

                if (n == cap) {
                        char *nbuf;

                        if (cap > CONFIG_FILE_MAX)
                                goto too_large;
                        cap = (size_t)MIN((uint64_t)cap * 2, CONFIG_FILE_MAX + 1);
                        nbuf = realloc(buf, cap + 1);
                        if (!nbuf)
                                return -ENOMEM;
                        buf = nbuf;
                }
                k = read(fd, buf + n, cap - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        goto io_error;
                }
                if (k == 0)
                        break;
                n += (size_t)k;
        }
        buf[n] = '\0';

        *ret_text = TAKE_PTR(buf);
        *ret_size = n;
        return 0;

too_large:
        return file_error(-EINVAL, ret_error, "%s: file is too large (the limit is %" PRIu64
                          " bytes)", path, CONFIG_FILE_MAX);
io_error:
        return file_error(r, ret_error, "%s: %s", path, strerror(-r));
}

int config_parse_yaml(const char *path, const ConfigKey *table, void *target, char **ret_error)
{
        _cleanup_free_ char *text = NULL, *error = NULL;
        Loader l = {.path = path, .target = target};
        const char *nul;
        int r;

        assert(path);
        assert(table);
        assert(target);

        r = read_config_file(path, &text, &l.size, &error);
        if (r < 0)
                goto finish;
        l.text = text;

        nul = memchr(text, '\0', l.size);
        if (nul) {
                size_t line, col;

                position_of_offset(&l, (size_t)(nul - text), &line, &col);
                r = loader_error_at(&l, line, col, "the file contains a NUL byte");
                error = TAKE_PTR(l.error);
                goto finish;
        }

        if (!yaml_parser_initialize(&l.parser)) {
                r = -ENOMEM;
                goto finish;
        }
        yaml_parser_set_encoding(&l.parser, YAML_UTF8_ENCODING);
        yaml_parser_set_input_string(&l.parser, (const unsigned char *)text, l.size);
        r = loader_stream(&l, table);
        yaml_parser_delete(&l.parser);
        error = TAKE_PTR(l.error);
        for (size_t i = 0; i < l.n_given; i++)
                free(l.given[i].name);
        free(l.given);

finish:
        if (r < 0 && ret_error)
                *ret_error = TAKE_PTR(error);
        return r;
}

/* ---- Row parsers --------------------------------------------------------- */

static bool has_control_chars(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

/* Store a copy of `value` in the char * at `field`, replacing what was there. */
static int store_string(const char *value, void *field)
{
        char *copy = strdup(value);
        char **p = field;

        if (!copy)
                return -ENOMEM;
        free(*p);
        *p = copy;
        return 0;
}

/* Common checks for every path-like value; returns 0 or -EINVAL with `problem` set. */
static int check_path(const char *value, bool absolute, size_t max, char *problem,
                      size_t problem_len)
{
        if (value[0] == '\0') {
                snprintf(problem, problem_len, "must not be empty");
                return -EINVAL;
        }
        if (has_control_chars(value)) {
                snprintf(problem, problem_len, "must not contain control characters");
                return -EINVAL;
        }
        if (absolute && value[0] != '/') {
                snprintf(problem, problem_len, "must be an absolute path (starting with '/')");
                return -EINVAL;
        }
        if (strlen(value) > max) {
                snprintf(problem, problem_len, "is too long (at most %zu bytes)", max);
                return -EINVAL;
        }
        return 0;
}

int config_parse_absolute_path(const ConfigKey *key, const char *value, void *field,
                               char *problem, size_t problem_len)
{
        int r = check_path(value, true, PATH_MAX - 1, problem, problem_len);
        return r < 0 ? r : store_string(value, field);
}

int config_parse_socket_path(const ConfigKey *key, const char *value, void *field, char *problem,
                             size_t problem_len)
{
        /* sun_path must hold the path and its terminating NUL. */
        int r = check_path(value, true, sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1,
                           problem, problem_len);
        return r < 0 ? r : store_string(value, field);
}

int config_parse_library(const ConfigKey *key, const char *value, void *field, char *problem,
                         size_t problem_len)
{
        /* dlopen() searches the library path for a bare name but resolves a
         * name with a slash relative to the working directory, which for a
         * root daemon must never be what the admin meant. */
        int r;

        if (value[0] != '/' && strchr(value, '/')) {
                snprintf(problem, problem_len,
                         "must be a library file name (found the way dlopen() searches) or an "
                         "absolute path");
                return -EINVAL;
        }
        r = check_path(value, false, PATH_MAX - 1, problem, problem_len);
        return r < 0 ? r : store_string(value, field);
}

/* Write "must be between A and B" for a range that applies (key->max != 0). */
static bool check_range(const ConfigKey *key, uint64_t v, const char *lo, const char *hi,
                        char *problem, size_t problem_len)
{
        if (key->max == 0 || (v >= key->min && v <= key->max))
                return true;
        snprintf(problem, problem_len, "must be between %s and %s", lo, hi);
        return false;
}

int config_parse_duration(const ConfigKey *key, const char *value, void *field, char *problem,
                          size_t problem_len)
{
        char lo[FORMAT_DURATION_MAX], hi[FORMAT_DURATION_MAX];
        uint64_t v;
        int r;

        r = parse_duration_usec(value, &v);
        if (r == -ERANGE) {
                snprintf(problem, problem_len, "too large");
                return -EINVAL;
        }
        if (r < 0) {
                if (value[0] != '\0' && value[strspn(value, "0123456789")] == '\0')
                        snprintf(problem, problem_len,
                                 "a unit is required (for example 30s, 5m or 2h)");
                else
                        snprintf(problem, problem_len,
                                 "not a duration (write a number and a unit, d h m s ms us, "
                                 "largest first: 30s, 5m, 1h30m)");
                return -EINVAL;
        }

        (void)format_duration(lo, sizeof lo, key->min);
        (void)format_duration(hi, sizeof hi, key->max);
        if (!check_range(key, v, lo, hi, problem, problem_len))
                return -EINVAL;

        *(uint64_t *)field = v;
        return 0;
}

/* parse_size_bytes() and parse_uint64() results with a range check in bytes. */
static int store_number(const ConfigKey *key, int r, uint64_t v, const char *what,
                        const char *unit, void *field, char *problem, size_t problem_len)
{
        char lo[24], hi[32];

        if (r == -ERANGE) {
                snprintf(problem, problem_len, "too large");
                return -EINVAL;
        }
        if (r < 0) {
                snprintf(problem, problem_len, "not %s", what);
                return -EINVAL;
        }

        snprintf(lo, sizeof lo, "%" PRIu64, key->min);
        snprintf(hi, sizeof hi, "%" PRIu64 "%s", key->max, unit);
        if (!check_range(key, v, lo, hi, problem, problem_len))
                return -EINVAL;

        *(uint64_t *)field = v;
        return 0;
}

int config_parse_size(const ConfigKey *key, const char *value, void *field, char *problem,
                      size_t problem_len)
{
        uint64_t v = 0;
        int r = parse_size_bytes(value, &v);

        return store_number(key, r, v,
                            "a size (write bytes or a number with K, M, G, T, P or E: 512M, 10G)",
                            " bytes", field, problem, problem_len);
}

int config_parse_uint64(const ConfigKey *key, const char *value, void *field, char *problem,
                        size_t problem_len)
{
        uint64_t v = 0;
        int r = parse_uint64(value, &v);

        return store_number(key, r, v, "a non-negative whole number", "", field, problem,
                            problem_len);
}

int config_parse_bool(const ConfigKey *key, const char *value, void *field, char *problem,
                      size_t problem_len)
{
        if (parse_bool(value, field) < 0) {
                snprintf(problem, problem_len, "must be true or false (or yes/no, on/off, 1/0)");
                return -EINVAL;
        }
        return 0;
}

int config_parse_log_level(const ConfigKey *key, const char *value, void *field, char *problem,
                           size_t problem_len)
{
        int level = log_level_from_string(value);

        if (level < 0) {
                snprintf(problem, problem_len, "must be one of error, warning, info, debug");
                return -EINVAL;
        }
        *(int *)field = level;
        return 0;
}

int config_parse_group_name(const ConfigKey *key, const char *value, void *field, char *problem,
                            size_t problem_len)
{
        /* The portable name rule of useradd/groupadd (shadow's NAME_REGEX without
         * the trailing '$' of Samba machine accounts), so that a typo such as
         * "Students" is an error here rather than a group that never matches. */
        size_t n = strlen(value);

        if (n == 0 || n > CONFIG_GROUP_NAME_MAX ||
            !((value[0] >= 'a' && value[0] <= 'z') || value[0] == '_') ||
            value[strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_-")] != '\0') {
                snprintf(problem, problem_len,
                         "must be a group name: a lower-case letter or '_', then lower-case "
                         "letters, digits, '_' or '-', at most %d characters",
                         CONFIG_GROUP_NAME_MAX);
                return -EINVAL;
        }
        return store_string(value, field);
}

int config_parse_int(const ConfigKey *key, const char *value, void *field, char *problem,
                     size_t problem_len)
{
        uint64_t v;
        int r;

        /* Without an upper bound the value might not fit. */
        assert(key->max != 0 && key->max <= INT_MAX);

        r = config_parse_uint64(key, value, &v, problem, problem_len);
        if (r < 0)
                return r;
        *(int *)field = (int)v;
        return 0;
}

/* Most digits config_parse_double accepts: their value, and 10 to the power
 * of the number after the point, are then exact doubles (below 2^53), so
 * that one division gives the correctly rounded result. */
#define DOUBLE_DIGITS_MAX 15

int config_parse_double(const ConfigKey *key, const char *value, void *field, char *problem,
                        size_t problem_len)
{
        /* Decimal digits with an optional fraction, converted by hand rather
         * than with strtod(), which would also take signs, exponents, hex,
         * "inf" and "nan", and would follow the locale's decimal point. */
        static const double pow10[DOUBLE_DIGITS_MAX + 1] = {
                1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
        };
        size_t n_int = strspn(value, "0123456789"), n_frac = 0, digits;
        uint64_t m = 0;
        double v;

        if (value[n_int] == '.') {
                n_frac = strspn(value + n_int + 1, "0123456789");
                if (n_frac == 0 || value[n_int + 1 + n_frac] != '\0')
                        n_int = 0; /* "1." and "1.x": malformed */
        } else if (value[n_int] != '\0')
                n_int = 0;
        if (n_int == 0) {
                snprintf(problem, problem_len,
                         "not a number (write digits with an optional fraction: 0.9, 1)");
                return -EINVAL;
        }
        digits = n_int + n_frac;
        if (digits > DOUBLE_DIGITS_MAX) {
                snprintf(problem, problem_len, "too many digits (at most %d)",
                         DOUBLE_DIGITS_MAX);
                return -EINVAL;
        }
        for (const char *p = value; *p; p++)
                if (*p != '.')
                        m = m * 10 + (uint64_t)(*p - '0');
        v = (double)m / pow10[n_frac];

        if (!(v >= key->min_double && v <= key->max_double)) {
                snprintf(problem, problem_len, "must be between %g and %g", key->min_double,
                         key->max_double);
                return -EINVAL;
        }
        *(double *)field = v;
        return 0;
}

/* ---- gpukeeperd's configuration ------------------------------------------ */

/* Room for "policy.groups[INDEX]" (a size_t index, as far as the compiler
 * knows), and for that plus ".default_duration". */
#define POLICY_PREFIX_MAX 40
#define POLICY_NAME_MAX 64

/* How a check message names the value of `key` ("default_duration") that
 * applies at `prefix` ("policy" or "policy.groups[1]"): given right there,
 * inherited from the policy level, or the built-in default. */
static void describe_duration(const ConfigCheck *check, const char *prefix, const char *key,
                              uint64_t usec, char *buf, size_t len)
{
        char given[POLICY_NAME_MAX], inherited[POLICY_NAME_MAX], v[FORMAT_DURATION_MAX];

        (void)format_duration(v, sizeof v, usec);
        snprintf(given, sizeof given, "%s.%s", prefix, key);
        snprintf(inherited, sizeof inherited, "policy.%s", key);
        if (config_check_given(check, given))
                snprintf(buf, len, "'%s' (%s)", given, v);
        else if (strcmp(prefix, "policy") != 0 && config_check_given(check, inherited))
                snprintf(buf, len, "%s (%s, from '%s')", key, v, inherited);
        else
                snprintf(buf, len, "%s (%s, the default)", key, v);
}

/* default_duration must not exceed max_duration in the limits that apply at
 * `prefix`. The key given at `prefix` is blamed (default_duration when both
 * are): a limit pair the file did not touch there is one that was already
 * checked, or a pair of defaults. */
static int check_durations(ConfigCheck *check, const char *prefix, const ConfigPolicyLimits *lim)
{
        char name[POLICY_NAME_MAX], other[POLICY_NAME_MAX * 2], v[FORMAT_DURATION_MAX];

        if (lim->default_duration_usec <= lim->max_duration_usec)
                return 0;

        snprintf(name, sizeof name, "%s.default_duration", prefix);
        if (config_check_given(check, name)) {
                (void)format_duration(v, sizeof v, lim->default_duration_usec);
                describe_duration(check, prefix, "max_duration", lim->max_duration_usec, other,
                                  sizeof other);
                return config_check_error(check, name, "'%s' (%s) must not be longer than %s",
                                          name, v, other);
        }

        snprintf(name, sizeof name, "%s.max_duration", prefix);
        (void)format_duration(v, sizeof v, lim->max_duration_usec);
        describe_duration(check, prefix, "default_duration", lim->default_duration_usec, other,
                          sizeof other);
        return config_check_error(check, name, "'%s' (%s) must not be shorter than %s", name, v,
                                  other);
}

/* The policy section's check: runs once the whole section is read, so that
 * groups inherit policy-level values written after them just as well. */
static int policy_check(ConfigCheck *check, void *base, const char *name)
{
        ConfigPolicy *p = &((Config *)base)->policy;
        int r;

        assert(strcmp(name, "policy") == 0);

        r = check_durations(check, "policy", &p->limits);
        if (r < 0)
                return r;

        for (size_t i = 0; i < p->n_groups; i++) {
                ConfigPolicyGroup *g = &p->groups[i];
                char prefix[POLICY_PREFIX_MAX], key[POLICY_NAME_MAX];

                snprintf(prefix, sizeof prefix, "policy.groups[%zu]", i);

                for (size_t j = 0; j < i; j++)
                        if (strcmp(p->groups[j].group, g->group) == 0) {
                                snprintf(key, sizeof key, "%s.group", prefix);
                                return config_check_error(
                                        check, key,
                                        "duplicate group '%s' in '%s' (first given in "
                                        "'policy.groups[%zu]')",
                                        g->group, prefix, j);
                        }

                snprintf(key, sizeof key, "%s.max_gpus", prefix);
                if (!config_check_given(check, key))
                        g->limits.max_gpus = p->limits.max_gpus;
                snprintf(key, sizeof key, "%s.default_duration", prefix);
                if (!config_check_given(check, key))
                        g->limits.default_duration_usec = p->limits.default_duration_usec;
                snprintf(key, sizeof key, "%s.max_duration", prefix);
                if (!config_check_given(check, key))
                        g->limits.max_duration_usec = p->limits.max_duration_usec;

                r = check_durations(check, prefix, &g->limits);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* One entry of policy.groups; offsets are relative to the ConfigPolicyGroup. */
static const ConfigKey policy_group_table[] = {
        CONFIG_SCALAR_REQUIRED("group", config_parse_group_name, ConfigPolicyGroup, group, 0, 0),
        CONFIG_SCALAR("max_gpus", config_parse_uint64, ConfigPolicyGroup, limits.max_gpus, 0,
                      CONFIG_POLICY_MAX_GPUS),
        CONFIG_SCALAR("default_duration", config_parse_duration, ConfigPolicyGroup,
                      limits.default_duration_usec, CONFIG_POLICY_DURATION_MIN,
                      CONFIG_POLICY_DURATION_MAX),
        CONFIG_SCALAR("max_duration", config_parse_duration, ConfigPolicyGroup,
                      limits.max_duration_usec, CONFIG_POLICY_DURATION_MIN,
                      CONFIG_POLICY_DURATION_MAX),
        CONFIG_END,
};

static const ConfigKey policy_table[] = {
        CONFIG_SCALAR("max_gpus", config_parse_uint64, Config, policy.limits.max_gpus, 0,
                      CONFIG_POLICY_MAX_GPUS),
        CONFIG_SCALAR("default_duration", config_parse_duration, Config,
                      policy.limits.default_duration_usec, CONFIG_POLICY_DURATION_MIN,
                      CONFIG_POLICY_DURATION_MAX),
        CONFIG_SCALAR("max_duration", config_parse_duration, Config,
                      policy.limits.max_duration_usec, CONFIG_POLICY_DURATION_MIN,
                      CONFIG_POLICY_DURATION_MAX),
        CONFIG_SCALAR("unleased_memory_limit", config_parse_size, Config,
                      policy.unleased_memory_limit_bytes, 0, 0),
        CONFIG_SCALAR("reconnect_grace", config_parse_duration, Config,
                      policy.reconnect_grace_usec, CONFIG_POLICY_RECONNECT_GRACE_MIN,
                      CONFIG_POLICY_RECONNECT_GRACE_MAX),
        CONFIG_LIST("groups", policy_group_table, Config, policy.groups, policy.n_groups,
                    ConfigPolicyGroup, CONFIG_POLICY_MAX_GROUPS),
        CONFIG_END,
};

/* ---- The enforcement section ---- */

static int parse_enforcement_mode(const ConfigKey *key, const char *value, void *field,
                                  char *problem, size_t problem_len)
{
        ConfigEnforcementMode *mode = field;

        if (strcmp(value, "observe") == 0)
                *mode = CONFIG_ENFORCEMENT_OBSERVE;
        else if (strcmp(value, "enforce") == 0)
                *mode = CONFIG_ENFORCEMENT_ENFORCE;
        else {
                snprintf(problem, problem_len, "must be observe or enforce");
                return -EINVAL;
        }
        return 0;
}

/* An exempt user: a uid in decimal, or a name. The name rule is looser than
 * the one for group names, since exempt accounts are often system or
 * directory accounts ("nvidia-persistenced", "svc.render"); digits alone are
 * a uid, never a name. */
static int parse_exempt_user(const ConfigKey *key, const char *value, void *field,
                             char *problem, size_t problem_len)
{
        size_t n = strlen(value);
        uint64_t uid;

        if (n > 0 && value[strspn(value, "0123456789")] == '\0') {
                /* (uid_t) -1 means "no uid" to the kernel. */
                if (parse_uint64(value, &uid) < 0 || uid >= UINT32_MAX) {
                        snprintf(problem, problem_len, "not a uid (at most %" PRIu32 ")",
                                 UINT32_MAX - 1);
                        return -EINVAL;
                }
                return store_string(value, field);
        }
        if (n == 0 || n > CONFIG_USER_NAME_MAX || value[0] == '-' || value[0] == '.' ||
            value[strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789._-")] != '\0') {
                snprintf(problem, problem_len,
                         "must be a user name (letters, digits, '.', '_' or '-', not starting "
                         "with '-' or '.', at most %d characters) or a numeric uid",
                         CONFIG_USER_NAME_MAX);
                return -EINVAL;
        }
        return store_string(value, field);
}

/* An absolute path as the kernel shows it in /proc/PID/exe: anything else
 * (".", "..", "//", a trailing '/') would never match and silently exempt
 * nothing. */
static int parse_executable(const ConfigKey *key, const char *value, void *field,
                            char *problem, size_t problem_len)
{
        int r = check_path(value, true, PATH_MAX - 1, problem, problem_len);

        if (r < 0)
                return r;
        for (const char *p = value; *p; p++) {
                size_t len;

                if (*p != '/')
                        continue;
                len = strcspn(p + 1, "/");
                if (len == 0 || (len == 1 && p[1] == '.') ||
                    (len == 2 && p[1] == '.' && p[2] == '.')) {
                        snprintf(problem, problem_len,
                                 "must be a normalized absolute path (no empty, '.' or '..' "
                                 "components, no trailing '/')");
                        return -EINVAL;
                }
        }
        return store_string(value, field);
}

static const ConfigKey enforcement_exempt_table[] = {
        CONFIG_VALUES("users", parse_exempt_user, Config, enforcement.exempt_users,
                      enforcement.n_exempt_users, char *, CONFIG_EXEMPT_MAX),
        CONFIG_VALUES("executables", parse_executable, Config, enforcement.exempt_executables,
                      enforcement.n_exempt_executables, char *, CONFIG_EXEMPT_MAX),
        CONFIG_END,
};

static const ConfigKey enforcement_table[] = {
        CONFIG_SCALAR("mode", parse_enforcement_mode, Config, enforcement.mode, 0, 0),
        CONFIG_SCALAR("grace", config_parse_duration, Config, enforcement.grace_usec,
                      CONFIG_ENFORCEMENT_GRACE_MIN, CONFIG_ENFORCEMENT_GRACE_MAX),
        CONFIG_SCALAR("kill_timeout", config_parse_duration, Config,
                      enforcement.kill_timeout_usec, CONFIG_KILL_TIMEOUT_MIN,
                      CONFIG_KILL_TIMEOUT_MAX),
        CONFIG_SCALAR("root_exempt", config_parse_bool, Config, enforcement.root_exempt, 0, 0),
        CONFIG_SECTION("exempt", enforcement_exempt_table),
        CONFIG_END,
};

/* ---- The idle section ---- */

/* "'idle.warn_before' (3h)" when the file gave it, else "warn_before (15m, the default)". */
static void describe_idle(const ConfigCheck *check, const char *key, uint64_t usec, char *buf,
                          size_t len)
{
        char name[POLICY_NAME_MAX], v[FORMAT_DURATION_MAX];

        (void)format_duration(v, sizeof v, usec);
        snprintf(name, sizeof name, "idle.%s", key);
        if (config_check_given(check, name))
                snprintf(buf, len, "'%s' (%s)", name, v);
        else
                snprintf(buf, len, "%s (%s, the default)", key, v);
}

/* warn_before <= release_after; as for policy durations, the key given is
 * blamed (warn_before when both are). */
static int idle_check(ConfigCheck *check, void *base, const char *name)
{
        const ConfigIdle *idle = &((Config *)base)->idle;
        char warn[POLICY_NAME_MAX * 2], release[POLICY_NAME_MAX * 2];

        assert(strcmp(name, "idle") == 0);

        if (idle->warn_before_usec <= idle->release_after_usec)
                return 0;

        describe_idle(check, "warn_before", idle->warn_before_usec, warn, sizeof warn);
        describe_idle(check, "release_after", idle->release_after_usec, release, sizeof release);
        if (config_check_given(check, "idle.warn_before"))
                return config_check_error(check, "idle.warn_before",
                                          "%s must not be longer than %s", warn, release);
        return config_check_error(check, "idle.release_after", "%s must not be shorter than %s",
                                  release, warn);
}

static const ConfigKey idle_table[] = {
        CONFIG_SCALAR("release_after", config_parse_duration, Config, idle.release_after_usec,
                      CONFIG_IDLE_AFTER_MIN, CONFIG_IDLE_AFTER_MAX),
        CONFIG_SCALAR("warn_before", config_parse_duration, Config, idle.warn_before_usec, 0,
                      CONFIG_IDLE_AFTER_MAX),
        CONFIG_SCALAR("flag_after", config_parse_duration, Config, idle.flag_after_usec,
                      CONFIG_IDLE_AFTER_MIN, CONFIG_IDLE_AFTER_MAX),
        CONFIG_SCALAR("stop_idle_runs", config_parse_bool, Config, idle.stop_idle_runs, 0, 0),
        CONFIG_END,
};

/* ---- The alerts section ---- */

static const char *const alert_event_names[_CONFIG_ALERT_MAX] = {
        [CONFIG_ALERT_DAEMON] = "daemon",
        [CONFIG_ALERT_VIOLATION] = "violation",
        [CONFIG_ALERT_PROCESS_STOPPED] = "process_stopped",
        [CONFIG_ALERT_GPU_LOST] = "gpu_lost",
        [CONFIG_ALERT_NVML_ERROR] = "nvml_error",
        [CONFIG_ALERT_XID] = "xid",
        [CONFIG_ALERT_MEMORY] = "memory",
        [CONFIG_ALERT_TEMPERATURE] = "temperature",
        [CONFIG_ALERT_IDLE_WARNING] = "idle_warning",
        [CONFIG_ALERT_IDLE_RECLAIM] = "idle_reclaim",
        [CONFIG_ALERT_IDLE_FLAG] = "idle_flag",
};

static const char *const sink_type_names[_CONFIG_SINK_TYPE_MAX] = {
        [CONFIG_SINK_WEBHOOK] = "webhook",
        [CONFIG_SINK_DINGTALK] = "dingtalk",
        [CONFIG_SINK_SLACK] = "slack",
        [CONFIG_SINK_EMAIL] = "email",
};

const char *config_alert_event_to_string(ConfigAlertEvent e)
{
        return (unsigned)e < _CONFIG_ALERT_MAX ? alert_event_names[e] : NULL;
}

int config_alert_event_from_string(const char *s)
{
        assert(s);
        for (int i = 0; i < _CONFIG_ALERT_MAX; i++)
                if (strcmp(alert_event_names[i], s) == 0)
                        return i;
        return -EINVAL;
}

const char *config_alert_sink_type_to_string(ConfigAlertSinkType t)
{
        return (unsigned)t < _CONFIG_SINK_TYPE_MAX ? sink_type_names[t] : NULL;
}

/* "must be one of a, b, c" for the names in names[0..n). */
static void problem_one_of(const char *const *names, size_t n, char *problem,
                           size_t problem_len)
{
        size_t o = (size_t)snprintf(problem, problem_len, "must be one of");

        for (size_t i = 0; i < n && o < problem_len; i++)
                o += (size_t)snprintf(problem + o, problem_len - o, "%s %s", i ? "," : "",
                                      names[i]);
}

/* One name of a sink's events list, added to the uint32_t mask. */
static int parse_alert_event(const ConfigKey *key, const char *value, void *field,
                             char *problem, size_t problem_len)
{
        uint32_t *mask = field;
        int e = config_alert_event_from_string(value);

        if (e < 0) {
                problem_one_of(alert_event_names, _CONFIG_ALERT_MAX, problem, problem_len);
                return -EINVAL;
        }
        if (*mask & (UINT32_C(1) << e)) {
                snprintf(problem, problem_len, "listed more than once");
                return -EINVAL;
        }
        *mask |= UINT32_C(1) << e;
        return 0;
}

static int parse_sink_type(const ConfigKey *key, const char *value, void *field, char *problem,
                           size_t problem_len)
{
        for (int i = 0; i < _CONFIG_SINK_TYPE_MAX; i++)
                if (strcmp(sink_type_names[i], value) == 0) {
                        *(ConfigAlertSinkType *)field = (ConfigAlertSinkType)i;
                        return 0;
                }
        problem_one_of(sink_type_names, _CONFIG_SINK_TYPE_MAX, problem, problem_len);
        return -EINVAL;
}

static int parse_sink_name(const ConfigKey *key, const char *value, void *field, char *problem,
                           size_t problem_len)
{
        size_t n = strlen(value);

        if (n == 0 || n > CONFIG_ALERT_SINK_NAME_MAX ||
            value[strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_-")] != '\0') {
                snprintf(problem, problem_len,
                         "must be 1 to %d lower-case letters, digits, '_' or '-'",
                         CONFIG_ALERT_SINK_NAME_MAX);
                return -EINVAL;
        }
        return store_string(value, field);
}

/* Whether `value` has a space or a control character (not allowed unescaped in a URL). */
static bool has_space_or_control(const char *value)
{
        return has_control_chars(value) || strchr(value, ' ');
}

/* A URL "SCHEME://HOST..." with one of the two schemes (case-insensitive)
 * and a non-empty authority; stores the authority's length. The problem
 * phrases never repeat the value: URLs carry tokens. */
static int check_url(const char *value, const char *scheme1, const char *scheme2,
                     size_t *ret_authority, char *problem, size_t problem_len)
{
        size_t n = strlen(value), skip = 0, authority;

        if (n > CONFIG_ALERT_URL_MAX) {
                snprintf(problem, problem_len, "is too long (at most %d bytes)",
                         CONFIG_ALERT_URL_MAX);
                return -EINVAL;
        }
        if (has_space_or_control(value)) {
                snprintf(problem, problem_len, "must not contain spaces or control characters");
                return -EINVAL;
        }
        if (strncasecmp(value, scheme1, strlen(scheme1)) == 0)
                skip = strlen(scheme1);
        else if (strncasecmp(value, scheme2, strlen(scheme2)) == 0)
                skip = strlen(scheme2);
        authority = skip ? strcspn(value + skip, "/?#") : 0;
        if (authority == 0) {
                snprintf(problem, problem_len, "must be a URL starting with %s or %s and a host",
                         scheme1, scheme2);
                return -EINVAL;
        }
        *ret_authority = skip + authority;
        return 0;
}

static int parse_http_url(const ConfigKey *key, const char *value, void *field, char *problem,
                          size_t problem_len)
{
        size_t end;
        int r = check_url(value, "http://", "https://", &end, problem, problem_len);

        return r < 0 ? r : store_string(value, field);
}

/* Credentials go in username and password, where they are kept out of logs
 * and messages; a URL holding them would be logged by whoever prints it. */
static int parse_smtp_url(const ConfigKey *key, const char *value, void *field, char *problem,
                          size_t problem_len)
{
        size_t end;
        int r = check_url(value, "smtp://", "smtps://", &end, problem, problem_len);

        if (r < 0)
                return r;
        if (memchr(value, '@', end)) {
                snprintf(problem, problem_len,
                         "must not contain a user name or password (use the keys username and "
                         "password)");
                return -EINVAL;
        }
        return store_string(value, field);
}

/* A signing secret, user name or password: sent verbatim, so no control
 * characters (a CR or LF would end an SMTP command early). */
static int parse_credential(const ConfigKey *key, const char *value, void *field,
                            char *problem, size_t problem_len)
{
        if (value[0] == '\0') {
                snprintf(problem, problem_len, "must not be empty");
                return -EINVAL;
        }
        if (has_control_chars(value)) {
                snprintf(problem, problem_len, "must not contain control characters");
                return -EINVAL;
        }
        if (strlen(value) > CONFIG_ALERT_CREDENTIAL_MAX) {
                snprintf(problem, problem_len, "is too long (at most %d bytes)",
                         CONFIG_ALERT_CREDENTIAL_MAX);
                return -EINVAL;
        }
        return store_string(value, field);
}

/* A bare address "user@host" for the SMTP envelope and the From/To headers:
 * no display names, quotes, comments or anything else that could change
 * the meaning of a header line. */
static int parse_address(const ConfigKey *key, const char *value, void *field, char *problem,
                         size_t problem_len)
{
        const char *at = strchr(value, '@');

        if (strlen(value) > CONFIG_ALERT_ADDRESS_MAX) {
                snprintf(problem, problem_len, "is too long (at most %d bytes)",
                         CONFIG_ALERT_ADDRESS_MAX);
                return -EINVAL;
        }
        if (!at || at == value || at[1] == '\0' || strchr(at + 1, '@') ||
            has_space_or_control(value) || value[strcspn(value, "<>()[]\\,;:\"")] != '\0') {
                snprintf(problem, problem_len,
                         "must be an email address (user@host, without a display name)");
                return -EINVAL;
        }
        return store_string(value, field);
}

/* Keys of a sink that only some types use, and which types: a key given to
 * a sink of another type is an error, so that a misplaced key is noticed. */
static const struct {
        const char *key;
        uint32_t types; /* 1u << ConfigAlertSinkType */
        bool required;  /* for those types */
} sink_type_keys[] = {
        {"url", 1u << CONFIG_SINK_WEBHOOK | 1u << CONFIG_SINK_DINGTALK | 1u << CONFIG_SINK_SLACK,
         true},
        {"secret", 1u << CONFIG_SINK_DINGTALK, false},
        {"smtp_url", 1u << CONFIG_SINK_EMAIL, true},
        {"starttls", 1u << CONFIG_SINK_EMAIL, false},
        {"username", 1u << CONFIG_SINK_EMAIL, false},
        {"password", 1u << CONFIG_SINK_EMAIL, false},
        {"from", 1u << CONFIG_SINK_EMAIL, true},
        {"to", 1u << CONFIG_SINK_EMAIL, true},
};

/* Room for "alerts.sinks[INDEX]" and for that plus ".smtp_url". */
#define SINK_PREFIX_MAX 40
#define SINK_NAME_MAX 64

/* The rules of one sink that tie keys together, and its derived defaults. */
static int check_sink(ConfigCheck *check, const ConfigAlerts *a, size_t i)
{
        ConfigAlertSink *s = &a->sinks[i];
        const char *type = config_alert_sink_type_to_string(s->type);
        char prefix[SINK_PREFIX_MAX], key[SINK_NAME_MAX], other[SINK_NAME_MAX];

        snprintf(prefix, sizeof prefix, "alerts.sinks[%zu]", i);

        for (size_t j = 0; j < i; j++)
                if (strcmp(a->sinks[j].name, s->name) == 0) {
                        snprintf(key, sizeof key, "%s.name", prefix);
                        return config_check_error(check, key,
                                                  "duplicate sink name '%s' in '%s' (first "
                                                  "given in 'alerts.sinks[%zu]')",
                                                  s->name, prefix, j);
                }

        for (size_t j = 0; j < ELEMENTSOF(sink_type_keys); j++) {
                bool used = sink_type_keys[j].types & (1u << s->type);

                snprintf(key, sizeof key, "%s.%s", prefix, sink_type_keys[j].key);
                if (!used && config_check_given(check, key))
                        return config_check_error(check, key,
                                                  "'%s' is not used by sinks of type %s", key,
                                                  type);
        }
        for (size_t j = 0; j < ELEMENTSOF(sink_type_keys); j++) {
                bool used = sink_type_keys[j].types & (1u << s->type);

                snprintf(key, sizeof key, "%s.%s", prefix, sink_type_keys[j].key);
                if (used && sink_type_keys[j].required && !config_check_given(check, key))
                        return config_check_error(check, prefix,
                                                  "missing key '%s' (required for sinks of "
                                                  "type %s)",
                                                  key, type);
        }

        snprintf(key, sizeof key, "%s.to", prefix);
        if (s->type == CONFIG_SINK_EMAIL && s->n_to == 0)
                return config_check_error(check, key, "'%s' must list at least one address",
                                          key);

        snprintf(key, sizeof key, "%s.username", prefix);
        snprintf(other, sizeof other, "%s.password", prefix);
        if (config_check_given(check, key) && !config_check_given(check, other))
                return config_check_error(check, key, "'%s' requires '%s'", key, other);
        if (config_check_given(check, other) && !config_check_given(check, key))
                return config_check_error(check, other, "'%s' requires '%s'", other, key);

        snprintf(key, sizeof key, "%s.starttls", prefix);
        if (s->starttls && strncasecmp(s->smtp_url, "smtps://", 8) == 0)
                return config_check_error(check, key,
                                          "'%s' applies to smtp:// URLs only (smtps:// uses TLS "
                                          "from the start)",
                                          key);

        snprintf(key, sizeof key, "%s.events", prefix);
        if (!config_check_given(check, key))
                s->events = CONFIG_ALERT_EVENTS_ALL;
        else if (s->events == 0)
                return config_check_error(check, key,
                                          "'%s' names no event (leave it out for all events)",
                                          key);

        snprintf(key, sizeof key, "%s.timeout", prefix);
        if (!config_check_given(check, key))
                s->timeout_usec = CONFIG_DEFAULT_ALERT_SINK_TIMEOUT_USEC;
        return 0;
}

static int alerts_check(ConfigCheck *check, void *base, const char *name)
{
        const ConfigAlerts *a = &((Config *)base)->alerts;
        int r;

        assert(strcmp(name, "alerts") == 0);

        for (size_t i = 0; i < a->n_sinks; i++) {
                r = check_sink(check, a, i);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* One entry of alerts.sinks; offsets are relative to the ConfigAlertSink. */
static const ConfigKey alert_sink_table[] = {
        CONFIG_SCALAR_REQUIRED("name", parse_sink_name, ConfigAlertSink, name, 0, 0),
        CONFIG_SCALAR_REQUIRED("type", parse_sink_type, ConfigAlertSink, type, 0, 0),
        CONFIG_SCALAR_SECRET("url", parse_http_url, ConfigAlertSink, url),
        CONFIG_SCALAR_SECRET("secret", parse_credential, ConfigAlertSink, secret),
        CONFIG_VALUE_SET("events", parse_alert_event, ConfigAlertSink, events, _CONFIG_ALERT_MAX),
        CONFIG_SCALAR("timeout", config_parse_duration, ConfigAlertSink, timeout_usec,
                      CONFIG_ALERT_SINK_TIMEOUT_MIN, CONFIG_ALERT_SINK_TIMEOUT_MAX),
        CONFIG_SCALAR_SECRET("smtp_url", parse_smtp_url, ConfigAlertSink, smtp_url),
        CONFIG_SCALAR("starttls", config_parse_bool, ConfigAlertSink, starttls, 0, 0),
        CONFIG_SCALAR("username", parse_credential, ConfigAlertSink, username, 0, 0),
        CONFIG_SCALAR_SECRET("password", parse_credential, ConfigAlertSink, password),
        CONFIG_SCALAR("from", parse_address, ConfigAlertSink, from, 0, 0),
        CONFIG_VALUES("to", parse_address, ConfigAlertSink, to, n_to, char *,
                      CONFIG_ALERT_MAX_RECIPIENTS),
        CONFIG_END,
};

static const ConfigKey alerts_table[] = {
        CONFIG_SCALAR("repeat_after", config_parse_duration, Config, alerts.repeat_after_usec,
                      CONFIG_ALERT_REPEAT_AFTER_MIN, CONFIG_ALERT_REPEAT_AFTER_MAX),
        CONFIG_SCALAR_DOUBLE("memory_fraction", Config, alerts.memory_fraction,
                             CONFIG_ALERT_MEMORY_FRACTION_MIN, CONFIG_ALERT_MEMORY_FRACTION_MAX),
        CONFIG_SCALAR("memory_for", config_parse_duration, Config, alerts.memory_for_usec, 0,
                      CONFIG_ALERT_FOR_MAX),
        CONFIG_SCALAR("temperature_c", config_parse_int, Config, alerts.temperature_c,
                      CONFIG_ALERT_TEMPERATURE_MIN, CONFIG_ALERT_TEMPERATURE_MAX),
        CONFIG_SCALAR("temperature_for", config_parse_duration, Config,
                      alerts.temperature_for_usec, 0, CONFIG_ALERT_FOR_MAX),
        CONFIG_LIST("sinks", alert_sink_table, Config, alerts.sinks, alerts.n_sinks,
                    ConfigAlertSink, CONFIG_ALERT_MAX_SINKS),
        CONFIG_END,
};

/* ---- The env section ---- */

/* backup_schedule: a word, or a duration of CONFIG_ENV_BACKUP_INTERVAL_MIN..MAX
 * (the row's range). "off" is 0, which the daemon takes as no backups. */
static int parse_backup_schedule(const ConfigKey *key, const char *value, void *field,
                                 char *problem, size_t problem_len)
{
        static const struct {
                const char *word;
                uint64_t usec;
        } words[] = {
                {"hourly", USEC_PER_HOUR},
                {"daily", USEC_PER_DAY},
                {"weekly", 7 * USEC_PER_DAY},
                {"off", 0},
        };
        uint64_t v;

        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (strcmp(value, words[i].word) == 0) {
                        *(uint64_t *)field = words[i].usec;
                        return 0;
                }

        /* Neither a word nor anything like a duration: name both forms. A
         * number without a unit, or a duration out of range, gets the
         * duration parser's own, more precise message. */
        if (parse_duration_usec(value, &v) == -EINVAL &&
            (value[0] == '\0' || value[strspn(value, "0123456789")] != '\0')) {
                snprintf(problem, problem_len,
                         "must be hourly, daily, weekly, off, or a duration (for example 12h)");
                return -EINVAL;
        }
        return config_parse_duration(key, value, field, problem, problem_len);
}

/* conda_exe: a bare name is looked up in PATH when it is run; a name with a
 * '/' must be absolute, since a relative one would be resolved against the
 * daemon's working directory. */
static int parse_conda_exe(const ConfigKey *key, const char *value, void *field, char *problem,
                           size_t problem_len)
{
        int r = check_path(value, false, PATH_MAX - 1, problem, problem_len);

        if (r < 0)
                return r;
        if ((value[0] != '/' && strchr(value, '/')) || strcmp(value, ".") == 0 ||
            strcmp(value, "..") == 0) {
                snprintf(problem, problem_len,
                         "must be a command name (looked up in PATH) or an absolute path");
                return -EINVAL;
        }
        return store_string(value, field);
}

static const ConfigKey env_table[] = {
        CONFIG_SCALAR("backup_schedule", parse_backup_schedule, Config,
                      env.backup_interval_usec, CONFIG_ENV_BACKUP_INTERVAL_MIN,
                      CONFIG_ENV_BACKUP_INTERVAL_MAX),
        CONFIG_SCALAR("backup_keep", config_parse_uint64, Config, env.backup_keep,
                      CONFIG_ENV_BACKUP_KEEP_MIN, CONFIG_ENV_BACKUP_KEEP_MAX),
        CONFIG_SCALAR("backup_dir", config_parse_absolute_path, Config, env.backup_dir, 0, 0),
        CONFIG_SCALAR("conda_exe", parse_conda_exe, Config, env.conda_exe, 0, 0),
        CONFIG_SCALAR("templates_dir", config_parse_absolute_path, Config, env.templates_dir,
                      0, 0),
        CONFIG_END,
};

/* ---- The http section ---- */

/* "HOST:PORT" with HOST an IPv4 address or a bracketed IPv6 address and
 * PORT 1..65535. Host names are refused: the daemon binds before any
 * resolver is worth trusting, and an address says exactly what is exposed. */
static int listen_from_string(const char *value, ConfigListen *ret)
{
        char host[INET6_ADDRSTRLEN + 1];
        const char *port_text;
        ConfigListen l = {0};
        uint64_t port;
        size_t n;

        if (value[0] == '[') {
                const char *close = strchr(value, ']');

                if (!close || close[1] != ':')
                        return -EINVAL;
                n = (size_t)(close - value - 1);
                port_text = close + 2;
                if (n == 0 || n >= sizeof host)
                        return -EINVAL;
                memcpy(host, value + 1, n);
                host[n] = '\0';
        } else {
                const char *colon = strrchr(value, ':');

                if (!colon || strchr(value, ':') != colon)
                        return -EINVAL;
                n = (size_t)(colon - value);
                port_text = colon + 1;
                if (n == 0 || n >= sizeof host)
                        return -EINVAL;
                memcpy(host, value, n);
                host[n] = '\0';
        }
        if (port_text[0] == '\0' || port_text[strspn(port_text, "0123456789")] != '\0' ||
            parse_uint64(port_text, &port) < 0 || port < 1 || port > 65535)
                return -EINVAL;

        if (value[0] == '[') {
                struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&l.addr;

                if (inet_pton(AF_INET6, host, &sa->sin6_addr) != 1)
                        return -EINVAL;
                sa->sin6_family = AF_INET6;
                sa->sin6_port = htons((uint16_t)port);
                l.addr_len = sizeof *sa;
                l.loopback = IN6_IS_ADDR_LOOPBACK(&sa->sin6_addr);
        } else {
                struct sockaddr_in *sa = (struct sockaddr_in *)&l.addr;

                if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
                        return -EINVAL;
                sa->sin_family = AF_INET;
                sa->sin_port = htons((uint16_t)port);
                l.addr_len = sizeof *sa;
                l.loopback = (ntohl(sa->sin_addr.s_addr) >> 24) == 127;
        }
        l.text = strdup(value);
        if (!l.text)
                return -ENOMEM;
        *ret = l;
        return 0;
}

static int parse_listen(const ConfigKey *key, const char *value, void *field, char *problem,
                        size_t problem_len)
{
        ConfigListen *l = field, next;
        int r = listen_from_string(value, &next);

        if (r == -EINVAL) {
                snprintf(problem, problem_len,
                         "must be an IPv4 address or a bracketed IPv6 address, a colon and a "
                         "port (for example 127.0.0.1:9400 or [::1]:9400)");
                return r;
        }
        if (r < 0)
                return r;
        free(l->text);
        *l = next;
        return 0;
}

/* The token travels in an Authorization header: visible ASCII only, so it
 * can be written there verbatim and compared byte for byte. */
static int parse_token(const ConfigKey *key, const char *value, void *field, char *problem,
                       size_t problem_len)
{
        if (value[0] == '\0') {
                snprintf(problem, problem_len, "must not be empty");
                return -EINVAL;
        }
        if (strlen(value) > CONFIG_HTTP_TOKEN_MAX) {
                snprintf(problem, problem_len, "is too long (at most %d bytes)",
                         CONFIG_HTTP_TOKEN_MAX);
                return -EINVAL;
        }
        for (const char *p = value; *p; p++)
                if (*p < 0x21 || *p > 0x7e) {
                        snprintf(problem, problem_len,
                                 "must be printable ASCII without spaces");
                        return -EINVAL;
                }
        return store_string(value, field);
}

/* Anything but loopback is reachable by others: it needs a token. */
static int http_check(ConfigCheck *check, void *base, const char *name)
{
        const ConfigHttp *h = &((Config *)base)->http;

        assert(strcmp(name, "http") == 0);

        if (!h->listen.loopback && !h->token)
                return config_check_error(check, "http.listen",
                                          "'http.listen' (%s) is not a loopback address: set "
                                          "'http.token' too, or listen on 127.0.0.1",
                                          h->listen.text);
        return 0;
}

static const ConfigKey http_table[] = {
        CONFIG_SCALAR("listen", parse_listen, Config, http.listen, 0, 0),
        CONFIG_SCALAR_SECRET("token", parse_token, Config, http.token),
        CONFIG_SCALAR("per_process_metrics", config_parse_bool, Config,
                      http.per_process_metrics, 0, 0),
        CONFIG_END,
};

static const ConfigKey history_table[] = {
        CONFIG_SCALAR("raw_hours", config_parse_uint64, Config, history.raw_hours, 1,
                      CONFIG_HISTORY_RAW_HOURS_MAX),
        CONFIG_SCALAR("days", config_parse_uint64, Config, history.days, 1,
                      CONFIG_HISTORY_DAYS_MAX),
        CONFIG_END,
};

/* Every key of gpukeeper.yaml. Keep in sync with docs/gpukeeper.yaml.5 and
 * packaging/gpukeeper.yaml. */
static const ConfigKey config_table[] = {
        CONFIG_SCALAR("socket", config_parse_socket_path, Config, socket_path, 0, 0),
        CONFIG_SCALAR("state_dir", config_parse_absolute_path, Config, state_dir, 0, 0),
        CONFIG_SCALAR("nvml_library", config_parse_library, Config, nvml_library, 0, 0),
        CONFIG_SCALAR("sample_interval", config_parse_duration, Config, sample_interval_usec,
                      100 * USEC_PER_MSEC, USEC_PER_HOUR),
        CONFIG_SCALAR("log_level", config_parse_log_level, Config, log_level, 0, 0),
        CONFIG_SECTION_CHECKED("policy", policy_table, policy_check),
        CONFIG_SECTION("enforcement", enforcement_table),
        CONFIG_SECTION_CHECKED("idle", idle_table, idle_check),
        CONFIG_SECTION_CHECKED("alerts", alerts_table, alerts_check),
        CONFIG_SECTION("env", env_table),
        CONFIG_SECTION_CHECKED("http", http_table, http_check),
        CONFIG_SECTION("history", history_table),
        CONFIG_END,
};

static void strv_free_n(char **v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

void config_free(Config *c)
{
        if (!c)
                return;
        free(c->path);
        free(c->socket_path);
        free(c->state_dir);
        free(c->nvml_library);
        for (size_t i = 0; i < c->policy.n_groups; i++)
                free(c->policy.groups[i].group);
        free(c->policy.groups);
        strv_free_n(c->enforcement.exempt_users, c->enforcement.n_exempt_users);
        strv_free_n(c->enforcement.exempt_executables, c->enforcement.n_exempt_executables);
        for (size_t i = 0; i < c->alerts.n_sinks; i++) {
                ConfigAlertSink *s = &c->alerts.sinks[i];

                free(s->name);
                free(s->url);
                free(s->secret);
                free(s->smtp_url);
                free(s->username);
                free(s->password);
                free(s->from);
                strv_free_n(s->to, s->n_to);
        }
        free(c->alerts.sinks);
        free(c->env.backup_dir);
        free(c->env.conda_exe);
        free(c->env.templates_dir);
        free(c->http.listen.text);
        free(c->http.token);
        free(c);
}

int config_new_defaults(Config **ret)
{
        _cleanup_(config_freep) Config *c = NULL;
        int r;

        assert(ret);

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->socket_path = strdup(CONFIG_DEFAULT_SOCKET);
        c->state_dir = strdup(CONFIG_DEFAULT_STATE_DIR);
        c->nvml_library = strdup(CONFIG_DEFAULT_NVML_LIBRARY);
        c->env.backup_dir = strdup(CONFIG_DEFAULT_ENV_BACKUP_DIR);
        c->env.conda_exe = strdup(CONFIG_DEFAULT_CONDA_EXE);
        c->env.templates_dir = strdup(CONFIG_DEFAULT_TEMPLATES_DIR);
        if (!c->socket_path || !c->state_dir || !c->nvml_library || !c->env.backup_dir ||
            !c->env.conda_exe || !c->env.templates_dir)
                return -ENOMEM;
        c->sample_interval_usec = CONFIG_DEFAULT_SAMPLE_INTERVAL_USEC;
        c->log_level = LOG_LEVEL_INFO;
        c->policy.limits = (ConfigPolicyLimits){
                .max_gpus = CONFIG_DEFAULT_MAX_GPUS,
                .default_duration_usec = CONFIG_DEFAULT_DEFAULT_DURATION_USEC,
                .max_duration_usec = CONFIG_DEFAULT_MAX_DURATION_USEC,
        };
        c->policy.unleased_memory_limit_bytes = CONFIG_DEFAULT_UNLEASED_MEMORY_LIMIT_BYTES;
        c->policy.reconnect_grace_usec = CONFIG_DEFAULT_RECONNECT_GRACE_USEC;
        c->enforcement = (ConfigEnforcement){
                .mode = CONFIG_ENFORCEMENT_ENFORCE,
                .grace_usec = CONFIG_DEFAULT_ENFORCEMENT_GRACE_USEC,
                .kill_timeout_usec = CONFIG_DEFAULT_KILL_TIMEOUT_USEC,
                .root_exempt = true,
        };
        c->idle = (ConfigIdle){
                .release_after_usec = CONFIG_DEFAULT_IDLE_RELEASE_AFTER_USEC,
                .warn_before_usec = CONFIG_DEFAULT_IDLE_WARN_BEFORE_USEC,
                .flag_after_usec = CONFIG_DEFAULT_IDLE_FLAG_AFTER_USEC,
        };
        c->alerts = (ConfigAlerts){
                .repeat_after_usec = CONFIG_DEFAULT_ALERT_REPEAT_AFTER_USEC,
                .memory_fraction = CONFIG_DEFAULT_ALERT_MEMORY_FRACTION,
                .memory_for_usec = CONFIG_DEFAULT_ALERT_MEMORY_FOR_USEC,
                .temperature_c = CONFIG_DEFAULT_ALERT_TEMPERATURE_C,
                .temperature_for_usec = CONFIG_DEFAULT_ALERT_TEMPERATURE_FOR_USEC,
        };
        c->env.backup_interval_usec = CONFIG_DEFAULT_ENV_BACKUP_INTERVAL_USEC;
        c->env.backup_keep = CONFIG_DEFAULT_ENV_BACKUP_KEEP;
        c->history.raw_hours = CONFIG_DEFAULT_HISTORY_RAW_HOURS;
        c->history.days = CONFIG_DEFAULT_HISTORY_DAYS;
        r = listen_from_string(CONFIG_DEFAULT_HTTP_LISTEN, &c->http.listen);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}

/* STATE_DIR/env-backups, without doubling the '/' of a state_dir that ends
 * in one ("/" or "/srv/gk/"). */
static int derive_backup_dir(const char *state_dir, char **ret)
{
        size_t n = strlen(state_dir);
        char *s;

        while (n > 0 && state_dir[n - 1] == '/')
                n--;
        if (asprintf(&s, "%.*s/%s", (int)n, state_dir, CONFIG_ENV_BACKUP_DIR_NAME) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int config_load(const char *path, Config **ret, char **ret_error)
{
        _cleanup_(config_freep) Config *c = NULL;
        int r;

        assert(path);
        assert(ret);

        r = config_new_defaults(&c);
        if (r < 0)
                return r;
        c->path = strdup(path);
        if (!c->path)
                return -ENOMEM;

        /* NULL until the file gives env.backup_dir: the default depends on
         * state_dir, which may come later in the file or not at all. */
        free(c->env.backup_dir);
        c->env.backup_dir = NULL;

        r = config_parse_yaml(path, config_table, c, ret_error);
        if (r < 0)
                return r;

        if (!c->env.backup_dir) {
                r = derive_backup_dir(c->state_dir, &c->env.backup_dir);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(c);
        return 0;
}

const ConfigPolicyLimits *config_policy_limits(const Config *c, const char *const *group_names,
                                               size_t n)
{
        assert(c);
        assert(group_names || n == 0);

        for (size_t i = 0; i < c->policy.n_groups; i++)
                for (size_t j = 0; j < n; j++)
                        if (group_names[j] &&
                            strcmp(c->policy.groups[i].group, group_names[j]) == 0)
                                return &c->policy.groups[i].limits;
        return &c->policy.limits;
}
