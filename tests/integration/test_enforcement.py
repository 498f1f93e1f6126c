"""Enforcement against GPU use without a lease, with real users and real
processes declared to the simulator: the owner is told on the process's
terminal, SIGTERM follows after enforcement.grace and SIGKILL after
kill_timeout; observe mode only records and alerts; exempt users are left
alone; MIG instances are judged one by one; a recycled PID is never
signalled; a daemon killed during the grace period resumes the violation
after its restart without forgetting or repeating a signal; the records
are shown by `gpukeeper violations` and marked in `gpukeeper status`."""

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import (GPU0_UUID, GPU1_UUID, MIG_A_UUID, MIG_B_UUID, PYTHON, as_user,
                      find_process, start_leasing_daemon, wait_for)
from enforcefixtures import (VICTIM, audit, hooks, victims,  # noqa: F401 (fixtures)
                             violations_of, wait_violation)

EXIT_USAGE = 64
MIB = 1024 * 1024

# Short, so a test waits seconds; the sampler ticks every 0.2 s.
ENFORCE = {"mode": "enforce", "grace": "2s", "kill_timeout": "1s"}
GRACE = 2.0
KILL_TIMEOUT = 1.0
# How late a signal may come after it is due: a tick or two, on a loaded
# two-core machine under the sanitizers.
LATE = 2.0


def ok(r):
    assert r.returncode == 0, f"{r.args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def clock(t):
    """Local HH:MM:SS of a unix time, as the daemon and the CLI print it."""
    return time.strftime("%H:%M:%S", time.localtime(int(t)))


def declare(lab, gpu_uuid, *procs, gi=None, ci=None, mib=1024):
    for p in procs:
        lab.add_process(gpu_uuid, p.pid, mib, gi=gi, ci=ci)
    lab.write()


def status_text(d, user=None):
    r = ok(d.cli("status", user=user))
    return r.stdout


def line_of(text, pid):
    """The status line of process `pid` (in a MIG instance's tree, too)."""
    lines = [ln for ln in text.splitlines()
             if ln.replace("\u2502", " ").replace("|", " ").split()[:1] == [str(pid)]]
    assert len(lines) == 1, f"no single line for pid {pid} in:\n{text}"
    return lines[0]


def mark_of(text, pid):
    """The violation mark status prints under process `pid` ("" for none)."""
    lines = text.splitlines()
    i = lines.index(line_of(text, pid))
    after = lines[i + 1].strip(" |\u2502") if i + 1 < len(lines) else ""
    return after if after.startswith("VIOLATION") else ""


def test_unleased_process_is_told_then_stopped_then_killed(daemon_factory, lab, users, admin,
                                                           victims):
    alice, bob = users["alice"], users["bob"]
    enforcement = dict(ENFORCE, exempt={"users": [admin.name]})
    d = start_leasing_daemon(daemon_factory, lab, enforcement=enforcement)
    ok(d.cli("lease", "acquire", "--gpu", GPU0_UUID, user=alice))

    mine = victims(d, alice, "alice-job")
    polite = victims(d, bob, "bob-polite", on_term="exit", tty=True)
    stubborn = victims(d, bob, "bob-stubborn", on_term="stay")
    exempt = victims(d, admin, "admin-job")
    declare(lab, GPU0_UUID, mine, polite, stubborn, exempt)

    rec = wait_violation(d, polite.pid)
    assert rec["uid"] == bob.uid and rec["user"] == bob.name, rec
    assert rec["device_uuid"] == GPU0_UUID and rec["gpu_uuid"] == GPU0_UUID, rec
    assert rec["gpu_index"] == 0, rec
    assert rec["memory_bytes"] == 1024 * MIB, rec
    assert "bob-polite" in rec["command"], rec
    assert rec["outcome"] is None and rec["ended_at"] is None, rec
    assert rec["warned_at"] is not None and rec["sigterm_at"] is None, rec
    assert abs(rec["stop_at"] - (rec["detected_at"] + GRACE)) < 0.01, rec
    assert abs(rec["detected_at"] - time.time()) < 10, rec

    # status marks it, for everyone, while it is open.
    _, p = find_process(d.status(user=alice), polite.pid)
    assert p["violation"] is not None and p["violation"]["id"] == rec["id"], p
    _, p = find_process(d.status(), mine.pid)
    assert p["violation"] is None and p["leased"] is True, p
    text = status_text(d, user=alice)
    mark = f"VIOLATION: stop at {clock(rec['stop_at'])}"
    if polite.alive() and not polite.terms():
        assert mark_of(text, polite.pid) == mark, text
        assert "(no lease)" in line_of(text, polite.pid), text
    assert mark_of(text, mine.pid) == "" and "(no lease)" not in line_of(text, mine.pid), text
    # Exempt: never a violation, though its owner holds no lease here.
    assert mark_of(text, exempt.pid) == "" and "(no lease)" in line_of(text, exempt.pid), text

    # The owner is told on the process's terminal, before any signal: what,
    # which GPU, how to lease, and when it will be stopped.
    wait_for(lambda: b"without a lease" in polite.output and clock(rec["stop_at"]).encode()
             in polite.output, what="the terminal message")
    message = polite.output.decode(errors="replace")
    assert f"process {polite.pid}" in message, message
    assert "GPU 0" in message and GPU0_UUID in message, message
    assert "gpukeeper run" in message and f"gpukeeper lease adopt {polite.pid}" in message, message

    # SIGTERM after the grace; the polite one exits.
    polite.proc.wait(timeout=GRACE + 10)
    terms = polite.terms()
    assert len(terms) == 1, terms
    assert polite.output_at < terms[0], "the terminal message came after the signal"
    assert rec["detected_at"] + GRACE - 0.1 <= terms[0] <= rec["detected_at"] + GRACE + LATE, \
        (terms, rec)
    rec = wait_violation(d, polite.pid, lambda v: v["outcome"] is not None, "the end")
    assert rec["outcome"] == "stopped", rec
    assert rec["sigterm_at"] is not None and rec["sigkill_at"] is None, rec

    # The stubborn one logs the SIGTERM, stays, and gets SIGKILL kill_timeout later.
    stubborn.proc.wait(timeout=GRACE + KILL_TIMEOUT + 10)
    assert stubborn.proc.returncode == -signal.SIGKILL, stubborn.proc.returncode
    assert len(stubborn.terms()) == 1, stubborn.terms()
    srec = wait_violation(d, stubborn.pid, lambda v: v["outcome"] is not None, "the end")
    assert srec["outcome"] == "killed", srec
    assert srec["sigkill_at"] - srec["sigterm_at"] >= KILL_TIMEOUT - 0.05, srec

    # The leaseholder's own process and the exempt user's are untouched.
    assert mine.alive() and not mine.terms()
    assert exempt.alive() and not exempt.terms()
    assert violations_of(d, mine.pid) == [] and violations_of(d, exempt.pid) == []

    # Every step is in the audit trail.
    subjects = {f"violation {rec['id']}", f"violation {srec['id']}"}
    actions = {(a["action"], a["subject"]) for a in audit(d)}
    for s in subjects:
        for action in ("violation.detected", "violation.warned", "violation.sigterm",
                       "violation.ended"):
            assert (action, s) in actions, (action, s, actions)
    assert ("violation.sigkill", f"violation {srec['id']}") in actions

    # `gpukeeper violations`, for any user: JSON and the table.
    r = ok(d.cli("violations", "--json", user=bob))
    listed = {v["pid"]: v for v in json.loads(r.stdout)["violations"]}
    assert set(listed) == {polite.pid, stubborn.pid}, listed
    assert listed[polite.pid]["outcome"] == "stopped"
    assert listed[stubborn.pid]["outcome"] == "killed"
    assert listed[polite.pid]["id"] == rec["id"]
    r = ok(d.cli("violations", "--since", "1h", user=alice))
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ID", "DETECTED", "USER", "PID", "GPU", "STATE", "COMMAND"], r.stdout
    row = next(ln for ln in lines if str(polite.pid) in ln.split())
    assert row.split()[0] == str(rec["id"]) and bob.name in row and "stopped" in row, row
    assert "[0]" in row.split(), row
    row = next(ln for ln in lines if str(stubborn.pid) in ln.split())
    assert "killed" in row, row
    assert all(len(ln) < 80 for ln in lines), r.stdout

    # --since narrows; a bad duration is a usage error.
    time.sleep(max(0.0, rec["detected_at"] + 2.5 - time.time()))
    r = ok(d.cli("violations", "--since", "1s"))
    assert str(polite.pid) not in r.stdout and "No GPU use without a lease" in r.stdout, r.stdout
    r = ok(d.cli("violations", "--since", "1s", "--json"))
    assert json.loads(r.stdout)["violations"] == []
    r = d.cli("violations", "--since", "soon")
    assert r.returncode == EXIT_USAGE and "--since" in r.stderr, r


def test_observe_mode_records_and_alerts_only(daemon_factory, lab, users, victims, hooks):
    bob = users["bob"]
    hook = hooks()
    d = start_leasing_daemon(
        daemon_factory, lab,
        enforcement={"mode": "observe", "grace": "1s", "kill_timeout": "1s"},
        alerts={"sinks": [{"name": "ops", "type": "webhook", "url": hook.url("/hook")}]})
    job = victims(d, bob, "bob-observed", on_term="exit")
    declare(lab, GPU0_UUID, job)

    rec = wait_violation(d, job.pid)
    assert rec["stop_at"] is None, rec
    body = hook.wait(lambda: hook.bodies("/hook", event="violation"),
                     what="the violation alert")[0]
    assert body["details"]["pid"] == job.pid and body["details"]["user"] == bob.name, body
    assert body["details"]["device_uuid"] == GPU0_UUID, body
    assert str(job.pid) in body["text"], body

    # Long past grace and kill_timeout (an hour on the test clock, then
    # two ticks): still running, never signalled.
    d.clock(advance_sec=3600)
    d.tick(2)
    assert job.alive() and job.terms() == []
    rec = violations_of(d, job.pid)[0]
    assert rec["outcome"] is None and rec["sigterm_at"] is None, rec
    assert mark_of(status_text(d), job.pid) == "VIOLATION: observed"
    assert hook.bodies("/hook", event="process_stopped") == []
    r = ok(d.cli("violations"))
    assert "observed" in next(ln for ln in r.stdout.splitlines() if str(job.pid) in ln.split())

    # It stops using the GPU while still alive: the violation ends, no signal.
    lab.remove_process(job.pid)
    lab.write()
    rec = wait_violation(d, job.pid, lambda v: v["outcome"] is not None, "the end")
    assert rec["outcome"] == "left", rec
    assert job.alive() and job.terms() == []


def test_mig_instance_not_leased_is_caught(daemon_factory, lab, users, victims):
    bob = users["bob"]
    d = start_leasing_daemon(daemon_factory, lab, enforcement=ENFORCE)
    ok(d.cli("lease", "acquire", "--gpu", MIG_A_UUID, user=bob))

    on_mine = victims(d, bob, "bob-mig-a")
    on_other = victims(d, bob, "bob-mig-b")
    lab.add_process(GPU1_UUID, on_mine.pid, 2048, gi=1, ci=0)
    lab.add_process(GPU1_UUID, on_other.pid, 2048, gi=2, ci=0)
    lab.write()

    rec = wait_violation(d, on_other.pid)
    assert rec["device_uuid"] == MIG_B_UUID and rec["gpu_uuid"] == GPU1_UUID, rec
    assert rec["gpu_index"] == 1, rec
    _, p = find_process(d.status(), on_mine.pid)
    assert p["leased"] is True and p["violation"] is None, p
    text = status_text(d)
    assert mark_of(text, on_other.pid).startswith("VIOLATION: stop at"), text
    assert mark_of(text, on_mine.pid) == "", text
    r = ok(d.cli("violations"))
    row = next(ln for ln in r.stdout.splitlines() if str(on_other.pid) in ln.split())
    assert "[1] MIG-" in row, row

    on_other.proc.wait(timeout=GRACE + 10)
    assert len(on_other.terms()) == 1
    rec = wait_violation(d, on_other.pid, lambda v: v["outcome"] is not None, "the end")
    assert rec["outcome"] == "stopped", rec
    # The owner's lease on the other instance of the same GPU is respected.
    assert on_mine.alive() and on_mine.terms() == []
    assert violations_of(d, on_mine.pid) == []


def take_pid(pid, user, tag, log):
    """Start a VICTIM as `user` with exactly `pid` (free now): set the PID
    namespace's last PID to pid - 1 and fork. Returns the Popen, or None when
    another process took the PID first (the caller retries)."""
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(pid - 1))
    p = subprocess.Popen([PYTHON, "-c", VICTIM, str(log), "stay", "-", tag],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, **as_user(user))
    if p.pid == pid:
        return p
    p.kill()
    p.wait()
    return None


def test_recycled_pid_is_never_signalled(daemon_factory, lab, users, victims):
    alice, bob = users["alice"], users["bob"]
    if not os.access("/proc/sys/kernel/ns_last_pid", os.W_OK):
        pytest.skip("/proc/sys/kernel/ns_last_pid is not writable here: "
                    "a process cannot be given a chosen PID")
    # A grace of an hour that passes only on the daemon's test clock
    # (debug.clock): no race between the PID's reuse and the SIGTERM.
    d = start_leasing_daemon(daemon_factory, lab,
                             enforcement=dict(ENFORCE, grace="1h"))
    ok(d.cli("lease", "acquire", "--gpu", GPU0_UUID, "--time", "1d", user=alice))
    first = victims(d, bob, "bob-first", on_term="stay")
    declare(lab, GPU0_UUID, first)
    rec = wait_violation(d, first.pid)
    start_first = first.start_time()

    # It exits; a new process (alice's: she may use this GPU) takes its PID,
    # well before the SIGTERM for the first one is due.
    pid = first.pid
    first.proc.kill()
    first.proc.wait()
    log = d.shared_log("second.log")
    second = None
    for _ in range(50):
        second = take_pid(pid, alice, "alice-second", log)
        if second:
            break
    assert second is not None, f"could not start a process with pid {pid}"
    try:
        wait_for(lambda: f"READY {pid}" in log.read_text(), what="the second process")
        assert int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19]) != start_first

        d.tick()
        rec = wait_violation(d, pid, lambda v: v["outcome"] is not None, "the end")
        assert rec["outcome"] == "gone", rec
        assert rec["sigterm_at"] is None, rec
        # Past the time the SIGTERM was due: the new process got nothing,
        # and its own use (with a lease) is no violation.
        d.clock(advance_sec=3600 + 60)
        d.tick(2)
        assert second.poll() is None
        assert "TERM" not in log.read_text(), log.read_text()
        recs = violations_of(d, pid)
        assert [v["id"] for v in recs] == [rec["id"]], recs
    finally:
        second.kill()
        second.wait()


def test_daemon_killed_during_grace_resumes_without_double_signal(daemon_factory, lab, users,
                                                                  victims):
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab,
                             enforcement={"mode": "enforce", "grace": "3s",
                                          "kill_timeout": "1h"})
    ok(d.cli("lease", "acquire", "--gpu", GPU0_UUID, user=alice))
    job = victims(d, bob, "bob-counted", on_term="stay")
    declare(lab, GPU0_UUID, job)
    rec = wait_violation(d, job.pid)
    assert rec["sigterm_at"] is None

    # kill -9 in the grace period, then start again on the same state.
    d.crash()
    assert job.terms() == []
    d.start()
    again = violations_of(d, job.pid)
    assert [v["id"] for v in again] == [rec["id"]], again
    assert again[0]["outcome"] is None and again[0]["detected_at"] == rec["detected_at"], again

    # The SIGTERM comes when it was due at the first detection, once.
    wait_for(lambda: job.terms(), timeout=GRACE + 10, what="the SIGTERM")
    terms = job.terms()
    assert rec["detected_at"] + 3.0 - 0.1 <= terms[0] <= rec["detected_at"] + 3.0 + LATE + 2, \
        (terms, rec)
    rec = wait_violation(d, job.pid, lambda v: v["sigterm_at"] is not None, "the SIGTERM record")
    assert mark_of(status_text(d), job.pid) == "VIOLATION: SIGTERM sent"

    # Crash again after the signal: the restarted daemon does not repeat it.
    d.crash()
    d.start()
    d.tick(3)  # enforcement runs each tick; a repeat would be audited below
    assert len(job.terms()) == 1, job.terms()
    assert job.alive()
    recs = violations_of(d, job.pid)
    assert len(recs) == 1 and recs[0]["id"] == rec["id"] and recs[0]["outcome"] is None, recs
    assert recs[0]["sigterm_at"] == rec["sigterm_at"], recs
    assert len([a for a in audit(d, "violation.sigterm")]) == 1
