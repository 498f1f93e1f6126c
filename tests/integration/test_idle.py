"""Idle reclaim with idle.release_after set to seconds: a manual lease whose
GPU shows no process and no utilisation is warned (audit, webhook alert, a
message on its holder's terminal) and then released with the reason
"idle"; a lease whose GPU runs a process of its holder is kept; a `run`
lease at 0 % utilisation is flagged, not stopped. Idle device time is
accounted per lease."""

import re

from conftest import GPU0_UUID, start_leasing_daemon, wait_for, whole_gpu_uuid
from enforcefixtures import audit, hooks, victims  # noqa: F401 (fixtures)

GPU2_UUID = whole_gpu_uuid(2)  # the extra whole GPU of start_leasing_daemon(extra_whole=1)

# Daemon time (advanced by the test clock one second a tick), not real time.
RELEASE_AFTER = 60.0
WARN_BEFORE = 30.0


def ok(r):
    assert r.returncode == 0, f"{r.args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def lease_of(d, user, uuid):
    for lease in d.leases():
        if lease["uid"] == user.uid and uuid in [dev["uuid"] for dev in lease["devices"]]:
            return lease
    return None


def test_idle_manual_lease_is_warned_then_released_busy_one_kept(daemon_factory, lab, users,
                                                                 victims, hooks):
    alice, bob = users["alice"], users["bob"]
    hook = hooks()
    # No utilisation anywhere: only processes make a GPU busy.
    lab.gpu(GPU0_UUID)["utilization_gpu"] = 0
    d = start_leasing_daemon(
        daemon_factory, lab, extra_whole=1,
        idle={"release_after": "60s", "warn_before": "30s"},
        alerts={"sinks": [{"name": "ops", "type": "webhook", "url": hook.url("/hook"),
                           "events": ["idle_warning", "idle_reclaim"]}]})
    # alice has a login session on a terminal (not using any GPU): the
    # warning goes there too.
    session = victims(d, alice, "alice-shell", on_term="exit", tty=True)
    ok(d.cli("lease", "acquire", "--gpu", GPU0_UUID, user=alice))
    idle = lease_of(d, alice, GPU0_UUID)
    ok(d.cli("lease", "acquire", "--gpu", GPU2_UUID, user=bob))
    busy = lease_of(d, bob, GPU2_UUID)
    job = victims(d, bob, "bob-training")
    lab.add_process(GPU2_UUID, job.pid, 4096)
    lab.write()
    assert idle["idle_warned"] is False and idle["idle_flagged"] is False, idle

    # Time passes on the daemon's test clock (debug.clock), one second a
    # tick (debug.tick): events in daemon time, not sleeps.
    d.tick()
    seconds = 0

    def step():
        nonlocal seconds
        d.clock(advance_sec=1)
        d.tick()
        seconds += 1

    def daemon_now():
        return d.clock(advance_sec=0)["wall_usec"] / 1e6

    # Warned about warn_before ahead of the release, visibly in the lease.
    while not (lease_of(d, alice, GPU0_UUID) or {}).get("idle_warned"):
        assert seconds < 2 * RELEASE_AFTER, "never warned"
        step()
    assert daemon_now() - idle["created_at"] >= RELEASE_AFTER - WARN_BEFORE - 0.1, idle
    assert lease_of(d, alice, GPU0_UUID) is not None, "released before the warning"
    rows = wait_for(lambda: audit(d, "lease.idle_warning"), what="the audit row")
    assert len(rows) == 1 and str(idle["id"]) in rows[0]["subject"], rows
    body = hook.wait(lambda: hook.bodies("/hook", event="idle_warning"),
                     what="the idle_warning alert")[0]
    assert body["details"]["lease"]["id"] == idle["id"], body
    assert "released" in body["text"], body
    # Sub-minute times in seconds (never "0 min"), the holder by name, and
    # no terminal line endings in what goes to webhooks (issue 17, item 5).
    assert "0 min" not in body["text"] and "\r" not in body["text"], body
    assert re.search(r"idle for \d+s; it will be released in \d+s", body["text"]), body
    assert alice.name in body["text"], body
    assert "uid " not in body["text"], body
    wait_for(lambda: f"lease {idle['id']}".encode() in session.output and
             b"released" in session.output, what="the warning on alice's terminal")

    # Then released, with the reason "idle".
    while lease_of(d, alice, GPU0_UUID) is not None:
        assert seconds < 2 * RELEASE_AFTER, "never released"
        step()
    assert daemon_now() - idle["created_at"] >= RELEASE_AFTER - 0.1, idle
    row = d.query("SELECT state, release_reason, idle_device_usec FROM leases WHERE id = ?",
                  (idle["id"],))[0]
    assert row["state"] == "released" and row["release_reason"] == "idle", row
    # Idle the whole time on one device: about release_after device-seconds
    # (one second a tick, plus the real time before and between the ticks).
    assert (RELEASE_AFTER - 5) * 1e6 <= row["idle_device_usec"] <= (RELEASE_AFTER + 30) * 1e6, row
    body = hook.wait(lambda: hook.bodies("/hook", event="idle_reclaim"),
                     what="the idle_reclaim alert")[0]
    assert body["details"]["lease"]["id"] == idle["id"], body
    assert re.search(r"was idle for (\d+s|1m|1m\d+s) and has been released", body["text"]), body
    assert alice.name in body["text"], body

    # The busy lease is kept, never warned, and has no idle time.
    step()
    kept = lease_of(d, bob, GPU2_UUID)
    assert kept is not None and kept["id"] == busy["id"], d.leases()
    assert kept["idle_warned"] is False, kept
    assert kept["idle_device_seconds"] < 1.0, kept
    assert all(str(busy["id"]) not in (r["subject"] or "")
               for r in audit(d, "lease.idle_warning"))
    assert len(hook.bodies("/hook", event="idle_warning")) == 1
    assert job.alive()


def test_idle_run_lease_is_flagged_not_stopped(daemon_factory, lab, users, hooks):
    """On the test clock (debug.clock, one second of daemon time a
    debug.tick), like the test above: no sleeps."""
    alice = users["alice"]
    hook = hooks()
    lab.gpu(GPU0_UUID)["utilization_gpu"] = 0
    d = start_leasing_daemon(
        daemon_factory, lab,
        idle={"release_after": "1h", "flag_after": "1m"},
        alerts={"sinks": [{"name": "ops", "type": "webhook", "url": hook.url("/hook"),
                           "events": ["idle_flag"]}]})
    run = d.cli_popen("run", "--gpu", GPU0_UUID, "--", "sleep", "600", user=alice)
    lease = wait_for(lambda: lease_of(d, alice, GPU0_UUID), what="the run lease")
    assert lease["kind"] == "run" and lease["idle_flagged"] is False, lease
    d.tick()
    steps = 0

    def step():
        nonlocal steps
        d.clock(advance_sec=1)
        d.tick()
        steps += 1

    while not (lease_of(d, alice, GPU0_UUID) or {}).get("idle_flagged"):
        assert steps < 120, "never flagged"
        step()
    flagged = lease_of(d, alice, GPU0_UUID)
    daemon_now = d.clock(advance_sec=0)["wall_usec"] / 1e6
    assert daemon_now - lease["created_at"] >= 60 - 0.1, (daemon_now, lease)
    # Idle the whole time: about a minute of device time (one second a
    # tick, plus the real time between the ticks).
    assert 55 <= flagged["idle_device_seconds"] <= 60 + 30, flagged
    body = hook.wait(lambda: hook.bodies("/hook", event="idle_flag"), what="the alert")[0]
    assert body["details"]["lease"]["id"] == lease["id"], body
    assert [r for r in audit(d, "lease.idle_flag") if str(lease["id"]) in r["subject"]]
    # stop_idle_runs is off: ten more idle minutes later the command runs
    # on, the lease stays, and it is flagged once.
    d.clock(advance_sec=600)
    d.tick(2)
    assert lease_of(d, alice, GPU0_UUID)["id"] == lease["id"]
    assert run.poll() is None
    assert len([r for r in audit(d, "lease.idle_flag") if str(lease["id"]) in r["subject"]]) == 1
