/* conda-meta/history: the specs a user asked for, as conda derives them for
 * `conda env export --from-history` (conda/history.py, get_requested_specs_map).
 *
 * A history file is a sequence of blocks:
 *   ==> 2026-01-05 10:00:00 <==
 *   # cmd: /home/alice/miniconda3/bin/conda create -n myenv python=3.11
 *   # conda version: 24.1.2
 *   +conda-forge/linux-64::python-3.11.8-hab00c5b_0_cpython
 *   # update specs: ['python=3.11']
 * Spec lists come in three syntaxes: conda's Python list repr ['a', 'b'],
 * micromamba's ["a", "b"], and conda < 4.5's bare comma list where a piece that
 * starts with a version operator continues the previous spec
 * ("python >=3.5,<3.6,numpy"). */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "basic/strv.h"
#include "env/env-internal.h"

char *env_spec_name(const char *spec)
{
        const char *p, *colon;
        size_t len;
        char *name;

        while (isspace((unsigned char)*spec))
                spec++;
        /* "channel::name", "channel/subdir::name" */
        colon = strstr(spec, "::");
        if (colon)
                spec = colon + 2;
        p = spec;
        while (*p && !isspace((unsigned char)*p) && !strchr("=<>!~[(;@,", *p))
                p++;
        len = (size_t)(p - spec);
        if (len == 0)
                return NULL;
        name = strndup(spec, len);
        if (!name)
                return NULL;
        for (char *c = name; *c; c++)
                *c = (char)tolower((unsigned char)*c);
        return name;
}

/* The requested specs by name, in conda's dict order. A name removed and asked
 * for again goes to the end (Python's dict does the same): its old entry stays
 * with spec NULL and the index points at the new one. Lookups go through an
 * open-addressing hash index so a history with many specs stays linear. */
typedef struct SpecMap {
        char **names; /* parallel arrays, insertion order */
        char **specs; /* NULL: removed */
        size_t n, n_alloc;
        size_t live;   /* entries whose spec is not NULL */
        size_t *index; /* hash slots: entry number + 1, 0 empty; one per distinct name */
        size_t n_index, n_keys;
} SpecMap;

static void spec_map_done(SpecMap *m)
{
        for (size_t i = 0; i < m->n; i++) {
                free(m->names[i]);
                free(m->specs[i]);
        }
        free(m->names);
        free(m->specs);
        free(m->index);
}

static size_t hash_name(const char *s)
{
        uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a */

        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
        return (size_t)h;
}

/* The slot of `name`: the one holding it, else the empty one where it goes.
 * The table is never full (spec_map_reserve keeps it at most half used). */
static size_t *spec_map_slot(const SpecMap *m, const char *name)
{
        size_t mask = m->n_index - 1;

        for (size_t i = hash_name(name) & mask;; i = (i + 1) & mask)
                if (m->index[i] == 0 || strcmp(m->names[m->index[i] - 1], name) == 0)
                        return &m->index[i];
}

/* Room for one more distinct name in the index and one more entry. */
static int spec_map_reserve(SpecMap *m)
{
        if ((m->n_keys + 1) * 2 > m->n_index) {
                size_t n_new = m->n_index ? m->n_index * 2 : 64, *old = m->index, n_old = m->n_index;

                m->index = calloc(n_new, sizeof(size_t));
                if (!m->index) {
                        m->index = old;
                        return -ENOMEM;
                }
                m->n_index = n_new;
                for (size_t i = 0; i < n_old; i++)
                        if (old[i])
                                *spec_map_slot(m, m->names[old[i] - 1]) = old[i];
                free(old);
        }
        if (m->n == m->n_alloc) {
                size_t n_new = m->n_alloc ? m->n_alloc * 2 : 16;
                char **nn = realloc(m->names, sizeof(char *) * n_new), **ns;

                if (!nn)
                        return -ENOMEM;
                m->names = nn;
                ns = realloc(m->specs, sizeof(char *) * n_new);
                if (!ns)
                        return -ENOMEM;
                m->specs = ns;
                m->n_alloc = n_new;
        }
        return 0;
}

/* dict.update semantics: an existing name keeps its place, gets the new spec. */
static int spec_map_set(SpecMap *m, const char *spec)
{
        _cleanup_free_ char *name = env_spec_name(spec);
        size_t *slot;
        char *s;
        int r;

        if (!name)
                return 0; /* not a spec we can name: conda would fail on it, skip */
        r = spec_map_reserve(m);
        if (r < 0)
                return r;
        s = strdup(spec);
        if (!s)
                return -ENOMEM;
        slot = spec_map_slot(m, name);
        if (*slot != 0 && m->specs[*slot - 1]) {
                free(m->specs[*slot - 1]);
                m->specs[*slot - 1] = s;
                return 0;
        }
        if (m->live >= ENV_MAX_PACKAGES) {
                free(s);
                return 0;
        }
        if (*slot == 0)
                m->n_keys++;
        m->names[m->n] = TAKE_PTR(name);
        m->specs[m->n] = s;
        *slot = ++m->n;
        m->live++;
        return 0;
}

static void spec_map_remove(SpecMap *m, const char *spec)
{
        _cleanup_free_ char *name = env_spec_name(spec);
        size_t *slot;

        if (!name || m->n_index == 0)
                return;
        slot = spec_map_slot(m, name);
        if (*slot == 0 || !m->specs[*slot - 1])
                return;
        free(m->specs[*slot - 1]);
        m->specs[*slot - 1] = NULL;
        m->live--;
}

static char *strip(char *s)
{
        char *e;

        while (isspace((unsigned char)*s))
                s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1]))
                *--e = '\0';
        return s;
}

/* A string vector that grows by doubling: a history can hold 10^5 specs,
 * and env_strv_consume's one-slot realloc would copy the array each time
 * where realloc cannot grow in place (sanitizers, fragmented heaps). The
 * array stays NULL-terminated, so env_strv_free takes it. */
typedef struct SpecVec {
        char **v;
        size_t n, cap;
} SpecVec;

static int spec_vec_consume(SpecVec *sv, char *s)
{
        if (!s)
                return -ENOMEM;
        if (sv->n + 2 > sv->cap) {
                size_t cap = MAX(sv->cap * 2, (size_t)16);
                char **nv = realloc(sv->v, sizeof(char *) * cap);

                if (!nv) {
                        free(s);
                        return -ENOMEM;
                }
                sv->v = nv;
                sv->cap = cap;
        }
        sv->v[sv->n++] = s;
        sv->v[sv->n] = NULL;
        return 0;
}

/* Parse a Python/JSON list of string literals: ['a', "b"]. Items that are not
 * quoted strings end the parse (conda's literal_eval would reject the line).
 * At most `max` items are taken; returns how many, or -ENOMEM. Each item is
 * allocated by its own length, so the parse is linear in the line. */
static int parse_list_literal(const char *s, size_t max, SpecVec *v)
{
        const char *p = s + 1; /* after '[' */
        size_t taken = 0;

        while (taken < max) {
                char q;
                const char *start;
                _cleanup_free_ char *item = NULL;
                size_t len = 0;
                int r;

                while (isspace((unsigned char)*p) || *p == ',')
                        p++;
                if (*p != '\'' && *p != '"')
                        break;
                q = *p++;
                start = p;
                while (*p && *p != q)
                        p += *p == '\\' && p[1] ? 2 : 1;
                if (*p != q)
                        break;
                item = malloc((size_t)(p - start) + 1);
                if (!item)
                        return -ENOMEM;
                for (const char *c = start; c < p; c++) {
                        if (*c == '\\' && c + 1 < p)
                                c++;
                        item[len++] = *c;
                }
                item[len] = '\0';
                p++;
                r = spec_vec_consume(v, strdup(strip(item)));
                if (r < 0)
                        return r;
                taken++;
        }
        return (int)taken;
}

static bool is_version_operator_piece(const char *s)
{
        return *s == '=' || *s == '<' || *s == '>' || *s == '!';
}

/* conda < 4.5: "python >=3.5,<3.6,numpy" → ["python >=3.5,<3.6", "numpy"].
 * A spec and the operator pieces that continue it are joined in one growing
 * buffer (a re-copy per piece would be quadratic). At most `max` specs;
 * returns how many, or -ENOMEM. */
static int parse_old_list(char *s, size_t max, SpecVec *v)
{
        _cleanup_free_ char *cur = NULL;
        size_t len = 0, alloc = 0, taken = 0;
        char *save = NULL;
        int r;

        for (char *piece = strtok_r(s, ",", &save); piece; piece = strtok_r(NULL, ",", &save)) {
                char *t = strip(piece);
                size_t tl = strlen(t);

                if (*t == '\0')
                        continue;
                if (!(is_version_operator_piece(t) && cur)) {
                        if (cur) {
                                r = spec_vec_consume(v, TAKE_PTR(cur));
                                if (r < 0)
                                        return r;
                        }
                        if (taken == max)
                                return (int)taken;
                        taken++;
                        len = alloc = 0;
                }
                /* cur + ',' (when continuing) + t + NUL */
                if (len + 1 + tl + 1 > alloc) {
                        size_t a = MAX(alloc * 2, len + 1 + tl + 1);
                        char *c = realloc(cur, a);

                        if (!c)
                                return -ENOMEM;
                        cur = c;
                        alloc = a;
                }
                if (len > 0)
                        cur[len++] = ',';
                memcpy(cur + len, t, tl);
                len += tl;
                cur[len] = '\0';
        }
        if (cur) {
                r = spec_vec_consume(v, TAKE_PTR(cur));
                if (r < 0)
                        return r;
        }
        return (int)taken;
}

typedef enum Action { ACTION_NONE, ACTION_UPDATE, ACTION_REMOVE, ACTION_NEUTER } Action;

/* "# update specs: [...]" → action and the list text. */
static Action parse_specs_comment(char *line, char **ret_list)
{
        static const struct {
                const char *word;
                Action action;
        } words[] = {
                { "update", ACTION_UPDATE },  { "install", ACTION_UPDATE },
                { "create", ACTION_UPDATE },  { "remove", ACTION_REMOVE },
                { "uninstall", ACTION_REMOVE }, { "neutered", ACTION_NEUTER },
        };
        char *p = line;

        if (*p != '#')
                return ACTION_NONE;
        p++;
        while (*p == ' ' || *p == '\t')
                p++;
        for (size_t i = 0; i < ELEMENTSOF(words); i++) {
                size_t wl = strlen(words[i].word);
                char *q;

                if (strncmp(p, words[i].word, wl) != 0)
                        continue;
                q = p + wl;
                while (*q == ' ' || *q == '\t')
                        q++;
                if (strncmp(q, "specs:", 6) != 0)
                        continue;
                *ret_list = strip(q + 6);
                return words[i].action;
        }
        return ACTION_NONE;
}

int env_history_specs(const char *text, size_t len, char ***ret, size_t *ret_n, char ***warnings,
                      size_t *n_warnings)
{
        _cleanup_free_ char *copy = strndup(text, len);
        SpecMap m = {};
        SpecVec out = {};
        size_t n_items = 0, line_no = 0;
        bool long_line = false, too_many = false;
        char *save = NULL;
        int r = 0;

        if (!copy)
                return -ENOMEM;
        for (char *line = strtok_r(copy, "\n", &save); line && !too_many;
             line = strtok_r(NULL, "\n", &save)) {
                SpecVec specs = {};
                char *list = NULL;
                Action a;

                line_no++;
                if (strlen(line) > ENV_MAX_HISTORY_LINE_BYTES) {
                        if (!long_line && warnings &&
                            strv_pushf(warnings, n_warnings,
                                           "conda-meta/history: line %zu is longer than %u bytes, "
                                           "skipped (and any others as long)",
                                           line_no, ENV_MAX_HISTORY_LINE_BYTES) < 0) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        long_line = true;
                        continue;
                }
                a = parse_specs_comment(strip(line), &list);
                if (a == ACTION_NONE)
                        continue;
                if (list[0] == '[')
                        r = parse_list_literal(list, ENV_MAX_HISTORY_SPECS - n_items, &specs);
                else
                        r = parse_old_list(list, ENV_MAX_HISTORY_SPECS - n_items, &specs);
                n_items += specs.n;
                too_many = n_items >= ENV_MAX_HISTORY_SPECS;
                for (size_t i = 0; r >= 0 && i < specs.n; i++) {
                        if (a == ACTION_REMOVE)
                                spec_map_remove(&m, specs.v[i]);
                        else
                                r = spec_map_set(&m, specs.v[i]);
                }
                strv_free_n(specs.v, specs.n);
                if (r < 0)
                        goto finish;
        }
        if (too_many && warnings &&
            strv_pushf(warnings, n_warnings,
                           "conda-meta/history: more than %u specs, the rest is ignored",
                           ENV_MAX_HISTORY_SPECS) < 0) {
                r = -ENOMEM;
                goto finish;
        }
        for (size_t i = 0; i < m.n; i++) {
                if (!m.specs[i])
                        continue;
                r = spec_vec_consume(&out, strdup(m.specs[i]));
                if (r < 0)
                        goto finish;
        }
        *ret = TAKE_PTR(out.v);
        *ret_n = out.n;
        r = (int)out.n;
        out.n = 0;
finish:
        strv_free_n(out.v, out.n);
        spec_map_done(&m);
        return r;
}
