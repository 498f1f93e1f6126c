"""A real one-node Slurm cluster (Debian's slurm-wlm 22.05 and munge) for the
Slurm integration tests, started and stopped by the tests themselves.

Everything lives in one temporary directory: munged with its own key, socket,
pid and log files; slurmctld and slurmd with their own slurm.conf (the tools
find it through $SLURM_CONF), state and spool directories, ephemeral ports on
127.0.0.1 and pid files. Each daemon is stopped by its PID at the end.

The configuration was chosen for machines where systemd is not PID 1 and the
cgroup layout is hybrid (cgroup v1 controllers plus a cgroup2 mount at
/sys/fs/cgroup/unified), where Slurm's cgroup plugins do not start:
proctrack/linuxproc (job processes are found through the process tree of
slurmstepd), task/none, jobacct_gather/none and no accounting storage. The
GPUs are `Gres=gpu:2` backed by device nodes the cluster mknods (char 195:0
and 195:1) in its own directory, with AutoDetect=off: there is no driver.

Job ids must never repeat within a cluster: slurmd remembers the jobs whose
prolog it ran (its credential cache, kept across its restarts in the spool
directory), so a reused id gets no prolog at all and no gpukeeper lease. In
Slurm 22.05 `scontrol reconfigure` reloads the last job id from the job_state
file in StateSaveLocation, which slurmctld writes in the background a while
after each change: a reconfigure soon after a submission (on a loaded
machine) sets the counter back and the next jobs reuse ids. So the cluster
is never reconfigured: what a test changes (a lost epilog) lives in its
Prolog/Epilog scripts, and slurm.conf changes only with a slurmd restart
for slurmd's own files (gres.conf). slurmctld keeps its state directory for
its lifetime and starts without -i, so a damaged state file is an error,
not a silent clean start that would reuse ids.

With $GK_SLURM_KEEP_LOGS set to a directory, stop() copies the daemons' logs,
the hooks' stderr and the configuration there before removing the cluster's
directory (for a post-mortem of a failed run).
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

MUNGED = "/usr/sbin/munged"
SLURMCTLD = "/usr/sbin/slurmctld"
SLURMD = "/usr/sbin/slurmd"
SRUN = "/usr/bin/srun"

SLURM_MISSING = [p for p in (MUNGED, SLURMCTLD, SLURMD, SRUN) if not os.path.exists(p)]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(pred, timeout, what, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    extra = ""
    if log is not None:
        try:
            extra = "\n" + Path(log).read_text(errors="replace")[-4000:]
        except OSError:
            pass
    raise AssertionError(f"timed out waiting for {what}{extra}")


class SlurmCluster:
    """One node named after this host, partition `main`, `Gres=gpu:2`."""

    def __init__(self, prolog=None, epilog=None, gres_conf=None):
        self.dir = Path(tempfile.mkdtemp(prefix="gk-slurm-"))
        os.chmod(self.dir, 0o755)
        self.node = socket.gethostname().split(".")[0]
        self.prolog = prolog
        self.epilog = epilog
        self.gres_conf_text = gres_conf
        self.devdir = self.dir / "dev"
        self.conf = self.dir / "slurm.conf"
        self.munge_socket = self.dir / "munge" / "munge.socket"
        self.procs = {}
        self.ctld_port = free_port()
        self.slurmd_port = free_port()

    # ---- set-up ----------------------------------------------------------

    def env(self, base=None):
        env = dict(os.environ if base is None else base)
        env["SLURM_CONF"] = str(self.conf)
        return env

    def device_files(self):
        return [self.devdir / f"nvidia{i}" for i in range(2)]

    def _mknod(self):
        self.devdir.mkdir(mode=0o755)
        for i, path in enumerate(self.device_files()):
            os.mknod(path, 0o666 | 0o020000, os.makedev(195, i))

    def _munge(self):
        mdir = self.dir / "munge"
        mdir.mkdir(mode=0o700)
        mu = pwd.getpwnam("munge")
        key = mdir / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        for p in (mdir, key):
            os.chown(p, mu.pw_uid, mu.pw_gid)
        # Everyone (the test users' srun) must reach the socket.
        os.chmod(mdir, 0o755)
        log = mdir / "munged.log"
        self.procs["munged"] = subprocess.Popen(
            ["runuser", "-u", "munge", "--", MUNGED, "-F", f"--key-file={key}",
             f"--socket={self.munge_socket}", f"--pid-file={mdir}/munged.pid",
             f"--log-file={log}", f"--seed-file={mdir}/munged.seed"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        _wait(lambda: self.munge_socket.exists(), 15, "munged's socket", log)

    def write_conf(self, gres_conf=None):
        d = self.dir
        ncpu = os.cpu_count() or 1
        lines = [
            "ClusterName=gktest",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={self.ctld_port}",
            f"SlurmdPort={self.slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"AuthInfo=socket={self.munge_socket}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"StateSaveLocation={d}/state",
            f"SlurmdSpoolDir={d}/spool",
            f"SlurmctldPidFile={d}/slurmctld.pid",
            f"SlurmdPidFile={d}/slurmd.pid",
            f"SlurmctldLogFile={d}/slurmctld.log",
            f"SlurmdLogFile={d}/slurmd.log",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "GresTypes=gpu",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "ReturnToService=2",
            "SchedulerType=sched/builtin",
            "KillWait=2",
            "MinJobAge=2",
            "InactiveLimit=0",
            "SlurmdTimeout=30",
            "PrologFlags=Alloc",
        ]
        if self.prolog:
            lines.append(f"Prolog={self.prolog}")
        if self.epilog:
            lines.append(f"Epilog={self.epilog}")
        lines += [
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={ncpu} RealMemory=500 "
            "Gres=gpu:2 State=UNKNOWN",
            "PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        text = gres_conf if gres_conf is not None else self.gres_conf_text
        if text is None:
            text = ("AutoDetect=off\n"
                    f"Name=gpu File={self.devdir}/nvidia[0-1]\n")
        (d / "gres.conf").write_text(text)

    def start(self):
        if SLURM_MISSING:
            raise RuntimeError("Slurm is not installed: " + ", ".join(SLURM_MISSING))
        self._mknod()
        self._munge()
        for sub in ("state", "spool"):
            (self.dir / sub).mkdir(mode=0o755)
        self.write_conf()
        self.procs["slurmctld"] = subprocess.Popen(
            [SLURMCTLD, "-D"], env=self.env(), stdin=subprocess.DEVNULL,
            stdout=open(self.dir / "slurmctld.out", "wb"), stderr=subprocess.STDOUT,
            start_new_session=True)
        self.start_slurmd()
        self.wait_idle()
        return self

    def start_slurmd(self):
        self.procs["slurmd"] = subprocess.Popen(
            [SLURMD, "-D", "-N", self.node], env=self.env(), stdin=subprocess.DEVNULL,
            stdout=open(self.dir / "slurmd.out", "ab"), stderr=subprocess.STDOUT,
            start_new_session=True)

    def stop_slurmd(self, sig=signal.SIGTERM):
        p = self.procs.pop("slurmd", None)
        if p and p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def restart_slurmd(self):
        self.stop_slurmd()
        self.start_slurmd()
        self.wait_idle()

    # ---- queries ---------------------------------------------------------

    def run(self, *argv, check=True, timeout=60, **kw):
        r = subprocess.run(list(argv), env=self.env(kw.pop("env", None)), capture_output=True,
                           text=True, timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise AssertionError(f"{argv} exited {r.returncode}: {r.stderr}\n{self.logs()}")
        return r

    def node_info(self):
        r = self.run("scontrol", "show", "node", self.node, check=False)
        return r.stdout if r.returncode == 0 else ""

    def wait_idle(self, timeout=60):
        def idle():
            for p in ("slurmctld", "slurmd"):
                if self.procs.get(p) and self.procs[p].poll() is not None:
                    raise AssertionError(f"{p} exited with {self.procs[p].returncode}\n"
                                         + self.logs())
            info = self.node_info()
            return "State=IDLE" in info and "DRAIN" not in info.split("State=", 1)[1][:40]
        _wait(idle, timeout, f"node {self.node} to be IDLE")

    def jobs(self):
        """Job ids Slurm knows (any state squeue shows)."""
        r = self.run("squeue", "--noheader", "--format=%i %T", check=False)
        return [line.split() for line in r.stdout.splitlines() if line.strip()]

    def wait_no_jobs(self, timeout=60):
        _wait(lambda: not self.jobs(), timeout, "Slurm's queue to empty")

    def logs(self):
        out = []
        for name in ("slurmctld.log", "slurmd.log"):
            try:
                out.append(f"--- {name}\n" + (self.dir / name).read_text(errors="replace")[-3000:])
            except OSError:
                pass
        return "\n".join(out)

    # ---- tear-down -------------------------------------------------------

    def stop(self):
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.pop(name, None)
            if p is None or p.poll() is not None:
                continue
            # runuser forwards SIGTERM to munged; slurm daemons stop on SIGTERM.
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        keep = os.environ.get("GK_SLURM_KEEP_LOGS")
        if keep:
            # Post-mortem: the daemons' logs, prolog/epilog stderr, slurm.conf.
            dest = Path(keep) / self.dir.name
            dest.mkdir(parents=True, exist_ok=True)
            for f in self.dir.iterdir():
                if f.is_file() and (f.suffix in (".log", ".err", ".out", ".conf")):
                    shutil.copy(f, dest / f.name)
        shutil.rmtree(self.dir, ignore_errors=True)
