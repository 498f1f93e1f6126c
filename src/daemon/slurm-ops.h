/* Slurm jobs as leases of kind `slurm` (see src/slurm/slurm.h for the
 * mapping of SLURM_JOB_GPUS to devices): the prolog and epilog requests,
 * the reconcile that ends leases of jobs Slurm no longer knows (squeue,
 * run as a child process so the event loop never waits for slurmctld), and
 * dcgm-exporter's HPC job-mapping directory. */
#pragma once

#include <gpukeeper/client.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

typedef struct Daemon Daemon;
typedef struct RequestCall RequestCall;

#define SLURM_SQUEUE_OUTPUT_MAX (4 << 20) /* bytes of squeue output read */
#define SLURM_SQUEUE_MAX_JOBS 65536       /* job ids taken from it */

typedef struct SlurmState {
        sd_event_source *timer;    /* reconcile */
        sd_event_source *child;    /* the running squeue */
        sd_event_source *io;       /* its stdout */
        pid_t pid;
        int fd;                    /* read end of its stdout, -1 when none */
        char *out;
        size_t out_len;
        bool out_truncated;
        uint64_t started_usec;     /* CLOCK_REALTIME when squeue was started */
        uint64_t reconciles;       /* completed reconciles (tests, metrics) */
        char jobmap_sig[4096];     /* what the job-mapping directory was last made to hold */
} SlurmState;

/* Arm the reconcile timer. Returns 0 or -errno. */
int slurm_ops_init(Daemon *d);
void slurm_ops_done(Daemon *d);

/* After a reload: the job-mapping directory may have moved; rewrite it. */
void slurm_ops_config_changed(Daemon *d);

typedef struct PolicyViolation PolicyViolation;

/* Slurm job processes on devices their job does not hold are violations even
 * where their user holds the device otherwise (another job's lease, a
 * gpukeeper lease): append those to `found` (the policy's list, realloc'd).
 * A process's job comes from its cgroup path or its SLURM_JOB_ID (see
 * slurm_job_of_process); only users holding a Slurm lease are looked at.
 * Returns 0 or -ENOMEM (the list then stays as it was). */
int slurm_ops_job_violations(Daemon *d, PolicyViolation **found, size_t *n_found);

/* After every sampler tick: bring the job-mapping directory up to date. */
void slurm_ops_tick(Daemon *d);

/* slurm.prolog {job_id, uid, gpus: [gres indices]} and slurm.epilog
 * {job_id}: root only (slurmd runs them as root). slurm.reconcile {}: ask
 * squeue now (root only; tests and `gpukeeper slurm reconcile`). */
int slurm_op_prolog(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                    gk_call_error *ret_error);
int slurm_op_epilog(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                    gk_call_error *ret_error);
/* slurm.step {job_id, gpus: [gres indices]}: the UUIDs of a step's GPUs
 * (SLURM_STEP_GPUS), for `gpukeeper slurm step` and `slurm task-prolog`;
 * the job's own user (or root) only, and only devices of the job's lease. */
int slurm_op_step(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                  gk_call_error *ret_error);
int slurm_op_reconcile(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                       gk_call_error *ret_error);
