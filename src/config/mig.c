/* The mig section: which GPUs get MIG instances on demand (per-GPU opt-in,
 * by UUID since indexes move between boots), what happens to such an
 * instance when its lease ends, and layout re-assertion. */
#include "config/mig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "basic/macro.h"
#include "basic/strv.h"
#include "config/values.h"

/* "all", or a GPU UUID: "GPU-" and hex digits and dashes. */
static int parse_dynamic_gpu(const ConfigKey *key, const char *value, void *field, char *problem,
                             size_t problem_len)
{
        size_t n = strlen(value);

        if (strcmp(value, "all") != 0 &&
            (n < 5 || n > 95 || strncmp(value, "GPU-", 4) != 0 ||
             value[4 + strspn(value + 4, "0123456789abcdefABCDEF-")] != '\0')) {
                snprintf(problem, problem_len, "must be \"all\" or a GPU UUID (GPU-…)");
                return -EINVAL;
        }
        return config_store_string(value, field);
}

const ConfigKey config_mig_table[] = {
        CONFIG_VALUES("dynamic", parse_dynamic_gpu, ConfigMig, dynamic, n_dynamic, char *,
                      CONFIG_MIG_DYNAMIC_MAX),
        CONFIG_SCALAR("keep_dynamic", config_parse_bool, ConfigMig, keep_dynamic, 0, 0),
        CONFIG_SCALAR("reassert", config_parse_bool, ConfigMig, reassert, 0, 0),
        CONFIG_END,
};

int config_mig_init(ConfigMig *s)
{
        *s = (ConfigMig) { .reassert = true };
        return 0;
}

void config_mig_done(ConfigMig *s)
{
        strv_free_n(s->dynamic, s->n_dynamic);
        s->dynamic = NULL;
        s->n_dynamic = 0;
}

bool config_mig_dynamic(const ConfigMig *s, const char *uuid)
{
        for (size_t i = 0; i < s->n_dynamic; i++)
                if (!strcmp(s->dynamic[i], "all") || !strcasecmp(s->dynamic[i], uuid))
                        return true;
        return false;
}
