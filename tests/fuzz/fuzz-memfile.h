/* A file for loaders that take a path: the input is written into a memfd,
 * named /proc/self/fd/N (a regular file, as the loaders require), rewritten
 * for every input. */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"

static inline const char *fuzz_memfile(const uint8_t *data, size_t size)
{
        static int fd = -1;
        static char path[64];
        size_t off = 0;

        if (fd < 0) {
                fd = memfd_create("gk-fuzz-input", MFD_CLOEXEC);
                CHECK(fd >= 0);
                snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        }
        CHECK(ftruncate(fd, 0) == 0);
        while (off < size) {
                ssize_t n = pwrite(fd, data + off, size - off, (off_t)off);

                CHECK(n > 0);
                off += (size_t)n;
        }
        return path;
}
