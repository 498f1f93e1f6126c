"""Fixtures for gpukeeper's integration tests: real binaries, real users, real
processes, a real SQLite file, and the NVML simulator as the only stand-in.

Everything here runs as root (the tests create Linux users and start
processes as them). The build directory is $GK_BUILD_DIR (default `build`,
relative to the repository root); tests/run-all.sh runs this suite once
against `build` and once against the sanitizer build `build-asan`.

- `users`: gktest-alice and gktest-bob, created with useradd when missing;
  `admin`: gktest-admin, a member of the group gpukeeper-admin.
- `spawn`: start a real long-running process as a user; killed at teardown.
- `Lab`: the simulator's lab file, edited as a Python dict and replaced
  atomically (write a temporary file, then rename), as the simulator expects.
- `daemon_factory` / `daemon`: gpukeeperd with its own config, socket and
  state directory; teardown sends SIGTERM and requires exit status 0 and no
  sanitizer report on its stderr. `policy=` gives the config's policy section;
  `crash()` then `start()` restarts it on the same state and socket.
- `Conn` (the protocol from this process, as root) and `raw_as` (the protocol
  from a process of a real user) for what the CLI does not show exactly:
  queue positions, error codes, run leases held by a bare connection.
"""

import copy
import grp
import json
import os
import pwd
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = (REPO / os.environ.get("GK_BUILD_DIR", "build")).resolve()
GKD = BUILD / "src" / "daemon" / "gpukeeperd"
GK = BUILD / "src" / "cli" / "gpukeeper"
SIM_LIB = BUILD / "sim" / "libnvidia-ml-sim.so"
PYTHON = "/usr/bin/python3"

# The sample interval the tests run the daemon with, and how long we allow
# for a lab change to show (about two intervals, plus slack for the
# sanitizer build on a loaded two-core machine).
SAMPLE_INTERVAL = 0.2
SETTLE_TIMEOUT = 5.0

# What a sanitizer writes when it finds something (ASan, LSan, UBSan).
SANITIZER_REPORT = re.compile(r"(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
                              r"SUMMARY: (Address|Leak|Undefined)Sanitizer)")

MIB = 1024 * 1024

# Wire protocol (docs/protocol.md): 4-byte big-endian length, then JSON.
FRAME_HEADER = struct.Struct(">I")
REPLY_MAX = 16 * MIB

USERS = ("gktest-alice", "gktest-bob")
ADMIN_USER = "gktest-admin"
ADMIN_GROUP = "gpukeeper-admin"  # its members may act on every lease


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now (connections to it
    are refused), for a server a test starts."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=SETTLE_TIMEOUT, interval=0.05, what="condition"):
    """Poll `predicate` until it returns a true value; return that value."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (AssertionError, OSError, ValueError, KeyError) as e:
            last_error = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                                 + (f" (last error: {last_error!r})" if last_error else ""))
        time.sleep(interval)


def assert_no_sanitizer_report(text, who):
    m = SANITIZER_REPORT.search(text)
    assert m is None, f"sanitizer report from {who}:\n{text[max(0, m.start() - 2000):m.start() + 6000]}"


# ---- users and processes -------------------------------------------------

class User:
    def __init__(self, name, groups=()):
        pw = pwd.getpwnam(name)
        self.name = name
        self.uid = pw.pw_uid
        self.gid = pw.pw_gid
        # Supplementary groups its processes run with, as after a login.
        self.extra_gids = [grp.getgrnam(g).gr_gid for g in groups]

    def __repr__(self):
        return f"User({self.name}, uid={self.uid})"


def ensure_group(name):
    try:
        grp.getgrnam(name)
    except KeyError:
        subprocess.run(["groupadd", "--system", name], check=True,
                       stdin=subprocess.DEVNULL, capture_output=True)


def ensure_user(name, groups=()):
    for g in groups:
        ensure_group(g)
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--user-group",
                        "--shell", "/usr/sbin/nologin", name],
                       check=True, stdin=subprocess.DEVNULL, capture_output=True)
    for g in groups:
        if name not in grp.getgrnam(g).gr_mem:
            subprocess.run(["usermod", "--append", "--groups", g, name], check=True,
                           stdin=subprocess.DEVNULL, capture_output=True)
    return User(name, groups)


def as_user(user):
    """Popen keyword arguments that run the child as `user` (real setuid/setgid,
    supplementary groups those of the user's groups the tests set up, in / since
    the user may not reach our working directory), or nothing for root."""
    if user is None:
        return {}
    return {"user": user.uid, "group": user.gid, "extra_groups": list(user.extra_gids),
            "cwd": "/"}


def _join_cgroup_then_become(cgroup, user):
    """A preexec_fn: join `cgroup` as root, then take `user`'s ids as
    as_user() would (Popen switches ids before preexec_fn runs)."""
    def run():
        (Path(cgroup) / "cgroup.procs").write_text("0")
        if user is not None:
            os.setgroups(list(user.extra_gids))
            os.setgid(user.gid)
            os.setuid(user.uid)
    return run


# The CLI binary the test users run: the build's own, or a copy when the
# checkout is not reachable by other users (a clone under /root, say). The CLI
# links only system libraries, so a copy runs the same code.
CLI_FOR_USERS = {"path": GK}


@pytest.fixture(scope="session")
def users():
    if os.geteuid() != 0:
        pytest.fail("the integration tests must run as root (they create users and "
                    "start processes as them): sudo tests/run-all.sh")
    made = {name.removeprefix("gktest-"): ensure_user(name) for name in USERS}

    def runs_as_alice(path):
        try:
            probe = subprocess.run([str(path), "--help"], capture_output=True, text=True,
                                   stdin=subprocess.DEVNULL, **as_user(made["alice"]))
        except PermissionError:
            return False
        return probe.returncode == 0

    if not runs_as_alice(GK):
        copy_dir = Path(tempfile.mkdtemp(prefix="gk-it-cli-"))
        os.chmod(copy_dir, 0o755)
        copy = copy_dir / "gpukeeper"
        shutil.copy2(GK, copy)
        os.chmod(copy, 0o755)
        assert runs_as_alice(copy), f"neither {GK} nor a copy in {copy_dir} runs as gktest-alice"
        CLI_FOR_USERS["path"] = copy
    yield made
    if CLI_FOR_USERS["path"] != GK:
        shutil.rmtree(CLI_FOR_USERS["path"].parent, ignore_errors=True)
        CLI_FOR_USERS["path"] = GK


@pytest.fixture(scope="session")
def admin(users):
    """gktest-admin, in the group gpukeeper-admin (created when missing)."""
    return ensure_user(ADMIN_USER, groups=(ADMIN_GROUP,))


@pytest.fixture
def spawn():
    """spawn(user, tag) starts `python3 -c <sleep> <tag>` as `user` and returns the
    Popen; its /proc cmdline ends in `tag`. All are killed at teardown."""
    started = []

    def _spawn(user, tag):
        p = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(300)", tag],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True,
                             **as_user(user))
        started.append(p)
        # Wait until the child has exec'd, so /proc shows its final uid and cmdline.
        wait_for(lambda: tag.encode() in Path(f"/proc/{p.pid}/cmdline").read_bytes(),
                 what=f"process {tag} to start")
        return p

    yield _spawn
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


# ---- the simulator's lab file ---------------------------------------------

GPU0_UUID = "GPU-0a1b2c3d-0000-4000-8000-000000000000"
GPU1_UUID = "GPU-0a1b2c3d-0000-4000-8000-000000000001"
MIG_A_UUID = "MIG-5e6f7a8b-0000-4000-8000-000000000001"
MIG_B_UUID = "MIG-5e6f7a8b-0000-4000-8000-000000000002"
DRIVER_VERSION = "550.54.15"

BASE_LAB = {
    "driver_version": DRIVER_VERSION,
    "gpus": [
        {
            "name": "NVIDIA A100-SXM4-80GB", "uuid": GPU0_UUID,
            "pci_bus_id": "00000000:07:00.0", "minor": 0, "memory_total_mib": 81920,
            "utilization_gpu": 40, "utilization_memory": 10, "temperature_c": 41,
            "power_mw": 123000, "energy_mj": 1000, "lost": False, "xid": 0,
            "processes": [],
        },
        {
            "name": "NVIDIA A100-SXM4-80GB", "uuid": GPU1_UUID,
            "pci_bus_id": "00000000:0F:00.0", "minor": 1, "memory_total_mib": 81920,
            "utilization_gpu": 0, "utilization_memory": 0, "temperature_c": 35,
            "power_mw": 61000, "energy_mj": 2000, "lost": False, "xid": 0,
            "mig": {
                "enabled": True,
                "instances": [
                    {"gi": 1, "ci": 0, "profile": "3g.40gb", "uuid": MIG_A_UUID,
                     "memory_total_mib": 40192},
                    {"gi": 2, "ci": 0, "profile": "3g.40gb", "uuid": MIG_B_UUID,
                     "memory_total_mib": 40192},
                ],
            },
            "processes": [],
        },
    ],
}


def whole_gpu_uuid(n):
    """The UUID add_whole_gpu() gives its n-th GPU (n >= 2: 0 and 1 are BASE_LAB's)."""
    return f"GPU-0a1b2c3d-0000-4000-8000-{n:012d}"


class Lab:
    """The lab file the simulator reads. Edit `data`, then call write()."""

    def __init__(self, path):
        self.path = Path(path)
        self.data = copy.deepcopy(BASE_LAB)

    def add_whole_gpu(self):
        """Append one more idle A100 not in MIG mode; returns its UUID."""
        n = len(self.data["gpus"])
        assert n < 200
        uuid = whole_gpu_uuid(n)
        self.data["gpus"].append({
            "name": "NVIDIA A100-SXM4-80GB", "uuid": uuid,
            "pci_bus_id": f"00000000:{0x20 + n:02X}:00.0", "minor": n,
            "memory_total_mib": 81920, "utilization_gpu": 0, "utilization_memory": 0,
            "temperature_c": 30, "power_mw": 60000, "energy_mj": 0, "lost": False,
            "xid": 0, "processes": [],
        })
        return uuid

    def whole_gpus(self):
        """UUIDs of the GPUs not in MIG mode, in index order."""
        return [g["uuid"] for g in self.data["gpus"] if not g.get("mig", {}).get("enabled")]

    def gpu(self, uuid):
        return next(g for g in self.data["gpus"] if g["uuid"] == uuid)

    def add_process(self, gpu_uuid, pid, used_mib, gi=None, ci=None):
        entry = {"pid": pid, "used_mib": used_mib, "sm_util": 10}
        if gi is not None:
            entry["gi"] = gi
            entry["ci"] = ci
        self.gpu(gpu_uuid)["processes"].append(entry)

    def remove_process(self, pid):
        for g in self.data["gpus"]:
            g["processes"] = [p for p in g["processes"] if p["pid"] != pid]

    def write(self):
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.path)


# ---- the daemon -----------------------------------------------------------

def frame(payload):
    """One protocol frame: `payload` (bytes, or an object to encode as JSON)."""
    if not isinstance(payload, (bytes, bytearray)):
        payload = json.dumps(payload).encode()
    return FRAME_HEADER.pack(len(payload)) + payload


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return data
        data += chunk
    return data


def recv_frame(sock):
    """Read one reply frame; None when the daemon closed the connection first."""
    header = recv_exact(sock, FRAME_HEADER.size)
    if len(header) < FRAME_HEADER.size:
        return None
    (length,) = FRAME_HEADER.unpack(header)
    assert length <= REPLY_MAX, f"reply frame announces {length} bytes"
    body = recv_exact(sock, length)
    assert len(body) == length, "connection closed in the middle of a reply frame"
    return json.loads(body)


def yaml_lines(value, indent=0):
    """Block-style YAML for the nested dicts, lists and scalars of a config
    section (strings are written plain: the tests use no special characters)."""
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)):
                lines.append(f"{pad}{k}:")
                lines += yaml_lines(v, indent + 2)
            else:
                lines.append(f"{pad}{k}: {yaml_scalar(v)}")
    else:
        for item in value:
            if not isinstance(item, (dict, list)):
                lines.append(f"{pad}- {yaml_scalar(item)}")
                continue
            sub = yaml_lines(item, indent + 2)
            lines.append(f"{pad}- " + sub[0].lstrip())
            lines += sub[1:]
    return lines


def yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def write_config(path, sections=None, **keys):
    """Write a daemon config: top-level scalar `keys`, then `sections`
    ({"policy": {...}}) as nested blocks."""
    lines = [f"{k}: {v}" for k, v in keys.items()]
    lines += yaml_lines(sections or {})
    Path(path).write_text("\n".join(lines) + "\n")


class Daemon:
    """One gpukeeperd with its own directory (config, socket, state, lab, log)."""

    def __init__(self, workdir, lab):
        self.dir = Path(workdir)
        self.lab = lab
        self.config_path = self.dir / "gpukeeper.yaml"
        self.socket_path = self.dir / "gpukeeper.sock"
        self.state_dir = self.dir / "state"
        self.db_path = self.state_dir / "gpukeeper.db"
        self.log_path = self.dir / "gpukeeperd.log"
        self.proc = None
        self.sections = {}      # config sections ("policy": {...})
        self.background = []    # CLI processes from cli_popen(), killed at teardown
        self.config = {
            "socket": str(self.socket_path),
            "state_dir": str(self.state_dir),
            "nvml_library": str(SIM_LIB),
            "sample_interval": f"{int(SAMPLE_INTERVAL * 1000)}ms",
            "log_level": "debug",
        }

    def write_config(self, **overrides):
        self.config.update(overrides)
        write_config(self.config_path, self.sections, **self.config)

    def env(self):
        env = dict(os.environ)
        env["GPUKEEPER_SIM_LAB"] = str(self.lab.path)
        return env

    def start(self):
        self.state_dir.mkdir(exist_ok=True)
        if not self.config_path.exists():
            self.write_config()
        if not self.lab.path.exists():
            self.lab.write()
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(GKD), "--config", str(self.config_path)],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=self.env())
        wait_for(self._ready, timeout=15, what=f"gpukeeperd to listen on {self.socket_path}")
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            pytest.fail(f"gpukeeperd exited with status {self.proc.returncode} during start:\n"
                        + self.log())
        if not self.socket_path.exists():
            return False
        with self.connect() as s:
            s.sendall(frame({"v": 1, "id": 1, "op": "ping", "args": {}}))
            reply = recv_frame(s)
            return reply is not None and reply.get("ok") is True

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def connect(self, timeout=10):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        s.settimeout(timeout)
        try:
            s.connect(str(self.socket_path))
        except OSError:
            s.close()
            raise
        return s

    def request(self, op, args=None, rid=7):
        """One request on a fresh connection; returns the reply object."""
        with self.connect() as s:
            s.sendall(frame({"v": 1, "id": rid, "op": op, "args": args or {}}))
            reply = recv_frame(s)
        assert reply is not None, f"daemon closed the connection without answering {op}"
        return reply

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def cli(self, *args, user=None, socket_arg=True, env=None, timeout=30):
        """Run the gpukeeper CLI (as `user`, root when None) against this daemon."""
        argv = [str(CLI_FOR_USERS["path"] if user is not None else GK)]
        if socket_arg:
            argv += ["--socket", str(self.socket_path)]
        return run_cli(argv + list(args), user=user, env=env, timeout=timeout)

    def cli_popen(self, *args, user=None, stdout=None, stderr=None, env=None, cgroup=None):
        """Start the CLI (as `user`) in the background, in its own session, with
        stdout and stderr going to the given paths (default: files in this
        daemon's directory). With `cgroup` (a cgroup2 directory) the child
        joins it before it drops to `user` and execs, so the command starts
        there (moving it after Popen returns races with what it does first).
        The Popen gets .out_path and .err_path; it is killed, with its process
        group, at teardown."""
        n = len(self.background)
        out_path = Path(stdout) if stdout else self.dir / f"cli-{n}.out"
        err_path = Path(stderr) if stderr else self.dir / f"cli-{n}.err"
        argv = [str(CLI_FOR_USERS["path"] if user is not None else GK),
                "--socket", str(self.socket_path), *args]
        full_env = dict(os.environ)
        full_env.pop("GPUKEEPER_SOCKET", None)
        full_env.update(env or {})
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            kwargs = as_user(user)
            if cgroup is not None:
                kwargs = {"preexec_fn": _join_cgroup_then_become(cgroup, user), "cwd": "/"}
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                 env=full_env, start_new_session=True, **kwargs)
        p.out_path, p.err_path = out_path, err_path
        self.background.append(p)
        return p

    def kill_background(self):
        """SIGKILL every process group cli_popen() started, and check their stderr."""
        for p in self.background:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        for p in self.background:
            assert_no_sanitizer_report(p.err_path.read_text(errors="replace"),
                                       f"gpukeeper ({p.args[3:]})")
        self.background = []

    def shared_dir(self):
        """A directory every user may write (sticky, like /tmp), for markers
        and logs the commands under test write."""
        d = self.dir / "shared"
        d.mkdir(exist_ok=True)
        os.chmod(d, 0o1777)
        return d

    def shared_log(self, name):
        """An empty file in shared_dir() that every user may append to."""
        path = self.shared_dir() / name
        path.touch()
        os.chmod(path, 0o666)
        return path

    def db(self):
        """The state database, opened read-only (close it soon: the daemon
        keeps writing)."""
        db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        db.row_factory = sqlite3.Row
        return db

    def query(self, sql, params=()):
        """Rows of one query on the state database, as dicts."""
        db = self.db()
        try:
            return [dict(r) for r in db.execute(sql, params).fetchall()]
        finally:
            db.close()

    def ok(self, op, args=None):
        """The result of one request as root; fails the test on an error reply."""
        reply = self.request(op, args)
        assert reply.get("ok") is True, f"{op} {args}: {reply}"
        return reply["result"]

    # ---- test hooks (issue 10: root-only requests of -Dtest_hooks builds) ----

    def tick(self, n=1):
        """Run `n` sampler ticks now (debug.tick), each answered once done.
        A periodic sample in flight answers "busy" (9): ask again."""
        for _ in range(n):
            while True:
                reply = self.request("debug.tick")
                if reply.get("ok") is True:
                    break
                assert reply["error"]["code"] == 9, reply
                time.sleep(0.005)

    def clock(self, wall_step_sec=None, advance_sec=None):
        """Step the daemon's wall clock and/or let time pass (debug.clock)."""
        args = {}
        if wall_step_sec is not None:
            args["wall_step_sec"] = wall_step_sec
        if advance_sec is not None:
            args["advance_sec"] = advance_sec
        return self.ok("debug.clock", args)

    def leases(self, all=True):
        """Active leases (everyone's by default), from lease.list as root."""
        return self.ok("lease.list", {"all": all})["leases"]

    def queue(self):
        return self.ok("queue.list")["queue"]

    def status(self, user=None):
        """`gpukeeper --socket S status --json` as `user`, parsed."""
        r = self.cli("status", "--json", user=user)
        assert r.returncode == 0, f"status --json exited {r.returncode}: {r.stderr}"
        return json.loads(r.stdout)

    def crash(self):
        """SIGKILL, as a crash would: nothing is cleaned up, nothing is checked."""
        proc, self.proc = self.proc, None
        proc.kill()
        proc.wait()
        self._log.close()

    def stop(self, sig=signal.SIGTERM):
        """Send `sig` (SIGTERM by default); the daemon must exit 0 promptly with no
        sanitizer report."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail(f"gpukeeperd did not exit within 15 s of {sig!r}:\n" + self.log())
        self._log.close()
        log = self.log()
        assert_no_sanitizer_report(log, "gpukeeperd")
        assert proc.returncode == 0, f"gpukeeperd exited with status {proc.returncode}:\n{log}"


def run_cli(argv, user=None, env=None, timeout=30):
    full_env = dict(os.environ)
    full_env.pop("GPUKEEPER_SOCKET", None)
    if env:
        full_env.update(env)
    r = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       env=full_env, timeout=timeout, **as_user(user))
    assert_no_sanitizer_report(r.stderr, f"{' '.join(argv)}")
    return r


@pytest.fixture
def workdir():
    """A fresh directory other users can traverse (pytest's own tmp_path is
    private to root, so gktest-alice could not reach a socket inside it)."""
    d = tempfile.mkdtemp(prefix="gk-it-")
    os.chmod(d, 0o755)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def lab(workdir):
    return Lab(workdir / "lab.json")


@pytest.fixture
def daemon_factory(workdir, lab):
    """daemon_factory(policy=None, enforcement=None, idle=None, alerts=None,
    env=None, **config) -> an unstarted Daemon; the named config sections are written
    when given. Every one is stopped (and checked) at teardown, after the CLI
    processes it started in the background are killed."""
    made = []

    def _make(policy=None, enforcement=None, idle=None, alerts=None, env=None, **config):
        d = Daemon(workdir / f"d{len(made)}", lab)
        d.dir.mkdir(mode=0o755)
        d.config.update(config)
        for name, section in (("policy", policy), ("enforcement", enforcement),
                              ("idle", idle), ("alerts", alerts), ("env", env)):
            if section is not None:
                d.sections[name] = section
        made.append(d)
        return d

    yield _make
    for d in made:
        d.kill_background()
    for d in made:
        d.stop()


@pytest.fixture
def daemon(daemon_factory, lab):
    lab.write()
    return daemon_factory().start()


def find_process(status, pid):
    """(gpu, process) of `pid` in a status result, or (None, None)."""
    for g in status["gpus"]:
        for p in g["processes"]:
            if p["pid"] == pid:
                return g, p
    return None, None


def gpu_by_uuid(status, uuid):
    return next(g for g in status["gpus"] if g["uuid"] == uuid)


# ---- the protocol, directly ------------------------------------------------

class Conn:
    """One protocol connection from this process (so: as root). Events that
    arrive while waiting for a reply are kept in `events`."""

    def __init__(self, daemon, timeout=30):
        self.sock = daemon.connect(timeout=timeout)
        self.next_id = 1
        self.events = []

    def send(self, op, args=None):
        rid = self.next_id
        self.next_id += 1
        self.sock.sendall(frame({"v": 1, "id": rid, "op": op, "args": args or {}}))
        return rid

    def reply(self, rid):
        """Read until the reply to `rid`; None when the daemon closed the connection."""
        while True:
            msg = recv_frame(self.sock)
            if msg is None:
                return None
            if "event" in msg:
                self.events.append(msg)
                continue
            assert msg.get("id") == rid, f"reply {msg} while waiting for request {rid}"
            return msg

    def call(self, op, args=None):
        return self.reply(self.send(op, args))

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# A protocol client that runs as a real user. argv: socket path, a JSON list of
# [op, args] pairs. It sends them one after the other on one connection and
# prints every message it receives (events and replies) as one JSON line; with
# --hold it then keeps the connection open until its stdin closes (a run
# lease lives as long as its connection). A closed connection prints
# {"closed": true}.
RAW_CLIENT = r"""
import json, socket, struct, sys
def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            return None
        b += c
    return b
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
for i, (op, args) in enumerate(json.loads(sys.argv[2]), 1):
    p = json.dumps({"v": 1, "id": i, "op": op, "args": args}).encode()
    s.sendall(struct.pack(">I", len(p)) + p)
    while True:
        h = recv_exact(s, 4)
        body = h and recv_exact(s, struct.unpack(">I", h)[0])
        if body is None:
            print(json.dumps({"closed": True}), flush=True)
            sys.exit(3)
        msg = json.loads(body)
        print(json.dumps(msg), flush=True)
        if "event" not in msg:
            break
if "--hold" in sys.argv[3:]:
    sys.stdin.read()
"""


class RawClient:
    """A RAW_CLIENT process as some user; its messages are read by a thread."""

    def __init__(self, daemon, user, requests, hold=False):
        argv = [PYTHON, "-c", RAW_CLIENT, str(daemon.socket_path), json.dumps(requests)]
        if hold:
            argv.append("--hold")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, **as_user(user))
        self.messages = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._lock:
                self.messages.append(json.loads(line))

    def replies(self):
        with self._lock:
            return [m for m in self.messages if "id" in m and "event" not in m]

    def events(self):
        with self._lock:
            return [m for m in self.messages if "event" in m]

    def wait_replies(self, n, timeout=SETTLE_TIMEOUT):
        wait_for(lambda: len(self.replies()) >= n, timeout=timeout,
                 what=f"{n} replies from a raw client (have {self.messages})")
        return self.replies()

    def close(self):
        """Close its connection (stdin EOF ends --hold) and reap it."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        return self.proc.returncode

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self._reader.join(timeout=5)


@pytest.fixture
def raw_as():
    """raw_as(daemon, user, [[op, args], ...], hold=False) -> RawClient; all are
    killed at teardown."""
    made = []

    def _raw(daemon, user, requests, hold=False):
        c = RawClient(daemon, user, requests, hold=hold)
        made.append(c)
        return c

    yield _raw
    for c in made:
        if c.proc.poll() is None:
            c.kill()
        assert_no_sanitizer_report(c.proc.stderr.read() if c.proc.stderr else "", "raw client")


def raw_call(daemon, user, op, args=None, timeout=30):
    """One request as `user` on a fresh connection from a process of that user;
    returns the reply (events before it are dropped)."""
    r = subprocess.run([PYTHON, "-c", RAW_CLIENT, str(daemon.socket_path),
                        json.dumps([[op, args or {}]])],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       timeout=timeout, **as_user(user))
    msgs = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    replies = [m for m in msgs if "event" not in m]
    assert r.returncode == 0 and replies, \
        f"raw {op} as {user}: rc {r.returncode}, {r.stdout} {r.stderr}"
    return replies[-1]


# ---- leases -----------------------------------------------------------------

# The policy the lease tests run with unless they need another: durations long
# enough never to expire during a test, and a short reconnect grace.
TEST_POLICY = {"default_duration": "1h", "max_duration": "1d", "reconnect_grace": "10s"}


def start_leasing_daemon(daemon_factory, lab, extra_whole=0, policy=None, **config):
    """A started daemon over BASE_LAB (GPU0 whole; GPU1 in MIG mode with two
    3g.40gb instances) plus `extra_whole` more whole GPUs, with TEST_POLICY
    updated by `policy`."""
    for _ in range(extra_whole):
        lab.add_whole_gpu()
    lab.write()
    full_policy = dict(TEST_POLICY)
    full_policy.update(policy or {})
    d = daemon_factory(policy=full_policy, **config).start()
    # The allocator works from the sampled snapshot: wait until it has every GPU.
    wait_for(lambda: len(d.status()["gpus"]) == len(lab.data["gpus"]),
             what="the first snapshot with every GPU")
    return d


def leases_from_json(text):
    """The lease objects of `gpukeeper lease list --json` output."""
    doc = json.loads(text)
    return doc["leases"] if isinstance(doc, dict) else doc


def queue_from_json(text):
    doc = json.loads(text)
    return doc["queue"] if isinstance(doc, dict) else doc


def wait_queue_len(daemon, n, timeout=15):
    """Wait until exactly `n` requests are queued; returns the queue."""
    seen = []

    def queued():
        seen[:] = daemon.queue()
        return len(seen) == n

    try:
        wait_for(queued, timeout=timeout, what=f"{n} queued requests")
    except AssertionError as e:
        raise AssertionError(f"{e}; the queue: {seen}") from None
    return list(seen)


def lease_devices(lease):
    return [dev["uuid"] for dev in lease["devices"]]
