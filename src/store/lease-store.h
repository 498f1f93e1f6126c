/* Leases, drains and device usage in the state database.
 *
 * Every function that changes state is one transaction that also writes the
 * audit record, so after a kill -9 at any instant a lease is either wholly
 * granted (lease row, device rows, audit) or not at all, and the unique
 * index on active device rows makes a double grant impossible even for a
 * buggy caller. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/store.h"

#define LEASE_UUID_MAX 96
#define LEASE_PROFILE_MAX 32
#define LEASE_MAX_DEVICES 64
#define LEASE_COMMAND_MAX 1024
#define LEASE_SHARE_MAX (UINT64_C(1) << 50) /* a budget above 1 PiB is a typo */

typedef enum LeaseKind {
        LEASE_RUN,    /* lives as long as its `gpukeeper run` client */
        LEASE_MANUAL, /* has an expiry */
        LEASE_SLURM,  /* a Slurm job on this node: registered by its prolog, ended by its
                       * epilog or when Slurm no longer knows the job */
} LeaseKind;

const char *lease_kind_to_string(LeaseKind k);

typedef struct LeaseDevice {
        char uuid[LEASE_UUID_MAX];     /* GPU-… or MIG-… */
        char gpu_uuid[LEASE_UUID_MAX]; /* the GPU it is on (== uuid for a whole GPU) */
        char profile[LEASE_PROFILE_MAX]; /* MIG profile, "" for a whole GPU */
} LeaseDevice;

typedef struct StoredLease {
        int64_t id; /* assigned by store_lease_grant */
        uid_t uid;
        LeaseKind kind;
        uint64_t created_usec; /* CLOCK_REALTIME */
        uint64_t expires_usec; /* manual leases; 0 for run leases */
        pid_t client_pid;      /* run leases; 0 when unknown */
        uint64_t client_start_time;
        char *command; /* may be NULL */
        uint64_t idle_device_usec; /* device time held without use so far */
        uint64_t queue_wait_usec;  /* time the request waited before the grant (reports) */
        uint64_t slurm_job_id;     /* LEASE_SLURM: the job; 0 otherwise */
        uint64_t share_bytes;      /* a shared lease's memory budget on its one GPU; 0 = whole */
        LeaseDevice *devices;
        size_t n_devices;
} StoredLease;

void stored_lease_done(StoredLease *l);

/* Grant: insert the lease (l->id is set on success), its device rows and the
 * audit record in one transaction. -EEXIST when a device is already held
 * (nothing is written). `request_json` records what was asked. */
int store_lease_grant(Store *s, StoredLease *l, const char *request_json);

/* End an active lease: state "released" or "expired", devices freed, their
 * last-released time recorded (wear levelling), audit record with the actor
 * (-1 for the daemon) and reason, and, when idle_device_usec >= 0, the
 * lease's final idle device time (store_lease_set_idle), all in one
 * transaction. -ENOENT when no such active lease (nothing is written). */
int store_lease_end(Store *s, int64_t id, bool expired, const char *reason, int64_t actor_uid,
                    uint64_t now_usec, int64_t idle_device_usec);

/* Set a manual lease's expiry (audited as lease.extend by actor_uid). */
int store_lease_extend(Store *s, int64_t id, uint64_t expires_usec, int64_t actor_uid);

/* Record the device time a lease has been held idle so far (idle reclaim
 * accounting; written every minute and at release). */
int store_lease_set_idle(Store *s, int64_t id, uint64_t idle_device_usec);

/* Record the client process now holding a run lease (after a reconnect). */
int store_lease_attach(Store *s, int64_t id, pid_t pid, uint64_t start_time);

/* Every active lease, in id order. The caller frees each with
 * stored_lease_done() and the array with free(). */
int store_leases_load_active(Store *s, StoredLease **ret, size_t *ret_n);

/* Mark or unmark a device (a GPU uuid or MIG uuid) as drained; audited. */
int store_drain_set(Store *s, const char *uuid, bool drained, int64_t actor_uid,
                    const char *reason);

/* Callback receives each row; a negative return stops the walk. */
typedef int (*StoreRowFn)(const char *uuid, uint64_t usec, void *userdata);
int store_drains_foreach(Store *s, StoreRowFn fn, void *userdata);

/* Who drained `uuid` (*ret_uid) and why (*ret_reason, malloc'd, NULL when
 * none was given). Returns 0, -ENOENT when it is not drained, or -errno. */
int store_drain_get(Store *s, const char *uuid, int64_t *ret_uid, char **ret_reason);
int store_device_usage_foreach(Store *s, StoreRowFn fn, void *userdata);
