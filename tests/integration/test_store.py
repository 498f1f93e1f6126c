"""The daemon's SQLite state database: where it lives and how it is opened."""

import sqlite3

DB_NAME = "gpukeeper.db"


def test_database_in_state_dir_in_wal_mode(daemon):
    db = daemon.state_dir / DB_NAME
    assert db.is_file(), f"no {DB_NAME} in {daemon.state_dir}: {list(daemon.state_dir.iterdir())}"
    # Read-only: the daemon owns the file; we only look at its pragmas.
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    assert daemon.request("ping")["ok"] is True


def test_database_survives_restart(daemon_factory, lab):
    lab.write()
    d = daemon_factory().start()
    db = d.state_dir / DB_NAME
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    conn.close()
    d.stop()

    d.start()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == version
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
