/* What the alert engine (alerts.c) and the sink formats (sink-*.c) share: the
 * facts of one message, and the three operations every sink type provides —
 * render the payload once when the message is queued, set up a curl handle for
 * one attempt, and judge the answer. Not for use outside src/enforce. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include "config/alerts.h"

/* The facts of one message, as raised or cleared. Strings are valid UTF-8
 * (the engine repairs them) and borrowed for the duration of format(). */
typedef struct AlertsNotice {
        ConfigAlertEvent event;
        bool recovery;
        const char *key;
        const char *subject;
        const char *text;
        const char *host;
        json_t *details;        /* may be NULL */
        uint64_t realtime_usec; /* when it was raised/cleared (CLOCK_REALTIME) */
} AlertsNotice;

/* Per-attempt state a sink's prepare() may fill; the engine frees the lists and
 * keeps the struct alive (at a stable address) until the transfer is over. */
typedef struct AlertsAttempt {
        struct curl_slist *headers;
        struct curl_slist *recipients;
        const char *payload;    /* the message's rendered payload (borrowed) */
        size_t payload_len;
        size_t read_offset;     /* for uploads (SMTP) */
} AlertsAttempt;

typedef struct AlertsSinkOps {
        /* Render the payload of `notice` for `sink` into a malloc'd string. */
        int (*format)(const ConfigAlertSink *sink, const AlertsNotice *notice, char **ret_payload);
        /* Configure `easy` for one attempt of delivering attempt->payload to
         * `sink`. Returns 0 or -errno; on failure *ret_error (malloc'd, may stay
         * NULL) says why without naming URLs or secrets. */
        int (*prepare)(const ConfigAlertSink *sink, CURL *easy, AlertsAttempt *attempt, char **ret_error);
        /* Judge a transfer that completed at the protocol level: `status` is the
         * HTTP status (or SMTP reply code), `body` the first bytes of the answer.
         * Returns 0 when delivered, else -EPROTO with *ret_error (malloc'd) set. */
        int (*check)(long status, const char *body, size_t body_len, char **ret_error);
} AlertsSinkOps;

extern const AlertsSinkOps alerts_sink_webhook;
extern const AlertsSinkOps alerts_sink_dingtalk;
extern const AlertsSinkOps alerts_sink_slack;
extern const AlertsSinkOps alerts_sink_email;

/* Shared by the sinks (alerts-format.c). */

/* "critical", "warning" or "info" by event; recoveries are "resolved". */
const char *alerts_severity(const AlertsNotice *notice);

/* RFC 3339 UTC time ("2024-03-05T10:00:00Z") into buf (≥ 21 bytes). */
void alerts_format_rfc3339(uint64_t realtime_usec, char *buf, size_t len);

/* The one-line title people read first: "[gpukeeper@host] subject" or
 * "[gpukeeper@host] RESOLVED: subject". malloc'd, NULL on ENOMEM. */
char *alerts_title(const AlertsNotice *notice);

/* Dump `json` compactly into a malloc'd string, or -ENOMEM. Takes the
 * reference (json_pack()'s result as it is: NULL is -ENOMEM). */
int alerts_json_dump(json_t *json, char **ret);

/* Common HTTP setup for the JSON-posting sinks: POST attempt->payload to `url`
 * with Content-Type: application/json, http/https only, no redirects. */
int alerts_prepare_json_post(CURL *easy, const char *url, AlertsAttempt *attempt);

/* AlertsSinkOps.prepare of a sink that posts its JSON to sink->url as it is. */
int alerts_prepare_url_json(const ConfigAlertSink *sink, CURL *easy, AlertsAttempt *attempt,
                            char **ret_error);

/* Standard base64 (with padding) of data[0..len) into a malloc'd string, or NULL on ENOMEM. */
char *alerts_base64(const void *data, size_t len);

/* Bounded, printable copy of an answer body for error texts: at most 200 bytes,
 * control characters replaced by spaces. malloc'd, NULL on ENOMEM. */
char *alerts_excerpt(const char *body, size_t len);
