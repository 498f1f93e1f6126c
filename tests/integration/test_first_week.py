"""What a lab trips over in its first week (issue 17): each test here failed
before its fix. Real users (gktest-alice, gktest-bob, gktest-admin), real
processes, the NVML simulator as the only stand-in."""

import json
import re
import signal

from conftest import GPU0_UUID, start_leasing_daemon, wait_for, whole_gpu_uuid
from enforcefixtures import hooks, victims  # noqa: F401 (fixtures)

EXIT_PERMISSION = 77
EXIT_NO_CAPACITY = 75


def ok(r):
    assert r.returncode == 0, f"{r.args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


# ---- item 3: admins are not capped like users -------------------------------

def test_admins_are_not_bound_by_user_caps(daemon_factory, lab, users, admin):
    alice = users["alice"]
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=2,
                             policy={"max_gpus": 1, "max_duration": "2h"})
    r = d.cli("lease", "acquire", "--gpus", "2", "--no-wait", user=alice)
    assert r.returncode == EXIT_PERMISSION, r
    # root and a member of gpukeeper-admin: no device cap, no duration cap.
    ok(d.cli("lease", "acquire", "--gpus", "2", "--no-wait", "--time", "3h"))
    ok(d.cli("lease", "release", "--all"))
    ok(d.cli("lease", "acquire", "--gpus", "2", "--no-wait", "--time", "3h", user=admin))
    held = [x for x in d.leases() if x["uid"] == admin.uid]
    assert len(held) == 1 and len(held[0]["devices"]) == 2, held


def test_admin_cap_applies_when_the_config_names_their_group(daemon_factory, lab, users, admin):
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=2, policy={
        "max_gpus": 3, "groups": [{"group": "gpukeeper-admin", "max_gpus": 1}]})
    r = d.cli("lease", "acquire", "--gpus", "2", "--no-wait", user=admin)
    assert r.returncode == EXIT_PERMISSION, r
    assert "limit" in r.stderr, r.stderr


# ---- item 11: durations in messages are written as 4h, 1d -------------------

def test_durations_in_messages_use_units(daemon_factory, lab, users):
    alice = users["alice"]
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=1,
                             policy={"default_duration": "1h", "max_duration": "4h"})
    r = d.cli("lease", "acquire", "--time", "1d", "--no-wait", user=alice)
    assert r.returncode == EXIT_PERMISSION, r
    assert "at most 4h" in r.stderr and "14400" not in r.stderr, r.stderr
    ok(d.cli("lease", "acquire", "--time", "1h", user=alice))
    lease = [x for x in d.leases() if x["uid"] == alice.uid][0]
    r = d.cli("lease", "extend", str(lease["id"]), "--time", "5h30m", user=alice)
    assert r.returncode == EXIT_PERMISSION, r
    assert "last 6h30m from its grant" in r.stderr and "at most 4h" in r.stderr, r.stderr
    assert not re.search(r"\d+ s\b", r.stderr), r.stderr
    # Beyond what the protocol takes from anyone (366d): a usage error that
    # says so, not the request's field name ('duration_sec' must be ...).
    for args in (("lease", "acquire", "--time", "367d", "--no-wait"),
                 ("lease", "extend", str(lease["id"]), "--time", "400d")):
        r = d.cli(*args, user=alice)
        assert r.returncode == 64, r
        assert "at most 366d" in r.stderr and "duration_sec" not in r.stderr, r.stderr
    r = d.cli("lease", "acquire", "--time", "366d", "--no-wait", user=alice)
    assert r.returncode == EXIT_PERMISSION and "at most 4h" in r.stderr, r


# ---- the audit CLI ------------------------------------------------------------

def test_audit_cli_admins_see_all_users_their_own(daemon_factory, lab, users, admin):
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=2)
    ok(d.cli("lease", "acquire", user=alice))
    ok(d.cli("lease", "release", "--all", user=alice))
    ok(d.cli("lease", "acquire", user=bob))

    def records(*args, user=None):
        r = ok(d.cli("audit", "--json", *args, user=user))
        return json.loads(r.stdout)["records"]

    everyone = records(user=admin)
    assert {alice.uid, bob.uid} <= {x["uid"] for x in everyone}, everyone
    assert everyone == sorted(everyone, key=lambda x: (x["at"], x["id"]), reverse=True)
    mine = records(user=alice)
    assert mine and {x["uid"] for x in mine} == {alice.uid}, mine
    assert all(x["user"] == alice.name for x in mine), mine
    # A family of actions, or one action; a user filter for admins.
    released = records("--action", "lease.release")
    assert released and {x["action"] for x in released} == {"lease.release"}, released
    leases = records("--action", "lease", "--user", bob.name)
    assert leases and all(x["action"].startswith("lease.") and x["uid"] == bob.uid
                          for x in leases), leases
    assert records("--since", "1s", "--action", "nothing.such") == []
    # In text, a filter that matched nothing says which filter it was.
    r = ok(d.cli("audit", "--action", "lease.relase", "--user", bob.name, user=admin))
    assert r.stdout.startswith(f"No audit records of user '{bob.name}' with action "
                               "'lease.relase' in the last 1d.\n"), r.stdout
    assert "gpukeeperd(8), AUDIT TRAIL" in r.stdout, r.stdout
    # Someone else's records: refused, exit 77.
    r = d.cli("audit", "--user", bob.name, user=alice)
    assert r.returncode == EXIT_PERMISSION, r
    assert "admin" in r.stderr, r.stderr
    # The table, piped: every column, the detail never cut.
    r = ok(d.cli("audit", user=admin))
    assert r.stdout.splitlines()[0].split() == ["TIME", "USER", "ACTION", "SUBJECT", "DETAIL"]
    assert any(alice.name in line and "lease.release" in line for line in r.stdout.splitlines())
    r = d.cli("audit", "--action", "Bad Action", user=admin)
    assert r.returncode != 0 and "action" in r.stderr, r
    # A name /etc/passwd does not know is the daemon's to look up: the
    # static command crashed in glibc's NSS (libnss_systemd) doing it itself.
    for who in (admin, alice):
        r = d.cli("audit", "--user", "gktest-no-such-user", user=who)
        assert r.returncode == 66, r
        assert "no such user 'gktest-no-such-user'" in r.stderr, r.stderr


# ---- item 1: memory of exited and zombie processes ----------------------------

ZOMBIE_PARENT = r"""
import os, sys, time
pid = os.fork()
if pid == 0:
    os._exit(0)
open(sys.argv[1], "w").write(str(pid))
time.sleep(300)  # never reaps its child: a zombie
"""


def test_memory_of_exited_and_zombie_processes_is_held_and_alerted(daemon_factory, lab, users,
                                                                   spawn, hooks):
    from conftest import PYTHON, as_user
    import subprocess
    alice, bob = users["alice"], users["bob"]
    hook = hooks()
    d = start_leasing_daemon(
        daemon_factory, lab, extra_whole=1, policy={"unleased_memory_limit": "1G"},
        alerts={"sinks": [{"name": "ops", "type": "webhook", "url": hook.url("/hook"),
                           "events": ["exited_memory"]}]})
    gpu2 = whole_gpu_uuid(2)
    # A job of alice that will be gone (reaped) while NVML keeps its 8 GiB...
    job = spawn(alice, "alice-gone-job")
    lab.add_process(gpu2, job.pid, 8192)
    lab.write()
    # ...and a zombie of alice holding 6 GiB: its parent never reaps it.
    pidfile = d.shared_log("zombie.pid")
    parent = subprocess.Popen([PYTHON, "-c", ZOMBIE_PARENT, str(pidfile)],
                              stdin=subprocess.DEVNULL, start_new_session=True, **as_user(alice))
    try:
        zombie = int(wait_for(lambda: pidfile.read_text().strip(), what="the zombie's pid"))
        wait_for(lambda: open(f"/proc/{zombie}/stat").read().rsplit(")", 1)[1].split()[0] == "Z",
                 what="the child to be a zombie")
        lab.write()
        # The job is seen alive (its owner known) first...
        wait_for(lambda: any(p["pid"] == job.pid and p["user"] == alice.name
                             for g in d.status()["gpus"] for p in g["processes"]),
                 what="the job in status")
        # ...then, in one sample (the daemon is stopped meanwhile), it is gone
        # and the zombie appears.
        d.send_signal(signal.SIGSTOP)
        try:
            job.kill()
            job.wait()
            lab.add_process(gpu2, zombie, 6144)
            lab.write()
        finally:
            d.send_signal(signal.SIGCONT)

        def exited_rows():
            rows = {p["pid"]: p for g in d.status()["gpus"] if g["uuid"] == gpu2
                    for p in g["processes"]}
            return rows if rows.get(job.pid, {}).get("vanished") else None

        rows = wait_for(exited_rows, what="the job to show as exited")
        # The last known owner is kept; both count as exited.
        assert rows[job.pid]["user"] == alice.name and rows[job.pid]["exited"], rows
        assert rows[zombie]["zombie"] and rows[zombie]["user"] == alice.name, rows
        # The memory counts as held: no lease on that GPU for bob.
        r = d.cli("lease", "acquire", "--gpu", gpu2, "--no-wait", user=bob)
        assert r.returncode == EXIT_NO_CAPACITY, r
        # Admins are told whose it is and what can be done.
        body = hook.wait(lambda: hook.bodies("/hook", event="exited_memory"),
                         what="the exited_memory alert")[0]
        text = body["text"]
        assert "14.0 GiB held by exited processes of " + alice.name in text, text
        assert f"parent {parent.pid}" in text and "reaps" in text, text
        assert "nvidia-smi -r" in text, text
        r = ok(d.cli("status", user=bob))
        assert "(zombie)" in r.stdout and "(exited)" in r.stdout, r.stdout
    finally:
        parent.kill()
        parent.wait()


# ---- item 13: --no-wait on a drained GPU -------------------------------------

def test_no_wait_on_a_drained_gpu_says_drained_by_whom(daemon_factory, lab, users, admin):
    alice = users["alice"]
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=1)
    gpu2 = whole_gpu_uuid(2)
    ok(d.cli("admin", "drain", gpu2, "--reason", "fan replacement", user=admin))
    r = d.cli("lease", "acquire", "--gpu", gpu2, "--no-wait", user=alice)
    assert r.returncode == EXIT_NO_CAPACITY, r
    assert f"{gpu2} is drained by {admin.name} (fan replacement)" in r.stderr, r.stderr
    assert "waiting will not help" in r.stderr and "undrain" in r.stderr, r.stderr
    assert "waiting for" not in r.stderr, r.stderr


# ---- item 4: repeated conditions re-alert; recoveries name the GPU ------------

def test_persisting_condition_realerts_and_recovery_names_the_gpu(daemon_factory, lab, hooks):
    import time
    hook = hooks()
    d = start_leasing_daemon(
        daemon_factory, lab,
        alerts={"temperature_c": 80, "temperature_for": "0s", "repeat_after": "2s",
                "sinks": [{"name": "ops", "type": "webhook", "url": hook.url("/hook"),
                           "events": ["temperature"]}]})
    assert d.alive()
    lab.gpu(GPU0_UUID)["temperature_c"] = 91
    lab.write()
    hook.wait(lambda: hook.bodies("/hook", event="temperature"), what="the first alert")
    # The condition persists: sent again after repeat_after, not before.
    time.sleep(1.0)
    assert len(hook.bodies("/hook", event="temperature")) == 1
    hook.wait(lambda: len(hook.bodies("/hook", event="temperature")) >= 2,
              what="the repeated alert", timeout=6)
    lab.gpu(GPU0_UUID)["temperature_c"] = 40
    lab.write()
    rec = hook.wait(lambda: [b for b in hook.bodies("/hook", event="temperature")
                             if b["status"] == "resolved"], what="the recovery")[0]
    assert f"GPU 0 ({GPU0_UUID})" in rec["text"], rec


# ---- item 10: a manual lease warns before it expires --------------------------

def test_manual_lease_warns_before_expiry_and_violation_says_it_expired(daemon_factory, lab,
                                                                         users, spawn, hooks):
    from conftest import raw_call
    alice = users["alice"]
    hook = hooks()
    d = start_leasing_daemon(
        daemon_factory, lab, extra_whole=1, policy={"expiry_warning": "2s"},
        enforcement={"mode": "observe"},
        alerts={"sinks": [{"name": "ops", "type": "webhook", "url": hook.url("/hook"),
                           "events": ["expiry_warning", "violation"]}]})
    gpu2 = whole_gpu_uuid(2)
    reply = raw_call(d, alice, "lease.acquire", {"kind": "manual", "devices": [gpu2],
                                                 "duration_sec": 4})
    assert reply["ok"] is True, reply
    lease = reply["result"]["lease"]
    job = spawn(alice, "alice-training")
    lab.add_process(gpu2, job.pid, 4096)
    lab.write()
    warned = hook.wait(lambda: hook.bodies("/hook", event="expiry_warning"),
                       what="the expiry warning", timeout=10)[0]
    assert f"lease {lease['id']} of {alice.name}" in warned["text"], warned
    assert "expires at" in warned["text"] and re.search(r"in [12]s\.", warned["text"]), warned
    assert f"gpukeeper lease extend {lease['id']}" in warned["text"], warned
    assert not hook.bodies("/hook", event="violation"), "warned too late"
    # At expiry the process becomes a violation, and the notice says why.
    v = hook.wait(lambda: hook.bodies("/hook", event="violation"), what="the violation",
                  timeout=10)[0]
    assert f"your lease {lease['id']}" in v["text"] and "expired at" in v["text"], v
    assert "get a lease first" not in v["text"], v
    assert d.query("SELECT * FROM audit WHERE action = 'lease.expiry_warning'")


# ---- item 3: an admin's release is told to the holder --------------------------

def test_admin_release_tells_the_holder(daemon_factory, lab, users, admin, hooks, victims):
    alice = users["alice"]
    hook = hooks()
    d = start_leasing_daemon(
        daemon_factory, lab, extra_whole=1,
        alerts={"sinks": [{"name": "ops", "type": "webhook", "url": hook.url("/hook"),
                           "events": ["idle_reclaim"]}]})
    session = victims(d, alice, "alice-shell", on_term="exit", tty=True)
    ok(d.cli("lease", "acquire", user=alice))
    lease = [x for x in d.leases() if x["uid"] == alice.uid][0]
    ok(d.cli("lease", "release", str(lease["id"]), user=admin))
    body = hook.wait(lambda: hook.bodies("/hook", event="idle_reclaim"), what="the alert")[0]
    # The admin's name comes from the resolver thread; on a loaded machine
    # its first lookup may not have answered yet, and the text names the uid
    # (never "(null)").
    assert f"lease {lease['id']}" in body["text"]
    assert (f"released by {admin.name}," in body["text"]
            or f"released by uid {admin.uid}," in body["text"]), body["text"]
    wait_for(lambda: f"lease {lease['id']}".encode() in session.output and
             b"released by" in session.output, what="the notice on alice's terminal")


# ---- item 12: env backup uses the daemon's backup_dir and creates --to ---------

def test_env_backup_follows_the_config_and_creates_to(workdir):
    from conftest import GK, run_cli
    import tarfile
    state = workdir / "state"
    config = workdir / "gpukeeper.yaml"
    config.write_text(f"state_dir: {state}\n")
    env = {"GPUKEEPER_CONFIG": str(config)}
    # No env.backup_dir: state_dir/env-backups, created as the daemon would.
    r = run_cli([str(GK), "env", "backup"], env=env, timeout=120)
    assert r.returncode == 0, r
    out = r.stdout.strip()
    assert out.startswith(str(state / "env-backups") + "/"), out
    assert tarfile.open(out).getnames() is not None
    config.write_text(f"state_dir: {state}\nenv:\n  backup_dir: {workdir / 'bk'}\n")
    r = ok(run_cli([str(GK), "env", "backup"], env=env, timeout=120))
    assert r.stdout.strip().startswith(str(workdir / "bk") + "/"), r.stdout
    # --to a directory that does not exist yet: created, not an error.
    r = ok(run_cli([str(GK), "env", "backup", "--to", str(workdir / "new" / "sub")], env=env,
                   timeout=120))
    assert r.stdout.strip().startswith(str(workdir / "new" / "sub") + "/"), r.stdout
    # A broken config is reported, not silently replaced by a default.
    config.write_text("bogus: 1\n")
    r = run_cli([str(GK), "env", "backup"], env=env, timeout=120)
    assert r.returncode == 78 and "unknown key 'bogus'" in r.stderr, r


# ---- lease adopt --------------------------------------------------------------

def test_lease_adopt_turns_an_unleased_job_into_a_lease(daemon_factory, lab, users, spawn):
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=2,
                             enforcement={"mode": "observe"})
    gpu2, gpu3 = whole_gpu_uuid(2), whole_gpu_uuid(3)
    job = spawn(alice, "alice-started-without-lease")
    other = spawn(bob, "bob-job")
    lab.add_process(gpu2, job.pid, 4096)
    lab.add_process(gpu3, other.pid, 1024)
    lab.write()
    wait_for(lambda: any(p["pid"] == job.pid for g in d.status()["gpus"]
                         for p in g["processes"]), what="the job in status")
    # Someone else's process: refused; nor can bob lease alice's busy GPU by name.
    r = d.cli("lease", "adopt", str(other.pid), user=alice)
    assert r.returncode == EXIT_PERMISSION and "not yours" in r.stderr, r
    r = d.cli("lease", "acquire", "--gpu", gpu2, "--no-wait", user=bob)
    assert r.returncode == EXIT_NO_CAPACITY, r
    r = ok(d.cli("lease", "adopt", str(job.pid), "--json", user=alice))
    lease = json.loads(r.stdout)["lease"]
    assert [x["uuid"] for x in lease["devices"]] == [gpu2] and lease["uid"] == alice.uid, lease
    wait_for(lambda: [p for g in d.status()["gpus"] for p in g["processes"]
                      if p["pid"] == job.pid and p["leased"]], what="the job to run leased")
    r = d.cli("lease", "adopt", str(job.pid), user=alice)
    assert r.returncode != 0 and "already" in r.stderr, r
    # The violation notice of bob's job tells him about adopt.
    v = wait_for(lambda: [x for x in d.ok("violations.list", {"since": 0})["violations"]
                          if x["pid"] == other.pid], what="bob's violation")
    assert v


# ---- item 14: 7-digit PIDs keep the columns; a piped queue reason is whole ------

def test_status_columns_hold_for_7_digit_pids_and_piped_reasons_are_whole(daemon_factory, lab,
                                                                          users, spawn):
    """pid_max can be 4194304. This host's pid_max (32768, and a PID
    namespace cannot go above it) gives no real process such a PID, so the
    7-digit one is a PID NVML lists that no process here has (the daemon
    shows it as exited), beside alice's real process: both lines must put
    user and memory in the same columns."""
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab)
    ok(d.cli("lease", "acquire", "--gpu", GPU0_UUID, "--time", "1h", user=alice))
    job = spawn(alice, "alice-job")
    big = 4194301
    lab.add_process(GPU0_UUID, job.pid, 2048)
    lab.add_process(GPU0_UUID, big, 1024)
    lab.write()
    # bob waits for the GPU by UUID: a reason longer than a terminal's line.
    waiting = d.cli_popen("lease", "acquire", "--gpu", GPU0_UUID, "--time", "1h", user=bob)
    wait_for(lambda: d.ok("queue.list")["queue"], what="bob's queued request")
    reason = d.ok("queue.list")["queue"][0]["reason"]
    assert reason.startswith(f"waiting for {GPU0_UUID}") and len(reason) > 45, reason

    def lines():
        d.ok("debug.tick")
        return ok(d.cli("status")).stdout.splitlines()

    wait_for(lambda: any(str(big) in x for x in lines()), what="the 7-digit pid in status")
    out = lines()
    mine = next(x for x in out if re.match(rf"^\s+{job.pid} ", x))
    other = next(x for x in out if re.match(rf"^\s+{big} ", x))
    who = alice.name[:9]  # the USER column is 10 wide: longer names are cut with "…"
    assert who in mine and "(exited)" in other, (mine, other)
    # The PID column ends, the user column starts and the memory ends at
    # the same place on both lines.
    assert mine.index(str(job.pid)) + len(str(job.pid)) == other.index(str(big)) + len(str(big))
    assert mine.index(who) == other.index(str(big)) + len(str(big)) + 1, (mine, other)
    assert mine.index("GiB") == other.index("GiB"), (mine, other)

    # Piped (no terminal), the queue's REASON is never cut: in status and queue.
    assert any(x.rstrip().endswith(reason) for x in out), "\n".join(out)
    q = ok(d.cli("queue", user=bob)).stdout.splitlines()
    assert q[0].split()[-1] == "REASON" and q[1].rstrip().endswith(reason), q
    waiting.kill()


# ---- item 6: the allocator prefers a GPU nobody else uses ----------------------

def test_allocator_prefers_an_idle_gpu_to_one_busy_with_a_root_process(daemon_factory, lab,
                                                                      users, spawn):
    """A real root process on GPU 0 (87 % utilisation, memory held, under
    unleased_memory_limit) and an idle GPU 2 that was released a moment ago,
    so least-recently-used alone would pick GPU 0."""
    alice = users["alice"]
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=1,
                             policy={"unleased_memory_limit": "4G"})
    gpu2 = whole_gpu_uuid(2)
    lease = json.loads(ok(d.cli("lease", "acquire", "--gpu", gpu2, "--json", user=alice)).stdout)
    ok(d.cli("lease", "release", str(lease["lease"]["id"]), user=alice))
    job = spawn(None, "root-job")
    lab.gpu(GPU0_UUID)["utilization_gpu"] = 87
    lab.add_process(GPU0_UUID, job.pid, 2048)
    lab.write()
    wait_for(lambda: d.ok("debug.tick") and any(
        p["pid"] == job.pid for g in d.ok("status")["gpus"] for p in g["processes"]),
        what="the root process in the snapshot")
    got = json.loads(ok(d.cli("lease", "acquire", "--json", user=alice)).stdout)
    assert [x["uuid"] for x in got["lease"]["devices"]] == [gpu2], got
