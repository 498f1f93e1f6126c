"""`gpukeeper top` in a real terminal: a detached tmux session of 80x24 runs
the CLI against a real daemon, keys go in with send-keys and the screen comes
back with capture-pane. The lab has alice's manual lease on GPU0 (with her
process on it), bob's processes without a lease (on GPU0 and on a MIG
instance) and bob waiting in the queue."""

import os
import shutil
import subprocess

import pytest

from conftest import (CLI_FOR_USERS, GK, GPU0_UUID, GPU1_UUID, raw_call, start_leasing_daemon,
                      wait_for, wait_queue_len)

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (scripts/install-deps.sh)")


class Tmux:
    """One tmux server on its own socket, with one session running `argv`."""

    def __init__(self, workdir, argv, width=80, height=24, env=None):
        self.socket = str(workdir / "tmux.sock")
        self.status_path = workdir / "top.status"
        # The session's command records the CLI's exit status once it ends.
        # tmux runs it through the shell: every word is quoted.
        quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv)
        command = f"{quoted}; echo $? > '{self.status_path}'; sleep 60"
        full_env = dict(os.environ)
        full_env.pop("NO_COLOR", None)
        full_env.pop("TMUX", None)
        # tmux hands the client's environment to a new server's session.
        full_env.update(env or {})
        subprocess.run(["tmux", "-S", self.socket, "-f", "/dev/null", "new-session", "-d",
                        "-x", str(width), "-y", str(height), "-s", "top", command],
                       check=True, env=full_env, stdin=subprocess.DEVNULL, capture_output=True)

    def tmux(self, *args):
        return subprocess.run(["tmux", "-S", self.socket, *args], check=True, text=True,
                              stdin=subprocess.DEVNULL, capture_output=True).stdout

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "top", *keys)

    def screen(self, escapes=False):
        return self.tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", "top")

    def wait_screen(self, predicate, what, timeout=10):
        seen = []

        def check():
            seen[:] = [self.screen()]
            return predicate(seen[0])

        try:
            wait_for(check, timeout=timeout, interval=0.1, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}; the screen:\n{seen[0] if seen else ''}") from None
        return seen[0]

    def resize(self, width, height):
        self.tmux("resize-window", "-t", "top", "-x", str(width), "-y", str(height))

    def kill(self):
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], stdin=subprocess.DEVNULL,
                       capture_output=True)


def lines(screen):
    return screen.rstrip("\n").split("\n")


def process_line(screen, pid):
    """The process line of `pid` (the command is cut on 80 columns, so the
    pid tells the processes apart), or None."""
    return next((r for r in lines(screen) if r[2:].split(" ", 1)[0] == str(pid)), None)


def process_order(screen, tags):
    """The names (values of `tags`, a dict pid -> name) of the process lines on
    the screen, top to bottom."""
    return [tags[int(r[2:].split(" ", 1)[0])] for r in lines(screen)
            if r[2:].split(" ", 1)[0].isdigit() and int(r[2:].split(" ", 1)[0]) in tags]


def fits(screen, width, height):
    rows = lines(screen)
    assert len(rows) <= height, f"{len(rows)} rows on a {height}-row terminal:\n{screen}"
    too_long = [r for r in rows if len(r) > width]
    assert not too_long, f"lines longer than {width} columns: {too_long}"


@pytest.fixture
def tmux_sessions():
    made = []
    yield made
    for t in made:
        t.kill()


def test_top_in_tmux(daemon_factory, lab, users, spawn, workdir, tmux_sessions):
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab, enforcement={"mode": "observe"})

    # pid order: bob-small, alice, bob-big; memory order: bob-big, alice,
    # bob-small; user order: alice, then bob by memory (bob-big, bob-small).
    # The lease first: a device with unleased use is not granted.
    lease = raw_call(d, alice, "lease.acquire",
                     {"kind": "manual", "devices": [GPU0_UUID], "duration_sec": 3600,
                      "wait": False})
    assert lease.get("ok") is True, lease
    small = spawn(bob, "top-bob-small")
    mine = spawn(alice, "top-alice-job")
    big = spawn(bob, "top-bob-big")
    lab.add_process(GPU0_UUID, small.pid, 512)
    lab.add_process(GPU0_UUID, mine.pid, 1024)
    lab.add_process(GPU1_UUID, big.pid, 3072, gi=1, ci=0)
    lab.write()
    # bob waits for the one whole GPU on a connection that stays open.
    waiter = subprocess.Popen([str(CLI_FOR_USERS["path"]), "--socket", str(d.socket_path), "lease", "acquire",
                               "--gpus", "1"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              user=bob.uid, group=bob.gid, cwd="/")
    try:
        wait_queue_len(d, 1)
        wait_for(lambda: all(p["leased"] is (p["pid"] == mine.pid)
                             for g in d.status()["gpus"] for p in g["processes"])
                 and sum(len(g["processes"]) for g in d.status()["gpus"]) == 3,
                 what="the three lab processes with their lease state")
        run_top(d, workdir, tmux_sessions, small, mine, big)
    finally:
        waiter.kill()
        waiter.wait()


def run_top(d, workdir, tmux_sessions, small, mine, big):
    """Everything the screen shows and every key, on the lab set up above."""
    tags = {small.pid: "top-bob-small", mine.pid: "top-alice-job", big.pid: "top-bob-big"}
    t = Tmux(workdir, [str(GK), "--socket", str(d.socket_path), "top", "--interval", "0.5"])
    tmux_sessions.append(t)

    screen = t.wait_screen(lambda s: "QUEUE" in s and process_line(s, big.pid), "the first screen")
    fits(screen, 80, 24)
    rows = lines(screen)
    gpu0 = next(r for r in rows if r.startswith("0 "))
    assert "A100-SXM4-80GB" in gpu0 and "gktest-alice" in gpu0, gpu0
    assert any(r.startswith("1 ") and "MIG" in r for r in rows), screen
    mig_a = next(r for r in rows if r.startswith(" 1/1 "))
    assert "3g.40gb" in mig_a and "UNLEASED" in mig_a, mig_a
    assert any(r.startswith(" 1/2 ") for r in rows), screen
    # Unleased use is marked "!", alice's leased process is not.
    for p in (small, big):
        assert process_line(screen, p.pid).startswith("! "), screen
    assert process_line(screen, mine.pid).startswith("  "), screen
    assert "gktest-alice" in process_line(screen, mine.pid), screen
    assert "gktest-bob" in process_line(screen, big.pid), screen
    queue_at = next(i for i, r in enumerate(rows) if r.startswith("QUEUE"))
    assert any("gktest-bob" in r for r in rows[queue_at + 1:]), screen

    # Sorting: memory (default), pid, user.
    assert process_order(screen, tags) == ["top-bob-big", "top-alice-job", "top-bob-small"]
    t.keys("p")
    t.wait_screen(lambda s: process_order(s, tags) == ["top-bob-small", "top-alice-job",
                                                        "top-bob-big"], "pid order")
    t.keys("u")
    t.wait_screen(lambda s: process_order(s, tags) == ["top-alice-job", "top-bob-big",
                                                        "top-bob-small"], "user order")
    t.keys("m")
    t.wait_screen(lambda s: process_order(s, tags) == ["top-bob-big", "top-alice-job",
                                                        "top-bob-small"], "memory order")

    # The filter typed with '/': only alice's process and no queue entry of bob.
    t.keys("/")
    t.wait_screen(lambda s: "filter by user" in s, "the filter prompt")
    t.keys("gktest-alice", "Enter")
    screen = t.wait_screen(lambda s: process_order(s, tags) == ["top-alice-job"]
                           and "user: gktest-alice" in s, "alice's processes only")
    rows = lines(screen)
    queue_at = next(i for i, r in enumerate(rows) if r.startswith("QUEUE"))
    assert not any("gktest-bob" in r for r in rows[queue_at + 1:]), screen
    # An empty filter shows everyone again.
    t.keys("/", "BSpace")
    t.keys(*["BSpace"] * 12, "Enter")
    t.wait_screen(lambda s: len(process_order(s, tags)) == 3, "everyone again")

    # Resize to 100x30 and back: still laid out, still fits.
    t.resize(100, 30)
    screen = t.wait_screen(lambda s: len(lines(s)) == 30 and process_line(s, big.pid), "100x30")
    fits(screen, 100, 30)

    # On 10 rows the body scrolls: PgDn reaches the queue, the title and key
    # lines stay; Home goes back to the top.
    t.resize(80, 10)
    t.wait_screen(lambda s: len(lines(s)) == 10 and lines(s)[1].startswith("GPU"), "80x10")
    t.keys("NPage")
    screen = t.wait_screen(lambda s: not lines(s)[1].startswith("GPU"), "scrolled down")
    assert lines(screen)[0].startswith("gpukeeper top"), screen
    assert lines(screen)[-1].startswith("q quit"), screen
    t.keys("End")
    t.wait_screen(lambda s: any(r.startswith("QUEUE") for r in lines(s)), "the end")
    t.keys("Home")
    t.wait_screen(lambda s: lines(s)[1].startswith("GPU"), "scrolled back")

    t.resize(80, 24)
    screen = t.wait_screen(lambda s: len(lines(s)) == 24 and process_line(s, big.pid),
                           "80x24 again")
    fits(screen, 80, 24)

    t.keys("q")
    wait_for(lambda: t.status_path.exists() and t.status_path.read_text().strip(),
             what="gpukeeper top to exit")
    assert t.status_path.read_text().strip() == "0"


def test_top_user_option_and_errors(daemon_factory, lab, users, spawn, workdir, tmux_sessions):
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab, enforcement={"mode": "observe"})
    a = spawn(alice, "top-alice-only")
    b = spawn(bob, "top-bob-only")
    lab.add_process(GPU0_UUID, a.pid, 1024)
    lab.add_process(GPU1_UUID, b.pid, 2048, gi=2, ci=0)
    lab.write()
    wait_for(lambda: sum(len(g["processes"]) for g in d.status()["gpus"]) == 2,
             what="both processes in status")

    t = Tmux(workdir, [str(GK), "--socket", str(d.socket_path), "top", "--user", "gktest-bob"])
    tmux_sessions.append(t)
    screen = t.wait_screen(lambda s: process_line(s, b.pid), "bob's process")
    assert not process_line(screen, a.pid) and "user: gktest-bob" in screen, screen
    fits(screen, 80, 24)
    # Bob's unleased process is in red (SGR 31) on a terminal with colour.
    red = [r for r in t.screen(escapes=True).split("\n") if str(b.pid) in r]
    assert red and "31m" in red[0], red

    # The daemon goes away: the view stays and says so, then comes back.
    d.stop()
    t.wait_screen(lambda s: "gpukeeperd" in lines(s)[-1] and process_line(s, b.pid),
                  "the lost daemon on the key line")
    d.start()
    t.wait_screen(lambda s: lines(s)[-1].startswith("q quit") and process_line(s, b.pid),
                  "the view after the daemon is back", timeout=15)
    t.keys("q")
    wait_for(lambda: t.status_path.exists() and t.status_path.read_text().strip(),
             what="gpukeeper top to exit")
    assert t.status_path.read_text().strip() == "0"

    # NO_COLOR: no colour at all.
    t3 = Tmux(workdir / "d0", [str(GK), "--socket", str(d.socket_path), "top"],
              env={"NO_COLOR": "1"})
    tmux_sessions.append(t3)
    t3.wait_screen(lambda s: process_line(s, b.pid), "the view without colour")
    assert "31m" not in t3.screen(escapes=True), t3.screen(escapes=True)
    t3.keys("q")

    # Not a terminal, a bad interval: usage errors, before any screen.
    r = d.cli("top")
    assert r.returncode == 64 and "terminal" in r.stderr, r
    r = d.cli("top", "--interval", "0")
    assert r.returncode == 64 and "--interval" in r.stderr, r
    # No daemon: the usual one line and 69, from a terminal.
    (workdir / "t2").mkdir()
    t2 = Tmux(workdir / "t2", [str(GK), "--socket", str(workdir / "nowhere.sock"), "top"])
    tmux_sessions.append(t2)
    wait_for(lambda: t2.status_path.exists() and t2.status_path.read_text().strip(),
             what="gpukeeper top without a daemon to exit")
    assert t2.status_path.read_text().strip() == "69"
