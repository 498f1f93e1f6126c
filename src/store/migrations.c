/* Schema history of gpukeeper.db; see migrations.h for the rules. */
#include "store/migrations.h"

const StoreMigration store_migrations[] = {
    {1, "CREATE TABLE audit ("
        "  id INTEGER PRIMARY KEY,"
        "  ts_usec INTEGER NOT NULL,"
        "  uid INTEGER NOT NULL," /* -1: the daemon itself */
        "  action TEXT NOT NULL,"
        "  subject TEXT,"
        "  detail TEXT" /* JSON */
        ");"
        "CREATE INDEX audit_ts ON audit(ts_usec);"
        "CREATE TABLE daemon_runs ("
        "  id INTEGER PRIMARY KEY,"
        "  started_usec INTEGER NOT NULL,"
        "  stopped_usec INTEGER," /* NULL: still running or killed */
        "  pid INTEGER NOT NULL,"
        "  version TEXT NOT NULL"
        ");"},
    {2, "CREATE TABLE leases ("
        "  id INTEGER PRIMARY KEY,"
        "  uid INTEGER NOT NULL,"
        "  kind TEXT NOT NULL CHECK (kind IN ('run', 'manual')),"
        "  state TEXT NOT NULL CHECK (state IN ('active', 'released', 'expired')),"
        "  created_usec INTEGER NOT NULL,"
        "  expires_usec INTEGER," /* manual leases */
        "  released_usec INTEGER,"
        "  release_reason TEXT,"
        "  client_pid INTEGER,"        /* run leases: the gpukeeper run process */
        "  client_start_time INTEGER," /* its /proc/<pid>/stat start time */
        "  command TEXT,"
        "  request TEXT NOT NULL" /* JSON of what was asked */
        ");"
        "CREATE INDEX leases_active ON leases(state) WHERE state = 'active';"
        "CREATE TABLE lease_devices ("
        "  lease_id INTEGER NOT NULL REFERENCES leases(id),"
        "  position INTEGER NOT NULL,"
        "  device_uuid TEXT NOT NULL,"
        "  gpu_uuid TEXT NOT NULL,"
        "  profile TEXT,"
        "  active INTEGER NOT NULL DEFAULT 1,"
        "  PRIMARY KEY (lease_id, position)"
        ");"
        /* The last line of defence against a double grant: SQLite itself
         * refuses a second active row for one device. */
        "CREATE UNIQUE INDEX lease_devices_held ON lease_devices(device_uuid) WHERE active = 1;"
        "CREATE TABLE drains ("
        "  device_uuid TEXT PRIMARY KEY,"
        "  since_usec INTEGER NOT NULL,"
        "  uid INTEGER NOT NULL,"
        "  reason TEXT"
        ");"
        "CREATE TABLE device_usage ("
        "  device_uuid TEXT PRIMARY KEY,"
        "  last_released_usec INTEGER NOT NULL"
        ");"},
    {3,
     /* One row per process found on a device its owner did not lease. The
      * signal times are written before the signal is sent, so a daemon killed
      * at any instant never signals twice. */
     "CREATE TABLE violations ("
     "  id INTEGER PRIMARY KEY,"
     "  pid INTEGER NOT NULL,"
     "  start_time INTEGER NOT NULL,"
     "  uid INTEGER NOT NULL,"
     "  device_uuid TEXT NOT NULL,"
     "  gpu_uuid TEXT NOT NULL,"
     "  gpu_index INTEGER,"
     "  memory_bytes INTEGER,"
     "  command TEXT,"
     "  detected_usec INTEGER NOT NULL,"
     "  warned_usec INTEGER,"
     "  term_usec INTEGER,"
     "  kill_usec INTEGER,"
     "  ended_usec INTEGER," /* NULL: still tracked */
     "  outcome TEXT"        /* gone, leased, stopped, killed, unkillable */
     ");"
     "CREATE INDEX violations_detected ON violations(detected_usec);"
     /* Device time a lease held without using it, for the usage reports. */
     "ALTER TABLE leases ADD COLUMN idle_device_usec INTEGER NOT NULL DEFAULT 0;"
     "CREATE UNIQUE INDEX violations_open ON violations(pid, start_time, device_uuid) "
     "  WHERE ended_usec IS NULL;"},
    {4,
     /* Usage history (history-store.h). A device uuid is stored once and
      * referred to by id, which keeps the raw rows small. span_usec is the
      * time a sample stands for, so sums are device-time integrals. */
     "CREATE TABLE history_devices ("
     "  id INTEGER PRIMARY KEY,"
     "  device_uuid TEXT NOT NULL UNIQUE,"
     "  gpu_uuid TEXT NOT NULL"
     ");"
     "CREATE TABLE history_samples ("
     "  ts_usec INTEGER NOT NULL,"
     "  device_id INTEGER NOT NULL,"
     "  span_usec INTEGER NOT NULL,"
     "  util INTEGER,"      /* percent; NULL unknown */
     "  busy INTEGER NOT NULL,"
     "  memory_used_bytes INTEGER NOT NULL,"
     "  power_mw INTEGER,"  /* NULL unknown */
     "  holder_uid INTEGER," /* NULL: not leased */
     "  lease_id INTEGER,"
     "  PRIMARY KEY (ts_usec, device_id)"
     ") WITHOUT ROWID;"
     "CREATE INDEX history_samples_device ON history_samples(device_id, ts_usec);"
     "CREATE TABLE history_minutes ("
     "  minute_usec INTEGER NOT NULL,"
     "  device_id INTEGER NOT NULL,"
     "  holder_uid INTEGER NOT NULL," /* -1: not leased */
     "  samples INTEGER NOT NULL,"
     "  span_usec INTEGER NOT NULL,"
     "  busy_usec INTEGER NOT NULL,"
     "  util_usec INTEGER NOT NULL,"      /* sum of util * span over known util */
     "  util_span_usec INTEGER NOT NULL," /* span with known util */
     "  memory_byte_sec REAL NOT NULL,"
     "  power_mw_usec INTEGER NOT NULL,"
     "  power_span_usec INTEGER NOT NULL,"
     "  PRIMARY KEY (minute_usec, device_id, holder_uid)"
     ") WITHOUT ROWID;"
     /* Per hour and holder, over all devices: written with every tick, so a
      * report over weeks reads hundreds of rows, not millions. */
     "CREATE TABLE history_hours ("
     "  hour_usec INTEGER NOT NULL,"
     "  holder_uid INTEGER NOT NULL," /* -1: not leased */
     "  span_usec INTEGER NOT NULL,"
     "  busy_usec INTEGER NOT NULL,"
     "  memory_byte_sec REAL NOT NULL,"
     "  PRIMARY KEY (hour_usec, holder_uid)"
     ") WITHOUT ROWID;"
     /* Time the lease waited in the queue before its grant. */
     "ALTER TABLE leases ADD COLUMN queue_wait_usec INTEGER NOT NULL DEFAULT 0;"},
    {5,
     /* The store's own guard against a whole GPU and one of its MIG
      * instances held at once (lease_devices_held only sees equal uuids):
      * a grant that would do so fails as a constraint, like a double grant. */
     "CREATE INDEX lease_devices_held_gpu ON lease_devices(gpu_uuid) WHERE active = 1;"
     "CREATE TRIGGER lease_devices_whole_or_parts BEFORE INSERT ON lease_devices "
     "WHEN NEW.active = 1 AND EXISTS (SELECT 1 FROM lease_devices WHERE active = 1 "
     "  AND gpu_uuid = NEW.gpu_uuid AND (device_uuid = gpu_uuid OR NEW.device_uuid = NEW.gpu_uuid)) "
     "BEGIN SELECT RAISE(ABORT, 'a whole GPU and its MIG instances exclude each other'); END;"},
    {6,
     /* Lease ids are never reused (AUTOINCREMENT): a stale id held by a
      * `run` or a script can then never name another user's lease. SQLite
      * cannot add AUTOINCREMENT to a table, so the table is rebuilt with the
      * same rows and ids (migrations run with foreign keys off, store.c). */
     "CREATE TABLE leases_new ("
     "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
     "  uid INTEGER NOT NULL,"
     "  kind TEXT NOT NULL CHECK (kind IN ('run', 'manual')),"
     "  state TEXT NOT NULL CHECK (state IN ('active', 'released', 'expired')),"
     "  created_usec INTEGER NOT NULL,"
     "  expires_usec INTEGER,"
     "  released_usec INTEGER,"
     "  release_reason TEXT,"
     "  client_pid INTEGER,"
     "  client_start_time INTEGER,"
     "  command TEXT,"
     "  request TEXT NOT NULL,"
     "  idle_device_usec INTEGER NOT NULL DEFAULT 0,"
     "  queue_wait_usec INTEGER NOT NULL DEFAULT 0"
     ");"
     "INSERT INTO leases_new (id, uid, kind, state, created_usec, expires_usec, released_usec,"
     "  release_reason, client_pid, client_start_time, command, request, idle_device_usec,"
     "  queue_wait_usec) "
     "SELECT id, uid, kind, state, created_usec, expires_usec, released_usec, release_reason,"
     "  client_pid, client_start_time, command, request, idle_device_usec, queue_wait_usec "
     "FROM leases;"
     "DROP TABLE leases;"
     "ALTER TABLE leases_new RENAME TO leases;"
     "CREATE INDEX leases_active ON leases(state) WHERE state = 'active';"
     /* A lease id also stays unique beyond the rows that keep it: the
      * highest id ever granted, even if its row were removed. */
     "INSERT OR REPLACE INTO sqlite_sequence (name, seq) "
     "  SELECT 'leases', MAX(seq) FROM (SELECT COALESCE(MAX(id), 0) AS seq FROM leases"
     "  UNION ALL SELECT seq FROM sqlite_sequence WHERE name = 'leases');"},
    {7,
     /* Places of waiting run requests, so a restart does not send them to
      * the back of the queue (queue-store.h). */
     "CREATE TABLE queue_places ("
     "  request_id INTEGER PRIMARY KEY,"
     "  uid INTEGER NOT NULL,"
     "  pid INTEGER NOT NULL,"
     "  pid_start_time INTEGER NOT NULL"
     ");"},
    {8,
     /* Slurm jobs as leases of kind 'slurm' (src/slurm). SQLite cannot alter
      * a CHECK constraint, and rebuilding the table would drop columns other
      * migrations add; a CHECK does not change what is on disk, so its text
      * is edited in place as SQLite's ALTER TABLE documentation describes
      * (writable_schema, then RESET to reload the schema in this connection).
      * One active lease per job: a retried prolog cannot register twice. */
     "ALTER TABLE leases ADD COLUMN slurm_job_id INTEGER;"
     "PRAGMA writable_schema = ON;"
     "UPDATE sqlite_schema SET sql = replace(sql, "
     "  'CHECK (kind IN (''run'', ''manual''))', "
     "  'CHECK (kind IN (''run'', ''manual'', ''slurm''))') "
     "  WHERE type = 'table' AND name = 'leases';"
     "PRAGMA writable_schema = RESET;"
     "CREATE UNIQUE INDEX leases_slurm_job ON leases(slurm_job_id) "
     "  WHERE state = 'active' AND slurm_job_id IS NOT NULL;"},
    {9,
     /* The last MIG layout applied (issue 13): one row, the mig-parted
      * config as JSON (mig/layout.h), re-asserted at start and when a GPU
      * comes back. */
     "CREATE TABLE mig_layout ("
     "  id INTEGER PRIMARY KEY CHECK (id = 1),"
     "  config TEXT NOT NULL,"
     "  applied_usec INTEGER NOT NULL,"
     "  uid INTEGER NOT NULL"
     ");"},
    {10,
     /* Shared leases (issue 14): a lease with a memory budget on one GPU
      * that other shared leases may hold too. The budget is on the lease
      * and on its device row, where the store's own guards see it: active
      * rows of shared leases may repeat a GPU, and a whole GPU, one of its
      * MIG instances and shared leases on it still exclude each other. */
     "ALTER TABLE leases ADD COLUMN share_bytes INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE lease_devices ADD COLUMN share_bytes INTEGER NOT NULL DEFAULT 0;"
     "DROP INDEX lease_devices_held;"
     "CREATE UNIQUE INDEX lease_devices_held ON lease_devices(device_uuid) "
     "  WHERE active = 1 AND share_bytes = 0;"
     "DROP TRIGGER lease_devices_whole_or_parts;"
     "CREATE TRIGGER lease_devices_whole_or_parts BEFORE INSERT ON lease_devices "
     "WHEN NEW.active = 1 AND EXISTS (SELECT 1 FROM lease_devices WHERE active = 1 "
     "  AND gpu_uuid = NEW.gpu_uuid AND (device_uuid = gpu_uuid OR NEW.device_uuid = NEW.gpu_uuid) "
     "  AND NOT (share_bytes > 0 AND NEW.share_bytes > 0)) "
     "BEGIN SELECT RAISE(ABORT, 'a whole GPU, its MIG instances and shared leases on it exclude "
     "each other'); END;"},
    {11,
     /* Usage history of shared GPUs (issue 14): a shared GPU has one raw
      * row per holder lease at each tick (that lease's own memory, its
      * budget), so the lease is part of the key (0: not leased). SQLite
      * cannot change a primary key, so the raw table is rebuilt with the
      * same rows. The minute and hour rows keep their keys (one per
      * holder) and add the shared part of their integrals: span_usec,
      * busy_usec and memory_byte_sec stay totals over whole and shared
      * rows, shared_* the shared rows' share of them, budget_byte_sec
      * the budgets integrated over the shared time. */
     "CREATE TABLE history_samples_new ("
     "  ts_usec INTEGER NOT NULL,"
     "  device_id INTEGER NOT NULL,"
     "  lease_id INTEGER NOT NULL DEFAULT 0," /* 0: not leased */
     "  span_usec INTEGER NOT NULL,"
     "  util INTEGER,"
     "  busy INTEGER NOT NULL,"
     "  memory_used_bytes INTEGER NOT NULL," /* a shared lease: its own processes' */
     "  power_mw INTEGER,"
     "  holder_uid INTEGER,"
     "  share_bytes INTEGER NOT NULL DEFAULT 0," /* the lease's budget; 0: a whole device */
     "  PRIMARY KEY (ts_usec, device_id, lease_id)"
     ") WITHOUT ROWID;"
     "INSERT INTO history_samples_new (ts_usec, device_id, lease_id, span_usec, util, busy,"
     "  memory_used_bytes, power_mw, holder_uid) "
     "SELECT ts_usec, device_id, coalesce(lease_id, 0), span_usec, util, busy,"
     "  memory_used_bytes, power_mw, holder_uid FROM history_samples;"
     "DROP TABLE history_samples;"
     "ALTER TABLE history_samples_new RENAME TO history_samples;"
     "CREATE INDEX history_samples_device ON history_samples(device_id, ts_usec);"
     "ALTER TABLE history_minutes ADD COLUMN shared_span_usec INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE history_minutes ADD COLUMN shared_busy_usec INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE history_minutes ADD COLUMN shared_memory_byte_sec REAL NOT NULL DEFAULT 0;"
     "ALTER TABLE history_minutes ADD COLUMN budget_byte_sec REAL NOT NULL DEFAULT 0;"
     "ALTER TABLE history_hours ADD COLUMN shared_span_usec INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE history_hours ADD COLUMN shared_busy_usec INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE history_hours ADD COLUMN shared_memory_byte_sec REAL NOT NULL DEFAULT 0;"
     "ALTER TABLE history_hours ADD COLUMN budget_byte_sec REAL NOT NULL DEFAULT 0;"},
    {12,
     /* The same CHECKs on leases.kind and leases.state, written as equalities
      * (issue 16): SQLite 3.40 evaluates `x IN ('a', 'b', 'c')` in a CHECK
      * by building a temporary b-tree of the list on every row written
      * (OpenEphemeral: a b-tree and a zeroed 4 KiB page each), two per lease
      * grant and one per release, about a quarter of a grant's instructions
      * (callgrind). The rows accepted are the same (both columns are NOT
      * NULL), and nothing on disk changes, so the text is edited in place as
      * migration 8 does. */
     "PRAGMA writable_schema = ON;"
     "UPDATE sqlite_schema SET sql = replace(replace(sql, "
     "  'CHECK (kind IN (''run'', ''manual'', ''slurm''))', "
     "  'CHECK (kind = ''run'' OR kind = ''manual'' OR kind = ''slurm'')'), "
     "  'CHECK (state IN (''active'', ''released'', ''expired''))', "
     "  'CHECK (state = ''active'' OR state = ''released'' OR state = ''expired'')') "
     "  WHERE type = 'table' AND name = 'leases';"
     "PRAGMA writable_schema = RESET;"},
    {13,
     /* When a waiting run request first queued (wall clock, microseconds):
      * one that gets its place back after a restart keeps its waiting time
      * too (queue `since`, the lease's queue_wait_usec). 0: not known (a
      * place recorded before this migration). */
     "ALTER TABLE queue_places ADD COLUMN since_usec INTEGER NOT NULL DEFAULT 0;"},
    {14,
     /* The alerts of the last day (/api/status, every few seconds per open
      * dashboard, on the event loop) without walking every audit record of
      * the day: a partial index holds the alert rows only. Its condition is
      * written as equalities (migration 12 says why), and the query in
      * audit-store.c repeats it word for word, which is how SQLite knows it
      * may use the index. Other rows cost the condition's two comparisons. */
     "CREATE INDEX audit_alerts ON audit(ts_usec)"
     "  WHERE action = 'alert.sent' OR action = 'alert.failed';"},
};

const size_t store_n_migrations = sizeof store_migrations / sizeof store_migrations[0];
