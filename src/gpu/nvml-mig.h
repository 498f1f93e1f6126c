/* NVML's MIG management calls: MIG mode, GPU instance profiles and their
 * placements, the GPU instances present, and creating / destroying a GPU
 * instance together with its one full-size compute instance (what
 * `nvidia-smi mig -cgi ID -C` does).
 *
 * Quirks handled here and nowhere else: profile names come from
 * nvmlDeviceGetGpuInstanceProfileInfoV (version word checked) and, on
 * drivers without it, from the v1 struct (slices and memory rounded up to
 * whole GiB, "+me" for the media-extension profile); profile *indexes*
 * (NVML_GPU_INSTANCE_PROFILE_*) are only used to enumerate, every other
 * call takes the profile *id* the driver reported; nvmlDeviceGetGpuInstances
 * needs an array of the profile's instanceCount; a compute instance that
 * cannot be created rolls its GPU instance back. Functions the library does
 * not export read as NVML_ERROR_NOT_SUPPORTED. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gpu/nvml.h"

#define GPU_MIG_MAX_PROFILES 16
#define GPU_MIG_MAX_PLACEMENTS 8
#define GPU_MIG_MAX_INSTANCES 8
#define GPU_MIG_PROFILE_NAME_MAX 32

typedef struct GpuMigProfile {
        unsigned index;      /* NVML_GPU_INSTANCE_PROFILE_* */
        unsigned id;         /* the profile id the other calls take (19 for 1g.10gb) */
        char name[GPU_MIG_PROFILE_NAME_MAX]; /* "1g.10gb" */
        unsigned slices;     /* compute slices */
        unsigned max_instances;
        uint64_t memory_mib;
        unsigned size;       /* memory slices of one placement */
        unsigned starts;     /* bit s: a placement may start at memory slice s */
} GpuMigProfile;

typedef struct GpuMigInstance {
        unsigned gi_id;
        unsigned profile_id;
        unsigned start, size; /* placement, memory slices */
        int ci_id;            /* its first compute instance, -1 when it has none */
} GpuMigInstance;

/* MIG mode now and after the next GPU reset. */
nvmlReturn_t gpu_mig_mode(GpuNvml *n, nvmlDevice_t dev, bool *ret_current, bool *ret_pending);

/* nvmlDeviceSetMigMode. *ret_reset_needed: the mode is pending until the GPU
 * is reset (activationStatus was not SUCCESS). */
nvmlReturn_t gpu_mig_set_mode(GpuNvml *n, nvmlDevice_t dev, bool enable, bool *ret_reset_needed);

/* The GPU instance profiles the device supports, with their placements.
 * NOT_SUPPORTED for a GPU without MIG. */
nvmlReturn_t gpu_mig_profiles(GpuNvml *n, nvmlDevice_t dev, GpuMigProfile *ret, size_t max,
                              size_t *ret_n);

/* The GPU instances that exist (MIG must be on), with their placements and
 * first compute instance. */
nvmlReturn_t gpu_mig_instances(GpuNvml *n, nvmlDevice_t dev, const GpuMigProfile *profiles,
                               size_t n_profiles, GpuMigInstance *ret, size_t max, size_t *ret_n);

/* Create a GPU instance of `profile` at memory slice `start` and one
 * compute instance spanning it. On failure nothing is left behind. */
nvmlReturn_t gpu_mig_create(GpuNvml *n, nvmlDevice_t dev, const GpuMigProfile *profile,
                            unsigned start, unsigned *ret_gi_id);

/* Destroy GPU instance `gi_id` and its compute instances (IN_USE while a
 * process runs in one). */
nvmlReturn_t gpu_mig_destroy(GpuNvml *n, nvmlDevice_t dev, unsigned gi_id);

/* The PCI device and subsystem ids (0xDDDDVVVV, what mig-parted's
 * device-filter matches), from nvmlDeviceGetPciInfo_v3 (_v2 as fallback). */
nvmlReturn_t gpu_mig_pci_ids(GpuNvml *n, nvmlDevice_t dev, uint32_t *ret_device,
                             uint32_t *ret_subsystem);
