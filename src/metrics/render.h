/* Prometheus text exposition of gpukeeper's state (GET /metrics).
 *
 * Rendering is a pure function of a MetricsInput: the latest GPU snapshot,
 * the active leases, the queue length and the daemon's counters. The daemon
 * fills the input on the event loop thread (daemon/metrics-source.c, called
 * through the MetricsSource of metrics/http.c); the unit tests fill it by hand. Nothing here calls NVML or
 * touches the store, so a scrape costs one pass over memory.
 *
 * Device series use dcgm-exporter's names, units and labels so that
 * existing DCGM Grafana dashboards work unchanged (REFERENCE.md); gpukeeper's
 * own series are named gpukeeper_* with the unit in the name. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "alerts/alerts.h"
#include "gpu/inventory.h"
#include "store/lease-store.h"

/* The login name of `uid`, or NULL when it has none (the uid is shown then). */
typedef const char *(*MetricsUserNameFunc)(void *userdata, uid_t uid);

/* One MIG-mode GPU's room (issue 13): free memory slices of its 8, and the
 * instances the daemon made on demand. */
typedef struct MetricsMig {
        const char *uuid;
        unsigned index; /* NVML index, the gpu label */
        int free_slices;
        int on_demand;
} MetricsMig;
/* One refused-open counter of strict mode's fence. */
typedef struct MetricsFenceDenied {
        uid_t uid;
        char device[64]; /* "/dev/nvidia1", "/dev/nvidia-caps/nvidia-cap12", or "major:minor" */
        uint64_t count;
} MetricsFenceDenied;

typedef struct MetricsInput {
        const GpuSnapshot *snapshot;      /* may be NULL: no device series */
        const char *hostname;             /* the Hostname label of device series */
        const char *version;              /* gpukeeper_build_info{version} */
        const StoredLease *const *leases; /* active leases */
        size_t n_leases;
        size_t queue_length;
        uint64_t violations_total;   /* violations opened since the daemon started */
        uint64_t signals_sent_total; /* SIGTERM and SIGKILL sent since the daemon started */
        uint64_t log_suppressed_total;       /* repeated warnings held back by rate limits */
        uint64_t connections_refused_total;  /* socket connections refused as busy */
        uint64_t audit_suppressed_total;     /* repeated refusals not given an audit row */
        uint64_t status_cached_total;        /* status replies sent from the status cache */
        uint64_t status_built_total;         /* status replies built (cache misses) */
        uint64_t checkpoints_thread_total;   /* state database WAL checkpoints by its thread */
        uint64_t checkpoints_commit_total;   /* ... by a commit at the WAL's hard limit */
        const AlertsSinkStats *sinks;
        size_t n_sinks;
        bool per_process;  /* add gpukeeper_process_gpu_memory_used_bytes */
        uint64_t now_usec; /* CLOCK_REALTIME, for leased device-seconds */
        MetricsUserNameFunc user_name;
        void *userdata;
        const MetricsMig *mig; /* MIG-mode GPUs; may be NULL */
        size_t n_mig;
        int fence_state; /* 0: not in strict mode (no fence series); 1: fence active; 2: strict, inactive */
        const MetricsFenceDenied *fence_denied;
        size_t n_fence_denied;
} MetricsInput;

/* Render the whole exposition. On success *ret is a malloc'd text of
 * *ret_len bytes (also NUL-terminated). Returns 0 or -ENOMEM. */
int metrics_render(const MetricsInput *in, char **ret, size_t *ret_len);

/* A render buffer kept between scrapes: its memory is reused, so a scrape
 * neither grows a new buffer by doubling nor faults its pages in again
 * after glibc returned them (a 64-GPU exposition is about a megabyte). */
typedef struct MetricsBuffer {
        char *data;       /* NUL-terminated text of len bytes after a render */
        size_t len;
        size_t allocated; /* bytes at data; never shrinks */
} MetricsBuffer;

/* Render the exposition into b, replacing what it held. Returns 0, or
 * -ENOMEM (b then holds no text but keeps its memory). */
int metrics_render_buffer(const MetricsInput *in, MetricsBuffer *b);

/* Free b's memory; b is then empty and may be reused. */
void metrics_buffer_done(MetricsBuffer *b);

/* Write `s` as a label value body per the text format: backslash, double
 * quote and newline escaped; bytes that are not valid UTF-8 replaced (a
 * scraper rejects the whole scrape otherwise). */
void metrics_write_label_value(FILE *f, const char *s);
