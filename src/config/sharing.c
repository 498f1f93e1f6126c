/* The sharing section (see sharing.h). GPUs are named by NVML index, UUID
 * or "all"; models by NVML's device name, so a lab can say "every L40S"
 * without listing boards that come and go. */
#include "config/sharing.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "basic/macro.h"
#include "basic/strv.h"
#include "config/values.h"

/* "all", an NVML index below 1024, or a GPU UUID ("GPU-" and hex digits
 * and dashes). */
static int parse_gpu(const ConfigKey *key, const char *value, void *field, char *problem,
                     size_t problem_len)
{
        size_t n = strlen(value);
        bool index = n > 0 && n <= 4 && strspn(value, "0123456789") == n && atoi(value) < 1024;
        bool uuid = n >= 5 && n <= 95 && strncmp(value, "GPU-", 4) == 0 &&
                    value[4 + strspn(value + 4, "0123456789abcdefABCDEF-")] == '\0';

        if (strcmp(value, "all") != 0 && !index && !uuid) {
                snprintf(problem, problem_len,
                         "must be \"all\", an NVML index (0, 1, ...) or a GPU UUID (GPU-…)");
                return -EINVAL;
        }
        return config_store_string(value, field);
}

static int parse_model(const ConfigKey *key, const char *value, void *field, char *problem,
                       size_t problem_len)
{
        if (value[0] == '\0' || strlen(value) >= CONFIG_SHARING_MODEL_MAX ||
            config_has_control_chars(value)) {
                snprintf(problem, problem_len,
                         "must be an NVML device name such as \"NVIDIA L40S\" (1 to %d "
                         "characters)",
                         CONFIG_SHARING_MODEL_MAX - 1);
                return -EINVAL;
        }
        return config_store_string(value, field);
}

const ConfigKey config_sharing_table[] = {
        CONFIG_VALUES("gpus", parse_gpu, ConfigSharing, gpus, n_gpus, char *,
                      CONFIG_SHARING_GPUS_MAX),
        CONFIG_VALUES("models", parse_model, ConfigSharing, models, n_models, char *,
                      CONFIG_SHARING_MODELS_MAX),
        /* At most 1 TiB: more than any GPU's memory is a typo. */
        CONFIG_SCALAR("reserve", config_parse_size, ConfigSharing, reserve_bytes, 0,
                      UINT64_C(1) << 40),
        CONFIG_SCALAR("grace", config_parse_duration, ConfigSharing, grace_usec, 0,
                      USEC_PER_HOUR),
        CONFIG_END,
};

int config_sharing_init(ConfigSharing *s)
{
        *s = (ConfigSharing){
                .reserve_bytes = CONFIG_DEFAULT_SHARING_RESERVE,
                .grace_usec = CONFIG_DEFAULT_SHARING_GRACE_USEC,
        };
        return 0;
}

void config_sharing_done(ConfigSharing *s)
{
        strv_free_n(s->gpus, s->n_gpus);
        strv_free_n(s->models, s->n_models);
        s->gpus = s->models = NULL;
        s->n_gpus = s->n_models = 0;
}

bool config_sharing_gpu(const ConfigSharing *s, unsigned index, const char *uuid,
                        const char *name)
{
        char buf[16];

        /* Asked for every GPU on every acquire: nothing formatted when no
         * GPU is named (issue 16). */
        if (s->n_gpus > 0)
                snprintf(buf, sizeof buf, "%u", index);
        for (size_t i = 0; i < s->n_gpus; i++)
                if (!strcmp(s->gpus[i], "all") || !strcmp(s->gpus[i], buf) ||
                    (uuid && uuid[0] && !strcasecmp(s->gpus[i], uuid)))
                        return true;
        for (size_t i = 0; name && name[0] && i < s->n_models; i++)
                if (!strcasecmp(s->models[i], name))
                        return true;
        return false;
}
