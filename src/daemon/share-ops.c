/* Shared leases in the daemon: use, environment, budget enforcement (see
 * share-ops.h). */
#include "daemon/share-ops.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "basic/log.h"
#include "basic/parse.h"
#include "basic/time-util.h"
#include "daemon/daemon.h"
#include "daemon/idle.h"
#include "enforce/signal.h"
#include "gpu/inventory.h"
#include "policy/share.h"

static const GpuDevice *gpu_of(const Daemon *d, const char *uuid)
{
        for (size_t i = 0; d->snapshot && i < d->snapshot->n_gpus; i++)
                if (strcmp(d->snapshot->gpus[i].uuid, uuid) == 0)
                        return &d->snapshot->gpus[i];
        return NULL;
}

static bool is_shared(const Lease *l)
{
        return l->rec.share_bytes > 0 && l->rec.n_devices == 1;
}

uint64_t share_ops_used(const Daemon *d, const Lease *l)
{
        const GpuDevice *g;
        uint64_t sum = 0;

        if (!is_shared(l) || !(g = gpu_of(d, l->rec.devices[0].uuid)))
                return 0;
        for (size_t i = 0; i < g->n_processes; i++) {
                const GpuProcess *p = &g->processes[i];
                bool owner = !p->vanished || p->owner_from_earlier;

                if (owner && p->uid == l->rec.uid && p->memory_used_bytes != GPU_VALUE_UNKNOWN)
                        sum += p->memory_used_bytes;
        }
        return sum;
}

/* The first (oldest) shared lease of `l`'s group, which keeps its timeline. */
static Lease *group_head(const Daemon *d, const Lease *l)
{
        for (Lease *x = d->leases.leases; x; x = x->next)
                if (is_shared(x) && x->rec.uid == l->rec.uid &&
                    strcmp(x->rec.devices[0].uuid, l->rec.devices[0].uuid) == 0)
                        return x;
        return NULL;
}

uint64_t share_ops_group_budget(const Daemon *d, const Lease *l)
{
        uint64_t sum = 0;

        if (!is_shared(l))
                return 0;
        for (const Lease *x = d->leases.leases; x; x = x->next)
                if (is_shared(x) && x->rec.uid == l->rec.uid &&
                    strcmp(x->rec.devices[0].uuid, l->rec.devices[0].uuid) == 0)
                        sum += x->rec.share_bytes;
        return sum;
}

/* A shared lease's environment (its share_env), in the order the lease's
 * JSON holds it: frameworks told to grow into the budget rather than take
 * the GPU, and the budget itself. One list for the tree and the text. */
#define SHARE_ENV_N 6
static const char *const share_env_names[SHARE_ENV_N] = {
        "PYTORCH_CUDA_ALLOC_CONF",        "TF_FORCE_GPU_ALLOW_GROWTH",
        "XLA_PYTHON_CLIENT_PREALLOCATE",  "XLA_PYTHON_CLIENT_MEM_FRACTION",
        "GPUKEEPER_MEMORY_BUDGET",        "GPUKEEPER_MEMORY_FRACTION",
};

typedef struct ShareEnv {
        char budget[32], fraction[16];
        const char *value[SHARE_ENV_N];
} ShareEnv;

/* The values of share_env_names for shared lease `l`. */
static void share_env(const Daemon *d, const Lease *l, ShareEnv *e)
{
        const GpuDevice *g = gpu_of(d, l->rec.devices[0].uuid);
        double f = 1.0;

        if (g && g->memory_total_bytes != GPU_VALUE_UNKNOWN && g->memory_total_bytes > 0)
                f = (double)l->rec.share_bytes / (double)g->memory_total_bytes;
        /* Rounded down to 3 decimals: a framework that takes the fraction of
         * the total stays at or under the budget. */
        f = f > 1.0 ? 1.0 : (double)(uint64_t)(f * 1000.0) / 1000.0;
        snprintf(e->budget, sizeof e->budget, "%" PRIu64, l->rec.share_bytes);
        snprintf(e->fraction, sizeof e->fraction, "%.3f", f);
        e->value[0] = "expandable_segments:True";
        e->value[1] = "true";
        e->value[2] = "false";
        e->value[3] = e->fraction;
        e->value[4] = e->budget;
        e->value[5] = e->fraction;
}

json_t *share_ops_env(const Daemon *d, const Lease *l)
{
        json_t *o = json_object();
        ShareEnv e;

        if (!o || !is_shared(l))
                return o;
        share_env(d, l, &e);
        for (size_t i = 0; i < SHARE_ENV_N; i++)
                if (json_object_set_new(o, share_env_names[i], json_string(e.value[i])) < 0) {
                        json_decref(o);
                        return NULL;
                }
        return o;
}

int share_ops_lease_json(const Daemon *d, const Lease *l, json_t *o)
{
        const Lease *head = is_shared(l) ? group_head(d, l) : NULL;
        json_t *env = share_ops_env(d, l);

        if (!env)
                return -ENOMEM;
        if (json_object_set_new(o, "share_bytes",
                                is_shared(l) ? json_integer((json_int_t)l->rec.share_bytes)
                                             : json_null()) < 0 ||
            json_object_set_new(o, "memory_used_bytes",
                                is_shared(l) && d->snapshot
                                    ? json_integer((json_int_t)share_ops_used(d, l))
                                    : json_null()) < 0 ||
            json_object_set_new(o, "over_budget", json_boolean(head && head->budget.over)) < 0 ||
            json_object_set_new(o, "share_env", env) < 0)
                return -ENOMEM;
        return 0;
}

/* share_ops_lease_json()'s members, as json-dump writes them. */
void share_ops_lease_write(const Daemon *d, const Lease *l, JsonOut *o)
{
        const Lease *head;
        ShareEnv e;

        if (!is_shared(l)) {
                JSON_OUT_LITERAL(o, ",\"share_bytes\":null,\"memory_used_bytes\":null,"
                                    "\"over_budget\":false,\"share_env\":{}");
                return;
        }
        head = group_head(d, l);
        share_env(d, l, &e);
        JSON_OUT_LITERAL(o, ",\"share_bytes\":");
        json_out_integer(o, (json_int_t)l->rec.share_bytes);
        JSON_OUT_LITERAL(o, ",\"memory_used_bytes\":");
        if (d->snapshot)
                json_out_integer(o, (json_int_t)share_ops_used(d, l));
        else
                json_out_null(o);
        if (head && head->budget.over)
                JSON_OUT_LITERAL(o, ",\"over_budget\":true");
        else
                JSON_OUT_LITERAL(o, ",\"over_budget\":false");
        JSON_OUT_LITERAL(o, ",\"share_env\":{");
        for (size_t i = 0; i < SHARE_ENV_N; i++) {
                if (i)
                        JSON_OUT_LITERAL(o, ",");
                json_out_text(o, share_env_names[i]);
                JSON_OUT_LITERAL(o, ":");
                json_out_text(o, e.value[i]);
        }
        JSON_OUT_LITERAL(o, "}");
}

static json_t *details(const Daemon *d, const Lease *l, uint64_t used, uint64_t budget)
{
        return json_pack("{s:I, s:I, s:s, s:I, s:I}", "lease_id", (json_int_t)l->rec.id, "uid",
                         (json_int_t)l->rec.uid, "gpu_uuid", l->rec.devices[0].uuid,
                         "memory_used_bytes", (json_int_t)used, "budget_bytes",
                         (json_int_t)budget);
}

static void audit(Daemon *d, const Lease *l, const char *action, uint64_t used, uint64_t budget)
{
        char subject[32], *text;
        json_t *o = details(d, l, used, budget);

        snprintf(subject, sizeof subject, "lease %" PRId64, l->rec.id);
        text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        (void)store_audit(d->store, -1, action, subject, text);
        free(text);
        json_decref(o);
}

static void notice(Daemon *d, const Lease *l, uint64_t used, uint64_t budget, bool enforce)
{
        const ConfigSharing *c = &d->config->sharing;
        char u[FORMAT_SIZE_MAX], b[FORMAT_SIZE_MAX], grace[FORMAT_DURATION_MAX], key[64],
            text[768];

        (void)format_size(u, sizeof u, used);
        (void)format_size(b, sizeof b, budget);
        (void)format_duration_short(grace, sizeof grace, c->grace_usec);
        snprintf(text, sizeof text,
                 "\ngpukeeper: your shared lease %" PRId64 " on %s uses %s of GPU memory, above "
                 "its budget of %s.\ngpukeeper: %s%s%s\n",
                 l->rec.id, l->rec.devices[0].uuid, u, b,
                 enforce ? "free memory now: its processes on that GPU get SIGTERM in "
                         : "free memory now: others share this GPU. This is recorded and "
                           "reported to the admins.",
                 enforce ? grace : "", enforce ? " unless they go back under the budget." : "");
        log_warning("Lease %" PRId64 " of uid %u over its budget on %s: %s of %s.", l->rec.id,
                    (unsigned)l->rec.uid, l->rec.devices[0].uuid, u, b);
        audit(d, l, "lease.over_budget", used, budget);
        idle_tell_user_terminals(l->rec.uid, text);
        snprintf(key, sizeof key, "budget:lease:%" PRId64, l->rec.id);
        daemon_alert(d, CONFIG_ALERT_VIOLATION, key, "shared GPU lease over its memory budget",
                     text + 1, details(d, l, used, budget));
}

/* Signal the group's processes on its GPU (pidfd, start time and uid as the
 * sampler read them). */
static void signal_group(Daemon *d, const Lease *l, int sig)
{
        const GpuDevice *g = gpu_of(d, l->rec.devices[0].uuid);

        for (size_t i = 0; g && i < g->n_processes; i++) {
                const GpuProcess *p = &g->processes[i];
                int r;

                if (p->vanished || p->uid != l->rec.uid)
                        continue;
                r = enforce_signal((pid_t)p->pid, p->start_time, p->uid, sig);
                if (r < 0) {
                        if (r != -ESRCH && r != -ESTALE)
                                log_error_errno(r, "Cannot signal pid %u of lease %" PRId64,
                                                p->pid, l->rec.id);
                        continue;
                }
                d->enforcement.signals_sent++;
                log_warning("Sent %s to pid %u (lease %" PRId64 " over its memory budget).",
                            sig == SIGKILL ? "SIGKILL" : "SIGTERM", p->pid, l->rec.id);
        }
}

void share_ops_tick(Daemon *d)
{
        const ConfigSharing *c = &d->config->sharing;
        bool enforce = d->config->enforcement.mode != CONFIG_ENFORCEMENT_OBSERVE;
        uint64_t boot = daemon_boot(d);

        if (!d->snapshot || !d->snapshot->nvml_available)
                return;
        for (Lease *l = d->leases.leases; l; l = l->next) {
                uint64_t used, budget;
                unsigned actions;
                const GpuDevice *g;

                if (!is_shared(l) || group_head(d, l) != l)
                        continue;
                g = gpu_of(d, l->rec.devices[0].uuid);
                /* Not listed is not gone: a cut-short list decides nothing. */
                if (!g || g->processes_incomplete)
                        continue;
                used = share_ops_used(d, l);
                budget = share_ops_group_budget(d, l);
                actions = policy_budget_step(&l->budget, used, budget, boot, c->grace_usec,
                                             d->config->enforcement.kill_timeout_usec, enforce);
                if (actions & POLICY_BUDGET_NOTICE)
                        notice(d, l, used, budget, enforce);
                if (actions & POLICY_BUDGET_SIGTERM) {
                        audit(d, l, "lease.budget_sigterm", used, budget);
                        signal_group(d, l, SIGTERM);
                }
                if (actions & POLICY_BUDGET_SIGKILL) {
                        audit(d, l, "lease.budget_sigkill", used, budget);
                        signal_group(d, l, SIGKILL);
                }
                if (actions & POLICY_BUDGET_CLEARED) {
                        log_info("Lease %" PRId64 " back under its memory budget.", l->rec.id);
                        audit(d, l, "lease.under_budget", used, budget);
                }
        }
}
