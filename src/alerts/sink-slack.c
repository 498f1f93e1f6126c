/* The Slack incoming-webhook sink (also what Mattermost, Rocket.Chat and
 * others accept): {"text": "<title>\n<text>"} with &, < and > escaped as
 * Slack's mrkdwn requires. Slack answers a plain "ok" on success and a 4xx
 * otherwise; Slack-compatible services that answer JSON say {"ok": false}
 * when they refuse, which is a failure too. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "basic/macro.h"
#include "alerts/alerts-internal.h"

/* s with &, <, > replaced by their entities; malloc'd, NULL on ENOMEM. */
static char *slack_escape(const char *s)
{
        size_t len = strlen(s), o = 0;
        char *out = malloc(len * 5 + 1);

        if (!out)
                return NULL;
        for (const char *p = s; *p; p++) {
                const char *e = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : NULL;

                if (e) {
                        memcpy(out + o, e, strlen(e));
                        o += strlen(e);
                } else
                        out[o++] = *p;
        }
        out[o] = '\0';
        return out;
}

static int slack_format(const ConfigAlertSink *sink, const AlertsNotice *n, char **ret_payload)
{
        _cleanup_free_ char *title = alerts_title(n), *raw = NULL, *text = NULL;

        if (!title || asprintf(&raw, "%s\n%s", title, n->text) < 0)
                return -ENOMEM;
        text = slack_escape(raw);
        if (!text)
                return -ENOMEM;
        return alerts_json_dump(json_pack("{s:s}", "text", text), ret_payload);
}

static int slack_check(long status, const char *body, size_t body_len, char **ret_error)
{
        _cleanup_free_ char *excerpt = NULL;
        json_t *o, *ok;

        if (status < 200 || status >= 300) {
                excerpt = alerts_excerpt(body, body_len);
                if (asprintf(ret_error, "HTTP status %ld: %s", status, excerpt ? excerpt : "") < 0)
                        *ret_error = NULL;
                return -EPROTO;
        }
        o = json_loadb(body, body_len, 0, NULL);
        ok = json_object_get(o, "ok");
        if (json_is_false(ok)) {
                const char *e = json_string_value(json_object_get(o, "error")) ?: "";

                excerpt = alerts_excerpt(e, strlen(e));
                if (asprintf(ret_error, "refused: %s", excerpt ? excerpt : "") < 0)
                        *ret_error = NULL;
                json_decref(o);
                return -EPROTO;
        }
        json_decref(o);
        return 0;
}

const AlertsSinkOps alerts_sink_slack = {
        .format = slack_format,
        .prepare = alerts_prepare_url_json,
        .check = slack_check,
};
