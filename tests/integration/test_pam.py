"""pam_gpukeeper.so with a real sshd (issue 12): an sshd of the test's own on
127.0.0.1 (own config, port, host key, key login, UsePAM yes) whose PAM
service is a file the test writes in /etc/pam.d and removes. OpenSSH names
its PAM service after the program (argv[0]), so the test runs sshd through
a symlink with a unique name. Users with a real shell are made for it.

pamtester drives the account phase too, to read the refusal message that
sshd keeps to itself."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BUILD, GPU0_UUID, free_port, wait_for

PAM_MODULE = BUILD / "pam" / "pam_gpukeeper.so"
SSHD = Path("/usr/sbin/sshd")
PAM_USERS = ("gkpam-alice", "gkpam-bob")


def ensure_shell_user(name):
    try:
        import pwd
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--user-group", "--shell", "/bin/sh",
                        name], check=True, capture_output=True)
        import pwd
        return pwd.getpwnam(name)


class Sshd:
    def __init__(self, root, socket_path):
        self.root = Path(root)
        self.socket_path = socket_path
        self.service = f"gk-sshd-test-{os.getpid()}-{self.root.parent.name[-6:]}"
        self.pam_file = Path("/etc/pam.d") / self.service
        self.port = free_port()
        self.proc = None

    def write_pam(self, require_lease=False, quiet=False):
        opts = f"socket={self.socket_path} timeout=1000" + (" quiet" if quiet else "")
        lines = [
            "auth     required pam_permit.so",
            f"account  required {PAM_MODULE} {opts}" + (" require_lease" if require_lease else ""),
            "account  required pam_permit.so",
            f"session  required {PAM_MODULE} {opts}",
            "session  required pam_permit.so",
        ]
        self.pam_file.write_text("\n".join(lines) + "\n")

    def setup(self):
        self.root.mkdir(mode=0o755)
        keys = self.root / "keys"
        keys.mkdir(mode=0o755)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(self.root / "host_key")], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(self.root / "client_key")], check=True)
        pub = (self.root / "client_key.pub").read_text()
        for u in PAM_USERS:
            (keys / u).write_text(pub)
            os.chmod(keys / u, 0o644)
        self.link = self.root / self.service
        self.link.symlink_to(SSHD)
        (self.root / "sshd_config").write_text(f"""
Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.root}/host_key
PidFile {self.root}/sshd.pid
UsePAM yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile {keys}/%u
StrictModes no
AllowUsers {' '.join(PAM_USERS)}
PrintMotd no
PrintLastLog no
LogLevel VERBOSE
""")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.write_pam()
        self.log = open(self.root / "sshd.log", "wb")
        self.proc = subprocess.Popen([str(self.link), "-D", "-e", "-f",
                                      str(self.root / "sshd_config")],
                                     stdout=self.log, stderr=subprocess.STDOUT)

        def listening():
            assert self.proc.poll() is None, (self.root / "sshd.log").read_text()
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        wait_for(listening, timeout=10, what="sshd to listen")
        return self

    def ssh(self, user, command, tty=False, stdin=None):
        argv = ["ssh", "-i", str(self.root / "client_key"), "-p", str(self.port),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]
        if tty:
            argv.append("-tt")
        argv += [f"{user}@127.0.0.1"] + ([command] if command else [])
        if stdin is not None:
            return subprocess.run(argv, capture_output=True, text=True, input=stdin,
                                  timeout=30)
        return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=30)

    def login(self, user):
        """An interactive login (a pty, no command: sshd shows PAM's messages
        only then) that prints the environment and leaves."""
        return self.ssh(user, None, tty=True, stdin=PRINT_ENV + "; exit\n")

    def teardown(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        if self.pam_file.exists():
            self.pam_file.unlink()


@pytest.fixture
def sshd(daemon, workdir):
    if not SSHD.exists() or not PAM_MODULE.exists():
        pytest.skip("needs openssh-server and a build with libpam0g-dev (pam_gpukeeper.so)")
    for u in PAM_USERS:
        ensure_shell_user(u)
    s = Sshd(workdir / "sshd", str(daemon.socket_path))
    try:
        yield s.setup()
    finally:
        s.teardown()


PRINT_ENV = 'printf "cvd=[%s] order=[%s] id=[%s]\\n" "${CUDA_VISIBLE_DEVICES-UNSET}" ' \
            '"${CUDA_DEVICE_ORDER-UNSET}" "${GPUKEEPER_LEASE_ID-UNSET}"'


def lease_for(daemon, name):
    """A manual lease on GPU 0 for `name`, made through the CLI as that user."""
    import pwd
    pw = pwd.getpwnam(name)
    r = subprocess.run(["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                        "--clear-groups", str(BUILD / "src" / "cli" / "gpukeeper"), "--socket",
                        str(daemon.socket_path), "lease", "acquire", "--gpu", GPU0_UUID,
                        "--time", "1h", "--json"],
                       capture_output=True, text=True, cwd="/", timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["lease"]


def test_ssh_login_gets_lease_env_or_hint(daemon, sshd):
    lease = lease_for(daemon, "gkpam-alice")
    r = sshd.ssh("gkpam-alice", PRINT_ENV)
    assert r.returncode == 0, r.stderr + (sshd.root / "sshd.log").read_text()
    assert f"cvd=[{GPU0_UUID}] order=[PCI_BUS_ID] id=[{lease['id']}]" in r.stdout, r.stdout

    # bob holds none: CUDA_VISIBLE_DEVICES is set, and empty; the hint shows
    # on an interactive (pty) login.
    r = sshd.ssh("gkpam-bob", PRINT_ENV)
    assert r.returncode == 0, r.stderr
    assert "cvd=[] order=[UNSET] id=[UNSET]" in r.stdout, r.stdout
    r = sshd.login("gkpam-bob")
    assert "no GPU leased: gpukeeper run" in r.stdout + r.stderr, r.stdout + r.stderr


def test_ssh_login_fails_open_when_daemon_stopped(daemon, sshd):
    daemon.stop()
    t0 = time.monotonic()
    r = sshd.login("gkpam-bob")
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert "cvd=[UNSET]" in r.stdout, r.stdout
    assert "cannot reach gpukeeperd" in r.stdout + r.stderr, r.stdout + r.stderr
    assert took < 10
    # Even with require_lease: a stopped daemon never locks people out.
    sshd.write_pam(require_lease=True)
    r = sshd.ssh("gkpam-bob", PRINT_ENV)
    assert r.returncode == 0, r.stderr


def test_require_lease_refuses_login_without_lease(daemon, sshd):
    sshd.write_pam(require_lease=True)
    lease_for(daemon, "gkpam-alice")
    r = sshd.ssh("gkpam-alice", PRINT_ENV)
    assert r.returncode == 0, r.stderr
    assert GPU0_UUID in r.stdout
    r = sshd.ssh("gkpam-bob", PRINT_ENV)
    assert r.returncode == 255 and "cvd=" not in r.stdout, r.stdout + r.stderr
    log = (sshd.root / "sshd.log").read_text()
    assert "gkpam-bob" in log and "account" in log.lower(), log
    # The message the module gives (sshd keeps account messages to itself;
    # pamtester shows them).
    if shutil.which("pamtester"):
        p = subprocess.run(["pamtester", "-v", sshd.service, "gkpam-bob", "acct_mgmt"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0
        assert "admits only users with a GPU lease" in p.stdout + p.stderr, p.stdout + p.stderr


def test_ssh_login_fails_open_when_daemon_hangs(daemon, sshd):
    """A daemon that accepts but never answers (SIGSTOP): the module gives up
    after its timeout (1000 ms in the test's PAM file) and lets the login in."""
    daemon.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = sshd.login("gkpam-bob")
        took = time.monotonic() - t0
    finally:
        daemon.send_signal(signal.SIGCONT)
    assert r.returncode == 0, r.stderr
    assert "cvd=[UNSET]" in r.stdout, r.stdout
    assert "timed out" in r.stdout + r.stderr, r.stdout + r.stderr
    assert took < 10, took
