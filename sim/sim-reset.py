#!/usr/bin/env python3
"""Reset simulated GPUs the way `nvidia-smi -r` resets real ones.

A MIG mode change made through nvmlDeviceSetMigMode stays pending until the
GPU is reset, and a reset loses every GPU and compute instance (that is why
layouts must be re-applied after a reboot). This tool does exactly that to
the simulator's MIG state file (sim/README.md, "MIG management"): for each
chosen GPU that has a "mig" object in the lab, the pending mode becomes the
current one and the instances are gone. The file is replaced atomically.

  sim-reset.py --lab LAB [--state STATE] [GPU-UUID ...]   (no UUID: every GPU)
"""
import argparse
import json
import os
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lab", required=True, help="the lab file ($GPUKEEPER_SIM_LAB)")
    ap.add_argument("--state", help="the MIG state file (default: LAB.mig-state.json)")
    ap.add_argument("gpus", nargs="*", help="GPU UUIDs to reset (default: all)")
    args = ap.parse_args()
    state_path = args.state or args.lab + ".mig-state.json"
    with open(args.lab) as f:
        lab = json.load(f)
    try:
        with open(state_path) as f:
            state = json.load(f)
    except FileNotFoundError:
        state = {"gpus": {}}
    known = {g["uuid"]: g for g in lab["gpus"] if "mig" in g}
    for uuid in args.gpus:
        if uuid not in known:
            sys.exit(f"sim-reset: {uuid} is not a MIG-capable GPU of {args.lab}")
    for uuid, gpu in known.items():
        if args.gpus and uuid not in args.gpus:
            continue
        entry = state["gpus"].get(uuid)
        if entry is None:
            enabled = gpu["mig"].get("enabled", False)
            pending = gpu["mig"].get("pending", enabled)
        else:
            pending = entry.get("pending", entry.get("enabled", False))
        state["gpus"][uuid] = {"enabled": pending, "pending": pending,
                               "gpu_instances": [], "compute_instances": []}
    tmp = f"{state_path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=2, sort_keys=True)
        f.write("\n")
    os.rename(tmp, state_path)


if __name__ == "__main__":
    main()
