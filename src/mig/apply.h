/* Carrying out a MIG plan (mig/layout.h) against NVML: destroy what goes,
 * then create what is missing at the planned placements, each GPU instance
 * with its full-size compute instance. The caller has made sure the GPU is
 * idle (no lease, no process): NVML would refuse a busy instance anyway
 * (IN_USE), but gpukeeper never gets that far. Library code: no logging;
 * the steps done are counted for the caller, the first failure described. */
#pragma once

#include <stddef.h>

#include "gpu/nvml-mig.h"
#include "mig/layout.h"

typedef struct MigApplied {
        size_t destroyed;
        size_t created;
        unsigned created_gi[GPU_MIG_MAX_INSTANCES]; /* GPU instance ids made, in plan order */
} MigApplied;

/* Apply `plan` to the GPU at NVML index `index` (`label` names it in the
 * error, e.g. "GPU 0 (GPU-…)"). Returns 0, or -EIO with one line in `error`
 * naming the step, the NVML function and its error; *ret says what was
 * done before the failure either way. */
int mig_apply_plan(GpuNvml *n, unsigned index, const char *label, const MigGpuPlan *plan,
                   MigApplied *ret, char *error, size_t error_size);
