/* Reading a whole file: the one reader every module uses (the config
 * loader, the env library), bounded so that a user's file cannot make a
 * root process allocate without limit. */
#pragma once

#include <stddef.h>

/* Read all of `fd`, which must be a regular file, into a malloc'd buffer
 * with a NUL after the last byte. Reads until EOF rather than trusting
 * st_size (the file may change while it is read; some report 0), and
 * notices growth past `max` by reading one byte more. On success *ret holds
 * the text and *ret_len (may be NULL) its length. Returns 0; -EINVAL when
 * fd is not a regular file; -EFBIG when it holds more than `max` bytes;
 * -ENOMEM; or the -errno of fstat() or read(). */
int read_full_fd(int fd, size_t max, char **ret, size_t *ret_len);
