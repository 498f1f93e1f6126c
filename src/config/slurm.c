/* The slurm section and the backend key (see slurm.h). `gpus` is a scalar,
 * `all`, `none` or NVML indices in Slurm's own list syntax (`0,2-3`). */
#include "config/slurm.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/values.h"

static int parse_gpus(const ConfigKey *key, const char *value, void *field, char *problem,
                      size_t problem_len)
{
        ConfigSlurm *s = (ConfigSlurm *)((char *)field - offsetof(ConfigSlurm, all_gpus));
        const char *p = value;
        uint64_t mask = 0;

        if (strcmp(value, "all") == 0) {
                s->all_gpus = true;
                s->gpu_mask = 0;
                return 0;
        }
        if (strcmp(value, "none") == 0) {
                s->all_gpus = false;
                s->gpu_mask = 0;
                return 0;
        }
        while (*p) {
                unsigned long a, b;
                char *end;

                if (!isdigit((unsigned char)*p))
                        goto bad;
                a = strtoul(p, &end, 10);
                b = a;
                p = end;
                if (*p == '-') {
                        if (!isdigit((unsigned char)p[1]))
                                goto bad;
                        b = strtoul(p + 1, &end, 10);
                        p = end;
                }
                if (a > b || b >= CONFIG_SLURM_MAX_GPUS)
                        goto bad;
                for (unsigned long i = a; i <= b; i++)
                        mask |= UINT64_C(1) << i;
                if (*p == ',' || *p == ' ')
                        while (*p == ',' || *p == ' ')
                                p++;
                else if (*p)
                        goto bad;
        }
        if (!mask)
                goto bad;
        s->all_gpus = false;
        s->gpu_mask = mask;
        return 0;
bad:
        snprintf(problem, problem_len,
                 "must be all, none, or NVML indices below %d such as 0,1 or 0-3",
                 CONFIG_SLURM_MAX_GPUS);
        return -EINVAL;
}

static int parse_command(const ConfigKey *key, const char *value, void *field, char *problem,
                         size_t problem_len)
{
        return config_parse_absolute_path(key, value, field, problem, problem_len);
}

const ConfigKey config_slurm_table[] = {
        CONFIG_SCALAR("gpus", parse_gpus, ConfigSlurm, all_gpus, 0, 0),
        CONFIG_SCALAR("reconcile_interval", config_parse_duration, ConfigSlurm,
                      reconcile_interval_usec, USEC_PER_SEC, USEC_PER_HOUR),
        CONFIG_SCALAR("squeue", parse_command, ConfigSlurm, squeue, 0, 0),
        CONFIG_SCALAR("job_mapping_dir", config_parse_absolute_path, ConfigSlurm,
                      job_mapping_dir, 0, 0),
        CONFIG_END,
};

int config_slurm_init(ConfigSlurm *s)
{
        *s = (ConfigSlurm){
                .reconcile_interval_usec = CONFIG_DEFAULT_SLURM_RECONCILE_USEC,
                .squeue = strdup(CONFIG_DEFAULT_SLURM_SQUEUE),
        };
        return s->squeue ? 0 : -ENOMEM;
}

void config_slurm_done(ConfigSlurm *s)
{
        free(s->squeue);
        free(s->job_mapping_dir);
}

bool config_slurm_owns(const ConfigSlurm *s, unsigned index)
{
        return s->all_gpus || (index < CONFIG_SLURM_MAX_GPUS && (s->gpu_mask >> index) & 1);
}

int config_parse_backend(const ConfigKey *key, const char *value, void *field, char *problem,
                         size_t problem_len)
{
        ConfigBackend *b = field;

        if (strcmp(value, "local") == 0)
                *b = CONFIG_BACKEND_LOCAL;
        else if (strcmp(value, "slurm") == 0)
                *b = CONFIG_BACKEND_SLURM;
        else {
                snprintf(problem, problem_len, "must be local or slurm");
                return -EINVAL;
        }
        return 0;
}

const char *config_backend_to_string(ConfigBackend b)
{
        return b == CONFIG_BACKEND_SLURM ? "slurm" : "local";
}
