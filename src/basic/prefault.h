/* Faulting memory in before it is written, in one system call.
 *
 * On the VMs this runs on, a first touch of a page costs 10-20 us (the
 * hypervisor's share of every page fault); a reply of 1 MB parsed into a
 * jansson tree touches about 7 MB, page by page. MADV_POPULATE_WRITE
 * (Linux 5.14) maps a whole range at once for a fraction of that. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Populates the whole pages inside [p, p + len) for writing. Best effort:
 * on a kernel without MADV_POPULATE_WRITE, or on any error, the pages are
 * faulted in on first touch as usual. Never changes the contents. */
void prefault_range(void *p, size_t len);

/* Large allocations (up to 32 MiB) then come from the heap (brk) rather
 * than a mapping of their own, and stay with the heap when freed: no
 * mmap/munmap pair, no trim, per large block. For short-lived processes
 * (the CLI) about to allocate blocks of a reply's size; a daemon should not
 * call it. Returns whether malloc took the settings. */
bool prefault_keep_heap(void);

/* Makes the next `bytes` of small heap allocations land on pages that are
 * already mapped: raises malloc's mmap and trim thresholds above `bytes`
 * (so the heap keeps what it is given back), grows the heap by `bytes`,
 * populates it, and frees it again. For short-lived processes that are
 * about to allocate a known amount (the CLI parsing a large reply); a
 * daemon should not call it. `bytes` is capped at 32 MiB, malloc's largest
 * mmap threshold. */
void prefault_heap(size_t bytes);
