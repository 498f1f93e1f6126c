/* Small shared macros: cleanup attributes, ownership hand-off, array sizes.
 * Modelled on systemd's src/basic/macro.h; everything here is header-only. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x) /* a macro's value as a string literal */
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _warn_unused_result_ __attribute__((warn_unused_result))

/* Hand ownership of *p to the caller and leave NULL behind, so the cleanup
 * attribute on the source does nothing. */
#define TAKE_PTR(p)                                                                                \
        ({                                                                                         \
                __typeof__(p) *_pp = &(p);                                                         \
                __typeof__(p) _v = *_pp;                                                           \
                *_pp = NULL;                                                                       \
                _v;                                                                                \
        })

/* Copy the string `src` into dst[size], cut to size - 1 bytes: snprintf's
 * "%s" without the format machinery, for copies on hot paths. True when all
 * of it fit. */
static inline bool string_copy(char *dst, size_t size, const char *src)
{
        size_t n;

        if (size == 0)
                return false;
        n = strnlen(src, size - 1);
        memcpy(dst, src, n);
        dst[n] = '\0';
        return src[n] == '\0';
}

/* Same for file descriptors: returns the fd and leaves -1 behind. */
#define TAKE_FD(fd)                                                                                \
        ({                                                                                         \
                int *_pfd = &(fd);                                                                 \
                int _v = *_pfd;                                                                    \
                *_pfd = -1;                                                                        \
                _v;                                                                                \
        })

static inline void freep(void *p)
{
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Declare a cleanup helper `namep` for a destructor `name` that accepts NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                    \
        static inline void func##p(type *p)                                                        \
        {                                                                                          \
                if (*p)                                                                            \
                        func(*p);                                                                  \
        }

/* Negative errno from the current errno, never 0 (callers rely on "< 0 is failure"). */
static inline int negative_errno(void)
{
        return errno > 0 ? -errno : -EIO;
}

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
