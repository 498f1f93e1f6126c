/* The daemon's HTTP listener: GET /metrics, the dashboard (GET /) and its
 * JSON API (GET /api/...), served on the event loop thread.
 *
 * libmicrohttpd runs without threads of its own (MHD_USE_EPOLL, external
 * polling): its epoll fd is one sd-event io source and its timeout one
 * sd-event timer, so a request handler reads the state through its
 * MetricsSource (metrics/source.h) between sampler ticks, without locks. A scrape renders from the latest
 * snapshot (metrics/render.h) and never calls NVML. */
#pragma once

#include <stdbool.h>

#include "metrics/source.h"

typedef struct Metrics Metrics;

/* Listen on source->http()->listen and serve until metrics_free(); the
 * source is copied. The token and per_process_metrics are read through
 * source->http() at every request, so a reload applies them at once; the
 * address is fixed for the listener's life. Returns 0, or -errno (the
 * socket could not be bound, say). */
int metrics_new(const MetricsSource *source, Metrics **ret);

/* Close the listener and every connection. NULL is fine. */
void metrics_free(Metrics *m);

/* Whether `header` (the Authorization header, may be NULL) is "Bearer TOKEN"
 * for exactly `token`, compared in time independent of where they differ. */
bool metrics_authorized(const char *header, const char *token);

/* Whether `cookie` (the gk_token cookie or the page's ?token=, may be NULL)
 * is exactly `token`; always true when no token is configured. */
bool metrics_cookie_authorized(const char *cookie, const char *token);

/* Whether a request with Host header `host` (NULL: none) is answered when no
 * token is set: localhost, 127.0.0.0/8 or [::1] with any port, or the host
 * part of `listen` (http.listen's text; may be NULL). Anything else could be
 * a DNS-rebinding page in a local browser. */
bool metrics_host_allowed(const char *host, const char *listen);
