/* Violations in the state database: processes found on a device their
 * owner did not lease, with the time of each step taken against them.
 *
 * A step is recorded before it is carried out (the warning written, the
 * signal sent), in one transaction with its audit record, so a daemon
 * killed at any instant resumes each violation where it was and never sends
 * the same signal twice. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "store/lease-store.h"
#include "store/store.h"

#define VIOLATION_OUTCOME_MAX 16

typedef enum ViolationStep {
        VIOLATION_WARNED,  /* the owner was told (terminal message, alert) */
        VIOLATION_SIGTERM, /* SIGTERM sent */
        VIOLATION_SIGKILL, /* SIGKILL sent */
} ViolationStep;

typedef struct StoredViolation {
        int64_t id;
        pid_t pid;
        uint64_t start_time; /* with pid, names the process for good */
        uid_t uid;
        char device_uuid[LEASE_UUID_MAX]; /* the GPU or MIG instance it ran on */
        char gpu_uuid[LEASE_UUID_MAX];
        int gpu_index; /* -1 unknown */
        uint64_t memory_bytes;
        char *command;
        uint64_t detected_usec; /* CLOCK_REALTIME, as every time here */
        uint64_t warned_usec;   /* 0 = not yet */
        uint64_t term_usec;
        uint64_t kill_usec;
        uint64_t ended_usec;
        char outcome[VIOLATION_OUTCOME_MAX]; /* "" while open */
} StoredViolation;

void stored_violation_done(StoredViolation *v);

/* Record a new violation (v->id set) with its audit record. -EEXIST when
 * that process on that device is already tracked. */
int store_violation_open(Store *s, StoredViolation *v);

/* Record that `step` happens at `usec` (before doing it). */
int store_violation_step(Store *s, int64_t id, ViolationStep step, uint64_t usec);

/* Close a violation with its outcome: "gone" (the process exited), "leased"
 * (its owner got a lease on the device), "left" (alive, no longer on it), "stopped" (exited after SIGTERM),
 * "killed" (after SIGKILL), "unkillable" (still there after SIGKILL: reported
 * to admins, not retried). */
int store_violation_close(Store *s, int64_t id, const char *outcome, uint64_t usec);

/* Open violations (ended_usec NULL), oldest first. */
int store_violations_load_open(Store *s, StoredViolation **ret, size_t *ret_n);

/* Violations detected at or after `since_usec`, newest first, at most
 * `limit`. */
int store_violations_list(Store *s, uint64_t since_usec, size_t limit, StoredViolation **ret,
                          size_t *ret_n);

/* Free an array returned by the two loaders. */
void stored_violations_free(StoredViolation *v, size_t n);
