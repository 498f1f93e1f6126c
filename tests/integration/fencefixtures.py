"""Strict mode's real parts for the integration tests: a cgroup of the test's
own under the cgroup2 mount (never the machine's root cgroup), a private
bpffs mount for the pins, mknod'd device nodes (195:N GPUs, control nodes,
a fake nvidia-uvm and nvidia-caps major), the driver's tables in files
(mig-minors, /proc/devices format), and `open_as`, which opens nodes from a
process of a real user inside that cgroup.

Allowed and refused opens are told apart without a GPU: a char node with
no driver behind it fails with ENXIO when the fence lets the open through,
and with EPERM when the fence refuses it."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

CGROUP2 = Path("/sys/fs/cgroup/unified")
UVM_MAJOR = 240   # "local/experimental" majors: no driver on any machine
CAPS_MAJOR = 241
# mig-minors of the test lab's GPU 1 (minor 1): two 3g instances.
MIG_MINORS = {"gi1": 10, "gi1/ci0": 11, "gi2": 20, "gi2/ci0": 21}

OPENER = r"""
import errno, json, os, sys
out = {}
for path in sys.argv[1:]:
    try:
        os.close(os.open(path, os.O_RDWR))
        out[path] = "OK"
    except OSError as e:
        out[path] = errno.errorcode.get(e.errno, str(e.errno))
print(json.dumps(out))
"""


def write_mig_minors(path):
    lines = ["config 1", "monitor 2"]
    for gpu in range(3):
        for gi in range(1, 3):
            base = 10 * gi if gpu == 1 else 100 + 10 * gpu + gi * 2
            lines.append(f"gpu{gpu}/gi{gi}/access {base}")
            lines.append(f"gpu{gpu}/gi{gi}/ci0/access {base + 1}")
    Path(path).write_text("\n".join(lines) + "\n")


class FenceEnv:
    def __init__(self, root):
        self.root = Path(root)
        self.cgroup = CGROUP2 / f"gk-it-fence-{os.getpid()}-{self.root.name}"
        self.bpffs = self.root / "bpffs"
        self.pin_dir = self.bpffs / "gpukeeper"
        self.dev = self.root / "dev"
        self.mig_minors = self.root / "mig-minors"
        self.proc_devices = self.root / "devices"
        self.opener = self.root / "opener.py"

    def setup(self):
        self.cgroup.mkdir()
        self.bpffs.mkdir()
        subprocess.run(["mount", "-t", "bpf", "bpf", str(self.bpffs)], check=True)
        self.dev.mkdir()
        os.chmod(self.dev, 0o755)
        nodes = {f"nvidia{m}": (195, m) for m in range(4)}
        nodes.update({"nvidiactl": (195, 255), "nvidia-modeset": (195, 254),
                      "nvidia-uvm": (UVM_MAJOR, 0), "nvidia-uvm-tools": (UVM_MAJOR, 1)})
        for minor in (1, 2, 10, 11, 20, 21):
            nodes[f"nvidia-cap{minor}"] = (CAPS_MAJOR, minor)
        for name, (major, minor) in nodes.items():
            path = self.dev / name
            os.mknod(path, 0o20666, os.makedev(major, minor))
            os.chmod(path, 0o666)
        write_mig_minors(self.mig_minors)
        self.proc_devices.write_text(
            "Character devices:\n  1 mem\n195 nvidia\n"
            f"{UVM_MAJOR} nvidia-uvm\n{CAPS_MAJOR} nvidia-caps\n\nBlock devices:\n  8 sd\n")
        self.opener.write_text(OPENER)
        os.chmod(self.opener, 0o644)
        return self

    def enforcement(self, mode="strict", **extra):
        section = {"mode": mode, "fence_cgroup": str(self.cgroup),
                   "fence_pin_dir": str(self.pin_dir), "mig_minors": str(self.mig_minors),
                   "proc_devices": str(self.proc_devices)}
        section.update(extra)
        return section

    def node(self, name):
        return str(self.dev / name)

    def open_as(self, user, *names, cgroup=None):
        """Open the nodes `names` from a process of `user` (None: root) that
        joins `cgroup` (default: the test's fence cgroup) first. Returns
        {name: "OK" | "ENXIO" | "EPERM" | ...}."""
        cg = Path(cgroup) if cgroup else self.cgroup
        cred = []
        if user is not None:
            cred = ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups"]
        # The shell joins the cgroup as root, then becomes the user.
        script = 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"'
        argv = ["sh", "-c", script, "sh", str(cg), *cred, "/usr/bin/python3",
                str(self.opener), *[self.node(n) for n in names]]
        r = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=30, cwd="/")
        assert r.returncode == 0, f"opener failed: {r.stderr}"
        got = json.loads(r.stdout)
        return {Path(k).name: v for k, v in got.items()}

    def poller(self, user, name):
        """A process of `user` in the fence cgroup that, on go(), polls open()
        of node `name` until the fence lets it through and returns how many
        milliseconds that took."""
        return Poller(self, user, name)

    def teardown(self):
        # Whatever is left in our cgroups goes back to the cgroup2 root first.
        for cg in sorted(self.cgroup.rglob("*"), reverse=True) if self.cgroup.exists() else []:
            if cg.is_dir():
                _evacuate(cg)
                _rmdir_retry(cg)
        if self.cgroup.exists():
            _evacuate(self.cgroup)
            _rmdir_retry(self.cgroup)
        subprocess.run(["umount", "-l", str(self.bpffs)], capture_output=True)


POLLER = r"""
import errno, os, sys, time
path = sys.argv[1]
def state():
    try:
        os.close(os.open(path, os.O_RDWR))
        return "OK"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
print(state(), flush=True)
sys.stdin.readline()
t0 = time.monotonic()
while state() == "EPERM" and time.monotonic() - t0 < 5:
    pass
print(f"{(time.monotonic() - t0) * 1000:.3f} {state()}", flush=True)
"""


class Poller:
    def __init__(self, env, user, name):
        script = 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"'
        cred = ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups"]
        self.p = subprocess.Popen(["sh", "-c", script, "sh", str(env.cgroup), *cred,
                                   "/usr/bin/python3", "-c", POLLER, env.node(name)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  cwd="/")
        self.first = self.p.stdout.readline().strip()

    def state(self):
        return self.first

    def go(self):
        self.p.stdin.write("go\n")
        self.p.stdin.flush()
        ms, state = self.p.stdout.readline().split()
        self.p.wait(timeout=10)
        assert state == "ENXIO", state
        return float(ms)


def _evacuate(cg):
    try:
        pids = (cg / "cgroup.procs").read_text().split()
    except OSError:
        return
    for pid in pids:
        try:
            (CGROUP2 / "cgroup.procs").write_text(pid)
        except OSError:
            pass


def _rmdir_retry(cg):
    for _ in range(50):
        try:
            cg.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"cannot remove test cgroup {cg}")


@pytest.fixture
def fence(workdir):
    if not (CGROUP2 / "cgroup.procs").exists():
        pytest.skip(f"no cgroup2 mount at {CGROUP2}")
    env = FenceEnv(workdir / "fence")
    env.root.mkdir()
    os.chmod(env.root, 0o755)
    env.setup()
    yield env
    env.teardown()
