/* Reading a node's gres.conf the way slurmd numbers its GPUs, so the prolog
 * can turn a job's gres indices (SLURM_JOB_GPUS) into the device files
 * Slurm gave it, and those files into a whole GPU (/dev/nvidia<minor>) or a
 * MIG instance (MultipleFiles= with its nvidia-caps nodes, resolved through
 * /proc/driver/nvidia-caps/mig-minors). gres.conf written by hand need not
 * follow `gpukeeper slurm gres`'s order; the files say which device a record
 * is, whatever its place.
 *
 * Pure text in, structs out; no I/O, no logging. */
#include "slurm/slurm.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "basic/macro.h"

#define GRESCONF_LINE_MAX 4096
#define GRESCONF_EXPAND_MAX 1024 /* names one bracket expression may give */

/* Expand one name with at most one bracket group, "nvidia[0-1,3]" or
 * "node[01-04]" (zero padding kept), calling `fn` per name. Returns 0,
 * the first negative return of `fn`, -EINVAL on bad syntax or -E2BIG. */
static int expand(const char *text, size_t len, int (*fn)(const char *name, void *u), void *u)
{
        const char *open = memchr(text, '[', len), *close;
        char name[SLURM_PATH_MAX];
        size_t count = 0;

        if (!open) {
                if (len == 0 || len >= sizeof name)
                        return -EINVAL;
                memcpy(name, text, len);
                name[len] = '\0';
                return fn(name, u);
        }
        close = memchr(open, ']', len - (size_t)(open - text));
        if (!close || memchr(close + 1, '[', len - (size_t)(close + 1 - text)))
                return -EINVAL;
        for (const char *p = open + 1; p < close;) {
                const char *q = p;
                unsigned long lo, hi;
                char *end;
                int width = 0;

                if (!isdigit((unsigned char)*p))
                        return -EINVAL;
                lo = strtoul(p, &end, 10);
                if (*p == '0' && end - p > 1)
                        width = (int)(end - p);
                hi = lo;
                p = end;
                if (*p == '-') {
                        q = ++p;
                        if (!isdigit((unsigned char)*q))
                                return -EINVAL;
                        hi = strtoul(q, &end, 10);
                        p = end;
                }
                if (hi < lo || (p != close && *p != ','))
                        return -EINVAL;
                if (*p == ',')
                        p++;
                for (unsigned long v = lo; v <= hi; v++) {
                        int k, r;

                        if (++count > GRESCONF_EXPAND_MAX)
                                return -E2BIG;
                        k = snprintf(name, sizeof name, "%.*s%0*lu%.*s", (int)(open - text), text,
                                     width, v, (int)(len - (size_t)(close + 1 - text)),
                                     close + 1);
                        if (k < 0 || (size_t)k >= sizeof name)
                                return -EINVAL;
                        r = fn(name, u);
                        if (r < 0)
                                return r;
                }
        }
        return count ? 0 : -EINVAL;
}

/* Split a comma list whose commas inside brackets belong to the bracket
 * expression ("a[0,1],b"), expanding each element. */
static int expand_list(const char *text, int (*fn)(const char *name, void *u), void *u)
{
        const char *start = text;
        int depth = 0;

        for (const char *p = text;; p++) {
                if (*p == '[')
                        depth++;
                else if (*p == ']')
                        depth--;
                if ((*p == ',' && depth == 0) || *p == '\0') {
                        int r = expand(start, (size_t)(p - start), fn, u);

                        if (r < 0)
                                return r;
                        if (*p == '\0')
                                return 0;
                        start = p + 1;
                }
        }
}

typedef struct NodeMatch {
        const char *node;
        bool found;
} NodeMatch;

static int match_node(const char *name, void *u)
{
        NodeMatch *m = u;

        m->found |= strcmp(name, m->node) == 0;
        return 0;
}

typedef struct Collect {
        SlurmGresRecord *recs;
        size_t n, max;
        bool multiple;   /* MultipleFiles=: every name goes into one record */
        unsigned line;
} Collect;

static int collect_file(const char *name, void *u)
{
        Collect *c = u;
        SlurmGresRecord *rec;

        if (!c->multiple || c->recs[c->n].n_files == 0) {
                if (c->n >= c->max)
                        return -E2BIG;
                c->recs[c->n] = (SlurmGresRecord){.line = c->line};
        }
        rec = &c->recs[c->n];
        if (rec->n_files >= SLURM_GRES_FILES_MAX)
                return -E2BIG;
        snprintf(rec->files[rec->n_files++], sizeof rec->files[0], "%s", name);
        if (!c->multiple)
                c->n++;
        return 0;
}

/* The value of `key` among the line's `Key=value` words, NULL when absent. */
static const char *word_value(char *const *words, size_t n, const char *key)
{
        size_t klen = strlen(key);

        for (size_t i = 0; i < n; i++)
                if (strncasecmp(words[i], key, klen) == 0 && words[i][klen] == '=')
                        return words[i] + klen + 1;
        return NULL;
}

int slurm_gresconf_parse(const char *text, const char *node, SlurmGresRecord *ret, size_t max,
                         unsigned *ret_line)
{
        Collect c = {.recs = ret, .max = max};
        unsigned line = 0;

        for (const char *l = text; l && *l;) {
                const char *eol = strchr(l, '\n');
                size_t len = eol ? (size_t)(eol - l) : strlen(l);
                char buf[GRESCONF_LINE_MAX], *words[64], *save = NULL, *hash;
                const char *name, *autodetect, *nodes, *file, *multiple;
                size_t n_words = 0;
                int r = 0;

                line++;
                if (len >= sizeof buf)
                        goto bad;
                memcpy(buf, l, len);
                buf[len] = '\0';
                l = eol ? eol + 1 : NULL;
                hash = strchr(buf, '#');
                if (hash)
                        *hash = '\0';
                for (char *w = strtok_r(buf, " \t\r", &save); w; w = strtok_r(NULL, " \t\r", &save)) {
                        if (n_words >= ELEMENTSOF(words) || !strchr(w, '='))
                                goto bad;
                        words[n_words++] = w;
                }
                if (n_words == 0)
                        continue;
                nodes = word_value(words, n_words, "NodeName");
                if (nodes) {
                        NodeMatch m = {.node = node};

                        if (expand_list(nodes, match_node, &m) < 0)
                                goto bad;
                        if (!m.found)
                                continue;
                }
                autodetect = word_value(words, n_words, "AutoDetect");
                if (autodetect && strcasecmp(autodetect, "off") != 0)
                        return -EOPNOTSUPP; /* records come from the driver, in its order */
                name = word_value(words, n_words, "Name");
                if (!name || strcasecmp(name, "gpu") != 0)
                        continue;
                file = word_value(words, n_words, "File");
                multiple = word_value(words, n_words, "MultipleFiles");
                if (file && multiple)
                        goto bad; /* Slurm refuses both on one line */
                c.line = line;
                if (multiple) {
                        c.multiple = true;
                        if (c.n >= c.max)
                                return -E2BIG;
                        c.recs[c.n] = (SlurmGresRecord){.line = line};
                        r = expand_list(multiple, collect_file, &c);
                        if (r >= 0)
                                c.n++;
                } else if (file) {
                        c.multiple = false;
                        r = expand_list(file, collect_file, &c);
                } else {
                        /* Count= without files: gres units Slurm cannot fence
                         * and we cannot name. */
                        return -ENODEV;
                }
                if (r == -E2BIG)
                        return r;
                if (r < 0)
                        goto bad;
        }
        return (int)c.n;
bad:
        if (ret_line)
                *ret_line = line;
        return -EINVAL;
}

/* The number after `prefix` at the end of a path's last component. */
static int trailing_number(const char *path, const char *prefix, unsigned *ret)
{
        const char *base = strrchr(path, '/');
        size_t plen = strlen(prefix);
        char *end;
        unsigned long v;

        base = base ? base + 1 : path;
        if (strncmp(base, prefix, plen) != 0 || !isdigit((unsigned char)base[plen]))
                return -EINVAL;
        v = strtoul(base + plen, &end, 10);
        if (*end || v > 1u << 20)
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}

/* Which mig-minors entry has nvidia-caps minor `cap`: fills gpu, gi and ci
 * (-1 for a GPU instance's own access file). -ENOENT when none. */
static int caps_entry(const char *mig_minors, unsigned cap, unsigned *ret_gpu, int *ret_gi,
                      int *ret_ci)
{
        for (const char *l = mig_minors; l && *l;) {
                const char *eol = strchr(l, '\n');
                unsigned gpu, gi, ci, minor;
                char tail[16];

                if (sscanf(l, "gpu%u/gi%u/ci%u/acces%15s %u", &gpu, &gi, &ci, tail, &minor) == 5 &&
                    strcmp(tail, "s") == 0 && minor == cap) {
                        *ret_gpu = gpu;
                        *ret_gi = (int)gi;
                        *ret_ci = (int)ci;
                        return 0;
                }
                if (sscanf(l, "gpu%u/gi%u/acces%15s %u", &gpu, &gi, tail, &minor) == 4 &&
                    strcmp(tail, "s") == 0 && minor == cap) {
                        *ret_gpu = gpu;
                        *ret_gi = (int)gi;
                        *ret_ci = -1;
                        return 0;
                }
                l = eol ? eol + 1 : NULL;
        }
        return -ENOENT;
}

int slurm_gres_record_target(const SlurmGresRecord *rec, const char *mig_minors,
                             SlurmGresTarget *ret)
{
        SlurmGresTarget t = {.minor = -1, .gi = -1, .ci = -1};
        bool caps = false;

        for (size_t i = 0; i < rec->n_files; i++) {
                unsigned v, gpu;
                int gi, ci;

                if (trailing_number(rec->files[i], "nvidia-cap", &v) == 0) {
                        if (!mig_minors || caps_entry(mig_minors, v, &gpu, &gi, &ci) < 0)
                                return -ENOENT;
                        if ((t.minor >= 0 && (unsigned)t.minor != gpu) ||
                            (t.gi >= 0 && t.gi != gi) || (ci >= 0 && t.ci >= 0 && t.ci != ci))
                                return -EINVAL; /* caps of two instances in one record */
                        t.minor = (int)gpu;
                        t.gi = gi;
                        if (ci >= 0)
                                t.ci = ci;
                        caps = true;
                } else if (trailing_number(rec->files[i], "nvidia", &v) == 0) {
                        if (t.minor >= 0 && (unsigned)t.minor != v)
                                return -EINVAL; /* two GPUs in one record */
                        t.minor = (int)v;
                } else
                        return -EINVAL; /* not a file of NVIDIA's driver */
        }
        if (t.minor < 0 || (caps && t.gi < 0))
                return -EINVAL;
        /* A GPU instance's access file alone: its (only) compute instance 0. */
        if (caps && t.ci < 0)
                t.ci = 0;
        *ret = t;
        return 0;
}
