/* The alerts section of gpukeeper.yaml(5): thresholds of the GPU alert rules
 * and the sinks alerts are delivered to (src/alerts/). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/parse.h"
#include "config/loader.h"

/* The alerts section. */
#define CONFIG_DEFAULT_ALERT_REPEAT_AFTER_USEC USEC_PER_HOUR
#define CONFIG_DEFAULT_ALERT_MEMORY_FRACTION 0.9
#define CONFIG_DEFAULT_ALERT_MEMORY_FOR_USEC USEC_PER_MINUTE
#define CONFIG_DEFAULT_ALERT_TEMPERATURE_C 85
#define CONFIG_DEFAULT_ALERT_TEMPERATURE_FOR_USEC USEC_PER_MINUTE
#define CONFIG_DEFAULT_ALERT_SINK_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define CONFIG_ALERT_REPEAT_AFTER_MIN USEC_PER_SEC /* repeat_after: 1s .. 30d */
#define CONFIG_ALERT_REPEAT_AFTER_MAX (30 * USEC_PER_DAY)
#define CONFIG_ALERT_MEMORY_FRACTION_MIN 0.01
#define CONFIG_ALERT_MEMORY_FRACTION_MAX 1.0
#define CONFIG_ALERT_FOR_MAX USEC_PER_DAY  /* memory_for, temperature_for: 0 .. 1d */
#define CONFIG_ALERT_TEMPERATURE_MIN 30    /* temperature_c: 30 .. 120 */
#define CONFIG_ALERT_TEMPERATURE_MAX 120
#define CONFIG_ALERT_SINK_TIMEOUT_MIN USEC_PER_SEC /* a sink's timeout: 1s .. 5m */
#define CONFIG_ALERT_SINK_TIMEOUT_MAX (5 * USEC_PER_MINUTE)
#define CONFIG_ALERT_MAX_SINKS 32       /* entries of alerts.sinks */
#define CONFIG_ALERT_SINK_NAME_MAX 32   /* bytes of a sink name */
#define CONFIG_ALERT_MAX_RECIPIENTS 32  /* entries of an email sink's `to` */
#define CONFIG_ALERT_URL_MAX 2048       /* bytes of url and smtp_url */
#define CONFIG_ALERT_ADDRESS_MAX 254    /* bytes of an email address (RFC 5321) */
#define CONFIG_ALERT_CREDENTIAL_MAX 256 /* bytes of secret, username, password */

/* What alerts are about; the names (config_alert_event_to_string) are those
 * of a sink's `events` filter. */
typedef enum ConfigAlertEvent {
        CONFIG_ALERT_DAEMON,          /* "daemon": started, configuration reloaded */
        CONFIG_ALERT_VIOLATION,       /* "violation": a process without a lease detected */
        CONFIG_ALERT_PROCESS_STOPPED, /* "process_stopped": signalled, killed, unkillable */
        CONFIG_ALERT_GPU_LOST,        /* "gpu_lost" */
        CONFIG_ALERT_NVML_ERROR,      /* "nvml_error" */
        CONFIG_ALERT_XID,             /* "xid" */
        CONFIG_ALERT_MEMORY,          /* "memory": memory_fraction exceeded for memory_for */
        CONFIG_ALERT_TEMPERATURE,     /* "temperature": temperature_c reached for temperature_for */
        CONFIG_ALERT_IDLE_WARNING,    /* "idle_warning" */
        CONFIG_ALERT_IDLE_RECLAIM,    /* "idle_reclaim" */
        CONFIG_ALERT_IDLE_FLAG,       /* "idle_flag" */
        CONFIG_ALERT_EXITED_MEMORY,   /* "exited_memory": GPU memory held by exited processes */
        CONFIG_ALERT_EXPIRY_WARNING,  /* "expiry_warning": a manual lease expires soon */
        _CONFIG_ALERT_MAX,
} ConfigAlertEvent;

/* Every event, as a ConfigAlertSink.events mask. */
#define CONFIG_ALERT_EVENTS_ALL ((UINT32_C(1) << _CONFIG_ALERT_MAX) - 1)

/* The event's name in the configuration ("gpu_lost"); NULL when out of range. */
const char *config_alert_event_to_string(ConfigAlertEvent e);
/* The event named `s`, or -EINVAL. */
int config_alert_event_from_string(const char *s);

typedef enum ConfigAlertSinkType {
        CONFIG_SINK_WEBHOOK,
        CONFIG_SINK_DINGTALK,
        CONFIG_SINK_SLACK,
        CONFIG_SINK_EMAIL,
        _CONFIG_SINK_TYPE_MAX,
} ConfigAlertSinkType;

/* The type's name in the configuration ("dingtalk"); NULL when out of range. */
const char *config_alert_sink_type_to_string(ConfigAlertSinkType t);

/* One entry of alerts.sinks. url, secret, smtp_url and password are secrets
 * (URLs of DingTalk and Slack carry tokens): never log them, log the name. */
typedef struct ConfigAlertSink {
        char *name;               /* [a-z0-9_-]{1,32}, unique */
        ConfigAlertSinkType type;
        char *url;                /* webhook, dingtalk, slack: an http:// or https:// URL;
                                   * NULL for email */
        char *secret;             /* dingtalk: signing secret, or NULL */
        uint32_t events;          /* 1u << ConfigAlertEvent; CONFIG_ALERT_EVENTS_ALL when
                                   * not given; never 0 */
        uint64_t timeout_usec;    /* per delivery attempt */
        char *smtp_url;           /* email: smtp:// or smtps:// URL; NULL otherwise */
        bool starttls;            /* email: require STARTTLS on smtp:// */
        char *username;           /* email: optional; set exactly when password is */
        char *password;           /* email: optional */
        char *from;               /* email: the sender address; NULL otherwise */
        char **to;                /* email: at least one recipient address */
        size_t n_to;
} ConfigAlertSink;

/* The alerts section. */
typedef struct ConfigAlerts {
        uint64_t repeat_after_usec;   /* the same condition is not alerted again before this */
        double memory_fraction;       /* GPU memory used above this fraction of the total ... */
        uint64_t memory_for_usec;     /* ... for at least this long */
        int temperature_c;            /* GPU temperature at or above this ... */
        uint64_t temperature_for_usec; /* ... for at least this long */
        ConfigAlertSink *sinks;       /* in file order, names unique */
        size_t n_sinks;               /* at most CONFIG_ALERT_MAX_SINKS */
} ConfigAlerts;

/* The section's keys, relative to a ConfigAlerts (the root table in config.c
 * reads it into Config.alerts). */
extern const ConfigKey config_alerts_table[];
/* The section's ConfigChecker: rules that tie its keys together. */
int config_alerts_check(ConfigCheck *check, void *base, const char *name);
/* Fill in the built-in defaults. Returns 0 or -ENOMEM. */
int config_alerts_init(ConfigAlerts *s);
/* Free what the section holds (not `s` itself). */
void config_alerts_done(ConfigAlerts *s);
/* Free what one sink holds and zero it (also for copies the alert engine keeps). */
void config_alert_sink_done(ConfigAlertSink *s);
