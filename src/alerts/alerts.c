/* The alert delivery engine: remembered conditions (repeat_after, recovery),
 * per-sink bounded queues, retries with exponential backoff, and libcurl's
 * multi interface driven by sd-event. curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION → one sd-event io source per socket) and when to
 * call it back (CURLMOPT_TIMERFUNCTION → one sd-event time source); we hand
 * readiness back with curl_multi_socket_action(). DNS runs in curl's resolver
 * thread, so no call made here waits on the network.
 *
 * Each sink sends its queue head and nothing else until that message is
 * delivered or given up, so a receiver sees messages in order and a dead
 * receiver delays only its own sink. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>

#include "basic/macro.h"
#include "basic/time-util.h"
#include "basic/utf8.h"
#include "alerts/alerts-internal.h"
#include "alerts/alerts.h"

/* Bytes of an answer body kept for check(): enough for any DingTalk/Slack reply. */
#define RESPONSE_MAX 4096

typedef struct Message Message;
struct Message {
        Message *next;
        ConfigAlertEvent event;
        bool recovery;
        unsigned attempts;      /* attempts started so far */
        char *key;
        char *payload;
        size_t payload_len;
};

typedef struct Sink {
        Alerts *alerts;
        ConfigAlertSink config; /* deep copy, owned */
        const AlertsSinkOps *ops;

        Message *head, *tail;   /* FIFO; head is the one being sent or retried */
        size_t n_queued;

        CURL *easy;             /* transfer of head in flight, or NULL */
        AlertsAttempt attempt;
        char errbuf[CURL_ERROR_SIZE];
        char response[RESPONSE_MAX];
        size_t response_len;

        sd_event_source *retry; /* created on first use; enabled while backing off */
        bool backing_off;

        uint64_t sent, failed, attempts_failed, dropped;
} Sink;

typedef struct SocketWatch SocketWatch;
struct SocketWatch {
        sd_event_source *source;
        SocketWatch *prev, *next;
};

typedef struct Condition {
        ConfigAlertEvent event;
        char *key;
        char *subject;
        uint64_t sent_usec;     /* alerts_now() of the last message sent for it */
} Condition;

struct Alerts {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        SocketWatch *watches;
        bool curl_initialised;

        char *hostname;
        AlertsTuning tuning;
        AlertsRecordFunc record;
        void *userdata;
        uint64_t repeat_after_usec;
        AlertsClockFunc clock; /* NULL: CLOCK_MONOTONIC */
        void *clock_userdata;

        Sink **sinks;
        size_t n_sinks;

        Condition *conditions;
        size_t n_conditions;
};

static const AlertsSinkOps *sink_ops(ConfigAlertSinkType type)
{
        switch (type) {
        case CONFIG_SINK_WEBHOOK:
                return &alerts_sink_webhook;
        case CONFIG_SINK_DINGTALK:
                return &alerts_sink_dingtalk;
        case CONFIG_SINK_SLACK:
                return &alerts_sink_slack;
        case CONFIG_SINK_EMAIL:
                return &alerts_sink_email;
        case _CONFIG_SINK_TYPE_MAX:
                break;
        }
        return NULL;
}

/* The config parser validates the same; checked again because a sink without
 * its fields would fail every attempt with an unhelpful curl error. */
static bool sink_config_valid(const ConfigAlertSink *c)
{
        if (!c->name || !sink_ops(c->type))
                return false;
        if (c->type == CONFIG_SINK_EMAIL)
                return c->smtp_url && c->from && c->to && c->n_to > 0;
        return c->url != NULL;
}


static int strdup_opt(const char *s, char **ret)
{
        if (!s) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int sink_config_copy(const ConfigAlertSink *src, ConfigAlertSink *ret)
{
        ConfigAlertSink c = {
                .type = src->type,
                .events = src->events,
                .timeout_usec = src->timeout_usec,
                .starttls = src->starttls,
        };

        if (strdup_opt(src->name, &c.name) < 0 || strdup_opt(src->url, &c.url) < 0 ||
            strdup_opt(src->secret, &c.secret) < 0 || strdup_opt(src->smtp_url, &c.smtp_url) < 0 ||
            strdup_opt(src->username, &c.username) < 0 ||
            strdup_opt(src->password, &c.password) < 0 || strdup_opt(src->from, &c.from) < 0)
                goto fail;
        if (src->n_to > 0) {
                c.to = calloc(src->n_to, sizeof(char *));
                if (!c.to)
                        goto fail;
                c.n_to = src->n_to;
                for (size_t i = 0; i < src->n_to; i++)
                        if (strdup_opt(src->to[i], &c.to[i]) < 0)
                                goto fail;
        }
        *ret = c;
        return 0;
fail:
        config_alert_sink_done(&c);
        return -ENOMEM;
}

static void message_free(Message *m)
{
        if (!m)
                return;
        free(m->key);
        free(m->payload);
        free(m);
}

static void record(Sink *s, const Message *m, bool ok, bool final, const char *error)
{
        Alerts *a = s->alerts;

        if (!a->record)
                return;
        a->record(&(AlertsRecord){
                          .sink = s->config.name,
                          .event = m->event,
                          .key = m->key,
                          .recovery = m->recovery,
                          .ok = ok,
                          .final = final,
                          .attempt = m->attempts,
                          .error = ok ? NULL : (error ? error : "delivery failed"),
                  },
                  a->userdata);
}

/* Abort the transfer in flight, if any, without judging it. */
static void sink_transfer_end(Sink *s)
{
        if (s->easy) {
                curl_multi_remove_handle(s->alerts->multi, s->easy);
                curl_easy_cleanup(s->easy);
                s->easy = NULL;
        }
        curl_slist_free_all(s->attempt.headers);
        curl_slist_free_all(s->attempt.recipients);
        s->attempt = (AlertsAttempt){};
        s->response_len = 0;
        s->errbuf[0] = '\0';
}

/* Unlink and return the message after `prev` (the head when prev is NULL). */
static Message *sink_unlink(Sink *s, Message *prev)
{
        Message *m = prev ? prev->next : s->head;

        if (prev)
                prev->next = m->next;
        else
                s->head = m->next;
        if (s->tail == m)
                s->tail = prev;
        s->n_queued--;
        return m;
}

static Sink *sink_free(Sink *s)
{
        if (!s)
                return NULL;
        sink_transfer_end(s);
        sd_event_source_disable_unref(s->retry);
        while (s->head)
                message_free(sink_unlink(s, NULL));
        config_alert_sink_done(&s->config);
        free(s);
        return NULL;
}

static int sink_new(Alerts *a, const ConfigAlertSink *config, Sink **ret)
{
        Sink *s = calloc(1, sizeof(Sink));
        int r;

        if (!s)
                return -ENOMEM;
        s->alerts = a;
        s->ops = sink_ops(config->type);
        r = sink_config_copy(config, &s->config);
        if (r < 0) {
                free(s);
                return r;
        }
        *ret = s;
        return 0;
}

static bool sink_wants(const Sink *s, ConfigAlertEvent event)
{
        return s->config.events & (UINT32_C(1) << event);
}

static uint64_t backoff_usec(const AlertsTuning *t, unsigned failures)
{
        uint64_t d = t->backoff_base_usec;

        for (unsigned i = 1; i < failures && d < t->backoff_max_usec; i++)
                d *= 2;
        return MIN(d, t->backoff_max_usec);
}

static size_t on_curl_write(char *data, size_t size, size_t nmemb, void *userdata)
{
        Sink *s = userdata;
        size_t n = size * nmemb, room = sizeof(s->response) - 1 - s->response_len;

        /* Keep the start of the answer, swallow the rest: aborting the transfer
         * here would turn a delivered alert into a failure. */
        memcpy(s->response + s->response_len, data, MIN(n, room));
        s->response_len += MIN(n, room);
        s->response[s->response_len] = '\0';
        return n;
}

/* Start an attempt on the queue head. On failure nothing is in flight and
 * *ret_error (malloc'd, may be NULL) says why. */
static int sink_start(Sink *s, char **ret_error)
{
        Message *m = s->head;
        uint64_t timeout_ms;
        CURL *easy;
        int r;

        m->attempts++;
        easy = curl_easy_init();
        if (!easy)
                return -ENOMEM;
        s->easy = easy;
        s->attempt = (AlertsAttempt){ .payload = m->payload, .payload_len = m->payload_len };
        s->response_len = 0;
        s->response[0] = '\0';
        s->errbuf[0] = '\0';

        timeout_ms = s->config.timeout_usec / USEC_PER_MSEC;
        if (timeout_ms == 0)
                timeout_ms = CONFIG_DEFAULT_ALERT_SINK_TIMEOUT_USEC / USEC_PER_MSEC;
        if (curl_easy_setopt(easy, CURLOPT_PRIVATE, s) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, s->errbuf) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_curl_write) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_WRITEDATA, s) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)MIN(timeout_ms, (uint64_t)LONG_MAX)) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_USERAGENT, "gpukeeper/" GK_VERSION) != CURLE_OK) {
                sink_transfer_end(s);
                return -ENOMEM;
        }
        r = s->ops->prepare(&s->config, easy, &s->attempt, ret_error);
        if (r < 0) {
                sink_transfer_end(s);
                return r;
        }
        if (curl_multi_add_handle(s->alerts->multi, easy) != CURLM_OK) {
                sink_transfer_end(s);
                return -ENOMEM;
        }
        return 0;
}

static int on_retry(sd_event_source *source, uint64_t usec, void *userdata);

/* Account for the outcome of the head's latest attempt: done with it (delivered
 * or out of attempts), or arm the backoff timer for the next one. */
static void sink_attempt_result(Sink *s, bool ok, const char *error)
{
        Alerts *a = s->alerts;
        Message *m = s->head;
        bool final = ok || m->attempts >= a->tuning.max_attempts;
        int r;

        if (ok)
                s->sent++;
        else {
                s->attempts_failed++;
                if (final)
                        s->failed++;
        }
        record(s, m, ok, final, error);
        if (final) {
                message_free(sink_unlink(s, NULL));
                return;
        }

        uint64_t when = now_usec(CLOCK_MONOTONIC) + backoff_usec(&a->tuning, m->attempts);
        if (!s->retry)
                r = sd_event_add_time(a->event, &s->retry, CLOCK_MONOTONIC, when, USEC_PER_MSEC, on_retry, s);
        else
                r = sd_event_source_set_time(s->retry, when);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->retry, SD_EVENT_ONESHOT);
        if (r < 0) {
                /* Without a timer the message could never be retried: give it up
                 * now rather than wedge the sink's queue. */
                s->failed++;
                record(s, m, false, true, "cannot schedule a retry");
                message_free(sink_unlink(s, NULL));
                return;
        }
        s->backing_off = true;
}

/* Start the head if the sink is idle. Attempts that fail before reaching the
 * network are accounted at once; the loop moves on to the next message only
 * when one is given up. */
static void sink_kick(Sink *s)
{
        while (!s->easy && !s->backing_off && s->head) {
                _cleanup_free_ char *error = NULL;

                if (sink_start(s, &error) >= 0)
                        return;
                sink_attempt_result(s, false, error);
        }
}

static int on_retry(sd_event_source *source, uint64_t usec, void *userdata)
{
        Sink *s = userdata;

        s->backing_off = false;
        sink_kick(s);
        return 0;
}

/* A transfer finished at the transport level (result) — judge it. */
static void sink_transfer_done(Sink *s, CURLcode result)
{
        _cleanup_free_ char *error = NULL;
        long status = 0;
        bool ok;

        if (result != CURLE_OK) {
                /* curl's messages name host and port at most, never the path or
                 * query where webhook tokens live. */
                error = strdup(s->errbuf[0] ? s->errbuf : curl_easy_strerror(result));
                ok = false;
        } else {
                curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
                ok = s->ops->check(status, s->response, s->response_len, &error) >= 0;
        }
        sink_transfer_end(s);
        sink_attempt_result(s, ok, error);
        sink_kick(s);
}

static void alerts_process_done(Alerts *a)
{
        CURLMsg *msg;
        int left;

        while ((msg = curl_multi_info_read(a->multi, &left))) {
                Sink *s = NULL;

                if (msg->msg != CURLMSG_DONE)
                        continue;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
                assert(s && s->easy == msg->easy_handle);
                sink_transfer_done(s, msg->data.result);
        }
}

static int on_io(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
        Alerts *a = userdata;
        int flags = 0, running;

        if (revents & EPOLLIN)
                flags |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                flags |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                flags |= CURL_CSELECT_ERR;
        curl_multi_socket_action(a->multi, fd, flags, &running);
        alerts_process_done(a);
        return 0;
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata)
{
        Alerts *a = userdata;
        int running;

        curl_multi_socket_action(a->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        alerts_process_done(a);
        return 0;
}

static void watch_free(Alerts *a, SocketWatch *w)
{
        if (w->prev)
                w->prev->next = w->next;
        else
                a->watches = w->next;
        if (w->next)
                w->next->prev = w->prev;
        sd_event_source_disable_unref(w->source);
        free(w);
}

/* CURLMOPT_SOCKETFUNCTION: keep one io source per socket curl wants watched. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
        Alerts *a = userp;
        SocketWatch *w = socketp;
        uint32_t events = 0;
        int r;

        if (what == CURL_POLL_REMOVE) {
                if (w) {
                        curl_multi_assign(a->multi, fd, NULL);
                        watch_free(a, w);
                }
                return 0;
        }
        if (what & CURL_POLL_IN)
                events |= EPOLLIN;
        if (what & CURL_POLL_OUT)
                events |= EPOLLOUT;
        if (w)
                return sd_event_source_set_io_events(w->source, events) < 0 ? -1 : 0;

        w = calloc(1, sizeof(SocketWatch));
        if (!w)
                return -1;
        r = sd_event_add_io(a->event, &w->source, fd, events, on_io, a);
        if (r < 0) {
                free(w);
                return -1;
        }
        w->next = a->watches;
        if (w->next)
                w->next->prev = w;
        a->watches = w;
        curl_multi_assign(a->multi, fd, w);
        return 0;
}

/* CURLMOPT_TIMERFUNCTION: curl wants socket_action(TIMEOUT) after timeout_ms
 * (0: as soon as possible, from the loop — never from inside this callback). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
        Alerts *a = userp;

        if (timeout_ms < 0)
                return sd_event_source_set_enabled(a->timer, SD_EVENT_OFF) < 0 ? -1 : 0;
        if (sd_event_source_set_time(a->timer, now_usec(CLOCK_MONOTONIC) +
                                                       (uint64_t)timeout_ms * USEC_PER_MSEC) < 0 ||
            sd_event_source_set_enabled(a->timer, SD_EVENT_ONESHOT) < 0)
                return -1;
        return 0;
}

static bool tuning_valid(const AlertsTuning *t)
{
        return t->backoff_base_usec > 0 && t->backoff_max_usec >= t->backoff_base_usec &&
               t->max_attempts >= 1 && t->queue_max >= 1;
}

static void sinks_free(Sink **sinks, size_t n)
{
        for (size_t i = 0; i < n; i++)
                sink_free(sinks[i]);
        free(sinks);
}

Alerts *alerts_free(Alerts *a)
{
        if (!a)
                return NULL;
        sinks_free(a->sinks, a->n_sinks);
        if (a->multi) {
                /* Cached connections are closed by the cleanup; their watches
                 * go with the list below, not through callbacks into a half-freed context. */
                curl_multi_setopt(a->multi, CURLMOPT_SOCKETFUNCTION, NULL);
                curl_multi_setopt(a->multi, CURLMOPT_TIMERFUNCTION, NULL);
                curl_multi_cleanup(a->multi);
        }
        while (a->watches)
                watch_free(a, a->watches);
        sd_event_source_disable_unref(a->timer);
        sd_event_unref(a->event);
        for (size_t i = 0; i < a->n_conditions; i++) {
                free(a->conditions[i].key);
                free(a->conditions[i].subject);
        }
        free(a->conditions);
        free(a->hostname);
        if (a->curl_initialised)
                curl_global_cleanup();
        free(a);
        return NULL;
}

/* Build the sink array for `config`, reusing sinks of `old` that have the same
 * name and type (their entries in `old` are set to NULL). All or nothing: on
 * failure `old` is untouched. */
static int sinks_build(Alerts *a, const ConfigAlerts *config, Sink **old, size_t n_old, Sink ***ret,
                       bool **ret_reused)
{
        Sink **sinks = NULL;
        bool *reused = NULL;
        ConfigAlertSink *copies = NULL;
        int r = -ENOMEM;

        for (size_t i = 0; i < config->n_sinks; i++) {
                if (!sink_config_valid(&config->sinks[i]))
                        return -EINVAL;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(config->sinks[i].name, config->sinks[j].name) == 0)
                                return -EINVAL;
        }

        sinks = calloc(MAX(config->n_sinks, (size_t)1), sizeof(Sink *));
        reused = calloc(MAX(config->n_sinks, (size_t)1), sizeof(bool));
        copies = calloc(MAX(config->n_sinks, (size_t)1), sizeof(ConfigAlertSink));
        if (!sinks || !reused || !copies)
                goto fail;
        for (size_t i = 0; i < config->n_sinks; i++) {
                const ConfigAlertSink *c = &config->sinks[i];

                for (size_t j = 0; j < n_old; j++)
                        if (old[j] && old[j]->config.type == c->type && strcmp(old[j]->config.name, c->name) == 0) {
                                sinks[i] = old[j];
                                reused[i] = true;
                        }
                if (reused[i])
                        r = sink_config_copy(c, &copies[i]);
                else
                        r = sink_new(a, c, &sinks[i]);
                if (r < 0)
                        goto fail;
        }

        /* Nothing can fail from here on. */
        for (size_t i = 0; i < config->n_sinks; i++) {
                if (!reused[i])
                        continue;
                config_alert_sink_done(&sinks[i]->config);
                sinks[i]->config = copies[i];
                for (size_t j = 0; j < n_old; j++)
                        if (old[j] == sinks[i])
                                old[j] = NULL;
        }
        free(copies);
        *ret = sinks;
        *ret_reused = reused;
        return 0;
fail:
        for (size_t i = 0; i < config->n_sinks && sinks; i++) {
                if (reused && reused[i])
                        config_alert_sink_done(&copies[i]);
                else
                        sink_free(sinks[i]);
        }
        free(sinks);
        free(reused);
        free(copies);
        return r;
}

int alerts_new(sd_event *event, const ConfigAlerts *config, const char *hostname,
               const AlertsTuning *tuning, AlertsRecordFunc record_func, void *userdata,
               Alerts **ret_alerts)
{
        _cleanup_(alerts_freep) Alerts *a = NULL;
        _cleanup_free_ bool *reused = NULL;
        int r;

        assert(event && config && hostname && ret_alerts);

        if (tuning && !tuning_valid(tuning))
                return -EINVAL;
        a = calloc(1, sizeof(Alerts));
        if (!a)
                return -ENOMEM;
        a->event = sd_event_ref(event);
        a->tuning = tuning ? *tuning : ALERTS_TUNING_DEFAULT;
        a->record = record_func;
        a->userdata = userdata;
        a->repeat_after_usec = config->repeat_after_usec;
        a->hostname = utf8_sanitize(hostname);
        if (!a->hostname)
                return -ENOMEM;

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return -EIO;
        a->curl_initialised = true;
        a->multi = curl_multi_init();
        if (!a->multi)
                return -ENOMEM;
        if (curl_multi_setopt(a->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
            curl_multi_setopt(a->multi, CURLMOPT_SOCKETDATA, a) != CURLM_OK ||
            curl_multi_setopt(a->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
            curl_multi_setopt(a->multi, CURLMOPT_TIMERDATA, a) != CURLM_OK)
                return -EIO;
        r = sd_event_add_time(event, &a->timer, CLOCK_MONOTONIC, 0, USEC_PER_MSEC, on_timer, a);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(a->timer, SD_EVENT_OFF);
        if (r < 0)
                return r;

        r = sinks_build(a, config, NULL, 0, &a->sinks, &reused);
        if (r < 0)
                return r;
        a->n_sinks = config->n_sinks;
        *ret_alerts = TAKE_PTR(a);
        return 0;
}

int alerts_reconfigure(Alerts *a, const ConfigAlerts *config)
{
        _cleanup_free_ bool *reused = NULL;
        Sink **sinks;
        int r;

        assert(a && config);

        r = sinks_build(a, config, a->sinks, a->n_sinks, &sinks, &reused);
        if (r < 0)
                return r;
        /* sinks_build cleared the entries it took over; the rest are gone from the config. */
        sinks_free(a->sinks, a->n_sinks);
        a->sinks = sinks;
        a->n_sinks = config->n_sinks;
        a->repeat_after_usec = config->repeat_after_usec;
        return 0;
}

/* A malloc'd copy of s as valid UTF-8, cut to at most max bytes on a character boundary. */
static char *clean_string(const char *s, size_t max)
{
        char *c = utf8_sanitize(s ? s : "");
        size_t len;

        if (!c)
                return NULL;
        len = strlen(c);
        if (len > max) {
                len = max;
                while (len > 0 && ((unsigned char)c[len] & 0xC0) == 0x80)
                        len--;
                c[len] = '\0';
        }
        return c;
}

/* Queue a message for `s`, dropping the oldest waiting one when the queue is
 * full. The message in flight is never dropped (its transfer is under way). */
static void sink_enqueue(Sink *s, Message *m)
{
        if (s->n_queued >= s->alerts->tuning.queue_max) {
                Message *prev = s->easy ? s->head : NULL;

                if (prev && !prev->next) {
                        /* Only the transfer in flight is queued (queue_max 1): the new one goes. */
                        s->dropped++;
                        record(s, m, false, true, "queue full, message dropped");
                        message_free(m);
                        return;
                }
                Message *victim = sink_unlink(s, prev);
                s->dropped++;
                record(s, victim, false, true, "queue full, message dropped");
                message_free(victim);
        }
        if (s->tail)
                s->tail->next = m;
        else
                s->head = m;
        s->tail = m;
        s->n_queued++;
        sink_kick(s);
}

static int enqueue_all(Alerts *a, const AlertsNotice *notice)
{
        int n = 0;

        for (size_t i = 0; i < a->n_sinks; i++) {
                Sink *s = a->sinks[i];
                Message *m;
                int r;

                if (!sink_wants(s, notice->event))
                        continue;
                m = calloc(1, sizeof(Message));
                if (!m)
                        return -ENOMEM;
                m->event = notice->event;
                m->recovery = notice->recovery;
                m->key = strdup(notice->key);
                r = m->key ? s->ops->format(&s->config, notice, &m->payload) : -ENOMEM;
                if (r < 0) {
                        message_free(m);
                        return r;
                }
                m->payload_len = strlen(m->payload);
                sink_enqueue(s, m);
                n++;
        }
        return n;
}

static Condition *condition_find(Alerts *a, ConfigAlertEvent event, const char *key)
{
        for (size_t i = 0; i < a->n_conditions; i++)
                if (a->conditions[i].event == event && strcmp(a->conditions[i].key, key) == 0)
                        return &a->conditions[i];
        return NULL;
}

static void condition_remove(Alerts *a, Condition *c)
{
        size_t i = (size_t)(c - a->conditions);

        free(c->key);
        free(c->subject);
        a->conditions[i] = a->conditions[--a->n_conditions];
}

/* A slot for a new condition: appended, or the one sent longest ago when full. */
static Condition *condition_slot(Alerts *a)
{
        if (a->n_conditions >= ALERTS_CONDITIONS_MAX) {
                Condition *oldest = &a->conditions[0];

                for (size_t i = 1; i < a->n_conditions; i++)
                        if (a->conditions[i].sent_usec < oldest->sent_usec)
                                oldest = &a->conditions[i];
                free(oldest->key);
                free(oldest->subject);
                *oldest = (Condition){};
                return oldest;
        }
        if (a->n_conditions % 64 == 0) {
                Condition *n = reallocarray(a->conditions, a->n_conditions + 64, sizeof(Condition));
                if (!n)
                        return NULL;
                a->conditions = n;
        }
        a->conditions[a->n_conditions] = (Condition){};
        return &a->conditions[a->n_conditions++];
}

void alerts_set_clock(Alerts *a, AlertsClockFunc clock, void *userdata)
{
        a->clock = clock;
        a->clock_userdata = userdata;
}

int alerts_raise(Alerts *a, ConfigAlertEvent event, const char *key, const char *subject,
                 const char *text, json_t *details)
{
        _cleanup_free_ char *k = NULL, *subj = NULL, *t = NULL;
        uint64_t now = a->clock ? a->clock(a->clock_userdata) : now_usec(CLOCK_MONOTONIC);
        Condition *c;

        assert(a && event >= 0 && event < _CONFIG_ALERT_MAX);

        k = clean_string(key, ALERTS_KEY_MAX);
        subj = clean_string(subject, ALERTS_SUBJECT_MAX);
        t = clean_string(text, ALERTS_TEXT_MAX);
        if (!k || !subj || !t)
                return -ENOMEM;

        c = condition_find(a, event, k);
        if (c && now - c->sent_usec < a->repeat_after_usec) {
                /* Suppressed, but a later recovery should name the latest state. */
                free(c->subject);
                c->subject = TAKE_PTR(subj);
                return 0;
        }
        if (!c) {
                c = condition_slot(a);
                if (!c)
                        return -ENOMEM;
                c->event = event;
                c->key = strdup(k);
                if (!c->key) {
                        condition_remove(a, c);
                        return -ENOMEM;
                }
        }
        free(c->subject);
        c->subject = strdup(subj);
        c->sent_usec = now;
        if (!c->subject) {
                condition_remove(a, c);
                return -ENOMEM;
        }

        return enqueue_all(a, &(AlertsNotice){
                                      .event = event,
                                      .key = k,
                                      .subject = subj,
                                      .text = t,
                                      .host = a->hostname,
                                      .details = details,
                                      .realtime_usec = now_usec(CLOCK_REALTIME),
                              });
}

int alerts_clear(Alerts *a, ConfigAlertEvent event, const char *key, const char *text)
{
        _cleanup_free_ char *k = NULL, *t = NULL, *subj = NULL;
        Condition *c;

        assert(a && event >= 0 && event < _CONFIG_ALERT_MAX);

        k = clean_string(key, ALERTS_KEY_MAX);
        t = clean_string(text, ALERTS_TEXT_MAX);
        if (!k || !t)
                return -ENOMEM;
        c = condition_find(a, event, k);
        if (!c)
                return 0;
        subj = TAKE_PTR(c->subject);
        condition_remove(a, c);

        return enqueue_all(a, &(AlertsNotice){
                                      .event = event,
                                      .recovery = true,
                                      .key = k,
                                      .subject = subj ? subj : "",
                                      .text = t,
                                      .host = a->hostname,
                                      .realtime_usec = now_usec(CLOCK_REALTIME),
                              });
}

size_t alerts_n_sinks(const Alerts *a)
{
        return a ? a->n_sinks : 0;
}

int alerts_sink_stats(const Alerts *a, size_t i, AlertsSinkStats *ret_stats)
{
        const Sink *s;

        assert(a && ret_stats);
        if (i >= a->n_sinks)
                return -ENOENT;
        s = a->sinks[i];
        *ret_stats = (AlertsSinkStats){
                .name = s->config.name,
                .type = s->config.type,
                .sent = s->sent,
                .failed = s->failed,
                .attempts_failed = s->attempts_failed,
                .dropped = s->dropped,
                .queued = s->n_queued,
        };
        return 0;
}

bool alerts_busy(const Alerts *a)
{
        for (size_t i = 0; a && i < a->n_sinks; i++)
                if (a->sinks[i]->n_queued > 0)
                        return true;
        return false;
}
