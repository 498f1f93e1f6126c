/* Carrying out a MIG plan; see apply.h. */
#include "mig/apply.h"

#include <errno.h>
#include <stdio.h>

static int failed(GpuNvml *n, nvmlReturn_t r, char *error, size_t size, const char *what)
{
        snprintf(error, size, "%s: %s: %s (%d)", what, gpu_nvml_last_call(n),
                 gpu_nvml_error_string(n, r), r);
        return -EIO;
}

int mig_apply_plan(GpuNvml *n, unsigned index, const char *label, const MigGpuPlan *plan,
                   MigApplied *ret, char *error, size_t error_size)
{
        char what[256];
        nvmlDevice_t dev;
        nvmlReturn_t r;

        *ret = (MigApplied) {};
        error[0] = '\0';
        r = gpu_nvml_device_handle(n, index, &dev);
        if (r != NVML_SUCCESS)
                return failed(n, r, error, error_size, label);
        for (size_t i = 0; i < plan->n_destroy; i++) {
                r = gpu_mig_destroy(n, dev, plan->destroy[i]);
                if (r != NVML_SUCCESS) {
                        snprintf(what, sizeof(what), "%s: destroying GPU instance %u", label,
                                 plan->destroy[i]);
                        return failed(n, r, error, error_size, what);
                }
                ret->destroyed++;
        }
        for (size_t i = 0; i < plan->n_create; i++) {
                unsigned gi = 0;

                r = gpu_mig_create(n, dev, plan->create[i].profile, plan->create[i].start, &gi);
                if (r != NVML_SUCCESS) {
                        snprintf(what, sizeof(what), "%s: creating %s at memory slice %u", label,
                                 plan->create[i].profile->name, plan->create[i].start);
                        return failed(n, r, error, error_size, what);
                }
                ret->created_gi[ret->created++] = gi;
        }
        return 0;
}
