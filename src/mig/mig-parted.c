/* mig-parted v1 parsing (see mig-parted.h). libyaml's document API gives
 * every node its line; the walk is fixed-depth (file → configs → entries →
 * fields), every list and map is bounded, so an alias cannot make it
 * expensive. Library code: errors go to the caller's buffer, never a log. */
#include "mig/mig-parted.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

typedef struct Walk {
        yaml_document_t *doc;
        const char *filename;
        char *error;
        size_t error_size;
} Walk;

static int fail(Walk *w, const yaml_node_t *node, const char *where, const char *fmt, ...)
        _printf_(4, 5);
static int fail(Walk *w, const yaml_node_t *node, const char *where, const char *fmt, ...)
{
        char msg[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(w->error, w->error_size, "%s:%zu: %s%s%s", w->filename,
                 node ? node->start_mark.line + 1 : 1, where, where[0] ? ": " : "", msg);
        /* Values quoted from the file may span lines (a folded plain scalar
         * keeps a newline for each empty line): the message stays one line. */
        for (char *c = w->error; *c; c++)
                if ((unsigned char)*c < 0x20 || *c == 0x7f)
                        *c = '?';
        return -EINVAL;
}

static yaml_node_t *node_get(Walk *w, int id)
{
        return yaml_document_get_node(w->doc, id);
}

static const char *scalar(const yaml_node_t *n)
{
        return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* A plain or quoted scalar with no embedded NUL. */
static bool scalar_ok(const yaml_node_t *n)
{
        return n && n->type == YAML_SCALAR_NODE &&
               strlen((const char *)n->data.scalar.value) == n->data.scalar.length;
}

static int parse_bool(Walk *w, const yaml_node_t *n, const char *where, bool *ret)
{
        const char *v = scalar(n);

        if (!scalar_ok(n) || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return fail(w, n, where, "must be true or false");
        /* YAML 1.1 booleans as go-yaml reads them. */
        if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE") || !strcmp(v, "yes") ||
            !strcmp(v, "on"))
                *ret = true;
        else if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE") ||
                 !strcmp(v, "no") || !strcmp(v, "off"))
                *ret = false;
        else
                return fail(w, n, where, "must be true or false, not \"%s\"", v);
        return 0;
}

static int parse_uint(Walk *w, const yaml_node_t *n, const char *where, unsigned max, unsigned *ret)
{
        const char *v = scalar(n);
        char *end;
        unsigned long x;

        if (!scalar_ok(n) || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || !isdigit((unsigned char)v[0]))
                return fail(w, n, where, "must be a whole number");
        errno = 0;
        x = strtoul(v, &end, 10);
        if (errno || *end || x > max)
                return fail(w, n, where, "must be a whole number from 0 to %u", max);
        *ret = (unsigned)x;
        return 0;
}

bool mig_profile_name_valid(const char *p)
{
        /* [Nc.]Ng.Mgb[+attr[.attr]...][-me] as go-nvlib's AssertValidMigProfileFormat. */
        const char *s = p;
        size_t len = strlen(p);

        if (len == 0 || len >= MIG_PROFILE_MAX)
                return false;
        if (isdigit((unsigned char)*s)) {
                const char *q = s;

                while (isdigit((unsigned char)*q))
                        q++;
                if (*q == 'c' && q[1] == '.')
                        s = q + 2;
        }
        if (!isdigit((unsigned char)*s) || *s == '0')
                return false;
        while (isdigit((unsigned char)*s))
                s++;
        if (*s++ != 'g' || *s++ != '.' || !isdigit((unsigned char)*s))
                return false;
        while (isdigit((unsigned char)*s))
                s++;
        if (strncmp(s, "gb", 2) != 0)
                return false;
        s += 2;
        if (*s == '+') {
                s++;
                if (!islower((unsigned char)*s))
                        return false;
                while (islower((unsigned char)*s) || (*s == '.' && islower((unsigned char)s[1])))
                        s++;
        }
        if (*s == '-') {
                s++;
                if (!islower((unsigned char)*s))
                        return false;
                while (islower((unsigned char)*s))
                        s++;
        }
        return *s == '\0';
}

static int parse_hex32(const char *s, uint32_t *ret)
{
        char *end;
        unsigned long long x;

        if (!s[0] || s[0] == '-' || s[0] == '+' || isspace((unsigned char)s[0]))
                return -EINVAL;
        errno = 0;
        x = strtoull(s, &end, 0);
        if (errno || *end || x > UINT32_MAX)
                return -EINVAL;
        *ret = (uint32_t)x;
        return 0;
}

static int parse_filter(Walk *w, const yaml_node_t *n, const char *where, MigDeviceFilter *ret)
{
        const char *v = scalar(n);
        char buf[64], *colon;
        MigDeviceFilter f = {};

        if (!scalar_ok(n) || strlen(v) >= sizeof(buf))
                return fail(w, n, where, "must be a PCI device id like \"0x20B010DE\"");
        strcpy(buf, v);
        colon = strchr(buf, ':');
        if (colon) {
                *colon = '\0';
                if (parse_hex32(colon + 1, &f.subsystem) < 0)
                        return fail(w, n, where, "bad subsystem id in \"%s\"", v);
                f.has_subsystem = true;
        }
        if (parse_hex32(buf, &f.device_vendor) < 0)
                return fail(w, n, where, "\"%s\" is not a PCI device id like \"0x20B010DE\"", v);
        *ret = f;
        return 0;
}

static int parse_counts(Walk *w, yaml_node_t *n, const char *where, MigSpec *s)
{
        char here[1024];
        bool any = false;

        if (n->type == YAML_SCALAR_NODE && scalar_ok(n) && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
            (!strcmp(scalar(n), "") || !strcmp(scalar(n), "~") || !strcmp(scalar(n), "null")))
                return fail(w, n, where, "must be a map of profile to count ({} for none)");
        if (n->type != YAML_MAPPING_NODE)
                return fail(w, n, where, "must be a map of profile to count, e.g. {\"1g.10gb\": 7}");
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
                yaml_node_t *k = node_get(w, p->key), *v = node_get(w, p->value);
                const char *name = scalar(k);
                MigCount c = {};

                if (!scalar_ok(k) || !mig_profile_name_valid(name))
                        return fail(w, k, where, "\"%s\" is not a MIG profile like \"1g.10gb\"",
                                    name ? name : "?");
                snprintf(here, sizeof(here), "%s.%s", where, name);
                for (size_t i = 0; i < s->n_counts; i++)
                        if (!strcmp(s->counts[i].profile, name))
                                return fail(w, k, here, "appears twice");
                if (s->n_counts >= MIG_MAX_PROFILES)
                        return fail(w, k, where, "more than %d profiles", MIG_MAX_PROFILES);
                if (parse_uint(w, v, here, MIG_MAX_COUNT, &c.count) < 0)
                        return -EINVAL;
                strcpy(c.profile, name);
                any |= c.count > 0;
                s->counts[s->n_counts++] = c;
        }
        /* mig-parted: "all counts for all MigProfiles are 0" is an error, {} is not. */
        if (s->n_counts > 0 && !any)
                return fail(w, n, where, "all counts are 0");
        return 0;
}

static int parse_spec(Walk *w, yaml_node_t *n, const char *where, MigSpec *s)
{
        char here[512];
        yaml_node_t *devices = NULL, *enabled = NULL, *migdev = NULL, *filter = NULL;

        *s = (MigSpec) { .line = (unsigned)n->start_mark.line + 1 };
        if (n->type != YAML_MAPPING_NODE)
                return fail(w, n, where, "must be a map with devices, mig-enabled and mig-devices");
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
                yaml_node_t *k = node_get(w, p->key), *v = node_get(w, p->value);
                const char *key = scalar(k);

                if (!scalar_ok(k))
                        return fail(w, k, where, "keys must be strings");
                if (!strcmp(key, "devices") && !devices)
                        devices = v;
                else if (!strcmp(key, "mig-enabled") && !enabled)
                        enabled = v;
                else if (!strcmp(key, "mig-devices") && !migdev)
                        migdev = v;
                else if (!strcmp(key, "device-filter") && !filter)
                        filter = v;
                else if (!strcmp(key, "devices") || !strcmp(key, "mig-enabled") ||
                         !strcmp(key, "mig-devices") || !strcmp(key, "device-filter"))
                        return fail(w, k, where, "\"%s\" appears twice", key);
                else
                        return fail(w, k, where, "unknown key \"%s\" (expected devices, device-filter, "
                                    "mig-enabled, mig-devices)", key);
        }
        if (!devices)
                return fail(w, n, where, "missing required field \"devices\"");
        if (!enabled)
                return fail(w, n, where, "missing required field \"mig-enabled\"");

        snprintf(here, sizeof(here), "%s.devices", where);
        if (devices->type == YAML_SCALAR_NODE) {
                if (!scalar_ok(devices) || strcmp(scalar(devices), "all") != 0)
                        return fail(w, devices, here, "must be \"all\" or a list of GPU indexes");
                s->all_devices = true;
        } else if (devices->type == YAML_SEQUENCE_NODE) {
                for (yaml_node_item_t *i = devices->data.sequence.items.start;
                     i < devices->data.sequence.items.top; i++) {
                        if (s->n_devices >= MIG_MAX_DEVICE_INDEXES)
                                return fail(w, devices, here, "more than %d indexes", MIG_MAX_DEVICE_INDEXES);
                        if (parse_uint(w, node_get(w, *i), here, 1023, &s->devices[s->n_devices]) < 0)
                                return -EINVAL;
                        s->n_devices++;
                }
        } else
                return fail(w, devices, here, "must be \"all\" or a list of GPU indexes");

        if (filter) {
                snprintf(here, sizeof(here), "%s.device-filter", where);
                if (filter->type == YAML_SCALAR_NODE) {
                        /* mig-parted: an empty string filters nothing. */
                        if (scalar_ok(filter) && scalar(filter)[0] != '\0') {
                                if (parse_filter(w, filter, here, &s->filters[0]) < 0)
                                        return -EINVAL;
                                s->n_filters = 1;
                        }
                } else if (filter->type == YAML_SEQUENCE_NODE) {
                        for (yaml_node_item_t *i = filter->data.sequence.items.start;
                             i < filter->data.sequence.items.top; i++) {
                                if (s->n_filters >= MIG_MAX_FILTERS)
                                        return fail(w, filter, here, "more than %d ids", MIG_MAX_FILTERS);
                                if (parse_filter(w, node_get(w, *i), here, &s->filters[s->n_filters]) < 0)
                                        return -EINVAL;
                                s->n_filters++;
                        }
                } else
                        return fail(w, filter, here, "must be a PCI device id or a list of them");
        }

        snprintf(here, sizeof(here), "%s.mig-enabled", where);
        if (parse_bool(w, enabled, here, &s->enabled) < 0)
                return -EINVAL;
        snprintf(here, sizeof(here), "%s.mig-devices", where);
        if (migdev && parse_counts(w, migdev, here, s) < 0)
                return -EINVAL;
        if (s->enabled && !migdev)
                return fail(w, n, where, "missing required field \"mig-devices\" when \"mig-enabled\" is true");
        if (!s->enabled && s->n_counts > 0)
                return fail(w, migdev, here, "MIG devices included when \"mig-enabled\" is false");
        return 0;
}

static int parse_configs(Walk *w, yaml_node_t *n, MigFile *f)
{
        char where[256];

        if (n->type != YAML_MAPPING_NODE)
                return fail(w, n, "mig-configs", "must be a map of config name to entries");
        if (n->data.mapping.pairs.top == n->data.mapping.pairs.start)
                return fail(w, n, "mig-configs", "at least one entry is required");
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
                yaml_node_t *k = node_get(w, p->key), *v = node_get(w, p->value);
                const char *name = scalar(k);
                MigConfig *c;

                if (!scalar_ok(k) || !name[0] || strlen(name) >= MIG_NAME_MAX)
                        return fail(w, k, "mig-configs", "config names must be strings of 1 to %d bytes",
                                    MIG_NAME_MAX - 1);
                if (mig_file_find(f, name))
                        return fail(w, k, "mig-configs", "config \"%s\" appears twice", name);
                if (f->n_configs >= MIG_MAX_CONFIGS)
                        return fail(w, k, "mig-configs", "more than %d configs", MIG_MAX_CONFIGS);
                snprintf(where, sizeof(where), "mig-configs.%s", name);
                if (v->type != YAML_SEQUENCE_NODE || v->data.sequence.items.top == v->data.sequence.items.start)
                        return fail(w, v, where, "must be a list of at least one entry");
                c = &f->configs[f->n_configs];
                *c = (MigConfig) { .line = (unsigned)k->start_mark.line + 1 };
                strcpy(c->name, name);
                size_t n_items = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
                if (n_items > MIG_MAX_SPECS)
                        return fail(w, v, where, "more than %d entries", MIG_MAX_SPECS);
                c->specs = calloc(n_items, sizeof(MigSpec));
                if (!c->specs)
                        return -ENOMEM;
                f->n_configs++;
                for (size_t i = 0; i < n_items; i++) {
                        char here[sizeof(where) + 32];

                        snprintf(here, sizeof(here), "%s[%zu]", where, i);
                        if (parse_spec(w, node_get(w, v->data.sequence.items.start[i]), here,
                                       &c->specs[i]) < 0)
                                return -EINVAL;
                        c->n_specs++;
                }
        }
        return 0;
}

void mig_file_free(MigFile *f)
{
        if (!f)
                return;
        for (size_t i = 0; i < f->n_configs; i++)
                free(f->configs[i].specs);
        free(f->configs);
        free(f);
}

const MigConfig *mig_file_find(const MigFile *f, const char *name)
{
        for (size_t i = 0; i < f->n_configs; i++)
                if (!strcmp(f->configs[i].name, name))
                        return &f->configs[i];
        return NULL;
}

static void yaml_document_deletep(yaml_document_t **d)
{
        if (*d)
                yaml_document_delete(*d);
}

int mig_file_parse(const char *text, size_t len, const char *filename, MigFile **ret,
                   char *error, size_t error_size)
{
        _cleanup_(mig_file_freep) MigFile *f = NULL;
        yaml_parser_t parser;
        yaml_document_t doc;
        _cleanup_(yaml_document_deletep) yaml_document_t *docp = NULL;
        Walk w = { .doc = &doc, .filename = filename, .error = error, .error_size = error_size };
        yaml_node_t *root, *version = NULL, *configs = NULL;
        int r;

        error[0] = '\0';
        if (len > MIG_FILE_MAX_BYTES) {
                snprintf(error, error_size, "%s: larger than %d bytes", filename, MIG_FILE_MAX_BYTES);
                return -EFBIG;
        }
        if (memchr(text, '\0', len)) {
                snprintf(error, error_size, "%s: contains a NUL byte", filename);
                return -EINVAL;
        }
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
        yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
        if (!yaml_parser_load(&parser, &doc)) {
                snprintf(error, error_size, "%s:%zu: malformed YAML: %s", filename,
                         parser.problem_mark.line + 1, parser.problem ? parser.problem : "parse error");
                yaml_parser_delete(&parser);
                return -EINVAL;
        }
        yaml_parser_delete(&parser);
        docp = &doc;

        root = yaml_document_get_root_node(&doc);
        if (!root || root->type != YAML_MAPPING_NODE)
                return fail(&w, root, "", "the file must be a map with version and mig-configs");
        for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
                yaml_node_t *k = node_get(&w, p->key);
                const char *key = scalar(k);

                if (scalar_ok(k) && !strcmp(key, "version") && !version)
                        version = node_get(&w, p->value);
                else if (scalar_ok(k) && !strcmp(key, "mig-configs") && !configs)
                        configs = node_get(&w, p->value);
                else
                        return fail(&w, k, "", "unexpected field \"%s\" (expected version, mig-configs)",
                                    key ? key : "?");
        }
        if (!version)
                return fail(&w, root, "version", "missing (mig-parted files say \"version: v1\")");
        if (!scalar_ok(version) || strcmp(scalar(version), "v1") != 0)
                return fail(&w, version, "version", "unknown version \"%s\" (only v1 is known)",
                            scalar(version) ? scalar(version) : "?");
        if (!configs)
                return fail(&w, root, "mig-configs", "missing");

        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        if (configs->type == YAML_MAPPING_NODE) {
                size_t n = (size_t)(configs->data.mapping.pairs.top - configs->data.mapping.pairs.start);

                if (n > MIG_MAX_CONFIGS)
                        return fail(&w, configs, "mig-configs", "more than %d configs", MIG_MAX_CONFIGS);
                f->configs = calloc(n ? n : 1, sizeof(MigConfig));
                if (!f->configs)
                        return -ENOMEM;
        }
        r = parse_configs(&w, configs, f);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(f);
        return 0;
}

int mig_file_load(const char *path, MigFile **ret, char *error, size_t error_size)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t got = 0;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = negative_errno();
                snprintf(error, error_size, "%s: %s", path, strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0) {
                r = negative_errno();
                snprintf(error, error_size, "%s: %s", path, strerror(-r));
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                snprintf(error, error_size, "%s: not a regular file", path);
                return -EINVAL;
        }
        if (st.st_size > MIG_FILE_MAX_BYTES) {
                snprintf(error, error_size, "%s: larger than %d bytes", path, MIG_FILE_MAX_BYTES);
                return -EFBIG;
        }
        buf = malloc((size_t)st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        while (got < (size_t)st.st_size) {
                ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = negative_errno();
                        snprintf(error, error_size, "%s: %s", path, strerror(-r));
                        return r;
                }
                if (k == 0)
                        break;
                got += (size_t)k;
        }
        return mig_file_parse(buf, got, path, ret, error, error_size);
}

bool mig_spec_matches(const MigSpec *s, unsigned index, uint32_t pci_device_id,
                      uint32_t pci_subsystem_id)
{
        bool filter_ok = s->n_filters == 0, index_ok = s->all_devices;

        for (size_t i = 0; i < s->n_filters && !filter_ok; i++)
                filter_ok = s->filters[i].device_vendor == pci_device_id &&
                            (!s->filters[i].has_subsystem || s->filters[i].subsystem == pci_subsystem_id);
        for (size_t i = 0; i < s->n_devices && !index_ok; i++)
                index_ok = s->devices[i] == index;
        return filter_ok && index_ok;
}

const MigSpec *mig_config_select(const MigConfig *c, unsigned index, uint32_t pci_device_id,
                                 uint32_t pci_subsystem_id)
{
        const MigSpec *chosen = NULL;

        for (size_t i = 0; i < c->n_specs; i++)
                if (mig_spec_matches(&c->specs[i], index, pci_device_id, pci_subsystem_id))
                        chosen = &c->specs[i];
        return chosen;
}
