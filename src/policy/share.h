/* Shared leases: a slice of one GPU with a memory budget (`--share 20G`).
 * Pure decisions, tested exhaustively in tests/unit/policy/test-share.c:
 *
 *  - placement: the best fit among the shareable GPUs a shared request may
 *    go to (allocate.c calls it from the FIFO walk, allocate.h has the
 *    rules that tie it to whole-GPU leases);
 *  - budgets: the timeline of one budget group (the shared leases of one
 *    user on one GPU; NVML attributes memory to processes, not leases, so
 *    a user's two slices of one GPU share their summed budget). Over budget
 *    → a notice at once; still over after `grace` → SIGTERM; still there
 *    `kill_timeout` after that → SIGKILL; back under before SIGTERM → the
 *    timeline starts over.
 *
 * Times are on one monotonic clock chosen by the caller (the daemon's boot
 * clock); nothing here reads a clock. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gpu/inventory.h"
#include "policy/allocate.h"

#define POLICY_SHARE_MIN_BYTES (UINT64_C(1) << 20) /* a budget below 1 MiB is a typo */

/* Capacity of `d` not yet promised to shared leases, counting `extra` more
 * bytes promised (grants made earlier in the same scheduling pass). */
uint64_t policy_share_free(const PolicyDevice *d, uint64_t extra);

/* The best fit for a budget of `want` bytes among the candidate devices
 * cand[0..n_cand) (indices into devs; the caller has checked that each may
 * take a shared lease now): the device with the least capacity left after
 * it, then the one whose last release is the oldest (wear levelling), then
 * the lowest index. `extra` (may be NULL) is per device index, as in
 * policy_share_free(). Returns true with *ret the chosen index, false when
 * none has room. */
bool policy_share_best_fit(const PolicyDevice *devs, const size_t *cand, size_t n_cand,
                           const uint64_t *extra, uint64_t want, size_t *ret);

typedef enum PolicyBudgetAction {
        POLICY_BUDGET_NOTICE = 1 << 0,  /* went over: tell the holder now */
        POLICY_BUDGET_SIGTERM = 1 << 1, /* over for `grace`: SIGTERM its processes */
        POLICY_BUDGET_SIGKILL = 1 << 2, /* kill_timeout after SIGTERM: SIGKILL them */
        POLICY_BUDGET_CLEARED = 1 << 3, /* back under budget: the timeline is over */
} PolicyBudgetAction;

typedef struct PolicyBudgetState {
        bool over;           /* over budget since over_since */
        uint64_t over_since; /* the first sample over budget */
        uint64_t term_at;    /* SIGTERM sent at; 0 = not yet */
        uint64_t kill_at;    /* SIGKILL sent at; 0 = not yet */
} PolicyBudgetState;

/* One sample of a budget group: `used` bytes (the sum of NVML's per-process
 * memory of its processes on the GPU) against `budget`, at time `now`.
 * Updates *s and returns the actions to take now (a mask of
 * PolicyBudgetAction; 0 for none). With `enforce` false (enforcement mode
 * observe) only NOTICE and CLEARED are returned. A grace of 0 returns
 * NOTICE and SIGTERM together. */
unsigned policy_budget_step(PolicyBudgetState *s, uint64_t used, uint64_t budget, uint64_t now,
                            uint64_t grace, uint64_t kill_timeout, bool enforce);

/* One shared lease on a GPU, for the usage history: uid and budget in,
 * used and busy out. */
typedef struct PolicyShareSlice {
        uint32_t uid;
        uint64_t budget_bytes;
        uint64_t used_bytes; /* out: this lease's part of its owner's memory on the GPU */
        bool busy;           /* out: its owner had a process on the GPU */
} PolicyShareSlice;

/* Attribute the GPU's processes procs[0..n_procs) to the shared leases
 * slices[0..n) on it. A process counts for its owner when the owner is
 * known (not vanished, or carried from an earlier snapshot); NVML's
 * per-process memory (the authority, as for budgets) of one user is split
 * over that user's slices in proportion to their budgets, the last slice
 * taking the rounding, so the slices of one user sum exactly to the user's
 * memory and no byte is counted twice. Processes of users holding no slice
 * are not attributed (they are violations, not usage). */
void policy_share_attribute(PolicyShareSlice *slices, size_t n, const GpuProcess *procs,
                            size_t n_procs);
