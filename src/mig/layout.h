/* MIG layouts: what one mig-parted config asks of each GPU, how far each
 * GPU is from it, and the steps that carve it (keeping the instances that
 * already match). Pure functions over plain facts the daemon read from
 * NVML (MigGpuFacts); carrying the steps out is the daemon's (mig-ops.c),
 * through gpu/nvml-mig.h.
 *
 * The daemon receives a config as JSON (the CLI parses the file, so its
 * errors name the user's file and line) and stores it the same way:
 * mig_config_to_json / mig_config_from_json, which re-checks everything
 * with the parser's limits because a root daemon trusts no peer. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gpu/nvml-mig.h"
#include "mig/mig-parted.h"

typedef struct MigGpuFacts {
        unsigned position;     /* mig-parted's GPU index: position in PCI bus order */
        const char *uuid;
        const char *name;
        uint32_t pci_device_id, pci_subsystem_id;
        bool capable;          /* NVML answers MIG calls for it */
        bool current, pending; /* MIG mode */
        const GpuMigProfile *profiles;
        size_t n_profiles;
        const GpuMigInstance *instances; /* GPU instances present (MIG on) */
        size_t n_instances;
} MigGpuFacts;

typedef struct MigCreate {
        const GpuMigProfile *profile;
        unsigned start;
} MigCreate;

typedef struct MigGpuPlan {
        bool selected;         /* some entry of the config selects this GPU */
        bool enable;           /* the mode it asks for */
        bool mode_change;      /* the current mode differs: needs a GPU reset */
        bool matches;          /* nothing to do */
        unsigned keep[GPU_MIG_MAX_INSTANCES];    /* gi ids kept as they are */
        size_t n_keep;
        unsigned destroy[GPU_MIG_MAX_INSTANCES]; /* gi ids to destroy */
        size_t n_destroy;
        MigCreate create[GPU_MIG_MAX_INSTANCES];
        size_t n_create;
} MigGpuPlan;

/* The plan for one GPU. Returns 0, or -EINVAL with one line in `error`
 * when the config cannot be carved on it: a profile that GPU model does not
 * have, more instances than fit ("more slices than exist"), a compute-
 * instance profile, or MIG asked of a GPU without MIG. */
int mig_plan_gpu(const MigConfig *config, const MigGpuFacts *gpu, MigGpuPlan *ret, char *error,
                 size_t error_size);

/* The config as JSON {"name", "specs": [...]} and back. from_json fills
 * *ret (free ret->specs) or returns -EINVAL with `error` set. */
json_t *mig_config_to_json(const MigConfig *c);
int mig_config_from_json(json_t *j, MigConfig *ret, char *error, size_t error_size);

/* The current layout of `gpus` as a mig-parted v1 file with one config,
 * `name`, one entry per GPU (devices: [position]); malloc'd text. */
char *mig_export(const MigGpuFacts *gpus, size_t n, const char *name);
