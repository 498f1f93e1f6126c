/* Lab file parsing for the NVML simulator, and the MIG profile tables.
 *
 * The parser is strict on purpose: unknown keys, wrong types, out-of-range
 * numbers and dangling MIG references are errors that name the offending
 * element ("gpus[2].processes[0]: unknown key \"used_mb\""), because a lab
 * that silently means something else would make a test pass for the wrong
 * reason. */
#include "lab.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/macro.h"

/* `nvidia-smi mig -lgip` of each model (memory rounded to MiB as NVML
 * reports memorySizeMB). Profile indexes are nvml.h's
 * NVML_GPU_INSTANCE_PROFILE_1_SLICE (0x0) … _1_SLICE_REV2 (0x9). The last
 * two columns are `nvidia-smi mig -lgipp`: the placement size in memory
 * slices and the bit mask of allowed start slices, the same on A100 and
 * H100 (NVIDIA MIG user guide, "A100 MIG Profiles" / "H100 MIG Profiles":
 * 1g {0..6}:1, 1g+me {0..6}:1, 1g.20gb {0,2,4,6}:2, 2g {0,2,4}:2,
 * 3g {0,4}:4, 4g {0}:4, 7g {0}:8). */
static const SimMigProfile a100_80gb_profiles[] = {
        { 0x0, "1g.10gb", 19, 1, 7, 14, 1, 0, 0, 0, 0, 9728, 1, 0x7F },
        { 0x1, "2g.20gb", 14, 2, 3, 28, 2, 1, 0, 0, 0, 19968, 2, 0x15 },
        { 0x2, "3g.40gb", 9, 3, 2, 42, 3, 2, 0, 0, 0, 40192, 4, 0x11 },
        { 0x3, "4g.40gb", 5, 4, 1, 56, 4, 2, 0, 0, 0, 40192, 4, 0x01 },
        { 0x4, "7g.80gb", 0, 7, 1, 98, 7, 5, 0, 1, 1, 80896, 8, 0x01 },
        { 0x7, "1g.10gb+me", 20, 1, 1, 14, 1, 1, 0, 1, 1, 9728, 1, 0x7F },
        { 0x9, "1g.20gb", 15, 1, 4, 14, 1, 1, 0, 0, 0, 19968, 2, 0x55 },
};

static const SimMigProfile a100_40gb_profiles[] = {
        { 0x0, "1g.5gb", 19, 1, 7, 14, 1, 0, 0, 0, 0, 4864, 1, 0x7F },
        { 0x1, "2g.10gb", 14, 2, 3, 28, 2, 1, 0, 0, 0, 9856, 2, 0x15 },
        { 0x2, "3g.20gb", 9, 3, 2, 42, 3, 2, 0, 0, 0, 19968, 4, 0x11 },
        { 0x3, "4g.20gb", 5, 4, 1, 56, 4, 2, 0, 0, 0, 19968, 4, 0x01 },
        { 0x4, "7g.40gb", 0, 7, 1, 98, 7, 5, 0, 1, 1, 40192, 8, 0x01 },
        { 0x7, "1g.5gb+me", 20, 1, 1, 14, 1, 1, 0, 1, 1, 4864, 1, 0x7F },
        { 0x9, "1g.10gb", 15, 1, 4, 14, 1, 1, 0, 0, 0, 9856, 2, 0x55 },
};

static const SimMigProfile h100_80gb_profiles[] = {
        { 0x0, "1g.10gb", 19, 1, 7, 16, 1, 1, 0, 1, 0, 9984, 1, 0x7F },
        { 0x1, "2g.20gb", 14, 2, 3, 32, 2, 2, 0, 2, 0, 20096, 2, 0x15 },
        { 0x2, "3g.40gb", 9, 3, 2, 60, 3, 3, 0, 3, 0, 40448, 4, 0x11 },
        { 0x3, "4g.40gb", 5, 4, 1, 64, 4, 4, 0, 4, 0, 40448, 4, 0x01 },
        { 0x4, "7g.80gb", 0, 7, 1, 132, 8, 7, 0, 7, 1, 80896, 8, 0x01 },
        { 0x7, "1g.10gb+me", 20, 1, 1, 16, 1, 1, 0, 1, 1, 9984, 1, 0x7F },
        { 0x9, "1g.20gb", 15, 1, 4, 26, 1, 1, 0, 1, 0, 20096, 2, 0x55 },
};

static const SimMigProfile *profile_table(SimFamily family, size_t *ret_n)
{
        switch (family) {
        case SIM_FAMILY_A100_40GB:
                *ret_n = ELEMENTSOF(a100_40gb_profiles);
                return a100_40gb_profiles;
        case SIM_FAMILY_H100_80GB:
                *ret_n = ELEMENTSOF(h100_80gb_profiles);
                return h100_80gb_profiles;
        case SIM_FAMILY_A100_80GB:
        default:
                *ret_n = ELEMENTSOF(a100_80gb_profiles);
                return a100_80gb_profiles;
        }
}

const SimMigProfile *sim_mig_profiles(SimFamily family, size_t *ret_n)
{
        return profile_table(family, ret_n);
}

const SimMigProfile *sim_mig_profile_by_id(SimFamily family, unsigned id)
{
        size_t n;
        const SimMigProfile *t = profile_table(family, &n);

        for (size_t i = 0; i < n; i++)
                if (t[i].id == id)
                        return &t[i];
        return NULL;
}

bool sim_gpu_placement_free(const SimGpu *gpu, unsigned start, unsigned size)
{
        for (size_t i = 0; i < gpu->n_gis; i++) {
                const SimGpuInstance *g = &gpu->gis[i];

                if (g->size > 0 && start < g->start + g->size && g->start < start + size)
                        return false;
        }
        return true;
}

const SimMigProfile *sim_mig_profile_by_index(SimFamily family, unsigned profile_index)
{
        size_t n;
        const SimMigProfile *t = profile_table(family, &n);

        for (size_t i = 0; i < n; i++)
                if (t[i].profile_index == profile_index)
                        return &t[i];
        return NULL;
}

const SimMigProfile *sim_mig_profile_by_name(SimFamily family, const char *name)
{
        size_t n;
        const SimMigProfile *t = profile_table(family, &n);

        for (size_t i = 0; i < n; i++)
                if (strcmp(t[i].name, name) == 0)
                        return &t[i];
        return NULL;
}

/* The MIG profile table follows the marketing name, as NVML's does. */
static SimFamily family_from_name(const char *name)
{
        if (strstr(name, "H100"))
                return SIM_FAMILY_H100_80GB;
        if (strstr(name, "A100") && strstr(name, "40GB"))
                return SIM_FAMILY_A100_40GB;
        return SIM_FAMILY_A100_80GB;
}

int sim_errors_lookup(const SimErrors *errors, const char *function)
{
        const char *v = strstr(function, "_v");
        size_t base_len = v ? (size_t)(v - function) : strlen(function);

        for (size_t i = 0; i < errors->n; i++)
                if (strcmp(errors->entries[i].function, function) == 0)
                        return errors->entries[i].code;
        for (size_t i = 0; i < errors->n; i++)
                if (strlen(errors->entries[i].function) == base_len &&
                    strncmp(errors->entries[i].function, function, base_len) == 0)
                        return errors->entries[i].code;
        return 0;
}

static void file_id_from_stat(const struct stat *st, SimFileId *ret)
{
        *ret = (SimFileId) {
                .valid = true,
                .dev = st->st_dev,
                .ino = st->st_ino,
                .size = (uint64_t)st->st_size,
                .mtime_sec = st->st_mtim.tv_sec,
                .mtime_nsec = st->st_mtim.tv_nsec,
        };
}

int sim_file_id_get(const char *path, SimFileId *ret)
{
        struct stat st;

        if (stat(path, &st) < 0)
                return negative_errno();
        file_id_from_stat(&st, ret);
        return 0;
}

bool sim_file_id_equal(const SimFileId *a, const SimFileId *b)
{
        return a->valid && b->valid && a->dev == b->dev && a->ino == b->ino &&
               a->size == b->size && a->mtime_sec == b->mtime_sec &&
               a->mtime_nsec == b->mtime_nsec;
}

void sim_lab_free(SimLab *lab)
{
        if (!lab)
                return;
        for (size_t i = 0; i < lab->n_gpus; i++)
                free(lab->gpus[i].processes);
        free(lab->gpus);
        free(lab);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(SimLab *, sim_lab_free);

/* Parsing state: where the error message goes and which element we are in. */
typedef struct Parser {
        char *error;
        size_t error_size;
        char where[96];
} Parser;

static int fail(Parser *p, const char *fmt, ...) _printf_(2, 3);
static int fail(Parser *p, const char *fmt, ...)
{
        char msg[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(p->error, p->error_size, "%s%s%s", p->where, p->where[0] ? ": " : "", msg);
        return -EINVAL;
}

/* Every object may carry a free-form "comment"; anything else must be in `keys`. */
static int check_keys(Parser *p, json_t *obj, const char *const *keys)
{
        const char *key;
        json_t *value;

        json_object_foreach(obj, key, value) {
                bool known = strcmp(key, "comment") == 0;

                for (size_t i = 0; !known && keys[i]; i++)
                        known = strcmp(key, keys[i]) == 0;
                if (!known)
                        return fail(p, "unknown key \"%s\"", key);
        }
        return 0;
}

/* Read an integer in [0, max]; absent keys leave *ret alone unless `required`. */
static int get_uint(Parser *p, json_t *obj, const char *key, bool required, uint64_t max,
                    uint64_t *ret)
{
        json_t *v = json_object_get(obj, key);

        if (!v) {
                if (required)
                        return fail(p, "\"%s\" is required", key);
                return 0;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            (uint64_t)json_integer_value(v) > max)
                return fail(p, "\"%s\" must be an integer from 0 to %llu", key,
                            (unsigned long long)max);
        *ret = (uint64_t)json_integer_value(v);
        return 0;
}

static int get_unsigned(Parser *p, json_t *obj, const char *key, bool required, unsigned max,
                        unsigned *ret)
{
        uint64_t v = *ret;
        int r = get_uint(p, obj, key, required, max, &v);

        if (r < 0)
                return r;
        *ret = (unsigned)v;
        return 0;
}

static int get_bool(Parser *p, json_t *obj, const char *key, bool *ret)
{
        json_t *v = json_object_get(obj, key);

        if (!v)
                return 0;
        if (!json_is_boolean(v))
                return fail(p, "\"%s\" must be true or false", key);
        *ret = json_is_true(v);
        return 0;
}

static int get_string(Parser *p, json_t *obj, const char *key, bool required, char *buf,
                      size_t size)
{
        json_t *v = json_object_get(obj, key);

        if (!v) {
                if (required)
                        return fail(p, "\"%s\" is required", key);
                return 0;
        }
        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= size ||
            strlen(json_string_value(v)) != json_string_length(v))
                return fail(p, "\"%s\" must be a non-empty string shorter than %zu bytes", key,
                            size);
        memcpy(buf, json_string_value(v), json_string_length(v) + 1);
        return 0;
}

static int parse_errors(Parser *p, json_t *obj, SimErrors *ret)
{
        json_t *errors = json_object_get(obj, "errors");
        const char *key;
        json_t *value;

        ret->n = 0;
        if (!errors)
                return 0;
        if (!json_is_object(errors))
                return fail(p, "\"errors\" must be an object of NVML function name → code");
        if (json_object_size(errors) > SIM_MAX_ERRORS)
                return fail(p, "\"errors\" has more than %d entries", SIM_MAX_ERRORS);
        json_object_foreach(errors, key, value) {
                SimError *e = &ret->entries[ret->n];

                if (strncmp(key, "nvml", 4) != 0 || strlen(key) >= sizeof(e->function))
                        return fail(p, "\"errors\" key \"%s\" is not an NVML function name", key);
                if (!json_is_integer(value) || json_integer_value(value) <= 0 ||
                    json_integer_value(value) > 999)
                        return fail(p, "\"errors\".\"%s\" must be an NVML return code 1..999",
                                    key);
                strcpy(e->function, key);
                e->code = (int)json_integer_value(value);
                ret->n++;
        }
        return 0;
}

static int parse_instance(Parser *p, json_t *obj, SimFamily family, SimInstance *ret,
                          int *ret_placement)
{
        static const char *const keys[] = { "gi",        "ci",     "profile",
                                            "uuid",      "memory_total_mib",
                                            "memory_used_mib", "errors", "placement", NULL };
        SimInstance in = { .gpu_instance = -1 };
        uint64_t used = 0;
        unsigned placement = 0;
        int r;

        if (!json_is_object(obj))
                return fail(p, "must be an object");
        r = check_keys(p, obj, keys);
        if (r < 0)
                return r;
        if ((r = get_unsigned(p, obj, "gi", true, 0xFFFFFFFEu, &in.gi)) < 0 ||
            (r = get_unsigned(p, obj, "ci", false, 0xFFFFFFFEu, &in.ci)) < 0 ||
            (r = get_string(p, obj, "profile", true, in.profile, sizeof(in.profile))) < 0 ||
            (r = get_string(p, obj, "uuid", true, in.uuid, sizeof(in.uuid))) < 0)
                return r;
        if (strncmp(in.uuid, "MIG-", 4) != 0)
                return fail(p, "\"uuid\" must start with \"MIG-\"");
        *ret_placement = -1;
        if (json_object_get(obj, "placement")) {
                if ((r = get_unsigned(p, obj, "placement", true, SIM_MEMORY_SLICES - 1, &placement)) < 0)
                        return r;
                *ret_placement = (int)placement;
        }

        const SimMigProfile *profile = sim_mig_profile_by_name(family, in.profile);
        if (profile)
                in.memory_total_mib = profile->memory_mib;
        if ((r = get_uint(p, obj, "memory_total_mib", !profile, UINT32_MAX, &in.memory_total_mib)) < 0)
                return r;
        if (json_object_get(obj, "memory_used_mib")) {
                if ((r = get_uint(p, obj, "memory_used_mib", true, UINT32_MAX, &used)) < 0)
                        return r;
                in.has_memory_used = true;
                in.memory_used_mib = used;
        }
        r = parse_errors(p, obj, &in.errors);
        if (r < 0)
                return r;
        *ret = in;
        return 0;
}

/* The compute-instance profile index whose slice count is `slices` (the
 * whole GPU instance): 1→0x0 … 4→0x3, 7→0x4. */
static unsigned ci_profile_for_slices(unsigned slices)
{
        return slices <= 4 ? slices - 1 : 0x4;
}

/* Place the GPU instances that have no placement yet, depth first over the
 * profiles' allowed starts; those that cannot be placed stay unplaced. */
static bool place_rest(SimGpu *gpu, size_t i)
{
        SimGpuInstance *g;

        if (i >= gpu->n_gis)
                return true;
        g = &gpu->gis[i];
        if (g->size > 0 || !g->profile)
                return place_rest(gpu, i + 1);
        for (unsigned s = 0; s < SIM_MEMORY_SLICES; s++) {
                if (!(g->profile->starts & (1u << s)) ||
                    !sim_gpu_placement_free(gpu, s, g->profile->mem_slices))
                        continue;
                g->start = s;
                g->size = g->profile->mem_slices;
                if (place_rest(gpu, i + 1))
                        return true;
                g->size = 0;
        }
        return false;
}

/* GPU instances of the lab's MIG devices: one per distinct "gi". */
static int derive_gpu_instances(Parser *p, SimGpu *gpu, size_t n, const int *placements)
{
        bool explicit_ok = true;

        gpu->n_gis = 0;
        for (size_t i = 0; i < n; i++) {
                SimInstance *in = &gpu->instances[i];
                SimGpuInstance *g = NULL;

                for (size_t j = 0; j < gpu->n_gis; j++)
                        if (gpu->gis[j].id == in->gi)
                                g = &gpu->gis[j];
                if (g) {
                        if (strcmp(g->profile_name, in->profile) != 0)
                                return fail(p, "mig.instances[%zu]: gi %u has profile %s already",
                                            i, in->gi, g->profile_name);
                } else {
                        g = &gpu->gis[gpu->n_gis++];
                        *g = (SimGpuInstance) { .id = in->gi,
                                                .profile = sim_mig_profile_by_name(gpu->family, in->profile) };
                        snprintf(g->profile_name, sizeof(g->profile_name), "%s", in->profile);
                        if (placements[i] >= 0) {
                                unsigned s = (unsigned)placements[i];

                                if (!g->profile || !(g->profile->starts & (1u << s)) ||
                                    !sim_gpu_placement_free(gpu, s, g->profile->mem_slices))
                                        explicit_ok = false;
                                else {
                                        g->start = s;
                                        g->size = g->profile->mem_slices;
                                }
                                if (!explicit_ok)
                                        return fail(p, "mig.instances[%zu]: placement %u is not a free "
                                                    "placement of %s", i, s, in->profile);
                        }
                }
                in->gpu_instance = (int)(g - gpu->gis);
                in->ci_slices = g->profile ? g->profile->slices : 1;
                in->ci_profile = ci_profile_for_slices(in->ci_slices);
                in->ci_start = 0;
        }
        /* A lab that lists more than fits keeps the extra instances unplaced
         * rather than being refused: placements matter only to MIG management. */
        if (!place_rest(gpu, 0))
                for (size_t j = 0; j < gpu->n_gis; j++)
                        if (gpu->gis[j].size == 0 && gpu->gis[j].profile)
                                (void)place_rest(gpu, j);
        return 0;
}

static int parse_mig(Parser *p, json_t *mig, SimGpu *gpu)
{
        static const char *const keys[] = { "enabled", "pending", "instances", NULL };
        char where[sizeof(p->where)];
        int placements[SIM_MAX_MIG];
        json_t *instances, *v;
        size_t i;
        int r;

        if (!json_is_object(mig))
                return fail(p, "\"mig\" must be an object");
        r = check_keys(p, mig, keys);
        if (r < 0)
                return r;
        gpu->mig_capable = true;
        if ((r = get_bool(p, mig, "enabled", &gpu->mig_enabled)) < 0)
                return r;
        gpu->mig_pending = gpu->mig_enabled;
        if ((r = get_bool(p, mig, "pending", &gpu->mig_pending)) < 0)
                return r;
        instances = json_object_get(mig, "instances");
        if (!instances)
                return 0;
        if (!json_is_array(instances))
                return fail(p, "\"mig.instances\" must be an array");
        if (json_array_size(instances) > SIM_MAX_MIG)
                return fail(p, "\"mig.instances\" has more than %d entries", SIM_MAX_MIG);

        memcpy(where, p->where, sizeof(where));
        json_array_foreach(instances, i, v) {
                snprintf(p->where, sizeof(p->where), "%s.mig.instances[%zu]", where, i);
                r = parse_instance(p, v, gpu->family, &gpu->instances[i], &placements[i]);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++) {
                        if (gpu->instances[j].gi == gpu->instances[i].gi &&
                            gpu->instances[j].ci == gpu->instances[i].ci)
                                return fail(p, "gi %u / ci %u appears twice",
                                            gpu->instances[i].gi, gpu->instances[i].ci);
                        if (strcmp(gpu->instances[j].uuid, gpu->instances[i].uuid) == 0)
                                return fail(p, "uuid %s appears twice", gpu->instances[i].uuid);
                }
        }
        memcpy(p->where, where, sizeof(where));
        /* Instances of a GPU whose MIG mode is off do not exist as far as NVML
         * can tell; they are still validated so a typo does not hide until
         * a test flips "enabled". */
        gpu->n_instances = gpu->mig_enabled ? json_array_size(instances) : 0;
        return derive_gpu_instances(p, gpu, gpu->n_instances, placements);
}

static int parse_process(Parser *p, json_t *obj, const SimGpu *gpu, SimProcess *ret)
{
        static const char *const keys[] = { "pid",      "used_mib", "gi",  "ci",
                                            "sm_util",  "mem_util", "type", NULL };
        SimProcess pr = { .used_known = true, .instance = -1, .types = SIM_PROCESS_COMPUTE };
        json_t *used, *type;
        int r;

        if (!json_is_object(obj))
                return fail(p, "must be an object");
        r = check_keys(p, obj, keys);
        if (r < 0)
                return r;
        if ((r = get_unsigned(p, obj, "pid", true, 0x7FFFFFFF, &pr.pid)) < 0 ||
            (r = get_unsigned(p, obj, "sm_util", false, 100, &pr.sm_util)) < 0 ||
            (r = get_unsigned(p, obj, "mem_util", false, 100, &pr.mem_util)) < 0)
                return r;
        if (pr.pid == 0)
                return fail(p, "\"pid\" must be positive");

        used = json_object_get(obj, "used_mib");
        if (json_is_null(used))
                pr.used_known = false;
        else if ((r = get_uint(p, obj, "used_mib", false, UINT32_MAX, &pr.used_mib)) < 0)
                return r;

        type = json_object_get(obj, "type");
        if (type) {
                const char *t = json_string_value(type);

                if (t && strcmp(t, "compute") == 0)
                        pr.types = SIM_PROCESS_COMPUTE;
                else if (t && strcmp(t, "graphics") == 0)
                        pr.types = SIM_PROCESS_GRAPHICS;
                else if (t && strcmp(t, "both") == 0)
                        pr.types = SIM_PROCESS_COMPUTE | SIM_PROCESS_GRAPHICS;
                else
                        return fail(p, "\"type\" must be \"compute\", \"graphics\" or \"both\"");
        }

        bool has_gi = json_object_get(obj, "gi"), has_ci = json_object_get(obj, "ci");
        if (has_gi != has_ci)
                return fail(p, "\"gi\" and \"ci\" go together");
        if (has_gi) {
                if ((r = get_unsigned(p, obj, "gi", true, 0xFFFFFFFEu, &pr.gi)) < 0 ||
                    (r = get_unsigned(p, obj, "ci", true, 0xFFFFFFFEu, &pr.ci)) < 0)
                        return r;
                pr.in_mig = true;
        }
        (void)gpu;
        *ret = pr;
        return 0;
}

int sim_gpu_resolve_processes(SimGpu *gpu, unsigned index, char *error, size_t error_size)
{
        for (size_t i = 0; i < gpu->n_processes; i++) {
                SimProcess *pr = &gpu->processes[i];

                pr->instance = -1;
                if (pr->in_mig) {
                        for (size_t j = 0; j < gpu->n_instances; j++)
                                if (gpu->instances[j].gi == pr->gi && gpu->instances[j].ci == pr->ci)
                                        pr->instance = (int)j;
                        if (pr->instance < 0) {
                                snprintf(error, error_size,
                                         "gpus[%u].processes[%zu]: no MIG instance gi %u / ci %u on "
                                         "this GPU (is MIG enabled?)", index, i, pr->gi, pr->ci);
                                return -EINVAL;
                        }
                } else if (gpu->mig_enabled) {
                        snprintf(error, error_size,
                                 "gpus[%u].processes[%zu]: a process on a MIG-enabled GPU needs "
                                 "\"gi\" and \"ci\"", index, i);
                        return -EINVAL;
                }
        }
        return 0;
}

const SimGpmMetricInfo sim_gpm_metrics[SIM_GPM_METRICS] = {
        [SIM_GPM_GRAPHICS_UTIL] = {"graphics_util", 1, "gr_util", "Graphics utilization", "%"},
        [SIM_GPM_SM_UTIL] = {"sm_util", 2, "sm_util", "SM utilization", "%"},
        [SIM_GPM_SM_OCCUPANCY] = {"sm_occupancy", 3, "sm_occupancy", "SM occupancy", "%"},
        [SIM_GPM_ANY_TENSOR_UTIL] = {"tensor_util", 5, "any_tensor_util",
                                     "Any tensor utilization", "%"},
        [SIM_GPM_DRAM_BW_UTIL] = {"dram_bw_util", 10, "dram_bw_util",
                                  "DRAM bandwidth utilization", "%"},
};

/* "gpm": {"sm_util": 40, "tensor_util": 30, ...}: percent from 0 to 100,
 * each optional (0 when left out). */
static int parse_gpm(Parser *p, json_t *gpm, SimGpu *gpu)
{
        static const char *const keys[] = {"graphics_util", "sm_util", "sm_occupancy",
                                           "tensor_util", "dram_bw_util", NULL};
        int r;

        if (!json_is_object(gpm))
                return fail(p, "\"gpm\" must be an object");
        r = check_keys(p, gpm, keys);
        if (r < 0)
                return r;
        for (size_t i = 0; i < SIM_GPM_METRICS; i++) {
                unsigned v = 0;

                if ((r = get_unsigned(p, gpm, sim_gpm_metrics[i].key, false, 100, &v)) < 0)
                        return r;
                gpu->gpm[i] = v;
        }
        gpu->has_gpm = true;
        return 0;
}

static int parse_gpu(Parser *p, json_t *obj, unsigned index, SimGpu *gpu)
{
        static const char *const keys[] = {
                "name",          "uuid",        "pci_bus_id",      "pci_device_id",
                "pci_subsystem_id", "minor",    "memory_total_mib", "memory_used_mib",
                "memory_reserved_mib", "utilization_gpu", "utilization_memory",
                "temperature_c", "power_mw",    "energy_mj",       "lost",
                "xid",           "mig",         "processes",       "errors",
                "numa_node",     "cpu_affinity", "clock_sm_mhz", "clock_mem_mhz", "gpm", NULL,
        };
        char where[sizeof(p->where)];
        json_t *mig, *processes, *v;
        unsigned function, numa_node = 0;
        size_t i;
        int r, n;

        if (!json_is_object(obj))
                return fail(p, "must be an object");
        r = check_keys(p, obj, keys);
        if (r < 0)
                return r;

        gpu->minor = index;
        if ((r = get_string(p, obj, "name", true, gpu->name, sizeof(gpu->name))) < 0 ||
            (r = get_string(p, obj, "uuid", true, gpu->uuid, sizeof(gpu->uuid))) < 0 ||
            (r = get_string(p, obj, "pci_bus_id", true, gpu->pci_bus_id, sizeof(gpu->pci_bus_id))) < 0 ||
            (r = get_unsigned(p, obj, "pci_device_id", false, UINT32_MAX, &gpu->pci_device_id)) < 0 ||
            (r = get_unsigned(p, obj, "pci_subsystem_id", false, UINT32_MAX, &gpu->pci_subsystem_id)) < 0 ||
            (r = get_unsigned(p, obj, "minor", false, 254, &gpu->minor)) < 0 ||
            (r = get_uint(p, obj, "memory_total_mib", true, UINT32_MAX, &gpu->memory_total_mib)) < 0 ||
            (r = get_uint(p, obj, "memory_reserved_mib", false, UINT32_MAX, &gpu->memory_reserved_mib)) < 0 ||
            (r = get_unsigned(p, obj, "utilization_gpu", false, 100, &gpu->utilization_gpu)) < 0 ||
            (r = get_unsigned(p, obj, "utilization_memory", false, 100, &gpu->utilization_memory)) < 0 ||
            (r = get_unsigned(p, obj, "temperature_c", false, 200, &gpu->temperature_c)) < 0 ||
            (r = get_unsigned(p, obj, "power_mw", false, 10000000, &gpu->power_mw)) < 0 ||
            (r = get_uint(p, obj, "energy_mj", false, INT64_MAX, &gpu->energy_mj)) < 0 ||
            (r = get_bool(p, obj, "lost", &gpu->lost)) < 0 ||
            (r = get_uint(p, obj, "xid", false, UINT32_MAX, &gpu->xid)) < 0 ||
            (r = get_unsigned(p, obj, "clock_sm_mhz", false, 10000, &gpu->clock_sm_mhz)) < 0 ||
            (r = get_unsigned(p, obj, "clock_mem_mhz", false, 20000, &gpu->clock_mem_mhz)) < 0)
                return r;
        if (json_object_get(obj, "gpm") && (r = parse_gpm(p, json_object_get(obj, "gpm"), gpu)) < 0)
                return r;
        if (strncmp(gpu->uuid, "GPU-", 4) != 0)
                return fail(p, "\"uuid\" must start with \"GPU-\"");
        n = 0;
        if (sscanf(gpu->pci_bus_id, "%x:%x:%x.%x%n", &gpu->pci_domain, &gpu->pci_bus,
                   &gpu->pci_device, &function, &n) != 4 ||
            (size_t)n != strlen(gpu->pci_bus_id) || gpu->pci_domain > 0xFFFF ||
            gpu->pci_bus > 0xFF || gpu->pci_device > 0x1F || function > 7)
                return fail(p, "\"pci_bus_id\" must look like \"00000000:07:00.0\"");
        if (json_object_get(obj, "memory_used_mib")) {
                if ((r = get_uint(p, obj, "memory_used_mib", true, UINT32_MAX, &gpu->memory_used_mib)) < 0)
                        return r;
                gpu->has_memory_used = true;
        }
        gpu->family = family_from_name(gpu->name);
        gpu->numa_node = -1;
        if (json_object_get(obj, "numa_node")) {
                if ((r = get_unsigned(p, obj, "numa_node", true, SIM_MAX_NUMA_NODES - 1,
                                      &numa_node)) < 0)
                        return r;
                gpu->numa_node = (int)numa_node;
        }

        v = json_object_get(obj, "cpu_affinity");
        if (v) {
                const unsigned bits = 8 * sizeof(unsigned long);
                json_t *cpu;
                size_t k;

                if (!json_is_array(v))
                        return fail(p, "\"cpu_affinity\" must be a list of CPU numbers");
                json_array_foreach(v, k, cpu) {
                        json_int_t c = json_integer_value(cpu);

                        if (!json_is_integer(cpu) || c < 0 || c >= SIM_MAX_CPUS)
                                return fail(p, "\"cpu_affinity\" items must be CPU numbers "
                                               "from 0 to %d", SIM_MAX_CPUS - 1);
                        gpu->cpu_affinity[(unsigned)c / bits] |= 1ul << ((unsigned)c % bits);
                }
                gpu->has_cpu_affinity = true;
        }

        mig = json_object_get(obj, "mig");
        if (mig && (r = parse_mig(p, mig, gpu)) < 0)
                return r;

        processes = json_object_get(obj, "processes");
        if (processes) {
                if (!json_is_array(processes))
                        return fail(p, "\"processes\" must be an array");
                if (json_array_size(processes) > SIM_MAX_PROCESSES_PER_GPU)
                        return fail(p, "\"processes\" has more than %d entries",
                                    SIM_MAX_PROCESSES_PER_GPU);
                if (json_array_size(processes) > 0) {
                        gpu->processes = calloc(json_array_size(processes), sizeof(SimProcess));
                        if (!gpu->processes)
                                return -ENOMEM;
                }
                memcpy(where, p->where, sizeof(where));
                json_array_foreach(processes, i, v) {
                        snprintf(p->where, sizeof(p->where), "%s.processes[%zu]", where, i);
                        r = parse_process(p, v, gpu, &gpu->processes[i]);
                        if (r < 0)
                                return r;
                        gpu->n_processes++;
                }
                memcpy(p->where, where, sizeof(where));
        }
        return parse_errors(p, obj, &gpu->errors);
}

static int parse_lab(Parser *p, json_t *root, const char *default_driver_version,
                     SimLab **ret)
{
        static const char *const keys[] = { "driver_version", "gpus", "errors", "delay_ms", NULL };
        _cleanup_(sim_lab_freep) SimLab *lab = NULL;
        json_t *gpus, *v;
        size_t i;
        int r;

        if (!json_is_object(root))
                return fail(p, "the lab must be a JSON object");
        r = check_keys(p, root, keys);
        if (r < 0)
                return r;

        lab = calloc(1, sizeof(*lab));
        if (!lab)
                return -ENOMEM;
        snprintf(lab->driver_version, sizeof(lab->driver_version), "%s", default_driver_version);
        if ((r = get_string(p, root, "driver_version", false, lab->driver_version,
                            sizeof(lab->driver_version))) < 0 ||
            (r = parse_errors(p, root, &lab->errors)) < 0 ||
            (r = get_unsigned(p, root, "delay_ms", false, 600000, &lab->delay_ms)) < 0)
                return r;

        gpus = json_object_get(root, "gpus");
        if (!json_is_array(gpus))
                return fail(p, "\"gpus\" must be an array");
        if (json_array_size(gpus) > SIM_MAX_GPUS)
                return fail(p, "\"gpus\" has more than %d entries", SIM_MAX_GPUS);
        if (json_array_size(gpus) > 0) {
                lab->gpus = calloc(json_array_size(gpus), sizeof(SimGpu));
                if (!lab->gpus)
                        return -ENOMEM;
        }
        json_array_foreach(gpus, i, v) {
                snprintf(p->where, sizeof(p->where), "gpus[%zu]", i);
                /* Count it first so sim_lab_free() releases a half-parsed GPU. */
                lab->n_gpus++;
                r = parse_gpu(p, v, (unsigned)i, &lab->gpus[i]);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(lab->gpus[j].uuid, lab->gpus[i].uuid) == 0)
                                return fail(p, "uuid %s appears twice", lab->gpus[i].uuid);
        }
        p->where[0] = '\0';
        *ret = TAKE_PTR(lab);
        return 0;
}

/* Compute slices of the NVML_COMPUTE_INSTANCE_PROFILE_* indexes 0x0..0x4. */
static const unsigned ci_profile_slices[] = { 1, 2, 3, 4, 7 };

static int parse_state_gpu(Parser *p, json_t *obj, SimGpu *gpu)
{
        static const char *const keys[] = { "enabled", "pending", "gpu_instances",
                                            "compute_instances", NULL };
        static const char *const gi_keys[] = { "id", "profile_id", "start", NULL };
        static const char *const ci_keys[] = { "gi", "ci", "profile", "start", "uuid", NULL };
        json_t *gis, *cis, *v;
        size_t i;
        int r;

        if (!json_is_object(obj))
                return fail(p, "must be an object");
        if (!gpu->mig_capable)
                return fail(p, "the lab's GPU has no \"mig\" object");
        if ((r = check_keys(p, obj, keys)) < 0 ||
            (r = get_bool(p, obj, "enabled", &gpu->mig_enabled)) < 0)
                return r;
        gpu->mig_pending = gpu->mig_enabled;
        if ((r = get_bool(p, obj, "pending", &gpu->mig_pending)) < 0)
                return r;
        gpu->mig_from_state = true;
        gpu->n_gis = gpu->n_instances = 0;
        gis = json_object_get(obj, "gpu_instances");
        cis = json_object_get(obj, "compute_instances");
        if ((gis && (!json_is_array(gis) || json_array_size(gis) > SIM_MAX_MIG)) ||
            (cis && (!json_is_array(cis) || json_array_size(cis) > SIM_MAX_MIG)))
                return fail(p, "\"gpu_instances\" and \"compute_instances\" must be arrays of at "
                            "most %d", SIM_MAX_MIG);
        json_array_foreach(gis, i, v) {
                SimGpuInstance g = {};
                unsigned profile_id = 0;

                if (!json_is_object(v) || (r = check_keys(p, v, gi_keys)) < 0 ||
                    (r = get_unsigned(p, v, "id", true, SIM_MAX_GI_ID, &g.id)) < 0 ||
                    (r = get_unsigned(p, v, "profile_id", true, UINT32_MAX, &profile_id)) < 0 ||
                    (r = get_unsigned(p, v, "start", true, SIM_MEMORY_SLICES - 1, &g.start)) < 0)
                        return r < 0 ? r : fail(p, "gpu_instances[%zu] must be an object", i);
                g.profile = sim_mig_profile_by_id(gpu->family, profile_id);
                if (!g.profile || !(g.profile->starts & (1u << g.start)) ||
                    !sim_gpu_placement_free(gpu, g.start, g.profile->mem_slices))
                        return fail(p, "gpu_instances[%zu]: profile %u at %u is not a free placement",
                                    i, profile_id, g.start);
                for (size_t j = 0; j < gpu->n_gis; j++)
                        if (gpu->gis[j].id == g.id)
                                return fail(p, "gpu_instances[%zu]: id %u appears twice", i, g.id);
                g.size = g.profile->mem_slices;
                snprintf(g.profile_name, sizeof(g.profile_name), "%s", g.profile->name);
                gpu->gis[gpu->n_gis++] = g;
        }
        json_array_foreach(cis, i, v) {
                SimInstance in = { .gpu_instance = -1 };
                const SimGpuInstance *g = NULL;

                if (!json_is_object(v) || (r = check_keys(p, v, ci_keys)) < 0 ||
                    (r = get_unsigned(p, v, "gi", true, SIM_MAX_GI_ID, &in.gi)) < 0 ||
                    (r = get_unsigned(p, v, "ci", true, SIM_MAX_CI_ID, &in.ci)) < 0 ||
                    (r = get_unsigned(p, v, "profile", true, ELEMENTSOF(ci_profile_slices) - 1,
                                      &in.ci_profile)) < 0 ||
                    (r = get_unsigned(p, v, "start", true, 6, &in.ci_start)) < 0 ||
                    (r = get_string(p, v, "uuid", true, in.uuid, sizeof(in.uuid))) < 0)
                        return r < 0 ? r : fail(p, "compute_instances[%zu] must be an object", i);
                for (size_t j = 0; j < gpu->n_gis; j++)
                        if (gpu->gis[j].id == in.gi) {
                                g = &gpu->gis[j];
                                in.gpu_instance = (int)j;
                        }
                in.ci_slices = ci_profile_slices[in.ci_profile];
                if (!g || strncmp(in.uuid, "MIG-", 4) != 0 ||
                    in.ci_start + in.ci_slices > g->profile->slices)
                        return fail(p, "compute_instances[%zu]: no room in GPU instance %u, or a "
                                    "uuid not starting with \"MIG-\"", i, in.gi);
                for (size_t j = 0; j < gpu->n_instances; j++)
                        if ((gpu->instances[j].gi == in.gi && gpu->instances[j].ci == in.ci) ||
                            strcmp(gpu->instances[j].uuid, in.uuid) == 0)
                                return fail(p, "compute_instances[%zu]: gi/ci or uuid appears twice", i);
                if (in.ci_slices == g->profile->slices)
                        snprintf(in.profile, sizeof(in.profile), "%s", g->profile->name);
                else
                        snprintf(in.profile, sizeof(in.profile), "%uc.%s", in.ci_slices,
                                 g->profile->name);
                in.memory_total_mib = g->profile->memory_mib;
                gpu->instances[gpu->n_instances++] = in;
        }
        /* As with the lab: instances of a GPU whose MIG mode is off do not exist for NVML. */
        if (!gpu->mig_enabled)
                gpu->n_gis = gpu->n_instances = 0;
        return 0;
}

static int load_state(const char *path, SimLab *lab, SimFileId *ret_id, char *error,
                      size_t error_size)
{
        Parser p = { .error = error, .error_size = error_size };
        _cleanup_close_ int fd = -1;
        json_auto_t *root = NULL;
        json_error_t jerr;
        const char *uuid;
        json_t *gpus, *v;
        struct stat st;
        int r;

        *ret_id = (SimFileId) {};
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                if (errno == ENOENT)
                        return 0;
                r = negative_errno();
                snprintf(error, error_size, "cannot open MIG state file %s: %s", path, strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0)
                return negative_errno();
        file_id_from_stat(&st, ret_id);
        if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > SIM_MAX_LAB_BYTES) {
                snprintf(error, error_size, "MIG state file %s is not a regular file of at most %u bytes",
                         path, SIM_MAX_LAB_BYTES);
                return -EINVAL;
        }
        root = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
                snprintf(error, error_size, "MIG state file %s:%d: %s", path, jerr.line, jerr.text);
                return -EINVAL;
        }
        gpus = json_object_get(root, "gpus");
        if (!json_is_object(root) || !json_is_object(gpus)) {
                snprintf(error, error_size, "MIG state file %s: \"gpus\" must be an object", path);
                return -EINVAL;
        }
        json_object_foreach(gpus, uuid, v)
                for (size_t i = 0; i < lab->n_gpus; i++) {
                        char msg[256];

                        if (strcmp(lab->gpus[i].uuid, uuid) != 0)
                                continue;
                        snprintf(p.where, sizeof(p.where), "gpus.%s", uuid);
                        r = parse_state_gpu(&p, v, &lab->gpus[i]);
                        if (r < 0) {
                                snprintf(msg, sizeof(msg), "%s", error);
                                snprintf(error, error_size, "MIG state file %s: %s", path, msg);
                                return r;
                        }
                }
        return 0;
}

static json_t *state_gpu_json(const SimGpu *gpu)
{
        json_t *gis = json_array(), *cis = json_array();

        for (size_t i = 0; i < gpu->n_gis; i++)
                if (gpu->gis[i].profile && gpu->gis[i].size > 0)
                        json_array_append_new(gis, json_pack("{s:I, s:I, s:I}", "id",
                                                             (json_int_t)gpu->gis[i].id, "profile_id",
                                                             (json_int_t)gpu->gis[i].profile->id,
                                                             "start", (json_int_t)gpu->gis[i].start));
        for (size_t i = 0; i < gpu->n_instances; i++) {
                const SimInstance *in = &gpu->instances[i];

                if (in->gpu_instance < 0 || !gpu->gis[in->gpu_instance].profile ||
                    gpu->gis[in->gpu_instance].size == 0)
                        continue;
                json_array_append_new(cis, json_pack("{s:I, s:I, s:I, s:I, s:s}", "gi",
                                                     (json_int_t)in->gi, "ci", (json_int_t)in->ci,
                                                     "profile", (json_int_t)in->ci_profile, "start",
                                                     (json_int_t)in->ci_start, "uuid", in->uuid));
        }
        return json_pack("{s:b, s:b, s:o, s:o}", "enabled", gpu->mig_enabled, "pending",
                         gpu->mig_pending, "gpu_instances", gis, "compute_instances", cis);
}

int sim_state_write(const char *path, const SimLab *lab, SimFileId *ret_id)
{
        char tmp[PATH_MAX + 32];
        json_auto_t *root = NULL;
        _cleanup_close_ int fd = -1;
        json_t *gpus;
        struct stat st;
        int r;

        root = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(root) || !json_is_object(json_object_get(root, "gpus"))) {
                json_decref(root);
                root = json_pack("{s:{}}", "gpus");
                if (!root)
                        return -ENOMEM;
        }
        gpus = json_object_get(root, "gpus");
        for (size_t i = 0; i < lab->n_gpus; i++)
                if (lab->gpus[i].mig_from_state &&
                    json_object_set_new(gpus, lab->gpus[i].uuid, state_gpu_json(&lab->gpus[i])) < 0)
                        return -ENOMEM;
        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid()) >= sizeof(tmp))
                return -ENAMETOOLONG;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return negative_errno();
        if (json_dumpfd(root, fd, JSON_INDENT(2) | JSON_SORT_KEYS) < 0 || write(fd, "\n", 1) != 1 ||
            fstat(fd, &st) < 0) {
                r = errno > 0 ? -errno : -EIO;
                (void)unlink(tmp);
                return r;
        }
        if (rename(tmp, path) < 0) {
                r = negative_errno();
                (void)unlink(tmp);
                return r;
        }
        file_id_from_stat(&st, ret_id);
        return 0;
}

static int lab_load(const char *path, const char *state_path, const char *default_driver_version,
                    SimLab **ret_lab, SimFileId *ret_id, SimFileId *ret_state_id, char *error,
                    size_t error_size)
{
        Parser p = { .error = error, .error_size = error_size };
        _cleanup_close_ int fd = -1;
        json_auto_t *root = NULL; /* jansson's own cleanup attribute */
        _cleanup_(sim_lab_freep) SimLab *lab = NULL;
        json_error_t jerr;
        struct stat st;
        int r;

        error[0] = '\0';
        *ret_state_id = (SimFileId) {};
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = negative_errno();
                snprintf(error, error_size, "cannot open lab file %s: %s", path, strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0) {
                r = negative_errno();
                snprintf(error, error_size, "cannot stat lab file %s: %s", path, strerror(-r));
                return r;
        }
        /* Identity of what we are about to read, not of what the path names
         * later: a rename racing with us then shows up as a change next call. */
        file_id_from_stat(&st, ret_id);
        if (!S_ISREG(st.st_mode)) {
                snprintf(error, error_size, "lab file %s is not a regular file", path);
                return -EINVAL;
        }
        if ((uint64_t)st.st_size > SIM_MAX_LAB_BYTES) {
                snprintf(error, error_size, "lab file %s is larger than %u bytes", path,
                         SIM_MAX_LAB_BYTES);
                return -EFBIG;
        }
        root = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
                snprintf(error, error_size, "lab file %s:%d: %s", path, jerr.line, jerr.text);
                return -EINVAL;
        }
        r = parse_lab(&p, root, default_driver_version, &lab);
        if (r < 0) {
                if (r == -ENOMEM)
                        snprintf(error, error_size, "out of memory parsing %s", path);
                else {
                        char msg[256];

                        snprintf(msg, sizeof(msg), "%s", error);
                        snprintf(error, error_size, "lab file %s: %s", path, msg);
                }
                return r;
        }
        /* The MIG state file overrides the lab's MIG mode and instances of
         * the GPUs it names; processes are resolved against the result. */
        if (state_path && (r = load_state(state_path, lab, ret_state_id, error, error_size)) < 0)
                return r;
        for (size_t i = 0; i < lab->n_gpus; i++) {
                char msg[256];

                r = sim_gpu_resolve_processes(&lab->gpus[i], (unsigned)i, msg, sizeof(msg));
                if (r < 0) {
                        snprintf(error, error_size, "lab file %s: %s", path, msg);
                        return r;
                }
        }
        *ret_lab = TAKE_PTR(lab);
        return 0;
}

/* A reason is one line whatever the lab holds: keys, strings and jansson's
 * own "near '...'" quote are the lab's bytes, so control characters in it
 * are written as \n, \t or \xNN (cut to the buffer, never split mid-escape). */
static void error_make_one_line(char *error, size_t error_size)
{
        _cleanup_free_ char *copy = strdup(error);
        size_t n = 0;

        if (!copy) {
                for (char *c = error; *c; c++)
                        if ((unsigned char)*c < 0x20 || *c == 0x7f)
                                *c = '?';
                return;
        }
        for (const char *c = copy; *c; c++) {
                unsigned char b = (unsigned char)*c;
                char esc[5];
                size_t len;

                if (b == '\n')
                        len = (size_t)snprintf(esc, sizeof(esc), "\\n");
                else if (b == '\t')
                        len = (size_t)snprintf(esc, sizeof(esc), "\\t");
                else if (b < 0x20 || b == 0x7f)
                        len = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", b);
                else {
                        esc[0] = (char)b;
                        len = 1;
                }
                if (n + len >= error_size)
                        break;
                memcpy(error + n, esc, len);
                n += len;
        }
        error[n] = '\0';
}

int sim_lab_load(const char *path, const char *state_path, const char *default_driver_version,
                 SimLab **ret_lab, SimFileId *ret_id, SimFileId *ret_state_id, char *error,
                 size_t error_size)
{
        int r = lab_load(path, state_path, default_driver_version, ret_lab, ret_id, ret_state_id,
                         error, error_size);

        if (r < 0 && error_size > 0)
                error_make_one_line(error, error_size);
        return r;
}
