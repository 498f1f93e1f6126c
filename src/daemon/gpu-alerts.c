/* GPU condition alerts; see gpu-alerts.h. */
#include "daemon/gpu-alerts.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "basic/parse.h"
#include "basic/time-util.h"
#include "daemon/daemon.h"
#include "enforce/signal.h"
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
        /* While it holds it is raised every tick: the alert engine sends it
         * again once repeat_after has passed since the last one, and
         * suppresses it before (issue 17: a persisting condition re-alerts). */
        if (holds) {
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

/* Memory held by exited processes on `g` (gone, or zombies NVML still
 * lists): how much, whose (the owners seen while they were alive), and what
 * can free it, as one alert text. Returns the bytes; 0: nothing held. */
static uint64_t exited_memory(const Daemon *d, const GpuDevice *g, char *text, size_t len)
{
        uint64_t bytes = 0;
        char owners[256] = "", zombies[256] = "";
        size_t n_gone = 0, n_zombies = 0, o;

        for (size_t i = 0; i < g->n_processes; i++) {
                const GpuProcess *p = &g->processes[i];
                bool known = !p->vanished || p->owner_from_earlier;
                const char *name = known ? daemon_user_text(d, p->uid) : "unknown owners";
                EnforceProcessStatus st;

                if (!gpu_process_exited(p))
                        continue;
                if (p->memory_used_bytes != GPU_VALUE_UNKNOWN)
                        bytes += p->memory_used_bytes;
                if (!strstr(owners, name) && strlen(owners) + strlen(name) + 3 < sizeof owners)
                        snprintf(owners + strlen(owners), sizeof owners - strlen(owners), "%s%s",
                                 owners[0] ? ", " : "", name);
                if (!p->zombie) {
                        n_gone++;
                        continue;
                }
                n_zombies++;
                o = strlen(zombies);
                if (enforce_process_state((pid_t)p->pid, p->start_time, &st) == 0 && o < 200)
                        snprintf(zombies + o, sizeof zombies - o, "%spid %u (parent %d)",
                                 o ? ", " : "", p->pid, (int)st.ppid);
                else if (o < 200)
                        snprintf(zombies + o, sizeof zombies - o, "%spid %u", o ? ", " : "",
                                 p->pid);
        }
        if (n_gone + n_zombies == 0)
                return 0;
        o = (size_t)snprintf(text, len, "GPU %u (%s) has %.1f GiB held by exited processes of %s.",
                             g->index, g->uuid, (double)bytes / (1 << 30), owners);
        if (n_zombies && o < len)
                o += (size_t)snprintf(text + o, len - o,
                                      " Zombies (%s) hold it until their parent reaps them: "
                                      "stop or restart the parent.",
                                      zombies);
        if (n_gone && o < len)
                snprintf(text + o, len - o,
                         " Processes already gone hold it until the GPU is reset: drain it "
                         "('gpukeeper admin drain %u') and, once idle, run "
                         "'nvidia-smi -r -i %u'.",
                         g->index, g->index);
        return bytes ? bytes : 1;
}

void gpu_alerts_tick(Daemon *d)
{
        const ConfigAlerts *c = &d->config->alerts;
        uint64_t now = daemon_boot(d); /* hold times are durations */
        char text[1024], span[FORMAT_DURATION_MAX];

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
                set_condition(d, g, CONFIG_ALERT_EXITED_MEMORY,
                              exited_memory(d, g, text, sizeof text) > 0, &st->exited_raised,
                              "GPU memory held by exited processes", text,
                              "no exited process holds memory any more");
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
