/* The driver's device-node tables, read for strict mode:
 *
 *   /proc/driver/nvidia-caps/mig-minors   lines "gpu%u/gi%u/access %u" and
 *       "gpu%u/gi%u/ci%u/access %u": the minor of
 *       /dev/nvidia-caps/nvidia-cap<minor> that grants access to a MIG GPU
 *       or compute instance (other lines, "config 1", "monitor 2", are the
 *       admin capabilities and stay unguarded);
 *   /proc/devices   "<major> <name>" under "Character devices:", for the
 *       dynamic major of "nvidia-caps".
 *
 * Both paths are configurable so tests can write their own tables. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "policy/fence.h"

#define ISOLATE_MIG_MINORS_MAX 65536
#define ISOLATE_TABLE_FILE_MAX (4u << 20) /* bytes read from either file */

/* Parse mig-minors text. Unknown lines are skipped; a malformed gpu line is
 * -EINVAL with its 1-based number in *ret_line (when not NULL). */
int isolate_mig_minors_parse(const char *text, PolicyFenceMig **ret, size_t *ret_n,
                             unsigned *ret_line);

/* Read and parse the file; a missing file is an empty table (no driver,
 * or no MIG support). */
int isolate_mig_minors_load(const char *path, PolicyFenceMig **ret, size_t *ret_n,
                            unsigned *ret_line);

/* The character major named `name` in a /proc/devices-format file: 0 and
 * *ret set, or -ENOENT when it is not listed (driver not loaded). */
int isolate_char_major(const char *path, const char *name, uint32_t *ret);
