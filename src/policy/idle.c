/* Idle reclaim decisions and idle-time accounting; rules in idle.h. */
#include "policy/idle.h"

#include <assert.h>
#include <string.h>

#include "basic/macro.h"

typedef struct DeviceUse {
        bool known; /* the device is in the snapshot and was read this tick */
        bool has_process;
        int utilization; /* percent, -1 when unknown */
} DeviceUse;

static DeviceUse device_use(const GpuSnapshot *snap, const char *uuid)
{
        if (!snap->nvml_available)
                return (DeviceUse){.known = false};

        for (size_t g = 0; g < snap->n_gpus; g++) {
                const GpuDevice *d = &snap->gpus[g];

                /* An unhealthy device's processes and utilisation are not
                 * trustworthy this tick. */
                if (strcmp(d->uuid, uuid) == 0)
                        return (DeviceUse){
                            .known = d->healthy,
                            .has_process = d->n_processes > 0,
                            .utilization = d->utilization_gpu,
                        };
                for (size_t i = 0; i < d->n_instances; i++) {
                        DeviceUse u = {.known = d->healthy, .utilization = -1};

                        if (strcmp(d->instances[i].uuid, uuid) != 0)
                                continue;
                        for (size_t p = 0; p < d->n_processes; p++)
                                if (d->processes[p].instance == (int)i)
                                        u.has_process = true;
                        return u;
                }
        }
        return (DeviceUse){.known = false};
}

static bool use_busy(DeviceUse u)
{
        return !u.known || u.has_process || u.utilization > 0;
}

static bool use_utilized(DeviceUse u)
{
        return !u.known || u.utilization > 0 || (u.utilization < 0 && u.has_process);
}

PolicyIdleActivity policy_idle_activity(const GpuSnapshot *snap, const char *const *uuids, size_t n)
{
        PolicyIdleActivity a = {false, false};

        assert(snap);
        assert(uuids || n == 0);

        for (size_t i = 0; i < n; i++) {
                DeviceUse u = device_use(snap, uuids[i]);

                a.busy = a.busy || use_busy(u);
                a.utilized = a.utilized || use_utilized(u);
        }
        return a;
}

void policy_idle_note(PolicyIdleLease *l, PolicyIdleActivity a, uint64_t now)
{
        assert(l);

        if (a.busy)
                l->last_busy_usec = now;
        if (a.utilized)
                l->last_utilized_usec = now;
}

uint64_t policy_idle_for(const PolicyIdleLease *l, uint64_t now)
{
        uint64_t since;

        assert(l);

        since = l->kind == POLICY_IDLE_MANUAL ? l->last_busy_usec : l->last_utilized_usec;
        since = MAX(since, l->created_usec);
        return now > since ? now - since : 0;
}

static PolicyIdleAction decide_manual(const PolicyIdleLease *l, const PolicyIdleConfig *c,
                                      uint64_t now)
{
        uint64_t idle = policy_idle_for(l, now);
        uint64_t warn_before = MIN(c->warn_before_usec, c->release_after_usec);
        uint64_t warn_at = c->release_after_usec - warn_before;
        bool warned = l->warned_usec != 0;

        if (idle >= c->release_after_usec) {
                if (warn_before == 0)
                        return POLICY_IDLE_RELEASE;
                if (!warned)
                        return POLICY_IDLE_WARN;
                /* Keep the promise the warning made: not before warned + warn_before. */
                if (now >= l->warned_usec && now - l->warned_usec >= warn_before)
                        return POLICY_IDLE_RELEASE;
                return POLICY_IDLE_NONE;
        }
        if (warn_before > 0 && idle >= warn_at)
                return warned ? POLICY_IDLE_NONE : POLICY_IDLE_WARN;
        return warned ? POLICY_IDLE_WARN_CLEAR : POLICY_IDLE_NONE;
}

static PolicyIdleAction decide_run(const PolicyIdleLease *l, const PolicyIdleConfig *c,
                                   uint64_t now)
{
        bool idle = c->flag_after_usec > 0 && policy_idle_for(l, now) >= c->flag_after_usec;

        if (idle && !l->flagged)
                return POLICY_IDLE_FLAG;
        if (!idle && l->flagged)
                return POLICY_IDLE_FLAG_CLEAR;
        return POLICY_IDLE_NONE;
}

PolicyIdleAction policy_idle_decide(const PolicyIdleLease *l, const PolicyIdleConfig *c,
                                    uint64_t now)
{
        assert(l);
        assert(c);
        assert(c->release_after_usec > 0);

        return l->kind == POLICY_IDLE_MANUAL ? decide_manual(l, c, now) : decide_run(l, c, now);
}

uint64_t policy_idle_account(const GpuSnapshot *snap, const char *const *uuids, size_t n,
                             uint64_t elapsed_usec, uint64_t max_elapsed_usec, uint64_t *idle_usec)
{
        uint64_t step = MIN(elapsed_usec, max_elapsed_usec), total = 0;

        assert(snap);
        assert((uuids && idle_usec) || n == 0);

        for (size_t i = 0; i < n; i++) {
                if (use_busy(device_use(snap, uuids[i])))
                        continue;
                idle_usec[i] += step;
                total += step;
        }
        return total;
}

const char *policy_idle_action_to_string(PolicyIdleAction a)
{
        static const char *const names[] = {
            [POLICY_IDLE_NONE] = "none",
            [POLICY_IDLE_WARN] = "warn",
            [POLICY_IDLE_WARN_CLEAR] = "warn_clear",
            [POLICY_IDLE_RELEASE] = "release",
            [POLICY_IDLE_FLAG] = "flag",
            [POLICY_IDLE_FLAG_CLEAR] = "flag_clear",
        };

        return (size_t)a < ELEMENTSOF(names) ? names[a] : NULL;
}
