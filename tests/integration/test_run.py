"""`gpukeeper run` as real users: the command's CUDA environment, its exit
status, signal forwarding, release when the client dies (even by SIGKILL), and
a daemon killed with SIGKILL and restarted under a running command."""

import os
import re
import signal
import sqlite3
import time
from pathlib import Path

from conftest import (GPU0_UUID, MIG_A_UUID, MIG_B_UUID, lease_devices, start_leasing_daemon,
                      wait_for, whole_gpu_uuid)

EXIT_NO_CAPACITY = 75
EXIT_UNREACHABLE = 69

ENV_PRINT = ('printf "%s|%s|%s\\n" '
             '"$CUDA_VISIBLE_DEVICES" "$CUDA_DEVICE_ORDER" "$GPUKEEPER_LEASE_ID"')


def test_child_sees_exactly_the_leased_devices(daemon_factory, lab, users):
    alice = users["alice"]
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=2)
    gpu2, gpu3 = whole_gpu_uuid(2), whole_gpu_uuid(3)

    # A stale CUDA_VISIBLE_DEVICES from the caller's environment is replaced.
    r = d.cli("run", "--gpus", "2", "--", "sh", "-c", ENV_PRINT, user=alice,
              env={"CUDA_VISIBLE_DEVICES": "0,1,2,3", "GPUKEEPER_LEASE_ID": "999"})
    assert r.returncode == 0, r
    visible, order, lease_id = r.stdout.strip().split("|")
    devs = visible.split(",")
    assert len(devs) == 2 and len(set(devs)) == 2, visible
    assert set(devs) <= {GPU0_UUID, gpu2, gpu3}, visible
    assert order == "PCI_BUS_ID"
    assert lease_id.isdigit() and lease_id != "999", r.stdout
    row = d.query("SELECT * FROM leases WHERE id = ?", (int(lease_id),))
    assert len(row) == 1 and row[0]["kind"] == "run" and row[0]["state"] == "released", row
    assert d.leases() == []

    r = d.cli("run", "--gpu", f"{gpu3},0", "--", "sh", "-c", ENV_PRINT, user=alice)
    assert r.returncode == 0, r
    assert r.stdout.split("|")[0] == f"{gpu3},{GPU0_UUID}", r.stdout
    r = d.cli("run", "--mig", "3g.40gb", "--", "sh", "-c", ENV_PRINT, user=alice)
    assert r.returncode == 0, r
    assert r.stdout.split("|")[0] in (MIG_A_UUID, MIG_B_UUID), r.stdout
    r = d.cli("run", "--mig", "3g.40gb:2", "--", "sh", "-c", ENV_PRINT, user=alice)
    assert r.returncode == 0, r
    assert sorted(r.stdout.split("|")[0].split(",")) == sorted([MIG_A_UUID, MIG_B_UUID]), r.stdout
    # Default: one whole GPU.
    r = d.cli("run", "--", "sh", "-c", ENV_PRINT, user=alice)
    assert r.returncode == 0, r
    assert r.stdout.split("|")[0] in (GPU0_UUID, gpu2, gpu3), r.stdout

    # The command runs as alice, with its arguments untouched (no shell).
    r = d.cli("run", "--", "sh", "-c", 'id -u; printf "[%s]" "$@"', "sh", "a b", "$HOME", "*",
              user=alice)
    assert r.returncode == 0, r
    assert r.stdout.splitlines() == [str(alice.uid), "[a b][$HOME][*]"], r.stdout


def test_exit_status_passes_through(daemon_factory, lab, users):
    alice = users["alice"]
    d = start_leasing_daemon(daemon_factory, lab)
    for script, expected in (("exit 0", 0), ("exit 7", 7), ("exit 255", 255),
                             ("kill -TERM $$", 128 + signal.SIGTERM),
                             ("kill -KILL $$", 128 + signal.SIGKILL)):
        r = d.cli("run", "--", "sh", "-c", script, user=alice)
        assert r.returncode == expected, (script, r)
        assert d.leases() == [], f"{script}: the lease was not released"
    r = d.cli("run", "--", "/nonexistent/command", user=alice)
    assert r.returncode == 127 and "/nonexistent/command" in r.stderr, r
    assert d.leases() == []
    # As a shell: not found anywhere on PATH is 127 even when a directory of
    # PATH cannot be searched (execvp says EACCES then); a file found that
    # cannot be executed is 126.
    shut = d.shared_dir() / "shut"
    shut.mkdir(mode=0o700)
    plain = d.shared_dir() / "plain"
    plain.mkdir(mode=0o755)
    (plain / "gk-not-executable").write_text("#!/bin/sh\n")
    (plain / "gk-not-executable").chmod(0o644)
    path = f"{shut}:{plain}:/usr/bin:/bin"
    r = d.cli("run", "--", "gk-no-such-command", user=alice, env={"PATH": path})
    assert r.returncode == 127, r
    # Found nowhere: said before anything is leased, so a typo does not wait
    # in the queue first (a busy GPU and --no-wait would say 75 otherwise).
    held = d.cli("lease", "acquire", "--gpus", "1", "--no-wait", user=users["bob"])
    assert held.returncode == 0, held
    r = d.cli("run", "--no-wait", "--", "gk-no-such-command", user=alice)
    assert r.returncode == 127 and "nothing was leased" in r.stderr, r
    assert d.cli("lease", "release", "--all", user=users["bob"]).returncode == 0
    r = d.cli("run", "--", "gk-not-executable", user=alice, env={"PATH": path})
    assert r.returncode == 126, r
    assert d.leases() == []
    # Nothing to run is a usage error.
    r = d.cli("run", "--gpus", "1", user=alice)
    assert r.returncode == 64, r


def test_no_wait_when_busy(daemon_factory, lab, users):
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab)
    r = d.cli("lease", "acquire", user=alice)
    assert r.returncode == 0, r
    marker = d.shared_dir() / "ran"
    r = d.cli("run", "--no-wait", "--", "touch", str(marker), user=bob)
    assert r.returncode == EXIT_NO_CAPACITY, r
    assert r.stderr.strip() and not marker.exists(), r
    assert d.queue() == []


def test_signals_are_forwarded(daemon_factory, lab, users):
    alice = users["alice"]
    d = start_leasing_daemon(daemon_factory, lab)
    shared = d.shared_dir()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        got = shared / f"got-{sig.name}"
        # The command traps the signal, notes it and exits 3.
        script = (f'trap \'echo {sig.name} > "$0"; exit 3\' {sig.name[3:]}; '
                  'echo ready > "$0.ready"; while :; do sleep 0.05; done')
        p = d.cli_popen("run", "--", "sh", "-c", script, str(got), user=alice)
        wait_for(lambda: (shared / f"got-{sig.name}.ready").exists(), timeout=15,
                 what="the command to start")
        p.send_signal(sig)
        assert p.wait(timeout=15) == 3, p.err_path.read_text()
        assert got.read_text().strip() == sig.name
        wait_for(lambda: d.leases() == [], what="the lease to be released")


def test_sigkill_of_the_client_releases(daemon_factory, lab, users):
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab)
    pid_file = d.shared_dir() / "child.pid"
    p = d.cli_popen("run", "--", "sh", "-c", 'echo $$ > "$0"; exec sleep 300', str(pid_file),
                    user=alice)
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=15,
             what="the command to start")
    lease = d.leases()[0]
    assert lease["kind"] == "run" and lease["pid"] == p.pid and lease["attached"] is True, lease
    assert lease["expires_at"] is None, lease

    p.kill()
    p.wait()
    killed_at = time.monotonic()
    wait_for(lambda: d.leases() == [], timeout=5, interval=0.02, what="the lease to be released")
    assert time.monotonic() - killed_at < 1.5, "the release took longer than about a second"
    row = d.query("SELECT * FROM leases WHERE id = ?", (lease["id"],))[0]
    assert row["state"] == "released", row
    # The command does not outlive its lease (issue 17, item 2): the kernel
    # sends it SIGTERM when its `run` dies (PR_SET_PDEATHSIG), at once, and
    # the lease's end says so.
    child = int(pid_file.read_text())

    def gone():
        try:
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        return state in ("Z", "X")

    wait_for(gone, timeout=3, what="the command to stop with its client")
    assert "SIGTERM" in row["release_reason"], row
    # The GPU is free for the next user.
    r = d.cli("lease", "acquire", "--no-wait", user=bob)
    assert r.returncode == 0, r


def test_daemon_sigkill_and_restart_under_a_running_command(daemon_factory, lab, users):
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab)
    shared = d.shared_dir()
    go, done = shared / "go", shared / "done"
    # The command waits for our go, then writes its marker with what it saw.
    script = ('echo started > "$0.started"; while [ ! -e "$1" ]; do sleep 0.05; done; '
              'echo "$GPUKEEPER_LEASE_ID $CUDA_VISIBLE_DEVICES" > "$0"')
    p = d.cli_popen("run", "--", "sh", "-c", script, str(done), str(go), user=alice)
    wait_for(lambda: (shared / "done.started").exists(), timeout=15, what="the command to start")
    lease = d.leases()[0]
    assert lease["attached"] is True

    d.crash()
    time.sleep(0.3)
    assert p.poll() is None, "gpukeeper run exited when the daemon died"
    d.start()

    # The lease is there from the first request on (no window in which the GPU
    # is free), with the same id, and the client re-attaches.
    after = d.leases()
    assert [x["id"] for x in after] == [lease["id"]], after
    assert lease_devices(after[0]) == [GPU0_UUID]
    r = d.cli("lease", "acquire", "--no-wait", user=bob)
    assert r.returncode == EXIT_NO_CAPACITY, r
    wait_for(lambda: d.leases()[0]["attached"] is True, timeout=10,
             what="gpukeeper run to re-attach its lease")
    assert d.leases()[0]["pid"] == p.pid

    go.touch()
    assert p.wait(timeout=20) == 0, p.err_path.read_text()
    assert done.read_text().split() == [str(lease["id"]), GPU0_UUID]
    wait_for(lambda: d.leases() == [], what="the lease to be released")
    row = d.query("SELECT * FROM leases WHERE id = ?", (lease["id"],))[0]
    assert row["state"] == "released", row
    assert not re.search(r"reconnect", str(row.get("release_reason") or row), re.I), row


def queue_run_behind_a_lease(daemon_factory, lab, holder, waiter, variable):
    """A daemon where `holder` has the only whole GPU and `waiter` runs a
    command (started as a Popen, not waited for) that writes `variable` into
    the returned marker file. Returns (daemon, the held lease, marker, Popen)."""
    d = start_leasing_daemon(daemon_factory, lab)
    r = d.cli("lease", "acquire", user=holder)
    assert r.returncode == 0, r
    marker = d.shared_dir() / "ran"
    p = d.cli_popen("run", "--", "sh", "-c", f'echo "{variable}" > "$0"', str(marker),
                    user=waiter)
    return d, d.leases()[0], marker, p


def test_queued_run_asks_again_after_a_daemon_restart(daemon_factory, lab, users):
    """A restart drops the daemon's queue: a waiting `run` reconnects and asks
    again, and runs once the device is free; a waiting manual `lease acquire`
    gives up with 69 (a grant whose reply was lost would stay granted)."""
    alice, bob = users["alice"], users["bob"]
    d, held, marker, p = queue_run_behind_a_lease(daemon_factory, lab, alice, bob,
                                                  "$CUDA_VISIBLE_DEVICES")
    m = d.cli_popen("lease", "acquire", user=bob)
    wait_for(lambda: len(d.queue()) == 2, timeout=15, what="both requests to queue")

    d.crash()
    assert m.wait(timeout=15) == EXIT_UNREACHABLE, m.err_path.read_text()
    time.sleep(0.3)
    assert p.poll() is None, "gpukeeper run gave up when the daemon died"
    d.start()
    wait_for(lambda: len(d.queue()) == 1, timeout=15, what="gpukeeper run to queue again")
    assert not marker.exists()

    r = d.cli("lease", "release", str(held["id"]), user=alice)
    assert r.returncode == 0, r
    assert p.wait(timeout=20) == 0, p.err_path.read_text()
    assert marker.read_text().strip() == GPU0_UUID
    err = p.err_path.read_text()
    assert "lost the connection to gpukeeperd while queued" in err, err
    assert "asking again" in err, err
    wait_for(lambda: d.leases() == [], what="the run lease to be released")


def test_queued_run_takes_over_a_grant_whose_reply_was_lost(daemon_factory, lab, users):
    """The daemon dies between committing a grant and replying: after the
    restart the waiting `run` finds its lease (by its pid) and re-attaches it
    instead of asking for a second one."""
    alice, bob = users["alice"], users["bob"]
    d, held, marker, p = queue_run_behind_a_lease(daemon_factory, lab, alice, bob,
                                                  "$GPUKEEPER_LEASE_ID")
    wait_for(lambda: len(d.queue()) == 1, timeout=15, what="gpukeeper run to queue")

    d.crash()
    # What the daemon had committed when it died: alice's release and the
    # grant to bob's waiting run.
    start_time = int(open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()[19])
    db = sqlite3.connect(d.db_path)
    with db:
        db.execute("UPDATE leases SET state = 'released', released_usec = 1 WHERE id = ?",
                   (held["id"],))
        db.execute("UPDATE lease_devices SET active = 0 WHERE lease_id = ?", (held["id"],))
        cur = db.execute("INSERT INTO leases (uid, kind, state, created_usec, client_pid, "
                         "client_start_time, command, request) VALUES (?, 'run', 'active', ?, ?, "
                         "?, 'sh', '{}')", (bob.uid, int(time.time() * 1e6), p.pid, start_time))
        granted = cur.lastrowid
        db.execute("INSERT INTO lease_devices (lease_id, position, device_uuid, gpu_uuid) "
                   "VALUES (?, 0, ?, ?)", (granted, GPU0_UUID, GPU0_UUID))
    db.close()
    d.start()

    assert p.wait(timeout=20) == 0, p.err_path.read_text()
    assert marker.read_text().strip() == str(granted)
    assert "had granted the request already" in p.err_path.read_text()
    wait_for(lambda: d.leases() == [], what="the lease to be released")
    assert [r["id"] for r in d.query("SELECT id FROM leases WHERE uid = ?", (bob.uid,))] \
        == [granted]


def test_run_lease_of_a_client_that_never_comes_back(daemon_factory, lab, users, raw_as):
    """After a restart a run lease whose client is alive but does not re-attach
    (its re-attach may not get through) is kept past reconnect_grace while the
    client lives, and released at the next grace once it is gone (issue 10
    item 11)."""
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab, policy={"reconnect_grace": "2s"})
    # A bare protocol client holds a run lease; it never re-attaches.
    c = raw_as(d, alice, [["lease.acquire", {"kind": "run", "gpus": 1, "command": "sleep"}]],
               hold=True)
    reply = c.wait_replies(1)[0]
    assert reply["ok"] is True, reply
    lid = reply["result"]["lease"]["id"]

    d.crash()
    d.start()
    assert [x["id"] for x in d.leases()] == [lid]
    assert d.leases()[0]["attached"] is False
    r = d.cli("lease", "acquire", "--no-wait", user=bob)
    assert r.returncode == EXIT_NO_CAPACITY, r
    # Past the grace (the test clock, not a sleep): still held, its client lives.
    d.clock(advance_sec=3)
    d.tick()
    assert [x["id"] for x in d.leases()] == [lid]
    wait_for(lambda: "kept: its client has not reconnected" in d.log(), what="the log line")
    c.close()
    d.clock(advance_sec=3)
    wait_for(lambda: d.leases() == [], timeout=10, what="the next grace to run out")
    row = d.query("SELECT * FROM leases WHERE id = ?", (lid,))[0]
    assert row["state"] == "released", row


def test_restart_keeps_manual_leases_and_drains_and_drops_dead_clients(daemon_factory, lab,
                                                                        users):
    """Across a SIGKILL of the daemon: manual leases and drains persist; a run
    lease whose client died meanwhile is released at once, not after the grace."""
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=1,
                             policy={"reconnect_grace": "60s"})
    r = d.cli("lease", "acquire", "--mig", "3g.40gb", "--time", "1h", user=alice)
    assert r.returncode == 0, r
    manual = d.leases()[0]
    d.ok("admin.drain", {"device": whole_gpu_uuid(2), "reason": "test"})
    pid_file = d.shared_dir() / "child.pid"
    p = d.cli_popen("run", "--gpu", "0", "--", "sh", "-c", 'echo $$ > "$0"; exec sleep 300',
                    str(pid_file), user=bob)
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=15,
             what="the command to start")
    run_lease = next(x for x in d.leases() if x["kind"] == "run")

    d.crash()
    p.kill()
    p.wait()
    d.start()
    started = time.monotonic()
    wait_for(lambda: [x["id"] for x in d.leases()] == [manual["id"]], timeout=10,
             what="the dead client's lease to be released")
    assert time.monotonic() - started < 5, "released only after a delay"
    row = d.query("SELECT * FROM leases WHERE id = ?", (run_lease["id"],))[0]
    assert row["state"] == "released", row
    kept = d.leases()[0]
    assert kept["expires_at"] == manual["expires_at"] and kept["devices"] == manual["devices"]
    status = d.status()
    assert next(g for g in status["gpus"] if g["uuid"] == whole_gpu_uuid(2))["drained"] is True
    os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_restart_drops_a_run_whose_client_is_a_zombie(daemon_factory, lab, users):
    """A run client that died while the daemon was down but that its parent
    has not reaped yet (a zombie: a Popen nobody waits for) has exited: its
    lease is released at the restart, not kept for as long as the zombie
    lasts (found by a kill -9 stress: the restart's check took the zombie's
    start time as a live client's and renewed the grace each time)."""
    bob = users["bob"]
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=1,
                             policy={"reconnect_grace": "2s"})
    pid_file = d.shared_dir() / "child.pid"
    p = d.cli_popen("run", "--gpu", "0", "--", "sh", "-c", 'echo $$ > "$0"; exec sleep 300',
                    str(pid_file), user=bob)
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=15,
                 what="the command to start")
        run_lease = next(x for x in d.leases() if x["kind"] == "run")
        assert run_lease["pid"] == p.pid, run_lease

        d.crash()
        p.kill()
        wait_for(lambda: Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                 == "Z", timeout=10, what="the client to be a zombie")
        d.start()
        wait_for(lambda: d.leases() == [], timeout=10,
                 what="the zombie client's lease to be released")
        row = d.query("SELECT * FROM leases WHERE id = ?", (run_lease["id"],))[0]
        assert row["state"] == "released", row
        assert "while gpukeeperd was down" in row["release_reason"], row
        assert "its command still runs" not in d.log()
        # Still a zombie: the release did not wait for its parent.
        assert Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    finally:
        p.kill()
        p.wait()
        if pid_file.exists() and pid_file.read_text().strip():
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_queued_runs_keep_their_places_across_a_restart(daemon_factory, lab, users):
    """Issue 10 item 17: two runs wait behind a lease; after a kill -9 and a
    restart each asks again and gets its old request id and place back,
    whichever asks first, and they run in their original order."""
    alice, bob = users["alice"], users["bob"]
    d, held, marker, first = queue_run_behind_a_lease(daemon_factory, lab, alice, bob,
                                                      "$CUDA_VISIBLE_DEVICES")
    wait_for(lambda: len(d.queue()) == 1, timeout=15, what="the first run to queue")
    marker2 = d.shared_dir() / "ran2"
    second = d.cli_popen("run", "--", "sh", "-c", 'echo second > "$0"', str(marker2),
                         user=alice)
    wait_for(lambda: len(d.queue()) == 2, timeout=15, what="the second run to queue")
    before = [(q["uid"], q["request_id"]) for q in d.queue()]
    assert [uid for uid, _ in before] == [bob.uid, alice.uid]
    since = [q["since"] for q in d.queue()]

    d.crash()
    d.start()
    wait_for(lambda: len(d.queue()) == 2, timeout=15, what="both runs to queue again")
    after = [(q["uid"], q["request_id"]) for q in d.queue()]
    assert after == before, (before, after)
    # ... and their waiting time: since when they first queued, not since
    # they asked again.
    again = [q["since"] for q in d.queue()]
    assert all(abs(a - b) < 0.01 for a, b in zip(since, again)), (since, again)

    # A request made after the restart goes behind both.
    late = d.cli_popen("lease", "acquire", "--time", "1h", user=bob)
    wait_for(lambda: len(d.queue()) == 3, timeout=15, what="the late request to queue")
    assert [q["request_id"] for q in d.queue()][:2] == [rid for _, rid in before]

    assert d.cli("lease", "release", str(held["id"]), user=alice).returncode == 0
    assert first.wait(timeout=30) == 0, first.err_path.read_text()
    assert second.wait(timeout=30) == 0, second.err_path.read_text()
    assert late.wait(timeout=30) == 0, late.err_path.read_text()
    assert marker.exists() and marker2.exists()
    # Each says so (it used to say the place was not kept).
    for p in (first, second):
        err = p.err_path.read_text()
        assert "asking again" in err, err
        assert "gave the request its old place in the queue back" in err, err
        assert "not kept" not in err, err
