"""MIG layouts (issue 13): mig-parted files applied and asserted through the
daemon against the NVML simulator's MIG management ABI, with real users and
leases: examples of mig-parted itself applied unchanged, leases never
broken (--no-wait refused naming the lease, --wait finishing after the
release), matching instances kept, the stored layout re-asserted after a
restart, on-demand instances for `run --mig`, and bad input refused with one
line and nothing changed.

The simulator persists MIG changes in `<lab>.mig-state.json`; a GPU reset is
sim/sim-reset.py (pending mode becomes current, instances are gone)."""
import json
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, wait_for

FIXTURES = REPO / "tests" / "fixtures" / "mig-parted"
SIM_RESET = REPO / "sim" / "sim-reset.py"

A100_40 = ("NVIDIA A100-SXM4-40GB", 0x20B010DE)
A100_80 = ("NVIDIA A100-SXM4-80GB", 0x20B210DE)
H100 = ("NVIDIA H100 80GB HBM3", 0x233010DE)


def mig_gpu(n, model, enabled=True, memory=81920):
    name, pci = model
    return {
        "name": name, "uuid": f"GPU-3f1e0000-0000-4000-8000-{n:012d}",
        "pci_bus_id": f"00000000:{0x10 + n:02X}:00.0", "pci_device_id": pci, "minor": n,
        "memory_total_mib": memory, "mig": {"enabled": enabled}, "processes": [],
    }


def use_lab(lab, models, enabled=True):
    lab.data = {"driver_version": "550.54.15",
                "gpus": [mig_gpu(i, m, enabled) for i, m in enumerate(models)]}
    lab.write()
    return [g["uuid"] for g in lab.data["gpus"]]


def start(daemon_factory, mig=None):
    d = daemon_factory()
    if mig is not None:
        d.sections["mig"] = mig
    return d.start()


def show(d):
    r = d.cli("mig", "show", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def instances(d, uuid):
    g = next(g for g in show(d)["gpus"] if g["uuid"] == uuid)
    return g["instances"]


def profiles_of(d, uuid):
    return sorted(i["profile"] for i in instances(d, uuid))


def apply(d, file, name, *extra, user=None, timeout=60):
    return d.cli("mig", "apply", "-f", str(file), "-c", name, *extra, user=user, timeout=timeout)


def assert_rc(d, file, name):
    return d.cli("mig", "assert", "-f", str(file), "-c", name).returncode


def sim_reset(lab, *uuids):
    subprocess.run([str(SIM_RESET), "--lab", str(lab.path), *uuids], check=True)


def one_line(stderr):
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def test_mig_parted_examples_apply_and_assert(daemon_factory, lab):
    """examples/config.yaml of mig-parted, unchanged, on eight A100-40GB."""
    uuids = use_lab(lab, [A100_40] * 8)
    d = start(daemon_factory)
    cfg = FIXTURES / "config.yaml"

    r = apply(d, cfg, "all-1g.10gb")
    assert r.returncode == 0, r.stdout + r.stderr
    assert assert_rc(d, cfg, "all-1g.10gb") == 0
    assert profiles_of(d, uuids[0]) == ["1g.10gb"] * 4
    assert assert_rc(d, cfg, "all-balanced") == 1

    r = apply(d, cfg, "all-balanced")
    assert r.returncode == 0, r.stdout + r.stderr
    assert assert_rc(d, cfg, "all-balanced") == 0
    assert assert_rc(d, cfg, "all-1g.10gb") == 1
    assert profiles_of(d, uuids[7]) == ["1g.5gb", "1g.5gb", "2g.10gb", "3g.20gb"]

    # Per-device lists: GPUs 0-3 off (a mode change: reported, not done), 4-7 carved.
    r = apply(d, cfg, "custom-config")
    assert r.returncode == 1
    assert "nvidia-smi -i 0 -r" in r.stdout and "pending a GPU reset" in r.stdout
    g0 = next(g for g in show(d)["gpus"] if g["uuid"] == uuids[0])
    assert g0["mig_enabled"] and not g0["mig_pending"]
    assert assert_rc(d, cfg, "custom-config") == 1
    sim_reset(lab, *uuids[:4])
    wait_for(lambda: assert_rc(d, cfg, "custom-config") == 0, timeout=20,
             what="the pending apply to finish after the reset")
    assert profiles_of(d, uuids[5]) == ["2g.10gb"] * 3

    r = apply(d, cfg, "all-disabled")
    assert r.returncode == 1 and "nvidia-smi -i 4 -r" in r.stdout
    sim_reset(lab)
    wait_for(lambda: assert_rc(d, cfg, "all-disabled") == 0, timeout=20,
             what="every GPU to come back from the reset with MIG disabled")


def test_device_filters_of_mig_managers_default_config(daemon_factory, lab):
    """nvidia-mig-manager's config-default.yaml picks entries by PCI device id."""
    uuids = use_lab(lab, [H100, A100_80, A100_40])
    d = start(daemon_factory)
    cfg = FIXTURES / "config-default.yaml"

    r = apply(d, cfg, "all-1g.10gb")
    assert r.returncode == 0, r.stdout + r.stderr
    assert profiles_of(d, uuids[0]) == ["1g.10gb"] * 7
    assert profiles_of(d, uuids[1]) == ["1g.10gb"] * 7
    assert profiles_of(d, uuids[2]) == ["1g.10gb"] * 4
    assert assert_rc(d, cfg, "all-1g.10gb") == 0

    r = apply(d, cfg, "all-balanced")
    assert r.returncode == 0, r.stdout + r.stderr
    assert assert_rc(d, cfg, "all-balanced") == 0
    assert assert_rc(d, cfg, "all-1g.10gb") == 1
    assert profiles_of(d, uuids[0]) == ["1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"]
    assert profiles_of(d, uuids[2]) == ["1g.5gb", "1g.5gb", "2g.10gb", "3g.20gb"]

    # export writes the current layout as a mig-parted file that asserts 0.
    r = d.cli("mig", "export")
    assert r.returncode == 0, r.stderr
    exported = d.dir / "exported.yaml"
    exported.write_text(r.stdout)
    assert assert_rc(d, exported, "current") == 0


def write_layout(path, name, devices):
    body = ", ".join(f'"{p}": {n}' for p, n in devices.items())
    path.write_text(f"version: v1\nmig-configs:\n  {name}:\n    - devices: all\n"
                    f"      mig-enabled: true\n      mig-devices: {{{body}}}\n")
    return path


def test_apply_never_breaks_a_lease(daemon_factory, lab, users, admin):
    uuids = use_lab(lab, [H100])
    d = start(daemon_factory)
    sevens = write_layout(d.dir / "sevens.yaml", "sevens", {"1g.10gb": 7})
    balanced = write_layout(d.dir / "bal.yaml", "bal", {"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2})
    assert apply(d, sevens, "sevens").returncode == 0
    d.cli("status")  # the daemon sees the instances

    alice = users["alice"]
    r = d.cli("lease", "acquire", "--mig", "1g.10gb", "--time", "1h", "--json", user=alice)
    assert r.returncode == 0, r.stderr
    lease = json.loads(r.stdout)["lease"]
    held = lease["devices"][0]["uuid"]
    before = {i["uuid"] for i in instances(d, uuids[0])}
    assert held in before

    r = apply(d, balanced, "bal", "--no-wait", user=admin)
    assert r.returncode == 75, r.stdout + r.stderr
    line = one_line(r.stderr)
    assert "gktest-alice" in line and f"lease {lease['id']}" in line
    assert {i["uuid"] for i in instances(d, uuids[0])} == before

    p = d.cli_popen("mig", "apply", "-f", str(balanced), "-c", "bal", "--wait", user=admin)
    wait_for(lambda: "waiting for GPU 0" in Path(p.out_path).read_text(), timeout=15,
             what="apply --wait to say what it waits for")
    assert "gktest-alice" in Path(p.out_path).read_text()
    time.sleep(1)
    assert held in {i["uuid"] for i in instances(d, uuids[0])}, "alice's instance destroyed"
    assert p.poll() is None
    r = d.cli("lease", "release", str(lease["id"]), user=alice)
    assert r.returncode == 0, r.stderr
    assert p.wait(timeout=30) == 0, Path(p.err_path).read_text()
    assert assert_rc(d, balanced, "bal") == 0
    # Applies by admins are audited, refusals too.
    import sqlite3
    with sqlite3.connect(d.db_path) as db:
        rows = db.execute("SELECT action, detail FROM audit WHERE action LIKE 'mig.%'").fetchall()
    actions = [a for a, _ in rows]
    assert actions.count("mig.apply") >= 2 and "mig.refused" in actions
    # Every detail is a JSON object (gpukeeperd(8), AUDIT TRAIL): a refusal's
    # reason was stored as bare text.
    for action, detail in rows:
        assert detail is None or isinstance(json.loads(detail), dict), (action, detail)
    assert any(a == "mig.refused" and "reason" in json.loads(x) for a, x in rows), rows


def test_matching_instance_is_kept(daemon_factory, lab):
    uuids = use_lab(lab, [H100])
    d = start(daemon_factory)
    one = write_layout(d.dir / "one.yaml", "one", {"3g.40gb": 1})
    two = write_layout(d.dir / "two.yaml", "two", {"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2})
    assert apply(d, one, "one").returncode == 0
    first = [i["uuid"] for i in instances(d, uuids[0])]
    assert len(first) == 1 and first[0].startswith("MIG-")
    r = apply(d, two, "two")
    assert r.returncode == 0, r.stdout + r.stderr
    after = instances(d, uuids[0])
    assert first[0] in [i["uuid"] for i in after if i["profile"] == "3g.40gb"]
    assert len(after) == 4


def test_restart_reasserts_the_stored_layout(daemon_factory, lab):
    uuids = use_lab(lab, [H100, H100])
    d = start(daemon_factory)
    cfg = FIXTURES / "config-default.yaml"
    assert apply(d, cfg, "all-balanced").returncode == 0
    d.stop()
    sim_reset(lab)  # what a reboot does to MIG instances
    assert json.loads(Path(str(lab.path) + ".mig-state.json").read_text())["gpus"][uuids[1]][
        "gpu_instances"] == []
    d.start()  # same state directory: the stored layout is there
    wait_for(lambda: assert_rc(d, cfg, "all-balanced") == 0, timeout=20,
             what="the stored layout to be re-asserted")
    assert show(d)["layout"] == "all-balanced"
    assert "Re-asserting the stored MIG layout all-balanced (at start)" in d.log()

    # A GPU that falls off the bus and comes back reset gets the layout again.
    lab.gpu(uuids[1])["lost"] = True
    lab.write()
    wait_for(lambda: not json.loads(d.cli("status", "--json").stdout)["gpus"][1]["healthy"],
             timeout=15, what="GPU 1 to be seen lost")
    sim_reset(lab, uuids[1])
    lab.gpu(uuids[1])["lost"] = False
    lab.write()
    wait_for(lambda: "a GPU came back" in d.log() and assert_rc(d, cfg, "all-balanced") == 0,
             timeout=20, what="the layout to be re-asserted on the GPU that came back")


def test_dynamic_instances(daemon_factory, lab, users):
    uuids = use_lab(lab, [H100])
    d = start(daemon_factory, mig={"dynamic": [uuids[0]]})
    alice = users["alice"]
    r = d.cli("run", "--mig", "2g.20gb", "--", "/bin/sh", "-c", "echo $CUDA_VISIBLE_DEVICES",
              user=alice, timeout=60)
    assert r.returncode == 0, r.stderr
    seen = r.stdout.strip()
    assert seen.startswith("MIG-"), r.stdout
    wait_for(lambda: instances(d, uuids[0]) == [], timeout=15,
             what="the on-demand instance to be destroyed after the run")

    runs = [d.cli_popen("run", "--mig", "1g.10gb", "--", "/bin/sleep", "60", user=alice)
            for _ in range(8)]

    def state():
        s = json.loads(d.cli("status", "--json").stdout)
        return s

    wait_for(lambda: len(instances(d, uuids[0])) == 7 and
             sum(1 for i in instances(d, uuids[0]) if i["leased"]) == 7, timeout=40,
             what="seven on-demand 1g.10gb instances, all leased")
    q = json.loads(d.cli("queue", "--json").stdout)
    assert len(q if isinstance(q, list) else q.get("queue", [])) == 1
    # Status shows the room left and the instances made on demand.
    g = json.loads(d.cli("status", "--json").stdout)["gpus"][0]
    assert g["mig"]["free_slices"] == 1 and g["mig"]["on_demand"] == 7 and g["mig"]["dynamic"]
    assert "MIG: 1/8 memory slices free, instances made on demand (7 now)" in d.cli("status").stdout
    for p in runs:
        p.kill()


def test_bad_input_changes_nothing(daemon_factory, lab, users, admin):
    uuids = use_lab(lab, [H100])
    d = start(daemon_factory)
    assert apply(d, write_layout(d.dir / "a.yaml", "a", {"3g.40gb": 2}), "a").returncode == 0
    before = instances(d, uuids[0])

    bad = d.dir / "bad.yaml"
    bad.write_text("version: v1\nmig-configs:\n  x:\n    - devices: all\n      mig-enabled: true\n"
                   "      mig-devics: {}\n")
    r = apply(d, bad, "x")
    assert r.returncode == 64 and f"{bad}:6:" in one_line(r.stderr) and "mig-devics" in r.stderr
    bad.write_text("version: v1\nmig-configs: [\n")
    r = apply(d, bad, "x")
    assert r.returncode == 64 and "malformed YAML" in one_line(r.stderr)
    r = apply(d, write_layout(d.dir / "old.yaml", "old", {"1g.5gb": 7}), "old")
    assert r.returncode == 64 and "has no MIG profile 1g.5gb" in one_line(r.stderr)
    r = apply(d, write_layout(d.dir / "big.yaml", "big", {"3g.40gb": 2, "2g.20gb": 2}), "big")
    assert r.returncode == 64 and "do not fit" in one_line(r.stderr)
    r = apply(d, write_layout(d.dir / "b.yaml", "b", {"7g.80gb": 1}), "b", user=users["bob"])
    assert r.returncode == 77, r.stderr
    one_line(r.stderr)
    assert instances(d, uuids[0]) == before


def test_dynamic_instance_kept_per_config(daemon_factory, lab, users):
    uuids = use_lab(lab, [H100])
    d = start(daemon_factory, mig={"dynamic": ["all"], "keep_dynamic": True})
    alice = users["alice"]
    cmd = ("run", "--mig", "2g.20gb", "--", "/bin/sh", "-c", "echo $CUDA_VISIBLE_DEVICES")
    r = d.cli(*cmd, user=alice, timeout=60)
    assert r.returncode == 0, r.stderr
    first = r.stdout.strip()
    time.sleep(1)  # several ticks: a kept instance stays
    kept = instances(d, uuids[0])
    assert [(i["uuid"], i["on_demand"], i["leased"]) for i in kept] == [(first, True, False)]
    r = d.cli(*cmd, user=alice, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == first, "the kept instance was not reused"
