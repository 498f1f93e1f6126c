/* The history section of gpukeeper.yaml(5): how long utilization samples
 * are kept. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/parse.h"
#include "config/loader.h"

/* history section: raw samples kept for raw_hours, then 1-minute rows kept
 * for days. */
#define CONFIG_DEFAULT_HISTORY_RAW_HOURS UINT64_C(48)
#define CONFIG_HISTORY_RAW_HOURS_MAX UINT64_C(720) /* 1 .. 30 days */
#define CONFIG_DEFAULT_HISTORY_DAYS UINT64_C(90)
#define CONFIG_HISTORY_DAYS_MAX UINT64_C(3650) /* 1 .. 10 years */
#define CONFIG_DEFAULT_HISTORY_AUDIT_DAYS UINT64_C(365)

/* The history section. */
typedef struct ConfigHistory {
        uint64_t raw_hours; /* raw samples older than this are rolled up into minutes */
        uint64_t days;      /* minute rows older than this are deleted */
        uint64_t audit_days; /* audit records older than this are deleted */
} ConfigHistory;

/* The section's keys, relative to a ConfigHistory (the root table in config.c
 * reads it into Config.history). */
extern const ConfigKey config_history_table[];
/* Fill in the built-in defaults. Returns 0 or -ENOMEM. */
int config_history_init(ConfigHistory *s);
/* Free what the section holds (not `s` itself). */
void config_history_done(ConfigHistory *s);
