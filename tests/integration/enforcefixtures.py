"""Fixtures for the enforcement, idle-reclaim and alert tests
(test_enforcement.py, test_idle.py, test_alerts.py): real processes of real
users that log the signals they get (optionally on a pseudo-terminal of
their own, so the daemon's terminal message can be read from its master
side), and real receivers on 127.0.0.1 for the alert sinks — an HTTP server
for the webhook, DingTalk and Slack formats, Debian's aiosmtpd for email, a
port that refuses connections and one that accepts but never answers.

Kept out of conftest.py so the shared fixtures stay small; the test modules
import what they use from here."""

import json
import os
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import PYTHON, as_user, free_port, wait_for

# A process that stands for someone's training job. argv: log path, what to
# do on SIGTERM ("exit" or "stay": log it and keep running, as a job that
# ignores SIGTERM would), "tty" to make its stdin its controlling terminal
# (it is a session leader: Popen(start_new_session=True)), and a tag that
# ends its command line. Every SIGTERM is logged with the time it arrived.
VICTIM = r"""
import fcntl, os, signal, sys, termios, time
log, on_term, tty, tag = sys.argv[1:5]
if tty == "tty":
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
def term(sig, frame):
    with open(log, "a") as f:
        f.write(f"TERM {time.time()!r}\n")
    if on_term == "exit":
        os._exit(0)
signal.signal(signal.SIGTERM, term)
with open(log, "a") as f:
    f.write(f"READY {os.getpid()}\n")
while True:
    time.sleep(60)
"""


class Victim:
    """One VICTIM process; `pid`, `proc`, and what it logged."""

    def __init__(self, daemon, user, tag, on_term, tty):
        self.tag = tag
        self.log = daemon.shared_log(f"{tag}.log")
        self.output = b""          # what the process's terminal received
        self.output_at = None      # when the first bytes of it arrived
        self._master = None
        self._reader = None
        std = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL,
               "stderr": subprocess.DEVNULL}
        slave = None
        if tty:
            self._master, slave = os.openpty()
            std = {"stdin": slave, "stdout": slave, "stderr": slave}
        try:
            self.proc = subprocess.Popen(
                [PYTHON, "-c", VICTIM, str(self.log), on_term, "tty" if tty else "-", tag],
                start_new_session=True, **std, **as_user(user))
        finally:
            if slave is not None:
                os.close(slave)
        self.pid = self.proc.pid
        if tty:
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()
        wait_for(lambda: f"READY {self.pid}" in self.log.read_text(),
                 what=f"process {tag} to start")

    def _read(self):
        while True:
            try:
                chunk = os.read(self._master, 4096)
            except OSError:  # EIO: every slave side is closed
                return
            if not chunk:
                return
            if self.output_at is None:
                self.output_at = time.time()
            self.output += chunk

    def terms(self):
        """Times (time.time()) at which SIGTERM arrived."""
        return [float(line.split()[1]) for line in self.log.read_text().splitlines()
                if line.startswith("TERM ")]

    def alive(self):
        return self.proc.poll() is None

    def start_time(self):
        """Field 22 of /proc/<pid>/stat, as the daemon records it."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2:].split()[19])

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self._master is not None:
            os.close(self._master)
            self._master = None
        if self._reader is not None:
            self._reader.join(timeout=5)


@pytest.fixture
def victims():
    """victims(daemon, user, tag, on_term="exit", tty=False) -> a started
    Victim; all are killed at teardown."""
    made = []

    def _start(daemon, user, tag, on_term="exit", tty=False):
        v = Victim(daemon, user, tag, on_term, tty)
        made.append(v)
        return v

    yield _start
    for v in made:
        v.close()


# ---- what the daemon records -------------------------------------------------

def violations(daemon):
    """Every violation record, newest first (violations.list as root)."""
    return daemon.ok("violations.list", {"since": 0, "limit": 1000})["violations"]


def violations_of(daemon, pid):
    return [v for v in violations(daemon) if v["pid"] == pid]


def wait_violation(daemon, pid, pred=lambda v: True, what="a violation", timeout=10):
    """The one violation record of `pid`, once `pred` holds for it."""
    def check():
        recs = violations_of(daemon, pid)
        assert len(recs) <= 1, f"more than one violation of pid {pid}: {recs}"
        return recs[0] if recs and pred(recs[0]) else None
    return wait_for(check, timeout=timeout, what=f"{what} of pid {pid}")


def audit(daemon, action=None):
    if action is None:
        return daemon.query("SELECT * FROM audit ORDER BY id")
    return daemon.query("SELECT * FROM audit WHERE action = ? ORDER BY id", (action,))


# ---- alert receivers ----------------------------------------------------------

class HookServer:
    """An HTTP server on 127.0.0.1 that records every POST: path, query
    (raw and parsed), headers, JSON body and arrival time. It answers as the real
    services do: DingTalk (paths under /ding) {"errcode":0,"errmsg":"ok"},
    Slack (/slack) "ok", anything else {}."""

    def __init__(self, port=0):
        self.requests = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                url = urlsplit(self.path)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with outer._lock:
                    outer.requests.append({"path": url.path, "raw_query": url.query,
                                           "query": parse_qs(url.query),
                                           "headers": dict(self.headers), "raw": raw,
                                           "body": body, "at": time.time()})
                if url.path.startswith("/ding"):
                    answer, ctype = b'{"errcode":0,"errmsg":"ok"}', "application/json"
                elif url.path.startswith("/slack"):
                    answer, ctype = b"ok", "text/plain"
                else:
                    answer, ctype = b"{}", "application/json"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def received(self, path=None):
        with self._lock:
            return [r for r in self.requests if path is None or r["path"] == path]

    def bodies(self, path=None, event=None):
        """JSON bodies POSTed to `path`; with `event`, only generic webhook
        bodies of that event."""
        return [r["body"] for r in self.received(path)
                if event is None or (isinstance(r["body"], dict) and r["body"].get("event") == event)]

    def wait(self, pred, what, timeout=10):
        return wait_for(pred, timeout=timeout, what=what)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def hooks():
    """hooks() -> a started HookServer (hooks(port) on a given port); all are
    shut down at teardown."""
    made = []

    def _start(port=0):
        h = HookServer(port)
        made.append(h)
        return h

    yield _start
    for h in made:
        h.close()


@pytest.fixture
def silent_port():
    """A port on 127.0.0.1 that accepts connections (the kernel completes
    the handshake into the backlog) and never answers anything."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield s.getsockname()[1]
    s.close()


class SmtpSink:
    """aiosmtpd (Debian's python3-aiosmtpd) on 127.0.0.1, requiring AUTH
    with `login`/`password` when given. `messages` holds (mail_from,
    rcpt_tos, email.message.Message) of every accepted message."""

    def __init__(self, login=None, password=None):
        from email import message_from_bytes
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages = []
        self.auth_attempts = []
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                outer.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                       message_from_bytes(envelope.original_content)))
                return "250 OK"

        def authenticator(server, session, envelope, mechanism, auth_data):
            got = (auth_data.login.decode(), auth_data.password.decode())
            outer.auth_attempts.append(got)
            return AuthResult(success=got == (login, password))

        kwargs = {}
        if login is not None:
            kwargs = {"authenticator": authenticator, "auth_required": True,
                      "auth_require_tls": False}
        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()

    def close(self):
        self.controller.stop()


@pytest.fixture
def smtp():
    """smtp(login=None, password=None) -> a started SmtpSink; stopped at teardown."""
    made = []

    def _start(login=None, password=None):
        s = SmtpSink(login, password)
        made.append(s)
        return s

    yield _start
    for s in made:
        s.close()
