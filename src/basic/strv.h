/* Arrays of strings ("strv"): char **v with n entries, each malloc'd, the
 * array itself malloc'd and NULL-terminated (so it can be handed to exec),
 * with the count kept alongside. The one strv of the tree. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "basic/macro.h"

/* Free the first n strings of v, then v; accepts NULL. */
void strv_free_n(char **v, size_t n);

/* Free a NULL-terminated v and its strings; accepts NULL. */
void strv_free(char **v);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);

/* Append s (taking ownership; freed on failure) and keep v NULL-terminated.
 * -ENOMEM when s is NULL. */
int strv_consume(char ***v, size_t *n, char *s);
/* Append a copy of s. */
int strv_push(char ***v, size_t *n, const char *s);
/* Append a formatted string. */
int strv_pushv(char ***v, size_t *n, const char *fmt, va_list ap) _printf_(3, 0);
int strv_pushf(char ***v, size_t *n, const char *fmt, ...) _printf_(3, 4);
/* Whether one of v[0..n) equals s. */
bool strv_contains(char *const *v, size_t n, const char *s);
/* Deep copy; a NULL/0 input gives NULL/0. */
int strv_copy(char *const *v, size_t n, char ***ret, size_t *ret_n);
