/* The help of `gpukeeper slurm`, shared by `gpukeeper` and the helper that
 * runs `slurm gres` (cli/slurm-gres.h). */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/slurm-gres.h"

void cli_slurm_usage(FILE *f)
{
        fputs("Usage: gpukeeper slurm prolog | epilog [--gres-conf FILE] [--mig-minors FILE]\n"
              "       gpukeeper slurm reconcile | task-prolog [--socket PATH]\n"
              "       gpukeeper slurm gres [--check[=FILE]] [--gpus all|LIST] [--dev-dir DIR]\n"
              "                            [--nvml-library LIB]\n"
              "       gpukeeper slurm step [--socket PATH] -- COMMAND [ARGS...]\n"
              "\n"
              "Slurm on a node that runs gpukeeperd.\n"
              "\n"
              "  prolog     register the job in $SLURM_JOB_ID (user $SLURM_JOB_UID, GPUs\n"
              "             $SLURM_JOB_GPUS) as a lease of kind slurm; for slurm.conf's Prolog=.\n"
              "             Each index is the device gres.conf's File= or MultipleFiles= names\n"
              "             (MIG instances by their nvidia-caps nodes, through\n"
              "             " SLURM_MIG_MINORS "); gres.conf is --gres-conf FILE,\n"
              "             else next to $SLURM_CONF, else " SLURM_DEFAULT_GRES_CONF ".\n"
              "             Fails open: problems are logged and alerted, the exit status is 0.\n"
              "  epilog     end that lease; for Epilog=. Also exits 0 whatever happens.\n"
              "  reconcile  ask gpukeeperd to end leases of jobs squeue no longer lists now.\n"
              "  gres       print this node's gres.conf from NVML: File= with the real\n"
              "             /dev/nvidiaN minors, MIG instances as MultipleFiles= with their\n"
              "             nvidia-caps nodes, Type= from the model or profile, Cores= from\n"
              "             NVML's CPU affinity. --check compares it with FILE (default\n"
              "             " SLURM_DEFAULT_GRES_CONF "), prints the differences and exits 1\n"
              "             when they differ.\n"
              "  step       run COMMAND inside an srun step with CUDA_VISIBLE_DEVICES set to\n"
              "             the step's GPU UUIDs (what `gpukeeper run` does with backend: slurm).\n"
              "  task-prolog  for slurm.conf's TaskProlog=: print the `export` lines that give\n"
              "             every task of every job on the node its GPU UUIDs.\n"
              "\n"
              "Options of gres:\n"
              "  --gpus all|LIST      only these NVML indices (as slurm.gpus), default all\n"
              "  --dev-dir DIR        where the device nodes are, default /dev\n"
              "  --nvml-library LIB   the NVML library to load, default libnvidia-ml.so.1\n",
              f);
}
