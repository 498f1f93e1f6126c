/* Fuzz target for the HTTP request path of /metrics, the dashboard and its
 * API: libmicrohttpd's parsing of what a peer sends (request line, URL and
 * query, headers, cookies), then ours: the token in the Authorization header,
 * the gk_token cookie and ?token=, the Host check, the routes and their
 * parameters (days=, hours=, gpu=), the JSON replies from a real store.
 *
 * Input: byte 0 chooses whether a token is set (bit 0); the rest is sent as
 * is over a loopback TCP connection to the real listener (metrics_new on an
 * sd-event loop, a MetricsSource of fixed answers), the write side is shut,
 * and the loop runs until the listener has answered and closed. Invariant:
 * every answer starts with an HTTP status line, and what needs the token is
 * never answered 200 without it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/time-util.h"
#include "fuzz.h"
#include "metrics/http.h"
#include "metrics/source.h"
#include "store/store.h"

#define TOKEN "s3cret-fuzz"

static struct {
        sd_event *event;
        Store *store;
        Metrics *metrics;
        ConfigHttp http;
        char dir[64];
        uint16_t port;
} F;

static const ConfigHttp *src_http(void *userdata)
{
        return &F.http;
}

static const GpuSnapshot *src_snapshot(void *userdata)
{
        return NULL;
}

static int src_render(void *userdata, MetricsBuffer *b)
{
        static const char text[] = "gpukeeper_up 1\n";

        if (b->allocated < sizeof text) {
                char *p = realloc(b->data, sizeof text);

                if (!p)
                        return -ENOMEM;
                b->data = p;
                b->allocated = sizeof text;
        }
        memcpy(b->data, text, sizeof text);
        b->len = sizeof text - 1;
        return 0;
}

static int src_status(void *userdata, json_t **ret)
{
        *ret = json_pack("{s:s, s:[{s:s, s:[{s:i, s:s}]}], s:[], s:[]}", "hostname", "fuzz",
                         "gpus", "uuid", "GPU-0", "processes", "pid", 1, "command",
                         "python --api-key=k", "leases", "queue");
        return *ret ? 0 : -ENOMEM;
}

static json_t *src_violation(void *userdata, const StoredViolation *v)
{
        return json_object();
}

static const char *src_user_name(void *userdata, uid_t uid)
{
        return "someone";
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)remove(path);
        return 0;
}

static void cleanup(void)
{
        metrics_free(F.metrics);
        store_close(F.store);
        sd_event_unref(F.event);
        free(F.http.listen.text);
        nftw(F.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        struct sockaddr_in *sin = (struct sockaddr_in *)&F.http.listen.addr;
        struct sockaddr_in probe = {.sin_family = AF_INET};
        socklen_t len = sizeof probe;
        char text[32], *error = NULL;
        MetricsSource src;
        int fd;

        snprintf(F.dir, sizeof F.dir, "/tmp/gk-fuzz-http-XXXXXX");
        CHECK(mkdtemp(F.dir));
        CHECK(store_open(F.dir, &F.store, &error) == 0);
        CHECK(sd_event_new(&F.event) >= 0);

        /* A free port: bind 0, read it, let it go for the listener. */
        probe.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0);
        CHECK(bind(fd, (struct sockaddr *)&probe, sizeof probe) == 0);
        CHECK(getsockname(fd, (struct sockaddr *)&probe, &len) == 0);
        close(fd);
        F.port = ntohs(probe.sin_port);

        snprintf(text, sizeof text, "127.0.0.1:%u", (unsigned)F.port);
        F.http.listen.text = strdup(text);
        CHECK(F.http.listen.text);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(F.port);
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        F.http.listen.addr_len = sizeof *sin;
        F.http.listen.loopback = true;

        src = (MetricsSource){
                .event = F.event,
                .store = F.store,
                .http = src_http,
                .snapshot = src_snapshot,
                .render = src_render,
                .status = src_status,
                .violation_json = src_violation,
                .user_name = src_user_name,
        };
        CHECK(metrics_new(&src, &F.metrics) == 0);
        atexit(cleanup);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(F.port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        char reply[256], scratch[4096];
        size_t got = 0, off = 0;
        uint64_t progress = now_usec(CLOCK_MONOTONIC);
        bool token;
        int fd, rounds = 0;

        if (size == 0)
                return 0;
        token = data[0] & 1;
        F.http.token = token ? (char *)TOKEN : NULL;
        data++;
        size--;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        CHECK(fd >= 0);
        CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 || errno == EINPROGRESS);

        /* Send while letting the listener run (it may answer before all is
         * sent, and then close), read the answer until it closes. */
        for (;;) {
                ssize_t n;

                CHECK(rounds++ < 20000);
                /* A request that never completes would wait for the
                 * listener's idle timeout (seconds): 5 ms without progress
                 * ends the exchange instead (the close reaches it at once). */
                if (now_usec(CLOCK_MONOTONIC) - progress > 5 * USEC_PER_MSEC)
                        break;
                (void)sd_event_run(F.event, 1000);
                if (off < size) {
                        n = send(fd, data + off, size - off, MSG_NOSIGNAL);
                        if (n > 0) {
                                progress = now_usec(CLOCK_MONOTONIC);
                                off += (size_t)n;
                                if (off == size)
                                        (void)shutdown(fd, SHUT_WR);
                        } else if (n < 0 && errno != EAGAIN)
                                off = size; /* closed on us: read what came */
                } else if (size == 0 && rounds == 1)
                        (void)shutdown(fd, SHUT_WR);
                if (got < sizeof reply)
                        n = recv(fd, reply + got, sizeof reply - got, 0);
                else
                        n = recv(fd, scratch, sizeof scratch, 0); /* the rest: dropped */
                if (n == 0 || (n < 0 && errno != EAGAIN))
                        break;
                if (n > 0)
                        progress = now_usec(CLOCK_MONOTONIC);
                if (n > 0 && got < sizeof reply)
                        got += (size_t)n;
        }
        close(fd);
        /* Let the listener see the close before the next input. */
        (void)sd_event_run(F.event, 0);

        if (got >= 12) {
                CHECK(memcmp(reply, "HTTP/1.", 7) == 0);
                /* With a token set, nothing is answered 200 without it. */
                if (token && memcmp(reply + 9, "200", 3) == 0) {
                        const char *body = (const char *)data;

                        CHECK(memmem(body, size, TOKEN, strlen(TOKEN)));
                }
        }
        return 0;
}
