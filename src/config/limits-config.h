/* The limits section of gpukeeper.yaml(5): per-user CPU, memory and tasks
 * limits on each user's slice (user-UID.slice), their base values by default
 * and per Unix group, what is added per leased GPU, and how they are applied
 * (systemd over D-Bus, or cgroup files). The values' types are the pure
 * decision's (policy/limits-policy.h). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/loader.h"
#include "policy/limits-policy.h"

/* cpu: 1% .. 100000% (a thousand CPUs); tasks: 1 .. 4194304 (the kernel's
 * pid_max limit); memory: 1M .. 1E. */
#define CONFIG_LIMITS_CPU_MAX UINT64_C(100000)
#define CONFIG_LIMITS_TASKS_MAX UINT64_C(4194304)
#define CONFIG_LIMITS_MEMORY_MIN (UINT64_C(1) << 20)
#define CONFIG_LIMITS_MEMORY_MAX (UINT64_C(1) << 60)
#define CONFIG_LIMITS_MAX_GROUPS 64
#define CONFIG_DEFAULT_LIMITS_CGROUPFS_PARENT "gpukeeper.slice"
#define CONFIG_LIMITS_CGROUPFS_PARENT_MAX 200

typedef enum ConfigLimitsBackend {
        CONFIG_LIMITS_AUTO,     /* systemd when it is PID 1, else cgroupfs */
        CONFIG_LIMITS_SYSTEMD,  /* SetUnitProperties on user-UID.slice over D-Bus */
        CONFIG_LIMITS_CGROUPFS, /* cgroup files under cgroupfs_parent in each hierarchy */
} ConfigLimitsBackend;

typedef struct ConfigLimits {
        bool enabled;          /* the file has a limits section: without one no slice is touched */
        PolicyLimitRules rules; /* default, groups (names unique), per_gpu */
        ConfigLimitsBackend backend;
        char *cgroupfs_parent; /* relative to each cgroup hierarchy's root; never NULL */
} ConfigLimits;

extern const ConfigKey config_limits_table[];
/* Marks the section enabled; refuses infinity in per_gpu. */
int config_limits_check(ConfigCheck *check, void *base, const char *name);
int config_limits_init(ConfigLimits *s);
void config_limits_done(ConfigLimits *s);

const char *config_limits_backend_to_string(ConfigLimitsBackend b);

/* "400%", "64G", "4096", "infinity" (and "-" for unset) into buf. */
void config_limits_format(PolicyLimitResource r, uint64_t v, char *buf, size_t len);
