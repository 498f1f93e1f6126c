/* GPU condition alerts; see gpu-alerts.h. */
#include "daemon/gpu-alerts.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "basic/parse.h"
#include "basic/time-util.h"
#include "daemon/daemon.h"
#include "gpu/nvml-abi.h"

static GpuAlertState *state_of(GpuAlerts *a, const char *uuid)
{
        for (size_t i = 0; i < a->n_gpus; i++)
                if (strcmp(a->gpus[i].uuid, uuid) == 0)
                        return &a->gpus[i];
        if (a->n_gpus >= GPU_MAX_DEVICES)
                return NULL;
        a->gpus[a->n_gpus] = (GpuAlertState){};
        snprintf(a->gpus[a->n_gpus].uuid, sizeof a->gpus[0].uuid, "%s", uuid);
        return &a->gpus[a->n_gpus++];
}

static json_t *gpu_details(const GpuDevice *g)
{
        return json_pack("{s:I, s:s, s:s}", "gpu", (json_int_t)g->index, "uuid", g->uuid, "name",
                         g->name);
}

/* Raise or clear one condition, remembering which it is in *raised. */
static void set_condition(Daemon *d, const GpuDevice *g, ConfigAlertEvent event, bool holds,
                          bool *raised, const char *subject, const char *text,
                          const char *recovery)
{
        char key[160], recovered[320];

        snprintf(key, sizeof key, "%s:%s", config_alert_event_to_string(event), g->uuid);
        if (holds && !*raised) {
                *raised = true;
                daemon_alert(d, event, key, subject, text, gpu_details(g));
        } else if (!holds && *raised) {
                *raised = false;
                /* A recovery names its GPU, as the alert did: "GPU 2 (GPU-…): …". */
                snprintf(recovered, sizeof recovered, "GPU %u (%s): %s", g->index, g->uuid,
                         recovery);
                if (d->alerts)
                        (void)alerts_clear(d->alerts, event, key, recovered);
        }
}

/* A condition that must hold for `hold_usec` before it is raised. */
static bool held_long_enough(bool now_true, uint64_t *since, uint64_t now, uint64_t hold_usec)
{
        if (!now_true) {
                *since = 0;
                return false;
        }
        if (!*since)
                *since = now;
        return now - *since >= hold_usec;
}

void gpu_alerts_tick(Daemon *d)
{
        const ConfigAlerts *c = &d->config->alerts;
        uint64_t now = now_usec(CLOCK_REALTIME);
        char text[512], span[FORMAT_DURATION_MAX];

        if (!d->snapshot)
                return;
        for (size_t i = 0; i < d->snapshot->n_gpus; i++) {
                const GpuDevice *g = &d->snapshot->gpus[i];
                bool lost = !g->healthy && g->error == NVML_ERROR_GPU_IS_LOST;
                bool memory_high = g->memory_total_bytes != GPU_VALUE_UNKNOWN &&
                                   g->memory_used_bytes != GPU_VALUE_UNKNOWN &&
                                   g->memory_total_bytes > 0 &&
                                   (double)g->memory_used_bytes >
                                           c->memory_fraction * (double)g->memory_total_bytes;
                bool hot = g->temperature_c >= 0 && g->temperature_c >= c->temperature_c;
                GpuAlertState *st = g->uuid[0] ? state_of(&d->gpu_alerts, g->uuid) : NULL;

                if (!st)
                        continue;
                snprintf(text, sizeof text, "GPU %u (%s, %s) is lost: %s.", g->index, g->name,
                         g->uuid, g->error_call);
                set_condition(d, g, CONFIG_ALERT_GPU_LOST, lost, &st->lost_raised, "GPU lost",
                              text, "the GPU answers again");
                snprintf(text, sizeof text, "NVML error on GPU %u (%s): %s returned %d.",
                         g->index, g->uuid, g->error_call, g->error);
                set_condition(d, g, CONFIG_ALERT_NVML_ERROR, g->error && !lost, &st->error_raised,
                              "NVML error", text, "NVML answers without errors again");
                if (g->last_xid && g->last_xid != st->xid_seen) {
                        char key[160];

                        st->xid_seen = g->last_xid;
                        snprintf(key, sizeof key, "xid:%s:%" PRIu64, g->uuid, g->last_xid);
                        snprintf(text, sizeof text, "GPU %u (%s) reported Xid %" PRIu64 ".",
                                 g->index, g->uuid, g->last_xid);
                        daemon_alert(d, CONFIG_ALERT_XID, key, "Xid error", text, gpu_details(g));
                }
                (void)format_duration_short(span, sizeof span, c->memory_for_usec);
                snprintf(text, sizeof text,
                         "GPU %u (%s): memory %.1f of %.1f GiB used, above %.0f%% for %s.",
                         g->index, g->uuid, (double)g->memory_used_bytes / (1 << 30),
                         (double)g->memory_total_bytes / (1 << 30), c->memory_fraction * 100,
                         span);
                set_condition(d, g, CONFIG_ALERT_MEMORY,
                              held_long_enough(memory_high, &st->memory_since, now,
                                               c->memory_for_usec),
                              &st->memory_raised, "GPU memory high", text,
                              "GPU memory is below the threshold again");
                snprintf(text, sizeof text, "GPU %u (%s) at %d °C (alert at %d °C).", g->index,
                         g->uuid, g->temperature_c, c->temperature_c);
                set_condition(d, g, CONFIG_ALERT_TEMPERATURE,
                              held_long_enough(hot, &st->temperature_since, now,
                                               c->temperature_for_usec),
                              &st->temperature_raised, "GPU temperature high", text,
                              "GPU temperature is below the threshold again");
        }
}
