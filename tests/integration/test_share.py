"""Shared GPU leases with memory budgets (issue 14), with real users and real
processes declared to the simulator: three users share one 80 GiB GPU with
budgets of 20, 20 and 30 GiB; each gets the CUDA environment hints of its
budget; one that goes over its budget is noticed at once and stopped
(SIGTERM, the real process exits) after sharing.grace while the others keep
running; one that goes back under before the grace is left alone; a fourth
asking 20 GiB waits in the queue and gets the GPU when one releases; a
whole-GPU lease never lands on the shared GPU, nor a shared one on a
whole-leased GPU. One daemon serves the module; grace is passed with the
daemon's test clock (debug.clock), not by sleeping."""

import json
import re
import shutil
import tempfile
import os
from pathlib import Path

import pytest

from conftest import GPU0_UUID, Daemon, Lab, ensure_user, wait_for
from enforcefixtures import audit, victims  # noqa: F401 (fixture)

GIB = 1 << 30
MIB = 1 << 20
EXIT_NO_CAPACITY = 75
EXIT_USAGE = 64
GRACE_SEC = 30


def ok(r):
    assert r.returncode == 0, f"{r.args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def share_daemon():
    """GPU0 (80 GiB, index 0) shareable; GPU1 in MIG mode; GPU2 a plain whole GPU."""
    work = Path(tempfile.mkdtemp(prefix="gk-it-share-"))
    os.chmod(work, 0o755)
    lab = Lab(work / "lab.json")
    gpu2 = lab.add_whole_gpu()
    lab.write()
    d = Daemon(work / "d", lab)
    d.dir.mkdir(mode=0o755)
    d.sections["policy"] = {"default_duration": "1h", "max_duration": "1d",
                            "reconnect_grace": "10s"}
    d.sections["enforcement"] = {"mode": "enforce", "grace": "1h", "kill_timeout": "5s"}
    d.sections["sharing"] = {"gpus": [0], "reserve": "1G", "grace": f"{GRACE_SEC}s"}
    d.start()
    wait_for(lambda: len(d.status()["gpus"]) == 3, what="the first snapshot")
    d.gpu2 = gpu2
    yield d
    d.kill_background()
    d.stop()
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def four(users):
    """alice, bob and two users of this module's own."""
    return [users["alice"], users["bob"], ensure_user("gktest-shcarol"),
            ensure_user("gktest-shdave")]


def lease_of(d, user):
    mine = [l for l in d.leases() if l["uid"] == user.uid]
    assert len(mine) == 1, mine
    return mine[0]


def declare(d, pid, mib):
    d.lab.remove_process(pid)
    if mib is not None:
        d.lab.add_process(GPU0_UUID, pid, mib)
    d.lab.write()
    # The sampler reloads the lab when it changes; one tick settles it.
    wait_for(lambda: any(p["pid"] == pid and (mib is None or
                                               p["memory_used_bytes"] == mib * MIB)
                         for g in d.status()["gpus"] for p in g["processes"]) != (mib is None),
             what=f"pid {pid} with {mib} MiB in status")
    d.tick()


def test_cli_share_usage(share_daemon, users):
    d = share_daemon
    r = d.cli("lease", "acquire", "--share", "lots", user=users["alice"])
    assert r.returncode == EXIT_USAGE
    assert "--share takes a memory budget" in r.stderr
    r = d.cli("run", "--share", "2G", "--gpus", "2", "--", "true", user=users["alice"])
    assert r.returncode == EXIT_USAGE
    assert "--share is a slice of one GPU" in r.stderr
    r = d.cli("lease", "acquire", "--share", "100G", user=users["alice"])
    assert r.returncode != 0
    assert "the largest shared GPU takes 79 GiB" in r.stderr


def test_share_budgets_queue_and_exclusion(share_daemon, four, victims):  # noqa: F811
    d = share_daemon
    alice, bob, carol, dave = four

    # Three users share GPU0: 20 + 20 + 30 of its 79 GiB (80 less the reserve).
    for user, size in ((alice, "20G"), (bob, "20G"), (carol, "30G")):
        ok(d.cli("lease", "acquire", "--share", size, "--no-wait", user=user))
    leases = {u.name: lease_of(d, u) for u in (alice, bob, carol)}
    for u, gib in ((alice, 20), (bob, 20), (carol, 30)):
        lease = leases[u.name]
        assert [x["uuid"] for x in lease["devices"]] == [GPU0_UUID]
        assert lease["share_bytes"] == gib * GIB

    # The CUDA environment carries the budget and the framework hints.
    text = ok(d.cli("lease", "env", user=alice)).stdout
    env = dict(line.removeprefix("export ").split("=", 1) for line in text.splitlines())
    env = {k: v.strip("'") for k, v in env.items()}
    assert env["CUDA_VISIBLE_DEVICES"] == GPU0_UUID
    assert env["GPUKEEPER_MEMORY_BUDGET"] == str(20 * GIB)
    assert env["GPUKEEPER_MEMORY_FRACTION"] == "0.250"
    assert env["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"

    # A fourth 20 GiB request waits: 9 GiB are left.
    waiting = d.cli_popen("lease", "acquire", "--share", "20G", user=dave)
    wait_for(lambda: len(d.queue()) == 1, what="the fourth request in the queue")
    entry = d.queue()[0]
    assert entry["wants"] == "20 GiB of a shared GPU"
    assert "9 GiB free on one at most" in entry["reason"]

    # Whole GPUs never land on the shared GPU (GPU2 is the only whole one left).
    ok(d.cli("lease", "acquire", "--gpus", "1", "--no-wait", user=alice))
    whole = [l for l in d.leases() if l["uid"] == alice.uid and l["share_bytes"] is None]
    assert [x["uuid"] for x in whole[0]["devices"]] == [d.gpu2]
    r = d.cli("lease", "acquire", "--gpus", "1", "--no-wait", user=bob)
    assert r.returncode == EXIT_NO_CAPACITY, r.stderr

    # Their jobs: real processes, declared on GPU0 under the budgets.
    jobs = {u.name: victims(d, u, f"share-{u.name}") for u in (alice, bob, carol)}
    for u, mib in ((alice, 10 * 1024), (bob, 15 * 1024), (carol, 25 * 1024)):
        declare(d, jobs[u.name].pid, mib)
    assert not audit(d, "lease.over_budget")
    assert not d.ok("violations.list", {"since": 0, "limit": 100})["violations"]
    st = {l["id"]: l for l in d.leases()}
    assert st[leases[carol.name]["id"]]["memory_used_bytes"] == 25 * GIB

    # bob goes over and back under before the grace: noticed, then left alone.
    declare(d, jobs[bob.name].pid, 21 * 1024)
    over = audit(d, "lease.over_budget")
    assert len(over) == 1 and over[0]["subject"] == f"lease {leases[bob.name]['id']}"
    declare(d, jobs[bob.name].pid, 19 * 1024)
    assert len(audit(d, "lease.under_budget")) == 1

    # carol goes over: noticed at the very next sample, stopped after the grace.
    declare(d, jobs[carol.name].pid, 40 * 1024)
    over = audit(d, "lease.over_budget")
    assert len(over) == 2 and over[1]["subject"] == f"lease {leases[carol.name]['id']}"
    detail = json.loads(over[1]["detail"])
    assert detail["memory_used_bytes"] == 40 * GIB and detail["budget_bytes"] == 30 * GIB
    assert lease_of(d, carol)["over_budget"] is True
    # status shows every shared lease's budget and use, and the excess.
    g0 = next(g for g in d.status()["gpus"] if g["uuid"] == GPU0_UUID)
    assert g0["shared"]["capacity_bytes"] == 79 * GIB
    assert g0["shared"]["budget_bytes"] == 70 * GIB
    rows = {x["uid"]: x for x in g0["shared"]["leases"]}
    assert rows[carol.uid]["memory_used_bytes"] == 40 * GIB
    assert rows[carol.uid]["over_budget"] is True and rows[alice.uid]["over_budget"] is False
    text = ok(d.cli("status", user=alice)).stdout
    # (a user the daemon met just now may show as a uid until its name is resolved)
    assert re.search(rf"({carol.name}|{carol.uid}) +shared 40\.0/30\.0 GiB "
                     rf"\(lease {leases[carol.name]['id']}\)  OVER BUDGET", text), text
    assert jobs[carol.name].terms() == []
    d.clock(advance_sec=GRACE_SEC + 1)
    d.tick()
    wait_for(lambda: not jobs[carol.name].alive(), what="carol's job to exit on SIGTERM")
    assert len(jobs[carol.name].terms()) == 1
    assert len(audit(d, "lease.budget_sigterm")) == 1
    # The neighbours were never signalled, and keep running.
    for u in (alice, bob):
        assert jobs[u.name].alive() and jobs[u.name].terms() == []

    # carol releases: the fourth request gets the GPU.
    declare(d, jobs[carol.name].pid, None)
    ok(d.cli("lease", "release", str(leases[carol.name]["id"]), user=carol))
    wait_for(lambda: waiting.poll() is not None, what="the fourth request to be granted")
    assert waiting.returncode == 0, waiting.err_path.read_text()
    got = lease_of(d, dave)
    assert [x["uuid"] for x in got["devices"]] == [GPU0_UUID]
    assert got["share_bytes"] == 20 * GIB

    # `run --share`: the command sees its budget; the lease ends with it.
    r = ok(d.cli("run", "--share", "1G", "--no-wait", "--", "/usr/bin/env", user=bob))
    env = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert env["CUDA_VISIBLE_DEVICES"] == GPU0_UUID
    assert env["GPUKEEPER_MEMORY_BUDGET"] == str(GIB)
    assert env["GPUKEEPER_MEMORY_FRACTION"] == "0.012"
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"

    # Never a whole lease and a shared one on one GPU, never budgets past 79 GiB.
    by_gpu = {}
    for lease in d.leases():
        for dev in lease["devices"]:
            by_gpu.setdefault(dev["uuid"], []).append(lease)
    for uuid, held in by_gpu.items():
        shared = [l for l in held if l["share_bytes"]]
        assert not shared or len(shared) == len(held), (uuid, held)
        assert sum(l["share_bytes"] for l in shared) <= 79 * GIB

    for u in (alice, bob, dave):
        ok(d.cli("lease", "release", "--all", user=u))
