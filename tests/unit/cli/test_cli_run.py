"""End-to-end tests of `gpukeeper run` and the lease commands against the
stand-in daemon of standin_daemon.py (the real protocol, a scripted lease
model): the child's environment, exit codes, queue progress, Ctrl-C while
queued, signal forwarding (and no double delivery of a terminal's Ctrl-C),
exec failures, reconnecting after a daemon restart, and releasing.

GK_CLI names the gpukeeper binary (set by meson)."""
import os
import pty
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from standin_daemon import GPUS, StandinDaemon  # noqa: E402

GK = os.environ.get("GK_CLI", "gpukeeper")


@pytest.fixture
def sock(tmp_path):
    return str(tmp_path / "gk.sock")


def gk(sock, *args, env=None, **kw):
    e = dict(os.environ, GPUKEEPER_SOCKET=sock)
    e.update(env or {})
    return subprocess.run([GK, *args], env=e, capture_output=True, text=True, timeout=30, **kw)


def spawn(sock, *args, env=None):
    e = dict(os.environ, GPUKEEPER_SOCKET=sock)
    e.update(env or {})
    return subprocess.Popen([GK, *args], env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def ops(d):
    return [r["op"] for r in d.requests]


def test_child_environment_and_exit_code(sock, tmp_path):
    d = StandinDaemon(sock).start()
    out = tmp_path / "env"
    script = f'env > {out}; exit 3'
    p = gk(sock, "run", "--gpus", "2", "--", "sh", "-c", script,
           env={"CUDA_VISIBLE_DEVICES": "0,1,2,3", "KEEP_ME": "yes"})
    assert p.returncode == 3, p.stderr
    env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert env["CUDA_VISIBLE_DEVICES"] == ",".join(GPUS)
    assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert env["GPUKEEPER_LEASE_ID"] == "1"
    assert env["KEEP_ME"] == "yes"
    assert out.read_text().count("CUDA_VISIBLE_DEVICES=") == 1
    acquire = d.requests[0]
    assert acquire["op"] == "lease.acquire"
    assert acquire["args"] == {"kind": "run", "wait": True, "gpus": 2,
                               "command": f"sh -c {script}"}
    assert ops(d)[-1] == "lease.release" and d.requests[-1]["args"] == {"id": 1}
    assert d.released == [(1, "released")]
    d.stop()


def test_signal_exit_status(sock):
    d = StandinDaemon(sock).start()
    p = gk(sock, "run", "--", "sh", "-c", "kill -USR1 $$")
    assert p.returncode == 128 + signal.SIGUSR1
    d.stop()


def test_queue_positions_once_per_change(sock):
    d = StandinDaemon(sock, queue_events=2, queue_delay=0.05).start()
    p = gk(sock, "run", "--", "true")
    assert p.returncode == 0, p.stderr
    lines = p.stderr.splitlines()
    assert lines[0] == "gpukeeper: queued, position 2 of 2 (waiting for 1 GPU: 0 free)"
    assert lines[1] == "gpukeeper: queued, position 1 of 2 (waiting for 1 GPU: 0 free)"
    assert lines[2].startswith("gpukeeper: lease 1 granted after ")
    assert len(lines) == 3
    d.stop()


def test_ctrl_c_while_queued(sock, tmp_path):
    d = StandinDaemon(sock, queue_events=1, queue_delay=30).start()
    marker = tmp_path / "ran"
    p = spawn(sock, "run", "--", "touch", str(marker))
    assert wait_for(lambda: "lease.acquire" in ops(d))
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=10)
    assert p.returncode == 130
    assert "queued, position 1 of 1" in err
    assert "left the queue" in err
    assert not marker.exists()
    d.stop()


def test_no_wait_refused(sock):
    d = StandinDaemon(sock, refuse=(11, "E_NO_CAPACITY", "2 GPUs asked, 1 free")).start()
    p = gk(sock, "run", "--gpus", "2", "--no-wait", "--", "true")
    assert p.returncode == 75
    assert "2 GPUs asked, 1 free" in p.stderr
    assert d.requests[0]["args"]["wait"] is False
    d.stop()


def test_exec_failures(sock, tmp_path):
    d = StandinDaemon(sock).start()
    # Found nowhere: said before the lease is asked for.
    p = gk(sock, "run", "--", "no-such-command-gk")
    assert p.returncode == 127
    assert p.stderr.strip() == ("gpukeeper: run: cannot run 'no-such-command-gk': "
                                "command not found; nothing was leased")
    assert d.requests == [] and d.released == []
    p = gk(sock, "run", "--", str(tmp_path / "no-such-file"))
    assert p.returncode == 127 and "nothing was leased" in p.stderr
    assert d.requests == []
    # Found but not executable: the exec says so, and the lease is released.
    f = tmp_path / "not-executable"
    f.write_text("#!/bin/sh\n")
    f.chmod(0o644)
    p = gk(sock, "run", "--", str(f))
    assert p.returncode == 126
    assert "Permission denied" in p.stderr
    assert d.released[-1] == (1, "released")
    d.stop()


def test_forward_sigterm(sock, tmp_path):
    d = StandinDaemon(sock).start()
    ready = tmp_path / "ready"
    p = spawn(sock, "run", "--", "sh", "-c",
              f'trap "exit 42" TERM; touch {ready}; while :; do sleep 0.05; done')
    assert wait_for(ready.exists)
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=10)
    assert p.returncode == 42
    assert d.released == [(1, "released")]
    d.stop()


def test_terminal_ctrl_c_reaches_child_once(sock, tmp_path):
    """^C typed on the terminal signals the whole foreground process group;
    gpukeeper must not forward that SIGINT a second time."""
    d = StandinDaemon(sock).start()
    # The wakeup fd gets one byte per delivery, so two SIGINTs are counted
    # as two even when Python runs its handler once for both.
    counter = ("import os, signal, sys, time\n"
               "r, w = os.pipe()\n"
               "os.set_blocking(w, False)\n"
               "signal.set_wakeup_fd(w)\n"
               "signal.signal(signal.SIGINT, lambda s, f: None)\n"
               f"open({str(tmp_path / 'ready')!r}, 'w').close()\n"
               "end = time.time() + 1.5\n"
               "while time.time() < end:\n"
               "    time.sleep(0.05)\n"
               "os.set_blocking(r, False)\n"
               "sys.exit(10 + len(os.read(r, 100)))\n")
    pid, master = pty.fork()
    if pid == 0:
        os.environ["GPUKEEPER_SOCKET"] = sock
        os.execv(GK, [GK, "run", "--", sys.executable, "-c", counter])
    assert wait_for((tmp_path / "ready").exists)
    os.write(master, b"\x03")
    _, status = os.waitpid(pid, 0)
    os.close(master)
    assert os.waitstatus_to_exitcode(status) == 11
    d.stop()


def test_event_while_running(sock, tmp_path):
    """An event after the grant is read (with a ping), not taken for a
    closed connection: no reconnect, the lease stays attached."""
    d = StandinDaemon(sock, event_after=0.2).start()
    p = gk(sock, "run", "--", "sleep", "0.8")
    assert p.returncode == 0, p.stderr
    assert ops(d) == ["lease.acquire", "ping", "lease.release"]
    assert p.stderr == ""
    d.stop()


def test_reconnect_after_daemon_restart(sock, tmp_path):
    d = StandinDaemon(sock).start()
    go = tmp_path / "go"
    p = spawn(sock, "run", "--", "sh", "-c",
              f"while [ ! -e {go} ]; do sleep 0.05; done; exit 5")
    assert wait_for(lambda: 1 in d.leases)
    d.stop()
    time.sleep(0.8)
    d2 = StandinDaemon(sock)
    d2.leases = d.leases  # the store survives the restart
    d2.next_id = d.next_id
    d2.start()
    assert wait_for(lambda: "lease.attach" in ops(d2))
    go.touch()
    _, err = p.communicate(timeout=10)
    assert p.returncode == 5, err
    assert "lost the connection to gpukeeperd" in err
    assert "reconnected to gpukeeperd; lease 1 kept" in err
    assert d2.requests[0] == {"v": 1, "id": 1, "op": "lease.attach", "args": {"id": 1}}
    assert d2.released == [(1, "released")]
    d2.stop()


def test_release_gives_up_when_daemon_stays_away(sock, tmp_path):
    d = StandinDaemon(sock).start()
    go = tmp_path / "go"
    p = spawn(sock, "run", "--", "sh", "-c", f"while [ ! -e {go} ]; do sleep 0.05; done; exit 4")
    assert wait_for(lambda: 1 in d.leases)
    d.stop()
    time.sleep(0.2)
    start = time.monotonic()
    go.touch()
    _, err = p.communicate(timeout=20)
    took = time.monotonic() - start
    assert p.returncode == 4
    assert 4.5 < took < 8, took
    assert "gpukeeperd releases it on its own" in err


def test_lease_commands(sock):
    d = StandinDaemon(sock).start()
    p = gk(sock, "lease", "acquire", "--time", "4h")
    assert p.returncode == 0, p.stderr
    assert "lease 1 (manual): 1 device, expires" in p.stdout
    assert GPUS[0] in p.stdout
    assert 'eval "$(gpukeeper lease env)"' in p.stdout
    assert d.requests[0]["args"] == {"kind": "manual", "wait": True, "gpus": 1,
                                     "duration_sec": 14400}
    p = subprocess.run(["sh", "-c", f'eval "$({GK} lease env)"; echo "$CUDA_VISIBLE_DEVICES '
                                    f'$CUDA_DEVICE_ORDER $GPUKEEPER_LEASE_ID"'],
                       env=dict(os.environ, GPUKEEPER_SOCKET=sock), capture_output=True,
                       text=True, timeout=30)
    assert p.stdout == f"{GPUS[0]} PCI_BUS_ID 1\n"
    p = gk(sock, "lease", "list")
    assert p.returncode == 0
    assert p.stdout.splitlines()[1].split()[:4] == ["1", "tester", "manual", "1m"]
    p = gk(sock, "lease", "list", "--json")
    assert [l["id"] for l in __import__("json").loads(p.stdout)["leases"]] == [1]
    p = gk(sock, "lease", "extend", "1", "--time", "2h")
    assert p.returncode == 0 and "(in 5h59m)" in p.stdout
    p = gk(sock, "queue")
    assert "bob" in p.stdout and "waiting for 2 GPUs: 1 free" in p.stdout
    p = gk(sock, "admin", "drain", "0", "--reason", "fan")
    assert p.returncode == 77
    assert d.requests[-1]["args"] == {"device": "0", "reason": "fan"}
    p = gk(sock, "lease", "release", "--all")
    assert p.returncode == 0 and p.stdout == "released lease 1\n"
    # E_NOT_FOUND: what was named does not exist (66), not the daemon's error (70).
    p = gk(sock, "lease", "env")
    assert p.returncode == 66 and "you hold no lease" in p.stderr
    p = gk(sock, "lease", "release", "7")
    assert p.returncode == 66 and "no such lease" in p.stderr
    d.stop()
