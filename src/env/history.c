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
#include <stdlib.h>
#include <string.h>

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

typedef struct SpecMap {
        char **names; /* parallel arrays, insertion order */
        char **specs;
        size_t n;
} SpecMap;

static void spec_map_done(SpecMap *m)
{
        for (size_t i = 0; i < m->n; i++) {
                free(m->names[i]);
                free(m->specs[i]);
        }
        free(m->names);
        free(m->specs);
}

static ssize_t spec_map_find(const SpecMap *m, const char *name)
{
        for (size_t i = 0; i < m->n; i++)
                if (strcmp(m->names[i], name) == 0)
                        return (ssize_t)i;
        return -1;
}

/* dict.update semantics: an existing name keeps its place, gets the new spec. */
static int spec_map_set(SpecMap *m, const char *spec)
{
        _cleanup_free_ char *name = env_spec_name(spec);
        char *s;
        ssize_t i;

        if (!name)
                return 0; /* not a spec we can name: conda would fail on it, skip */
        s = strdup(spec);
        if (!s)
                return -ENOMEM;
        i = spec_map_find(m, name);
        if (i >= 0) {
                free(m->specs[i]);
                m->specs[i] = s;
                return 0;
        }
        if (m->n >= ENV_MAX_PACKAGES) {
                free(s);
                return 0;
        }
        char **nn = realloc(m->names, sizeof(char *) * (m->n + 1));
        if (!nn) {
                free(s);
                return -ENOMEM;
        }
        m->names = nn;
        char **ns = realloc(m->specs, sizeof(char *) * (m->n + 1));
        if (!ns) {
                free(s);
                return -ENOMEM;
        }
        m->specs = ns;
        m->names[m->n] = TAKE_PTR(name);
        m->specs[m->n] = s;
        m->n++;
        return 0;
}

static void spec_map_remove(SpecMap *m, const char *spec)
{
        _cleanup_free_ char *name = env_spec_name(spec);
        ssize_t i;

        if (!name)
                return;
        i = spec_map_find(m, name);
        if (i < 0)
                return;
        free(m->names[i]);
        free(m->specs[i]);
        memmove(m->names + i, m->names + i + 1, sizeof(char *) * (m->n - (size_t)i - 1));
        memmove(m->specs + i, m->specs + i + 1, sizeof(char *) * (m->n - (size_t)i - 1));
        m->n--;
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

/* Parse a Python/JSON list of string literals: ['a', "b"]. Items that are not
 * quoted strings end the parse (conda's literal_eval would reject the line). */
static int parse_list_literal(const char *s, char ***v, size_t *n)
{
        const char *p = s + 1; /* after '[' */

        for (;;) {
                char q;
                const char *start;
                _cleanup_free_ char *item = NULL;
                size_t len = 0;
                int r;

                while (isspace((unsigned char)*p) || *p == ',')
                        p++;
                if (*p != '\'' && *p != '"')
                        return 0;
                q = *p++;
                start = p;
                item = malloc(strlen(start) + 1);
                if (!item)
                        return -ENOMEM;
                while (*p && *p != q) {
                        if (*p == '\\' && p[1])
                                p++;
                        item[len++] = *p++;
                }
                if (*p != q)
                        return 0;
                p++;
                item[len] = '\0';
                r = env_strv_push(v, n, strip(item));
                if (r < 0)
                        return r;
        }
}

static bool is_version_operator_piece(const char *s)
{
        return *s == '=' || *s == '<' || *s == '>' || *s == '!';
}

/* conda < 4.5: "python >=3.5,<3.6,numpy" → ["python >=3.5,<3.6", "numpy"]. */
static int parse_old_list(char *s, char ***v, size_t *n)
{
        char *save = NULL;

        for (char *piece = strtok_r(s, ",", &save); piece; piece = strtok_r(NULL, ",", &save)) {
                char *t = strip(piece);
                int r;

                if (*t == '\0')
                        continue;
                if (is_version_operator_piece(t) && *n > 0) {
                        char *joined;

                        if (asprintf(&joined, "%s,%s", (*v)[*n - 1], t) < 0)
                                return -ENOMEM;
                        free((*v)[*n - 1]);
                        (*v)[*n - 1] = joined;
                        continue;
                }
                r = env_strv_push(v, n, t);
                if (r < 0)
                        return r;
        }
        return 0;
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

int env_history_specs(const char *text, size_t len, char ***ret, size_t *ret_n)
{
        _cleanup_free_ char *copy = strndup(text, len);
        SpecMap m = {};
        char **out = NULL;
        size_t n_out = 0;
        char *save = NULL;
        int r = 0;

        if (!copy)
                return -ENOMEM;
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char **specs = NULL;
                size_t n = 0;
                char *list = NULL;
                Action a;

                a = parse_specs_comment(strip(line), &list);
                if (a == ACTION_NONE)
                        continue;
                if (list[0] == '[')
                        r = parse_list_literal(list, &specs, &n);
                else
                        r = parse_old_list(list, &specs, &n);
                for (size_t i = 0; r >= 0 && i < n; i++) {
                        if (a == ACTION_REMOVE)
                                spec_map_remove(&m, specs[i]);
                        else
                                r = spec_map_set(&m, specs[i]);
                }
                env_strv_free(specs, n);
                if (r < 0)
                        goto finish;
        }
        for (size_t i = 0; i < m.n; i++) {
                r = env_strv_push(&out, &n_out, m.specs[i]);
                if (r < 0)
                        goto finish;
        }
        *ret = TAKE_PTR(out);
        *ret_n = n_out;
        r = (int)n_out;
finish:
        env_strv_free(out, n_out);
        spec_map_done(&m);
        return r;
}
