/* What every fuzz target shares: the libFuzzer entry point and CHECK(), an
 * invariant that aborts (so libFuzzer and the sanitizers notice) in every
 * build, NDEBUG or not. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
        do {                                                                                       \
                if (!(x)) {                                                                        \
                        fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #x);  \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)
