/* See slurm-step.h. */
#include "cli/slurm-step.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/macro.h"
#include "cli/lease-render.h"
#include "slurm/slurm.h"

/* One call, no retries; the reply or a message in `err`. */
int cli_slurm_call(const cli_context *ctx, const char *op, json_t *args, json_t **ret,
                       char *err, size_t err_len)
{
        _cleanup_(gk_client_freep) gk_client *c = NULL;
        gk_call_error error = {};
        int r;

        r = gk_client_connect(gk_socket_path(ctx->socket_arg), &c);
        if (r < 0) {
                json_decref(args);
                snprintf(err, err_len, "cannot reach gpukeeperd at %s: %s",
                         gk_socket_path(ctx->socket_arg), strerror(-r));
                return r;
        }
        r = gk_client_call(c, op, args, ret, &error);
        if (r != 0) {
                if (r > 0)
                        snprintf(err, err_len, "%s: %.400s", op, error.message);
                else
                        snprintf(err, err_len, "%s: %s", op, strerror(-r));
                return r < 0 ? r : -EIO;
        }
        return 0;
}

/* The UUIDs of this step's GPUs (SLURM_STEP_GPUS, else SLURM_JOB_GPUS: gres
 * indices) from gpukeeperd, which maps them as the prolog did. */
int cli_slurm_step_devices(const cli_context *ctx, uint64_t job_id, char *buf, size_t len,
                        json_int_t *ret_lease, bool quiet)
{
        _cleanup_(json_decrefp) json_t *result = NULL;
        const char *gpus = getenv("SLURM_STEP_GPUS");
        unsigned idx[SLURM_MAX_JOB_GPUS];
        const char *visible;
        json_t *list, *args;
        char err[512];
        int n;

        if (!gpus || !gpus[0])
                gpus = getenv("SLURM_JOB_GPUS");
        n = slurm_parse_index_list(gpus ? gpus : "", idx, ELEMENTSOF(idx));
        if (n <= 0)
                return -ENOENT; /* no GPUs in this step */
        list = json_array();
        for (int i = 0; list && i < n; i++)
                json_array_append_new(list, json_integer(idx[i]));
        args = json_pack("{s:I, s:o}", "job_id", (json_int_t)job_id, "gpus", list);
        if (!args)
                return -ENOMEM;
        /* The job's indices too: the daemon finds each step index's device
         * where the prolog put it (gres.conf's files, not only its order). */
        const char *job_gpus = getenv("SLURM_JOB_GPUS");
        unsigned jidx[SLURM_MAX_JOB_GPUS];
        int jn = slurm_parse_index_list(job_gpus ? job_gpus : "", jidx, ELEMENTSOF(jidx));

        if (jn > 0) {
                json_t *jl = json_array();

                for (int i = 0; jl && i < jn; i++)
                        json_array_append_new(jl, json_integer(jidx[i]));
                if (jl)
                        json_object_set_new(args, "job_gpus", jl);
        }
        if (cli_slurm_call(ctx, "slurm.step", args, &result, err, sizeof err) < 0) {
                if (!quiet)
                        fprintf(stderr, "gpukeeper: slurm step: %s\n", err);
                return -ENOENT;
        }
        visible = cli_json_str(result, "cuda_visible_devices");
        if (!visible || strlen(visible) >= len)
                return -ENOENT;
        snprintf(buf, len, "%s", visible);
        *ret_lease = (json_int_t)json_integer_value(json_object_get(result, "lease_id"));
        return 0;
}

int cli_slurm_step_main(const cli_context *ctx, int argc, char *argv[])
{
        const char *job = getenv("SLURM_JOB_ID");
        char visible[LEASE_BUF_MAX];
        json_int_t lease_id = 0;
        uint64_t job_id;
        int i = 1;

        if (i < argc && strcmp(argv[i], "--") == 0)
                i++;
        if (i >= argc)
                return cli_usage_error("slurm step", "give the command to run after --");
        if (slurm_parse_job_id(job, &job_id) < 0)
                return cli_usage_error("slurm step", "runs inside a Slurm job step (srun); "
                                                     "SLURM_JOB_ID is not set");
        if (cli_slurm_step_devices(ctx, job_id, visible, sizeof visible, &lease_id, false) == 0) {
                char id[32];

                snprintf(id, sizeof id, "%lld", (long long)lease_id);
                setenv("CUDA_VISIBLE_DEVICES", visible, 1);
                setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID", 1);
                setenv("GPUKEEPER_LEASE_ID", id, 1);
        } else
                fprintf(stderr, "gpukeeper: slurm step: no gpukeeper lease for job %" PRIu64
                                " (is `gpukeeper slurm prolog` slurm.conf's Prolog=?); "
                                "CUDA_VISIBLE_DEVICES stays as Slurm set it\n", job_id);
        fflush(NULL);
        execvp(argv[i], argv + i);
        fprintf(stderr, "gpukeeper: slurm step: cannot run '%s': %m\n", argv[i]);
        return errno == ENOENT ? CLI_EXIT_NOT_FOUND : CLI_EXIT_NOT_EXECUTABLE;
}

