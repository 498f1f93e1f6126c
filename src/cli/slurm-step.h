/* The part of `gpukeeper slurm` that runs inside every job step: mapping a
 * step's gres indices to GPU UUIDs through gpukeeperd (slurm.step) and
 * exec'ing the command with them. Also built alone as the small
 * gpukeeper-slurm-step helper (slurm-step-main.c), which `gpukeeper run`
 * with backend: slurm puts inside srun: it links libc and jansson only, so
 * the step starts as fast as a bare exec. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/cli.h"

#define LEASE_BUF_MAX (64 * 96)
/* What a shell says when a command cannot be found or run. */
#define CLI_EXIT_NOT_FOUND 127
#define CLI_EXIT_NOT_EXECUTABLE 126

/* One call, no retries: 0 and the result, or -errno with a message in `err`. */
int cli_slurm_call(const cli_context *ctx, const char *op, json_t *args, json_t **ret,
                   char *err, size_t err_len);

/* The UUIDs of this step's GPUs (comma-separated) and the job's lease id.
 * -ENOENT when the step has no GPUs or gpukeeperd has no lease for it. */
int cli_slurm_step_devices(const cli_context *ctx, uint64_t job_id, char *buf, size_t len,
                           json_int_t *ret_lease, bool quiet);

/* `slurm step [--] COMMAND...` (argv[0] is "step"): set the CUDA
 * environment, exec COMMAND; returns only when that fails. */
int cli_slurm_step_main(const cli_context *ctx, int argc, char *argv[]);
