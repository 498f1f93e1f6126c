/* The sharing section of gpukeeper.yaml(5): which GPUs hold shared leases
 * (a slice of one GPU with a memory budget, `--share SIZE`), how much memory
 * stays free on each, and how long a shared lease may stay over its budget
 * before its processes are stopped. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/parse.h"
#include "basic/time-util.h"
#include "config/loader.h"

#define CONFIG_SHARING_GPUS_MAX 64
#define CONFIG_SHARING_MODELS_MAX 64
#define CONFIG_SHARING_MODEL_MAX 96 /* NVML_DEVICE_NAME_V2_BUFFER_SIZE */
#define CONFIG_DEFAULT_SHARING_RESERVE (UINT64_C(1) << 30) /* 1G */
#define CONFIG_DEFAULT_SHARING_GRACE_USEC (10 * USEC_PER_SEC)

typedef struct ConfigSharing {
        char **gpus; /* NVML indices ("0") or GPU UUIDs ("GPU-…"), or "all" */
        size_t n_gpus;
        char **models; /* NVML device names, compared without case ("NVIDIA L40S") */
        size_t n_models;
        uint64_t reserve_bytes; /* kept free on each shared GPU: budgets add up to total - this */
        uint64_t grace_usec;    /* over budget this long → SIGTERM */
} ConfigSharing;

extern const ConfigKey config_sharing_table[];
int config_sharing_init(ConfigSharing *s);
void config_sharing_done(ConfigSharing *s);

/* Whether the whole GPU with NVML index `index`, UUID `uuid` and name
 * `name` (either may be NULL or "") is shareable: listed by index, UUID or
 * "all" in gpus, or its name in models. */
bool config_sharing_gpu(const ConfigSharing *s, unsigned index, const char *uuid,
                        const char *name);
