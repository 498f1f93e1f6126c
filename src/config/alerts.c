/* The alerts section: the rules' thresholds, the sinks (URLs, credentials
 * and addresses checked without ever quoting a secret back), and the names
 * of events and sink types. */
#include "config/alerts.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "basic/macro.h"
#include "basic/parse.h"
#include "basic/strv.h"
#include "config/values.h"

static const char *const alert_event_names[_CONFIG_ALERT_MAX] = {
        [CONFIG_ALERT_DAEMON] = "daemon",
        [CONFIG_ALERT_VIOLATION] = "violation",
        [CONFIG_ALERT_PROCESS_STOPPED] = "process_stopped",
        [CONFIG_ALERT_GPU_LOST] = "gpu_lost",
        [CONFIG_ALERT_NVML_ERROR] = "nvml_error",
        [CONFIG_ALERT_XID] = "xid",
        [CONFIG_ALERT_MEMORY] = "memory",
        [CONFIG_ALERT_TEMPERATURE] = "temperature",
        [CONFIG_ALERT_IDLE_WARNING] = "idle_warning",
        [CONFIG_ALERT_IDLE_RECLAIM] = "idle_reclaim",
        [CONFIG_ALERT_IDLE_FLAG] = "idle_flag",
        [CONFIG_ALERT_EXITED_MEMORY] = "exited_memory",
        [CONFIG_ALERT_EXPIRY_WARNING] = "expiry_warning",
};

static const char *const sink_type_names[_CONFIG_SINK_TYPE_MAX] = {
        [CONFIG_SINK_WEBHOOK] = "webhook",
        [CONFIG_SINK_DINGTALK] = "dingtalk",
        [CONFIG_SINK_SLACK] = "slack",
        [CONFIG_SINK_EMAIL] = "email",
};

const char *config_alert_event_to_string(ConfigAlertEvent e)
{
        return (unsigned)e < _CONFIG_ALERT_MAX ? alert_event_names[e] : NULL;
}

int config_alert_event_from_string(const char *s)
{
        assert(s);
        for (int i = 0; i < _CONFIG_ALERT_MAX; i++)
                if (strcmp(alert_event_names[i], s) == 0)
                        return i;
        return -EINVAL;
}

const char *config_alert_sink_type_to_string(ConfigAlertSinkType t)
{
        return (unsigned)t < _CONFIG_SINK_TYPE_MAX ? sink_type_names[t] : NULL;
}

/* One name of a sink's events list, added to the uint32_t mask. */
static int parse_alert_event(const ConfigKey *key, const char *value, void *field,
                             char *problem, size_t problem_len)
{
        uint32_t *mask = field;
        int e = config_alert_event_from_string(value);

        if (e < 0) {
                config_problem_one_of(alert_event_names, _CONFIG_ALERT_MAX, problem, problem_len);
                return -EINVAL;
        }
        if (*mask & (UINT32_C(1) << e)) {
                snprintf(problem, problem_len, "listed more than once");
                return -EINVAL;
        }
        *mask |= UINT32_C(1) << e;
        return 0;
}

static int parse_sink_type(const ConfigKey *key, const char *value, void *field, char *problem,
                           size_t problem_len)
{
        for (int i = 0; i < _CONFIG_SINK_TYPE_MAX; i++)
                if (strcmp(sink_type_names[i], value) == 0) {
                        *(ConfigAlertSinkType *)field = (ConfigAlertSinkType)i;
                        return 0;
                }
        config_problem_one_of(sink_type_names, _CONFIG_SINK_TYPE_MAX, problem, problem_len);
        return -EINVAL;
}

static int parse_sink_name(const ConfigKey *key, const char *value, void *field, char *problem,
                           size_t problem_len)
{
        size_t n = strlen(value);

        if (n == 0 || n > CONFIG_ALERT_SINK_NAME_MAX ||
            value[strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_-")] != '\0') {
                snprintf(problem, problem_len,
                         "must be 1 to %d lower-case letters, digits, '_' or '-'",
                         CONFIG_ALERT_SINK_NAME_MAX);
                return -EINVAL;
        }
        return config_store_string(value, field);
}

/* A URL "SCHEME://HOST..." with one of the two schemes (case-insensitive)
 * and a non-empty authority; stores the authority's length. The problem
 * phrases never repeat the value: URLs carry tokens. */
static int check_url(const char *value, const char *scheme1, const char *scheme2,
                     size_t *ret_authority, char *problem, size_t problem_len)
{
        size_t n = strlen(value), skip = 0, authority;

        if (n > CONFIG_ALERT_URL_MAX) {
                snprintf(problem, problem_len, "is too long (at most %d bytes)",
                         CONFIG_ALERT_URL_MAX);
                return -EINVAL;
        }
        if (config_has_space_or_control(value)) {
                snprintf(problem, problem_len, "must not contain spaces or control characters");
                return -EINVAL;
        }
        if (strncasecmp(value, scheme1, strlen(scheme1)) == 0)
                skip = strlen(scheme1);
        else if (strncasecmp(value, scheme2, strlen(scheme2)) == 0)
                skip = strlen(scheme2);
        authority = skip ? strcspn(value + skip, "/?#") : 0;
        if (authority == 0) {
                snprintf(problem, problem_len, "must be a URL starting with %s or %s and a host",
                         scheme1, scheme2);
                return -EINVAL;
        }
        *ret_authority = skip + authority;
        return 0;
}

static int parse_http_url(const ConfigKey *key, const char *value, void *field, char *problem,
                          size_t problem_len)
{
        size_t end;
        int r = check_url(value, "http://", "https://", &end, problem, problem_len);

        return r < 0 ? r : config_store_string(value, field);
}

/* Credentials go in username and password, where they are kept out of logs
 * and messages; a URL holding them would be logged by whoever prints it. */
static int parse_smtp_url(const ConfigKey *key, const char *value, void *field, char *problem,
                          size_t problem_len)
{
        size_t end;
        int r = check_url(value, "smtp://", "smtps://", &end, problem, problem_len);

        if (r < 0)
                return r;
        if (memchr(value, '@', end)) {
                snprintf(problem, problem_len,
                         "must not contain a user name or password (use the keys username and "
                         "password)");
                return -EINVAL;
        }
        return config_store_string(value, field);
}

/* A signing secret, user name or password: sent verbatim, so no control
 * characters (a CR or LF would end an SMTP command early). */
static int parse_credential(const ConfigKey *key, const char *value, void *field,
                            char *problem, size_t problem_len)
{
        if (value[0] == '\0') {
                snprintf(problem, problem_len, "must not be empty");
                return -EINVAL;
        }
        if (config_has_control_chars(value)) {
                snprintf(problem, problem_len, "must not contain control characters");
                return -EINVAL;
        }
        if (strlen(value) > CONFIG_ALERT_CREDENTIAL_MAX) {
                snprintf(problem, problem_len, "is too long (at most %d bytes)",
                         CONFIG_ALERT_CREDENTIAL_MAX);
                return -EINVAL;
        }
        return config_store_string(value, field);
}

/* A bare address "user@host" for the SMTP envelope and the From/To headers:
 * no display names, quotes, comments or anything else that could change
 * the meaning of a header line. */
static int parse_address(const ConfigKey *key, const char *value, void *field, char *problem,
                         size_t problem_len)
{
        const char *at = strchr(value, '@');

        if (strlen(value) > CONFIG_ALERT_ADDRESS_MAX) {
                snprintf(problem, problem_len, "is too long (at most %d bytes)",
                         CONFIG_ALERT_ADDRESS_MAX);
                return -EINVAL;
        }
        if (!at || at == value || at[1] == '\0' || strchr(at + 1, '@') ||
            config_has_space_or_control(value) || value[strcspn(value, "<>()[]\\,;:\"")] != '\0') {
                snprintf(problem, problem_len,
                         "must be an email address (user@host, without a display name)");
                return -EINVAL;
        }
        return config_store_string(value, field);
}

/* Keys of a sink that only some types use, and which types: a key given to
 * a sink of another type is an error, so that a misplaced key is noticed. */
static const struct {
        const char *key;
        uint32_t types; /* 1u << ConfigAlertSinkType */
        bool required;  /* for those types */
} sink_type_keys[] = {
        {"url", 1u << CONFIG_SINK_WEBHOOK | 1u << CONFIG_SINK_DINGTALK | 1u << CONFIG_SINK_SLACK,
         true},
        {"secret", 1u << CONFIG_SINK_DINGTALK, false},
        {"smtp_url", 1u << CONFIG_SINK_EMAIL, true},
        {"starttls", 1u << CONFIG_SINK_EMAIL, false},
        {"username", 1u << CONFIG_SINK_EMAIL, false},
        {"password", 1u << CONFIG_SINK_EMAIL, false},
        {"from", 1u << CONFIG_SINK_EMAIL, true},
        {"to", 1u << CONFIG_SINK_EMAIL, true},
};

/* Room for "alerts.sinks[INDEX]" and for that plus ".smtp_url". */
#define SINK_PREFIX_MAX 40
#define SINK_NAME_MAX 64

/* The rules of one sink that tie keys together, and its derived defaults. */
static int check_sink(ConfigCheck *check, const ConfigAlerts *a, size_t i)
{
        ConfigAlertSink *s = &a->sinks[i];
        const char *type = config_alert_sink_type_to_string(s->type);
        char prefix[SINK_PREFIX_MAX], key[SINK_NAME_MAX], other[SINK_NAME_MAX];

        snprintf(prefix, sizeof prefix, "alerts.sinks[%zu]", i);

        for (size_t j = 0; j < i; j++)
                if (strcmp(a->sinks[j].name, s->name) == 0) {
                        snprintf(key, sizeof key, "%s.name", prefix);
                        return config_check_error(check, key,
                                                  "duplicate sink name '%s' in '%s' (first "
                                                  "given in 'alerts.sinks[%zu]')",
                                                  s->name, prefix, j);
                }

        for (size_t j = 0; j < ELEMENTSOF(sink_type_keys); j++) {
                bool used = sink_type_keys[j].types & (1u << s->type);

                snprintf(key, sizeof key, "%s.%s", prefix, sink_type_keys[j].key);
                if (!used && config_check_given(check, key))
                        return config_check_error(check, key,
                                                  "'%s' is not used by sinks of type %s", key,
                                                  type);
        }
        for (size_t j = 0; j < ELEMENTSOF(sink_type_keys); j++) {
                bool used = sink_type_keys[j].types & (1u << s->type);

                snprintf(key, sizeof key, "%s.%s", prefix, sink_type_keys[j].key);
                if (used && sink_type_keys[j].required && !config_check_given(check, key))
                        return config_check_error(check, prefix,
                                                  "missing key '%s' (required for sinks of "
                                                  "type %s)",
                                                  key, type);
        }

        snprintf(key, sizeof key, "%s.to", prefix);
        if (s->type == CONFIG_SINK_EMAIL && s->n_to == 0)
                return config_check_error(check, key, "'%s' must list at least one address",
                                          key);

        snprintf(key, sizeof key, "%s.username", prefix);
        snprintf(other, sizeof other, "%s.password", prefix);
        if (config_check_given(check, key) && !config_check_given(check, other))
                return config_check_error(check, key, "'%s' requires '%s'", key, other);
        if (config_check_given(check, other) && !config_check_given(check, key))
                return config_check_error(check, other, "'%s' requires '%s'", other, key);

        snprintf(key, sizeof key, "%s.starttls", prefix);
        if (s->starttls && strncasecmp(s->smtp_url, "smtps://", 8) == 0)
                return config_check_error(check, key,
                                          "'%s' applies to smtp:// URLs only (smtps:// uses TLS "
                                          "from the start)",
                                          key);

        snprintf(key, sizeof key, "%s.events", prefix);
        if (!config_check_given(check, key))
                s->events = CONFIG_ALERT_EVENTS_ALL;
        else if (s->events == 0)
                return config_check_error(check, key,
                                          "'%s' names no event (leave it out for all events)",
                                          key);

        snprintf(key, sizeof key, "%s.timeout", prefix);
        if (!config_check_given(check, key))
                s->timeout_usec = CONFIG_DEFAULT_ALERT_SINK_TIMEOUT_USEC;
        return 0;
}

int config_alerts_check(ConfigCheck *check, void *base, const char *name)
{
        const ConfigAlerts *a = base;
        int r;

        assert(strcmp(name, "alerts") == 0);

        for (size_t i = 0; i < a->n_sinks; i++) {
                r = check_sink(check, a, i);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* One entry of alerts.sinks; offsets are relative to the ConfigAlertSink. */
static const ConfigKey alert_sink_table[] = {
        CONFIG_SCALAR_REQUIRED("name", parse_sink_name, ConfigAlertSink, name, 0, 0),
        CONFIG_SCALAR_REQUIRED("type", parse_sink_type, ConfigAlertSink, type, 0, 0),
        CONFIG_SCALAR_SECRET("url", parse_http_url, ConfigAlertSink, url),
        CONFIG_SCALAR_SECRET("secret", parse_credential, ConfigAlertSink, secret),
        CONFIG_VALUE_SET("events", parse_alert_event, ConfigAlertSink, events, _CONFIG_ALERT_MAX),
        CONFIG_SCALAR("timeout", config_parse_duration, ConfigAlertSink, timeout_usec,
                      CONFIG_ALERT_SINK_TIMEOUT_MIN, CONFIG_ALERT_SINK_TIMEOUT_MAX),
        CONFIG_SCALAR_SECRET("smtp_url", parse_smtp_url, ConfigAlertSink, smtp_url),
        CONFIG_SCALAR("starttls", config_parse_bool, ConfigAlertSink, starttls, 0, 0),
        CONFIG_SCALAR("username", parse_credential, ConfigAlertSink, username, 0, 0),
        CONFIG_SCALAR_SECRET("password", parse_credential, ConfigAlertSink, password),
        CONFIG_SCALAR("from", parse_address, ConfigAlertSink, from, 0, 0),
        CONFIG_VALUES("to", parse_address, ConfigAlertSink, to, n_to, char *,
                      CONFIG_ALERT_MAX_RECIPIENTS),
        CONFIG_END,
};

const ConfigKey config_alerts_table[] = {
        CONFIG_SCALAR("repeat_after", config_parse_duration, ConfigAlerts, repeat_after_usec,
                      CONFIG_ALERT_REPEAT_AFTER_MIN, CONFIG_ALERT_REPEAT_AFTER_MAX),
        CONFIG_SCALAR_DOUBLE("memory_fraction", ConfigAlerts, memory_fraction,
                             CONFIG_ALERT_MEMORY_FRACTION_MIN, CONFIG_ALERT_MEMORY_FRACTION_MAX),
        CONFIG_SCALAR("memory_for", config_parse_duration, ConfigAlerts, memory_for_usec, 0,
                      CONFIG_ALERT_FOR_MAX),
        CONFIG_SCALAR("temperature_c", config_parse_int, ConfigAlerts, temperature_c,
                      CONFIG_ALERT_TEMPERATURE_MIN, CONFIG_ALERT_TEMPERATURE_MAX),
        CONFIG_SCALAR("temperature_for", config_parse_duration, ConfigAlerts,
                      temperature_for_usec, 0, CONFIG_ALERT_FOR_MAX),
        CONFIG_LIST("sinks", alert_sink_table, ConfigAlerts, sinks, n_sinks,
                    ConfigAlertSink, CONFIG_ALERT_MAX_SINKS),
        CONFIG_END,
};

int config_alerts_init(ConfigAlerts *s)
{
        *s = (ConfigAlerts){
                .repeat_after_usec = CONFIG_DEFAULT_ALERT_REPEAT_AFTER_USEC,
                .memory_fraction = CONFIG_DEFAULT_ALERT_MEMORY_FRACTION,
                .memory_for_usec = CONFIG_DEFAULT_ALERT_MEMORY_FOR_USEC,
                .temperature_c = CONFIG_DEFAULT_ALERT_TEMPERATURE_C,
                .temperature_for_usec = CONFIG_DEFAULT_ALERT_TEMPERATURE_FOR_USEC,
        };
        return 0;
}

void config_alerts_done(ConfigAlerts *s)
{
        for (size_t i = 0; i < s->n_sinks; i++)
                config_alert_sink_done(&s->sinks[i]);
        free(s->sinks);
}

void config_alert_sink_done(ConfigAlertSink *s)
{
        free(s->name);
        free(s->url);
        free(s->secret);
        free(s->smtp_url);
        free(s->username);
        free(s->password);
        free(s->from);
        strv_free_n(s->to, s->n_to);
        *s = (ConfigAlertSink){0};
}
