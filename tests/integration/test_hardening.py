"""Requests and processes that once could hurt the root daemon: each test is
the regression test of a review finding, run against the real daemon."""

import os
import subprocess
import time

from conftest import PYTHON, Conn, as_user, raw_call, start_leasing_daemon, wait_for


def test_negative_gpu_index_is_refused_not_a_crash(daemon_factory, lab, users):
    d = start_leasing_daemon(daemon_factory, lab)
    for devices in ([-1], [2**40], ["-1"], ["99999999999999999999"]):
        reply = raw_call(d, users["alice"], "lease.acquire",
                         {"kind": "manual", "devices": devices, "wait": False})
        assert reply["ok"] is False and reply["error"]["name"] == "E_INVALID_ARGUMENT", reply
    assert d.ok("status")["gpus"]


def test_one_user_cannot_fill_the_queue(daemon_factory, lab):
    d = start_leasing_daemon(daemon_factory, lab, policy={"max_gpus": 0})
    with Conn(d) as holder:
        held = holder.call("lease.acquire", {"kind": "manual", "gpus": 1, "wait": False})
        assert held["ok"], held
        with Conn(d) as flood:
            rids = [flood.send("lease.acquire", {"kind": "manual", "gpus": 1})
                    for _ in range(70)]
            # The first 64 wait (no reply yet); every one after them is refused.
            for rid in rids[64:]:
                refused = flood.reply(rid)
                assert refused["ok"] is False and refused["error"]["name"] == "E_BUSY", refused
            assert len(d.ok("queue.list")["queue"]) == 64
        # The flood's connection is gone: its requests left the queue, and the
        # allocator still serves others.
        wait_for(lambda: d.ok("queue.list")["queue"] == [], what="the queue to empty")
        d.ok("lease.release", {"id": held["result"]["lease"]["id"]})
        again = holder.call("lease.acquire", {"kind": "manual", "gpus": 1, "wait": False})
        assert again["ok"], again


def test_invalid_utf8_command_line_does_not_break_status(daemon_factory, lab, users):
    bob = users["bob"]
    p = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(60)", b"job-\xff\xfe"],
                         stdin=subprocess.DEVNULL, **as_user(bob))
    try:
        lab.add_process(lab.whole_gpus()[0], p.pid, 512)
        d = daemon_factory(enforcement={"mode": "observe"}).start()
        lab.write()
        wait_for(lambda: d.ok("violations.list")["violations"], what="the violation")
        status = d.ok("status")
        procs = [q for g in status["gpus"] for q in g["processes"] if q["pid"] == p.pid]
        assert procs and procs[0]["command"].endswith("job-\ufffd\ufffd"), procs
        assert procs[0]["violation"]["command"].endswith("job-\ufffd\ufffd")
    finally:
        p.kill()
        p.wait()
