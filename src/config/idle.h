/* The idle section of gpukeeper.yaml(5): when idle leases are warned about,
 * released or flagged. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/parse.h"
#include "config/loader.h"

/* The idle section. */
#define CONFIG_DEFAULT_IDLE_RELEASE_AFTER_USEC (2 * USEC_PER_HOUR)
#define CONFIG_DEFAULT_IDLE_WARN_BEFORE_USEC (15 * USEC_PER_MINUTE)
#define CONFIG_DEFAULT_IDLE_FLAG_AFTER_USEC (30 * USEC_PER_MINUTE)
#define CONFIG_IDLE_AFTER_MIN USEC_PER_SEC /* release_after, flag_after: 1s .. 30d */
#define CONFIG_IDLE_AFTER_MAX (30 * USEC_PER_DAY)

/* The idle section. */
typedef struct ConfigIdle {
        uint64_t release_after_usec; /* a manual lease with no process and 0% utilization
                                      * this long is released */
        uint64_t warn_before_usec;   /* its holder is warned this long before; <= release_after */
        uint64_t flag_after_usec;    /* a run lease at 0% utilization this long is flagged */
        bool stop_idle_runs;         /* a flagged run lease's command is stopped */
} ConfigIdle;

/* The section's keys, relative to a ConfigIdle (the root table in config.c
 * reads it into Config.idle). */
extern const ConfigKey config_idle_table[];
/* The section's ConfigChecker: rules that tie its keys together. */
int config_idle_check(ConfigCheck *check, void *base, const char *name);
/* Fill in the built-in defaults. Returns 0 or -ENOMEM. */
int config_idle_init(ConfigIdle *s);
/* Free what the section holds (not `s` itself). */
void config_idle_done(ConfigIdle *s);
