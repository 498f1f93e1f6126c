/* Lease state of the daemon: active leases (mirrored from the store), the
 * queue of waiting requests, drained devices and wear-levelling times, and
 * the scheduling step that turns allocator decisions into grants.
 *
 * The store is the truth for leases; memory mirrors it and is rebuilt from
 * it at start. The queue lives only in memory: every queued request belongs
 * to a client connection that waits for its reply, and leaves the queue when
 * that connection closes. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "basic/time-util.h"
#include "policy/allocate.h"
#include "policy/idle.h"
#include "policy/share.h"
#include "store/lease-store.h"
#include "store/queue-store.h"

typedef struct Daemon Daemon;
typedef struct Peer Peer;

#define LEASES_MAX_ACTIVE 4096
#define LEASES_MAX_QUEUE POLICY_MAX_QUEUE
/* Waiting requests of one user: enough for any real use, and one user cannot
 * fill the queue for everyone. */
#define LEASES_MAX_QUEUED_PER_UID 64
/* A waiting client hears about a new position at most this often (the first
 * one at once): with many waiters every grant moves all of them, and telling
 * each one every time cost more than the grants themselves. */
#define LEASES_POSITION_INTERVAL_USEC (USEC_PER_SEC / 2)

/* A lease the daemon itself ends (its client exited, it expired) stays held
 * when the store cannot record the end, and is tried again this much later. */
#define LEASES_END_RETRY_USEC USEC_PER_SEC

/* A grant the store refused as locked by another program is tried again
 * this much later; the request keeps its place meanwhile. */
#define LEASES_BUSY_RETRY_USEC (100 * USEC_PER_MSEC)

typedef struct Lease {
        StoredLease rec;                /* rec.idle_device_usec grows every tick */
        PolicyIdleLease idle;           /* idle reclaim state (policy/idle.h) */
        /* Times below are daemon_boot() (daemon.h): deadlines never move
         * with the wall clock. rec.* keeps the wall times shown and stored. */
        uint64_t idle_saved_usec;       /* the last idle write to the store */
        uint64_t conn_id;            /* run leases: the client connection holding it; 0 = detached */
        uint64_t attach_deadline_usec; /* detached run leases after a restart */
        uint64_t end_retry_usec; /* when to try again an end the store refused */
        uint64_t expires_boot;   /* manual leases: rec.expires_usec on the boot clock */
        bool expiry_warned;      /* manual: the holder was told it expires soon */
        PolicyBudgetState budget; /* shared leases: the budget timeline (share-ops.h), kept
                                   * on the group's first lease, boot clock */
        struct Lease *next;
} Lease;

typedef struct QueueEntry {
        uint64_t request_id; /* daemon-assigned, increasing: the FIFO order */
        uint64_t conn_id;    /* the connection waiting for the reply */
        uint32_t msg_id;     /* the acquire request's id, for the reply */
        uid_t uid;
        pid_t pid;
        uint64_t pid_start_time;
        LeaseKind kind;
        uint64_t duration_usec; /* manual leases */
        unsigned max_gpus;      /* the user's cap when the request arrived; 0 = none */
        char *command;
        char *request_json;     /* what was asked, for the audit trail */
        unsigned n_gpus;
        uint64_t share_bytes;   /* a shared lease's memory budget; 0 = whole devices */
        char **named;
        size_t n_named;
        PolicyMigItem *mig;
        size_t n_mig;
        uint64_t since_usec; /* CLOCK_REALTIME, shown */
        uint64_t since_boot; /* daemon_boot(), for the queue wait */
        bool no_wait;           /* answered E_NO_CAPACITY unless granted at once */
        unsigned last_position;
        char last_reason[160];
        bool position_dirty;         /* position or reason changed since the last event */
        uint64_t position_sent_usec; /* CLOCK_MONOTONIC of the last event, 0 = none yet */
        struct QueueEntry *next;
} QueueEntry;

typedef struct DeviceTime {
        char uuid[LEASE_UUID_MAX];
        uint64_t usec;
} DeviceTime;

/* A manual lease that expired lately, so a violation notice on one of its
 * devices can say the lease just expired rather than "get a lease". */
#define LEASES_RECENT_EXPIRED 64
typedef struct RecentExpiry {
        int64_t lease_id;
        uid_t uid;
        uint64_t ended_usec;
        char uuid[96]; /* one device of it */
} RecentExpiry;

typedef struct LeaseState {
        Lease *leases;
        size_t n_leases;
        QueueEntry *queue; /* FIFO, head first */
        size_t queue_len;
        DeviceTime *drained; /* uuid → since */
        size_t n_drained;
        DeviceTime *released; /* uuid → last released (wear levelling) */
        size_t n_released;
        uint64_t next_request_id;
        sd_event_source *timer; /* earliest expiry or attach deadline */
        sd_event_source *position_timer; /* throttled queue.position events */
        sd_event_source *busy_timer;     /* retry of grants the locked store refused */
        bool store_busy;                 /* the last schedule found the store locked */
        /* Places of run requests that were waiting when the daemon last
         * stopped (queue-store.h), until their clients ask again or
         * policy.reconnect_grace has passed (places_deadline, boot clock). */
        StoredQueuePlace *places;
        size_t n_places;
        uint64_t places_deadline;
        RecentExpiry recent_expired[LEASES_RECENT_EXPIRED]; /* ring, by device */
        size_t recent_next;
} LeaseState;

/* The lease of `uid` on device `uuid` that expired within `within_usec`
 * of `now`, or NULL. */
const RecentExpiry *leases_recently_expired(const Daemon *d, uid_t uid, const char *uuid,
                                            uint64_t now, uint64_t within_usec);

/* Load active leases, drains and usage from the store. Run leases start
 * detached: released at once when their client process is gone, else after
 * policy.reconnect_grace unless a client re-attaches. Returns 0 or -errno. */
int leases_init(Daemon *d);
void leases_done(LeaseState *s);

/* Serve the queue: grant what the allocator allows (one store transaction
 * each), reply to the waiting clients, tell the others their position, and
 * re-arm the expiry timer. Called after every change and every sampler tick. */
void leases_schedule(Daemon *d);
/* leases_schedule() with the devices a caller got from
 * leases_policy_devices() with nothing changed since (a request that was
 * just checked against them), so that they are not built twice. Takes the
 * array (frees it); NULL builds it as leases_schedule() does. */
void leases_schedule_devices(Daemon *d, PolicyDevice *devs, size_t n_devs);

/* A client connection closed: its run leases are released and its queued
 * requests leave the queue. */
void leases_connection_closed(Daemon *d, uint64_t conn_id);

/* End a lease (store transaction first, then memory). `actor` is the uid
 * that asked, -1 for the daemon. Returns 0 or -errno. */
int leases_end(Daemon *d, Lease *l, bool expired, const char *reason, int64_t actor);

Lease *leases_find(Daemon *d, int64_t id);

/* Record a lease granted outside the queue (a Slurm job's, from its prolog):
 * store transaction first (-EEXIST and friends when a device is held), then
 * memory. `rec` is moved into the new lease on success. Returns 0 or -errno. */
int leases_register(Daemon *d, StoredLease *rec, const char *request_json, Lease **ret);

/* The active lease holding device `uuid` (a GPU or MIG uuid), or NULL. */
const Lease *leases_holder(const Daemon *d, const char *uuid);

/* Like leases_holder, but among several shared leases of one GPU the one
 * of `uid` when there is one (a process's own lease), else any. */
const Lease *leases_holder_for(const Daemon *d, const char *uuid, uid_t uid);

/* The shared leases on GPU `uuid`: their budgets added up, and how many. */
void leases_shared_on(const Daemon *d, const char *uuid, uint64_t *ret_budget, unsigned *ret_n);

/* Record in memory that `uuid` is (un)drained (the store is written first
 * by the caller). Returns 0 or -ENOMEM. */
int leases_set_drained(Daemon *d, const char *uuid, bool drained);

/* Whether `uuid`, or the GPU it is on, is drained. */
bool leases_is_drained(const Daemon *d, const char *uuid, const char *gpu_uuid);

/* JSON of a lease (keys in docs/protocol.md) and of the queue. NULL on OOM. */
json_t *lease_to_json(const Daemon *d, const Lease *l);
/* The reply to a granted acquire, {"v":1,"id":ID,"ok":true,"result":{"lease":
 * …}}, byte for byte as proto_dump() writes proto_reply_ok(id, {"lease":
 * lease_to_json(d, l)}), written as text without the tree (issue 16,
 * sixth pass: the tree and its dump were ~70 k instructions of an
 * acquire's ~215 k in the daemon). *ret is malloc'd, NUL-terminated.
 * Returns 0, -ENOMEM, or -EOPNOTSUPP where the text is jansson's to write
 * (a string with a byte above 0x7F, e.g. a user name or command outside
 * ASCII: json-dump.h); the caller then builds the tree. */
int lease_reply_text(const Daemon *d, const Lease *l, uint32_t id, char **ret, size_t *ret_len);
json_t *leases_queue_to_json(const Daemon *d);

/* The allocatable devices of the latest snapshot as allocator input: whole
 * GPUs not in MIG mode and MIG instances, with their lease, drain, health,
 * unleased-memory and wear-levelling state. Strings point into the snapshot.
 * The caller frees the array. Returns 0 or -ENOMEM. */
int leases_policy_devices(const Daemon *d, PolicyDevice **ret, size_t *ret_n);

/* Requests of `uid` waiting in the queue. */
size_t leases_queued_by(const Daemon *d, uid_t uid);

/* Devices held by `uid` in active leases. */
unsigned leases_held_by(const Daemon *d, uid_t uid);

/* Append a queue entry (taking ownership) and return its request id. A run
 * request from a client that was waiting before a restart gets its old
 * request id and place back. */
uint64_t leases_enqueue(Daemon *d, QueueEntry *e);

/* Remove and free the queue entry with `request_id`, if still queued.
 * Returns true when it was there. */
bool leases_dequeue(Daemon *d, uint64_t request_id);

void queue_entry_free(QueueEntry *e);
