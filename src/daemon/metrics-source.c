/* The daemon's side of metrics/source.h; see metrics-source.h. */
#include "daemon/metrics-source.h"

#include <errno.h>
#include <stdlib.h>

#include "basic/macro.h"
#include "basic/time-util.h"
#include "daemon/daemon.h"
#include "daemon/enforcement.h"
#include "daemon/server.h"
#include "daemon/status.h"
#include "daemon/mig-ops.h"
#include "metrics/render.h"

/* Sinks counted on /metrics; alerts.sinks has its own, smaller limit. */
#define METRICS_MAX_SINKS 64

static const ConfigHttp *source_http(void *userdata)
{
        const Daemon *d = userdata;

        return &d->config->http;
}

static const GpuSnapshot *source_snapshot(void *userdata)
{
        const Daemon *d = userdata;

        return d->snapshot;
}

/* The daemon's memo, which forgets names now and then: a scrape must not
 * keep stale names (or a full memo) alive for the daemon's whole life. */
static const char *source_user_name(void *userdata, uid_t uid)
{
        return daemon_user_name(userdata, uid);
}

/* Strict mode's refused-open counters, collected for the render input. */
typedef struct FenceRows {
        const Daemon *d;
        MetricsFenceDenied *rows;
        size_t n, max;
} FenceRows;

static int add_fence_row(const PolicyFenceRule *who, uint64_t count, void *userdata)
{
        FenceRows *x = userdata;

        if (x->n >= x->max)
                return -E2BIG;
        x->rows[x->n] = (MetricsFenceDenied){.uid = (uid_t)who->uid, .count = count};
        /* The same names status shows. */
        strict_device_name(x->d, who, x->rows[x->n].device, sizeof x->rows[x->n].device);
        x->n++;
        return 0;
}

/* Fill the render input from the daemon's state and render into b. */
static int source_render(void *userdata, MetricsBuffer *b)
{
        Daemon *d = userdata;
        _cleanup_free_ const StoredLease **leases = NULL;
        AlertsSinkStats sinks[METRICS_MAX_SINKS];
        MetricsMig mig[GPU_MAX_DEVICES];
        size_t n_sinks = 0, n = 0, n_mig = 0;
        _cleanup_free_ MetricsFenceDenied *rows_owner = NULL;
        FenceRows fence_rows = {.d = d};
        CheckpointerCounts checkpoints;
        MetricsInput in;

        leases = calloc(MAX(d->leases.n_leases, (size_t)1), sizeof *leases);
        if (!leases)
                return -ENOMEM;
        for (const Lease *l = d->leases.leases; l && n < d->leases.n_leases; l = l->next)
                leases[n++] = &l->rec;
        if (d->alerts)
                for (size_t i = 0; i < alerts_n_sinks(d->alerts) && n_sinks < METRICS_MAX_SINKS;
                     i++)
                        if (alerts_sink_stats(d->alerts, i, &sinks[n_sinks]) >= 0)
                                n_sinks++;

        for (size_t i = 0; d->snapshot && i < d->snapshot->n_gpus && n_mig < GPU_MAX_DEVICES; i++) {
                const GpuDevice *g = &d->snapshot->gpus[i];
                int free_slices = mig_ops_free_slices(d, g->uuid);

                if (free_slices >= 0)
                        mig[n_mig++] = (MetricsMig){.uuid = g->uuid, .index = g->index,
                                                    .free_slices = free_slices,
                                                    .on_demand = mig_ops_on_demand_count(d, g->uuid)};
        }
        if (!store_checkpoint_counts(d->store, &checkpoints))
                checkpoints = (CheckpointerCounts){};
        in = (MetricsInput){
            .mig = mig,
            .n_mig = n_mig,
            .snapshot = d->snapshot,
            .hostname = d->hostname,
            .version = GK_VERSION,
            .leases = leases,
            .n_leases = n,
            .queue_length = d->leases.queue_len,
            .violations_total = d->enforcement.violations_opened,
            .signals_sent_total = d->enforcement.signals_sent,
            .log_suppressed_total = d->log_suppressed,
            .connections_refused_total = server_refused_total(d->server),
            .audit_suppressed_total = d->audit_suppressed,
            .status_cached_total = d->status_cache.hits,
            .status_built_total = d->status_cache.misses,
            .checkpoints_thread_total = checkpoints.done,
            .checkpoints_commit_total = checkpoints.in_commit,
            .sinks = sinks,
            .n_sinks = n_sinks,
            .per_process = d->config->http.per_process_metrics,
            .now_usec = now_usec(CLOCK_REALTIME),
            .user_name = source_user_name,
            .userdata = d,
        };
        if (d->config->enforcement.mode == CONFIG_ENFORCEMENT_STRICT) {
                rows_owner = fence_rows.rows = calloc(FENCE_DENIED_MAX, sizeof *fence_rows.rows);
                if (!fence_rows.rows)
                        return -ENOMEM;
                fence_rows.max = FENCE_DENIED_MAX;
                (void)strict_denied_foreach(d, add_fence_row, &fence_rows);
                in.fence_state = d->strict.fence && d->strict.last_error == 0 ? 1 : 2;
                in.fence_denied = fence_rows.rows;
                in.n_fence_denied = fence_rows.n;
        }
        return metrics_render_buffer(&in, b);
}

static int source_status(void *userdata, json_t **ret)
{
        return status_build(userdata, STATUS_OBJECTS, ret);
}

static json_t *source_violation_json(void *userdata, const StoredViolation *v)
{
        return enforcement_violation_json(userdata, v);
}

void daemon_metrics_source(Daemon *d, MetricsSource *ret)
{
        *ret = (MetricsSource){
            .userdata = d,
            .event = d->event,
            .store = d->store,
            .reads = d->reads,
            .http = source_http,
            .snapshot = source_snapshot,
            .render = source_render,
            .status = source_status,
            .violation_json = source_violation_json,
            .user_name = source_user_name,
        };
}
