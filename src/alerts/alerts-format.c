/* Pieces every alert format shares: severities, timestamps, the title line,
 * JSON dumping, base64, the JSON POST setup of the HTTP sinks, and safe
 * excerpts of answers for error texts. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "basic/macro.h"
#include "basic/time-util.h"
#include "alerts/alerts-internal.h"

const char *alerts_severity(const AlertsNotice *notice)
{
        if (notice->recovery)
                return "resolved";
        switch (notice->event) {
        case CONFIG_ALERT_GPU_LOST:
        case CONFIG_ALERT_NVML_ERROR:
        case CONFIG_ALERT_XID:
                return "critical";
        case CONFIG_ALERT_DAEMON:
                return "info";
        default:
                return "warning";
        }
}

void alerts_format_rfc3339(uint64_t realtime_usec, char *buf, size_t len)
{
        time_t t = (time_t)(realtime_usec / USEC_PER_SEC);
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, len, "1970-01-01T00:00:00Z");
}

char *alerts_title(const AlertsNotice *notice)
{
        char *s;

        if (asprintf(&s, "[gpukeeper@%s] %s%s", notice->host, notice->recovery ? "RESOLVED: " : "",
                     notice->subject) < 0)
                return NULL;
        return s;
}

int alerts_json_dump(json_t *json, char **ret)
{
        char *s = json ? json_dumps(json, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

        json_decref(json);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int alerts_prepare_url_json(const ConfigAlertSink *sink, CURL *easy, AlertsAttempt *attempt,
                            char **ret_error)
{
        return alerts_prepare_json_post(easy, sink->url, attempt);
}

int alerts_prepare_json_post(CURL *easy, const char *url, AlertsAttempt *attempt)
{
        struct curl_slist *h;

        h = curl_slist_append(NULL, "Content-Type: application/json; charset=utf-8");
        if (h) {
                /* No "Expect: 100-continue" round trip for small bodies. */
                struct curl_slist *h2 = curl_slist_append(h, "Expect:");
                if (!h2)
                        curl_slist_free_all(h);
                h = h2;
        }
        if (!h)
                return -ENOMEM;
        attempt->headers = h;

        if (curl_easy_setopt(easy, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_HTTPHEADER, h) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_POST, 1L) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_POSTFIELDS, attempt->payload) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)attempt->payload_len) != CURLE_OK)
                return -EINVAL;
        return 0;
}

char *alerts_base64(const void *data, size_t len)
{
        char *out;

        if (len > INT_MAX / 2)
                return NULL;
        out = malloc((len + 2) / 3 * 4 + 1);
        if (!out)
                return NULL;
        EVP_EncodeBlock((unsigned char *)out, data, (int)len);
        return out;
}

char *alerts_excerpt(const char *body, size_t len)
{
        size_t n = MIN(len, (size_t)200);
        char *s = malloc(n + 1);

        if (!s)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)body[i];
                s[i] = c < 0x20 || c == 0x7F ? ' ' : (char)c;
        }
        s[n] = '\0';
        return s;
}
