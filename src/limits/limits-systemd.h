/* Per-user limits through systemd, where it is PID 1: one
 * org.freedesktop.systemd1.Manager.SetUnitProperties call on the user's
 * slice "user-UID.slice" with runtime=true (the values live until reboot or
 * the next call; nothing is written to /etc), setting
 *
 *   CPUQuotaPerSecUSec (t)  percent × 10000 µs of CPU time per second
 *   MemoryMax          (t)  bytes
 *   TasksMax           (t)  processes and threads
 *
 * each UINT64_MAX for "infinity", as systemctl set-property sends them. The
 * daemon sends the message asynchronously on its own event loop (sd-bus from
 * libsystemd); this file only builds it. Nothing here logs. */
#pragma once

#include <stddef.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "policy/limits-policy.h"

#define LIMITS_SYSTEMD_USEC_PER_CPU_PERCENT 10000

/* "user-UID.slice". */
void limits_systemd_unit(uid_t uid, char *buf, size_t len);

/* The value of each property for `v` of resource `r`. */
uint64_t limits_systemd_value(PolicyLimitResource r, uint64_t v);

/* The SetUnitProperties call for uid's slice on `bus`. Returns 0 or -errno. */
int limits_systemd_message(sd_bus *bus, uid_t uid, const PolicyUserLimits *limits,
                           sd_bus_message **ret);
