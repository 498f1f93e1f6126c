"""Manual leases of real users (gktest-alice, gktest-bob) through the CLI:
acquire, env, list, extend, release; per-user caps (also by Unix group);
durations and expiry; refusals of someone else's lease with their audit rows;
the admin override; draining; multi-GPU leases kept on one NUMA node (NVML's
memory affinity) or, without NUMA information, on close bus ids. The queue's
order and backfill are in test_queue.py, `gpukeeper run` in test_run.py."""

import json
import re
import subprocess
import time

from conftest import (CLI_FOR_USERS, GPU0_UUID, GPU1_UUID, MIG_A_UUID, MIG_B_UUID, as_user,
                      gpu_by_uuid, lease_devices, leases_from_json, raw_call,
                      start_leasing_daemon, wait_for, whole_gpu_uuid)

GPU2_UUID = whole_gpu_uuid(2)  # the first extra whole GPU of start_leasing_daemon

EXIT_NO_CAPACITY = 75
EXIT_PERMISSION = 77
E_PERMISSION = 5
E_INVALID_ARGUMENT = 6
E_NOT_FOUND = 7


def only_lease(d, user):
    """The one active lease of `user`."""
    mine = [lease for lease in d.leases() if lease["uid"] == user.uid]
    assert len(mine) == 1, f"{user.name} holds {mine}"
    return mine[0]


def audit_rows(d, uid, after_id=0):
    return d.query("SELECT * FROM audit WHERE uid = ? AND id > ? ORDER BY id", (uid, after_id))


def last_audit_id(d):
    return d.query("SELECT COALESCE(MAX(id), 0) AS m FROM audit")[0]["m"]


def refusal_audited(d, uid, action, lease_id, after_id):
    """The audit row of `uid`, newer than `after_id`, that records a refused
    `action` ("lease.release_denied", …) of `lease_id` (None: no lease)."""
    rows = audit_rows(d, uid, after_id)
    for r in rows:
        if r["action"] == action and (lease_id is None or r["subject"] == f"lease {lease_id}"):
            # The detail keeps the reason the caller was given.
            assert "reason" in json.loads(r["detail"] or "{}"), r
            return r
    raise AssertionError(f"no audit row {action} of lease {lease_id} by uid {uid}: {rows}")


def test_manual_lease_acquire_env_list_extend_release(daemon_factory, lab, users):
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab)

    r = d.cli("lease", "acquire", "--gpus", "1", "--time", "2h", user=alice)
    assert r.returncode == 0, r
    lease = only_lease(d, alice)
    assert lease["kind"] == "manual" and lease["state"] == "active", lease
    assert lease["user"] == alice.name
    # BASE_LAB has one GPU not in MIG mode; --gpus counts whole GPUs only.
    assert lease_devices(lease) == [GPU0_UUID], lease
    assert lease["cuda_visible_devices"] == GPU0_UUID
    assert lease["devices"][0]["gpu_uuid"] == GPU0_UUID
    assert lease["devices"][0]["gpu_index"] == 0
    assert lease["devices"][0]["profile"] is None
    assert abs(lease["expires_at"] - (lease["created_at"] + 7200)) < 5, lease
    assert abs(lease["created_at"] - time.time()) < 60, lease
    assert lease["released_at"] is None
    lid = lease["id"]
    assert str(lid) in r.stdout, f"acquire does not print the lease id: {r.stdout}"
    assert "lease env" in r.stdout + r.stderr, f"acquire gives no eval hint: {r}"

    # list: own by default, everyone's with --all, for bob as well.
    r = d.cli("lease", "list", "--json", user=alice)
    assert r.returncode == 0, r
    assert [x["id"] for x in leases_from_json(r.stdout)] == [lid]
    r = d.cli("lease", "list", "--json", user=bob)
    assert r.returncode == 0, r
    assert leases_from_json(r.stdout) == []
    r = d.cli("lease", "list", "--all", "--json", user=bob)
    assert r.returncode == 0, r
    assert [x["id"] for x in leases_from_json(r.stdout)] == [lid]
    r = d.cli("lease", "list", user=alice)
    assert r.returncode == 0, r
    row = [line for line in r.stdout.splitlines() if line.split()[:1] == [str(lid)]]
    assert len(row) == 1 and "manual" in row[0], r.stdout

    # eval "$(gpukeeper lease env)" in a shell of alice's.
    script = ('eval "$("$0" --socket "$1" lease env)" && printf "%s|%s|%s\\n" '
              '"$CUDA_VISIBLE_DEVICES" "$CUDA_DEVICE_ORDER" "$GPUKEEPER_LEASE_ID"')
    sh = subprocess.run(["sh", "-c", script, str(CLI_FOR_USERS["path"]), str(d.socket_path)],
                        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                        **as_user(alice))
    assert sh.returncode == 0, sh
    assert sh.stdout.strip() == f"{GPU0_UUID}|PCI_BUS_ID|{lid}", sh
    r = d.cli("lease", "env", str(lid), user=alice)
    assert r.returncode == 0 and GPU0_UUID in r.stdout, r
    r = d.cli("lease", "env", user=bob)
    assert r.returncode != 0, r
    assert "lease acquire" in r.stderr, r.stderr

    # extend: from the current expiry, not from now.
    before = lease["expires_at"]
    r = d.cli("lease", "extend", str(lid), "--time", "3h", user=alice)
    assert r.returncode == 0, r
    after = only_lease(d, alice)["expires_at"]
    assert abs(after - (before + 3 * 3600)) < 5, (before, after)

    r = d.cli("lease", "release", str(lid), user=alice)
    assert r.returncode == 0, r
    assert d.leases() == []
    rows = d.query("SELECT * FROM leases WHERE id = ?", (lid,))
    assert len(rows) == 1 and rows[0]["state"] == "released", rows
    rows = audit_rows(d, alice.uid)
    for action in ("lease.grant", "lease.extend", "lease.release"):
        assert any(r["action"] == action and r["subject"] == f"lease {lid}" for r in rows), \
            f"no audit row {action}: {rows}"

    # The released device is free again, for anyone.
    r = d.cli("lease", "acquire", "--no-wait", user=bob)
    assert r.returncode == 0, r
    assert lease_devices(only_lease(d, bob)) == [GPU0_UUID]


def test_acquire_by_device_and_mig_profile(daemon_factory, lab, users):
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=1)

    # --gpu by index and by UUID; --mig PROFILE:N.
    r = d.cli("lease", "acquire", "--gpu", "2", "--no-wait", user=alice)
    assert r.returncode == 0, r
    assert lease_devices(only_lease(d, alice)) == [GPU2_UUID]
    r = d.cli("lease", "acquire", "--mig", "3g.40gb:2", "--no-wait", user=bob)
    assert r.returncode == 0, r
    lease = only_lease(d, bob)
    assert sorted(lease_devices(lease)) == sorted([MIG_A_UUID, MIG_B_UUID]), lease
    assert all(dev["gpu_uuid"] == GPU1_UUID and dev["profile"] == "3g.40gb"
               for dev in lease["devices"]), lease
    assert lease["cuda_visible_devices"] == ",".join(lease_devices(lease))
    r = d.cli("lease", "acquire", "--gpu", GPU0_UUID, "--no-wait", user=bob)
    assert r.returncode == 0, r
    # A GPU in MIG mode is leased by instance, never whole; a named busy device
    # with --no-wait is "no capacity".
    r = d.cli("lease", "acquire", "--gpu", GPU2_UUID, "--no-wait", user=bob)
    assert r.returncode == EXIT_NO_CAPACITY, r
    r = d.cli("lease", "acquire", "--mig", "3g.40gb", "--no-wait", user=alice)
    assert r.returncode == EXIT_NO_CAPACITY, r
    assert r.stderr.strip(), r

    # Requests that can never be satisfied are refused at once, not queued.
    for args in (["--gpus", "9"], ["--mig", "7g.80gb"], ["--gpu", "17"], ["--gpu", "1"],
                 ["--gpu", "GPU-00000000-dead-beef-0000-000000000000"]):
        started = time.monotonic()
        r = d.cli("lease", "acquire", *args, user=alice, timeout=20)
        assert r.returncode not in (0, EXIT_NO_CAPACITY), (args, r)
        assert r.stderr.strip(), (args, r)
        assert time.monotonic() - started < 10, f"{args}: not refused at once"
    assert d.queue() == []
    reply = raw_call(d, alice, "lease.acquire", {"kind": "manual", "gpus": 9})
    assert reply["ok"] is False and reply["error"]["code"] == E_INVALID_ARGUMENT, reply
    # Outside what one lease may hold: the same bounds from the daemon and the
    # command (the command used to take up to 1,024).
    for gpus in (0, 65, -1):
        reply = raw_call(d, alice, "lease.acquire", {"kind": "manual", "gpus": gpus})
        assert reply["ok"] is False and reply["error"]["code"] == E_INVALID_ARGUMENT, reply
        assert "from 1 to 64" in reply["error"]["message"], reply
    r = d.cli("lease", "acquire", "--gpus", "65", user=alice)
    assert r.returncode == 64 and "from 1 to 64" in r.stderr, r


def test_release_all_releases_only_own(daemon_factory, lab, users):
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=1)
    for who in (alice, alice, bob):
        r = d.cli("lease", "acquire", "--mig" if who is bob else "--gpus",
                  "3g.40gb" if who is bob else "1", "--no-wait", user=who)
        assert r.returncode == 0, r
    assert len(d.leases()) == 3
    r = d.cli("lease", "release", "--all", user=alice)
    assert r.returncode == 0, r
    left = d.leases()
    assert [x["uid"] for x in left] == [bob.uid], left


def test_cap_per_user_and_per_group(daemon_factory, lab, users, admin):
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=2, policy={
        "max_gpus": 1,
        "groups": [{"group": "gpukeeper-admin", "max_gpus": 3}],
    })
    # A request above the cap can never be served: refused at once, exit 77.
    r = d.cli("lease", "acquire", "--gpus", "2", user=alice, timeout=20)
    assert r.returncode == EXIT_PERMISSION, r
    assert re.search(r"limit|cap|max", r.stderr, re.I), r.stderr
    reply = raw_call(d, alice, "lease.acquire", {"kind": "manual", "gpus": 2})
    assert reply["ok"] is False and reply["error"]["code"] == E_PERMISSION, reply
    # MIG instances count as devices too.
    r = d.cli("lease", "acquire", "--mig", "3g.40gb:2", user=alice, timeout=20)
    assert r.returncode == EXIT_PERMISSION, r

    # The group's own cap applies to its members.
    r = d.cli("lease", "acquire", "--gpus", "3", "--no-wait", user=admin)
    assert r.returncode == 0, r
    r = d.cli("lease", "release", "--all", user=admin)
    assert r.returncode == 0, r

    r = d.cli("lease", "acquire", "--gpus", "1", user=alice)
    assert r.returncode == 0, r
    first = only_lease(d, alice)
    # A second lease would pass the cap: with --no-wait that is no capacity now...
    r = d.cli("lease", "acquire", "--gpus", "1", "--no-wait", user=alice)
    assert r.returncode == EXIT_NO_CAPACITY, r
    # ...and without, it waits for alice's own release while GPUs are free,
    marker = d.shared_dir() / "second"
    waiting = d.cli_popen("run", "--gpus", "1", "--", "sh", "-c",
                          'echo "$GPUKEEPER_LEASE_ID" > "$0"', str(marker), user=alice)
    wait_for(lambda: len(d.queue()) == 1, timeout=15, what="alice's second request to queue")
    # ...blocking nobody: bob gets a free GPU at once, even with one to spare.
    r = d.cli("lease", "acquire", "--gpus", "1", "--no-wait", user=bob)
    assert r.returncode == 0, r
    time.sleep(0.5)
    assert waiting.poll() is None and not marker.exists(), "the cap did not hold"
    assert len(d.queue()) == 1

    r = d.cli("lease", "release", str(first["id"]), user=alice)
    assert r.returncode == 0, r
    assert waiting.wait(timeout=20) == 0, waiting.err_path.read_text()
    assert marker.read_text().strip().isdigit()


def test_durations_default_max_and_extend_limit(daemon_factory, lab, users):
    alice = users["alice"]
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=1,
                             policy={"default_duration": "10m", "max_duration": "2h"})
    r = d.cli("lease", "acquire", user=alice)
    assert r.returncode == 0, r
    lease = only_lease(d, alice)
    assert abs(lease["expires_at"] - lease["created_at"] - 600) < 5, lease

    r = d.cli("lease", "acquire", "--time", "3h", "--no-wait", user=alice)
    assert r.returncode == EXIT_PERMISSION, r
    assert len(d.leases()) == 1

    # max_duration bounds the lease's whole life from its grant: 10m + 1h is
    # within 2h, 10m + 1h + 1h is not; the refusal is audited.
    r = d.cli("lease", "extend", str(lease["id"]), "--time", "1h", user=alice)
    assert r.returncode == 0, r
    before = only_lease(d, alice)["expires_at"]
    r = d.cli("lease", "extend", str(lease["id"]), "--time", "1h", user=alice)
    assert r.returncode == EXIT_PERMISSION, r
    assert "from its grant" in r.stderr, r.stderr
    assert only_lease(d, alice)["expires_at"] == before
    assert d.query("SELECT * FROM audit WHERE action = 'lease.extend_refused' AND subject = ?",
                   (f"lease {lease['id']}",)), "no audit row for the refused extend"


def test_manual_lease_expires(daemon_factory, lab, users):
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab)
    reply = raw_call(d, alice, "lease.acquire", {"kind": "manual", "gpus": 1, "duration_sec": 2})
    assert reply["ok"] is True, reply
    lease = reply["result"]["lease"]
    assert abs(lease["expires_at"] - lease["created_at"] - 2) < 0.5, lease
    assert [x["id"] for x in d.leases()] == [lease["id"]]
    # Bob queues for the GPU and gets it when alice's lease runs out.
    marker = d.shared_dir() / "bob"
    bob_run = d.cli_popen("run", "--", "sh", "-c", 'echo "$CUDA_VISIBLE_DEVICES" > "$0"',
                          str(marker), user=bob)
    wait_for(lambda: not any(x["id"] == lease["id"] for x in d.leases()), timeout=10,
             what="the 2 s lease to expire")
    assert bob_run.wait(timeout=15) == 0, bob_run.err_path.read_text()
    assert marker.read_text().strip() == GPU0_UUID
    row = d.query("SELECT * FROM leases WHERE id = ?", (lease["id"],))[0]
    assert row["state"] == "expired", row
    assert d.query("SELECT * FROM audit WHERE action = 'lease.expire' AND subject = ?",
                   (f"lease {lease['id']}",)), "no audit row for the expiry"
    r = d.cli("lease", "list", "--json", user=alice)
    assert leases_from_json(r.stdout) == []


def test_bob_cannot_release_or_extend_alices_lease(daemon_factory, lab, users):
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab)
    r = d.cli("lease", "acquire", "--time", "1h", user=alice)
    assert r.returncode == 0, r
    lease = only_lease(d, alice)
    lid = lease["id"]
    mark = last_audit_id(d)

    r = d.cli("lease", "release", str(lid), user=bob)
    assert r.returncode == EXIT_PERMISSION, r
    assert r.stderr.strip() and "\n" not in r.stderr.strip(), r.stderr
    refusal_audited(d, bob.uid, "lease.release_denied", lid, mark)

    r = d.cli("lease", "extend", str(lid), "--time", "2h", user=bob)
    assert r.returncode == EXIT_PERMISSION, r
    refusal_audited(d, bob.uid, "lease.extend_denied", lid, mark)

    reply = raw_call(d, bob, "lease.release", {"id": lid})
    assert reply["ok"] is False and reply["error"]["code"] == E_PERMISSION, reply
    reply = raw_call(d, bob, "lease.env", {"id": lid})
    assert reply["ok"] is False, reply
    # release --all is bob's own leases only: none, and alice's stays.
    r = d.cli("lease", "release", "--all", user=bob)
    assert r.returncode == 0, r

    after = only_lease(d, alice)
    assert after["id"] == lid and after["expires_at"] == lease["expires_at"], after
    reply = raw_call(d, bob, "lease.release", {"id": 987654})
    assert reply["ok"] is False and reply["error"]["code"] == E_NOT_FOUND, reply
    # A lease that does not exist is a name that does not exist (66, as
    # for an environment), not an error of the daemon's (70).
    for args in (("release", "987654"), ("extend", "987654", "--time", "1h")):
        r = d.cli("lease", *args, user=bob)
        assert r.returncode == 66 and "987654" in r.stderr, r
    r = d.cli("lease", "env", user=bob)
    assert r.returncode == 66 and "you hold no lease" in r.stderr, r


def test_admin_releases_and_extends_any_lease(daemon_factory, lab, users, admin):
    alice = users["alice"]
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=1)
    r = d.cli("lease", "acquire", "--time", "1h", user=alice)
    assert r.returncode == 0, r
    lease = only_lease(d, alice)
    r = d.cli("lease", "acquire", user=admin)
    assert r.returncode == 0, r
    mark = last_audit_id(d)

    r = d.cli("lease", "extend", str(lease["id"]), "--time", "1h", user=admin)
    assert r.returncode == 0, r
    assert only_lease(d, alice)["expires_at"] > lease["expires_at"] + 3000
    # --all is the admin's own leases, not everyone's.
    r = d.cli("lease", "release", "--all", user=admin)
    assert r.returncode == 0, r
    assert [x["id"] for x in d.leases()] == [lease["id"]]

    r = d.cli("lease", "release", str(lease["id"]), user=admin)
    assert r.returncode == 0, r
    assert d.leases() == []
    row = d.query("SELECT * FROM leases WHERE id = ?", (lease["id"],))[0]
    assert row["state"] == "released", row
    rows = audit_rows(d, admin.uid, mark)
    assert any(r["action"] == "lease.release" and r["subject"] == f"lease {lease['id']}"
               for r in rows), rows
    assert any(r["action"] == "lease.extend" and r["subject"] == f"lease {lease['id']}"
               for r in rows), rows


def test_drain_and_undrain(daemon_factory, lab, users, admin):
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab, extra_whole=1)
    mark = last_audit_id(d)

    r = d.cli("admin", "drain", "0", user=alice)
    assert r.returncode == EXIT_PERMISSION, r
    refusal_audited(d, alice.uid, "device.drain_denied", None, mark)

    r = d.cli("admin", "drain", "0", "--reason", "fan replacement", user=admin)
    assert r.returncode == 0, r
    status = d.status()
    assert gpu_by_uuid(status, GPU0_UUID)["drained"] is True
    assert gpu_by_uuid(status, GPU2_UUID)["drained"] is False

    # Only GPU2 can be granted now.
    r = d.cli("lease", "acquire", "--gpus", "2", "--no-wait", user=alice)
    assert r.returncode == EXIT_NO_CAPACITY, r
    r = d.cli("lease", "acquire", "--gpu", "0", "--no-wait", user=alice)
    assert r.returncode == EXIT_NO_CAPACITY, r
    r = d.cli("lease", "acquire", "--gpus", "1", "--no-wait", user=alice)
    assert r.returncode == 0, r
    alice_lease = only_lease(d, alice)
    assert lease_devices(alice_lease) == [GPU2_UUID]

    # Draining a GPU in MIG mode drains its instances; existing leases stay.
    r = d.cli("admin", "drain", GPU1_UUID, user=admin)
    assert r.returncode == 0, r
    r = d.cli("lease", "acquire", "--mig", "3g.40gb", "--no-wait", user=bob)
    assert r.returncode == EXIT_NO_CAPACITY, r
    r = d.cli("admin", "drain", GPU2_UUID, user=admin)
    assert r.returncode == 0, r
    assert [x["id"] for x in d.leases()] == [alice_lease["id"]]

    r = d.cli("admin", "undrain", "0", user=alice)
    assert r.returncode == EXIT_PERMISSION, r
    for dev in ("0", GPU1_UUID):
        r = d.cli("admin", "undrain", dev, user=admin)
        assert r.returncode == 0, r
        assert "undrained: it gets leases again" in r.stdout, r.stdout
    assert gpu_by_uuid(d.status(), GPU0_UUID)["drained"] is False
    # Again: nothing changes, and the reply says so rather than "undrained".
    r = d.cli("admin", "undrain", "0", user=admin)
    assert r.returncode == 0, r
    assert r.stdout.endswith(" was not drained: it gets leases\n"), r.stdout
    reply = raw_call(d, admin, "admin.drain", {"device": GPU2_UUID, "reason": "still out"})
    assert reply["ok"] and reply["result"]["changed"] is False, reply
    assert raw_call(d, admin, "admin.drain", {"device": "0"})["result"]["changed"] is True
    assert raw_call(d, admin, "admin.undrain", {"device": "0"})["result"]["changed"] is True
    r = d.cli("lease", "acquire", "--gpu", "0", "--no-wait", user=bob)
    assert r.returncode == 0, r
    r = d.cli("lease", "acquire", "--mig", "3g.40gb", "--no-wait", user=bob)
    assert r.returncode == 0, r
    actions = [row["action"] for row in audit_rows(d, admin.uid, mark)]
    assert actions.count("device.drain") == 5 and actions.count("device.undrain") == 4, actions


def whole_gpus_lab(lab, nodes):
    """Replace the lab with len(nodes) idle whole GPUs on consecutive bus ids,
    GPU i on NUMA node nodes[i] (None: no "numa_node", so NVML reports none).
    Returns their UUIDs in index order."""
    lab.data["gpus"] = []
    uuids = [lab.add_whole_gpu() for _ in nodes]
    for uuid, node in zip(uuids, nodes):
        if node is not None:
            lab.gpu(uuid)["numa_node"] = node
    return uuids


def test_multi_gpu_lease_stays_on_one_numa_node(daemon_factory, lab, users):
    alice, bob = users["alice"], users["bob"]
    # Nodes interleaved against bus order: bus ids alone would pick GPUs 0+1.
    gpus = whole_gpus_lab(lab, [0, 1, 0, 1])
    d = start_leasing_daemon(daemon_factory, lab)
    status = d.status()
    assert [g["numa_node"] for g in status["gpus"]] == [0, 1, 0, 1], status["gpus"]
    same_node = [{gpus[0], gpus[2]}, {gpus[1], gpus[3]}]

    # A fresh daemon: nothing was ever released, so least-recently-used ties
    # everywhere and the allocator's rule is "one NUMA node when one has
    # enough, then the smallest bus-id spread".
    r = d.cli("lease", "acquire", "--gpus", "2", "--no-wait", user=alice)
    assert r.returncode == 0, r
    got = set(lease_devices(only_lease(d, alice)))
    assert got in same_node, f"{got} spans NUMA nodes; expected one of {same_node}"

    # The other node's pair is what is left, and it is again one node.
    r = d.cli("lease", "acquire", "--gpus", "2", "--no-wait", user=bob)
    assert r.returncode == 0, r
    assert set(lease_devices(only_lease(d, bob))) == (same_node[0] | same_node[1]) - got


def test_multi_gpu_lease_without_numa_uses_bus_ids(daemon_factory, lab, users):
    alice = users["alice"]
    gpus = whole_gpus_lab(lab, [None, None, None, None])
    d = start_leasing_daemon(daemon_factory, lab)
    assert [g["numa_node"] for g in d.status()["gpus"]] == [None] * 4

    # No node is known: the closest bus ids, the first such pair in bus order.
    r = d.cli("lease", "acquire", "--gpus", "2", "--no-wait", user=alice)
    assert r.returncode == 0, r
    assert sorted(lease_devices(only_lease(d, alice))) == sorted(gpus[:2])


def test_whole_gpu_and_its_instances_exclude_each_other_when_mig_mode_changes(
        daemon_factory, lab, users):
    """A GPU put into MIG mode under a whole-GPU lease: its new instances are
    not free until that lease ends."""
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab)
    r = d.cli("lease", "acquire", "--gpu", GPU0_UUID, user=alice)
    assert r.returncode == 0, r
    whole = d.leases()[0]
    r = d.cli("lease", "acquire", "--mig", "3g.40gb:2", user=bob)
    assert r.returncode == 0, r

    mig_c = "MIG-5e6f7a8b-0000-4000-8000-00000000000c"
    lab.gpu(GPU0_UUID)["mig"] = {"enabled": True, "instances": [
        {"gi": 1, "ci": 0, "profile": "3g.40gb", "uuid": mig_c, "memory_total_mib": 40192}]}
    lab.write()
    wait_for(lambda: any(i["uuid"] == mig_c for g in d.status()["gpus"]
                         for i in g.get("instances") or []),
             what="the daemon to see GPU0 in MIG mode")
    r = d.cli("lease", "acquire", "--mig", "3g.40gb", "--no-wait", user=bob)
    assert r.returncode == EXIT_NO_CAPACITY, r

    r = d.cli("lease", "release", str(whole["id"]), user=alice)
    assert r.returncode == 0, r
    r = d.cli("lease", "acquire", "--mig", "3g.40gb", "--no-wait", "--json", user=bob)
    assert r.returncode == 0, r
    assert [x["uuid"] for x in json.loads(r.stdout)["lease"]["devices"]] == [mig_c]


def test_waiting_request_survives_a_sample_without_gpus(daemon_factory, lab, users):
    """NVML failing to list the GPUs for a while does not throw the queue
    away: a waiting request stays and is served once the GPUs are back."""
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab)
    r = d.cli("lease", "acquire", "--gpus", "1", user=alice)
    assert r.returncode == 0, r
    held = d.leases()[0]
    marker = d.shared_dir() / "ran"
    p = d.cli_popen("run", "--gpus", "1", "--", "sh", "-c", 'echo "$CUDA_VISIBLE_DEVICES" > "$0"',
                    str(marker), user=bob)
    wait_for(lambda: len(d.queue()) == 1, timeout=15, what="bob's run to queue")

    lab.data["errors"] = {"nvmlDeviceGetCount_v2": 999}
    lab.write()
    wait_for(lambda: d.status()["gpus"] == [], what="a sample without GPUs")
    time.sleep(1)
    assert p.poll() is None, p.err_path.read_text()
    assert len(d.queue()) == 1

    del lab.data["errors"]
    lab.write()
    wait_for(lambda: len(d.status()["gpus"]) == 2, what="the GPUs to come back")
    r = d.cli("lease", "release", str(held["id"]), user=alice)
    assert r.returncode == 0, r
    assert p.wait(timeout=20) == 0, p.err_path.read_text()
    assert marker.read_text().strip() == GPU0_UUID
