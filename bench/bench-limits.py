#!/usr/bin/python3
"""What per-user limits add to the lease path (docs/benchmarks.md, "Per-user
limits"): a manual lease.acquire + lease.release round trip, each over one
connection, against two gpukeeperds on the NVML simulator started side by
side, one without a limits section (the baseline) and one with limits applied
through the cgroupfs backend on this machine's cgroups (its own parent,
gkbench-limits-PID, removed at the end): every grant and every release there
works out the user's limits (no limits.groups here, so no group lookup) and
writes the cpu, memory and pids files of user-UID.slice. Interleaved block by
block so load changes hit both alike.

Target: the limits daemon's acquire+release p50 within 1.5x of the baseline's
(the writes are a few small syscalls next to the SQLite commit of each).
Exit 0 when met, 2 when missed, 1 when it could not measure.

  bench/bench-limits.py [BUILD_DIR] [PAIRS]   (as root; default build, 400)
"""

import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = (REPO / (sys.argv[1] if len(sys.argv) > 1 else "build")).resolve()
PAIRS = int(sys.argv[2]) if len(sys.argv) > 2 else 400
GKD = BUILD / "src" / "daemon" / "gpukeeperd"
SIM = BUILD / "sim" / "libnvidia-ml-sim.so"
PARENT = f"gkbench-limits-{os.getpid()}"
GPU = {"name": "NVIDIA A100-SXM4-80GB", "pci_bus_id": "00000000:07:00.0", "minor": 0,
       "memory_total_mib": 81920, "utilization_gpu": 0, "utilization_memory": 0,
       "temperature_c": 34, "power_mw": 61000, "energy_mj": 0, "lost": False, "xid": 0,
       "processes": []}


def call(sock, op, args, rid):
    m = json.dumps({"v": 1, "id": rid, "op": op, "args": args}).encode()
    sock.sendall(struct.pack(">I", len(m)) + m)
    n = struct.unpack(">I", sock.recv(4, socket.MSG_WAITALL))[0]
    reply = json.loads(sock.recv(n, socket.MSG_WAITALL))
    if not reply.get("ok"):
        raise RuntimeError(f"{op}: {reply}")
    return reply["result"]


def start(work, name, limits):
    d = work / name
    d.mkdir()
    lines = [f"socket: {d}/sock", f"state_dir: {d}", f"nvml_library: {SIM}",
             "sample_interval: 1s", "log_level: warning"]
    if limits:
        lines += ["limits:", "  backend: cgroupfs", f"  cgroupfs_parent: {PARENT}",
                  "  default: {cpu: 400%, memory: 64G, tasks: 4096}",
                  "  per_gpu: {cpu: 800%, memory: 120G}"]
    (d / "c.yaml").write_text("\n".join(lines) + "\n")
    env = dict(os.environ, GPUKEEPER_SIM_LAB=str(work / "lab.json"))
    log = open(d / "log", "wb")
    p = subprocess.Popen([str(GKD), "--config", str(d / "c.yaml")], env=env,
                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    for _ in range(200):
        if (d / "sock").exists():
            break
        time.sleep(0.05)
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(d / "sock"))
    return p, s


def pair(s, rid):
    t = time.perf_counter_ns()
    lease = call(s, "lease.acquire", {"kind": "manual", "gpus": 1, "duration_sec": 3600,
                                      "wait": False}, rid)["lease"]
    call(s, "lease.release", {"id": lease["id"]}, rid + 1)
    return (time.perf_counter_ns() - t) / 1000.0


def main():
    if os.geteuid() != 0:
        print("bench-limits: run as root (it writes cgroups)", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="gkbench-limits-"))
    procs = []
    try:
        (work / "lab.json").write_text(json.dumps({"driver_version": "550.54.15", "gpus": [
            dict(GPU, uuid="GPU-0a1b2c3d-0000-4000-8000-000000000000")]}))
        base_p, base = start(work, "base", False)
        lim_p, lim = start(work, "limits", True)
        procs = [base_p, lim_p]
        times = {"base": [], "limits": []}
        rid = 10
        for _ in range(20):  # warm-up
            pair(base, rid), pair(lim, rid)
        for block in range(PAIRS // 20):
            order = [("base", base), ("limits", lim)]
            if block % 2:
                order.reverse()
            for name, s in order:
                for _ in range(20):
                    rid += 2
                    times[name].append(pair(s, rid))
        shown = call(lim, "limits.show", {}, 1)
        if shown["state"] != "applied":
            print(f"bench-limits: limits not applied: {shown}", file=sys.stderr)
            return 1
        p50 = {k: statistics.median(v) for k, v in times.items()}
        p99 = {k: sorted(v)[int(len(v) * 0.99) - 1] for k, v in times.items()}
        ratio = p50["limits"] / p50["base"]
        print(f"acquire+release pairs: {len(times['base'])} per daemon, blocks of 20, interleaved")
        print(f"  baseline (no limits):  p50 {p50['base']:8.0f} us  p99 {p99['base']:8.0f} us")
        print(f"  limits (cgroupfs):     p50 {p50['limits']:8.0f} us  p99 {p99['limits']:8.0f} us")
        print(f"  ratio p50 limits/baseline: {ratio:.2f}x (target <= 1.5x): "
              f"{'met' if ratio <= 1.5 else 'MISSED'}")
        return 0 if ratio <= 1.5 else 2
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=15)
        for mount in Path("/sys/fs/cgroup").iterdir():
            top = mount / PARENT
            if top.is_dir():
                for child in sorted(top.rglob("*"), key=lambda c: len(c.parts), reverse=True):
                    if child.is_dir():
                        child.rmdir()
                top.rmdir()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
