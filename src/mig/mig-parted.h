/* mig-parted's v1 configuration files (NVIDIA/mig-parted api/spec/v1):
 *
 *   version: v1
 *   mig-configs:
 *     NAME:
 *       - devices: all | [0, 1, ...]            (required)
 *         device-filter: "0x20B010DE" | [...]   (optional; "0xDDDDVVVV[:0xSSSSVVVV]")
 *         mig-enabled: true | false             (required)
 *         mig-devices: {"1g.10gb": 7, ...}      (required when enabled, empty when not)
 *
 * with its rules: unknown keys are rejected, `version` must be "v1", every
 * config needs at least one entry, profile names have mig-parted's format
 * ("1g.10gb", "1g.10gb+me", "1c.2g.20gb", ...), counts are non-negative and
 * not all 0. Errors name the file, the line and the key:
 * "layout.yaml:7: mig-configs.all-1g.10gb[0]: unknown key \"mig-device\"".
 *
 * Selection follows mig-parted's apply/assert: every entry whose
 * device-filter and devices match a GPU (GPUs numbered in PCI bus order)
 * applies to it in file order, so a later entry overrides an earlier one;
 * a GPU no entry matches is left as it is. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/macro.h"

#define MIG_FILE_MAX_BYTES (1024 * 1024)
#define MIG_MAX_CONFIGS 256
#define MIG_MAX_SPECS 64          /* entries per config */
#define MIG_MAX_DEVICE_INDEXES 64
#define MIG_MAX_FILTERS 32
#define MIG_MAX_PROFILES 16       /* distinct profiles in one mig-devices */
#define MIG_MAX_COUNT 7           /* instances of one profile on one GPU */
#define MIG_NAME_MAX 128
#define MIG_PROFILE_MAX 32

typedef struct MigDeviceFilter {
        uint32_t device_vendor;    /* 0xDDDDVVVV, as NVML's pciDeviceId */
        uint32_t subsystem;        /* 0xSSSSVVVV, as NVML's pciSubSystemId */
        bool has_subsystem;
} MigDeviceFilter;

typedef struct MigCount {
        char profile[MIG_PROFILE_MAX];
        unsigned count;
} MigCount;

typedef struct MigSpec {
        unsigned line;
        bool all_devices;
        unsigned devices[MIG_MAX_DEVICE_INDEXES];
        size_t n_devices;
        MigDeviceFilter filters[MIG_MAX_FILTERS];
        size_t n_filters; /* 0: every device */
        bool enabled;
        MigCount counts[MIG_MAX_PROFILES];
        size_t n_counts;
} MigSpec;

typedef struct MigConfig {
        char name[MIG_NAME_MAX];
        unsigned line;
        MigSpec *specs;
        size_t n_specs;
} MigConfig;

typedef struct MigFile {
        MigConfig *configs;
        size_t n_configs;
} MigFile;

/* Parse `len` bytes of `text`; `filename` only names it in errors. Returns
 * 0, or -EINVAL with one line in `error` ("FILE:LINE: KEY: what"), -EFBIG
 * beyond MIG_FILE_MAX_BYTES, -ENOMEM. */
int mig_file_parse(const char *text, size_t len, const char *filename, MigFile **ret,
                   char *error, size_t error_size);

/* Read and parse the file at `path` (a regular file, at most
 * MIG_FILE_MAX_BYTES). Errors as mig_file_parse, plus -errno from opening
 * and reading, with the reason in `error`. */
int mig_file_load(const char *path, MigFile **ret, char *error, size_t error_size);

void mig_file_free(MigFile *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(MigFile *, mig_file_free);

const MigConfig *mig_file_find(const MigFile *f, const char *name);

/* Is `profile` in mig-parted's profile format? */
bool mig_profile_name_valid(const char *profile);

/* Does entry `s` select the GPU at position `index` (PCI bus order) with
 * these PCI ids? */
bool mig_spec_matches(const MigSpec *s, unsigned index, uint32_t pci_device_id,
                      uint32_t pci_subsystem_id);

/* The entry of `c` that decides GPU `index`: the last one that matches
 * (mig-parted applies them in order). NULL: the config leaves it alone. */
const MigSpec *mig_config_select(const MigConfig *c, unsigned index, uint32_t pci_device_id,
                                 uint32_t pci_subsystem_id);
