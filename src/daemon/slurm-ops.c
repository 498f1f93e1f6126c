/* Slurm jobs as leases; see slurm-ops.h. Slurm is the authority on its GPUs:
 * a prolog for job B on a device still held by job A's lease (A's epilog was
 * lost) ends A's lease, a retried prolog of one job returns its lease, and a
 * lease of a job squeue no longer lists ends at the next reconcile. */
#include "daemon/slurm-ops.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/log.h"
#include "basic/macro.h"
#include "basic/time-util.h"
#include "daemon/daemon.h"
#include "daemon/leases.h"
#include "daemon/request.h"
#include "policy/violations.h"
#include "slurm/slurm.h"

#define SLURM_PROC_TEXT_MAX (256 << 10) /* bytes of /proc/<pid>/environ or cgroup read */

/* The devices Slurm schedules on this node, in gres order (slurm.h). */
static size_t slurm_devices(const Daemon *d, SlurmDevice *out, size_t max)
{
        const GpuSnapshot *snap = d->snapshot;
        size_t n = 0;

        for (size_t i = 0; snap && i < snap->n_gpus; i++) {
                const GpuDevice *g = &snap->gpus[i];

                if (g->uuid[0] && config_slurm_owns(&d->config->slurm, g->index))
                        slurm_devices_add_gpu(g, out, &n, max);
        }
        slurm_devices_order(out, n);
        return n;
}

static Lease *find_job(Daemon *d, uint64_t job_id)
{
        for (Lease *l = d->leases.leases; l; l = l->next)
                if (l->rec.kind == LEASE_SLURM && l->rec.slurm_job_id == job_id)
                        return l;
        return NULL;
}

/* Whether two leases hold the same devices (in any order). */
static bool same_devices(const StoredLease *a, const StoredLease *b)
{
        if (a->n_devices != b->n_devices)
                return false;
        for (size_t i = 0; i < a->n_devices; i++) {
                bool found = false;

                for (size_t k = 0; k < b->n_devices && !found; k++)
                        found = strcmp(a->devices[i].uuid, b->devices[k].uuid) == 0;
                if (!found)
                        return false;
        }
        return true;
}

/* End the lease registered under `job_id` by an earlier job of that id. */
static int end_stale_job_lease(Daemon *d, uint64_t job_id)
{
        Lease *l = find_job(d, job_id);
        char why[112];
        int r;

        if (!l)
                return 0;
        log_warning("Slurm job id %" PRIu64 " came again with another user or other devices: "
                    "ending lease %" PRId64 " of the earlier job of that id",
                    job_id, l->rec.id);
        snprintf(why, sizeof why,
                 "Slurm gave job id %" PRIu64 " to a new job (the earlier job's epilog was lost)",
                 job_id);
        r = leases_end(d, l, false, why, -1);
        if (r >= 0)
                leases_schedule(d);
        return r < 0 ? r : 0;
}

static bool is_root(const RequestCall *call, gk_call_error *ret_error, const char *op)
{
        if (call->peer->uid == 0)
                return true;
        request_error(ret_error, GK_E_PERMISSION,
                      "%s is for Slurm's Prolog/Epilog, which run as root", op);
        return false;
}

static int arg_job_id(json_t *args, uint64_t *ret, gk_call_error *ret_error)
{
        json_t *v = args ? json_object_get(args, "job_id") : NULL;

        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            (uint64_t)json_integer_value(v) > SLURM_JOB_ID_MAX)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'job_id' must be a Slurm job id (1 to %" PRIu64 ")",
                                     SLURM_JOB_ID_MAX);
        *ret = (uint64_t)json_integer_value(v);
        return 0;
}

static int prolog_refused(Daemon *d, uint64_t job_id, gk_call_error *ret_error, int code,
                          const char *fmt, ...) _printf_(5, 6);
static int prolog_refused(Daemon *d, uint64_t job_id, gk_call_error *ret_error, int code,
                          const char *fmt, ...)
{
        char text[512], subject[96];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        /* The prolog itself fails open (the node is never drained for our
         * sake); the job runs without a lease, so say so loudly. */
        log_warning("Slurm prolog of job %" PRIu64 " not registered: %s", job_id, text);
        snprintf(subject, sizeof subject, "Slurm job %" PRIu64 " runs without a lease", job_id);
        daemon_alert(d, CONFIG_ALERT_DAEMON, "slurm-prolog", subject, text, NULL);
        return request_error(ret_error, code, "%s", text);
}

int slurm_op_prolog(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                    gk_call_error *ret_error)
{
        _cleanup_free_ SlurmDevice *devs = NULL;
        _cleanup_free_ char *request_json = NULL;
        StoredLease rec = {};
        json_t *uid_v, *gpus_v, *files_v, *v;
        uint64_t job_id = 0;
        size_t n_devs, i;
        Lease *l;
        char cmd[64];
        int r;

        if (!is_root(call, ret_error, "slurm.prolog"))
                return GK_E_PERMISSION;
        r = arg_job_id(args, &job_id, ret_error);
        if (r != 0)
                return r;
        uid_v = json_object_get(args, "uid");
        gpus_v = json_object_get(args, "gpus");
        if (!json_is_integer(uid_v) || json_integer_value(uid_v) < 0 ||
            json_integer_value(uid_v) >= (json_int_t)UINT32_MAX)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'uid' must be the job's uid (SLURM_JOB_UID)");
        if (!json_is_array(gpus_v) || json_array_size(gpus_v) > SLURM_MAX_JOB_GPUS)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'gpus' must be a list of at most %d gres indices",
                                     SLURM_MAX_JOB_GPUS);
        files_v = json_object_get(args, "devices");
        if (files_v && (!json_is_array(files_v) ||
                        json_array_size(files_v) != json_array_size(gpus_v)))
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'devices' must be a list as long as 'gpus'");

        if (json_array_size(gpus_v) == 0) {
                /* A job without GPUs; a lease under its id is a stale one. */
                r = end_stale_job_lease(d, job_id);
                if (r < 0)
                        return r;
                *ret_result = json_pack("{s:n, s:b}", "lease", "registered", false);
                return *ret_result ? 0 : -ENOMEM;
        }

        devs = calloc(SLURM_MAX_DEVICES, sizeof *devs);
        rec.devices = calloc(json_array_size(gpus_v), sizeof *rec.devices);
        if (!devs || !rec.devices) {
                free(rec.devices);
                return -ENOMEM;
        }
        n_devs = slurm_devices(d, devs, SLURM_MAX_DEVICES);
        json_array_foreach(gpus_v, i, v) {
                json_int_t idx = json_is_integer(v) ? json_integer_value(v) : -1;
                LeaseDevice *ld = &rec.devices[rec.n_devices];
                const SlurmDevice *sd = NULL;

                if (json_is_array(files_v)) {
                        /* What gres.conf's files for this index name (the
                         * prolog read them): the device, wherever gres.conf
                         * puts it. */
                        json_t *t = json_array_get(files_v, i);
                        json_int_t minor = -1, gi = -1, ci = -1;

                        if (json_unpack(t, "{s:I, s:I, s:I}", "minor", &minor, "gi", &gi, "ci",
                                        &ci) < 0) {
                                stored_lease_done(&rec);
                                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                                     "'devices' must give {minor, gi, ci} for "
                                                     "each of 'gpus'");
                        }
                        for (size_t k = 0; k < n_devs && !sd; k++)
                                if (devs[k].minor == minor && devs[k].gi == gi &&
                                    (gi < 0 || devs[k].ci == ci))
                                        sd = &devs[k];
                        if (!sd) {
                                char what[64];

                                if (gi >= 0)
                                        snprintf(what, sizeof what,
                                                 "MIG instance %lld/%lld of /dev/nvidia%lld",
                                                 (long long)gi, (long long)ci, (long long)minor);
                                else
                                        snprintf(what, sizeof what, "/dev/nvidia%lld",
                                                 (long long)minor);
                                stored_lease_done(&rec);
                                return prolog_refused(d, job_id, ret_error, GK_E_UNAVAILABLE,
                                                      "gres index %lld of job %" PRIu64
                                                      " is %s in gres.conf, not one of this "
                                                      "node's Slurm devices (slurm.gpus and "
                                                      "gres.conf disagree?)",
                                                      (long long)idx, job_id, what);
                        }
                } else if (idx >= 0 && (size_t)idx < n_devs)
                        sd = &devs[idx];
                if (!sd) {
                        stored_lease_done(&rec);
                        return prolog_refused(d, job_id, ret_error, GK_E_UNAVAILABLE,
                                              "gres index %lld of job %" PRIu64
                                              " is not one of this node's %zu Slurm devices "
                                              "(slurm.gpus and gres.conf disagree?)",
                                              (long long)idx, job_id, n_devs);
                }
                for (size_t k = 0; k < rec.n_devices; k++)
                        if (strcmp(rec.devices[k].uuid, sd->uuid) == 0) {
                                stored_lease_done(&rec);
                                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                                     "gres index %lld is listed twice",
                                                     (long long)idx);
                        }
                snprintf(ld->uuid, sizeof ld->uuid, "%s", sd->uuid);
                snprintf(ld->gpu_uuid, sizeof ld->gpu_uuid, "%s", sd->parent_uuid);
                snprintf(ld->profile, sizeof ld->profile, "%s", sd->profile ? sd->profile : "");
                rec.n_devices++;
        }

        /* A retried prolog: the job has its lease already, for the same
         * user and devices. A lease under the same id for anyone or
         * anything else is an earlier job's whose epilog was lost, and
         * Slurm handed the id out again (its controller lost its state):
         * never attach the new job to it. */
        l = find_job(d, job_id);
        if (l && l->rec.uid == (uid_t)json_integer_value(uid_v) &&
            same_devices(&l->rec, &rec)) {
                stored_lease_done(&rec);
                *ret_result = json_pack("{s:o, s:b}", "lease", lease_to_json(d, l), "registered",
                                        false);
                return *ret_result ? 0 : -ENOMEM;
        }
        if (l) {
                r = end_stale_job_lease(d, job_id);
                if (r < 0) {
                        stored_lease_done(&rec);
                        return r;
                }
        }

        /* Slurm gave these devices to this job: a Slurm lease still on them
         * belongs to a job whose epilog was lost. */
        for (i = 0; i < rec.n_devices; i++) {
                for (Lease *it = d->leases.leases, *next; it; it = next) {
                        bool on_it = false;

                        next = it->next;
                        for (size_t k = 0; k < it->rec.n_devices; k++)
                                on_it |= strcmp(it->rec.devices[k].gpu_uuid,
                                                rec.devices[i].gpu_uuid) == 0 &&
                                         (strcmp(it->rec.devices[k].uuid, rec.devices[i].uuid) == 0 ||
                                          strcmp(it->rec.devices[k].uuid, it->rec.devices[k].gpu_uuid) == 0 ||
                                          strcmp(rec.devices[i].uuid, rec.devices[i].gpu_uuid) == 0);
                        if (!on_it)
                                continue;
                        if (it->rec.kind != LEASE_SLURM) {
                                int64_t id = it->rec.id;

                                stored_lease_done(&rec);
                                return prolog_refused(d, job_id, ret_error, GK_E_UNAVAILABLE,
                                                      "%s is held by gpukeeper lease %" PRId64
                                                      " (granted before slurm.gpus gave it to "
                                                      "Slurm?)",
                                                      rec.devices[i].uuid, id);
                        }
                        char why[96];

                        snprintf(why, sizeof why,
                                 "Slurm gave its devices to job %" PRIu64 " (epilog lost)",
                                 job_id);
                        r = leases_end(d, it, false, why, -1);
                        if (r < 0) {
                                stored_lease_done(&rec);
                                return r;
                        }
                }
        }

        rec.uid = (uid_t)json_integer_value(uid_v);
        rec.kind = LEASE_SLURM;
        rec.created_usec = now_usec(CLOCK_REALTIME);
        rec.slurm_job_id = job_id;
        snprintf(cmd, sizeof cmd, "slurm job %" PRIu64, job_id);
        rec.command = strdup(cmd);
        request_json = json_dumps(args, JSON_COMPACT);
        if (!rec.command || !request_json) {
                stored_lease_done(&rec);
                return -ENOMEM;
        }
        r = leases_register(d, &rec, request_json, &l);
        if (r < 0) {
                stored_lease_done(&rec);
                return prolog_refused(d, job_id, ret_error, GK_E_UNAVAILABLE,
                                      "cannot record the lease of Slurm job %" PRIu64 ": %s",
                                      job_id, strerror(-r));
        }
        leases_schedule(d);
        *ret_result = json_pack("{s:o, s:b}", "lease", lease_to_json(d, l), "registered", true);
        return *ret_result ? 0 : -ENOMEM;
}

int slurm_op_epilog(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                    gk_call_error *ret_error)
{
        uint64_t job_id = 0;
        int64_t id = 0;
        char why[64];
        Lease *l;
        int r;

        if (!is_root(call, ret_error, "slurm.epilog"))
                return GK_E_PERMISSION;
        r = arg_job_id(args, &job_id, ret_error);
        if (r != 0)
                return r;
        l = find_job(d, job_id);
        if (l) {
                id = l->rec.id;
                snprintf(why, sizeof why, "Slurm job %" PRIu64 " ended", job_id);
                r = leases_end(d, l, false, why, 0);
                if (r < 0)
                        return r;
                leases_schedule(d);
        }
        *ret_result = json_pack("{s:b, s:o}", "ended", id != 0, "lease_id",
                                id ? json_integer(id) : json_null());
        return *ret_result ? 0 : -ENOMEM;
}

int slurm_op_step(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                  gk_call_error *ret_error)
{
        _cleanup_free_ SlurmDevice *devs = NULL;
        char visible[LEASE_MAX_DEVICES * LEASE_UUID_MAX] = "";
        json_t *gpus_v, *job_gpus_v, *v;
        uint64_t job_id = 0;
        size_t n_devs, i, o = 0;
        Lease *l;
        int r;

        r = arg_job_id(args, &job_id, ret_error);
        if (r != 0)
                return r;
        gpus_v = json_object_get(args, "gpus");
        if (!json_is_array(gpus_v) || json_array_size(gpus_v) == 0 ||
            json_array_size(gpus_v) > LEASE_MAX_DEVICES)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "'gpus' must be a list of 1 to %d gres indices "
                                     "(SLURM_STEP_GPUS)", LEASE_MAX_DEVICES);
        l = find_job(d, job_id);
        if (!l || (l->rec.uid != call->peer->uid && call->peer->uid != 0))
                return request_error(ret_error, GK_E_NOT_FOUND,
                                     "no lease of yours for Slurm job %" PRIu64
                                     " (is `gpukeeper slurm prolog` slurm.conf's Prolog=?)",
                                     job_id);
        devs = calloc(SLURM_MAX_DEVICES, sizeof *devs);
        if (!devs)
                return -ENOMEM;
        n_devs = slurm_devices(d, devs, SLURM_MAX_DEVICES);
        /* The prolog registered the job's devices in the order of its gres
         * indices (SLURM_JOB_GPUS), each the device gres.conf names for it:
         * a step index is the device at its place among the job's. The
         * caller can only name devices of its own job's lease this way. */
        job_gpus_v = json_object_get(args, "job_gpus");
        if (!json_is_array(job_gpus_v) || json_array_size(job_gpus_v) != l->rec.n_devices)
                job_gpus_v = NULL;
        json_array_foreach(gpus_v, i, v) {
                json_int_t idx = json_is_integer(v) ? json_integer_value(v) : -1;
                const char *uuid = NULL;
                size_t p;
                json_t *jv;

                json_array_foreach(job_gpus_v, p, jv)
                        if (json_is_integer(jv) && json_integer_value(jv) == idx && idx >= 0)
                                uuid = l->rec.devices[p].uuid;
                if (!uuid && !job_gpus_v) {
                        if (idx < 0 || (size_t)idx >= n_devs)
                                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                                     "gres index %lld is not one of this "
                                                     "node's %zu Slurm devices",
                                                     (long long)idx, n_devs);
                        for (size_t k = 0; k < l->rec.n_devices && !uuid; k++)
                                if (strcmp(l->rec.devices[k].uuid, devs[idx].uuid) == 0)
                                        uuid = l->rec.devices[k].uuid;
                }
                if (!uuid)
                        return request_error(ret_error, GK_E_PERMISSION,
                                             "gres index %lld is not Slurm job %" PRIu64 "'s",
                                             (long long)idx, job_id);
                o += (size_t)snprintf(visible + o, o < sizeof visible ? sizeof visible - o : 0,
                                      "%s%s", o ? "," : "", uuid);
        }
        if (o >= sizeof visible)
                return -E2BIG;
        *ret_result = json_pack("{s:I, s:s}", "lease_id", (json_int_t)l->rec.id,
                                "cuda_visible_devices", visible);
        return *ret_result ? 0 : -ENOMEM;
}

/* ---- reconcile: which jobs does Slurm still know? ----------------------- */

static void squeue_cleanup(SlurmState *s)
{
        s->io = sd_event_source_disable_unref(s->io);
        s->child = sd_event_source_disable_unref(s->child);
        if (s->fd >= 0)
                close(s->fd);
        s->fd = -1;
        s->pid = 0;
        free(s->out);
        s->out = NULL;
        s->out_len = 0;
        s->out_truncated = false;
}

/* Read what is there without blocking. Returns true at end of file. */
static bool squeue_drain(SlurmState *s)
{
        char buf[16384];

        for (;;) {
                ssize_t k = read(s->fd, buf, sizeof buf);

                if (k == 0)
                        return true;
                if (k < 0)
                        return errno != EAGAIN && errno != EINTR;
                if (s->out_len + (size_t)k > SLURM_SQUEUE_OUTPUT_MAX) {
                        s->out_truncated = true;
                        continue;
                }
                char *grown = realloc(s->out, s->out_len + (size_t)k + 1);

                if (!grown) {
                        s->out_truncated = true;
                        continue;
                }
                s->out = grown;
                memcpy(s->out + s->out_len, buf, (size_t)k);
                s->out_len += (size_t)k;
                s->out[s->out_len] = '\0';
        }
}

static int on_squeue_io(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
        SlurmState *s = userdata;

        if (squeue_drain(s))
                s->io = sd_event_source_disable_unref(s->io);
        return 0;
}

static void reconcile_with(Daemon *d, const uint64_t *jobs, size_t n)
{
        SlurmState *s = &d->slurm;
        bool changed = false;

        for (Lease *l = d->leases.leases, *next; l; l = next) {
                bool known = false;
                char why[80];

                next = l->next;
                if (l->rec.kind != LEASE_SLURM || l->rec.created_usec >= s->started_usec)
                        continue;
                for (size_t i = 0; i < n && !known; i++)
                        known = jobs[i] == l->rec.slurm_job_id;
                if (known)
                        continue;
                snprintf(why, sizeof why, "Slurm no longer knows job %" PRIu64,
                         l->rec.slurm_job_id);
                if (leases_end(d, l, false, why, -1) >= 0)
                        changed = true;
        }
        if (changed)
                leases_schedule(d);
}

static int on_squeue_exit(sd_event_source *source, const siginfo_t *si, void *userdata)
{
        Daemon *d = userdata;
        SlurmState *s = &d->slurm;
        _cleanup_free_ uint64_t *jobs = NULL;
        int n;

        (void)squeue_drain(s);
        if (si->si_code != CLD_EXITED || si->si_status != 0) {
                log_warning("%s %s %d: leases of Slurm jobs are kept until it answers.",
                            d->config->slurm.squeue,
                            si->si_code == CLD_EXITED ? "exited with status" : "died of signal",
                            si->si_status);
                goto done;
        }
        if (s->out_truncated) {
                log_warning("%s wrote more than %d bytes: leases of Slurm jobs are kept.",
                            d->config->slurm.squeue, SLURM_SQUEUE_OUTPUT_MAX);
                goto done;
        }
        jobs = calloc(SLURM_SQUEUE_MAX_JOBS, sizeof *jobs);
        if (!jobs) {
                log_error("Out of memory reading the Slurm job list.");
                goto done;
        }
        n = slurm_parse_squeue(s->out ? s->out : "", jobs, SLURM_SQUEUE_MAX_JOBS);
        if (n < 0) {
                log_warning_errno(n, "Cannot read the job list of %s: leases of Slurm jobs are "
                                     "kept", d->config->slurm.squeue);
                goto done;
        }
        reconcile_with(d, jobs, (size_t)n);
done:
        s->reconciles++;
        squeue_cleanup(s);
        return 0;
}

static bool has_slurm_leases(const Daemon *d)
{
        for (const Lease *l = d->leases.leases; l; l = l->next)
                if (l->rec.kind == LEASE_SLURM)
                        return true;
        return false;
}

/* Start squeue unless it runs already. Returns 1 when started, 0 when one
 * runs, -errno. */
static int squeue_start(Daemon *d)
{
        SlurmState *s = &d->slurm;
        int p[2];
        pid_t pid;
        int r;

        if (s->pid > 0)
                return 0;
        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        s->started_usec = now_usec(CLOCK_REALTIME);
        pid = fork();
        if (pid < 0) {
                r = -errno;
                close(p[0]);
                close(p[1]);
                return r;
        }
        if (pid == 0) {
                char *argv[] = {d->config->slurm.squeue, (char *)"--noheader",
                                (char *)"--format=%A", NULL};
                sigset_t none;
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);

                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(p[1], STDOUT_FILENO) < 0 ||
                    dup2(null, STDERR_FILENO) < 0)
                        _exit(126);
                /* The daemon's stdout pipe is blocking for squeue. */
                fcntl(STDOUT_FILENO, F_SETFL, 0);
                execv(argv[0], argv);
                _exit(127);
        }
        close(p[1]);
        s->pid = pid;
        s->fd = p[0];
        r = sd_event_add_io(d->event, &s->io, s->fd, EPOLLIN, on_squeue_io, s);
        if (r >= 0)
                r = sd_event_add_child(d->event, &s->child, pid, WEXITED, on_squeue_exit, d);
        if (r < 0) {
                kill(pid, SIGKILL);
                (void)waitpid(pid, NULL, 0);
                squeue_cleanup(s);
                return r;
        }
        return 1;
}

static int on_reconcile_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
        Daemon *d = userdata;
        int r;

        if (has_slurm_leases(d)) {
                r = squeue_start(d);
                if (r < 0)
                        log_warning_errno(r, "Cannot run %s", d->config->slurm.squeue);
        }
        r = sd_event_source_set_time_relative(source, d->config->slurm.reconcile_interval_usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
        if (r < 0)
                return log_error_errno(r, "Cannot re-arm the Slurm reconcile timer");
        return 0;
}

int slurm_op_reconcile(Daemon *d, const RequestCall *call, json_t *args, json_t **ret_result,
                       gk_call_error *ret_error)
{
        int r;

        if (call->peer->uid != 0)
                return request_error(ret_error, GK_E_PERMISSION, "slurm.reconcile is for root");
        if (args && json_object_size(args) > 0)
                return request_error(ret_error, GK_E_INVALID_ARGUMENT,
                                     "this operation takes no arguments");
        r = squeue_start(d);
        if (r < 0)
                return request_error(ret_error, GK_E_UNAVAILABLE, "cannot run %s: %s",
                                     d->config->slurm.squeue, strerror(-r));
        *ret_result = json_pack("{s:b, s:I}", "started", r > 0, "reconciles",
                                (json_int_t)d->slurm.reconciles);
        return *ret_result ? 0 : -ENOMEM;
}

int slurm_ops_init(Daemon *d)
{
        d->slurm.fd = -1;
        /* Never equal to a real signature: the first tick writes the
         * directory (and removes what a previous run left there). */
        snprintf(d->slurm.jobmap_sig, sizeof d->slurm.jobmap_sig, "-");
        return sd_event_add_time_relative(d->event, &d->slurm.timer, CLOCK_MONOTONIC,
                                          d->config->slurm.reconcile_interval_usec,
                                          USEC_PER_MSEC * 100, on_reconcile_timer, d);
}

void slurm_ops_config_changed(Daemon *d)
{
        snprintf(d->slurm.jobmap_sig, sizeof d->slurm.jobmap_sig, "-");
}

void slurm_ops_done(Daemon *d)
{
        SlurmState *s = &d->slurm;

        if (s->pid > 0) {
                kill(s->pid, SIGKILL);
                (void)waitpid(s->pid, NULL, 0);
        }
        squeue_cleanup(s);
        s->timer = sd_event_source_disable_unref(s->timer);
}

/* ---- job processes on the wrong device ---------------------------------- */

static size_t read_proc_file(pid_t pid, const char *name, char *buf, size_t size)
{
        char path[64];
        _cleanup_close_ int fd = -EBADF;
        size_t len = 0;

        snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return 0;
        while (len < size - 1) {
                ssize_t k = read(fd, buf + len, size - 1 - len);

                if (k <= 0)
                        break;
                len += (size_t)k;
        }
        buf[len] = '\0';
        return len;
}

static uint64_t job_of(const GpuProcess *p, char *buf, char *buf2)
{
        uint64_t start, job;
        size_t env_len;

        (void)read_proc_file((pid_t)p->pid, "cgroup", buf, SLURM_PROC_TEXT_MAX);
        env_len = read_proc_file((pid_t)p->pid, "environ", buf2, SLURM_PROC_TEXT_MAX);
        job = slurm_job_of_process(buf, buf2, env_len);
        /* The pid may have been reused between NVML's list and our reads. */
        if (proc_start_time((pid_t)p->pid, &start) < 0 || start != p->start_time)
                return 0;
        return job;
}

static bool job_holds(const Daemon *d, uint64_t job, const char *uuid)
{
        for (const Lease *l = d->leases.leases; l; l = l->next)
                if (l->rec.kind == LEASE_SLURM && l->rec.slurm_job_id == job)
                        for (size_t i = 0; i < l->rec.n_devices; i++)
                                if (strcmp(l->rec.devices[i].uuid, uuid) == 0)
                                        return true;
        return false;
}

static bool uid_has_slurm_lease(const Daemon *d, uid_t uid)
{
        for (const Lease *l = d->leases.leases; l; l = l->next)
                if (l->rec.kind == LEASE_SLURM && l->rec.uid == uid)
                        return true;
        return false;
}

int slurm_ops_job_violations(Daemon *d, PolicyViolation **found, size_t *n_found)
{
        const GpuSnapshot *snap = d->snapshot;
        _cleanup_free_ char *buf = NULL, *buf2 = NULL;

        for (size_t i = 0; snap && i < snap->n_gpus; i++) {
                const GpuDevice *g = &snap->gpus[i];

                for (size_t k = 0; k < g->n_processes; k++) {
                        const GpuProcess *p = &g->processes[k];
                        const char *uuid = p->instance >= 0 ? g->instances[p->instance].uuid
                                                            : g->uuid;
                        const Lease *holder;
                        PolicyViolation *grown;
                        bool listed = false;
                        uint64_t job;

                        if (p->vanished || p->uid == 0 || !uid_has_slurm_lease(d, p->uid))
                                continue;
                        /* Only what the policy let pass: its owner holds the device. */
                        holder = leases_holder(d, uuid);
                        if (!holder || holder->rec.uid != p->uid)
                                continue;
                        for (size_t v = 0; v < *n_found && !listed; v++)
                                listed = (*found)[v].pid == p->pid &&
                                         strcmp((*found)[v].device_uuid, uuid) == 0;
                        if (listed)
                                continue;
                        if (!buf && (!(buf = malloc(SLURM_PROC_TEXT_MAX)) ||
                                     !(buf2 = malloc(SLURM_PROC_TEXT_MAX))))
                                return -ENOMEM;
                        job = job_of(p, buf, buf2);
                        if (job == 0 || job_holds(d, job, uuid))
                                continue;
                        grown = realloc(*found, (*n_found + 1) * sizeof **found);
                        if (!grown)
                                return -ENOMEM;
                        *found = grown;
                        (*found)[(*n_found)++] = (PolicyViolation){
                                .pid = p->pid,
                                .start_time = p->start_time,
                                .uid = p->uid,
                                .device_uuid = uuid,
                                .gpu_uuid = g->uuid,
                                .gpu_index = g->index,
                                .instance = p->instance,
                                .memory_used_bytes = p->memory_used_bytes,
                                .command = p->command,
                        };
                }
        }
        return 0;
}

/* ---- dcgm-exporter's HPC job mapping ------------------------------------ */

static SlurmJobmapEntry *jobmap_entry(SlurmJobmapEntry *e, size_t *n, size_t max,
                                      const char *name)
{
        for (size_t i = 0; i < *n; i++)
                if (strcmp(e[i].name, name) == 0)
                        return &e[i];
        if (*n >= max)
                return NULL;
        e[*n] = (SlurmJobmapEntry){};
        snprintf(e[*n].name, sizeof e[*n].name, "%s", name);
        return &e[(*n)++];
}

/* The file name of device `uuid`: "<gpu index>" or "<gpu index>.<gi>". */
static bool jobmap_name_of(const GpuSnapshot *snap, const char *uuid, char *buf, size_t len)
{
        for (size_t i = 0; snap && i < snap->n_gpus; i++) {
                const GpuDevice *g = &snap->gpus[i];

                if (strcmp(g->uuid, uuid) == 0) {
                        snprintf(buf, len, "%u", g->index);
                        return true;
                }
                for (size_t k = 0; k < g->n_instances; k++)
                        if (strcmp(g->instances[k].uuid, uuid) == 0) {
                                snprintf(buf, len, "%u.%u", g->index,
                                         g->instances[k].gpu_instance_id);
                                return true;
                        }
        }
        return false;
}

void slurm_ops_tick(Daemon *d)
{
        const char *dir = d->config->slurm.job_mapping_dir;
        _cleanup_free_ SlurmJobmapEntry *e = NULL;
        _cleanup_close_ int dfd = -EBADF;
        char sig[sizeof d->slurm.jobmap_sig];
        size_t n = 0, o = 0;
        const size_t max = 256;
        int r;

        if (!dir)
                return;
        e = calloc(max, sizeof *e);
        if (!e)
                return;
        for (const Lease *l = d->leases.leases; l; l = l->next)
                for (size_t i = 0; i < l->rec.n_devices; i++) {
                        char name[24];
                        SlurmJobmapEntry *x;

                        if (!jobmap_name_of(d->snapshot, l->rec.devices[i].uuid, name,
                                            sizeof name) ||
                            !(x = jobmap_entry(e, &n, max, name)) || x->n_ids >= SLURM_JOBMAP_MAX_IDS)
                                continue;
                        if (l->rec.kind == LEASE_SLURM)
                                snprintf(x->ids[x->n_ids++], sizeof x->ids[0], "%" PRIu64,
                                         l->rec.slurm_job_id);
                        else
                                snprintf(x->ids[x->n_ids++], sizeof x->ids[0], "gk-%" PRId64,
                                         l->rec.id);
                }
        sig[0] = '\0';
        for (size_t i = 0; i < n && o < sizeof sig; i++) {
                o += (size_t)snprintf(sig + o, sizeof sig - o, "%s:", e[i].name);
                for (size_t k = 0; k < e[i].n_ids && o < sizeof sig; k++)
                        o += (size_t)snprintf(sig + o, sizeof sig - o, "%s,", e[i].ids[k]);
                if (o < sizeof sig)
                        o += (size_t)snprintf(sig + o, sizeof sig - o, ";");
        }
        /* A signature that filled the buffer is never trusted as unchanged. */
        if (o < sizeof sig - 1 && strcmp(sig, d->slurm.jobmap_sig) == 0)
                return;
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
                log_warning_errno(errno, "Cannot create slurm.job_mapping_dir %s", dir);
                return;
        }
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
                log_warning_errno(errno, "Cannot open slurm.job_mapping_dir %s", dir);
                return;
        }
        r = slurm_jobmap_write(dfd, e, n);
        if (r < 0) {
                log_warning_errno(r, "Cannot write the job mapping in %s", dir);
                d->slurm.jobmap_sig[0] = '\0';
                return;
        }
        snprintf(d->slurm.jobmap_sig, sizeof d->slurm.jobmap_sig, "%s", sig);
}
