/* A stable sort of an array of pointers by a comparison the compiler can
 * inline: a merge sort, by insertion below 16 elements, that does no merge
 * where the two halves are already in order (so a sorted array costs one
 * comparison per element).
 *
 * qsort() calls its comparison through a pointer and, for pointers, goes
 * through glibc's generic merge (about 250 instructions per element for a
 * GPU's 64 processes, against about 40 here). The status reply is sorted
 * by the daemon (rows in display order) and again by the command, which
 * then finds it in order (issue 16).
 *
 *   POINTER_SORT_DEFINE(name, type, before)
 *
 * defines `static void name(const type **p, const type **tmp, size_t n)`,
 * which sorts p[0..n) so that no element is before() the one ahead of it,
 * keeping equal ones in their order; tmp has room for n / 2 pointers.
 * before(a, b) is a `static inline bool` of two `const type *`: whether a
 * goes first. Recursion depth is log2(n). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define POINTER_SORT_DEFINE(name, type, before)                                              \
        static void name(const type **p, const type **tmp, size_t n)                         \
        {                                                                                    \
                size_t h = n / 2, i = 0, j = h, k = 0;                                       \
                                                                                             \
                if (n <= 16) {                                                               \
                        for (size_t a = 1; a < n; a++) {                                     \
                                const type *x = p[a];                                        \
                                size_t b = a;                                                \
                                                                                             \
                                for (; b > 0 && before(x, p[b - 1]); b--)                    \
                                        p[b] = p[b - 1];                                     \
                                p[b] = x;                                                    \
                        }                                                                    \
                        return;                                                              \
                }                                                                            \
                name(p, tmp, h);                                                             \
                name(p + h, tmp, n - h);                                                     \
                if (!before(p[h], p[h - 1]))                                                 \
                        return; /* already in order */                                       \
                memcpy(tmp, p, h * sizeof *p);                                               \
                while (i < h && j < n)                                                       \
                        p[k++] = before(p[j], tmp[i]) ? p[j++] : tmp[i++];                   \
                while (i < h)                                                                \
                        p[k++] = tmp[i++];                                                   \
        }
