"""Deadlines on the boot clock (issue 10 item 1): a wall-clock step of an hour
either way (NTP's first sync, an admin's `date -s`) in the middle of an
enforcement grace, a manual lease or idle accounting changes nothing; only
time passing does. The step and the passing of time come from the daemon's
clock seam (the root-only `debug.clock` request of test builds: a time
namespace cannot step CLOCK_REALTIME), and `debug.tick` runs one sampler
tick, so these tests wait for replies, not for sample intervals."""

from conftest import GPU0_UUID, start_leasing_daemon
from enforcefixtures import victims, violations_of, wait_violation  # noqa: F401 (fixture)

HOUR = 3600
E_PERMISSION = 5


def ok(r):
    assert r.returncode == 0, f"{r.args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def clock(d, **args):
    return d.clock(**args)


def tick(d, n=1):
    d.tick(n)


def declare(lab, gpu_uuid, proc, mib=1024):
    lab.add_process(gpu_uuid, proc.pid, mib)
    lab.write()


def test_debug_requests_are_root_only(daemon, users):
    from conftest import raw_call
    for op, args in (("debug.clock", {"advance_sec": 1}), ("debug.tick", {})):
        reply = raw_call(daemon, users["alice"], op, args)
        assert reply["ok"] is False and reply["error"]["code"] == E_PERMISSION, reply
    reply = daemon.request("debug.clock", {"advance_sec": -1})
    assert reply["ok"] is False, reply


def test_wall_clock_steps_during_grace_change_nothing(daemon_factory, lab, users, victims):
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab,
                             enforcement={"mode": "enforce", "grace": "1h",
                                          "kill_timeout": "1h"})
    ok(d.cli("lease", "acquire", "--gpu", GPU0_UUID, user=alice))
    job = victims(d, bob, "bob-stepped", on_term="stay")
    declare(lab, GPU0_UUID, job)
    rec = wait_violation(d, job.pid)
    assert rec["sigterm_at"] is None

    # Forward by two hours (past the grace by the wall clock), then back by
    # three (an hour before the detection): no SIGTERM either way.
    for step in (2 * HOUR, -3 * HOUR, HOUR):
        clock(d, wall_step_sec=step)
        tick(d, 2)
        assert job.terms() == [], f"SIGTERM after a wall-clock step of {step} s"
        now = violations_of(d, job.pid)[0]
        assert now["sigterm_at"] is None and now["outcome"] is None, now

    # An hour passing, by both clocks, ends the grace.
    clock(d, advance_sec=HOUR)
    tick(d)
    rec = wait_violation(d, job.pid, lambda v: v["sigterm_at"] is not None, "the SIGTERM")
    from conftest import wait_for
    wait_for(lambda: job.terms(), what="the SIGTERM to arrive")
    assert len(job.terms()) == 1


def test_wall_clock_step_does_not_expire_a_lease(daemon_factory, lab, users):
    alice = users["alice"]
    d = start_leasing_daemon(daemon_factory, lab)
    ok(d.cli("lease", "acquire", "--gpus", "1", "--time", "1h", user=alice))
    (lease,) = [lease for lease in d.leases() if lease["uid"] == alice.uid]

    clock(d, wall_step_sec=2 * HOUR)
    tick(d)
    assert [x["id"] for x in d.leases() if x["uid"] == alice.uid] == [lease["id"]]
    clock(d, wall_step_sec=-2 * HOUR)
    clock(d, advance_sec=HOUR - 60)
    tick(d)
    assert [x["id"] for x in d.leases() if x["uid"] == alice.uid] == [lease["id"]]

    clock(d, advance_sec=120)
    from conftest import wait_for
    wait_for(lambda: not [x for x in d.leases() if x["uid"] == alice.uid],
             what="the lease to expire once an hour has passed")


def test_wall_clock_step_is_no_idle_time(daemon_factory, lab, users):
    """Idle accounting counts time passing; a step backward used to wrap
    `now - previous tick` and a step forward counted an hour of idleness."""
    alice = users["alice"]
    d = start_leasing_daemon(daemon_factory, lab)
    ok(d.cli("lease", "acquire", "--gpus", "1", "--time", "2h", user=alice))
    tick(d, 2)
    (before,) = [x for x in d.leases() if x["uid"] == alice.uid]
    for step in (HOUR, -2 * HOUR):
        clock(d, wall_step_sec=step)
        tick(d, 2)
    (after,) = [x for x in d.leases() if x["uid"] == alice.uid]
    # A few sample intervals passed in real time; never an hour.
    assert after["idle_device_seconds"] - before["idle_device_seconds"] < 60, (before, after)
