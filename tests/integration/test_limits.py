"""Per-user limits (issue 14): the limits section, `gpukeeper limits show`,
`limits.apply`, and both backends against real parts.

- cgroupfs: the daemon writes this machine's cgroup v1 cpu, memory and pids
  files under a parent of the test's own (gktest-limits-PID, removed at the
  end; no existing cgroup is touched), `gpukeeper run` moves its command under
  them, and the kernel enforces them: a test user's process over its memory
  limit is OOM-killed, one over its tasks limit cannot fork. Per-GPU values
  grow on grant and shrink on release, in the files.
- systemd: systemd is not PID 1 here, so a real dbus-daemon runs with
  python3-dbusmock's systemd template on it standing in for systemd; the test
  reads back the SetUnitProperties calls the daemon made (unit, runtime flag,
  CPUQuotaPerSecUSec / MemoryMax / TasksMax values), and a refusal shows as a
  failed apply, never as applied.
- a config error names file:line:key.
"""
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (GKD, Daemon, Lab, as_user, assert_no_sanitizer_report, ensure_user,
                      wait_for)

MIB = 1 << 20
# The machine's cgroup hierarchies, as /proc/self/mountinfo lists them.


def cgroup_mounts():
    """{controller: (mount point, version)} for cpu, memory and pids."""
    found = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            mp = left.split()[4]
            fstype, _, opts = right.split()[:3]
            if fstype == "cgroup2":
                try:
                    ctl = Path(mp, "cgroup.controllers").read_text().split()
                except OSError:
                    continue
                for c in ("cpu", "memory", "pids"):
                    if c in ctl:
                        found[c] = (mp, 2)
            elif fstype == "cgroup":
                for c in ("cpu", "memory", "pids"):
                    if c in opts.split(",") and c not in found:
                        found[c] = (mp, 1)
    return found


MOUNTS = cgroup_mounts()
V1_MEMORY_PIDS = (MOUNTS.get("memory", (None, 0))[1] == 1
                  and MOUNTS.get("pids", (None, 0))[1] == 1)

LIMITS = {
    "default": {"cpu": "50%", "memory": "48M", "tasks": 12},
    "groups": {"gktest-lim-phd": {"cpu": "150%", "memory": "96M"}},
    "per_gpu": {"cpu": "100%", "memory": "32M", "tasks": 8},
}


def remove_tree(path):
    """rmdir a cgroup tree bottom-up (cgroup directories hold only control files)."""
    p = Path(path)
    if not p.is_dir():
        return
    for child in sorted((c for c in p.rglob("*") if c.is_dir()),
                        key=lambda c: len(c.parts), reverse=True):
        try:
            child.rmdir()
        except OSError:
            pass
    try:
        p.rmdir()
    except OSError:
        pass


def limits_of(d, user):
    r = d.request("limits.show", {"user": user})
    assert r["ok"], r
    return r["result"]


@pytest.fixture(scope="module")
def phd_user():
    """Our own user in our own group (the shared test users keep their groups)."""
    return ensure_user("gktest-lim-carol", groups=("gktest-lim-phd",))


def test_config_error_names_file_line_key(tmp_path):
    cfg = tmp_path / "gpukeeper.yaml"
    cfg.write_text("limits:\n  default: {cpu: 400%}\n  groups:\n    phd:\n      memory: 12Q\n")
    r = subprocess.run([str(GKD), "--check-config", "--config", str(cfg)], capture_output=True,
                       text=True, timeout=30)
    assert_no_sanitizer_report(r.stderr, "gpukeeperd --check-config")
    assert r.returncode != 0
    assert f"{cfg}:5:15: invalid value '12Q' for 'limits.groups.phd.memory'" in r.stderr, r.stderr


# ---- cgroupfs: the kernel enforces --------------------------------------------

@contextlib.contextmanager
def cgroupfs_daemon(name, cpu_affinity=None):
    """A daemon (not started) with LIMITS through cgroupfs under a parent
    cgroup of its own, gktest-NAME-PID, on each v1 hierarchy; stopped and
    its cgroups removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix=f"gk-it-{name}-"))
    os.chmod(workdir, 0o755)
    parent = f"gktest-{name}-{os.getpid()}"
    lab = Lab(workdir / "lab.json")
    if cpu_affinity is not None:
        lab.data["gpus"][0]["cpu_affinity"] = cpu_affinity
    lab.write()
    d = Daemon(workdir / "d", lab)
    d.dir.mkdir(mode=0o755)
    d.sections["limits"] = dict(LIMITS, backend="cgroupfs", cgroupfs_parent=parent)
    d.parent = parent
    try:
        yield d
    finally:
        d.kill_background()
        d.stop()
        for mp, _ in set(MOUNTS.values()):
            remove_tree(Path(mp, parent))
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def fs_daemon(users, phd_user):
    if not V1_MEMORY_PIDS:
        pytest.skip("needs the cgroup v1 memory and pids controllers mounted "
                    f"(found: {MOUNTS})")
    # NVML's CPU affinity of GPU 0: CPU 0 only (the simulator reports it
    # through nvmlDeviceGetCpuAffinity, as a bitmask of unsigned longs)
    with cgroupfs_daemon("limits", cpu_affinity=[0]) as d:
        d.start()
        yield d


def user_dir(d, controller, user):
    return Path(MOUNTS[controller][0], d.parent, f"user-{user.uid}.slice")


def read_values(d, user):
    mem = int(user_dir(d, "memory", user).joinpath("memory.limit_in_bytes").read_text())
    pids = user_dir(d, "pids", user).joinpath("pids.max").read_text().strip()
    cpu = None
    if MOUNTS.get("cpu", (None, 0))[1] == 1:
        cpu = int(user_dir(d, "cpu", user).joinpath("cpu.cfs_quota_us").read_text())
    return mem, pids, cpu


def test_show_before_apply_and_sources(fs_daemon, users, phd_user):
    d, alice = fs_daemon, users["alice"]
    res = limits_of(d, alice.name)
    assert res["uid"] == alice.uid and res["backend"] == "cgroupfs"
    assert res["limits"]["memory"] == {"value": "48M", "base": "48M", "from": "default", "group": None,
                                       "per_gpu": "32M", "gpus": 0, "raw": 48 * MIB}
    assert res["state"] == "not applied" and res["applied"] is False
    assert "v1" in res["backend_detail"] and "memory" in res["backend_detail"]

    carol = limits_of(d, phd_user.uid)
    assert carol["groups"] == ["gktest-lim-phd"]
    assert carol["limits"]["cpu"]["value"] == "150%"
    assert carol["limits"]["cpu"]["from"] == "group"
    assert carol["limits"]["cpu"]["group"] == "gktest-lim-phd"
    assert carol["limits"]["tasks"]["from"] == "default"  # the group does not give tasks

    # the command: the same, as text; users see their own, not others'
    r = d.cli("limits", "show", user=alice)
    assert r.returncode == 0, r
    assert re.search(r"^memory\s+48M\s+48M\s+default\s+\+32M x 0$", r.stdout, re.M), r.stdout
    r = d.cli("limits", "show", phd_user.name, user=alice)
    assert r.returncode == 77 and "gpukeeper-admin" in r.stderr, r
    r = d.cli("limits", "show", phd_user.name)
    assert r.returncode == 0 and "group gktest-lim-phd" in r.stdout, r


def test_apply_is_admin_only_and_writes_the_files(fs_daemon, users):
    d, alice = fs_daemon, users["alice"]
    # limits.apply as alice (not an admin): refused
    code = ("import json, socket, struct, sys\n"
            "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
            "m = json.dumps({'v': 1, 'id': 1, 'op': 'limits.apply',"
            " 'args': {'user': sys.argv[2]}}).encode()\n"
            "s.sendall(struct.pack('>I', len(m)) + m)\n"
            "n = struct.unpack('>I', s.recv(4))[0]; print(s.recv(n).decode())\n")
    r = subprocess.run(["/usr/bin/python3", "-c", code, str(d.socket_path), alice.name],
                       capture_output=True, text=True, timeout=30, **as_user(alice))
    reply = json.loads(r.stdout)
    assert reply["ok"] is False and reply["error"]["code"] == 5, reply
    assert limits_of(d, alice.name)["state"] == "not applied"
    res = d.request("limits.apply", {"user": alice.name})
    assert res["ok"], res
    assert res["result"]["state"] == "applied" and res["result"]["applied"] is True
    mem, pids, cpu = read_values(d, alice)
    assert (mem, pids) == (48 * MIB, "12")
    if cpu is not None:
        assert cpu == 50000  # 50% of a 100000 us period
    bad = d.request("limits.apply", {"user": "gktest-no-such-user"})
    assert not bad["ok"] and "no such user" in bad["error"]["message"]


def test_per_gpu_grows_on_grant_and_shrinks_on_release(fs_daemon, users):
    d, alice = fs_daemon, users["alice"]
    r = d.cli("lease", "acquire", "--gpus", "1", "--time", "1h", user=alice)
    assert r.returncode == 0, r
    res = limits_of(d, alice.name)
    assert res["gpus"] == 1 and res["state"] == "applied", res
    assert res["limits"]["memory"]["value"] == "80M"
    assert read_values(d, alice)[:2] == (80 * MIB, "20")
    r = d.cli("lease", "release", "--all", user=alice)
    assert r.returncode == 0, r
    assert read_values(d, alice)[:2] == (48 * MIB, "12")
    assert limits_of(d, alice.name)["gpus"] == 0


def test_kernel_oom_kills_over_memory_limit(fs_daemon, users):
    """gpukeeper run's command is born in alice's memory cgroup (48M + 32M for
    the GPU): allocating 200 MiB gets it OOM-killed by the kernel."""
    d, alice = fs_daemon, users["alice"]
    code = ("import os, sys\n"
            "print(open('/proc/self/cgroup').read(), flush=True)\n"
            "blocks = []\n"
            "for i in range(200):\n"
            "    blocks.append(bytearray(1 << 20))\n"  # touched: zero-filled pages
            "print('survived', flush=True)\n")
    r = d.cli("run", "--gpus", "1", "--no-bind", "--", "/usr/bin/python3", "-c", code,
              user=alice, timeout=60)
    assert f"{d.parent}/user-{alice.uid}.slice" in r.stdout, (r.stdout, r.stderr)
    assert "survived" not in r.stdout
    assert r.returncode == 128 + signal.SIGKILL, r
    failcnt = int(user_dir(d, "memory", alice).joinpath("memory.failcnt").read_text())
    assert failcnt > 0


def test_kernel_refuses_fork_over_tasks_limit(fs_daemon, users):
    """tasks 12 + 8 for the GPU: the 21st task cannot be made (EAGAIN)."""
    d, alice = fs_daemon, users["alice"]
    code = ("import os, time, errno\n"
            "kids = []\n"
            "err = None\n"
            "for i in range(60):\n"
            "    try:\n"
            "        pid = os.fork()\n"
            "    except OSError as e:\n"
            "        err = e.errno\n"
            "        break\n"
            "    if pid == 0:\n"
            "        time.sleep(5)\n"
            "        os._exit(0)\n"
            "    kids.append(pid)\n"
            "print('forked', len(kids), 'error', err, flush=True)\n"
            "for k in kids:\n"
            "    os.kill(k, 9)\n"
            "    os.waitpid(k, 0)\n")
    r = d.cli("run", "--gpus", "1", "--no-bind", "--", "/usr/bin/python3", "-c", code,
              user=alice, timeout=60)
    assert r.returncode == 0, r
    m = re.search(r"forked (\d+) error (\S+)", r.stdout)
    assert m, r.stdout
    import errno
    assert m.group(2) == str(errno.EAGAIN), r.stdout
    # the run client and python are two of the 20 tasks
    assert 10 <= int(m.group(1)) < 20, r.stdout


def test_run_binds_to_the_gpus_cpus_unless_no_bind(fs_daemon, users):
    """The real child's sched_getaffinity: CPU 0, the one NVML names for GPU 0;
    with --no-bind, every CPU the caller may use."""
    d, alice = fs_daemon, users["alice"]
    probe = "import os; print(sorted(os.sched_getaffinity(0)))"
    r = d.cli("run", "--gpus", "1", "--", "/usr/bin/python3", "-c", probe, user=alice)
    assert r.returncode == 0, r
    assert r.stdout.strip() == "[0]", r
    r = d.cli("run", "--gpus", "1", "--no-bind", "--", "/usr/bin/python3", "-c", probe,
              user=alice)
    assert r.returncode == 0, r
    assert r.stdout.strip() == str(sorted(os.sched_getaffinity(0))), r
    r = d.cli("lease", "acquire", "--gpus", "1", "--json", user=alice)
    assert r.returncode == 0, r
    lease = json.loads(r.stdout)
    lease = lease.get("lease", lease)
    assert lease["devices"][0]["cpus"] == "0", r.stdout
    assert d.cli("lease", "release", "--all", user=alice).returncode == 0


# ---- systemd over D-Bus: a real dbus-daemon, python3-dbusmock as systemd ------

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"""
MANAGER = "org.freedesktop.systemd1.Manager"


def gdbus(address, method, *args):
    r = subprocess.run(["gdbus", "call", "--address", address, "--dest",
                        "org.freedesktop.systemd1", "--object-path", "/org/freedesktop/systemd1",
                        "--method", method, *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    return r.stdout


SET_CALL = re.compile(r"'SetUnitProperties', \[<'(user-\d+\.slice)'>, <(true|false)>, "
                      r"<\[\('CPUQuotaPerSecUSec', <uint64 (\d+)>\), "
                      r"\('MemoryMax', <uint64 (\d+)>\), \('TasksMax', <uint64 (\d+)>\)\]>\]")


def set_calls(bus):
    """The SetUnitProperties calls the mock received: (unit, runtime, cpu, mem, tasks)."""
    out = gdbus(bus["address"], "org.freedesktop.DBus.Mock.GetCalls")
    return [(u, rt == "true", int(c), int(m), int(t)) for u, rt, c, m, t in SET_CALL.findall(out)]


@pytest.fixture(scope="module")
def systemd_bus():
    """dbus-daemon with its own config and socket; python3-dbusmock's systemd
    template on it, plus SetUnitProperties (the template lacks it), whose
    calls the mock records."""
    if not shutil.which("dbus-daemon") or subprocess.run(
            ["/usr/bin/python3", "-c", "import dbusmock"], capture_output=True).returncode:
        pytest.fail("needs dbus-daemon and python3-dbusmock (scripts/install-deps.sh)")
    tmp = Path(tempfile.mkdtemp(prefix="gk-it-dbus-"))
    os.chmod(tmp, 0o755)
    conf = tmp / "bus.conf"
    conf.write_text(BUS_CONFIG.format(socket=tmp / "bus"))
    address = f"unix:path={tmp / 'bus'}"
    bus = subprocess.Popen(["dbus-daemon", "--config-file", str(conf), "--nofork", "--nopidfile"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    mock = None
    try:
        wait_for(lambda: (tmp / "bus").exists(), what="dbus-daemon's socket")
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=address)
        mock = subprocess.Popen(["/usr/bin/python3", "-m", "dbusmock", "--system", "--template",
                                 "systemd"], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def mock_up():
            r = subprocess.run(["gdbus", "introspect", "--address", address, "--dest",
                                "org.freedesktop.systemd1", "--object-path",
                                "/org/freedesktop/systemd1"], capture_output=True, timeout=10)
            return r.returncode == 0
        wait_for(mock_up, timeout=20, what="dbusmock's systemd on the bus")
        gdbus(address, "org.freedesktop.DBus.Mock.AddMethod", MANAGER, "SetUnitProperties",
              "sba(sv)", "", "")
        yield {"address": address}
    finally:
        for p in (mock, bus):
            if p is not None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def bus_daemon(systemd_bus, users):
    workdir = Path(tempfile.mkdtemp(prefix="gk-it-limits-bus-"))
    os.chmod(workdir, 0o755)
    lab = Lab(workdir / "lab.json")
    lab.write()
    d = Daemon(workdir / "d", lab)
    d.dir.mkdir(mode=0o755)
    d.sections["limits"] = {
        "backend": "systemd",
        "default": {"cpu": "400%", "memory": "64G", "tasks": 4096},
        "per_gpu": {"cpu": "800%", "memory": "120G"},
    }
    base_env = d.env
    d.env = lambda: dict(base_env(), DBUS_SYSTEM_BUS_ADDRESS=systemd_bus["address"])
    d.start()
    try:
        yield d
    finally:
        d.kill_background()
        d.stop()
        shutil.rmtree(workdir, ignore_errors=True)


G = 1 << 30


def test_dbus_set_unit_properties_grow_and_shrink(bus_daemon, systemd_bus, users):
    d, alice = bus_daemon, users["alice"]
    gdbus(systemd_bus["address"], "org.freedesktop.DBus.Mock.ClearCalls")
    res = d.request("limits.apply", {"user": alice.uid})
    assert res["ok"], res
    wait_for(lambda: limits_of(d, alice.name)["state"] == "applied", what="systemd's answer")
    unit = f"user-{alice.uid}.slice"
    # 400% = 4 s of CPU time per second; runtime=true (nothing written to /etc)
    assert set_calls(systemd_bus) == [(unit, True, 4_000_000, 64 * G, 4096)]
    assert limits_of(d, alice.name)["backend"] == "systemd"

    r = d.cli("lease", "acquire", "--gpus", "1", "--time", "1h", user=alice)
    assert r.returncode == 0, r
    wait_for(lambda: len(set_calls(systemd_bus)) == 2, what="the grant's call")
    assert set_calls(systemd_bus)[1] == (unit, True, 12_000_000, 184 * G, 4096)
    wait_for(lambda: limits_of(d, alice.name)["state"] == "applied", what="systemd's answer")
    assert limits_of(d, alice.name)["limits"]["memory"]["value"] == "184G"

    assert d.cli("lease", "release", "--all", user=alice).returncode == 0
    wait_for(lambda: len(set_calls(systemd_bus)) == 3, what="the release's call")
    assert set_calls(systemd_bus)[2] == (unit, True, 4_000_000, 64 * G, 4096)


def test_dbus_refusal_is_loud_never_applied(bus_daemon, systemd_bus, users):
    d, bob = bus_daemon, users["bob"]
    # systemd says no (as it does for a unit it cannot load)
    gdbus(systemd_bus["address"], "org.freedesktop.DBus.Mock.AddMethod", MANAGER,
          "SetUnitProperties", "sba(sv)", "",
          "raise dbus.exceptions.DBusException('Unit user-x.slice not loaded.', "
          "name='org.freedesktop.systemd1.NoSuchUnit')")
    try:
        res = d.request("limits.apply", {"user": bob.name})
        assert res["ok"], res
        wait_for(lambda: limits_of(d, bob.name)["state"] == "failed", what="the refusal")
        shown = limits_of(d, bob.name)
        assert shown["applied"] is False and "not loaded" in shown["error"], shown
        r = d.cli("limits", "show", bob.name)
        assert "Applied: NO, it FAILED through systemd" in r.stdout, r.stdout
        assert f"Per-user limits of uid {bob.uid} NOT applied" in d.log()
        rows = d.query("SELECT action FROM audit WHERE action = 'limits.failed'")
        assert rows, "no audit row for the failed apply"
    finally:
        gdbus(systemd_bus["address"], "org.freedesktop.DBus.Mock.AddMethod", MANAGER,
              "SetUnitProperties", "sba(sv)", "", "")


def test_pam_limits_option_moves_the_login(fs_daemon, phd_user):
    """pam_gpukeeper.so's `limits` option at session open (pamtester plays the
    login as root): the daemon applies carol's limits and moves the session
    process into her cgroups, where it then runs (the memory controller charged
    it; her cgroup did not exist before)."""
    if not shutil.which("pamtester"):
        pytest.fail("needs pamtester (scripts/install-deps.sh)")
    d = fs_daemon
    module = Path(GKD).parents[2] / "pam" / "pam_gpukeeper.so"
    service = f"gktest-limits-{os.getpid()}"
    pam_file = Path("/etc/pam.d") / service
    assert not user_dir(d, "cpu", phd_user).exists()
    pam_file.write_text(f"auth required pam_permit.so\naccount required pam_permit.so\n"
                        f"session required {module} limits quiet socket={d.socket_path}\n")
    try:
        r = subprocess.run(["pamtester", service, phd_user.name, "open_session"],
                           capture_output=True, text=True, timeout=30)
    finally:
        pam_file.unlink()
    assert r.returncode == 0, r
    assert limits_of(d, phd_user.name)["state"] == "applied"
    assert read_values(d, phd_user)[:2] == (96 * MIB, "12")
    # the session process was charged there for what it allocated after the move
    peak = int(user_dir(d, "memory", phd_user).joinpath("memory.max_usage_in_bytes").read_text())
    assert peak > 0


def test_reload_reapplies_new_values(fs_daemon, users):
    """SIGHUP with a new default: every user applied before gets it at once."""
    d, alice = fs_daemon, users["alice"]
    assert limits_of(d, alice.name)["state"] == "applied"
    old = dict(d.sections["limits"]["default"])
    try:
        d.sections["limits"]["default"]["memory"] = "40M"
        d.write_config()
        d.send_signal(signal.SIGHUP)
        wait_for(lambda: read_values(d, alice)[0] == 40 * MIB, what="the reloaded limit")
        assert limits_of(d, alice.name)["limits"]["memory"]["value"] == "40M"
    finally:
        d.sections["limits"]["default"] = old
        d.write_config()
        d.send_signal(signal.SIGHUP)
        wait_for(lambda: read_values(d, alice)[0] == 48 * MIB, what="the restored limit")


# ---- groups through the resolver, never NSS on the loop ------------------------

def test_slow_group_database_groups_pending_then_applied(users, phd_user):
    """The user's groups for limits.groups come from the resolver thread, like
    every other NSS answer: with every lookup taking 1.5 s (the resolver's
    test seam GK_TEST_NSS_DELAY_MS), carol (in gktest-lim-phd) acquires a GPU
    and asks for her limits; both answers come in less than one lookup,
    `limits show` says her groups are pending and nothing was written to her
    cgroups (limits of the wrong group are not applied meanwhile). Once the
    thread has her groups, the next sample applies the phd limits (96M + 32M
    for the GPU), and `limits show` says so."""
    if not V1_MEMORY_PIDS:
        pytest.skip("needs the cgroup v1 memory and pids controllers mounted "
                    f"(found: {MOUNTS})")
    delay_ms = 1500
    with cgroupfs_daemon("limits-slow") as d:
        base_env = d.env

        def slow_env():
            e = base_env()
            e["GK_TEST_NSS_DELAY_MS"] = str(delay_ms)
            return e

        d.env = slow_env
        slow_groups_pending_then_applied(d, phd_user, delay_ms)


def slow_groups_pending_then_applied(d, phd_user, delay_ms):
    """The body of the test above, on its slow-NSS daemon."""
    d.start()
    t0 = time.monotonic()
    r = d.cli("lease", "acquire", "--gpus", "1", "--time", "1h", user=phd_user)
    assert r.returncode == 0, r
    shown = d.cli("limits", "show", "--json", user=phd_user)
    took = time.monotonic() - t0
    assert shown.returncode == 0, shown
    res = json.loads(shown.stdout)
    # Two requests in less than one lookup: nobody waited on NSS.
    assert took < delay_ms / 1000, took
    assert res["groups_pending"] is True, res
    assert res["state"] == "groups pending" and res["applied"] is False, res
    assert not user_dir(d, "memory", phd_user).joinpath("memory.limit_in_bytes").exists()
    text = d.cli("limits", "show", user=phd_user)
    assert "Groups: pending" in text.stdout, text.stdout

    def applied():
        d.tick()  # limits_ops_tick runs after each sample
        got = limits_of(d, phd_user.uid)
        return got if got["state"] == "applied" else None

    res = wait_for(applied, timeout=30, interval=0.2, what="carol's groups and limits")
    assert res["groups_pending"] is False and res["groups"] == ["gktest-lim-phd"], res
    assert res["limits"]["memory"]["value"] == "128M", res
    assert res["limits"]["memory"]["from"] == "group", res
    assert read_values(d, phd_user)[:2] == (128 * MIB, "20")
    r = d.cli("lease", "release", "--all", user=phd_user)
    assert r.returncode == 0, r
    assert read_values(d, phd_user)[:2] == (96 * MIB, "12")
