/* The mig section of gpukeeper.yaml(5): MIG instances created on demand,
 * and whether the last applied layout is re-asserted. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config/loader.h"

#define CONFIG_MIG_DYNAMIC_MAX 64

typedef struct ConfigMig {
        char **dynamic;   /* GPU UUIDs ("GPU-…") opted in to on-demand instances, or "all" */
        size_t n_dynamic;
        bool keep_dynamic; /* keep an on-demand instance when its lease ends (idle, reusable) */
        bool reassert;     /* re-apply the stored layout at start and when a GPU comes back */
} ConfigMig;

extern const ConfigKey config_mig_table[];
int config_mig_init(ConfigMig *s);
void config_mig_done(ConfigMig *s);

/* Is the GPU with this UUID opted in to on-demand instances? */
bool config_mig_dynamic(const ConfigMig *s, const char *uuid);
