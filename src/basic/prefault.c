/* See prefault.h. */
#include "basic/prefault.h"

#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "basic/macro.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit systems. */
#define PREFAULT_HEAP_MAX (32u << 20)

void prefault_range(void *p, size_t len)
{
        uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), start, end;

        if (!p || len == 0 || page == 0 || (uintptr_t)-1 == page)
                return;
        start = ((uintptr_t)p + page - 1) & ~(page - 1);
        end = ((uintptr_t)p + len) & ~(page - 1);
        if (end > start)
                (void)madvise((void *)start, end - start, MADV_POPULATE_WRITE);
}

bool prefault_keep_heap(void)
{
        return mallopt(M_MMAP_THRESHOLD, (int)PREFAULT_HEAP_MAX) != 0 &&
               mallopt(M_TRIM_THRESHOLD, (int)(2 * PREFAULT_HEAP_MAX)) != 0;
}

void prefault_heap(size_t bytes)
{
        void *p;

        bytes = MIN(bytes, (size_t)PREFAULT_HEAP_MAX);
        if (bytes == 0)
                return;
        /* A block this size must come from the heap (brk), not its own
         * mmap, and stay with the heap when freed. */
        if (!prefault_keep_heap())
                return;
        p = malloc(bytes);
        if (!p)
                return;
        prefault_range(p, bytes);
        free(p);
}
