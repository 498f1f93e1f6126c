/* Jupyter kernels that lease GPUs: `gpukeeper kernel install NAME --gpus N`
 * writes a kernelspec into the user's Jupyter data directory whose argv runs
 * the environment's python under `gpukeeper run --gpus N --`, so every
 * notebook kernel holds its own lease from start to stop, and
 * CUDA_VISIBLE_DEVICES is in place before python (and CUDA) starts.
 *
 *   <data dir>/kernels/gpukeeper-<name>/kernel.json
 *   {"argv": ["gpukeeper", "run", "--gpus", "N", "--", "<prefix>/bin/python",
 *             "-m", "ipykernel_launcher", "-f", "{connection_file}"],
 *    "display_name": "Python (<name>, N GPU via gpukeeper)",
 *    "language": "python", "metadata": {"debugger": true}}
 *
 * `gpukeeper run` waits in the queue when the GPUs are busy, so a kernel may
 * start late rather than without its GPUs. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* Most GPUs one kernel may ask for. */
#define ENV_KERNEL_MAX_GPUS 64u

/* The kernelspec directory name for an environment name: "gpukeeper-" and
 * the name lowercased, with every character Jupyter does not accept in a
 * kernel name ([a-z0-9._-]) replaced by '-'. -EINVAL for an empty name,
 * -ENOMEM. */
int env_kernel_dir_name(const char *env_name, char **ret);

/* The kernel.json text (ending in a newline) for `env_name` at `prefix`
 * leasing `gpus` GPUs (1..ENV_KERNEL_MAX_GPUS, else -EINVAL). */
int env_kernel_spec(const char *env_name, const char *prefix, unsigned gpus, char **ret);

/* Write <data_dir>/kernels/<env_kernel_dir_name>/kernel.json (mode 0644),
 * creating missing directories (0755), replacing an existing kernel.json
 * atomically. Runs as uid/gid (env_run_as_user) when the caller is root,
 * directly otherwise; paths resolve with that user's rights. Returns 0 and
 * the path of kernel.json, or -errno. */
int env_kernel_install(uid_t uid, gid_t gid, const char *data_dir, const char *env_name,
                       const char *prefix, unsigned gpus, char **ret_path);
