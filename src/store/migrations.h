/* The numbered schema migrations of the state database. Append only: a
 * migration that has shipped is never edited; fix forward with a new one. */
#pragma once

#include <stddef.h>

typedef struct StoreMigration {
        int version;     /* user_version after this migration */
        const char *sql; /* statements run inside the migration's transaction */
} StoreMigration;

extern const StoreMigration store_migrations[];
extern const size_t store_n_migrations;
