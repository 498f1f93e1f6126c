/* The email sink: one RFC 5322 message per alert over SMTP (libcurl), with
 * Date, From, To, Subject (RFC 2047 encoded when not ASCII), Message-ID and a
 * text/plain UTF-8 body (base64 when not 7-bit clean). The envelope (MAIL
 * FROM / RCPT TO) takes the bare addresses of `from` and `to`. With
 * starttls: true, an smtp:// server that does not offer STARTTLS fails the
 * attempt (CURLUSESSL_ALL) rather than receiving the message in clear;
 * smtps:// is TLS from the first byte. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "basic/macro.h"
#include "basic/time-util.h"
#include "alerts/alerts-internal.h"

/* Longest line of a 7bit body; longer lines (RFC 5321 allows 998) go base64. */
#define EMAIL_LINE_MAX 990

/* A growing string; all appends are no-ops after a failed allocation. */
typedef struct Buf {
        char *s;
        size_t len, cap;
        bool oom;
} Buf;

static void buf_add(Buf *b, const char *s, size_t len)
{
        if (b->oom)
                return;
        if (b->len + len + 1 > b->cap) {
                size_t cap = MAX(b->cap * 2, b->len + len + 1);
                char *n = realloc(b->s, MAX(cap, (size_t)256));

                if (!n) {
                        b->oom = true;
                        return;
                }
                b->s = n;
                b->cap = MAX(cap, (size_t)256);
        }
        memcpy(b->s + b->len, s, len);
        b->len += len;
        b->s[b->len] = '\0';
}

static void buf_puts(Buf *b, const char *s)
{
        buf_add(b, s, strlen(s));
}

/* A header value from the configuration, with control characters (CR, LF above
 * all: header injection) replaced by spaces. */
static void buf_header_value(Buf *b, const char *s)
{
        for (; *s; s++) {
                char c = (unsigned char)*s < 0x20 || *s == 0x7F ? ' ' : *s;
                buf_add(b, &c, 1);
        }
}

static bool is_7bit_printable(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s >= 0x7F || (unsigned char)*s < 0x20)
                        return false;
        return true;
}

/* Subject as one or more RFC 2047 encoded words, each ≤ 75 characters and cut
 * on UTF-8 character boundaries, folded onto continuation lines. */
static void buf_encoded_words(Buf *b, const char *s)
{
        size_t len = strlen(s), i = 0;

        while (i < len) {
                size_t n = MIN(len - i, (size_t)45); /* 45 bytes → 60 base64 characters */
                _cleanup_free_ char *enc = NULL;

                while (i + n < len && n > 0 && ((unsigned char)s[i + n] & 0xC0) == 0x80)
                        n--;
                enc = alerts_base64(s + i, n);
                if (!enc) {
                        b->oom = true;
                        return;
                }
                if (i > 0)
                        buf_puts(b, "\r\n ");
                buf_puts(b, "=?UTF-8?B?");
                buf_puts(b, enc);
                buf_puts(b, "?=");
                i += n;
        }
}

/* `text` with every line ending made CRLF and other control characters
 * (tab excepted) dropped, as SMTP DATA wants. */
static void buf_crlf_text(Buf *b, const char *text)
{
        for (const char *p = text; *p; p++) {
                if (*p == '\n')
                        buf_puts(b, "\r\n");
                else if (*p == '\t' || ((unsigned char)*p >= 0x20 && *p != 0x7F))
                        buf_add(b, p, 1);
        }
}

static bool body_needs_base64(const char *body)
{
        size_t line = 0;

        for (const char *p = body; *p; p++) {
                if ((unsigned char)*p >= 0x80)
                        return true;
                line = *p == '\n' ? 0 : line + 1;
                if (line > EMAIL_LINE_MAX)
                        return true;
        }
        return false;
}

/* RFC 5322 date in UTC: "Tue, 05 Mar 2024 10:00:00 +0000", never localised. */
static void email_date(uint64_t realtime_usec, char *buf, size_t len)
{
        static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
        static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
        time_t t = (time_t)(realtime_usec / USEC_PER_SEC);
        struct tm tm;

        if (!gmtime_r(&t, &tm))
                tm = (struct tm){ .tm_mday = 1, .tm_year = 70, .tm_wday = 4 };
        snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
                 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Message-ID <usec.random@host>, host reduced to what a domain may hold. */
static void buf_message_id(Buf *b, const AlertsNotice *n)
{
        uint64_t rnd = 0;
        char tmp[64];
        bool any = false;

        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
                rnd = now_usec(CLOCK_MONOTONIC);
        snprintf(tmp, sizeof(tmp), "<%llu.%016llx@", (unsigned long long)n->realtime_usec,
                 (unsigned long long)rnd);
        buf_puts(b, tmp);
        for (const char *p = n->host; *p; p++)
                if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                    *p == '.' || *p == '-') {
                        buf_add(b, p, 1);
                        any = true;
                }
        if (!any)
                buf_puts(b, "localhost");
        buf_puts(b, ">");
}

/* The human-readable body: text, then the facts, then the details as JSON. */
static char *email_body(const AlertsNotice *n)
{
        _cleanup_free_ char *details = NULL;
        char time[32];
        char *body;

        alerts_format_rfc3339(n->realtime_usec, time, sizeof(time));
        if (n->details) {
                details = json_dumps(n->details, JSON_INDENT(2) | JSON_SORT_KEYS);
                if (!details)
                        return NULL;
        }
        if (asprintf(&body, "%s\n\nHost: %s\nEvent: %s\nSeverity: %s\nTime: %s\nKey: %s\n%s%s%s-- \ngpukeeper\n",
                     n->text, n->host, config_alert_event_to_string(n->event), alerts_severity(n), time,
                     n->key, details ? "\nDetails:\n" : "", details ? details : "", details ? "\n\n" : "\n") < 0)
                return NULL;
        return body;
}

static int email_format(const ConfigAlertSink *sink, const AlertsNotice *n, char **ret_payload)
{
        _cleanup_free_ char *title = alerts_title(n), *body = NULL;
        Buf b = {};
        char date[128];

        if (!title)
                return -ENOMEM;
        body = email_body(n);
        if (!body)
                return -ENOMEM;

        email_date(n->realtime_usec, date, sizeof(date));
        buf_puts(&b, "Date: ");
        buf_puts(&b, date);
        buf_puts(&b, "\r\nFrom: ");
        buf_header_value(&b, sink->from);
        buf_puts(&b, "\r\nTo: ");
        for (size_t i = 0; i < sink->n_to; i++) {
                if (i > 0)
                        buf_puts(&b, ",\r\n ");
                buf_header_value(&b, sink->to[i]);
        }
        buf_puts(&b, "\r\nSubject: ");
        if (is_7bit_printable(title))
                buf_puts(&b, title);
        else
                buf_encoded_words(&b, title);
        buf_puts(&b, "\r\nMessage-ID: ");
        buf_message_id(&b, n);
        buf_puts(&b, "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n");
        buf_puts(&b, "X-Gpukeeper-Event: ");
        buf_puts(&b, config_alert_event_to_string(n->event));
        buf_puts(&b, n->recovery ? "\r\nX-Gpukeeper-Status: resolved\r\n" : "\r\nX-Gpukeeper-Status: firing\r\n");
        if (body_needs_base64(body)) {
                _cleanup_free_ char *enc = NULL;
                Buf crlf = {};

                buf_crlf_text(&crlf, body);
                if (crlf.oom) {
                        free(crlf.s);
                        free(b.s);
                        return -ENOMEM;
                }
                enc = alerts_base64(crlf.s, crlf.len);
                free(crlf.s);
                if (!enc) {
                        free(b.s);
                        return -ENOMEM;
                }
                buf_puts(&b, "Content-Transfer-Encoding: base64\r\n\r\n");
                for (size_t i = 0, len = strlen(enc); i < len; i += 76) {
                        buf_add(&b, enc + i, MIN((size_t)76, len - i));
                        buf_puts(&b, "\r\n");
                }
        } else {
                buf_puts(&b, "Content-Transfer-Encoding: 7bit\r\n\r\n");
                buf_crlf_text(&b, body);
        }
        if (b.oom) {
                free(b.s);
                return -ENOMEM;
        }
        *ret_payload = b.s;
        return 0;
}

/* The bare address of "Name <addr>" or "addr", for the SMTP envelope. */
static char *envelope_address(const char *s)
{
        const char *lt = strrchr(s, '<'), *gt = lt ? strchr(lt, '>') : NULL;

        if (lt && gt)
                return strndup(lt + 1, (size_t)(gt - lt - 1));
        return strdup(s);
}

static size_t email_read(char *buf, size_t size, size_t nitems, void *userdata)
{
        AlertsAttempt *a = userdata;
        size_t n = MIN(size * nitems, a->payload_len - a->read_offset);

        memcpy(buf, a->payload + a->read_offset, n);
        a->read_offset += n;
        return n;
}

static int email_prepare(const ConfigAlertSink *sink, CURL *easy, AlertsAttempt *attempt, char **ret_error)
{
        _cleanup_free_ char *from = envelope_address(sink->from);

        if (!from)
                return -ENOMEM;
        for (size_t i = 0; i < sink->n_to; i++) {
                _cleanup_free_ char *rcpt = envelope_address(sink->to[i]);
                struct curl_slist *l;

                if (!rcpt)
                        return -ENOMEM;
                l = curl_slist_append(attempt->recipients, rcpt);
                if (!l)
                        return -ENOMEM;
                attempt->recipients = l;
        }

        if (curl_easy_setopt(easy, CURLOPT_URL, sink->smtp_url) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps") != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_MAIL_FROM, from) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_MAIL_RCPT, attempt->recipients) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_READFUNCTION, email_read) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_READDATA, attempt) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)attempt->payload_len) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_USE_SSL, (long)(sink->starttls ? CURLUSESSL_ALL : CURLUSESSL_NONE)) != CURLE_OK)
                return -EINVAL;
        if (sink->username &&
            (curl_easy_setopt(easy, CURLOPT_USERNAME, sink->username) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_PASSWORD, sink->password ? sink->password : "") != CURLE_OK))
                return -EINVAL;
        return 0;
}

static int email_check(long status, const char *body, size_t body_len, char **ret_error)
{
        /* curl reports CURLE_OK only after the server accepted the data (250). */
        return 0;
}

const AlertsSinkOps alerts_sink_email = {
        .format = email_format,
        .prepare = email_prepare,
        .check = email_check,
};
