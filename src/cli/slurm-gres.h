/* `gpukeeper slurm gres`: this node's gres.conf from NVML. It runs in the
 * helper executable gpukeeper-slurm-gres (cli/helper.h), the one part of
 * the CLI that loads NVML (dlopen), so that `gpukeeper` itself needs no
 * dynamic loader of its own and can be linked statically (issue 16). */
#pragma once

#include "cli/cli.h"

#define SLURM_DEFAULT_GRES_CONF "/etc/slurm/gres.conf"
#define SLURM_MIG_MINORS "/proc/driver/nvidia-caps/mig-minors"

/* The `slurm` verb of the helper: `slurm [--socket PATH] gres OPTIONS`, as
 * `gpukeeper` was given it. */
int cli_slurm_gres_main(cli_context *ctx, int argc, char *argv[]);
