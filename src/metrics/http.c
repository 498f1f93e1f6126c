/* HTTP listener for /metrics and the dashboard on libmicrohttpd, integrated
 * into sd-event; see http.h.
 *
 * Bounded by construction: at most HTTP_MAX_CONNECTIONS connections, each
 * closed after HTTP_CONNECTION_TIMEOUT_S without a byte (so a request must
 * arrive quickly: half a request sent and abandoned holds a slot that long at
 * most), with a small per-connection memory pool; only GET and HEAD of the
 * routes below are served and no request body is read. There is no limit per
 * client address on loopback: every local user comes from 127.0.0.0/8 (any
 * of its addresses), so such a limit would only lock the scraper out along
 * with whoever fills it. A pending connection waits in a large backlog and
 * is accepted, in order, as soon as a slot frees.
 *
 * Without a token, the Host header must name a loopback address or
 * "localhost" (with any port), or the listen address itself: a web page the
 * user opens elsewhere cannot read the API through DNS rebinding. Command
 * lines of processes are left out of /api/status unless a token guards it or
 * http.api_commands says so (argv can hold secrets).
 *
 * /api/usage and /api/history read history whose size grows with the lab's
 * age: they run in the store's read queue (store/read-queue.h), off the
 * event loop, while their connection is suspended. The listener counts as
 * one owner there: HTTP_READS_IN_FLIGHT of its reads at once, the others
 * waiting in its own line (at most one per connection), so a page that
 * asks for the history of every GPU at once is answered in turn and
 * nobody's report waits for more than two of them.
 *
 * Routes: /metrics (Prometheus text), / (the dashboard page, embedded in
 * the binary), /api/status, /api/usage?days=N, /api/history?gpu=UUID&hours=N
 * (JSON, see metrics/api.h). When http.token is set every route needs it,
 * as "Authorization: Bearer TOKEN" or as the cookie gk_token. A browser
 * gets the cookie by opening /?token=TOKEN once: the page is served with
 * Set-Cookie (HttpOnly, SameSite=Strict), and its own fetches carry it. */
#include "metrics/http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "basic/macro.h"
#include "basic/time-util.h"
#include "metrics/api.h"
#include "metrics/dashboard.h"
#include "store/read-queue.h"

#define HTTP_MAX_CONNECTIONS 256
/* Off loopback, addresses are people: a few connections each. */
#define HTTP_MAX_CONNECTIONS_PER_IP 16
#define HTTP_CONNECTION_TIMEOUT_S 3
#define HTTP_HOST_MAX 300
#define HTTP_CONNECTION_MEMORY (16 * 1024)
/* The Set-Cookie value: the token (config-limited) and its attributes. */
#define HTTP_COOKIE_MAX 1024
/* The listener's owner in the read queue (persons are uids and 2^32 + n). */
#define HTTP_READS_OWNER UINT64_MAX
#define HTTP_READS_IN_FLIGHT READ_QUEUE_PER_OWNER

/* A /metrics render buffer. The response sends straight from it and hands
 * it back when MHD is done with it (render_done), so the next scrape
 * renders into memory that is already there; a scrape that comes while
 * the kept one is still being sent gets one of its own. */
typedef struct RenderSlot {
        Metrics *owner;
        MetricsBuffer buf;
} RenderSlot;

/* An /api/usage or /api/history request: its connection is suspended from
 * the first call of the handler until `answered`; freed when MHD is done
 * with the request (on_completed). */
typedef struct HttpRead HttpRead;
struct HttpRead {
        struct MHD_Connection *c;
        ApiRead q;
        int r;
        bool answered;
        HttpRead *prev, *next; /* in Metrics.reads while not answered */
};

struct Metrics {
        MetricsSource source;
        struct MHD_Daemon *mhd;
        sd_event_source *io;
        sd_event_source *timer;
        char *listen;
        RenderSlot *spare; /* the kept render buffer; NULL while in use */
        /* Reads not answered yet: the first `in_flight` in the read queue,
         * the rest waiting for their turn, oldest first. */
        HttpRead *reads, *reads_tail;
        unsigned in_flight;
};

static void run_mhd(Metrics *m);

/* Whether `given` is exactly `token`, compared in time independent of where
 * they differ. */
static bool token_equal(const char *given, const char *token)
{
        size_t n = strlen(given), t = strlen(token);
        unsigned char diff;

        /* The length of the token is no secret worth hiding (it is in the
         * config's size), its bytes are: every byte is compared. */
        diff = n != t;
        for (size_t i = 0; i < t; i++)
                diff |= (unsigned char)(token[i] ^ (i < n ? given[i] : 0));
        return diff == 0;
}

bool metrics_authorized(const char *header, const char *token)
{
        static const char prefix[] = "Bearer ";

        if (!token)
                return true;
        if (!header || strncmp(header, prefix, sizeof prefix - 1) != 0)
                return false;
        return token_equal(header + sizeof prefix - 1, token);
}

bool metrics_cookie_authorized(const char *cookie, const char *token)
{
        if (!token)
                return true;
        return cookie && token_equal(cookie, token);
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text,
                                  const char *header, const char *value)
{
        struct MHD_Response *resp;
        enum MHD_Result ok;

        resp = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
        if (!resp)
                return MHD_NO;
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                      "text/plain; charset=utf-8");
        if (header)
                (void)MHD_add_response_header(resp, header, value);
        ok = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return ok;
}

/* Queue `body` (malloc'd, taken over whatever happens) with status 200. */
static enum MHD_Result reply_owned(struct MHD_Connection *c, char *body, size_t len,
                                   const char *type)
{
        struct MHD_Response *resp;
        enum MHD_Result ok;

        resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(body);
                return MHD_NO;
        }
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        ok = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return ok;
}

static void render_slot_free(RenderSlot *s)
{
        if (!s)
                return;
        metrics_buffer_done(&s->buf);
        free(s);
}

/* MHD is done with a /metrics response: keep its buffer for the next. */
static void render_done(void *cls)
{
        RenderSlot *s = cls;

        if (!s->owner->spare)
                s->owner->spare = s;
        else
                render_slot_free(s);
}

/* Render /metrics and queue it, sent from the render buffer itself. */
static enum MHD_Result reply_metrics(struct MHD_Connection *c, Metrics *m)
{
        RenderSlot *s = TAKE_PTR(m->spare);
        struct MHD_Response *resp;
        enum MHD_Result ok;

        if (!s) {
                s = calloc(1, sizeof(*s));
                if (!s)
                        return MHD_NO;
                s->owner = m;
        }
        if (m->source.render(m->source.userdata, &s->buf) < 0) {
                render_done(s);
                return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "Out of memory.\n", NULL,
                                  NULL);
        }
        resp = MHD_create_response_from_buffer_with_free_callback_cls(s->buf.len, s->buf.data,
                                                                      render_done, s);
        if (!resp) {
                render_done(s);
                return MHD_NO;
        }
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                      "text/plain; version=0.0.4; charset=utf-8");
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        ok = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return ok;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, int r, json_t *o)
{
        char *body;

        if (r == -EINVAL)
                return reply_text(c, MHD_HTTP_BAD_REQUEST,
                                  "Bad request: days=1..90, hours=1..168, gpu=UUID; see "
                                  "docs/http-api.md.\n",
                                  NULL, NULL);
        if (r == -ENOENT)
                return reply_text(c, MHD_HTTP_NOT_FOUND, "No such device.\n", NULL, NULL);
        if (r < 0)
                return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "Could not read the state.\n",
                                  NULL, NULL);
        body = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!body)
                return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "Out of memory.\n", NULL,
                                  NULL);
        return reply_owned(c, body, strlen(body), "application/json");
}

/* Whether `token` can be a cookie value as it is (RFC 6265 cookie-octets):
 * a token with ; , " \\ or a space is only sent by the page as a header. */
static bool cookie_safe(const char *token)
{
        for (const char *p = token; *p; p++)
                if (*p <= ' ' || *p == '"' || *p == ',' || *p == ';' || *p == '\\' || *p > '~')
                        return false;
        return true;
}

/* The page itself, and the cookie when it was opened with the right
 * ?token= (a wrong one was refused before). The policy forbids anything
 * not in the page: it loads nothing from anywhere, only fetches its API. */
static enum MHD_Result reply_dashboard(struct MHD_Connection *c, const char *token,
                                       bool set_cookie)
{
        struct MHD_Response *resp;
        enum MHD_Result ok;
        char cookie[HTTP_COOKIE_MAX];

        resp = MHD_create_response_from_buffer(strlen(metrics_dashboard_html),
                                               (void *)metrics_dashboard_html,
                                               MHD_RESPMEM_PERSISTENT);
        if (!resp)
                return MHD_NO;
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                      "text/html; charset=utf-8");
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        (void)MHD_add_response_header(resp, "Content-Security-Policy",
                                      "default-src 'none'; script-src 'unsafe-inline'; "
                                      "style-src 'unsafe-inline'; connect-src 'self'; "
                                      "img-src data:; base-uri 'none'; form-action 'none'");
        (void)MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        (void)MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
        if (set_cookie && token && cookie_safe(token) &&
            (size_t)snprintf(cookie, sizeof cookie,
                             "gk_token=%s; Path=/; HttpOnly; SameSite=Strict", token) <
                sizeof cookie)
                (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, cookie);
        ok = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return ok;
}

/* Whether `host` (a Host header: name or address, then an optional :port)
 * is one this listener answers to without a token: localhost, an address of
 * 127.0.0.0/8, ::1, or the host part of http.listen. */
bool metrics_host_allowed(const char *host, const char *listen)
{
        char name[HTTP_HOST_MAX];
        struct in_addr a4;
        size_t n;
        const char *end;

        if (!host)
                return true; /* HTTP/1.0 without Host: no browser sends that */
        n = strlen(host);
        if (n == 0 || n >= sizeof name)
                return false;
        if (host[0] == '[') {
                end = strchr(host, ']');
                if (!end || (end[1] != '\0' && end[1] != ':'))
                        return false;
                n = (size_t)(end - host) + 1;
        } else {
                end = strchr(host, ':');
                if (end)
                        n = (size_t)(end - host);
        }
        memcpy(name, host, n);
        name[n] = '\0';
        if (host[n] == ':' && (host[n + 1] == '\0' || strspn(host + n + 1, "0123456789") !=
                                                            strlen(host + n + 1)))
                return false;
        /* A final dot names the same host ("localhost."). */
        if (n > 1 && name[n - 1] == '.')
                name[--n] = '\0';
        if (strcasecmp(name, "localhost") == 0 || strcmp(name, "[::1]") == 0)
                return true;
        if (inet_pton(AF_INET, name, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127)
                return true;
        if (listen) {
                const char *colon = strrchr(listen, ':');
                size_t ln = colon ? (size_t)(colon - listen) : strlen(listen);

                if (ln == n && strncasecmp(listen, name, n) == 0)
                        return true;
        }
        return false;
}

/* Set "command" to null in every object of `o`, recursively. */
static void drop_commands(json_t *o)
{
        const char *key;
        json_t *v;
        size_t i;

        if (json_is_object(o)) {
                json_object_foreach(o, key, v) {
                        if (strcmp(key, "command") == 0)
                                (void)json_object_set_new(o, key, json_null());
                        else
                                drop_commands(v);
                }
        } else if (json_is_array(o))
                json_array_foreach(o, i, v)
                        drop_commands(v);
}

static void reads_unlink(Metrics *m, HttpRead *x)
{
        if (x->prev)
                x->prev->next = x->next;
        else
                m->reads = x->next;
        if (x->next)
                x->next->prev = x->prev;
        else
                m->reads_tail = x->prev;
        x->prev = x->next = NULL;
}

/* The answer is in (or the read failed): take it out of the line and let
 * MHD call the handler again, which replies. */
static void read_answered(Metrics *m, HttpRead *x, int r)
{
        x->r = r;
        x->answered = true;
        reads_unlink(m, x);
        MHD_resume_connection(x->c);
}

static int read_run(Store *reader, void *state)
{
        HttpRead *x = state;

        return api_read(reader, &x->q);
}

static void pump_reads(Metrics *m);

static void read_done(void *state, int r, void *userdata)
{
        HttpRead *x = state;
        Metrics *m = userdata;

        m->in_flight--;
        read_answered(m, x, r);
        if (r == -ECANCELED)
                return; /* the queue is going: the daemon stops */
        pump_reads(m);
        run_mhd(m);
}

/* Hand the queue the reads whose turn has come. One it refuses (full with
 * others' reports) is answered busy. */
static void pump_reads(Metrics *m)
{
        HttpRead *x = m->reads;

        for (unsigned i = 0; x && i < m->in_flight; i++)
                x = x->next;
        while (x && m->in_flight < HTTP_READS_IN_FLIGHT) {
                HttpRead *next = x->next;
                int r = read_queue_submit(m->source.reads, HTTP_READS_OWNER, read_run, read_done,
                                          x, m);

                if (r >= 0)
                        m->in_flight++;
                else
                        read_answered(m, x, r == -ENOMEM ? r : -EAGAIN);
                x = next;
        }
}

/* The first call for /api/usage or /api/history: queue the read and
 * suspend the connection until it is answered. */
static enum MHD_Result start_read(Metrics *m, struct MHD_Connection *c, ApiReadKind kind,
                                  unsigned count, const char *uuid, void **req_cls)
{
        HttpRead *x;
        json_t *o = NULL;
        int r;

        if (!m->source.reads) {
                r = kind == API_READ_USAGE ? api_usage(&m->source, count, &o)
                                           : api_history(&m->source, uuid, count, &o);
                return reply_json(c, r, o);
        }
        x = calloc(1, sizeof *x);
        if (!x)
                return MHD_NO;
        r = api_read_prepare(&m->source, kind, count, uuid, &x->q);
        if (r < 0) {
                free(x);
                return reply_json(c, r, NULL);
        }
        x->c = c;
        x->prev = m->reads_tail;
        if (m->reads_tail)
                m->reads_tail->next = x;
        else
                m->reads = x;
        m->reads_tail = x;
        *req_cls = x; /* on_completed frees it */
        MHD_suspend_connection(c);
        pump_reads(m);
        return MHD_YES;
}

static enum MHD_Result answer_read(Metrics *m, struct MHD_Connection *c, HttpRead *x)
{
        json_t *o = NULL;
        int r = x->r;

        if (!x->answered)
                return MHD_YES; /* not resumed yet (cannot happen: suspended) */
        if (r == -EAGAIN)
                return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                  "Busy: too many reports and history reads at once; try again "
                                  "in a moment.\n",
                                  MHD_HTTP_HEADER_RETRY_AFTER, "1");
        if (r >= 0)
                r = api_read_json(&m->source, &x->q, &o);
        return reply_json(c, r, o);
}

/* MHD is done with a request: free its read, if it had one. */
static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
        HttpRead *x = *req_cls;

        (void)cls;
        (void)c;
        (void)toe;
        if (!x)
                return;
        api_read_done(&x->q);
        free(x);
        *req_cls = NULL;
}

static const char *arg(struct MHD_Connection *c, const char *name)
{
        return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
        Metrics *m = cls;
        const MetricsSource *src = &m->source;
        const char *token = src->http(src->userdata)->token, *query_token = NULL;
        bool page = strcmp(url, "/") == 0, authorized;
        json_t *o = NULL;
        unsigned n;
        int r;

        if (*req_cls)
                /* A read queued at the first call, answered since. */
                return answer_read(m, c, *req_cls);
        if (!page && strcmp(url, "/metrics") != 0 && strcmp(url, "/api/status") != 0 &&
            strcmp(url, "/api/usage") != 0 && strcmp(url, "/api/history") != 0)
                return reply_text(c, MHD_HTTP_NOT_FOUND,
                                  "Not found: /, /metrics and /api/{status,usage,history} are "
                                  "served.\n",
                                  NULL, NULL);
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
                return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "Method not allowed.\n",
                                  MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        if (page)
                query_token = arg(c, "token");
        authorized =
            metrics_authorized(
                MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                token) ||
            metrics_cookie_authorized(MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "gk_token"),
                                      token) ||
            (query_token && metrics_cookie_authorized(query_token, token));
        if (!authorized)
                return reply_text(c, MHD_HTTP_UNAUTHORIZED,
                                  "Unauthorized: send the token (see http.token).\n",
                                  MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"gpukeeper\"");
        if (!token &&
            !metrics_host_allowed(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                              MHD_HTTP_HEADER_HOST),
                                  m->listen))
                return reply_text(c, MHD_HTTP_FORBIDDEN,
                                  "Forbidden: without http.token only requests to localhost "
                                  "or a loopback address are answered.\n",
                                  NULL, NULL);

        if (page)
                return reply_dashboard(c, token, query_token != NULL);
        if (strcmp(url, "/metrics") != 0) {
                /* The argument order of a call is unspecified: o is read
                 * only after the builder has run. */
                if (strcmp(url, "/api/status") == 0) {
                        r = api_status(src, &o);
                        if (r >= 0 && !token && !src->http(src->userdata)->api_commands)
                                drop_commands(o);
                } else if (strcmp(url, "/api/usage") == 0) {
                        /* Parameters and defaults: docs/http-api.md. */
                        const char *days = arg(c, "days");

                        n = API_USAGE_DAYS_DEFAULT;
                        r = days ? api_parse_count(days, 1, API_USAGE_DAYS_MAX, &n) : 0;
                        if (r >= 0)
                                return start_read(m, c, API_READ_USAGE, n, NULL, req_cls);
                } else {
                        const char *gpu = arg(c, "gpu"), *hours = arg(c, "hours");

                        n = API_HISTORY_HOURS_DEFAULT;
                        r = hours ? api_parse_count(hours, 1, API_HISTORY_HOURS_MAX, &n) : 0;
                        if (r >= 0 && (!gpu || !*gpu))
                                return reply_text(c, MHD_HTTP_BAD_REQUEST,
                                                  "Bad request: /api/history needs gpu=UUID "
                                                  "(and takes hours=1..168, default 24); see "
                                                  "docs/http-api.md.\n",
                                                  NULL, NULL);
                        if (r >= 0)
                                return start_read(m, c, API_READ_HISTORY, n, gpu, req_cls);
                }
                return reply_json(c, r, o);
        }

        return reply_metrics(c, m);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata);

/* Let MHD do its work, then arm the timer for when it wants to run next
 * (0: at once, e.g. a request it has read but not answered yet). Arming
 * fails only on ENOMEM; the next io event retries it. */
static void run_mhd(Metrics *m)
{
        MHD_UNSIGNED_LONG_LONG ms;
        int r;

        /* At the connection limit MHD takes its listening socket out of its
         * epoll set, and puts it back at the start of the MHD_run() after the
         * one that closed a connection. A second run makes that happen now:
         * with every connection gone no event would ever come for it, and
         * the listener stayed deaf for good. */
        (void)MHD_run(m->mhd);
        (void)MHD_run(m->mhd);
        if (MHD_get_timeout(m->mhd, &ms) != MHD_YES)
                /* Nothing due; look again after one idle timeout anyway, so
                 * a listening socket left out of the set cannot stay out. */
                ms = HTTP_CONNECTION_TIMEOUT_S * 1000;
        r = sd_event_source_set_time(m->timer, now_usec(CLOCK_MONOTONIC) + ms * USEC_PER_MSEC);
        if (r >= 0)
                (void)sd_event_source_set_enabled(m->timer, SD_EVENT_ONESHOT);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        run_mhd(userdata);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        run_mhd(userdata);
        return 0;
}

static int listen_socket(const ConfigListen *l)
{
        _cleanup_close_ int fd = -1;
        int one = 1;

        fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
                return negative_errno();
        if (l->addr.ss_family == AF_INET6 &&
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
                return negative_errno();
        if (bind(fd, (const struct sockaddr *)&l->addr, l->addr_len) < 0)
                return negative_errno();
        if (listen(fd, SOMAXCONN) < 0)
                return negative_errno();
        return TAKE_FD(fd);
}

int metrics_new(const MetricsSource *source, Metrics **ret)
{
        const ConfigListen *l = &source->http(source->userdata)->listen;
        const union MHD_DaemonInfo *info;
        Metrics *m;
        int fd, r;

        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->source = *source;
        m->listen = strdup(l->text);
        if (!m->listen) {
                metrics_free(m);
                return -ENOMEM;
        }
        fd = listen_socket(l);
        if (fd < 0) {
                metrics_free(m);
                return fd;
        }
        /* MHD owns fd from here and closes it in MHD_stop_daemon(). */
        m->mhd = MHD_start_daemon(
            MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                (l->addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
            0, NULL, NULL, on_request, m, MHD_OPTION_NOTIFY_COMPLETED, on_completed, m,
            MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
            (unsigned)HTTP_MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
            l->loopback ? 0u : (unsigned)HTTP_MAX_CONNECTIONS_PER_IP,
            MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned)HTTP_CONNECTION_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
            (size_t)HTTP_CONNECTION_MEMORY, MHD_OPTION_END);
        if (!m->mhd) {
                close(fd);
                metrics_free(m);
                return -EIO;
        }
        info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info) {
                metrics_free(m);
                return -EIO;
        }
        r = sd_event_add_io(source->event, &m->io, info->epoll_fd, EPOLLIN, on_io, m);
        if (r >= 0)
                r = sd_event_add_time(source->event, &m->timer, CLOCK_MONOTONIC, 0, 0, on_timer, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->timer, SD_EVENT_OFF);
        if (r < 0) {
                metrics_free(m);
                return r;
        }
        *ret = m;
        return 0;
}

void metrics_free(Metrics *m)
{
        if (!m)
                return;
        sd_event_source_disable_unref(m->io);
        sd_event_source_disable_unref(m->timer);
        /* MHD refuses to stop with a connection suspended: resume those
         * still waiting for their turn (the read queue, freed before, has
         * answered those it held); stopping closes them. */
        while (m->reads)
                read_answered(m, m->reads, -ECANCELED);
        /* Stopping MHD destroys the responses still queued, which hands
         * their render buffers back (render_done) before they go. */
        if (m->mhd)
                MHD_stop_daemon(m->mhd);
        render_slot_free(m->spare);
        free(m->listen);
        free(m);
}
