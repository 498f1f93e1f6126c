/* The DingTalk custom-robot sink. Body: the robot's text message,
 *   {"msgtype": "text", "text": {"content": "<title>\n<text>"}}
 * (the title starts with "[gpukeeper@host]", which admins can use as the
 * robot's keyword). With a signing secret, each attempt appends
 *   &timestamp=<ms>&sign=<urlencode(base64(HMAC-SHA256(key=secret, "<ms>\n<secret>")))>
 * to the URL; the timestamp is taken per attempt because DingTalk rejects
 * signatures older than an hour. DingTalk answers 200 even for refusals, so
 * delivery also needs {"errcode": 0} in the answer. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "basic/macro.h"
#include "basic/time-util.h"
#include "alerts/alerts-internal.h"

static int dingtalk_format(const ConfigAlertSink *sink, const AlertsNotice *n, char **ret_payload)
{
        _cleanup_free_ char *title = alerts_title(n), *content = NULL;

        if (!title || asprintf(&content, "%s\n%s", title, n->text) < 0)
                return -ENOMEM;
        return alerts_json_dump(
            json_pack("{s:s, s:{s:s}}", "msgtype", "text", "text", "content", content),
            ret_payload);
}

/* The URL with timestamp and sign appended, as DingTalk's signing scheme wants. */
static int dingtalk_signed_url(CURL *easy, const char *url, const char *secret, char **ret)
{
        _cleanup_free_ char *to_sign = NULL, *b64 = NULL;
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned mac_len = 0;
        long long ts = (long long)(now_usec(CLOCK_REALTIME) / USEC_PER_MSEC);
        char *escaped;
        int r;

        if (asprintf(&to_sign, "%lld\n%s", ts, secret) < 0)
                return -ENOMEM;
        if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)to_sign,
                  strlen(to_sign), mac, &mac_len))
                return -EIO;
        b64 = alerts_base64(mac, mac_len);
        if (!b64)
                return -ENOMEM;
        escaped = curl_easy_escape(easy, b64, 0);
        if (!escaped)
                return -ENOMEM;
        r = asprintf(ret, "%s%ctimestamp=%lld&sign=%s", url, strchr(url, '?') ? '&' : '?', ts, escaped);
        curl_free(escaped);
        return r < 0 ? -ENOMEM : 0;
}

static int dingtalk_prepare(const ConfigAlertSink *sink, CURL *easy, AlertsAttempt *attempt, char **ret_error)
{
        _cleanup_free_ char *url = NULL;
        int r;

        if (!sink->secret || !sink->secret[0])
                return alerts_prepare_json_post(easy, sink->url, attempt);
        r = dingtalk_signed_url(easy, sink->url, sink->secret, &url);
        if (r < 0) {
                *ret_error = strdup("cannot sign the message");
                return r;
        }
        /* curl copies the URL: the signed one (a secret-derived token) is freed here. */
        return alerts_prepare_json_post(easy, url, attempt);
}

static int dingtalk_check(long status, const char *body, size_t body_len, char **ret_error)
{
        _cleanup_free_ char *excerpt = NULL;
        json_t *o, *errcode;
        const char *msg;
        long long code;

        if (status < 200 || status >= 300) {
                if (asprintf(ret_error, "HTTP status %ld", status) < 0)
                        *ret_error = NULL;
                return -EPROTO;
        }
        o = json_loadb(body, body_len, 0, NULL);
        errcode = json_object_get(o, "errcode");
        if (!json_is_integer(errcode)) {
                json_decref(o);
                *ret_error = strdup("answer without errcode");
                return -EPROTO;
        }
        code = json_integer_value(errcode);
        if (code == 0) {
                json_decref(o);
                return 0;
        }
        msg = json_string_value(json_object_get(o, "errmsg")) ?: "";
        excerpt = alerts_excerpt(msg, strlen(msg));
        if (asprintf(ret_error, "DingTalk errcode %lld: %s", code, excerpt ? excerpt : "") < 0)
                *ret_error = NULL;
        json_decref(o);
        return -EPROTO;
}

const AlertsSinkOps alerts_sink_dingtalk = {
        .format = dingtalk_format,
        .prepare = dingtalk_prepare,
        .check = dingtalk_check,
};
