/* Arrays of strings with a separate count ("strv"): char **v with n
 * entries, each malloc'd, the array itself malloc'd. */
#pragma once

#include <stddef.h>

/* Free the first n strings of v, then v; accepts NULL. */
void strv_free_n(char **v, size_t n);
