#!/usr/bin/env python3
"""Write an NVML simulator lab (sim/README.md) of many GPUs for benchmarks and tests.

N A100-SXM4-80GB GPUs; the last M of them in MIG mode with 7 x 1g.10gb
instances each; one process per PID, spread round-robin over the whole GPUs
and the MIG instances. With --numa-nodes K, GPU i gets "numa_node" i*K//N:
consecutive GPUs (neighbouring bus ids) share a node, in K blocks as equal
as can be, as on a two-socket DGX (8 GPUs, K=2: GPUs 0-3 on node 0, 4-7 on
node 1). Everything is derived from the arguments, so the same
arguments always give the same file. The file is replaced atomically
(written beside the target, then renamed), as the simulator expects.

    gen-lab.py --gpus 8 --mig 2 --fake-pids 256 --out lab.json
    gen-lab.py --gpus 4 --mig 1 --pids-from pids.txt --out lab.json
    gen-lab.py --gpus 8 --numa-nodes 2 --out lab.json
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile

GPU_NAME = "NVIDIA A100-SXM4-80GB"
GPU_MEMORY_MIB = 81920
GPU_RESERVED_MIB = 512
PCI_DEVICE_ID = 0x20B210DE
PCI_SUBSYSTEM_ID = 0x147F10DE
# Bus numbers of the eight GPUs of a DGX A100, then made-up ones.
DGX_BUSES = [0x07, 0x0F, 0x47, 0x4E, 0x87, 0x90, 0xB7, 0xBD]
MIG_PROFILE = "1g.10gb"
MIG_MEMORY_MIB = 9728
MIG_INSTANCES = 7
# GPU instance ids NVML assigns to seven 1g.10gb instances on an A100.
MIG_FIRST_GI = 7
# PIDs for --fake-pids: below the 64-bit pid_max (4194304), so they are valid
# PIDs, but high enough that no process has them on an ordinary machine.
FAKE_PID_BASE = 4100000
MAX_GPUS = 64


def uuid_for(kind, *parts):
    """A stable UUID in NVML's 8-4-4-4-12 layout, derived from its position."""
    h = hashlib.sha256(":".join(str(p) for p in (kind,) + parts).encode()).hexdigest()
    return f"{kind}-{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def read_pids(path):
    pids = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not line.isdigit() or not 0 < int(line) <= 0x7FFFFFFF:
                raise SystemExit(f"{path}:{lineno}: not a PID: {line!r}")
            pids.append(int(line))
    return pids


def build_lab(n_gpus, n_mig, pids, numa_nodes=0):
    gpus = []
    targets = []  # (gpu dict, gi, ci) with gi None for a whole GPU
    for i in range(n_gpus):
        bus = DGX_BUSES[i] if i < len(DGX_BUSES) else 0xC0 + i
        gpu = {
            "name": GPU_NAME,
            "uuid": uuid_for("GPU", i),
            "pci_bus_id": f"00000000:{bus:02X}:00.0",
            "pci_device_id": PCI_DEVICE_ID,
            "pci_subsystem_id": PCI_SUBSYSTEM_ID,
            "minor": i,
            **({"numa_node": i * numa_nodes // n_gpus} if numa_nodes else {}),
            "memory_total_mib": GPU_MEMORY_MIB,
            "memory_reserved_mib": GPU_RESERVED_MIB,
            "utilization_gpu": 0,
            "utilization_memory": 0,
            "temperature_c": 30 + i % 8,
            "power_mw": 60000 + 1000 * (i % 8),
            "energy_mj": 1000000 * (i + 1),
            "lost": False,
            "xid": 0,
            "mig": {"enabled": False, "instances": []},
            "processes": [],
        }
        if i >= n_gpus - n_mig:
            gpu["mig"]["enabled"] = True
            for k in range(MIG_INSTANCES):
                gi = MIG_FIRST_GI + k
                gpu["mig"]["instances"].append({
                    "gi": gi,
                    "ci": 0,
                    "profile": MIG_PROFILE,
                    "uuid": uuid_for("MIG", i, gi, 0),
                    "memory_total_mib": MIG_MEMORY_MIB,
                })
                targets.append((gpu, gi, 0))
        else:
            targets.append((gpu, None, None))
        gpus.append(gpu)

    for n, pid in enumerate(pids):
        gpu, gi, ci = targets[n % len(targets)]
        proc = {"pid": pid, "used_mib": 128 + (n * 53) % 512, "sm_util": (n * 7) % 40}
        if gi is not None:
            proc["gi"] = gi
            proc["ci"] = ci
        gpu["processes"].append(proc)

    # Whole GPUs show some load when someone runs on them.
    for gpu in gpus:
        if not gpu["mig"]["enabled"] and gpu["processes"]:
            gpu["utilization_gpu"] = min(100, sum(p["sm_util"] for p in gpu["processes"]))
            gpu["utilization_memory"] = gpu["utilization_gpu"] // 2
    return {"driver_version": "550.54.15", "gpus": gpus}


def write_atomically(path, text):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".gen-lab-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gpus", type=int, default=8, help="number of GPUs (default 8)")
    parser.add_argument("--mig", type=int, default=0,
                        help="how many of them (the last ones) are in MIG mode, 7 x 1g.10gb each")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--pids-from", metavar="FILE", help="file with one PID per line")
    source.add_argument("--fake-pids", type=int, default=0, metavar="N",
                        help=f"N made-up PIDs from {FAKE_PID_BASE} on")
    parser.add_argument("--numa-nodes", type=int, default=0, metavar="K",
                        help="spread the GPUs over NUMA nodes 0..K-1 in consecutive blocks "
                             "(default: no numa_node, NVML then reports none)")
    parser.add_argument("--out", default="-", help="lab file to write (default: stdout)")
    args = parser.parse_args(argv)

    if not 0 < args.gpus <= MAX_GPUS:
        parser.error(f"--gpus must be 1..{MAX_GPUS}")
    if not 0 <= args.mig <= args.gpus:
        parser.error("--mig must be 0..--gpus")
    if not 0 <= args.numa_nodes <= args.gpus:
        parser.error("--numa-nodes must be 0..--gpus")
    if args.fake_pids < 0:
        parser.error("--fake-pids must not be negative")
    pids = read_pids(args.pids_from) if args.pids_from else \
        [FAKE_PID_BASE + i for i in range(args.fake_pids)]

    text = json.dumps(build_lab(args.gpus, args.mig, pids, args.numa_nodes), indent=2) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        write_atomically(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
