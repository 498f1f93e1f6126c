/* MIG layouts (see layout.h). */
#include "mig/layout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/mig-place.h"

static const GpuMigProfile *profile_named(const MigGpuFacts *g, const char *name)
{
        for (size_t i = 0; i < g->n_profiles; i++)
                if (!strcmp(g->profiles[i].name, name))
                        return &g->profiles[i];
        return NULL;
}

static int profile_index_of_id(const MigGpuFacts *g, unsigned id)
{
        for (size_t i = 0; i < g->n_profiles; i++)
                if (g->profiles[i].id == id)
                        return (int)i;
        return -1;
}

static void list_profiles(const MigGpuFacts *g, char *buf, size_t len)
{
        size_t o = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < g->n_profiles && o < len; i++)
                o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", g->profiles[i].name);
}

static void to_policy(const MigGpuFacts *g, PolicyMigProfile *pp)
{
        for (size_t i = 0; i < g->n_profiles && i < POLICY_MIG_MAX_PROFILES; i++) {
                pp[i] = (PolicyMigProfile) { .size = g->profiles[i].size,
                                             .starts = g->profiles[i].starts & 0xFF,
                                             .max_instances = g->profiles[i].max_instances };
                snprintf(pp[i].name, sizeof(pp[i].name), "%s", g->profiles[i].name);
        }
}

int mig_plan_gpu(const MigConfig *config, const MigGpuFacts *g, MigGpuPlan *ret, char *error,
                 size_t error_size)
{
        const MigSpec *s = mig_config_select(config, g->position, g->pci_device_id,
                                             g->pci_subsystem_id);
        PolicyMigProfile pp[POLICY_MIG_MAX_PROFILES];
        PolicyMigInstance kept[GPU_MIG_MAX_INSTANCES];
        unsigned add[GPU_MIG_MAX_INSTANCES], starts[GPU_MIG_MAX_INSTANCES];
        bool used[GPU_MIG_MAX_INSTANCES] = {};
        MigGpuPlan plan = {};
        size_t n_add = 0, total = 0;
        char names[256];
        int r;

        error[0] = '\0';
        if (!s) {
                *ret = plan;
                return 0;
        }
        plan.selected = true;
        plan.enable = s->enabled;
        if (!g->capable) {
                if (!s->enabled) {
                        plan.matches = true;
                        *ret = plan;
                        return 0;
                }
                snprintf(error, error_size, "GPU %u (%s, %s) cannot do MIG", g->position, g->uuid, g->name);
                return -EINVAL;
        }
        if (g->n_profiles > POLICY_MIG_MAX_PROFILES || g->n_instances > GPU_MIG_MAX_INSTANCES) {
                snprintf(error, error_size, "GPU %u (%s): NVML reports more MIG profiles or instances "
                         "than gpukeeper handles", g->position, g->uuid);
                return -EINVAL;
        }
        for (size_t i = 0; i < s->n_counts; i++) {
                const GpuMigProfile *p = profile_named(g, s->counts[i].profile);

                if (strchr(s->counts[i].profile, 'c') && strchr(s->counts[i].profile, 'c') <
                                                                 strchr(s->counts[i].profile, 'g')) {
                        snprintf(error, error_size, "%s: compute-instance profiles are not supported by "
                                 "gpukeeper; name GPU instance profiles (e.g. 3g.40gb)", s->counts[i].profile);
                        return -EINVAL;
                }
                if (!p) {
                        list_profiles(g, names, sizeof(names));
                        snprintf(error, error_size, "GPU %u (%s) has no MIG profile %s; it has %s",
                                 g->position, g->name, s->counts[i].profile, names);
                        return -EINVAL;
                }
                total += s->counts[i].count;
        }
        if (total > GPU_MIG_MAX_INSTANCES - 1) {
                snprintf(error, error_size, "GPU %u (%s): %zu instances asked, at most 7 fit", g->position,
                         g->name, total);
                return -EINVAL;
        }
        plan.mode_change = g->current != s->enabled;
        to_policy(g, pp);

        /* Keep existing instances of asked profiles, up to the count asked. */
        size_t n_kept = 0;
        if (!plan.mode_change && s->enabled)
                for (size_t i = 0; i < s->n_counts; i++) {
                        const GpuMigProfile *p = profile_named(g, s->counts[i].profile);
                        unsigned want = s->counts[i].count, have = 0;

                        for (size_t k = 0; k < g->n_instances && have < want; k++)
                                if (!used[k] && g->instances[k].profile_id == p->id) {
                                        used[k] = true;
                                        have++;
                                        plan.keep[plan.n_keep++] = g->instances[k].gi_id;
                                        kept[n_kept++] = (PolicyMigInstance) {
                                                .profile = (unsigned)(p - g->profiles),
                                                .start = g->instances[k].start };
                                }
                        for (; have < want; have++)
                                add[n_add++] = (unsigned)(p - g->profiles);
                }
        else
                for (size_t i = 0; i < s->n_counts; i++)
                        for (unsigned c = 0; c < s->counts[i].count; c++)
                                add[n_add++] = (unsigned)(profile_named(g, s->counts[i].profile) - g->profiles);

        /* The kept instances must sit where NVML's table allows (a driver
         * could report anything): otherwise start from scratch. */
        for (size_t k = 0; k < n_kept; k++)
                if (!(pp[kept[k].profile].starts & (1u << kept[k].start)))
                        n_kept = 0;
        PolicyMigGpu pg = { .profiles = pp, .n_profiles = g->n_profiles, .instances = kept,
                            .n_instances = n_kept, .eligible = true };
        r = policy_mig_pack(&pg, add, n_add, starts);
        if (r == 0 && n_kept > 0) {
                /* Around the kept ones it does not fit: re-carve everything. */
                for (size_t k = 0; k < n_kept; k++)
                        add[n_add++] = kept[k].profile;
                n_kept = 0;
                plan.n_keep = 0;
                memset(used, 0, sizeof(used));
                pg.n_instances = 0;
                r = n_add <= GPU_MIG_MAX_INSTANCES ? policy_mig_pack(&pg, add, n_add, starts) : 0;
        }
        if (r < 0) {
                snprintf(error, error_size, "GPU %u (%s): NVML's placement table is not usable", g->position,
                         g->uuid);
                return -EINVAL;
        }
        if (r == 0) {
                unsigned slices = 0;

                for (size_t i = 0; i < n_add; i++)
                        slices += pp[add[i]].size;
                snprintf(error, error_size, "GPU %u (%s): the asked instances do not fit (%u memory slices "
                         "asked in placements the GPU allows; it has %d)", g->position, g->name, slices,
                         POLICY_MIG_SLICES);
                return -EINVAL;
        }
        for (size_t k = 0; k < g->n_instances; k++)
                if (!used[k] && !plan.mode_change)
                        plan.destroy[plan.n_destroy++] = g->instances[k].gi_id;
        if (plan.mode_change) {
                /* NVML refuses to disable MIG while GPU instances exist
                 * (IN_USE), so they go first, as mig-parted does; enabling
                 * starts from a GPU that has none. */
                plan.n_destroy = 0;
                if (g->current && !s->enabled)
                        for (size_t k = 0; k < g->n_instances; k++)
                                plan.destroy[plan.n_destroy++] = g->instances[k].gi_id;
        }
        for (size_t i = 0; i < n_add; i++)
                plan.create[plan.n_create++] = (MigCreate) { &g->profiles[add[i]], starts[i] };
        if (!s->enabled) {
                plan.n_create = 0;
                plan.n_keep = 0;
                if (!plan.mode_change)
                        plan.n_destroy = 0;
        }
        if (plan.mode_change)
                plan.n_create = 0; /* after the reset, on a later pass */
        plan.matches = !plan.mode_change && plan.n_destroy == 0 && plan.n_create == 0;
        (void)profile_index_of_id;
        *ret = plan;
        return 0;
}

json_t *mig_config_to_json(const MigConfig *c)
{
        json_t *specs = json_array();

        if (!specs)
                return NULL;
        for (size_t i = 0; i < c->n_specs; i++) {
                const MigSpec *s = &c->specs[i];
                json_t *devices, *filters = json_array(), *counts = json_object(), *o;

                if (s->all_devices)
                        devices = json_string("all");
                else {
                        devices = json_array();
                        for (size_t d = 0; devices && d < s->n_devices; d++)
                                json_array_append_new(devices, json_integer(s->devices[d]));
                }
                for (size_t f = 0; filters && f < s->n_filters; f++) {
                        char buf[32];

                        if (s->filters[f].has_subsystem)
                                snprintf(buf, sizeof(buf), "0x%08X:0x%08X", s->filters[f].device_vendor,
                                         s->filters[f].subsystem);
                        else
                                snprintf(buf, sizeof(buf), "0x%08X", s->filters[f].device_vendor);
                        json_array_append_new(filters, json_string(buf));
                }
                for (size_t k = 0; counts && k < s->n_counts; k++)
                        json_object_set_new(counts, s->counts[k].profile, json_integer(s->counts[k].count));
                o = json_pack("{s:o?, s:o?, s:b, s:o?, s:i}", "devices", devices, "device-filter", filters,
                              "mig-enabled", s->enabled, "mig-devices", counts, "line", s->line);
                if (!o || json_array_append_new(specs, o) < 0) {
                        json_decref(specs);
                        return NULL;
                }
        }
        return json_pack("{s:s, s:o}", "name", c->name, "specs", specs);
}

int mig_config_from_json(json_t *j, MigConfig *ret, char *error, size_t error_size)
{
        json_t *specs = json_object_get(j, "specs"), *name = json_object_get(j, "name"), *v;
        MigConfig c = {};
        size_t i;

#define BAD(...)                                                                                   \
        do {                                                                                       \
                snprintf(error, error_size, __VA_ARGS__);                                          \
                free(c.specs);                                                                     \
                return -EINVAL;                                                                    \
        } while (0)

        if (!json_is_string(name) || json_string_length(name) == 0 ||
            json_string_length(name) >= MIG_NAME_MAX || !json_is_array(specs) ||
            json_array_size(specs) == 0 || json_array_size(specs) > MIG_MAX_SPECS)
                BAD("a layout needs a name and 1 to %d entries", MIG_MAX_SPECS);
        snprintf(c.name, sizeof(c.name), "%s", json_string_value(name));
        c.specs = calloc(json_array_size(specs), sizeof(MigSpec));
        if (!c.specs)
                return -ENOMEM;
        json_array_foreach(specs, i, v) {
                MigSpec *s = &c.specs[c.n_specs];
                json_t *devices = json_object_get(v, "devices"), *filters = json_object_get(v, "device-filter");
                json_t *counts = json_object_get(v, "mig-devices"), *enabled = json_object_get(v, "mig-enabled");
                json_t *line = json_object_get(v, "line"), *x;
                const char *key;
                size_t k;

                if (!json_is_object(v) || !json_is_boolean(enabled))
                        BAD("entry %zu: needs mig-enabled", i);
                json_object_foreach(v, key, x)
                        if (strcmp(key, "devices") && strcmp(key, "device-filter") && strcmp(key, "mig-enabled") &&
                            strcmp(key, "mig-devices") && strcmp(key, "line"))
                                BAD("entry %zu: unknown key \"%s\"", i, key);
                s->enabled = json_is_true(enabled);
                s->line = json_is_integer(line) && json_integer_value(line) > 0 &&
                                          json_integer_value(line) < 10000000
                                  ? (unsigned)json_integer_value(line)
                                  : 0;
                if (json_is_string(devices) && !strcmp(json_string_value(devices), "all"))
                        s->all_devices = true;
                else if (json_is_array(devices) && json_array_size(devices) <= MIG_MAX_DEVICE_INDEXES) {
                        json_array_foreach(devices, k, x) {
                                if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > 1023)
                                        BAD("entry %zu: devices must be \"all\" or GPU indexes", i);
                                s->devices[s->n_devices++] = (unsigned)json_integer_value(x);
                        }
                } else
                        BAD("entry %zu: devices must be \"all\" or at most %d GPU indexes", i,
                            MIG_MAX_DEVICE_INDEXES);
                if (filters && (!json_is_array(filters) || json_array_size(filters) > MIG_MAX_FILTERS))
                        BAD("entry %zu: device-filter must be a list of at most %d ids", i, MIG_MAX_FILTERS);
                json_array_foreach(filters, k, x) {
                        unsigned long long a = 0, b = 0;
                        int n = 0;
                        const char *f = json_string_value(x);

                        if (!f)
                                BAD("entry %zu: device-filter ids are strings", i);
                        if (sscanf(f, "0x%llx:0x%llx%n", &a, &b, &n) == 2 && (size_t)n == strlen(f) &&
                            a <= UINT32_MAX && b <= UINT32_MAX)
                                s->filters[s->n_filters++] = (MigDeviceFilter) { (uint32_t)a, (uint32_t)b, true };
                        else if (n = 0, sscanf(f, "0x%llx%n", &a, &n) == 1 && (size_t)n == strlen(f) &&
                                 a <= UINT32_MAX)
                                s->filters[s->n_filters++] = (MigDeviceFilter) { (uint32_t)a, 0, false };
                        else
                                BAD("entry %zu: bad device-filter id \"%s\"", i, f);
                }
                if (counts && (!json_is_object(counts) || json_object_size(counts) > MIG_MAX_PROFILES))
                        BAD("entry %zu: mig-devices must map at most %d profiles to counts", i, MIG_MAX_PROFILES);
                json_object_foreach(counts, key, x) {
                        if (!mig_profile_name_valid(key) || !json_is_integer(x) || json_integer_value(x) < 0 ||
                            json_integer_value(x) > MIG_MAX_COUNT)
                                BAD("entry %zu: bad mig-devices item \"%s\"", i, key);
                        if (json_integer_value(x) == 0)
                                continue;
                        snprintf(s->counts[s->n_counts].profile, MIG_PROFILE_MAX, "%s", key);
                        s->counts[s->n_counts++].count = (unsigned)json_integer_value(x);
                }
                if (!s->enabled && s->n_counts > 0)
                        BAD("entry %zu: MIG devices included when mig-enabled is false", i);
                c.n_specs++;
        }
#undef BAD
        *ret = c;
        return 0;
}

char *mig_export(const MigGpuFacts *gpus, size_t n, const char *name)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        if (!f)
                return NULL;
        fprintf(f, "version: v1\nmig-configs:\n  %s:\n", name);
        for (size_t i = 0; i < n; i++) {
                const MigGpuFacts *g = &gpus[i];

                if (!g->capable)
                        continue;
                fprintf(f, "    - devices: [%u]\n      mig-enabled: %s\n", g->position,
                        g->current ? "true" : "false");
                if (!g->current)
                        continue;
                fprintf(f, "      mig-devices:%s\n", g->n_instances ? "" : " {}");
                for (size_t p = 0; p < g->n_profiles; p++) {
                        unsigned count = 0;

                        for (size_t k = 0; k < g->n_instances; k++)
                                count += g->instances[k].profile_id == g->profiles[p].id;
                        if (count)
                                fprintf(f, "        \"%s\": %u\n", g->profiles[p].name, count);
                }
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}
