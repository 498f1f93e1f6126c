/* Schema history of gpukeeper.db; see migrations.h for the rules. */
#include "store/migrations.h"

const StoreMigration store_migrations[] = {
        {1,
         "CREATE TABLE audit ("
         "  id INTEGER PRIMARY KEY,"
         "  ts_usec INTEGER NOT NULL,"
         "  uid INTEGER NOT NULL,"          /* -1: the daemon itself */
         "  action TEXT NOT NULL,"
         "  subject TEXT,"
         "  detail TEXT"                    /* JSON */
         ");"
         "CREATE INDEX audit_ts ON audit(ts_usec);"
         "CREATE TABLE daemon_runs ("
         "  id INTEGER PRIMARY KEY,"
         "  started_usec INTEGER NOT NULL,"
         "  stopped_usec INTEGER,"          /* NULL: still running or killed */
         "  pid INTEGER NOT NULL,"
         "  version TEXT NOT NULL"
         ");"},
};

const size_t store_n_migrations = sizeof store_migrations / sizeof store_migrations[0];
