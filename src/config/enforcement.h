/* The enforcement section of gpukeeper.yaml(5): what happens to processes
 * that use a device their owner holds no lease on, and who is exempt. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/parse.h"
#include "config/loader.h"

/* The enforcement section. */
#define CONFIG_DEFAULT_ENFORCEMENT_GRACE_USEC (60 * USEC_PER_SEC)
#define CONFIG_DEFAULT_KILL_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define CONFIG_ENFORCEMENT_GRACE_MIN USEC_PER_SEC /* grace: 1s .. 1d */
#define CONFIG_ENFORCEMENT_GRACE_MAX USEC_PER_DAY
#define CONFIG_KILL_TIMEOUT_MIN USEC_PER_SEC /* kill_timeout: 1s .. 1h */
#define CONFIG_KILL_TIMEOUT_MAX USEC_PER_HOUR
#define CONFIG_EXEMPT_MAX 256       /* entries of exempt.users, and of exempt.executables */
#define CONFIG_USER_NAME_MAX 32     /* bytes of a user name in exempt.users */

typedef enum ConfigEnforcementMode {
        CONFIG_ENFORCEMENT_OBSERVE, /* detect and report violations, signal nothing */
        CONFIG_ENFORCEMENT_ENFORCE, /* SIGTERM after grace, SIGKILL after kill_timeout */
        CONFIG_ENFORCEMENT_STRICT,  /* enforce, and the kernel fence (src/isolate) */
} ConfigEnforcementMode;

/* Strict mode's defaults: the fence covers the whole cgroup2 hierarchy
 * (fence_cgroup empty: the root of the cgroup2 mount, found at start). */
#define CONFIG_DEFAULT_FENCE_PIN_DIR "/sys/fs/bpf/gpukeeper"
#define CONFIG_DEFAULT_MIG_MINORS "/proc/driver/nvidia-caps/mig-minors"
#define CONFIG_DEFAULT_PROC_DEVICES "/proc/devices"

/* The enforcement section: what happens to processes that use a device
 * their owner holds no lease on. */
typedef struct ConfigEnforcement {
        ConfigEnforcementMode mode;
        uint64_t grace_usec;        /* from detection to SIGTERM */
        uint64_t kill_timeout_usec; /* from SIGTERM to SIGKILL */
        bool root_exempt;           /* processes of uid 0 are never violations */
        char **exempt_users;        /* as written: user names, or uids in decimal */
        size_t n_exempt_users;
        char **exempt_executables;  /* normalized absolute paths, compared with /proc/PID/exe */
        size_t n_exempt_executables;
        char *fence_cgroup;  /* strict mode: where the fence attaches; NULL = the cgroup2 root */
        char *fence_pin_dir; /* strict mode: bpffs directory of the pinned program and maps */
        char *mig_minors;    /* /proc/driver/nvidia-caps/mig-minors format */
        char *proc_devices;  /* /proc/devices format (the nvidia-caps major) */
} ConfigEnforcement;

/* The section's keys, relative to a ConfigEnforcement (the root table in config.c
 * reads it into Config.enforcement). */
extern const ConfigKey config_enforcement_table[];
/* Fill in the built-in defaults. Returns 0 or -ENOMEM. */
int config_enforcement_init(ConfigEnforcement *s);
/* Free what the section holds (not `s` itself). */
void config_enforcement_done(ConfigEnforcement *s);
