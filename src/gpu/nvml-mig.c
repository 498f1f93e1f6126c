/* The MIG management binding (see nvml-mig.h). Entry points are resolved
 * per call through gpu_nvml_symbol(): these calls are rare (an apply, an
 * on-demand creation, a layout read per sampler tick on MIG GPUs only),
 * and dlsym is cheap next to the driver call. */
#include "gpu/nvml-mig.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

/* NVML_GPU_INSTANCE_PROFILE_COUNT of the header our table follows: indexes
 * at or above it are INVALID_ARGUMENT, which also ends enumeration. */
#define PROFILE_INDEX_END 0x11u
/* NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE .. _7_SLICE (0x0 .. 0x4) and beyond. */
#define CI_PROFILE_INDEX_END 0x8u

#define SYM(n, type, name) ((type)gpu_nvml_symbol((n), (name)))

nvmlReturn_t gpu_mig_mode(GpuNvml *n, nvmlDevice_t dev, bool *ret_current, bool *ret_pending)
{
        nvmlDeviceGetMigMode_fn fn = SYM(n, nvmlDeviceGetMigMode_fn, "nvmlDeviceGetMigMode");
        unsigned cur = 0, pend = 0;
        nvmlReturn_t r;

        assert(ret_current && ret_pending);
        gpu_nvml_note_call(n, "nvmlDeviceGetMigMode");
        if (!fn)
                return NVML_ERROR_NOT_SUPPORTED;
        r = fn(dev, &cur, &pend);
        if (r != NVML_SUCCESS)
                return r;
        *ret_current = cur == NVML_DEVICE_MIG_ENABLE;
        *ret_pending = pend == NVML_DEVICE_MIG_ENABLE;
        return NVML_SUCCESS;
}

nvmlReturn_t gpu_mig_set_mode(GpuNvml *n, nvmlDevice_t dev, bool enable, bool *ret_reset_needed)
{
        nvmlDeviceSetMigMode_fn fn = SYM(n, nvmlDeviceSetMigMode_fn, "nvmlDeviceSetMigMode");
        nvmlReturn_t activation = NVML_SUCCESS, r;

        assert(ret_reset_needed);
        gpu_nvml_note_call(n, "nvmlDeviceSetMigMode");
        if (!fn)
                return NVML_ERROR_NOT_SUPPORTED;
        r = fn(dev, enable ? NVML_DEVICE_MIG_ENABLE : NVML_DEVICE_MIG_DISABLE, &activation);
        if (r != NVML_SUCCESS)
                return r;
        *ret_reset_needed = activation != NVML_SUCCESS;
        return NVML_SUCCESS;
}

/* "1g.10gb" from the v1 struct, for drivers without the V call: memory
 * rounded up to whole GiB is how the marketing names are formed (9728 MiB
 * → 10gb, 4864 → 5gb, 40192 → 40gb, 80896 → 80gb). */
static void name_from_v1(unsigned index, const nvmlGpuInstanceProfileInfo_t *i, char *buf,
                         size_t len)
{
        snprintf(buf, len, "%ug.%llugb%s", i->sliceCount, (i->memorySizeMB + 1023) / 1024,
                 index == NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1 ? "+me" : "");
}

static nvmlReturn_t profile_info(GpuNvml *n, nvmlDevice_t dev, unsigned index, GpuMigProfile *ret)
{
        nvmlDeviceGetGpuInstanceProfileInfoV_fn fv = SYM(
                n, nvmlDeviceGetGpuInstanceProfileInfoV_fn, "nvmlDeviceGetGpuInstanceProfileInfoV");
        nvmlDeviceGetGpuInstanceProfileInfo_fn f1 = SYM(
                n, nvmlDeviceGetGpuInstanceProfileInfo_fn, "nvmlDeviceGetGpuInstanceProfileInfo");
        GpuMigProfile p = { .index = index };
        nvmlReturn_t r;

        if (fv) {
                nvmlGpuInstanceProfileInfo_v2_t v = { .version = nvmlGpuInstanceProfileInfo_v2 };
                const char *name;

                gpu_nvml_note_call(n, "nvmlDeviceGetGpuInstanceProfileInfoV");
                r = fv(dev, index, &v);
                if (r != NVML_SUCCESS)
                        return r;
                v.name[sizeof(v.name) - 1] = '\0';
                name = strncmp(v.name, "MIG ", 4) == 0 ? v.name + 4 : v.name;
                p.id = v.id;
                p.slices = v.sliceCount;
                p.max_instances = v.instanceCount;
                p.memory_mib = v.memorySizeMB;
                if (name[0] && strlen(name) < sizeof(p.name))
                        strcpy(p.name, name);
                else {
                        nvmlGpuInstanceProfileInfo_t v1 = { .sliceCount = v.sliceCount,
                                                            .memorySizeMB = v.memorySizeMB };

                        name_from_v1(index, &v1, p.name, sizeof(p.name));
                }
        } else if (f1) {
                nvmlGpuInstanceProfileInfo_t v1;

                gpu_nvml_note_call(n, "nvmlDeviceGetGpuInstanceProfileInfo");
                r = f1(dev, index, &v1);
                if (r != NVML_SUCCESS)
                        return r;
                p.id = v1.id;
                p.slices = v1.sliceCount;
                p.max_instances = v1.instanceCount;
                p.memory_mib = v1.memorySizeMB;
                name_from_v1(index, &v1, p.name, sizeof(p.name));
        } else
                return NVML_ERROR_NOT_SUPPORTED;
        *ret = p;
        return NVML_SUCCESS;
}

static nvmlReturn_t placements(GpuNvml *n, nvmlDevice_t dev, GpuMigProfile *p)
{
        nvmlDeviceGetGpuInstancePossiblePlacements_fn fn =
                SYM(n, nvmlDeviceGetGpuInstancePossiblePlacements_fn,
                    "nvmlDeviceGetGpuInstancePossiblePlacements_v2");
        nvmlGpuInstancePlacement_t pl[GPU_MIG_MAX_PLACEMENTS];
        unsigned count = 0;
        nvmlReturn_t r;

        gpu_nvml_note_call(n, "nvmlDeviceGetGpuInstancePossiblePlacements_v2");
        if (!fn)
                return NVML_ERROR_NOT_SUPPORTED;
        /* Ask for the count first: the call writes every placement it has. */
        r = fn(dev, p->id, NULL, &count);
        if (r != NVML_SUCCESS)
                return r;
        if (count > GPU_MIG_MAX_PLACEMENTS)
                return NVML_ERROR_INSUFFICIENT_SIZE;
        r = fn(dev, p->id, pl, &count);
        if (r != NVML_SUCCESS)
                return r;
        p->starts = 0;
        p->size = 0;
        for (unsigned i = 0; i < count && i < GPU_MIG_MAX_PLACEMENTS; i++) {
                if (pl[i].start >= 32 || pl[i].size == 0 || pl[i].size > 32)
                        return NVML_ERROR_UNKNOWN;
                p->starts |= 1u << pl[i].start;
                p->size = pl[i].size;
        }
        return NVML_SUCCESS;
}

nvmlReturn_t gpu_mig_profiles(GpuNvml *n, nvmlDevice_t dev, GpuMigProfile *ret, size_t max,
                              size_t *ret_n)
{
        size_t k = 0;
        nvmlReturn_t r;

        assert(ret && ret_n);
        for (unsigned index = 0; index < PROFILE_INDEX_END && k < max; index++) {
                GpuMigProfile p;

                r = profile_info(n, dev, index, &p);
                if (r == NVML_ERROR_INVALID_ARGUMENT)
                        break; /* past the driver's last profile (nvml.h) */
                if (r == NVML_ERROR_NOT_SUPPORTED) {
                        if (index == 0) /* no MIG at all */
                                return r;
                        continue;
                }
                if (r != NVML_SUCCESS)
                        return r;
                r = placements(n, dev, &p);
                if (r != NVML_SUCCESS)
                        return r;
                ret[k++] = p;
        }
        *ret_n = k;
        return NVML_SUCCESS;
}

/* The compute instance profile index whose slices span the whole GPU
 * instance: the largest one the GPU instance offers. */
static nvmlReturn_t full_ci_profile(GpuNvml *n, nvmlGpuInstance_t gi, unsigned *ret_id,
                                    unsigned *ret_slices)
{
        nvmlGpuInstanceGetComputeInstanceProfileInfo_fn fn =
                SYM(n, nvmlGpuInstanceGetComputeInstanceProfileInfo_fn,
                    "nvmlGpuInstanceGetComputeInstanceProfileInfo");
        unsigned best_slices = 0, best_id = 0;

        gpu_nvml_note_call(n, "nvmlGpuInstanceGetComputeInstanceProfileInfo");
        if (!fn)
                return NVML_ERROR_NOT_SUPPORTED;
        for (unsigned index = 0; index < CI_PROFILE_INDEX_END; index++) {
                nvmlComputeInstanceProfileInfo_t info;
                nvmlReturn_t r = fn(gi, index, NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED, &info);

                if (r == NVML_ERROR_INVALID_ARGUMENT)
                        break;
                if (r != NVML_SUCCESS)
                        continue;
                if (info.sliceCount > best_slices) {
                        best_slices = info.sliceCount;
                        best_id = info.id;
                }
        }
        if (best_slices == 0)
                return NVML_ERROR_NOT_SUPPORTED;
        *ret_id = best_id;
        *ret_slices = best_slices;
        return NVML_SUCCESS;
}

nvmlReturn_t gpu_mig_instances(GpuNvml *n, nvmlDevice_t dev, const GpuMigProfile *profiles,
                               size_t n_profiles, GpuMigInstance *ret, size_t max, size_t *ret_n)
{
        nvmlDeviceGetGpuInstances_fn list =
                SYM(n, nvmlDeviceGetGpuInstances_fn, "nvmlDeviceGetGpuInstances");
        nvmlGpuInstanceGetInfo_fn info = SYM(n, nvmlGpuInstanceGetInfo_fn, "nvmlGpuInstanceGetInfo");
        nvmlGpuInstanceGetComputeInstances_fn cis =
                SYM(n, nvmlGpuInstanceGetComputeInstances_fn, "nvmlGpuInstanceGetComputeInstances");
        nvmlComputeInstanceGetInfo_fn ci_info =
                SYM(n, nvmlComputeInstanceGetInfo_fn, "nvmlComputeInstanceGetInfo_v2");
        size_t k = 0;

        assert(ret && ret_n);
        if (!list || !info)
                return NVML_ERROR_NOT_SUPPORTED;
        for (size_t p = 0; p < n_profiles; p++) {
                /* The array must hold the profile's instanceCount (nvml.h). */
                nvmlGpuInstance_t handles[GPU_MIG_MAX_INSTANCES];
                unsigned count = 0;
                nvmlReturn_t r;

                if (profiles[p].max_instances > GPU_MIG_MAX_INSTANCES)
                        return NVML_ERROR_INSUFFICIENT_SIZE;
                gpu_nvml_note_call(n, "nvmlDeviceGetGpuInstances");
                r = list(dev, profiles[p].id, handles, &count);
                if (r != NVML_SUCCESS)
                        return r;
                for (unsigned i = 0; i < count && i < GPU_MIG_MAX_INSTANCES; i++) {
                        nvmlGpuInstanceInfo_t gi;
                        GpuMigInstance m = { .ci_id = -1 };

                        gpu_nvml_note_call(n, "nvmlGpuInstanceGetInfo");
                        r = info(handles[i], &gi);
                        if (r != NVML_SUCCESS)
                                return r;
                        m.gi_id = gi.id;
                        m.profile_id = gi.profileId;
                        m.start = gi.placement.start;
                        m.size = gi.placement.size;
                        /* Its compute instances, any profile: the first one found. */
                        for (unsigned c = 0; cis && ci_info && c < CI_PROFILE_INDEX_END && m.ci_id < 0; c++) {
                                nvmlComputeInstance_t ch[8];
                                unsigned nc = 0;
                                nvmlComputeInstanceInfo_t cinfo;

                                gpu_nvml_note_call(n, "nvmlGpuInstanceGetComputeInstances");
                                if (cis(handles[i], c, ch, &nc) != NVML_SUCCESS || nc == 0)
                                        continue;
                                gpu_nvml_note_call(n, "nvmlComputeInstanceGetInfo_v2");
                                if (ci_info(ch[0], &cinfo) == NVML_SUCCESS)
                                        m.ci_id = (int)cinfo.id;
                        }
                        if (k >= max)
                                return NVML_ERROR_INSUFFICIENT_SIZE;
                        ret[k++] = m;
                }
        }
        *ret_n = k;
        return NVML_SUCCESS;
}

nvmlReturn_t gpu_mig_create(GpuNvml *n, nvmlDevice_t dev, const GpuMigProfile *profile,
                            unsigned start, unsigned *ret_gi_id)
{
        nvmlDeviceCreateGpuInstanceWithPlacement_fn create =
                SYM(n, nvmlDeviceCreateGpuInstanceWithPlacement_fn,
                    "nvmlDeviceCreateGpuInstanceWithPlacement");
        nvmlGpuInstanceCreateComputeInstance_fn create_ci =
                SYM(n, nvmlGpuInstanceCreateComputeInstance_fn, "nvmlGpuInstanceCreateComputeInstance");
        nvmlGpuInstanceDestroy_fn destroy = SYM(n, nvmlGpuInstanceDestroy_fn, "nvmlGpuInstanceDestroy");
        nvmlGpuInstanceGetInfo_fn info = SYM(n, nvmlGpuInstanceGetInfo_fn, "nvmlGpuInstanceGetInfo");
        nvmlGpuInstancePlacement_t placement = { start, profile->size };
        nvmlGpuInstance_t gi = NULL;
        nvmlComputeInstance_t ci = NULL;
        nvmlGpuInstanceInfo_t gi_info;
        unsigned ci_id = 0, ci_slices = 0;
        nvmlReturn_t r;

        assert(profile && ret_gi_id);
        if (!create || !create_ci || !destroy || !info)
                return NVML_ERROR_NOT_SUPPORTED;
        gpu_nvml_note_call(n, "nvmlDeviceCreateGpuInstanceWithPlacement");
        r = create(dev, profile->id, &placement, &gi);
        if (r != NVML_SUCCESS)
                return r;
        gpu_nvml_note_call(n, "nvmlGpuInstanceGetInfo");
        r = info(gi, &gi_info);
        if (r == NVML_SUCCESS)
                r = full_ci_profile(n, gi, &ci_id, &ci_slices);
        if (r == NVML_SUCCESS) {
                gpu_nvml_note_call(n, "nvmlGpuInstanceCreateComputeInstance");
                r = create_ci(gi, ci_id, &ci);
        }
        if (r != NVML_SUCCESS) {
                const char *failed = gpu_nvml_last_call(n);

                (void)destroy(gi);
                gpu_nvml_note_call(n, failed);
                return r;
        }
        *ret_gi_id = gi_info.id;
        return NVML_SUCCESS;
}

nvmlReturn_t gpu_mig_destroy(GpuNvml *n, nvmlDevice_t dev, unsigned gi_id)
{
        nvmlDeviceGetGpuInstanceById_fn by_id =
                SYM(n, nvmlDeviceGetGpuInstanceById_fn, "nvmlDeviceGetGpuInstanceById");
        nvmlGpuInstanceGetComputeInstances_fn cis =
                SYM(n, nvmlGpuInstanceGetComputeInstances_fn, "nvmlGpuInstanceGetComputeInstances");
        nvmlComputeInstanceDestroy_fn destroy_ci =
                SYM(n, nvmlComputeInstanceDestroy_fn, "nvmlComputeInstanceDestroy");
        nvmlGpuInstanceDestroy_fn destroy = SYM(n, nvmlGpuInstanceDestroy_fn, "nvmlGpuInstanceDestroy");
        nvmlGpuInstance_t gi = NULL;
        nvmlReturn_t r;

        if (!by_id || !cis || !destroy_ci || !destroy)
                return NVML_ERROR_NOT_SUPPORTED;
        gpu_nvml_note_call(n, "nvmlDeviceGetGpuInstanceById");
        r = by_id(dev, gi_id, &gi);
        if (r != NVML_SUCCESS)
                return r;
        for (unsigned c = 0; c < CI_PROFILE_INDEX_END; c++) {
                nvmlComputeInstance_t ch[8];
                unsigned nc = 0;

                gpu_nvml_note_call(n, "nvmlGpuInstanceGetComputeInstances");
                r = cis(gi, c, ch, &nc);
                if (r == NVML_ERROR_INVALID_ARGUMENT)
                        break;
                if (r != NVML_SUCCESS)
                        continue;
                for (unsigned i = 0; i < nc && i < 8; i++) {
                        gpu_nvml_note_call(n, "nvmlComputeInstanceDestroy");
                        r = destroy_ci(ch[i]);
                        if (r != NVML_SUCCESS)
                                return r;
                }
        }
        gpu_nvml_note_call(n, "nvmlGpuInstanceDestroy");
        return destroy(gi);
}

nvmlReturn_t gpu_mig_pci_ids(GpuNvml *n, nvmlDevice_t dev, uint32_t *ret_device,
                             uint32_t *ret_subsystem)
{
        const char *name = "nvmlDeviceGetPciInfo_v3";
        nvmlDeviceGetPciInfo_fn fn = SYM(n, nvmlDeviceGetPciInfo_fn, name);
        nvmlPciInfo_t pci = {};
        nvmlReturn_t r;

        if (!fn) {
                name = "nvmlDeviceGetPciInfo_v2";
                fn = SYM(n, nvmlDeviceGetPciInfo_fn, name);
        }
        gpu_nvml_note_call(n, name);
        if (!fn)
                return NVML_ERROR_NOT_SUPPORTED;
        r = fn(dev, &pci);
        if (r != NVML_SUCCESS)
                return r;
        *ret_device = pci.pciDeviceId;
        *ret_subsystem = pci.pciSubSystemId;
        return NVML_SUCCESS;
}
