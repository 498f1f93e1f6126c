/* The generic table-driven loader of config/loader.h, over libyaml's event
 * API.
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
#include "config/loader.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "basic/fileio.h"
#include "basic/macro.h"


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
        char *error; /* every error, "PATH:LINE:COL: ...", one a line (no final newline) */
        size_t n_errors;
        bool fatal; /* the event stream cannot be followed further (syntax, limits) */
        int depth;  /* mappings and lists open in the event stream */
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

/* An unknown key is quoted shorter, and only up to the first byte that no key
 * name has: a file that is not a config at all (a symlink to /etc/shadow)
 * must not have its first line copied into the log ('root...', not the
 * password hash after it). */
#define UNKNOWN_KEY_QUOTE_MAX 16

static const char *quote_unknown_key(char *buf, size_t len, const char *s, size_t n)
{
        size_t keep = 0;

        /* Letters, digits, '_', '-', '<', '>' and control bytes (quote()
         * escapes those) are shown; anything else ends the quote. */
        while (keep < n && keep < UNKNOWN_KEY_QUOTE_MAX &&
               ((unsigned char)s[keep] < 0x20 || s[keep] == 0x7f ||
                (s[keep] != '\0' &&
                 strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-<>",
                        s[keep]))))
                keep++;
        quote(buf, len, s, keep);
        if (keep < n)
                strcat(buf, "...");
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

/* Record an error at 1-based (line, col), after those recorded so far (an
 * admin fixes them all in one go, gpukeeperd(8)); after CONFIG_MAX_ERRORS
 * the walk stops. Returns -EINVAL, or -ENOMEM if the message could not be
 * built. */
_printf_(4, 0) static int loader_verror_at(Loader *l, size_t line, size_t col, const char *fmt,
                                          va_list ap)
{
        _cleanup_free_ char *msg = NULL;
        char *all;

        if (l->n_errors >= CONFIG_MAX_ERRORS) {
                l->fatal = true;
                return -EINVAL;
        }
        if (vasprintf(&msg, fmt, ap) < 0) {
                msg = NULL; /* glibc leaves it undefined */
                return -ENOMEM;
        }

        if (asprintf(&all, "%s%s%s:%zu:%zu: %s%s", l->error ?: "", l->error ? "\n" : "", l->path,
                     line, col, msg,
                     l->n_errors + 1 == CONFIG_MAX_ERRORS ? " (further errors not shown)" : "") < 0)
                return -ENOMEM;
        free(l->error);
        l->error = all;
        if (++l->n_errors >= CONFIG_MAX_ERRORS)
                l->fatal = true;
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

        l->fatal = true; /* libyaml cannot go on after it */
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
        if (ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT)
                l->depth++;
        else if (ev->type == YAML_MAPPING_END_EVENT || ev->type == YAML_SEQUENCE_END_EVENT)
                l->depth--;

        switch (ev->type) {
        case YAML_ALIAS_EVENT:
                l->fatal = true;
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

        if (anchor || tag)
                l->fatal = true; /* not worth following: the node could be anywhere */
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

/* After an error inside a value, consume the events up to the end of the
 * mappings and lists opened since `depth`, so the walk can go on and
 * report the errors after it too. */
static int loader_skip_to(Loader *l, int depth)
{
        while (l->depth > depth) {
                _cleanup_(yaml_event_deletep) yaml_event_t ev = {0};
                int r = loader_next(l, &ev, NULL);

                if (r < 0)
                        return r;
        }
        return 0;
}

/* Consume the next node (a scalar, or a whole mapping or list). */
static int loader_skip_node(Loader *l)
{
        _cleanup_(yaml_event_deletep) yaml_event_t ev = {0};
        int depth = l->depth, r;

        r = loader_next(l, &ev, NULL);
        if (r < 0)
                return r;
        return loader_skip_to(l, depth);
}

/* Whether the walk may go on after `r` from reading one value: a plain
 * error in the file (-EINVAL) while the stream can still be followed. */
static bool loader_recoverable(const Loader *l, int r)
{
        return r == -EINVAL && !l->fatal;
}

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
        bool failed = false;
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
                        return failed ? -EINVAL : 0;

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
                /* An item with errors was read to its end: go on to the next. */
                r = loader_mapping(l, key->section, item, item_name, ev.start_mark);
                if (r < 0 && !loader_recoverable(l, r))
                        return r;
                if (r < 0)
                        failed = true;
        }
}

/* Read the mapping of named entries `key` (NAMED), written as `name`, whose
 * first event is `first`: each entry is appended to the array like an item
 * of loader_list(), its name converted by key->parse into the item's name
 * field, its value read with key->section as "name.ENTRY". */
static int loader_named(Loader *l, const ConfigKey *key, void *base, const char *name,
                        const yaml_event_t *first)
{
        void **items = (void **)((uint8_t *)base + key->offset);
        size_t *n = (size_t *)((uint8_t *)base + key->count_offset);
        bool failed = false;
        int r;

        assert(*n == 0 && !*items);

        if (first->type == YAML_SCALAR_EVENT && scalar_is_null(first))
                return 0; /* "groups:" with nothing after it */
        if (first->type != YAML_MAPPING_START_EVENT)
                return loader_error(l, first->start_mark,
                                    "'%s' must be a mapping of names to sections, not %s", name,
                                    event_kind(first));

        for (;;) {
                _cleanup_(yaml_event_deletep) yaml_event_t ev = {0}, value = {0};
                char item_name[KEY_NAME_MAX + QUOTE_BUF_SIZE], q[QUOTE_BUF_SIZE];
                char problem[PROBLEM_MAX] = "";
                uint8_t *grown, *item;
                const char *v;
                int depth;

                r = loader_next(l, &ev, name);
                if (r < 0)
                        return r;
                if (ev.type == YAML_MAPPING_END_EVENT)
                        return failed ? -EINVAL : 0;
                if (ev.type != YAML_SCALAR_EVENT) {
                        l->fatal = true;
                        return loader_error(l, ev.start_mark,
                                            "keys must be plain names, not %s", event_kind(&ev));
                }
                v = (const char *)ev.data.scalar.value;
                snprintf(item_name, sizeof item_name, "%s.%s", name,
                         quote(q, sizeof q, v, ev.data.scalar.length));
                if (*n >= key->max_items)
                        return loader_error(l, ev.start_mark,
                                            "too many entries in '%s' (at most %zu)", name,
                                            key->max_items);

                grown = reallocarray(*items, *n + 1, key->item_size);
                if (!grown)
                        return -ENOMEM;
                item = grown + *n * key->item_size;
                memset(item, 0, key->item_size);
                *items = grown;
                (*n)++;

                if (scalar_has_nul(&ev))
                        r = loader_error(l, ev.start_mark, "the name '%s' contains a NUL character",
                                         item_name);
                else {
                        r = key->parse(key, v, item + key->name_offset, problem, sizeof problem);
                        if (r == -EINVAL)
                                r = loader_error(l, ev.start_mark, "invalid name in '%s': %s",
                                                 item_name, problem);
                }
                if (r == 0)
                        for (size_t i = 0; i + 1 < *n; i++) {
                                const char *other = *(char **)((uint8_t *)*items +
                                                               i * key->item_size + key->name_offset);

                                if (other && strcmp(other, v) == 0) {
                                        r = loader_error(l, ev.start_mark,
                                                         "duplicate entry '%s'", item_name);
                                        break;
                                }
                        }
                if (r == 0)
                        r = loader_record(l, item_name, ev.start_mark);
                if (r < 0) {
                        if (!loader_recoverable(l, r))
                                return r;
                        failed = true;
                        r = loader_skip_node(l);
                        if (r < 0)
                                return r;
                        continue;
                }

                depth = l->depth;
                r = loader_next(l, &value, item_name);
                if (r < 0)
                        return r;
                if (value.type == YAML_MAPPING_START_EVENT)
                        r = loader_mapping(l, key->section, item, item_name, value.start_mark);
                else if (value.type == YAML_SCALAR_EVENT && scalar_is_null(&value))
                        r = 0; /* "phd:" with nothing after it */
                else
                        r = loader_error(l, value.start_mark,
                                         "'%s' must be a mapping of keys, not %s", item_name,
                                         event_kind(&value));
                if (r < 0) {
                        if (!loader_recoverable(l, r))
                                return r;
                        failed = true;
                        r = loader_skip_to(l, depth);
                        if (r < 0)
                                return r;
                }
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
                base = (uint8_t *)base + key->offset; /* the section's own struct */
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
        if (key->kind == CONFIG_KEY_NAMED)
                return loader_named(l, key, base, name, &ev);
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
        bool failed = false;
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
                int depth;

                r = loader_next(l, &ev, NULL);
                if (r < 0)
                        return r;
                if (ev.type == YAML_MAPPING_END_EVENT)
                        break;
                if (ev.type != YAML_SCALAR_EVENT) {
                        l->fatal = true; /* a complex key: not worth following */
                        return loader_error(l, ev.start_mark,
                                            "keys must be plain names, not %s", event_kind(&ev));
                }

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
                        snprintf(name, sizeof name, "%s%s%s", section ?: "", section ? "." : "",
                                 quote_unknown_key(q, sizeof q, v, ev.data.scalar.length));
                        if (section)
                                r = loader_error(l, ev.start_mark,
                                                 "unknown key '%s' (known keys in '%s': %s)",
                                                 name, section, known);
                        else
                                r = loader_error(l, ev.start_mark,
                                                 "unknown key '%s' (known keys: %s)", name, known);
                } else if (first_line[i] > 0)
                        r = loader_error(l, ev.start_mark,
                                         "duplicate key '%s' (first given on line %zu)", name,
                                         first_line[i]);
                else
                        r = 0;
                if (r < 0) {
                        /* Skip the key's value and go on to report the rest. */
                        if (!loader_recoverable(l, r))
                                return r;
                        failed = true;
                        r = loader_skip_node(l);
                        if (r < 0)
                                return r;
                        continue;
                }
                first_line[i] = ev.start_mark.line + 1;

                depth = l->depth;
                r = loader_value(l, key, base, name);
                if (r < 0) {
                        if (!loader_recoverable(l, r))
                                return r;
                        failed = true;
                        r = loader_skip_to(l, depth);
                        if (r < 0)
                                return r;
                }
        }

        /* Reported at the start of the mapping: the key is nowhere to point at. */
        for (size_t i = 0; i < n_keys; i++)
                if (table[i].required && first_line[i] == 0) {
                        r = loader_error(l, start, "missing required key '%s%s%s'",
                                         section ?: "", section ? "." : "", table[i].name);
                        if (!loader_recoverable(l, r))
                                return r;
                        failed = true;
                }
        return failed ? -EINVAL : 0;
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
        int r;

        /* O_NONBLOCK so that opening a FIFO by mistake does not hang the
         * daemon; it has no effect on reading a regular file. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                r = negative_errno();
                return file_error(r, ret_error, "%s: %s", path, strerror(-r));
        }
        r = read_full_fd(fd, CONFIG_FILE_MAX, ret_text, ret_size);
        if (r == -EINVAL)
                return file_error(-EINVAL, ret_error, "%s: not a regular file", path);
        if (r == -EFBIG)
                return file_error(-EINVAL, ret_error,
                                  "%s: file is too large (the limit is %" PRIu64 " bytes)", path,
                                  CONFIG_FILE_MAX);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return file_error(r, ret_error, "%s: %s", path, strerror(-r));
        return 0;
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
        /* A UTF-8 byte-order mark (editors on Windows write one) is no part
         * of the YAML; positions count from after it. */
        if (l.size >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
                l.text += 3;
                l.size -= 3;
        }

        nul = memchr(l.text, '\0', l.size);
        if (nul) {
                size_t line, col;

                position_of_offset(&l, (size_t)(nul - l.text), &line, &col);
                r = loader_error_at(&l, line, col, "the file contains a NUL byte");
                error = TAKE_PTR(l.error);
                goto finish;
        }

        if (!yaml_parser_initialize(&l.parser)) {
                r = -ENOMEM;
                goto finish;
        }
        yaml_parser_set_encoding(&l.parser, YAML_UTF8_ENCODING);
        yaml_parser_set_input_string(&l.parser, (const unsigned char *)l.text, l.size);
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

