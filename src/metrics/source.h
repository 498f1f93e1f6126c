/* What the HTTP listener (metrics/http.h) and the dashboard's API
 * (metrics/api.h) read: a narrow source the daemon fills
 * (daemon/metrics-source.c), as render.c reads a MetricsInput. Nothing in
 * src/metrics/ sees the daemon's internals or includes a daemon header; the
 * unit tests can fill a source of their own.
 *
 * Every callback runs on the event loop thread, between sampler ticks, and
 * gets `userdata`. Strings and snapshots returned are valid until the
 * request handler returns. */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "config/http.h"
#include "gpu/inventory.h"
#include "metrics/render.h"
#include "store/read-queue.h"
#include "store/store.h"
#include "store/violation-store.h"

typedef struct MetricsSource {
        void *userdata;  /* handed to every callback */
        sd_event *event; /* the loop the listener runs on */
        Store *store;    /* read-only queries of the API (violations, alerts) */
        /* /api/usage and /api/history run here, off the loop; NULL: on
         * `store`, at once (unit tests). */
        ReadQueue *reads;

        /* The http section in force now: a reload applies token and
         * per_process_metrics at once (the address is fixed for the
         * listener's life). Never NULL. */
        const ConfigHttp *(*http)(void *userdata);
        /* The latest GPU snapshot, or NULL. */
        const GpuSnapshot *(*snapshot)(void *userdata);
        /* Render the whole /metrics exposition (metrics_render_buffer() on
         * a MetricsInput filled from the state) into b, whose memory the
         * listener keeps between scrapes. Returns 0 or -ENOMEM. */
        int (*render)(void *userdata, MetricsBuffer *b);
        /* The `status` op's result (a new reference). Returns 0 or -errno. */
        int (*status)(void *userdata, json_t **ret);
        /* A stored violation as the `status` op shows it; NULL on ENOMEM. */
        json_t *(*violation_json)(void *userdata, const StoredViolation *v);
        /* The login name of `uid`, or NULL when it has none. */
        const char *(*user_name)(void *userdata, uid_t uid);
} MetricsSource;
