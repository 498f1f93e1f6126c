"""Outside programs on the live state database (issue 10, "a confirmed lease is
never lost"): an admin's `sqlite3` read, a long `sqlite3 -readonly` session,
`cp` and `.backup` copies. None of them may make the daemon lose a lease it
confirmed: each test acquires, kills the daemon with SIGKILL, restarts it and
finds the lease. A program that holds a write lock makes requests answer
"busy" within a short wait instead of freezing the daemon (store.h
STORE_BUSY_TIMEOUT_MS); the longest stall is measured."""

import os
import re
import sqlite3
import subprocess
import time

from conftest import leases_from_json, start_leasing_daemon, wait_for

E_BUSY = 9
SQLITE3 = "/usr/bin/sqlite3"


def acquire(d, user):
    r = d.cli("lease", "acquire", "--gpus", "1", "--time", "2h", "--no-wait", user=user)
    assert r.returncode == 0, r.stderr
    m = re.search(r"lease (\d+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    return int(m.group(1))


def restarted_leases(d):
    d.crash()
    d.start()
    r = d.cli("lease", "list", "--all", "--json")
    assert r.returncode == 0, r.stderr
    return {lease["id"]: lease for lease in leases_from_json(r.stdout)}


def wal_deleted(d):
    """Whether the daemon has a WAL or shm file open that is gone from disk."""
    fd_dir = f"/proc/{d.proc.pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if "gpukeeper.db" in target and target.endswith("(deleted)"):
            return True
    return False


def test_outside_sqlite3_read_then_kill9_keeps_lease(daemon_factory, lab, users):
    """The issue's reproduction, step by step."""
    alice = users["alice"]
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=1)
    r = subprocess.run([SQLITE3, str(d.db_path), "select count(*) from leases"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert not wal_deleted(d)
    lease_id = acquire(d, alice)
    assert not wal_deleted(d)
    leases = restarted_leases(d)
    assert lease_id in leases, f"lease {lease_id} lost after kill -9: {leases}"
    assert leases[lease_id]["uid"] == alice.uid


def test_long_readonly_session_then_kill9_keeps_leases(daemon_factory, lab, users):
    """A `sqlite3 -readonly` session that stays open across grants."""
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=1)
    reader = subprocess.Popen([SQLITE3, "-readonly", str(d.db_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        reader.stdin.write("select count(*) from leases;\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip().isdigit()
        first = acquire(d, alice)
        reader.stdin.write("select count(*) from leases where state = 'active';\n")
        reader.stdin.flush()
        assert int(reader.stdout.readline()) >= 1
        second = acquire(d, bob)
        assert not wal_deleted(d)
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)
    assert reader.returncode == 0, reader.stderr.read()
    assert not wal_deleted(d)
    leases = restarted_leases(d)
    assert first in leases and second in leases, leases


def test_cp_and_backup_copies_then_kill9_keep_lease(daemon_factory, lab, users, workdir):
    """`cp` of the file (with its WAL) and sqlite3's online `.backup` while
    the daemon serves: the copies are consistent, the daemon loses nothing."""
    alice = users["alice"]
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=1)
    before = acquire(d, alice)
    copy_dir = workdir / "copies"
    copy_dir.mkdir()
    for suffix in ("", "-wal"):
        subprocess.run(["cp", "--", f"{d.db_path}{suffix}", f"{copy_dir}/gpukeeper.db{suffix}"],
                       check=True, timeout=30)
    backup = copy_dir / "backup.db"
    r = subprocess.run([SQLITE3, "-readonly", str(d.db_path), f".backup '{backup}'"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    after = acquire(d, alice)
    assert not wal_deleted(d)

    for path in (copy_dir / "gpukeeper.db", backup):
        db = sqlite3.connect(str(path), timeout=5)
        try:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            ids = {row[0] for row in db.execute("SELECT id FROM leases WHERE state = 'active'")}
            assert before in ids, (path, ids)
        finally:
            db.close()

    leases = restarted_leases(d)
    assert before in leases and after in leases, leases


def test_write_lock_held_outside_answers_busy_not_frozen(daemon_factory, lab, users):
    """An outside write transaction (`BEGIN IMMEDIATE` held by an admin's
    sqlite3): the daemon keeps answering; a grant is answered "busy" (with
    --no-wait) or waits in the queue and is granted once the lock goes. The
    longest ping round trip while the lock is held is printed."""
    alice = users["alice"]
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=1)
    holder = sqlite3.connect(str(d.db_path), timeout=5, isolation_level=None)
    stalls = []
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO audit (ts_usec, uid, action) VALUES (0, 0, 'test.lock')")
        r = d.cli("lease", "acquire", "--gpus", "1", "--no-wait", user=alice)
        assert r.returncode == 75, r  # E_BUSY: try again later
        assert "locked" in r.stderr, r.stderr
        waiting = d.cli_popen("lease", "acquire", "--gpus", "1", "--time", "1h", user=alice)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            assert d.request("ping")["ok"] is True
            stalls.append(time.monotonic() - t0)
            time.sleep(0.02)
        assert not [lease for lease in d.leases() if lease["uid"] == alice.uid]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    wait_for(lambda: [lease for lease in d.leases() if lease["uid"] == alice.uid],
             what="the waiting grant after the lock went")
    waiting.wait(timeout=30)
    assert waiting.returncode == 0, waiting.err_path.read_text()
    print(f"ping round trips while an outside write lock was held: n={len(stalls)} "
          f"max={max(stalls) * 1000:.1f} ms median={sorted(stalls)[len(stalls) // 2] * 1000:.1f} ms")
    # Generous for a loaded 2-core CI machine; the figure is recorded in
    # docs/reliability.md. The old 5 s busy timeout failed this.
    assert max(stalls) < 1.0
