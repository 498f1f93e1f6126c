/* Alert delivery against real receivers on 127.0.0.1: an HTTP server thread in
 * this test captures webhook, DingTalk and Slack requests (bodies checked
 * against their documented shapes, the DingTalk signature recomputed), and
 * Debian's aiosmtpd (smtp-receiver.py) receives the emails. An sd-event loop
 * runs the engine exactly as the daemon does. */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "basic/macro.h"
#include "basic/time-util.h"
#include "alerts/alerts.h"

extern char **environ;

#define HOST "testhost"
#define MAX_CAPTURED 64
#define MAX_RECORDS 256

/* ---- a minimal HTTP/1.1 receiver on its own thread ---- */

typedef struct Captured {
        char *target;
        char *headers;
        char *body;
} Captured;

typedef struct HttpServer {
        int fd;
        uint16_t port;
        int stop[2];
        pthread_t thread;
        pthread_mutex_t lock;
        bool hang;              /* accept and read, never answer */
        char reply_status[64];
        char reply_body[256];
        Captured reqs[MAX_CAPTURED];
        size_t n_reqs;
        int hung[MAX_CAPTURED];
        size_t n_hung;
} HttpServer;

static char *read_request(int fd, char **ret_headers, char **ret_target)
{
        size_t cap = 65536, len = 0, need = SIZE_MAX, hdr_end = 0;
        char *buf = malloc(cap + 1);

        assert_non_null(buf);
        while (len < need && len < cap) {
                ssize_t n = read(fd, buf + len, cap - len);
                if (n <= 0)
                        break;
                len += (size_t)n;
                buf[len] = '\0';
                if (need == SIZE_MAX) {
                        char *e = strstr(buf, "\r\n\r\n");
                        if (e) {
                                const char *cl = strcasestr(buf, "\r\nContent-Length:");
                                hdr_end = (size_t)(e - buf) + 4;
                                need = hdr_end + (cl && cl < e ? strtoul(cl + 17, NULL, 10) : 0);
                        }
                }
        }
        buf[len] = '\0';
        if (hdr_end == 0) {
                free(buf);
                return NULL;
        }
        *ret_headers = strndup(buf, hdr_end);
        {
                const char *sp = strchr(buf, ' '), *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
                *ret_target = sp && sp2 ? strndup(sp + 1, (size_t)(sp2 - sp - 1)) : strdup("");
        }
        char *body = strdup(buf + hdr_end);
        free(buf);
        return body;
}

static void *http_thread(void *userdata)
{
        HttpServer *s = userdata;

        for (;;) {
                struct pollfd p[2] = { { .fd = s->fd, .events = POLLIN }, { .fd = s->stop[0], .events = POLLIN } };
                struct timeval tv = { .tv_sec = 5 };
                char *headers = NULL, *target = NULL, *body;
                int c;

                if (poll(p, 2, -1) < 0 || (p[1].revents & POLLIN))
                        return NULL;
                c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0)
                        continue;
                setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                body = read_request(c, &headers, &target);
                pthread_mutex_lock(&s->lock);
                if (body && s->n_reqs < MAX_CAPTURED)
                        s->reqs[s->n_reqs++] = (Captured){ .target = target, .headers = headers, .body = body };
                else {
                        free(body);
                        free(headers);
                        free(target);
                }
                if (s->hang && s->n_hung < MAX_CAPTURED)
                        s->hung[s->n_hung++] = c;
                else {
                        char resp[512];
                        int n = snprintf(resp, sizeof(resp),
                                         "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                                         "Connection: close\r\n\r\n%s",
                                         s->reply_status, strlen(s->reply_body), s->reply_body);
                        assert_true(write(c, resp, (size_t)n) == n);
                        close(c);
                }
                pthread_mutex_unlock(&s->lock);
        }
}

static void http_server_start(HttpServer *s, uint16_t port, const char *status, const char *body)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t alen = sizeof(a);
        int one = 1;

        *s = (HttpServer){};
        pthread_mutex_init(&s->lock, NULL);
        snprintf(s->reply_status, sizeof(s->reply_status), "%s", status);
        snprintf(s->reply_body, sizeof(s->reply_body), "%s", body);
        s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(s->fd >= 0);
        setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(listen(s->fd, 64), 0);
        assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &alen), 0);
        s->port = ntohs(a.sin_port);
        assert_int_equal(pipe2(s->stop, O_CLOEXEC), 0);
        assert_int_equal(pthread_create(&s->thread, NULL, http_thread, s), 0);
}

static void http_server_set_hang(HttpServer *s, bool hang)
{
        pthread_mutex_lock(&s->lock);
        s->hang = hang;
        if (!hang) {
                /* Let go of the held connections: curl sees them end without an answer. */
                for (size_t i = 0; i < s->n_hung; i++)
                        close(s->hung[i]);
                s->n_hung = 0;
        }
        pthread_mutex_unlock(&s->lock);
}

static size_t http_server_count(HttpServer *s)
{
        size_t n;

        pthread_mutex_lock(&s->lock);
        n = s->n_reqs;
        pthread_mutex_unlock(&s->lock);
        return n;
}

static void http_server_stop(HttpServer *s)
{
        assert_int_equal(write(s->stop[1], "x", 1), 1);
        pthread_join(s->thread, NULL);
        close(s->fd);
        close(s->stop[0]);
        close(s->stop[1]);
        for (size_t i = 0; i < s->n_hung; i++)
                close(s->hung[i]);
        for (size_t i = 0; i < s->n_reqs; i++) {
                free(s->reqs[i].target);
                free(s->reqs[i].headers);
                free(s->reqs[i].body);
        }
        pthread_mutex_destroy(&s->lock);
}

/* A loopback port nothing listens on (bound and released at once). */
static uint16_t free_port(void)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t alen = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
        close(fd);
        return ntohs(a.sin_port);
}

/* ---- the engine under test, its records, and the loop ---- */

typedef struct Rec {
        char sink[40];
        ConfigAlertEvent event;
        char key[64];
        bool recovery, ok, final;
        unsigned attempt;
        char error[256];
        uint64_t at;
} Rec;

typedef struct Smtp {
        pid_t pid;
        char dir[64];
        uint16_t port;
} Smtp;

/* Per test: the loop, the records, and the SMTP receivers (stopped in
 * teardown, so a failed assertion leaves no process behind). */
typedef struct T {
        sd_event *e;
        Smtp smtp[2];
        size_t n_smtp;
        Rec recs[MAX_RECORDS];
        size_t n_recs;
} T;

static void on_record(const AlertsRecord *r, void *userdata)
{
        T *t = userdata;
        Rec *c;

        assert_true(t->n_recs < MAX_RECORDS);
        c = &t->recs[t->n_recs++];
        *c = (Rec){ .event = r->event, .recovery = r->recovery, .ok = r->ok, .final = r->final,
                    .attempt = r->attempt, .at = now_usec(CLOCK_MONOTONIC) };
        snprintf(c->sink, sizeof(c->sink), "%s", r->sink);
        snprintf(c->key, sizeof(c->key), "%s", r->key);
        if (r->error)
                snprintf(c->error, sizeof(c->error), "%s", r->error);
        assert_true(r->ok == (r->error == NULL));
}

static size_t count_recs(T *t, const char *sink, bool ok)
{
        size_t n = 0;

        for (size_t i = 0; i < t->n_recs; i++)
                n += strcmp(t->recs[i].sink, sink) == 0 && t->recs[i].ok == ok;
        return n;
}

#define RUN_UNTIL(t, cond, ms)                                                                     \
        ({                                                                                         \
                uint64_t _deadline = now_usec(CLOCK_MONOTONIC) + (uint64_t)(ms) * 1000;           \
                while (!(cond) && now_usec(CLOCK_MONOTONIC) < _deadline)                          \
                        assert_true(sd_event_run((t)->e, 5000) >= 0);                              \
                (cond);                                                                            \
        })

static int setup(void **state)
{
        T *t = calloc(1, sizeof(T));

        assert_non_null(t);
        assert_int_equal(sd_event_new(&t->e), 0);
        *state = t;
        return 0;
}

static void smtp_stop(Smtp *s);

static int teardown(void **state)
{
        T *t = *state;

        for (size_t i = 0; i < t->n_smtp; i++)
                smtp_stop(&t->smtp[i]);

        sd_event_unref(t->e);
        free(t);
        return 0;
}

static ConfigAlertSink http_sink(const char *name, ConfigAlertSinkType type, char *url)
{
        return (ConfigAlertSink){ .name = (char *)name, .type = type, .url = url,
                                  .events = CONFIG_ALERT_EVENTS_ALL, .timeout_usec = 5 * USEC_PER_SEC };
}

static const AlertsTuning fast_tuning = {
        .backoff_base_usec = 50 * USEC_PER_MSEC,
        .backoff_max_usec = 200 * USEC_PER_MSEC,
        .max_attempts = 8,
        .queue_max = 1000,
};

static json_t *body_json(HttpServer *s, size_t i)
{
        json_t *j = json_loads(s->reqs[i].body, 0, NULL);

        assert_non_null(j);
        return j;
}

/* ---- tests ---- */

static void test_webhook_shape(void **state)
{
        T *t = *state;
        HttpServer srv;
        char url[128];
        _cleanup_(alerts_freep) Alerts *a = NULL;
        AlertsSinkStats st;
        json_t *details, *j;
        regex_t re;

        http_server_start(&srv, 0, "200 OK", "");
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/hook", srv.port);
        ConfigAlertSink sinks[] = { http_sink("ops", CONFIG_SINK_WEBHOOK, url) };
        ConfigAlerts cfg = { .repeat_after_usec = USEC_PER_HOUR, .sinks = sinks, .n_sinks = 1 };

        assert_int_equal(alerts_new(t->e, &cfg, HOST, NULL, on_record, t, &a), 0);
        details = json_pack("{s:i, s:s}", "pid", 4242, "gpu", "GPU-abc");
        assert_int_equal(alerts_raise(a, CONFIG_ALERT_VIOLATION, "pid:4242", "bob uses GPU 1",
                                      "bob's python has no lease on GPU 1", details),
                         1);
        json_decref(details);
        assert_true(alerts_busy(a));
        assert_true(RUN_UNTIL(t, count_recs(t, "ops", true) == 1, 5000));
        assert_false(alerts_busy(a));

        assert_int_equal(http_server_count(&srv), 1);
        assert_string_equal(srv.reqs[0].target, "/hook");
        assert_non_null(strcasestr(srv.reqs[0].headers, "Content-Type: application/json"));
        assert_non_null(strstr(srv.reqs[0].headers, "POST /hook HTTP/1.1"));
        j = body_json(&srv, 0);
        assert_int_equal(json_object_size(j), 9);
        assert_string_equal(json_string_value(json_object_get(j, "event")), "violation");
        assert_string_equal(json_string_value(json_object_get(j, "severity")), "warning");
        assert_string_equal(json_string_value(json_object_get(j, "status")), "firing");
        assert_string_equal(json_string_value(json_object_get(j, "subject")), "bob uses GPU 1");
        assert_string_equal(json_string_value(json_object_get(j, "text")), "bob's python has no lease on GPU 1");
        assert_string_equal(json_string_value(json_object_get(j, "host")), HOST);
        assert_string_equal(json_string_value(json_object_get(j, "key")), "pid:4242");
        assert_int_equal(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$", REG_EXTENDED), 0);
        assert_int_equal(regexec(&re, json_string_value(json_object_get(j, "time")), 0, NULL, 0), 0);
        regfree(&re);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "details"), "pid")), 4242);
        assert_string_equal(json_string_value(json_object_get(json_object_get(j, "details"), "gpu")), "GPU-abc");
        json_decref(j);

        /* Without details the member is an empty object; invalid UTF-8 is repaired. */
        assert_int_equal(alerts_raise(a, CONFIG_ALERT_GPU_LOST, "GPU-abc", "GPU 0 lost \xff", "gone", NULL), 1);
        assert_true(RUN_UNTIL(t, count_recs(t, "ops", true) == 2, 5000));
        j = body_json(&srv, 1);
        assert_true(json_is_object(json_object_get(j, "details")));
        assert_int_equal(json_object_size(json_object_get(j, "details")), 0);
        assert_string_equal(json_string_value(json_object_get(j, "severity")), "critical");
        assert_string_equal(json_string_value(json_object_get(j, "subject")), "GPU 0 lost \xEF\xBF\xBD");
        json_decref(j);

        assert_int_equal(t->recs[0].attempt, 1);
        assert_true(t->recs[0].final);
        assert_int_equal(t->recs[0].event, CONFIG_ALERT_VIOLATION);
        assert_int_equal(alerts_n_sinks(a), 1);
        assert_int_equal(alerts_sink_stats(a, 0, &st), 0);
        assert_string_equal(st.name, "ops");
        assert_int_equal(st.sent, 2);
        assert_int_equal(st.failed + st.dropped + st.attempts_failed + st.queued, 0);
        assert_int_equal(alerts_sink_stats(a, 1, &st), -ENOENT);
        a = alerts_free(a);
        http_server_stop(&srv);
}

/* DingTalk's sign: urlencode(base64(HMAC-SHA256(secret, "<ts>\n<secret>"))). */
static void check_dingtalk_sign(const char *target, const char *secret)
{
        const char *ts = strstr(target, "&timestamp="), *sg = strstr(target, "&sign=");
        char ts_buf[32], to_sign[256], expected[128], got[128];
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned mac_len;
        size_t o = 0;
        long long ms;

        assert_non_null(ts);
        assert_non_null(sg);
        snprintf(ts_buf, sizeof(ts_buf), "%.*s", (int)(sg - ts - 11), ts + 11);
        ms = strtoll(ts_buf, NULL, 10);
        assert_true(llabs(ms - (long long)(now_usec(CLOCK_REALTIME) / 1000)) < 60000);
        snprintf(to_sign, sizeof(to_sign), "%s\n%s", ts_buf, secret);
        assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)to_sign,
                             strlen(to_sign), mac, &mac_len));
        EVP_EncodeBlock((unsigned char *)expected, mac, (int)mac_len);
        /* URL-decode the sign parameter. */
        for (const char *p = sg + 6; *p && *p != '&' && o < sizeof(got) - 1; p++) {
                if (*p == '%' && p[1] && p[2]) {
                        char hex[3] = { p[1], p[2], 0 };
                        got[o++] = (char)strtol(hex, NULL, 16);
                        p += 2;
                } else
                        got[o++] = *p;
        }
        got[o] = '\0';
        assert_string_equal(got, expected);
}

static void test_dingtalk(void **state)
{
        T *t = *state;
        HttpServer ok, refuse;
        char url_signed[160], url_plain[160], url_refuse[160];
        _cleanup_(alerts_freep) Alerts *a = NULL;
        AlertsSinkStats st;
        json_t *j;

        http_server_start(&ok, 0, "200 OK", "{\"errcode\":0,\"errmsg\":\"ok\"}");
        http_server_start(&refuse, 0, "200 OK", "{\"errcode\":310000,\"errmsg\":\"sign not match\"}");
        snprintf(url_signed, sizeof(url_signed), "http://127.0.0.1:%u/robot/send?access_token=TOKEN1", ok.port);
        snprintf(url_plain, sizeof(url_plain), "http://127.0.0.1:%u/robot/send?access_token=TOKEN2", ok.port);
        snprintf(url_refuse, sizeof(url_refuse), "http://127.0.0.1:%u/robot/send?access_token=TOKEN3", refuse.port);
        ConfigAlertSink sinks[] = {
                http_sink("ding", CONFIG_SINK_DINGTALK, url_signed),
                http_sink("ding-plain", CONFIG_SINK_DINGTALK, url_plain),
                http_sink("ding-refused", CONFIG_SINK_DINGTALK, url_refuse),
        };
        sinks[0].secret = (char *)"SECabc123+/=";
        sinks[1].events = UINT32_C(1) << CONFIG_ALERT_MEMORY;
        sinks[2].events = UINT32_C(1) << CONFIG_ALERT_MEMORY;
        ConfigAlerts cfg = { .repeat_after_usec = USEC_PER_HOUR, .sinks = sinks, .n_sinks = 3 };
        AlertsTuning tuning = fast_tuning;
        tuning.max_attempts = 2;

        assert_int_equal(alerts_new(t->e, &cfg, HOST, &tuning, on_record, t, &a), 0);
        /* The event filter: only "ding" wants violations. */
        assert_int_equal(alerts_raise(a, CONFIG_ALERT_VIOLATION, "pid:1", "bob uses GPU 1", "details here", NULL), 1);
        assert_true(RUN_UNTIL(t, count_recs(t, "ding", true) == 1, 5000));
        assert_int_equal(http_server_count(&ok), 1);
        assert_true(strncmp(ok.reqs[0].target, "/robot/send?access_token=TOKEN1&timestamp=", 42) == 0);
        check_dingtalk_sign(ok.reqs[0].target, "SECabc123+/=");
        j = body_json(&ok, 0);
        assert_int_equal(json_object_size(j), 2);
        assert_string_equal(json_string_value(json_object_get(j, "msgtype")), "text");
        assert_int_equal(json_object_size(json_object_get(j, "text")), 1);
        assert_string_equal(json_string_value(json_object_get(json_object_get(j, "text"), "content")),
                            "[gpukeeper@" HOST "] bob uses GPU 1\ndetails here");
        json_decref(j);

        /* No secret: the URL is used as configured. A refusal in the body is a failure. */
        assert_int_equal(alerts_raise(a, CONFIG_ALERT_MEMORY, "GPU-1", "GPU 1 memory 95%", "above 90%", NULL), 3);
        assert_true(RUN_UNTIL(t, count_recs(t, "ding-plain", true) == 1 &&
                                         count_recs(t, "ding-refused", false) == 2 && !alerts_busy(a),
                              5000));
        for (size_t i = 1; i < http_server_count(&ok); i++)
                if (strstr(ok.reqs[i].target, "TOKEN2"))
                        assert_string_equal(ok.reqs[i].target, "/robot/send?access_token=TOKEN2");
        for (size_t i = 0; i < t->n_recs; i++)
                if (strcmp(t->recs[i].sink, "ding-refused") == 0) {
                        assert_non_null(strstr(t->recs[i].error, "errcode 310000"));
                        assert_null(strstr(t->recs[i].error, "TOKEN"));
                }
        assert_int_equal(alerts_sink_stats(a, 2, &st), 0);
        assert_int_equal(st.failed, 1);
        assert_int_equal(st.attempts_failed, 2);
        a = alerts_free(a);
        http_server_stop(&ok);
        http_server_stop(&refuse);
}

static void test_slack(void **state)
{
        T *t = *state;
        HttpServer ok, refuse;
        char url_ok[128], url_refuse[128];
        _cleanup_(alerts_freep) Alerts *a = NULL;
        json_t *j;

        http_server_start(&ok, 0, "200 OK", "ok");
        http_server_start(&refuse, 0, "200 OK", "{\"ok\":false,\"error\":\"invalid_token\"}");
        snprintf(url_ok, sizeof(url_ok), "http://127.0.0.1:%u/services/T0/B0/XXXX", ok.port);
        snprintf(url_refuse, sizeof(url_refuse), "http://127.0.0.1:%u/services/T0/B0/YYYY", refuse.port);
        ConfigAlertSink sinks[] = { http_sink("slack", CONFIG_SINK_SLACK, url_ok),
                                    http_sink("slack-bad", CONFIG_SINK_SLACK, url_refuse) };
        ConfigAlerts cfg = { .repeat_after_usec = USEC_PER_HOUR, .sinks = sinks, .n_sinks = 2 };
        AlertsTuning tuning = fast_tuning;
        tuning.max_attempts = 1;

        assert_int_equal(alerts_new(t->e, &cfg, HOST, &tuning, on_record, t, &a), 0);
        assert_int_equal(alerts_raise(a, CONFIG_ALERT_IDLE_WARNING, "lease:7", "lease 7 idle <2h>",
                                      "a & b", NULL),
                         2);
        assert_true(RUN_UNTIL(t, !alerts_busy(a), 5000));
        assert_int_equal(count_recs(t, "slack", true), 1);
        assert_int_equal(count_recs(t, "slack-bad", false), 1);
        for (size_t i = 0; i < t->n_recs; i++)
                if (strcmp(t->recs[i].sink, "slack-bad") == 0)
                        assert_non_null(strstr(t->recs[i].error, "invalid_token"));
        j = body_json(&ok, 0);
        assert_int_equal(json_object_size(j), 1);
        assert_string_equal(json_string_value(json_object_get(j, "text")),
                            "[gpukeeper@" HOST "] lease 7 idle &lt;2h&gt;\na &amp; b");
        json_decref(j);
        a = alerts_free(a);
        http_server_stop(&ok);
        http_server_stop(&refuse);
}

/* A clock the test moves (alerts_set_clock), so repeat_after is checked
 * without waiting. */
static uint64_t fake_clock(void *userdata)
{
        return *(const uint64_t *)userdata;
}

static void test_repeat_after_and_recovery(void **state)
{
        T *t = *state;
        HttpServer srv;
        char url[128];
        _cleanup_(alerts_freep) Alerts *a = NULL;
        json_t *j;

        http_server_start(&srv, 0, "200 OK", "");
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/hook", srv.port);
        ConfigAlertSink sinks[] = { http_sink("ops", CONFIG_SINK_WEBHOOK, url) };
        ConfigAlerts cfg = { .repeat_after_usec = USEC_PER_HOUR, .sinks = sinks, .n_sinks = 1 };
        uint64_t now = 1000 * USEC_PER_SEC;

        assert_int_equal(alerts_new(t->e, &cfg, HOST, &fast_tuning, on_record, t, &a), 0);
        alerts_set_clock(a, fake_clock, &now);
        assert_int_equal(alerts_clear(a, CONFIG_ALERT_MEMORY, "GPU-1", "never raised"), 0);
        assert_int_equal(alerts_raise(a, CONFIG_ALERT_MEMORY, "GPU-1", "GPU 1 memory 91%", "t1", NULL), 1);
        assert_int_equal(alerts_raise(a, CONFIG_ALERT_MEMORY, "GPU-1", "GPU 1 memory 93%", "t2", NULL), 0);
        /* Same key, other event: a different condition. */
        assert_int_equal(alerts_raise(a, CONFIG_ALERT_TEMPERATURE, "GPU-1", "GPU 1 hot", "t3", NULL), 1);
        assert_true(RUN_UNTIL(t, http_server_count(&srv) == 2 && !alerts_busy(a), 5000));
        /* Nothing more is sent before repeat_after (an hour)… */
        now += USEC_PER_HOUR - 1;
        assert_int_equal(alerts_raise(a, CONFIG_ALERT_MEMORY, "GPU-1", "GPU 1 memory 94%", "t4", NULL), 0);
        assert_false(alerts_busy(a));
        assert_int_equal(http_server_count(&srv), 2);
        /* …and from then on the condition is sent again. */
        now += 1;
        assert_int_equal(alerts_raise(a, CONFIG_ALERT_MEMORY, "GPU-1", "GPU 1 memory 95%", "t5", NULL), 1);
        assert_true(RUN_UNTIL(t, http_server_count(&srv) == 3, 5000));
        j = body_json(&srv, 2);
        assert_string_equal(json_string_value(json_object_get(j, "text")), "t5");
        json_decref(j);

        /* Recovery: the last subject, marked resolved; then forgotten. */
        assert_int_equal(alerts_clear(a, CONFIG_ALERT_MEMORY, "GPU-1", "back to 40%"), 1);
        assert_int_equal(alerts_clear(a, CONFIG_ALERT_MEMORY, "GPU-1", "again"), 0);
        assert_true(RUN_UNTIL(t, http_server_count(&srv) == 4 && !alerts_busy(a), 5000));
        j = body_json(&srv, 3);
        assert_string_equal(json_string_value(json_object_get(j, "status")), "resolved");
        assert_string_equal(json_string_value(json_object_get(j, "severity")), "resolved");
        assert_string_equal(json_string_value(json_object_get(j, "subject")), "GPU 1 memory 95%");
        assert_string_equal(json_string_value(json_object_get(j, "text")), "back to 40%");
        json_decref(j);
        assert_true(t->recs[t->n_recs - 1].recovery);
        /* Raised again right after the recovery: sent at once. */
        assert_int_equal(alerts_raise(a, CONFIG_ALERT_MEMORY, "GPU-1", "GPU 1 memory 99%", "t6", NULL), 1);
        assert_true(RUN_UNTIL(t, http_server_count(&srv) == 5, 5000));
        a = alerts_free(a);
        http_server_stop(&srv);
}

static void test_retry_backoff(void **state)
{
        T *t = *state;
        HttpServer srv;
        uint16_t port = free_port();
        char url[128], url_dead[128];
        _cleanup_(alerts_freep) Alerts *a = NULL;
        AlertsSinkStats st;
        size_t fails;

        snprintf(url, sizeof(url), "http://127.0.0.1:%u/robot/send?access_token=SECRETTOKEN", port);
        snprintf(url_dead, sizeof(url_dead), "http://127.0.0.1:%u/dead", free_port());
        ConfigAlertSink sinks[] = { http_sink("ding", CONFIG_SINK_DINGTALK, url),
                                    http_sink("dead", CONFIG_SINK_WEBHOOK, url_dead) };
        sinks[0].secret = (char *)"SECRETSIGNING";
        sinks[1].events = UINT32_C(1) << CONFIG_ALERT_XID;
        ConfigAlerts cfg = { .repeat_after_usec = USEC_PER_HOUR, .sinks = sinks, .n_sinks = 2 };
        AlertsTuning tuning = fast_tuning;

        assert_int_equal(alerts_new(t->e, &cfg, HOST, &tuning, on_record, t, &a), 0);
        assert_int_equal(alerts_raise(a, CONFIG_ALERT_VIOLATION, "pid:9", "violation", "text", NULL), 1);
        assert_true(RUN_UNTIL(t, count_recs(t, "ding", false) >= 3, 5000));
        /* The refused attempts came 50 ms, then 100 ms apart (backoff doubles). */
        assert_true(t->recs[1].at - t->recs[0].at >= 45 * USEC_PER_MSEC);
        assert_true(t->recs[2].at - t->recs[1].at >= 95 * USEC_PER_MSEC);
        for (size_t i = 0; i < t->n_recs; i++) {
                assert_false(t->recs[i].final);
                assert_int_equal(t->recs[i].attempt, i + 1);
                assert_non_null(strstr(t->recs[i].error, "127.0.0.1"));
                assert_null(strstr(t->recs[i].error, "SECRET"));
        }
        /* The receiver comes up: the next retry is delivered. */
        http_server_start(&srv, port, "200 OK", "{\"errcode\":0,\"errmsg\":\"ok\"}");
        assert_true(RUN_UNTIL(t, count_recs(t, "ding", true) == 1, 5000));
        fails = count_recs(t, "ding", false);
        assert_int_equal(t->recs[t->n_recs - 1].attempt, fails + 1);
        assert_true(t->recs[t->n_recs - 1].final);
        check_dingtalk_sign(srv.reqs[0].target, "SECRETSIGNING");
        assert_int_equal(alerts_sink_stats(a, 0, &st), 0);
        assert_int_equal(st.sent, 1);
        assert_int_equal(st.attempts_failed, fails);
        assert_int_equal(st.failed, 0);

        /* A receiver that never comes up: given up after max_attempts, counted. */
        t->n_recs = 0;
        assert_int_equal(alerts_raise(a, CONFIG_ALERT_XID, "GPU-1:79", "Xid 79", "fell off the bus", NULL), 2);
        assert_true(RUN_UNTIL(t, count_recs(t, "dead", false) == 8, 10000));
        assert_true(t->recs[t->n_recs - 1].final);
        assert_int_equal(alerts_sink_stats(a, 1, &st), 0);
        assert_int_equal(st.failed, 1);
        assert_int_equal(st.attempts_failed, 8);
        assert_int_equal(st.queued, 0);
        a = alerts_free(a);
        http_server_stop(&srv);
}

typedef struct Tick {
        uint64_t period, max_late;
        unsigned n;
} Tick;

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
        Tick *k = userdata;
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        k->max_late = MAX(k->max_late, now > usec ? now - usec : 0);
        k->n++;
        assert_int_equal(sd_event_source_set_time(s, now + k->period), 0);
        return 0;
}

static void test_hanging_sink_blocks_nothing(void **state)
{
        T *t = *state;
        HttpServer slow, fast;
        char url_slow[128], url_fast[128];
        _cleanup_(alerts_freep) Alerts *a = NULL;
        sd_event_source *tick_src = NULL;
        Tick tick = { .period = 10 * USEC_PER_MSEC };
        uint64_t start, took;

        http_server_start(&slow, 0, "200 OK", "");
        http_server_set_hang(&slow, true);
        http_server_start(&fast, 0, "200 OK", "");
        snprintf(url_slow, sizeof(url_slow), "http://127.0.0.1:%u/slow", slow.port);
        snprintf(url_fast, sizeof(url_fast), "http://127.0.0.1:%u/fast", fast.port);
        ConfigAlertSink sinks[] = { http_sink("slow", CONFIG_SINK_WEBHOOK, url_slow),
                                    http_sink("fast", CONFIG_SINK_WEBHOOK, url_fast) };
        sinks[0].timeout_usec = 1500 * USEC_PER_MSEC;
        ConfigAlerts cfg = { .repeat_after_usec = USEC_PER_HOUR, .sinks = sinks, .n_sinks = 2 };
        AlertsTuning tuning = fast_tuning;
        tuning.max_attempts = 1;

        assert_int_equal(alerts_new(t->e, &cfg, HOST, &tuning, on_record, t, &a), 0);
        assert_int_equal(sd_event_add_time(t->e, &tick_src, CLOCK_MONOTONIC,
                                           now_usec(CLOCK_MONOTONIC) + tick.period, 0, on_tick, &tick),
                         0);
        assert_int_equal(sd_event_source_set_enabled(tick_src, SD_EVENT_ON), 0);

        start = now_usec(CLOCK_MONOTONIC);
        for (int i = 0; i < 5; i++) {
                char key[16];
                snprintf(key, sizeof(key), "k%d", i);
                assert_int_equal(alerts_raise(a, CONFIG_ALERT_VIOLATION, key, "subject", "text", NULL), 2);
        }
        took = now_usec(CLOCK_MONOTONIC) - start;
        assert_true(took < 50 * USEC_PER_MSEC);

        /* The fast sink delivers everything while the slow one's first request hangs. */
        assert_true(RUN_UNTIL(t, count_recs(t, "fast", true) == 5, 1000));
        assert_int_equal(count_recs(t, "slow", false) + count_recs(t, "slow", true), 0);
        assert_int_equal(http_server_count(&slow), 1);
        /* The slow attempt ends by its own timeout, and the loop never stalled meanwhile. */
        assert_true(RUN_UNTIL(t, count_recs(t, "slow", false) >= 1, 3000));
        assert_true(now_usec(CLOCK_MONOTONIC) - start >= 1400 * USEC_PER_MSEC);
        assert_non_null(strcasestr(t->recs[t->n_recs - 1].error, "timed out"));
        assert_true(tick.n > 50);
        assert_true(tick.max_late < 250 * USEC_PER_MSEC); /* a blocking call would be ~1.5 s */

        sd_event_source_disable_unref(tick_src);
        a = alerts_free(a);
        http_server_stop(&slow);
        http_server_stop(&fast);
}

static void test_queue_overflow(void **state)
{
        T *t = *state;
        HttpServer srv;
        char url[128];
        _cleanup_(alerts_freep) Alerts *a = NULL;
        AlertsSinkStats st;
        const char *expect[] = { "k0", "k4", "k5", "k6", "k7" };

        http_server_start(&srv, 0, "200 OK", "");
        http_server_set_hang(&srv, true);
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/hook", srv.port);
        ConfigAlertSink sinks[] = { http_sink("ops", CONFIG_SINK_WEBHOOK, url) };
        ConfigAlerts cfg = { .repeat_after_usec = USEC_PER_HOUR, .sinks = sinks, .n_sinks = 1 };
        AlertsTuning tuning = fast_tuning;
        tuning.queue_max = 5;

        assert_int_equal(alerts_new(t->e, &cfg, HOST, &tuning, on_record, t, &a), 0);
        assert_int_equal(alerts_raise(a, CONFIG_ALERT_VIOLATION, "k0", "s", "t", NULL), 1);
        /* k0 is on the wire (the receiver holds it) before the rest is queued. */
        assert_true(RUN_UNTIL(t, http_server_count(&srv) == 1, 5000));
        for (int i = 1; i < 8; i++) {
                char key[8];
                snprintf(key, sizeof(key), "k%d", i);
                assert_int_equal(alerts_raise(a, CONFIG_ALERT_VIOLATION, key, "s", "t", NULL), 1);
        }
        assert_int_equal(alerts_sink_stats(a, 0, &st), 0);
        assert_int_equal(st.queued, 5);
        assert_int_equal(st.dropped, 3);
        /* The oldest waiting ones went, never the one in flight. */
        assert_int_equal(t->n_recs, 3);
        for (size_t i = 0; i < 3; i++) {
                char key[8];
                snprintf(key, sizeof(key), "k%zu", i + 1);
                assert_string_equal(t->recs[i].key, key);
                assert_true(t->recs[i].final);
                assert_false(t->recs[i].ok);
                assert_non_null(strstr(t->recs[i].error, "queue full"));
        }

        /* The receiver lets go and answers from now on: k0 is retried, then the rest in order. */
        http_server_set_hang(&srv, false);
        assert_true(RUN_UNTIL(t, count_recs(t, "ops", true) == 5, 5000));
        for (size_t i = 0, k = 0; i < http_server_count(&srv) && k < 5; i++) {
                json_t *j = body_json(&srv, i);
                const char *key = json_string_value(json_object_get(j, "key"));

                if (i + 5 >= http_server_count(&srv))
                        assert_string_equal(key, expect[k++]);
                json_decref(j);
        }
        assert_int_equal(alerts_sink_stats(a, 0, &st), 0);
        assert_int_equal(st.sent, 5);
        assert_int_equal(st.queued, 0);
        a = alerts_free(a);
        http_server_stop(&srv);
}

static void test_reconfigure(void **state)
{
        T *t = *state;
        HttpServer srv, other;
        char url[128], url2[128];
        _cleanup_(alerts_freep) Alerts *a = NULL;
        AlertsSinkStats st;

        http_server_start(&srv, 0, "200 OK", "");
        http_server_start(&other, 0, "200 OK", "");
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/hook", srv.port);
        snprintf(url2, sizeof(url2), "http://127.0.0.1:%u/moved", other.port);
        ConfigAlertSink sinks[] = { http_sink("a", CONFIG_SINK_WEBHOOK, url),
                                    http_sink("b", CONFIG_SINK_WEBHOOK, url) };
        ConfigAlerts cfg = { .repeat_after_usec = USEC_PER_HOUR, .sinks = sinks, .n_sinks = 2 };

        assert_int_equal(alerts_new(t->e, &cfg, HOST, &fast_tuning, on_record, t, &a), 0);
        assert_int_equal(alerts_raise(a, CONFIG_ALERT_DAEMON, "started", "started", "hello", NULL), 2);
        assert_true(RUN_UNTIL(t, !alerts_busy(a), 5000));

        /* "a" moves to another URL and keeps its counters; "b" goes; "c" is new. */
        ConfigAlertSink sinks2[] = { http_sink("c", CONFIG_SINK_SLACK, url2),
                                     http_sink("a", CONFIG_SINK_WEBHOOK, url2) };
        ConfigAlerts cfg2 = { .repeat_after_usec = USEC_PER_HOUR, .sinks = sinks2, .n_sinks = 2 };
        assert_int_equal(alerts_reconfigure(a, &cfg2), 0);
        assert_int_equal(alerts_n_sinks(a), 2);
        assert_int_equal(alerts_sink_stats(a, 0, &st), 0);
        assert_string_equal(st.name, "c");
        assert_int_equal(st.sent, 0);
        assert_int_equal(alerts_sink_stats(a, 1, &st), 0);
        assert_string_equal(st.name, "a");
        assert_int_equal(st.sent, 1);
        /* The remembered condition survived: no repeat. */
        assert_int_equal(alerts_raise(a, CONFIG_ALERT_DAEMON, "started", "started", "hello", NULL), 0);
        assert_int_equal(alerts_raise(a, CONFIG_ALERT_DAEMON, "reloaded", "reloaded", "config", NULL), 2);
        assert_true(RUN_UNTIL(t, !alerts_busy(a), 5000));
        assert_int_equal(http_server_count(&other), 2);
        assert_int_equal(http_server_count(&srv), 2);

        /* An invalid configuration changes nothing. */
        ConfigAlertSink bad[] = { http_sink("x", CONFIG_SINK_WEBHOOK, NULL) };
        ConfigAlerts cfg3 = { .repeat_after_usec = USEC_PER_HOUR, .sinks = bad, .n_sinks = 1 };
        assert_int_equal(alerts_reconfigure(a, &cfg3), -EINVAL);
        assert_int_equal(alerts_n_sinks(a), 2);
        ConfigAlertSink dup[] = { http_sink("x", CONFIG_SINK_WEBHOOK, url), http_sink("x", CONFIG_SINK_WEBHOOK, url) };
        ConfigAlerts cfg4 = { .repeat_after_usec = USEC_PER_HOUR, .sinks = dup, .n_sinks = 2 };
        assert_int_equal(alerts_reconfigure(a, &cfg4), -EINVAL);
        AlertsTuning bad_tuning = fast_tuning;
        bad_tuning.max_attempts = 0;
        Alerts *none = NULL;
        assert_int_equal(alerts_new(t->e, &cfg, HOST, &bad_tuning, on_record, t, &none), -EINVAL);
        a = alerts_free(a);
        http_server_stop(&srv);
        http_server_stop(&other);
}

/* ---- email through aiosmtpd ---- */

static Smtp *smtp_start(T *t, const char *creds)
{
        Smtp *s = &t->smtp[t->n_smtp];
        char *argv[] = { (char *)"python3", (char *)SMTP_RECEIVER, s->dir, (char *)creds, NULL };
        char path[128], buf[16] = {};
        int fd = -1;

        snprintf(s->dir, sizeof(s->dir), "/tmp/gk-alerts-smtp-XXXXXX");
        assert_true(t->n_smtp < ELEMENTSOF(t->smtp));
        assert_non_null(mkdtemp(s->dir));
        assert_int_equal(posix_spawn(&s->pid, PYTHON3, NULL, NULL, argv, environ), 0);
        t->n_smtp++;
        snprintf(path, sizeof(path), "%s/port", s->dir);
        for (int i = 0; i < 200 && fd < 0; i++) {
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        usleep(50000);
        }
        assert_true(fd >= 0);
        assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
        close(fd);
        s->port = (uint16_t)atoi(buf);
        return s;
}

static void smtp_stop(Smtp *s)
{
        DIR *d;
        struct dirent *de;

        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        d = opendir(s->dir);
        assert_non_null(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
        rmdir(s->dir);
}

static bool smtp_has(Smtp *s, int n)
{
        char path[128];

        snprintf(path, sizeof(path), "%s/msg-%d.json", s->dir, n);
        return access(path, F_OK) == 0;
}

static json_t *smtp_message(Smtp *s, int n)
{
        char path[128];
        json_t *j;

        snprintf(path, sizeof(path), "%s/msg-%d.json", s->dir, n);
        j = json_load_file(path, 0, NULL);
        assert_non_null(j);
        return j;
}

static void assert_matches(const char *s, const char *pattern)
{
        regex_t re;

        assert_non_null(s);
        assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
        if (regexec(&re, s, 0, NULL, 0) != 0)
                fail_msg("\"%s\" does not match %s", s, pattern);
        regfree(&re);
}

static void test_email(void **state)
{
        T *t = *state;
        Smtp *smtp, *authed;
        char url[64], url_auth[64];
        _cleanup_(alerts_freep) Alerts *a = NULL;
        json_t *m, *h, *details;
        char *to[] = { (char *)"admin@lab", (char *)"Ops Team <ops@lab>" };

        smtp = smtp_start(t, NULL);
        authed = smtp_start(t, "alice:s3cret");
        snprintf(url, sizeof(url), "smtp://127.0.0.1:%u", smtp->port);
        snprintf(url_auth, sizeof(url_auth), "smtp://127.0.0.1:%u", authed->port);
        ConfigAlertSink base = { .type = CONFIG_SINK_EMAIL, .events = CONFIG_ALERT_EVENTS_ALL,
                                 .timeout_usec = 5 * USEC_PER_SEC, .from = (char *)"gpukeeper <gk@testhost>",
                                 .to = to, .n_to = 2 };
        ConfigAlertSink sinks[4] = { base, base, base, base };
        sinks[0].name = (char *)"mail";
        sinks[0].smtp_url = url;
        sinks[1].name = (char *)"mail-tls";
        sinks[1].smtp_url = url;
        sinks[1].starttls = true;
        sinks[2].name = (char *)"mail-auth";
        sinks[2].smtp_url = url_auth;
        sinks[2].username = (char *)"alice";
        sinks[2].password = (char *)"s3cret";
        sinks[3].name = (char *)"mail-badauth";
        sinks[3].smtp_url = url_auth;
        sinks[3].username = (char *)"alice";
        sinks[3].password = (char *)"wrongpw";
        for (size_t i = 1; i < 4; i++)
                sinks[i].events = UINT32_C(1) << CONFIG_ALERT_DAEMON;
        ConfigAlerts cfg = { .repeat_after_usec = USEC_PER_HOUR, .sinks = sinks, .n_sinks = 4 };
        AlertsTuning tuning = fast_tuning;
        tuning.max_attempts = 1;

        assert_int_equal(alerts_new(t->e, &cfg, HOST, &tuning, on_record, t, &a), 0);
        details = json_pack("{s:i, s:s}", "temperature_c", 91, "gpu", "GPU-abc");
        assert_int_equal(alerts_raise(a, CONFIG_ALERT_TEMPERATURE, "GPU-abc", "GPU 0 überhitzt",
                                      "Temperatur 91 °C seit 1 min", details),
                         1);
        json_decref(details);
        assert_true(RUN_UNTIL(t, smtp_has(smtp, 1) && !alerts_busy(a), 10000));
        assert_int_equal(count_recs(t, "mail", true), 1);

        m = smtp_message(smtp, 1);
        assert_string_equal(json_string_value(json_object_get(m, "mail_from")), "gk@testhost");
        assert_int_equal(json_array_size(json_object_get(m, "rcpt_tos")), 2);
        assert_string_equal(json_string_value(json_array_get(json_object_get(m, "rcpt_tos"), 0)), "admin@lab");
        assert_string_equal(json_string_value(json_array_get(json_object_get(m, "rcpt_tos"), 1)), "ops@lab");
        h = json_object_get(m, "raw_headers");
        assert_matches(json_string_value(json_object_get(h, "Date")),
                       "^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} \\+0000$");
        assert_matches(json_string_value(json_object_get(h, "Message-ID")), "^<[0-9]+\\.[0-9a-f]{16}@testhost>$");
        assert_string_equal(json_string_value(json_object_get(h, "From")), "gpukeeper <gk@testhost>");
        assert_string_equal(json_string_value(json_object_get(json_object_get(m, "headers"), "To")),
                            "admin@lab, Ops Team <ops@lab>");
        assert_matches(json_string_value(json_object_get(h, "Subject")), "^=\\?UTF-8\\?B\\?");
        assert_string_equal(json_string_value(json_object_get(m, "subject")), "[gpukeeper@testhost] GPU 0 überhitzt");
        assert_string_equal(json_string_value(json_object_get(h, "Content-Transfer-Encoding")), "base64");
        assert_string_equal(json_string_value(json_object_get(h, "X-Gpukeeper-Event")), "temperature");
        assert_non_null(strstr(json_string_value(json_object_get(m, "body")), "Temperatur 91 °C seit 1 min\n"));
        assert_non_null(strstr(json_string_value(json_object_get(m, "body")), "\"temperature_c\": 91"));
        assert_non_null(strstr(json_string_value(json_object_get(m, "body")), "Severity: warning\n"));
        json_decref(m);

        /* ASCII goes 7bit; a line starting with a dot survives SMTP's dot-stuffing;
         * STARTTLS required but not offered: refused, nothing sent in clear;
         * AUTH with the right password delivers, with a wrong one fails. */
        assert_int_equal(alerts_raise(a, CONFIG_ALERT_DAEMON, "started", "daemon started",
                                      "line one\n.dot line\nline three", NULL),
                         4);
        assert_true(RUN_UNTIL(t, !alerts_busy(a), 10000));
        assert_true(smtp_has(smtp, 2));
        assert_false(smtp_has(smtp, 3));
        m = smtp_message(smtp, 2);
        h = json_object_get(m, "raw_headers");
        assert_string_equal(json_string_value(json_object_get(h, "Subject")), "[gpukeeper@testhost] daemon started");
        assert_string_equal(json_string_value(json_object_get(h, "Content-Transfer-Encoding")), "7bit");
        assert_non_null(strstr(json_string_value(json_object_get(m, "body")), "line one\n.dot line\nline three\n"));
        assert_non_null(strstr(json_string_value(json_object_get(m, "raw")), "\r\n\r\nline one\r\n.dot line\r\n"));
        json_decref(m);

        assert_int_equal(count_recs(t, "mail-tls", false), 1);
        assert_int_equal(count_recs(t, "mail-auth", true), 1);
        assert_int_equal(count_recs(t, "mail-badauth", false), 1);
        for (size_t i = 0; i < t->n_recs; i++) {
                assert_null(strstr(t->recs[i].error, "s3cret"));
                assert_null(strstr(t->recs[i].error, "wrongpw"));
        }
        assert_true(smtp_has(authed, 1));
        assert_false(smtp_has(authed, 2));
        m = smtp_message(authed, 1);
        assert_string_equal(json_string_value(json_object_get(m, "login")), "alice");
        json_decref(m);

        a = alerts_free(a);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_webhook_shape, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dingtalk, setup, teardown),
                cmocka_unit_test_setup_teardown(test_slack, setup, teardown),
                cmocka_unit_test_setup_teardown(test_repeat_after_and_recovery, setup, teardown),
                cmocka_unit_test_setup_teardown(test_retry_backoff, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hanging_sink_blocks_nothing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_queue_overflow, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reconfigure, setup, teardown),
                cmocka_unit_test_setup_teardown(test_email, setup, teardown),
        };

        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests_name("alerts", tests, NULL, NULL);
}
