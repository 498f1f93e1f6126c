#!/usr/bin/python3
"""Run a command and report what it left running: a CI gate for servers a
test started and did not stop.

    scripts/reap-strays.py --report FILE -- COMMAND [ARG...]

This process becomes a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so
every process COMMAND starts, however it detaches (a double-forking daemon,
a child orphaned by a killed parent), is re-parented to us rather than to
init when its parent dies. Once COMMAND has exited, whatever of its
descendants is still running after a short grace is a stray: each is
written to FILE as one line `PID COMMAND-LINE`, printed, then killed with
SIGKILL and reaped, so that the next suite starts on a clean machine. FILE
is left empty when nothing strayed.

Only our own descendants are looked at: servers of another run on the same
machine, or the machine's own, are never counted or touched.

Exit status: COMMAND's (128 + N when a signal N ended it); 2 when the
arguments are wrong.
"""

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
GRACE_SECONDS = 3.0
MAX_STRAYS = 1000  # what one report lists and kills at most


def reap_zombies():
    """Collect every child of ours that has exited (orphans re-parented to
    us exit too, and would stay zombies otherwise)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def proc_stat(pid):
    """/proc/PID/stat of `pid`: (command name, state, parent pid, start time
    in clock ticks after boot), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read(4096)
        # The command name is in parentheses and may hold anything.
        close = stat.rindex(b")")
        fields = stat[close + 2:].split()
        comm = stat[stat.index(b"(") + 1:close].decode("utf-8", "replace")
        return comm, fields[0], int(fields[1]), int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def children_of(ppids):
    """PIDs of the live processes whose parent is in `ppids`: their command
    lines and start times."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = proc_stat(entry)
        if not stat or stat[2] not in ppids or stat[1] == b"Z":
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read(4096)
        except OSError:
            continue  # gone meanwhile
        text = cmdline.replace(b"\0", b" ").decode("utf-8", "replace").strip()
        found[int(entry)] = (text or f"[{stat[0]}]", stat[3])
    return found


def kill(pid, started):
    """SIGKILL `pid` through a pidfd, if it is still the process we listed
    (same start time once the pidfd pins it)."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return  # gone
    try:
        stat = proc_stat(pid)
        if stat and stat[3] == started:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(fd)


def descendants():
    """Every live process below us (children first, then theirs)."""
    result, frontier = {}, {os.getpid()}
    while frontier and len(result) < MAX_STRAYS:
        level = children_of(frontier)
        level = {pid: cmd for pid, cmd in level.items() if pid not in result}
        result.update(level)
        frontier = set(level)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", required=True, help="file for the strays, one per line")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print(f"reap-strays: prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}",
              file=sys.stderr)
        return 2

    # The command gets our signals' defaults back and is waited for; a
    # Ctrl-C reaches it through the terminal's process group as usual.
    proc = subprocess.Popen(command)
    while True:
        try:
            rc = proc.wait()
            break
        except KeyboardInterrupt:
            continue
    rc = rc if rc >= 0 else 128 - rc

    # Servers stopped at the very end of the run may take a moment to exit.
    deadline = time.monotonic() + GRACE_SECONDS
    strays = descendants()
    while strays and time.monotonic() < deadline:
        time.sleep(0.2)
        reap_zombies()
        strays = descendants()

    with open(args.report, "w", encoding="utf-8") as report:
        for pid, (cmd, _) in sorted(strays.items()):
            report.write(f"{pid} {cmd}\n")
    if strays:
        print(f"reap-strays: {len(strays)} process(es) still running after "
              f"{' '.join(command[:2])}...; killing them:", file=sys.stderr)
        for pid, (cmd, started) in sorted(strays.items()):
            print(f"  {pid} {cmd[:200]}", file=sys.stderr)
            kill(pid, started)
        deadline = time.monotonic() + 5
        while descendants() and time.monotonic() < deadline:
            time.sleep(0.1)
            reap_zombies()
    reap_zombies()
    return rc


if __name__ == "__main__":
    sys.exit(main())
