/* Usage history in the state database: what every GPU and MIG instance did,
 * sample by sample, and the per-user usage reports built from it.
 *
 * Every sampler tick writes one raw row per device (`history_samples`) in one
 * transaction; a GPU held by shared leases (issue 14) has one row per
 * holder lease instead, with that lease's own memory use and its budget, so
 * a GPU three users share for an hour is an hour of shared time for each
 * of them, not three hours of whole GPUs for one. Each row carries the
 * length of time it stands for (the time since the previous tick, capped),
 * so sums are device-time integrals and do not depend on the sample
 * interval. Rows older than history.raw_hours are
 * rolled up into one row per (minute, device, holder) (`history_minutes`)
 * holding the same integrals, so a report gives the same answer before and
 * after a rollup; minute rows older than history.days are deleted. Rollup
 * and retention work in bounded batches so the daemon's loop never stalls.
 * Each tick also adds to one row per (hour, holder) over all devices
 * (`history_hours`), so a report over weeks reads whole hours from there
 * and only its ragged ends from the raw and minute rows.
 * Minute and hour rows keep the shared rows' part of their integrals
 * apart (shared_* columns, migration 11), so the reports can tell time on
 * whole devices from time on shared GPUs.
 *
 * Units: times are CLOCK_REALTIME microseconds since the epoch; durations
 * are microseconds ("usec") unless a name says seconds; memory is bytes;
 * power is milliwatts in the store and watts in HistoryPoint; utilisation
 * is percent 0..100. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/store.h"

#define HISTORY_UUID_MAX 96

/* The longest time one sample may stand for: a tick after a stall (or the
 * first tick after a start) is not credited with the whole gap. */
#define HISTORY_SAMPLE_MAX_USEC (60ULL * 1000000ULL)

/* One device (a whole GPU or a MIG instance) at one tick. */
typedef struct HistorySample {
        char device_uuid[HISTORY_UUID_MAX]; /* GPU-… or MIG-… */
        char gpu_uuid[HISTORY_UUID_MAX];    /* the GPU it is on (== device_uuid for a GPU) */
        int util_percent;                   /* 0..100; -1 unknown (MIG instances) */
        bool busy; /* in use by the daemon's idle rule (the caller decides) */
        uint64_t memory_used_bytes;
        uint64_t power_mw;  /* 0 unknown (MIG instances) */
        int64_t holder_uid; /* -1: not leased */
        int64_t lease_id;   /* 0: not leased; one row per (device, lease) at a tick */
        uint64_t share_bytes; /* the lease's memory budget on a shared GPU; 0: a whole device */
} HistorySample;

/* Write one tick: `n` samples taken at `ts_usec`, each standing for
 * `span_usec` (the time since the previous tick; clamped to
 * HISTORY_SAMPLE_MAX_USEC). One transaction, cached statements; the hour
 * rows are updated in the same transaction. */
int store_history_write(Store *s, uint64_t ts_usec, uint64_t span_usec, const HistorySample *samples,
                        size_t n);

/* One bounded step of housekeeping: roll raw rows older than
 * `raw_before_usec` into minute rows (at most `max_minutes` whole minutes of
 * raw data per call) and delete at most `max_minutes` minutes' worth of minute
 * rows older than `minutes_before_usec` (and the hour rows wholly before
 * them). One transaction. Returns 1 when
 * there is more to do (call again soon), 0 when caught up, or -errno. */
int store_history_rollup(Store *s, uint64_t raw_before_usec, uint64_t minutes_before_usec,
                         unsigned max_minutes);

/* Per user usage over [since_usec, until_usec). Raw and minute rows are both
 * counted (a rolled-up minute is attributed to its minute start). The
 * leased / busy / memory figures are whole devices (GPUs and MIG instances
 * held alone); shared leases are counted apart, each lease's own time. */
typedef struct HistoryUsage {
        int64_t uid;
        double leased_device_sec;        /* whole-device time held by this user */
        double busy_device_sec;          /* ... while busy */
        double idle_share;               /* 1 - busy/leased; 0 when nothing leased */
        double memory_byte_sec;          /* GPU memory in use on held devices, integrated */
        double shared_device_sec;        /* time held as shared leases (per lease) */
        double shared_busy_device_sec;   /* ... while the user had a process on the GPU */
        double shared_memory_byte_sec;   /* the user's own memory on shared GPUs, integrated */
        double shared_budget_byte_sec;   /* the leases' budgets, integrated over that time */
        uint64_t leases;                 /* leases granted in the window */
        double queue_wait_mean_sec;      /* over those leases */
        double queue_wait_p95_sec;
        uint64_t violations;             /* unleased processes detected in the window */
} HistoryUsage;

/* The lab as a whole over the same window. */
typedef struct HistoryTotals {
        double leased_device_sec;
        double busy_device_sec;
        double idle_leased_device_sec;  /* leased but idle: the first half of the waste */
        double unleased_busy_device_sec; /* busy while nobody held it: the second half */
        double memory_byte_sec;
        double shared_device_sec; /* shared-lease time, summed over the leases */
        double shared_busy_device_sec;
        double shared_memory_byte_sec;
        double shared_budget_byte_sec;
        uint64_t violations;
} HistoryTotals;

/* Usage per user, sorted by uid, only users with leased time, leases or
 * violations in the window; `filter_uid` (NULL: everyone) limits the rows
 * (totals still cover the lab). `ret_totals` may be NULL. The caller frees
 * *ret with free(). */
int store_history_usage(Store *s, uint64_t since_usec, uint64_t until_usec, const uid_t *filter_uid,
                        HistoryUsage **ret, size_t *ret_n, HistoryTotals *ret_totals);

/* One point of a device's time series. */
typedef struct HistoryPoint {
        uint64_t ts_usec;          /* the sample time, or the minute's start */
        double util_percent;       /* mean over the point; < 0 unknown */
        uint64_t memory_used_bytes; /* mean over the point */
        double power_w;            /* mean over the point; 0 unknown */
        int64_t holder_uid;        /* -1: not leased (a minute: the holder with the most time;
                                      a shared GPU: its first holder lease) */
} HistoryPoint;

/* The series of `device_uuid` (a GPU or MIG uuid) from `since_usec` on, in
 * time order (a shared GPU's rows of one tick are one point, memory summed
 * over its holders): minute points for the rolled-up past, then raw samples; at
 * most `max_points` points (the newest are kept). The caller frees *ret. */
int store_history_series(Store *s, const char *device_uuid, uint64_t since_usec, size_t max_points,
                         HistoryPoint **ret, size_t *ret_n);
