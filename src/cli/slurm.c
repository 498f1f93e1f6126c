/* `gpukeeper slurm prolog|epilog|reconcile|gres|step` and the Slurm backend
 * of `run`, `lease acquire` and `queue` (backend: slurm in gpukeeperd's
 * config).
 *
 * prolog and epilog are what slurm.conf's Prolog= and Epilog= run (as root,
 * with SLURM_JOB_ID, SLURM_JOB_UID and SLURM_JOB_GPUS): they register and end
 * the job's lease of kind `slurm`. They fail open: whatever goes wrong is
 * logged (stderr and syslog) and gpukeeperd alerts, but they exit 0, because
 * a failing prolog drains the node and gpukeeper must never be why.
 *
 * gres prints gres.conf from NVML (the CLI loads the library itself, like
 * nvidia-smi; src/slurm/gres.c writes it). step runs inside `srun`: it puts
 * the job's GPU UUIDs into CUDA_VISIBLE_DEVICES (Slurm sets indices) and
 * execs the command, so a job sees what `gpukeeper run` gives on one
 * server. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/parse.h"
#include "basic/proc.h"
#include "cli/cli.h"
#include "cli/lease-args.h"
#include "cli/lease-render.h"
#include "cli/helper.h"
#include "cli/slurm-gres.h"
#include "cli/slurm-step.h"
#include "slurm/slurm.h"

static void complain(const char *fmt, ...) _printf_(1, 2);
static void complain(const char *fmt, ...)
{
        char text[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        fprintf(stderr, "gpukeeper: %s\n", text);
        openlog("gpukeeper-slurm", LOG_PID, LOG_DAEMON);
        syslog(LOG_WARNING, "%s", text);
        closelog();
}

static char *read_small_file(const char *path);

/* Where the prolog finds gres.conf: next to $SLURM_CONF (slurmd passes it
 * to its prolog), else Slurm's default. */
static void default_gres_conf(char *buf, size_t len)
{
        const char *conf = getenv("SLURM_CONF"), *slash = conf ? strrchr(conf, '/') : NULL;

        if (slash && slash > conf && (size_t)(slash - conf) + sizeof "/gres.conf" <= len)
                snprintf(buf, len, "%.*s/gres.conf", (int)(slash - conf), conf);
        else
                snprintf(buf, len, "%s", SLURM_DEFAULT_GRES_CONF);
}

/* The devices gres.conf's files name for the job's gres indices, as
 * [{minor, gi, ci}] in the order of `idx`, so gpukeeperd registers the
 * devices Slurm fenced for the job (MIG instances by their nvidia-caps
 * nodes) wherever gres.conf lists them. NULL when gres.conf does not say
 * (absent, AutoDetect on, an index it does not have): gpukeeperd then
 * reads the indices in `gpukeeper slurm gres` order. */
static json_t *prolog_devices(uint64_t job_id, const unsigned *idx, int n, const char *gres_path,
                              const char *minors_path)
{
        _cleanup_free_ char *text = NULL, *minors = NULL;
        _cleanup_free_ SlurmGresRecord *recs = NULL;
        const char *node = getenv("SLURMD_NODENAME");
        char host[256];
        unsigned line = 0;
        json_t *list;
        int n_recs;

        text = read_small_file(gres_path);
        if (!text)
                return NULL;
        if (!node || !*node) {
                if (gethostname(host, sizeof host) < 0)
                        return NULL;
                host[sizeof host - 1] = '\0';
                host[strcspn(host, ".")] = '\0';
                node = host;
        }
        recs = calloc(SLURM_MAX_DEVICES, sizeof *recs);
        if (!recs)
                return NULL;
        n_recs = slurm_gresconf_parse(text, node, recs, SLURM_MAX_DEVICES, &line);
        if (n_recs == -EOPNOTSUPP)
                return NULL;
        if (n_recs < 0) {
                complain("slurm prolog: job %" PRIu64 ": cannot read %s%s%.0u: %s; taking "
                         "SLURM_JOB_GPUS in `gpukeeper slurm gres` order", job_id, gres_path,
                         line ? " line " : "", line, strerror(-n_recs));
                return NULL;
        }
        minors = read_small_file(minors_path);
        list = json_array();
        for (int i = 0; list && i < n; i++) {
                SlurmGresTarget t;
                int r = idx[i] < (unsigned)n_recs
                                ? slurm_gres_record_target(&recs[idx[i]], minors, &t)
                                : -ERANGE;

                if (r < 0) {
                        complain("slurm prolog: job %" PRIu64 ": gres index %u is %s in %s; "
                                 "taking SLURM_JOB_GPUS in `gpukeeper slurm gres` order",
                                 job_id, idx[i],
                                 r == -ERANGE ? "not a gpu of this node"
                                 : r == -ENOENT ? "a MIG instance whose nvidia-caps minors are "
                                                  "not in " SLURM_MIG_MINORS
                                                : "not one GPU's or MIG instance's files",
                                 gres_path);
                        json_decref(list);
                        return NULL;
                }
                json_array_append_new(list, json_pack("{s:i, s:i, s:i}", "minor", t.minor,
                                                      "gi", t.gi, "ci", t.ci));
        }
        return list;
}

static int prolog_epilog(const cli_context *ctx, bool prolog, const char *gres_path,
                         const char *minors_path)
{
        const char *job = getenv("SLURM_JOB_ID"), *uid_text = getenv("SLURM_JOB_UID");
        const char *gpus_text = getenv("SLURM_JOB_GPUS");
        const char *what = prolog ? "prolog" : "epilog";
        _cleanup_(json_decrefp) json_t *result = NULL;
        unsigned idx[SLURM_MAX_JOB_GPUS];
        uint64_t job_id, uid = 0;
        json_t *args, *list;
        char err[512];
        int n = 0;

        if (slurm_parse_job_id(job, &job_id) < 0) {
                complain("slurm %s: SLURM_JOB_ID is %s%s%s, not a job id: nothing registered",
                         what, job ? "'" : "", job ? job : "unset", job ? "'" : "");
                return CLI_EXIT_OK;
        }
        if (prolog) {
                if (!uid_text || parse_uint64(uid_text, &uid) < 0 || uid >= UINT32_MAX) {
                        complain("slurm prolog: job %" PRIu64 ": SLURM_JOB_UID is not a uid: "
                                 "nothing registered", job_id);
                        return CLI_EXIT_OK;
                }
                n = slurm_parse_index_list(gpus_text ? gpus_text : "", idx, ELEMENTSOF(idx));
                if (n < 0) {
                        complain("slurm prolog: job %" PRIu64 ": SLURM_JOB_GPUS '%s' is not an "
                                 "index list: nothing registered", job_id, gpus_text);
                        return CLI_EXIT_OK;
                }
                if (n == 0)
                        return CLI_EXIT_OK; /* no GPUs: nothing to hold */
                list = json_array();
                for (int i = 0; list && i < n; i++)
                        json_array_append_new(list, json_integer(idx[i]));
                args = json_pack("{s:I, s:I, s:o}", "job_id", (json_int_t)job_id, "uid",
                                 (json_int_t)uid, "gpus", list);
                json_t *devices = prolog_devices(job_id, idx, n, gres_path, minors_path);

                if (args && devices)
                        json_object_set_new(args, "devices", devices);
                else
                        json_decref(devices);
        } else
                args = json_pack("{s:I}", "job_id", (json_int_t)job_id);
        if (!args) {
                complain("slurm %s: out of memory", what);
                return CLI_EXIT_OK;
        }
        if (cli_slurm_call(ctx, prolog ? "slurm.prolog" : "slurm.epilog", args, &result, err,
                        sizeof err) < 0)
                complain("slurm %s: job %" PRIu64 ": %s (the job runs on; %s)", what, job_id,
                         err,
                         prolog ? "gpukeeperd does not know it holds its GPUs"
                                : "gpukeeperd ends its lease when it finds the job gone");
        return CLI_EXIT_OK;
}

/* gres.conf or nvidia-caps' minors: NULL when absent (the prolog then
 * takes SLURM_JOB_GPUS in `gpukeeper slurm gres` order), and said why when
 * present but unreadable (larger than SLURM_FILE_MAX, not a regular file)
 * rather than read cut short. */
static char *read_small_file(const char *path)
{
        char *text = NULL;
        int r = slurm_read_file(path, &text);

        if (r < 0) {
                if (r != -ENOENT)
                        complain("slurm prolog: cannot read %s: %s", path,
                                 r == -EFBIG    ? "larger than 1 MiB"
                                 : r == -EINVAL ? "not a regular file"
                                                : strerror(-r));
                return NULL;
        }
        return text;
}

/* ---- step: inside srun -------------------------------------------------- */

/* slurm.conf TaskProlog=: print `export` lines slurmstepd applies to the
 * task's environment, so every job on the node (srun, sbatch) sees UUIDs.
 * Never fails the task. */
static int task_prolog_main(const cli_context *ctx)
{
        char visible[LEASE_BUF_MAX];
        json_int_t lease_id = 0;
        uint64_t job_id;

        if (slurm_parse_job_id(getenv("SLURM_JOB_ID"), &job_id) < 0)
                return CLI_EXIT_OK;
        if (cli_slurm_step_devices(ctx, job_id, visible, sizeof visible, &lease_id, false) < 0)
                return CLI_EXIT_OK;
        printf("export CUDA_VISIBLE_DEVICES=%s\nexport CUDA_DEVICE_ORDER=PCI_BUS_ID\n"
               "export GPUKEEPER_LEASE_ID=%lld\n", visible, (long long)lease_id);
        return cli_finish(CLI_EXIT_OK);
}

/* ---- the backend: srun / salloc / squeue -------------------------------- */

/* The gres type `gpukeeper slurm gres` writes for a MIG instance of
 * `profile` on this node (the GPU's model and the profile), from
 * gpukeeperd's inventory; the profile itself when no GPU here has one (a
 * gres.conf written by hand may name it so; Slurm says when it does not). */
static void mig_gres_type(const cli_context *ctx, const char *profile, char *buf, size_t len)
{
        _cleanup_(json_decrefp) json_t *status = NULL;
        char err[512];
        json_t *g, *in;
        size_t i, k;

        snprintf(buf, len, "%s", profile);
        if (cli_slurm_call(ctx, "status", json_object(), &status, err, sizeof err) < 0)
                return;
        json_array_foreach(json_object_get(status, "gpus"), i, g) {
                json_array_foreach(json_object_get(g, "instances"), k, in) {
                        const char *p = cli_json_str(in, "profile");
                        SlurmDevice dev = {.model = cli_json_str(g, "name"), .profile = profile};

                        if (p && strcmp(p, profile) == 0 && slurm_gres_type(&dev, buf, len) == 0)
                                return;
                }
        }
        snprintf(buf, len, "%s", profile);
}

/* The Slurm request for what run / lease acquire asked: `--gres=` into
 * `gres`. What Slurm cannot be asked for is refused (exit 64) with what to
 * ask instead. */
static int slurm_request(const cli_context *ctx, const cli_acquire_args *a, const char *verb,
                         char *gres, size_t len)
{
        size_t o;
        json_t *m;
        size_t i;

        if (a->kind == CLI_SELECT_DEVICES)
                return cli_usage_error(verb, "with backend: slurm Slurm picks the devices: --gpu "
                                             "cannot be honoured; ask for --gpus N or --mig "
                                             "PROFILE");
        if (a->share_bytes)
                return cli_usage_error(verb, "with backend: slurm GPUs are not shared: --share "
                                             "cannot be honoured; ask for --gpus 1 or --mig "
                                             "PROFILE");
        if (a->json)
                return cli_usage_error(verb, "with backend: slurm the lease is a Slurm "
                                             "allocation (salloc prints its job id): --json "
                                             "cannot be honoured");
        if (a->kind != CLI_SELECT_MIG) {
                /* No --gpus: one GPU, as on one server. */
                snprintf(gres, len, "--gres=gpu:%" PRIu64,
                         a->kind == CLI_SELECT_GPUS ? a->gpus : UINT64_C(1));
                return CLI_EXIT_OK;
        }
        o = (size_t)snprintf(gres, len, "--gres=");
        json_array_foreach(a->mig, i, m) {
                const char *profile = cli_json_str(m, "profile");
                double count = 1;
                char type[SLURM_TYPE_MAX];
                int k;

                if (!profile)
                        return cli_usage_error(verb, "--mig takes PROFILE[:N]");
                cli_json_num(m, "count", &count);
                mig_gres_type(ctx, profile, type, sizeof type);
                k = snprintf(gres + o, len - o, "%sgpu:%s:%.0f", i ? "," : "", type, count);
                if (k < 0 || (size_t)k >= len - o)
                        return cli_usage_error(verb, "too many --mig options for Slurm");
                o += (size_t)k;
        }
        return CLI_EXIT_OK;
}

/* srun and salloc exit with this when --immediate finds no resources, so
 * --no-wait ends as on one server (75, not enough free devices). */
static void exit_immediate_as_local(void)
{
        char code[8];

        snprintf(code, sizeof code, "%d", CLI_EXIT_TEMPFAIL);
        setenv("SLURM_EXIT_IMMEDIATE", code, 1);
}

int cli_slurm_run(const cli_context *ctx, const cli_acquire_args *a)
{
        char self[PATH_MAX], step[PATH_MAX], gres[512];
        const char *argv[16 + 1024];
        size_t n = 0;
        ssize_t k;
        int r;

        r = slurm_request(ctx, a, "run", gres, sizeof gres);
        if (r != CLI_EXIT_OK)
                return r;
        k = readlink("/proc/self/exe", self, sizeof self - 1);
        if (k < 0) {
                fprintf(stderr, "gpukeeper: run: cannot find my own executable: %m\n");
                return CLI_EXIT_SOFTWARE;
        }
        self[k] = '\0';
        /* The lean helper next to us when installed (or built) there, else
         * `gpukeeper slurm step`: the same code, more libraries to load. */
        char *slash = strrchr(self, '/');
        bool helper = false;

        if (slash && (size_t)(slash - self) + sizeof "/gpukeeper-slurm-step" <= sizeof step) {
                snprintf(step, sizeof step, "%.*s/gpukeeper-slurm-step", (int)(slash - self),
                         self);
                helper = access(step, X_OK) == 0;
        }
        argv[n++] = "srun";
        argv[n++] = "--quiet";
        /* One Ctrl-C ends the step, as it ends `gpukeeper run` on one server. */
        argv[n++] = "--quit-on-interrupt";
        argv[n++] = gres;
        if (!a->wait) {
                argv[n++] = "--immediate";
                exit_immediate_as_local();
        }
        /* --no-bind: Slurm's CPU binding off too. */
        if (a->no_bind)
                argv[n++] = "--cpu-bind=none";
        argv[n++] = helper ? step : self;
        if (ctx->socket_arg) {
                argv[n++] = "--socket";
                argv[n++] = ctx->socket_arg;
        }
        if (!helper) {
                argv[n++] = "slurm";
                argv[n++] = "step";
        }
        argv[n++] = "--";
        for (size_t i = 0; a->command[i]; i++) {
                if (n >= ELEMENTSOF(argv) - 1)
                        return cli_usage_error("run", "too many arguments for srun");
                argv[n++] = a->command[i];
        }
        argv[n] = NULL;
        fflush(NULL);
        execvp("srun", (char *const *)argv);
        fprintf(stderr, "gpukeeper: run: cannot run srun (backend: slurm): %m\n");
        return errno == ENOENT ? CLI_EXIT_NOT_FOUND : CLI_EXIT_NOT_EXECUTABLE;
}

int cli_slurm_acquire(const cli_context *ctx, const cli_acquire_args *a)
{
        char gres[512], time_arg[48];
        const char *argv[8];
        size_t n = 0;
        int r;

        r = slurm_request(ctx, a, "lease acquire", gres, sizeof gres);
        if (r != CLI_EXIT_OK)
                return r;
        argv[n++] = "salloc";
        argv[n++] = "--no-shell";
        argv[n++] = gres;
        if (a->duration_sec) {
                /* salloc's --time is in minutes, rounded up. */
                snprintf(time_arg, sizeof time_arg, "--time=%" PRIu64,
                         (a->duration_sec + 59) / 60);
                argv[n++] = time_arg;
        }
        if (!a->wait) {
                argv[n++] = "--immediate";
                exit_immediate_as_local();
        }
        argv[n] = NULL;
        fflush(NULL);
        execvp("salloc", (char *const *)argv);
        fprintf(stderr, "gpukeeper: lease acquire: cannot run salloc (backend: slurm): %m\n");
        return CLI_EXIT_NOT_FOUND;
}

bool cli_slurm_backend(const cli_context *ctx)
{
        _cleanup_(json_decrefp) json_t *result = NULL;
        char err[512];
        const char *b;

        if (cli_slurm_call(ctx, "ping", json_object(), &result, err, sizeof err) < 0)
                return false;
        b = cli_json_str(result, "backend");
        return b && strcmp(b, "slurm") == 0;
}

int cli_slurm_queue(bool json)
{
        fflush(NULL);
        if (json)
                execlp("squeue", "squeue", "--me", "--json", (char *)NULL);
        else
                execlp("squeue", "squeue", "--me", (char *)NULL);
        fprintf(stderr, "gpukeeper: queue: cannot run squeue (backend: slurm): %m\n");
        return CLI_EXIT_NOT_FOUND;
}

int cli_slurm_main(cli_context *ctx, int argc, char *argv[])
{
        const char *verb;
        int i = 1;

        /* --socket may come before the verb. */
        while (i < argc && argv[i][0] == '-') {
                if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
                        cli_slurm_usage(stdout);
                        return cli_finish(CLI_EXIT_OK);
                }
                if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
                        ctx->socket_arg = argv[i + 1];
                        i += 2;
                } else if (strncmp(argv[i], "--socket=", 9) == 0) {
                        ctx->socket_arg = argv[i] + 9;
                        i++;
                } else
                        return cli_usage_error("slurm", "unknown option '%s'", argv[i]);
        }
        if (i >= argc)
                return cli_usage_error("slurm", "say prolog, epilog, reconcile, gres, step or task-prolog");
        verb = argv[i];
        /* gres loads NVML: it runs in its helper (cli/slurm-gres.h), with
         * this same command line. */
        if (strcmp(verb, "gres") == 0)
                return cli_helper_exec("gpukeeper-slurm-gres", GK_LIBEXEC_DIR, ctx, argc, argv);
        argc -= i;
        argv += i;
        for (int k = 1; k < argc && strcmp(verb, "step") != 0; k++) {
                if (strcmp(argv[k], "--socket") == 0 && k + 1 < argc) {
                        ctx->socket_arg = argv[k + 1];
                        memmove(&argv[k], &argv[k + 2], (size_t)(argc - k - 1) * sizeof *argv);
                        argc -= 2;
                        k--;
                }
        }
        if (strcmp(verb, "prolog") == 0 || strcmp(verb, "epilog") == 0) {
                char gres_path[PATH_MAX];
                const char *minors_path = SLURM_MIG_MINORS;

                default_gres_conf(gres_path, sizeof gres_path);
                for (int k = 1; k < argc; k++) {
                        const char *val = NULL;

                        if (strncmp(argv[k], "--gres-conf=", 12) == 0)
                                snprintf(gres_path, sizeof gres_path, "%s", argv[k] + 12);
                        else if (strcmp(argv[k], "--gres-conf") == 0 && k + 1 < argc)
                                snprintf(gres_path, sizeof gres_path, "%s", argv[++k]);
                        else if (strncmp(argv[k], "--mig-minors=", 13) == 0)
                                val = argv[k] + 13;
                        else if (strcmp(argv[k], "--mig-minors") == 0 && k + 1 < argc)
                                val = argv[++k];
                        else
                                return cli_usage_error("slurm", "%s takes only --gres-conf FILE "
                                                                "and --mig-minors FILE (it reads "
                                                                "SLURM_JOB_* from its "
                                                                "environment), not '%s'",
                                                       verb, argv[k]);
                        if (val)
                                minors_path = val;
                }
                return prolog_epilog(ctx, strcmp(verb, "prolog") == 0, gres_path, minors_path);
        }
        if (strcmp(verb, "reconcile") == 0) {
                _cleanup_(json_decrefp) json_t *result = NULL;

                return cli_fetch(ctx, "slurm.reconcile", json_object(), &result);
        }

        if (strcmp(verb, "step") == 0)
                return cli_slurm_step_main(ctx, argc, argv);
        if (strcmp(verb, "task-prolog") == 0) {
                if (argc > 1)
                        return cli_usage_error("slurm", "task-prolog takes no arguments");
                return task_prolog_main(ctx);
        }
        return cli_usage_error("slurm", "unknown command '%s' (prolog, epilog, reconcile, gres, "
                                        "step, task-prolog)", verb);
}
