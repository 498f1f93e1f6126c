"""The queue with real users: FIFO order of waiting clients, what waiting
clients and `gpukeeper queue` show, leaving the queue, simple backfill, and
`gpukeeper status` with holders, unleased processes and the queue."""

import re
import signal
import time

from conftest import (GPU0_UUID, MIG_A_UUID, MIG_B_UUID, find_process, gpu_by_uuid,
                      lease_devices, queue_from_json, start_leasing_daemon, wait_for,
                      wait_queue_len, whole_gpu_uuid)

EXIT_NO_CAPACITY = 75


def run_logging(d, user, tag, log, hold="0.2", gpus_args=("--gpus", "1")):
    """`gpukeeper run` as `user` in the background; the command appends
    "TAG LEASE_ID CUDA_VISIBLE_DEVICES" to `log`, then sleeps `hold` seconds."""
    return d.cli_popen("run", *gpus_args, "--", "sh", "-c",
                       'set -e; echo "$1 $GPUKEEPER_LEASE_ID $CUDA_VISIBLE_DEVICES" >> "$0"; '
                       'sleep "$2"', str(log), tag, hold, user=user)


def log_lines(log):
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def test_fifo_with_three_waiting_clients(daemon_factory, lab, users):
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab)
    r = d.cli("lease", "acquire", user=alice)  # the one whole GPU of BASE_LAB
    assert r.returncode == 0, r
    held = d.leases()[0]

    log = d.shared_log("order")
    plan = [("first", bob), ("second", alice), ("third", bob)]
    clients = []
    for i, (tag, user) in enumerate(plan, 1):
        clients.append(run_logging(d, user, tag, log))
        # Strictly one after the other: each is queued before the next starts.
        wait_queue_len(d, i)

    q = d.queue()
    assert [item["position"] for item in q] == [1, 2, 3], q
    assert [item["uid"] for item in q] == [u.uid for _, u in plan], q
    assert [item["user"] for item in q] == [u.name for _, u in plan], q
    assert all(item["kind"] == "run" for item in q), q
    assert all(re.search(r"\b1 GPU\b", item["wants"]) for item in q), q
    assert all(item["reason"] for item in q), q
    assert q[0]["since"] <= q[1]["since"] <= q[2]["since"], q

    # Waiting clients see their position.
    for i, c in enumerate(clients, 1):
        wait_for(lambda c=c, i=i: re.search(rf"position {i}\b", c.err_path.read_text()),
                 what=f"client {i} to print its position: {c.err_path.read_text()!r}")

    r = d.cli("queue", "--json", user=bob)
    assert r.returncode == 0, r
    assert [item["request_id"] for item in queue_from_json(r.stdout)] == \
        [item["request_id"] for item in q]
    r = d.cli("queue", user=alice)
    assert r.returncode == 0, r
    # One line per waiting request, in queue order (names may be shortened).
    rows = [line for line in r.stdout.splitlines() if re.match(r"\s*[123]\s", line)]
    assert len(rows) == 3, r.stdout
    for row, (_, user) in zip(rows, plan):
        assert user.name[:9] in row and "GPU" in row, r.stdout

    r = d.cli("lease", "release", str(held["id"]), user=alice)
    assert r.returncode == 0, r
    for c in clients:
        assert c.wait(timeout=30) == 0, c.err_path.read_text()
    lines = log_lines(log)
    assert [line[0] for line in lines] == ["first", "second", "third"], lines
    assert all(line[2] == GPU0_UUID for line in lines), lines
    assert d.queue() == [] and d.leases() == []


def test_leaving_the_queue(daemon_factory, lab, users):
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab)
    r = d.cli("lease", "acquire", user=alice)
    assert r.returncode == 0, r
    log = d.shared_log("order")
    ctrl_c = run_logging(d, bob, "ctrl-c", log)
    wait_queue_len(d, 1)
    killed = run_logging(d, bob, "killed", log)
    wait_queue_len(d, 2)
    stays = run_logging(d, alice, "stays", log)
    wait_queue_len(d, 3)

    # Ctrl-C while queued: leaves the queue, exits 130.
    ctrl_c.send_signal(signal.SIGINT)
    assert ctrl_c.wait(timeout=10) == 130, ctrl_c.err_path.read_text()
    # A client that dies while queued leaves it too (its connection closes).
    killed.kill()
    killed.wait()
    q = wait_queue_len(d, 1)
    assert q[0]["uid"] == alice.uid and q[0]["position"] == 1, q
    wait_for(lambda: re.search(r"position 1\b", stays.err_path.read_text()),
             what="the remaining client to learn it moved up")

    r = d.cli("lease", "release", "--all", user=alice)
    assert r.returncode == 0, r
    assert stays.wait(timeout=30) == 0, stays.err_path.read_text()
    assert [line[0] for line in log_lines(log)] == ["stays"]


def test_backfill_never_delays_the_head(daemon_factory, lab, users):
    alice, bob = users["alice"], users["bob"]
    # Whole GPUs: GPU0 and GPU2; GPU1 in MIG mode with instances A and B.
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=1)
    r = d.cli("lease", "acquire", "--gpus", "1", user=bob)
    assert r.returncode == 0, r
    bob_gpu = d.leases()[0]
    log = d.shared_log("order")

    # The head wants 2 whole GPUs; 1 is free.
    head = run_logging(d, alice, "head", log, hold="1", gpus_args=("--gpus", "2"))
    q = wait_queue_len(d, 1)
    assert re.search(r"\b2 GPUs\b", q[0]["wants"]), q
    wait_for(lambda: re.search(r"position 1\b", head.err_path.read_text()),
             what="the head to print its position")

    # A MIG instance is nothing the head could use: granted at once, even with --no-wait.
    r = d.cli("lease", "acquire", "--mig", "3g.40gb", "--no-wait", user=bob)
    assert r.returncode == 0, r
    mig = [x for x in d.leases() if x["devices"][0]["profile"]][0]
    assert lease_devices(mig)[0] in (MIG_A_UUID, MIG_B_UUID)
    # Also through the queue path, as a run client.
    mig_run = run_logging(d, bob, "mig", log, gpus_args=("--mig", "3g.40gb"))
    assert mig_run.wait(timeout=20) == 0, mig_run.err_path.read_text()

    # The free whole GPU would delay the head: no, and a waiting request queues behind it.
    r = d.cli("lease", "acquire", "--gpus", "1", "--no-wait", user=bob)
    assert r.returncode == EXIT_NO_CAPACITY, r
    later = run_logging(d, bob, "later", log)
    q = wait_queue_len(d, 2)
    assert [item["uid"] for item in q] == [alice.uid, bob.uid], q
    time.sleep(0.5)
    assert later.poll() is None and len(d.queue()) == 2

    r = d.cli("lease", "release", str(bob_gpu["id"]), user=bob)
    assert r.returncode == 0, r
    assert head.wait(timeout=30) == 0, head.err_path.read_text()
    assert later.wait(timeout=30) == 0, later.err_path.read_text()
    lines = log_lines(log)
    assert [line[0] for line in lines] == ["mig", "head", "later"], lines
    head_line = lines[1]
    assert sorted(head_line[2].split(",")) == sorted([GPU0_UUID, whole_gpu_uuid(2)]), lines


def test_status_shows_holders_unleased_processes_and_queue(daemon_factory, lab, spawn, users):
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab)
    r = d.cli("lease", "acquire", "--gpu", "0", "--time", "1h", user=alice)
    assert r.returncode == 0, r
    r = d.cli("lease", "acquire", "--mig", "3g.40gb", user=bob)
    assert r.returncode == 0, r
    lease = [x for x in d.leases() if x["uid"] == alice.uid][0]
    mig_lease = [x for x in d.leases() if x["uid"] == bob.uid][0]

    p_alice = spawn(alice, "train-alice-leased")
    p_bob = spawn(bob, "train-bob-unleased")
    lab.add_process(GPU0_UUID, p_alice.pid, 1024)
    lab.add_process(GPU0_UUID, p_bob.pid, 2048)
    lab.write()
    waiting = run_logging(d, bob, "waits", d.shared_log("log"))
    wait_queue_len(d, 1)

    status = wait_for(lambda: (s := d.status(user=bob)) and find_process(s, p_bob.pid)[1] and s,
                      what="bob's process to show")
    g0 = gpu_by_uuid(status, GPU0_UUID)
    assert g0["drained"] is False
    held = g0["lease"]
    assert held["id"] == lease["id"] and held["uid"] == alice.uid, held
    assert held["user"] == alice.name and held["kind"] == "manual", held
    assert abs(held["since"] - lease["created_at"]) < 1, held
    assert held["expires_at"] == lease["expires_at"], held
    assert find_process(status, p_alice.pid)[1]["leased"] is True
    assert find_process(status, p_bob.pid)[1]["leased"] is False
    g1 = status["gpus"][1]
    by_uuid = {i["uuid"]: i for i in g1["instances"]}
    leased_inst = by_uuid[lease_devices(mig_lease)[0]]
    assert leased_inst["lease"]["uid"] == bob.uid and leased_inst["lease"]["kind"] == "manual"
    free_inst = [i for u, i in by_uuid.items() if u != lease_devices(mig_lease)[0]][0]
    assert free_inst["lease"] is None
    assert [item["uid"] for item in status["queue"]] == [bob.uid], status["queue"]

    r = d.cli("status", user=bob)
    assert r.returncode == 0, r
    text = r.stdout
    assert alice.name in text and "manual" in text, text
    # bob's process on alice's GPU is marked as running without a lease.
    bob_line = next(line for line in text.splitlines() if str(p_bob.pid) in line)
    assert re.search(r"without|unleased|no lease", bob_line, re.I), bob_line
    alice_line = next(line for line in text.splitlines() if str(p_alice.pid) in line)
    assert not re.search(r"without|unleased|no lease", alice_line, re.I), alice_line
    assert re.search(r"queue", text, re.I), text
    assert waiting.poll() is None
