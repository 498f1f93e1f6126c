"""Strict mode: the kernel fence with real users, real device nodes, a real
BPF_PROG_TYPE_CGROUP_DEVICE program attached to a cgroup the test creates,
and the real daemon and CLI (issue 12).

ENXIO = the fence let the open through (no driver behind the mknod'd node);
EPERM = the fence refused it."""

import json
import os
import re
import shutil
import socket
import urllib.request
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (GKD, Conn, GPU0_UUID, GPU1_UUID, MIG_A_UUID, MIG_B_UUID, PYTHON,
                      ensure_user, wait_for)
from fencefixtures import fence  # noqa: F401  (fixture)

CONTROL = ("nvidiactl", "nvidia-modeset", "nvidia-uvm", "nvidia-uvm-tools")


@pytest.fixture
def exempt_user(users):
    return ensure_user("gktest-fexempt")


def strict_daemon(daemon_factory, lab, fence, exempt=None, **extra):
    lab.add_whole_gpu()  # GPU 2, minor 2
    lab.write()
    enforcement = fence.enforcement(**extra)
    if exempt is not None:
        enforcement["exempt"] = {"users": [exempt.name]}
    d = daemon_factory(enforcement=enforcement)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        d.sections["http"] = {"listen": f"127.0.0.1:{s.getsockname()[1]}"}
    d.write_config()
    return d


def acquire(d, user, device):
    r = d.cli("lease", "acquire", "--gpu", device, "--time", "1h", "--json", user=user)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["lease"]


def gpu2_uuid(lab):
    return lab.data["gpus"][2]["uuid"]


def test_strict_fence_follows_leases(daemon_factory, lab, fence, users, exempt_user):
    alice, bob = users["alice"], users["bob"]
    d = strict_daemon(daemon_factory, lab, fence, exempt=exempt_user).start()
    assert "Strict mode: the fence on" in d.log()

    # Nobody holds anything: every GPU node is closed to users, the control
    # nodes are open to all, root and exempt users are never refused.
    got = fence.open_as(alice, "nvidia0", "nvidia2", *CONTROL)
    assert got["nvidia0"] == "EPERM" and got["nvidia2"] == "EPERM"
    assert all(got[c] == "ENXIO" for c in CONTROL), got
    assert fence.open_as(None, "nvidia0", "nvidia2") == {"nvidia0": "ENXIO", "nvidia2": "ENXIO"}
    assert fence.open_as(exempt_user, "nvidia0", "nvidia2") == {"nvidia0": "ENXIO",
                                                                 "nvidia2": "ENXIO"}

    # alice leases GPU 2: open for her within 100 ms of `lease acquire`
    # returning. A process of hers, already running in the cgroup, starts
    # polling open() the moment the CLI returns and reports when it got in.
    poller = fence.poller(alice, "nvidia2")
    assert poller.state() == "EPERM"
    lease = acquire(d, alice, gpu2_uuid(lab))
    waited_ms = poller.go()
    print(f"\nfence open {waited_ms:.3f} ms after `lease acquire` returned")
    assert waited_ms < 100, f"alice's leased GPU opened only after {waited_ms:.1f} ms"

    got = fence.open_as(bob, "nvidia2", *CONTROL)
    assert got["nvidia2"] == "EPERM"
    assert all(got[c] == "ENXIO" for c in CONTROL), got
    assert fence.open_as(alice, "nvidia0")["nvidia0"] == "EPERM"

    st = d.status()
    assert st["fence"]["mode"] == "strict" and st["fence"]["active"] is True
    assert st["fence"]["denied_total"] >= 3
    assert any(x["user"] == "gktest-bob" and x["device"] == "/dev/nvidia2"
               for x in st["fence"]["denied"]), st["fence"]
    text = d.cli("status", user=alice).stdout
    assert "Fence: active (strict mode)" in text
    r = d.cli("violations", user=alice)
    assert r.returncode == 0, r.stderr
    assert "Opens refused by the strict-mode fence" in r.stdout, r.stdout
    assert re.search(r"gktest-bob\s+/dev/nvidia2\s+\d+", r.stdout), r.stdout
    metrics = urllib.request.urlopen(f"http://{d.sections['http']['listen']}/metrics",
                                     timeout=10).read().decode()
    assert "gpukeeper_fence_active 1" in metrics
    assert re.search(r'gpukeeper_fence_denied_opens_total\{user="gktest-bob",'
                     r'device="/dev/nvidia2"\} [1-9]', metrics), metrics

    # Released: closed again, as fast.
    r = d.cli("lease", "release", str(lease["id"]), user=alice)
    assert r.returncode == 0, r.stderr
    assert fence.open_as(alice, "nvidia2")["nvidia2"] == "EPERM"


def test_status_fence_counts_are_live(daemon_factory, lab, fence, users):
    """The status cache (issue 16) never caches the fence: its refused-open
    counters are read from the kernel for every reply, also between two
    samples (this daemon samples only on debug.tick) on one connection."""
    bob = users["bob"]
    d = strict_daemon(daemon_factory, lab, fence)
    d.config["sample_interval"] = "1h"
    d.write_config()
    d.start()
    d.tick()
    with Conn(d) as conn:
        before = conn.call("status")["result"]["fence"]
        assert conn.call("status")["result"]["fence"] == before  # a cache hit
        assert fence.open_as(bob, "nvidia2")["nvidia2"] == "EPERM"
        after = conn.call("status")["result"]["fence"]
    assert after["denied_total"] > before["denied_total"], (before, after)
    assert any(x["user"] == "gktest-bob" and x["device"] == "/dev/nvidia2"
               for x in after["denied"]), after


def test_strict_fence_mig_instances(daemon_factory, lab, fence, users):
    alice, bob = users["alice"], users["bob"]
    d = strict_daemon(daemon_factory, lab, fence).start()
    acquire(d, alice, MIG_A_UUID)
    # MIG A is gi1/ci0 on GPU 1 (minor 1): caps 10 and 11, plus /dev/nvidia1.
    got = fence.open_as(alice, "nvidia1", "nvidia-cap10", "nvidia-cap11", "nvidia-cap20",
                        "nvidia-cap21", "nvidia-cap1", "nvidia-cap2")
    assert got == {"nvidia1": "ENXIO", "nvidia-cap10": "ENXIO", "nvidia-cap11": "ENXIO",
                   "nvidia-cap20": "EPERM", "nvidia-cap21": "EPERM",
                   "nvidia-cap1": "ENXIO", "nvidia-cap2": "ENXIO"}, got
    got = fence.open_as(bob, "nvidia-cap10", "nvidia-cap11", "nvidia1")
    assert set(got.values()) == {"EPERM"}, got
    acquire(d, bob, MIG_B_UUID)
    got = fence.open_as(bob, "nvidia-cap20", "nvidia-cap21", "nvidia-cap10")
    assert got == {"nvidia-cap20": "ENXIO", "nvidia-cap21": "ENXIO", "nvidia-cap10": "EPERM"}


def test_strict_fence_survives_kill9(daemon_factory, lab, fence, users):
    alice, bob = users["alice"], users["bob"]
    d = strict_daemon(daemon_factory, lab, fence).start()
    acquire(d, alice, gpu2_uuid(lab))
    assert fence.open_as(bob, "nvidia2")["nvidia2"] == "EPERM"

    d.crash()
    # While the daemon is down nothing changes.
    assert fence.open_as(bob, "nvidia2")["nvidia2"] == "EPERM"
    assert fence.open_as(alice, "nvidia2")["nvidia2"] == "ENXIO"
    assert (fence.pin_dir / "prog-v1").exists()

    d.start()
    wait_for(lambda: "taken over" in d.log(), what="the fence to be taken over")
    assert fence.open_as(bob, "nvidia2")["nvidia2"] == "EPERM"
    assert fence.open_as(alice, "nvidia2")["nvidia2"] == "ENXIO"
    # One program on the cgroup, not two.
    if shutil.which("bpftool"):
        out = subprocess.run(["bpftool", "cgroup", "show", str(fence.cgroup)],
                             capture_output=True, text=True)
        assert out.stdout.count("gk_fence") == 1, out.stdout
    # Leases granted after the restart open the fence.
    acquire(d, bob, GPU0_UUID)
    assert fence.open_as(bob, "nvidia0")["nvidia0"] == "ENXIO"


def test_leaving_strict_mode_removes_the_fence(daemon_factory, lab, fence, users):
    bob = users["bob"]
    d = strict_daemon(daemon_factory, lab, fence).start()
    assert fence.open_as(bob, "nvidia0")["nvidia0"] == "EPERM"
    d.stop()
    d.sections["enforcement"] = fence.enforcement(mode="enforce")
    d.write_config()
    d.start()
    assert "Left strict mode" in d.log()
    assert fence.open_as(bob, "nvidia0")["nvidia0"] == "ENXIO"
    assert not fence.pin_dir.exists()
    assert d.status()["fence"]["mode"] == "enforce"


RUN_CMD = r"""
import json, os, sys, time
nodes, out, peer = sys.argv[1], sys.argv[2], sys.argv[3]
res = {}
for name in ("nvidia0", "nvidia2"):
    try:
        os.close(os.open(os.path.join(nodes, name), os.O_RDWR))
        res[name] = "OK"
    except OSError as e:
        res[name] = os.strerror(e.errno)
res["cvd"] = os.environ.get("CUDA_VISIBLE_DEVICES")
with open(out + ".tmp", "w") as f:
    json.dump(res, f)
os.rename(out + ".tmp", out)
# Hold the lease until the other run has written its results too.
for _ in range(200):
    if os.path.exists(peer):
        break
    time.sleep(0.05)
"""


def test_run_gets_a_cgroup_of_its_own(daemon_factory, lab, fence, users):
    alice = users["alice"]
    d = strict_daemon(daemon_factory, lab, fence).start()
    shared = d.shared_dir()
    script = shared / "run_cmd.py"
    script.write_text(RUN_CMD)
    os.chmod(script, 0o644)
    a, b = shared / "a.json", shared / "b.json"
    # Both runs start inside the fence cgroup (like any login below the root).
    procs = []
    for out, peer in ((a, b), (b, a)):
        p = d.cli_popen("run", "--gpus", "1", "--", PYTHON, str(script), str(fence.dev),
                        str(out), str(peer), user=alice, cgroup=fence.cgroup)
        procs.append(p)
    for p in procs:
        assert p.wait(timeout=30) == 0, p.err_path.read_text()
    results = [json.loads(a.read_text()), json.loads(b.read_text())]
    uuid_minor = {g["uuid"]: g["minor"] for g in lab.data["gpus"]}
    seen = set()
    for res in results:
        mine = f"nvidia{uuid_minor[res['cvd']]}"
        other = "nvidia2" if mine == "nvidia0" else "nvidia0"
        seen.add(mine)
        assert res[mine] == os.strerror(6), res          # ENXIO: allowed
        assert res[other] == os.strerror(1), res         # EPERM: the other run's GPU
    assert seen == {"nvidia0", "nvidia2"}
    # The lease cgroups go once their processes are gone.
    runs = fence.cgroup / "gpukeeper-runs"
    wait_for(lambda: not any(runs.glob("lease-*")), what="the run cgroups to be removed")


def _one_error_line(text):
    errors = [line for line in text.splitlines() if line.startswith(("<0>", "<1>", "<2>", "<3>"))]
    assert len(errors) == 1, text
    return errors[0]


def test_strict_refused_without_capabilities(daemon_factory, lab, fence):
    d = strict_daemon(daemon_factory, lab, fence)
    d.state_dir.mkdir()
    r = subprocess.run(["capsh", "--drop=cap_bpf,cap_sys_admin", "--", "-c",
                        f'exec "{GKD}" --config "{d.config_path}"'],
                       capture_output=True, text=True, env=d.env(), timeout=30)
    assert r.returncode != 0
    line = _one_error_line(r.stderr + r.stdout)
    assert "Cannot start in strict mode" in line and "CAP_BPF" in line, line
    assert not (fence.pin_dir / "prog-v1").exists()


def test_strict_refused_without_cgroup2(daemon_factory, lab, fence, workdir):
    d = strict_daemon(daemon_factory, lab, fence)
    not_cgroup = workdir / "not-a-cgroup"
    not_cgroup.mkdir()
    d.sections["enforcement"]["fence_cgroup"] = str(not_cgroup)
    d.write_config()
    d.state_dir.mkdir()
    r = subprocess.run([str(GKD), "--config", str(d.config_path)], capture_output=True,
                       text=True, env=d.env(), timeout=30)
    assert r.returncode != 0
    line = _one_error_line(r.stderr + r.stdout)
    assert "not a cgroup2 directory" in line, line


def test_strict_refused_without_bpffs(daemon_factory, lab, fence, workdir):
    d = strict_daemon(daemon_factory, lab, fence)
    d.sections["enforcement"]["fence_pin_dir"] = str(workdir / "plain" / "pins")
    (workdir / "plain").mkdir()
    d.write_config()
    d.state_dir.mkdir()
    r = subprocess.run([str(GKD), "--config", str(d.config_path)], capture_output=True,
                       text=True, env=d.env(), timeout=30)
    assert r.returncode != 0
    line = _one_error_line(r.stderr + r.stdout)
    assert "not on a bpf filesystem" in line, line
