/* Text built with stdio into a growing malloc'd buffer (open_memstream),
 * with the end written once: close, check, hand over or free. */
#pragma once

#include <stddef.h>
#include <stdio.h>

typedef struct MemStream {
        FILE *f; /* write here between memstream_open() and memstream_finish() */
        char *buf;
        size_t len;
} MemStream;

/* Open m->f. Returns 0 or -ENOMEM. */
int memstream_open(MemStream *m);

/* Close m->f. When `r` (the result of the writing) is >= 0 and no write
 * failed, store the NUL-terminated text in *ret and its length in *ret_len
 * (may be NULL) and return 0; otherwise free the text and return r, or
 * -ENOMEM for a failed write. */
int memstream_finish(MemStream *m, int r, char **ret, size_t *ret_len);
