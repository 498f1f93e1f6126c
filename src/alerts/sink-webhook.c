/* The generic webhook sink: POSTs one JSON object per message,
 *   {"event", "severity", "status", "subject", "text", "host", "time", "key", "details"}
 * where status is "firing" or "resolved", time is RFC 3339 UTC and details
 * the object the daemon attached ({} when none). Any 2xx answer is delivery. */
#include <errno.h>
#include <stdio.h>

#include "basic/macro.h"
#include "alerts/alerts-internal.h"

static int webhook_format(const ConfigAlertSink *sink, const AlertsNotice *n, char **ret_payload)
{
        json_t *o;
        char time[32];

        alerts_format_rfc3339(n->realtime_usec, time, sizeof(time));
        o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O*}",
                      "event", config_alert_event_to_string(n->event),
                      "severity", alerts_severity(n),
                      "status", n->recovery ? "resolved" : "firing",
                      "subject", n->subject,
                      "text", n->text,
                      "host", n->host,
                      "time", time,
                      "key", n->key,
                      "details", n->details);
        if (o && !json_object_get(o, "details") &&
            json_object_set_new(o, "details", json_object()) < 0)
                json_decref(TAKE_PTR(o));
        return alerts_json_dump(o, ret_payload);
}

static int webhook_check(long status, const char *body, size_t body_len, char **ret_error)
{
        if (status >= 200 && status < 300)
                return 0;
        if (asprintf(ret_error, "HTTP status %ld", status) < 0)
                *ret_error = NULL;
        return -EPROTO;
}

const AlertsSinkOps alerts_sink_webhook = {
        .format = webhook_format,
        .prepare = alerts_prepare_url_json,
        .check = webhook_check,
};
