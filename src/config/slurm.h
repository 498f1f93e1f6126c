/* The slurm section of gpukeeper.yaml(5) and the top-level `backend` key:
 * which GPUs of this node Slurm schedules (gpukeeper's own queue never
 * grants them; Slurm's prolog registers its jobs on them as leases), how
 * often leases of jobs Slurm no longer knows are ended, and where
 * dcgm-exporter's HPC job mapping is written. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/parse.h"
#include "config/loader.h"

#define CONFIG_SLURM_MAX_GPUS 64 /* NVML indices 0..63 in slurm.gpus */
#define CONFIG_DEFAULT_SLURM_RECONCILE_USEC (30 * USEC_PER_SEC)
#define CONFIG_DEFAULT_SLURM_SQUEUE "/usr/bin/squeue"

/* backend: where `gpukeeper run` and `gpukeeper queue` go. */
typedef enum ConfigBackend {
        CONFIG_BACKEND_LOCAL, /* "local": gpukeeperd's own leases and queue */
        CONFIG_BACKEND_SLURM, /* "slurm": srun / salloc / squeue */
} ConfigBackend;

typedef struct ConfigSlurm {
        bool all_gpus;       /* gpus: all */
        uint64_t gpu_mask;   /* gpus: 0,1,…: bit i = NVML index i; 0 with !all_gpus = none */
        uint64_t reconcile_interval_usec; /* squeue is asked this often */
        char *squeue;        /* absolute path of squeue */
        char *job_mapping_dir; /* NULL: not written */
} ConfigSlurm;

/* The section's keys, relative to a ConfigSlurm. */
extern const ConfigKey config_slurm_table[];
int config_slurm_init(ConfigSlurm *s);
void config_slurm_done(ConfigSlurm *s);

/* Whether the GPU with NVML index `index` is Slurm's. */
bool config_slurm_owns(const ConfigSlurm *s, unsigned index);

/* Parser of the top-level key `backend` into a ConfigBackend. */
int config_parse_backend(const ConfigKey *key, const char *value, void *field, char *problem,
                         size_t problem_len);
const char *config_backend_to_string(ConfigBackend b);
