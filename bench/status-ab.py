#!/usr/bin/python3
"""status-ab.py: two builds' `gpukeeper status` against one daemon, in turns.

    bench/status-ab.py SOCKET N CLI_A CLI_B [ARGS...]

Runs `CLI --socket SOCKET ARGS` (default: `status`) N times for each CLI,
alternating which goes first, stdout to /dev/null, and prints the p50 of
the wall time (spawn to reap) and of the child's own CPU time (wait4), and
A's wall p50 over B's: the two builds measured in the same minutes on the
same reply, which bench-status (one CLI per run, its own daemon and lab)
cannot do. SOCKET is any gpukeeperd's, e.g. a bench-status daemon of 64 GPUs
and 4,096 processes with its benchmark stopped (kill -STOP), or a
bench/status-replay.py server. A CLI given as PATH@SOCKET asks that socket
instead (two replay servers: the same state in two daemons' shapes). A
non-zero exit of either CLI stops the run."""
import os
import statistics
import sys
import time


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    sock, n, a, b = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    args = sys.argv[5:] or ["status"]
    null = os.open("/dev/null", os.O_WRONLY)
    wall = {a: [], b: []}
    cpu = {a: [], b: []}
    for i in range(n):
        for cli in (a, b) if i % 2 == 0 else (b, a):
            path, _, own = cli.partition("@")
            t0 = time.perf_counter_ns()
            pid = os.posix_spawn(path, [path, "--socket", own or sock] + args, os.environ,
                                 file_actions=[(os.POSIX_SPAWN_DUP2, null, 1)])
            _, status, ru = os.wait4(pid, 0)
            t1 = time.perf_counter_ns()
            if status != 0:
                sys.exit(f"status-ab: {cli} exited with wait status {status}")
            wall[cli].append((t1 - t0) / 1000)
            cpu[cli].append((ru.ru_utime + ru.ru_stime) * 1e6)
    for name, cli in (("A", a), ("B", b)):
        print(f"{name} {cli}: wall p50 {statistics.median(wall[cli]):.0f} us, "
              f"CPU p50 {statistics.median(cpu[cli]):.0f} us (n={n})")
    print(f"A / B, wall p50: {statistics.median(wall[a]) / statistics.median(wall[b]):.3f}")


if __name__ == "__main__":
    main()
