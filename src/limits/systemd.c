/* Per-user limits through systemd's D-Bus API; see limits-systemd.h. */
#include "limits/limits-systemd.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>

void limits_systemd_unit(uid_t uid, char *buf, size_t len)
{
        snprintf(buf, len, "user-%u.slice", (unsigned)uid);
}

uint64_t limits_systemd_value(PolicyLimitResource r, uint64_t v)
{
        if (v == POLICY_LIMIT_INFINITY)
                return UINT64_MAX;
        if (r == POLICY_LIMIT_CPU)
                return v > UINT64_MAX / LIMITS_SYSTEMD_USEC_PER_CPU_PERCENT
                               ? UINT64_MAX
                               : v * LIMITS_SYSTEMD_USEC_PER_CPU_PERCENT;
        return v;
}

int limits_systemd_message(sd_bus *bus, uid_t uid, const PolicyUserLimits *limits,
                           sd_bus_message **ret)
{
        sd_bus_message *m = NULL;
        char unit[64];
        int r;

        limits_systemd_unit(uid, unit, sizeof unit);
        r = sd_bus_message_new_method_call(bus, &m, "org.freedesktop.systemd1",
                                           "/org/freedesktop/systemd1",
                                           "org.freedesktop.systemd1.Manager",
                                           "SetUnitProperties");
        if (r >= 0)
                r = sd_bus_message_append(m, "sb", unit, 1 /* runtime */);
        if (r >= 0)
                r = sd_bus_message_append(
                        m, "a(sv)", 3, "CPUQuotaPerSecUSec", "t",
                        limits_systemd_value(POLICY_LIMIT_CPU,
                                             limits->limit[POLICY_LIMIT_CPU].value),
                        "MemoryMax", "t",
                        limits_systemd_value(POLICY_LIMIT_MEMORY,
                                             limits->limit[POLICY_LIMIT_MEMORY].value),
                        "TasksMax", "t",
                        limits_systemd_value(POLICY_LIMIT_TASKS,
                                             limits->limit[POLICY_LIMIT_TASKS].value));
        if (r < 0) {
                sd_bus_message_unref(m);
                return r;
        }
        *ret = m;
        return 0;
}
