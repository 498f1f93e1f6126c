"""The README's first command, scripts/demo.sh, run as a new user would: twice
in a row (it says that running it again restarts the demo), then stopped.
Its own state directory; its jobs run as nobody; the NVML simulator's lab.

The second run used to fail: the first run's jobs held 1-day leases, the
database restored them, and the new jobs could not lease their devices."""

import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import BUILD, GK, REPO

DEMO = REPO / "scripts" / "demo.sh"


@pytest.fixture
def demo_dir():
    # Under /tmp and world-readable: the jobs (user nobody) read their
    # script from it, which pytest's 0700 tmp_path would not let them.
    path = tempfile.mkdtemp(prefix="gk-demo-test-", dir="/tmp")
    os.chmod(path, 0o755)
    yield path
    subprocess.run([str(DEMO), "stop"], env=demo_env(path), capture_output=True, timeout=60)
    shutil.rmtree(path, ignore_errors=True)


def demo_env(path):
    return dict(os.environ, GPUKEEPER_DEMO_DIR=path, BUILD_DIR=str(BUILD))


def run_demo(path, *args):
    r = subprocess.run([str(DEMO), *args], env=demo_env(path), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"demo.sh {' '.join(args)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def active_leases(path):
    r = subprocess.run([str(GK), "--socket", os.path.join(path, "gpukeeper.sock"), "lease", "list",
                        "--all", "--json"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    return [x for x in json.loads(r.stdout)["leases"] if x["state"] == "active"]


def running(pid):
    """Whether `pid` runs: a daemon that exited may stay a zombie until
    whoever adopted it (the test runner's subreaper) reaps it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def daemon_pid(path):
    with open(os.path.join(path, "gpukeeperd.pid")) as f:
        return int(f.read())


def test_demo_runs_twice_and_stops(demo_dir):
    r = run_demo(demo_dir)
    assert "SIMULATED" in r.stdout and "gpukeeperd is running" in r.stdout, r.stdout
    # The stop command it prints names this state directory (sudo drops
    # the environment, so through env).
    assert f"sudo env GPUKEEPER_DEMO_DIR={demo_dir} {DEMO} stop" in r.stdout, r.stdout
    first = active_leases(demo_dir)
    # One lease per device a job of sim/labs/lab4.json runs on, but the
    # unleased job's GPU: 4, all nobody's.
    assert len(first) == 4 and {x["user"] for x in first} == {"nobody"}, first
    first_pid = daemon_pid(demo_dir)

    r = run_demo(demo_dir)
    assert "gpukeeperd is running" in r.stdout, r.stdout
    assert f"stopping gpukeeperd (pid {first_pid})" in r.stdout, r.stdout
    second = active_leases(demo_dir)
    # The first run's leases were given back; the new jobs hold the same
    # devices under new leases.
    assert len(second) == 4, second
    assert not {x["id"] for x in first} & {x["id"] for x in second}, (first, second)
    assert (sorted(d["uuid"] for x in first for d in x["devices"])
            == sorted(d["uuid"] for x in second for d in x["devices"]))
    pid = daemon_pid(demo_dir)
    assert pid != first_pid and not running(first_pid)

    r = run_demo(demo_dir, "stop")
    assert "demo: stopped" in r.stdout, r.stdout
    assert not running(pid)
    assert not os.path.exists(os.path.join(demo_dir, "gpukeeperd.pid"))
    # Stopping again (or another state directory) says that nothing ran.
    r = run_demo(demo_dir, "stop")
    assert "no demo daemon was running" in r.stdout and "stopped" not in r.stdout, r.stdout
