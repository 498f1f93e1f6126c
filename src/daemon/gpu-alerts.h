/* GPU condition alerts: memory above alerts.memory_fraction of the total for
 * alerts.memory_for, temperature at or above alerts.temperature_c for
 * alerts.temperature_for, a lost GPU, an NVML error, a new Xid. Each
 * condition raises once (alerts' repeat_after applies) and sends a recovery
 * when it clears. Evaluated after every sampler tick from the snapshot. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "gpu/inventory.h"

typedef struct Daemon Daemon;

typedef struct GpuAlertState {
        char uuid[GPU_UUID_MAX];
        uint64_t memory_since; /* daemon_boot() since memory is high; 0 = not high */
        uint64_t temperature_since;
        bool memory_raised;
        bool temperature_raised;
        bool lost_raised;
        bool error_raised;
        bool exited_raised; /* memory held by exited processes alerted */
        uint64_t xid_seen; /* last Xid alerted */
} GpuAlertState;

typedef struct GpuAlerts {
        GpuAlertState gpus[GPU_MAX_DEVICES];
        size_t n_gpus;
} GpuAlerts;

void gpu_alerts_tick(Daemon *d);
