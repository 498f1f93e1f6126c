"""A full disk under the state database (issue 10, fault injection): the
state directory is a small tmpfs of its own, filled up while the daemon
serves. Grants and history writes then fail cleanly (an error reply, a log
line, nothing half-written), every other request is still answered, and
once space returns grants work again; after a kill -9 every lease that was
confirmed is there and the file is intact."""

import os
import re
import subprocess
import time

import pytest

from conftest import start_leasing_daemon, wait_for
from test_concurrency import check_store


def mount_tmpfs(path, size):
    path.mkdir(exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "gk-test-full",
                        str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")


def fill(path):
    """Fill the file system of `path` with one file; returns its path."""
    filler = path / "filler"
    # Unbuffered: a short last write leaves nothing in a buffer for close()
    # to fail on (it did when the free space was no multiple of 64 KiB).
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    return filler


def test_full_disk_fails_cleanly_and_recovers(daemon_factory, lab, users, workdir):
    alice, bob = users["alice"], users["bob"]
    state = workdir / "small-state"
    mount_tmpfs(state, "6M")
    try:
        d = start_leasing_daemon(daemon_factory, lab, extra_whole=3, state_dir=str(state))
        d.db_path = state / "gpukeeper.db"
        confirmed = []
        r = d.cli("lease", "acquire", "--gpus", "1", "--time", "1h", user=alice)
        assert r.returncode == 0, r.stderr
        confirmed.append(int(re.search(r"lease (\d+)", r.stdout + r.stderr).group(1)))

        filler = fill(state)
        failures = []
        deadline = time.monotonic() + 20
        while not failures and time.monotonic() < deadline:
            r = d.cli("lease", "acquire", "--gpus", "1", "--time", "1h", "--no-wait", user=bob)
            if r.returncode == 0:
                lid = int(re.search(r"lease (\d+)", r.stdout + r.stderr).group(1))
                confirmed.append(lid)
                assert d.cli("lease", "release", str(lid), user=bob).returncode in (0, 70, 1)
            elif "No space left" in r.stderr or "space" in r.stderr:
                failures.append(r.stderr)
            else:
                pytest.fail(f"unexpected refusal: {r.returncode} {r.stderr}")
        assert failures, "the full disk never reached a grant"
        # The daemon keeps answering while the disk is full.
        assert d.request("ping")["ok"] is True
        assert d.cli("status").returncode == 0
        wait_for(lambda: "Cannot write the usage history" in d.log(),
                 what="a history write to fail on the full disk")

        os.unlink(filler)
        wait_for(lambda: d.cli("lease", "acquire", "--gpus", "1", "--time", "1h",
                               "--no-wait", user=bob).returncode == 0,
                 what="a grant once space is back")
        now_active = {x["id"] for x in d.leases()}
        assert set(confirmed[:1]) <= now_active
        d.crash()
        d.start()
        after = {x["id"] for x in d.leases()}
        assert now_active <= after, (now_active, after)
        db = d.db()
        try:
            check_store(db, "after the full disk and a kill -9")  # nothing half-written
        finally:
            db.close()
        d.stop()
    finally:
        subprocess.run(["umount", "-l", str(state)], capture_output=True)


def store_fault(d, io_error):
    return d.ok("debug.store_fault", {"io_error": io_error})


def lease_rows(d):
    return d.query("SELECT id, uid, state FROM leases ORDER BY id")


def test_io_errors_fail_cleanly_and_recover(daemon_factory, lab, users):
    """SQLite I/O errors (the store's fault seam, a VFS that fails every write,
    sync and truncate with EIO while set, through the root-only
    `debug.store_fault` request of test builds): a grant and a release fail
    with a clear error and change nothing, a history write fails and is
    logged, every read request is still answered, and once the fault clears
    the same daemon grants again; after a kill -9 every confirmed lease is
    there and the file is intact."""
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=2)
    r = d.cli("lease", "acquire", "--gpus", "1", "--time", "1h", user=alice)
    assert r.returncode == 0, r.stderr
    kept = int(re.search(r"lease (\d+)", r.stdout + r.stderr).group(1))
    before = lease_rows(d)
    audit_before = d.query("SELECT count(*) AS n FROM audit")[0]["n"]

    # Refused to non-root callers, and without a valid argument.
    from conftest import raw_call
    reply = raw_call(d, alice, "debug.store_fault", {"io_error": True})
    assert reply["ok"] is False and reply["error"]["code"] == 5, reply
    assert d.request("debug.store_fault", {"io_error": "yes"})["ok"] is False

    store_fault(d, True)
    try:
        r = d.cli("lease", "acquire", "--gpus", "1", "--time", "1h", "--no-wait", user=bob)
        assert r.returncode != 0, r.stdout
        assert "could not record the lease" in r.stderr, r.stderr
        assert "Input/output error" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr  # one clear line

        r = d.cli("lease", "release", str(kept), user=alice)
        assert r.returncode != 0, r.stdout
        assert "lease.release" in r.stderr and "Input/output error" in r.stderr, r.stderr

        # A history write fails too, and is logged; nothing stops serving.
        d.tick()
        assert "Cannot write the usage history" in d.log()
        assert d.request("ping")["ok"] is True
        assert d.cli("status").returncode == 0
        assert [x["id"] for x in d.leases()] == [kept]
        assert [x for x in d.leases() if x["uid"] == bob.uid] == []
        # Nothing of the failed writes reached the file.
        assert lease_rows(d) == before
        assert d.query("SELECT count(*) AS n FROM audit")[0]["n"] == audit_before
        assert store_fault(d, True)["failed_so_far"] > 0
    finally:
        store_fault(d, False)

    # The fault gone, the same connection writes again.
    r = d.cli("lease", "acquire", "--gpus", "1", "--time", "1h", "--no-wait", user=bob)
    assert r.returncode == 0, r.stderr
    granted = int(re.search(r"lease (\d+)", r.stdout + r.stderr).group(1))
    assert granted > kept
    d.tick()
    active = {x["id"] for x in d.leases()}
    assert active == {kept, granted}, active

    d.crash()
    d.start()
    assert {x["id"] for x in d.leases()} == active
    db = d.db()
    try:
        check_store(db, "after I/O errors and a kill -9")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
    d.stop()
