"""Many real `gpukeeper run` clients racing for 4 GPUs: no device is ever held
by two leases, every client is served, the queue is FIFO; and the daemon
killed with SIGKILL at random instants during that churn leaves a store with
no half-granted lease and no device held twice.

Every command appends "start LEASE DEVICES TAG" when it begins and "end LEASE
DEVICES TAG" when it ends to one log. Each line is one write(2) to a file
opened with O_APPEND, which Linux makes atomic with respect to other appenders
on a local file system, so the order of the lines is the order of the writes.
A lease is granted before its command starts and released after it ends, so
on every device the lines must alternate start/end of one lease at a time."""

import random
import shutil
import sqlite3
import threading
import time

from conftest import start_leasing_daemon, wait_for, wait_queue_len

CLIENTS = 64
LOG_SCRIPT = ('set -e; echo "start $GPUKEEPER_LEASE_ID $CUDA_VISIBLE_DEVICES $1" >> "$0"; '
              'sleep "$2"; echo "end $GPUKEEPER_LEASE_ID $CUDA_VISIBLE_DEVICES $1" >> "$0"')
EXIT_UNREACHABLE = 69


def start_four_gpu_daemon(daemon_factory, lab, **policy):
    """A daemon whose lab has 4 whole GPUs (and BASE_LAB's MIG GPU, which
    `--gpus` never gets)."""
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=3, policy=policy)
    assert len(lab.whole_gpus()) == 4
    return d


def run_logged(d, user, tag, log, hold, gpus=1):
    out = d.dir / f"run-{tag}.out"
    err = d.dir / f"run-{tag}.err"
    return d.cli_popen("run", "--gpus", str(gpus), "--", "sh", "-c", LOG_SCRIPT, str(log), tag,
                       f"{hold:.3f}", user=user, stdout=out, stderr=err)


def parse_log(log):
    """[(what, lease_id, [uuids], tag)] in file order."""
    events = []
    for line in log.read_text().splitlines():
        what, lease_id, devices, tag = line.split()
        events.append((what, int(lease_id), devices.split(","), tag))
    return events


def check_exclusive(events, devices):
    """On every device, starts and ends alternate and belong to one lease;
    every lease starts once. Returns {tag: lease_id}."""
    holder = {}
    tags = {}
    started = set()
    for what, lease_id, uuids, tag in events:
        assert set(uuids) <= set(devices), f"{tag} got {uuids}, not among {devices}"
        assert len(set(uuids)) == len(uuids), f"{tag} got one device twice: {uuids}"
        for u in uuids:
            if what == "start":
                assert u not in holder, (f"{u} granted to lease {lease_id} ({tag}) while lease "
                                         f"{holder[u]} held it")
                holder[u] = lease_id
            else:
                assert holder.get(u) == lease_id, \
                    f"{tag}: end of {lease_id} on {u} held by {holder.get(u)}"
                del holder[u]
        if what == "start":
            assert lease_id not in started, f"lease {lease_id} started twice"
            started.add(lease_id)
            tags[tag] = lease_id
    assert holder == {}, f"commands that never ended: {holder}"
    return tags


class LeaseWatcher:
    """Polls lease.list as root in a thread; fails if any snapshot shows one
    device in two active leases."""

    def __init__(self, d):
        self.d = d
        self.problems = []
        self.snapshots = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                leases = self.d.leases()
            except (OSError, AssertionError):
                time.sleep(0.05)  # the daemon is restarting
                continue
            self.snapshots += 1
            seen = {}
            for lease in leases:
                for dev in lease["devices"]:
                    if dev["uuid"] in seen:
                        self.problems.append((dev["uuid"], seen[dev["uuid"]], lease["id"]))
                    seen[dev["uuid"]] = lease["id"]
            time.sleep(0.02)

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=10)
        assert self.problems == [], f"devices in two active leases: {self.problems}"
        assert self.snapshots > 0


def test_64_clients_queue_in_order(daemon_factory, lab, users):
    alice, bob = users["alice"], users["bob"]
    d = start_four_gpu_daemon(daemon_factory, lab)
    log = d.shared_log("log")
    r = d.cli("lease", "acquire", "--gpus", "4", user=alice)
    assert r.returncode == 0, r
    blocker = d.leases()[0]

    # 64 clients join the queue strictly one after the other (each is in the
    # queue before the next starts), all asking for the same thing.
    clients, request_ids = [], []
    for i in range(CLIENTS):
        clients.append(run_logged(d, alice if i % 2 else bob, f"c{i:02d}", log, hold=0.02))
        q = wait_queue_len(d, i + 1, timeout=20)
        request_ids.append(q[-1]["request_id"])
    assert len(set(request_ids)) == CLIENTS
    assert [item["request_id"] for item in d.queue()] == request_ids

    # While the queue drains, what is left is always the tail of the arrival
    # order: nobody is served before someone who came earlier.
    r = d.cli("lease", "release", str(blocker["id"]), user=alice)
    assert r.returncode == 0, r
    watcher = LeaseWatcher(d)
    deadline = time.monotonic() + 60
    while any(c.poll() is None for c in clients):
        left = [item["request_id"] for item in d.queue()]
        assert left == request_ids[len(request_ids) - len(left):], \
            f"the queue is not a tail of the arrival order: {left}"
        assert time.monotonic() < deadline, "the queue did not drain within 60 s"
        time.sleep(0.02)
    watcher.finish()

    for i, c in enumerate(clients):
        assert c.returncode == 0, (i, c.err_path.read_text())
    tags = check_exclusive(parse_log(log), lab.whole_gpus())
    assert len(tags) == CLIENTS, "not every client was served"
    # Leases are numbered as they are granted: in arrival order.
    ids = [tags[f"c{i:02d}"] for i in range(CLIENTS)]
    assert ids == sorted(ids), f"grants out of arrival order: {ids}"
    assert d.leases() == [] and d.queue() == []


def churn(d, users, log, workers, seconds, tag_prefix, results):
    """`workers` threads, each running `gpukeeper run` (1 or 2 GPUs, as alice
    or bob) in a loop until `seconds` have passed. Appends (tag, returncode)
    to results."""
    stop_at = time.monotonic() + seconds
    rng = random.Random(1234)
    plans = [(users["alice"] if w % 2 else users["bob"], random.Random(rng.random()))
             for w in range(workers)]

    def worker(w):
        user, wrng = plans[w]
        n = 0
        while True:
            tag = f"{tag_prefix}{w:02d}-{n}"
            p = run_logged(d, user, tag, log, hold=wrng.uniform(0, 0.05),
                           gpus=2 if wrng.random() < 0.25 else 1)
            rc = p.wait(timeout=120)
            results.append((tag, rc))
            n += 1
            if rc == EXIT_UNREACHABLE:
                time.sleep(0.1)  # the daemon is down (a test kills it): do not spin
            if time.monotonic() >= stop_at:
                return

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    return threads


def test_64_clients_race_for_4_gpus(daemon_factory, lab, users):
    d = start_four_gpu_daemon(daemon_factory, lab)
    log = d.shared_log("log")
    watcher = LeaseWatcher(d)
    results = []
    threads = churn(d, users, log, CLIENTS, 8, "w", results)
    for t in threads:
        t.join(timeout=150)
        assert not t.is_alive(), "a client was never served"
    watcher.finish()

    failed = [(tag, rc) for tag, rc in results if rc != 0]
    assert failed == [], f"clients that failed: {failed}"
    tags = check_exclusive(parse_log(log), lab.whole_gpus())
    assert set(tags) == {tag for tag, _ in results}
    served = {tag.split("-")[0] for tag in tags}
    assert len(served) == CLIENTS, "not every client was served"
    assert d.leases() == [] and d.queue() == []


def copy_store(d, dest):
    """A copy of the database and its WAL, as a crash left them, opened."""
    dest.mkdir()
    for suffix in ("", "-wal"):
        src = d.state_dir / f"gpukeeper.db{suffix}"
        if src.exists():
            shutil.copyfile(src, dest / f"gpukeeper.db{suffix}")
    db = sqlite3.connect(dest / "gpukeeper.db")
    db.row_factory = sqlite3.Row
    return db


def check_store(db, where):
    """No half-granted lease, no device held twice, nothing dangling."""
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", where
    states = {r[0] for r in db.execute("SELECT DISTINCT state FROM leases")}
    assert states <= {"active", "released", "expired"}, f"{where}: lease states {states}"
    twice = db.execute("SELECT device_uuid, COUNT(*) FROM lease_devices WHERE active "
                       "GROUP BY device_uuid HAVING COUNT(*) > 1").fetchall()
    assert twice == [], f"{where}: devices held twice: {[tuple(r) for r in twice]}"
    empty = db.execute("SELECT id FROM leases WHERE state = 'active' AND NOT EXISTS "
                       "(SELECT 1 FROM lease_devices ld WHERE ld.lease_id = leases.id "
                       "AND ld.active)").fetchall()
    assert empty == [], f"{where}: active leases without devices: {[r[0] for r in empty]}"
    dangling = db.execute("SELECT ld.lease_id, ld.device_uuid FROM lease_devices ld "
                          "LEFT JOIN leases l ON l.id = ld.lease_id "
                          "WHERE ld.active AND (l.id IS NULL OR l.state != 'active')").fetchall()
    assert dangling == [], \
        f"{where}: devices held by no active lease: {[tuple(r) for r in dangling]}"
    orphans = db.execute("SELECT ld.lease_id FROM lease_devices ld LEFT JOIN leases l "
                         "ON l.id = ld.lease_id WHERE l.id IS NULL").fetchall()
    assert orphans == [], f"{where}: device rows of no lease: {[r[0] for r in orphans]}"


def check_live_store(d, where):
    db = d.db()
    try:
        check_store(db, where)
    finally:
        db.close()


def test_daemon_killed_during_churn(daemon_factory, lab, users, workdir):
    d = start_four_gpu_daemon(daemon_factory, lab, reconnect_grace="5s")
    log = d.shared_log("log")
    results = []
    threads = churn(d, users, log, 16, 9, "k", results)
    rng = random.Random(4321)
    active_at_kill = []
    for n in range(4):
        time.sleep(rng.uniform(0.5, 1.5))
        d.crash()
        db = copy_store(d, workdir / f"crash-{n}")
        try:
            check_store(db, f"after kill #{n + 1}")
            active_at_kill.append(db.execute(
                "SELECT COUNT(*) FROM leases WHERE state = 'active'").fetchone()[0])
        finally:
            db.close()
        d.start()
        check_live_store(d, f"after restart #{n + 1}")
    for t in threads:
        t.join(timeout=150)
        assert not t.is_alive(), "a client never finished"

    # Every client whose command ran saw it through (the daemon's death never
    # touched a command); only one that was still waiting may have been turned
    # away by a dead daemon.
    events = parse_log(log)
    ran = {tag for what, _, _, tag in events if what == "start"}
    bad = [(tag, rc) for tag, rc in results
           if not (rc == 0 or (rc == EXIT_UNREACHABLE and tag not in ran))]
    assert bad == [], f"clients that failed: {bad}"
    assert sum(1 for _, rc in results if rc == 0) >= 16
    # The kills hit leases in flight (else this test proves little).
    assert sum(active_at_kill) > 0, active_at_kill
    check_exclusive(events, lab.whole_gpus())

    # Everything is released in the end, and the store agrees.
    wait_for(lambda: d.leases() == [], timeout=15, what="every lease to be released")
    check_live_store(d, "at the end")
    assert d.query("SELECT COUNT(*) AS n FROM lease_devices WHERE active")[0]["n"] == 0
