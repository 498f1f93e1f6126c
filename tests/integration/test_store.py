"""The daemon's SQLite state database: where it lives and how it is opened."""

import http.client
import socket
import sqlite3
import time

from conftest import TEST_POLICY, frame, free_port, recv_frame, wait_for

DB_NAME = "gpukeeper.db"
TOKEN = "t0ken-for.tests"


def metrics(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        resp = conn.getresponse()
        body = resp.read().decode()
        assert resp.status == 200, body
        return body
    finally:
        conn.close()


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


def _call(sock, i, op, args):
    """One request on an open connection; the reply (events skipped)."""
    sock.sendall(frame({"v": 1, "id": i, "op": op, "args": args}))
    while True:
        msg = recv_frame(sock)
        assert msg is not None, "gpukeeperd closed the connection"
        if "event" not in msg:
            return msg


def wal_checkpoint_sequence(wal):
    """The WAL header's checkpoint sequence number: SQLite raises it when a
    writer starts the WAL over from its first frame."""
    with open(wal, "rb") as f:
        return int.from_bytes(f.read(16)[12:16], "big")


def test_checkpoints_run_in_the_daemons_thread(daemon_factory, lab):
    """The daemon checkpoints its WAL in a thread of its own (issue 16): a
    burst of leases past 4,000 WAL pages, then a pause, and the next commits
    start the WAL over (the -wal file stops growing); /metrics counts the
    thread's checkpoints and none inside a commit."""
    port = free_port()
    lab.write()
    d = daemon_factory(policy=dict(TEST_POLICY))
    d.sections["http"] = {"listen": f"127.0.0.1:{port}", "token": TOKEN}
    d.start()
    wait_for(lambda: len(d.status()["gpus"]) == len(lab.data["gpus"]),
             what="the first snapshot with every GPU")
    wal = d.state_dir / (DB_NAME + "-wal")

    def leases(sock, n, first_id):
        for k in range(n):
            i = first_id + 2 * k
            r = _call(sock, i, "lease.acquire", {"kind": "manual", "gpus": 1,
                                                 "duration_sec": 600, "wait": False})
            assert r["ok"], r
            r = _call(sock, i + 1, "lease.release", {"id": r["result"]["lease"]["id"]})
            assert r["ok"], r

    def counted(by):
        text = metrics(port)
        return int(text.split(f'\ngpukeeper_store_checkpoints_total{{by="{by}"}} ')[1].split()[0])

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(d.socket_path))
        # About 18 WAL pages a lease (grant and release): past 4,000.
        leases(sock, 300, 1)
        wait_for(lambda: counted("thread") >= 1, timeout=20,
                 what="a checkpoint by the daemon's thread")
        size = wal.stat().st_size
        assert size > 4000 * 1024, size
        seq = wal_checkpoint_sequence(wal)
        next_id = 1001

        def started_over():
            # A pause between commits (the thread copies what commits added
            # during its checkpoint after one), then a lease: its commit
            # starts the WAL over once everything is copied.
            nonlocal next_id
            time.sleep(0.05)
            leases(sock, 1, next_id)
            next_id += 2
            return wal_checkpoint_sequence(wal) != seq

        wait_for(started_over, timeout=20, what="the WAL started over")
        # The file is reused from its start: it does not grow. (Its size is
        # read now: commits before the start-over, the tries above and the
        # sampler's, may still have appended to it.)
        size = wal.stat().st_size
        leases(sock, 150, next_id)
        assert wal.stat().st_size == size, (wal.stat().st_size, size)
    assert counted("commit") == 0
    assert "Cannot checkpoint" not in d.log()
