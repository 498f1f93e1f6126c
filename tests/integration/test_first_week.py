"""What a lab trips over in its first week (issue 17): each test here failed
before its fix. Real users (gktest-alice, gktest-bob, gktest-admin), real
processes, the NVML simulator as the only stand-in."""

import json
import re

from conftest import GPU0_UUID, start_leasing_daemon, wait_for, whole_gpu_uuid

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
