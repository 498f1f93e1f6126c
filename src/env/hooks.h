/* Lease hooks for conda environments: the activate.d / deactivate.d scripts
 * that `gpukeeper env hook install` writes into an environment so that
 * `conda activate` (and micromamba's) sets the CUDA environment of the
 * user's current lease, and `conda deactivate` puts back exactly what was
 * there before.
 *
 * The activate hook, for sh (bash, zsh, dash), csh (tcsh) and fish alike:
 *   - writes the time (unix seconds) to $CONDA_PREFIX/ENV_LAST_ACTIVATED_FILE,
 *     which the inventory shows as "last used" (source "hook");
 *   - runs `gpukeeper lease env` (found in PATH; without it the hook does
 *     nothing more) and takes from its `export VAR='value'` lines exactly the
 *     variables of ENV_HOOK_LEASE_VARS, nothing is eval'd;
 *   - with a lease: the first hooked activation saves each variable's value
 *     in _GPUKEEPER_SAVED_<VAR> (present only when VAR was set), counts
 *     nested activations in _GPUKEEPER_DEPTH, then exports the lease's values;
 *   - without one (or with the daemon unreachable): prints one line on
 *     stderr saying how to get a lease and leaves the variables alone.
 * The deactivate hook undoes the outermost hooked activation: VAR gets its
 * saved value back, or is really unset when it was unset before (an empty
 * CUDA_VISIBLE_DEVICES would hide every GPU), and the _GPUKEEPER_* helpers
 * go away. */
#pragma once

#include "env/env.h"

typedef enum EnvHookShell {
        ENV_HOOK_SH,   /* activate.d/gpukeeper.sh: bash, zsh, dash, ... */
        ENV_HOOK_CSH,  /* activate.d/gpukeeper.csh: tcsh / csh */
        ENV_HOOK_FISH, /* activate.d/gpukeeper.fish */
        _ENV_HOOK_SHELL_MAX,
} EnvHookShell;

typedef enum EnvHookPhase {
        ENV_HOOK_ACTIVATE,
        ENV_HOOK_DEACTIVATE,
        _ENV_HOOK_PHASE_MAX,
} EnvHookPhase;

/* The variables a lease sets, in the order the hooks handle them. */
#define ENV_HOOK_LEASE_VARS "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "GPUKEEPER_LEASE_ID"

/* The line the activate hook prints when the user holds no lease. */
#define ENV_HOOK_NO_LEASE_MESSAGE                                                                  \
        "gpukeeper: you hold no GPU lease, so CUDA_VISIBLE_DEVICES is unchanged; "                 \
        "get one with: gpukeeper lease acquire --gpus 1"

/* Path of one hook relative to the environment prefix, e.g.
 * "etc/conda/activate.d/gpukeeper.sh". A static string. */
const char *env_hook_relpath(EnvHookShell shell, EnvHookPhase phase);

/* The text of one hook. Returns 0 and a heap string, or -ENOMEM. */
int env_hook_text(EnvHookShell shell, EnvHookPhase phase, char **ret);

/* Write all hooks (every shell, both phases) into `env` (from env_find, without
 * .error) as the owner of its prefix: when the caller is root, from a child
 * that has become the owner (env_run_as_user); otherwise directly, so the
 * kernel decides whether the caller may write there. Creates
 * etc/conda/{activate,deactivate}.d as needed, never following a symlink
 * inside the prefix, and replaces each file atomically (mode 0644), leaving
 * alone a file that already holds its text with mode 0644 (installing again
 * changes nothing that is in place).
 * Returns 0; -ESTALE when the path no longer is the directory env_find saw;
 * -ENOENT when the owner has no passwd entry; -EACCES / -EPERM / -ELOOP /
 * other -errno from writing. */
int env_hook_install(const EnvInfo *env);
