/* JSON strings from text gpukeeper did not write itself (command lines
 * from /proc, NVML strings, NSS names): jansson refuses invalid UTF-8, and
 * one odd command line must not break every status reply. */
#pragma once

#include <jansson.h>

/* A JSON string of `text` repaired to valid UTF-8 (bad bytes become U+FFFD);
 * JSON null for NULL. NULL only when out of memory. */
json_t *json_text(const char *text);

/* Like json_text(), but an empty string is null too (an identity NVML never
 * gave, e.g. a GPU lost before it was first seen). */
json_t *json_text_or_null(const char *text);
