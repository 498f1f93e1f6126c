/* The child of `gpukeeper run`: its environment (the caller's own plus the
 * CUDA variables of the lease), starting it with fork + execvpe (no shell),
 * telling a failed exec apart from the command's own exit, and turning its
 * wait status into gpukeeper's exit code. Kept apart from run.c so the unit
 * tests can start real children without a daemon. */
#pragma once

#include <jansson.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

/* Exit codes of a command that could not be started, as POSIX shells use
 * them: 127 not found, 126 found but not executable. */
#define CLI_EXIT_NOT_FOUND 127
#define CLI_EXIT_NOT_EXECUTABLE 126

/* The variables a lease puts into its command's environment, as an object
 * in this order: CUDA_VISIBLE_DEVICES (the lease's "cuda_visible_devices",
 * else its device UUIDs joined by commas), CUDA_DEVICE_ORDER=PCI_BUS_ID and
 * GPUKEEPER_LEASE_ID. NULL when the lease has no id or no devices, or on
 * ENOMEM. */
json_t *cli_lease_env(json_t *lease);

/* The CPUs nearest the lease's GPUs: the union of its devices' "cpus"
 * (cpulists like "0-15,32-47", from NVML's nvmlDeviceGetCpuAffinity), within
 * `allowed` (the CPUs we may run on). Returns 1 with *ret set when that is
 * not empty, 0 when the lease names no CPUs or none of them is allowed (no
 * binding then), -EINVAL for a malformed list. */
int cli_lease_cpus(json_t *lease, const cpu_set_t *allowed, cpu_set_t *ret);

/* A malloc'd, NULL-terminated environment: `base` without any entry whose
 * name is a key of `set`, then NAME=value for every member of `set` (an
 * object of strings). So CUDA_VISIBLE_DEVICES is replaced, never appended
 * to or duplicated. Returns 0 or -ENOMEM / -EINVAL (a non-string value). */
int cli_child_env(char *const *base, json_t *set, char ***ret);

/* Free what cli_child_env() returned; NULL is fine. */
void cli_child_env_free(char **env);

/* What the kernel sends the command when `gpukeeper run` dies before it
 * (PR_SET_PDEATHSIG): a lease ends with its client, so must its command. */
#define CLI_CHILD_PARENT_DEATH_SIGNAL SIGTERM

/* Whether `name` names a file a shell would try to run: with a slash, an
 * existing file that is not a directory; without, one in a directory of
 * PATH (ours, as execvpe searches it). `run` asks before it leases, so a
 * typo does not wait in the queue for a GPU it will never use. */
bool cli_command_found(const char *name);

/* Start argv[0] (looked up in our $PATH, as execvp() does)
 * with `envp` and the signal mask `mask`, sharing our process group,
 * terminal and standard streams; the child gets
 * CLI_CHILD_PARENT_DEATH_SIGNAL when we die. Returns 0 with the child's pid in
 * *ret_pid and, in *ret_exec_errno, 0 when the exec succeeded or the errno
 * of the failed exec (the child then exits with CLI_EXIT_NOT_FOUND or
 * CLI_EXIT_NOT_EXECUTABLE; it is not reaped here). -errno when fork or the
 * pipe fails. */
int cli_child_spawn(char *const *argv, char *const *envp, const sigset_t *mask, pid_t *ret_pid,
                    int *ret_exec_errno);

/* The exit code for a wait status: the command's own code, or 128 + N when
 * signal N ended it. */
int cli_exit_status(int wstatus);
