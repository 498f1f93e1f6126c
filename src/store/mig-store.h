/* The stored MIG layout (table mig_layout, migration 6): the last config
 * `gpukeeper mig apply` was given, kept so the daemon can re-assert it at
 * start and when a GPU comes back, as nvidia-mig-manager.service does. */
#pragma once

#include <stdint.h>

#include "store/store.h"

/* Replace the stored layout with `config_json` and audit it as
 * "mig.apply" by `uid` with `subject` (the config name). Returns 0 or -errno. */
int store_mig_layout_save(Store *s, const char *config_json, int64_t uid, uint64_t now_usec,
                          const char *subject);

/* The stored layout (malloc'd JSON text) in *ret; -ENOENT when none was ever applied. */
int store_mig_layout_load(Store *s, char **ret);
