"""`gpukeeper status`: attribution of real processes of real users on whole
GPUs and MIG instances, and the exact shape of `status --json`."""

import re
import socket

from conftest import (DRIVER_VERSION, GPU0_UUID, GPU1_UUID, MIB, MIG_A_UUID, MIG_B_UUID,
                      find_process, gpu_by_uuid, wait_for)

# The documented keys of `status --json` (docs/protocol.md) and the JSON types
# each may take. None stands for JSON null (a value NVML could not give).
TOP_KEYS = {
    "simulated": (bool,), "driver_version": (str,), "hostname": (str,),
    "sampled_at": (float, int), "nvml_available": (bool,), "message": (str, type(None)),
    "gpu_count": (int,), "gpus": (list,), "queue": (list,), "fence": (dict,),
}
GPU_KEYS = {
    "index": (int,), "uuid": (str,), "name": (str,), "pci_bus_id": (str,),
    "numa_node": (int, type(None)),
    "memory_total_bytes": (int, type(None)), "memory_used_bytes": (int, type(None)),
    "utilization_gpu": (int, type(None)), "temperature_c": (int, type(None)),
    "power_w": (float, int, type(None)), "healthy": (bool,), "error": (str, type(None)),
    "mig_enabled": (bool,), "instances": (list,), "processes": (list,),
    "lease": (dict, type(None)), "drained": (bool,), "mig": (dict, type(None)), "processes_incomplete": (bool,),
    "shared": (dict, type(None)),
}
INSTANCE_KEYS = {
    "uuid": (str,), "profile": (str,), "gpu_instance_id": (int,),
    "compute_instance_id": (int,), "memory_total_bytes": (int, type(None)),
    "memory_used_bytes": (int, type(None)), "lease": (dict, type(None)), "drained": (bool,),
}
PROCESS_KEYS = {
    "pid": (int,), "uid": (int, type(None)), "user": (str, type(None)),
    "command": (str, type(None)), "memory_used_bytes": (int, type(None)),
    "instance_uuid": (str, type(None)), "vanished": (bool,), "zombie": (bool,),
    "exited": (bool,), "leased": (bool,),
    "violation": (dict, type(None)),
}


def check_shape(obj, keys, where):
    assert set(obj) == set(keys), (f"{where}: keys differ from the documented ones: "
                                   f"missing {set(keys) - set(obj)}, extra {set(obj) - set(keys)}")
    for k, types in keys.items():
        v = obj[k]
        # bool is an int in Python: an int field must not be a JSON true/false.
        ok = isinstance(v, types) and not (isinstance(v, bool) and bool not in types)
        assert ok, f"{where}.{k} = {v!r} is not of type {types}"


def start_workload(lab, spawn, users):
    """Real processes of alice and bob, declared in the lab on a whole GPU and
    on both MIG instances. Returns {pid: (user, tag, gpu uuid, instance uuid, MiB)}."""
    alice, bob = users["alice"], users["bob"]
    plan = [
        (alice, "train-alice-gpu0", GPU0_UUID, None, None, 5120),
        (bob, "train-bob-gpu0", GPU0_UUID, None, None, 2048),
        (alice, "train-alice-mig-a", GPU1_UUID, MIG_A_UUID, (1, 0), 1024),
        (bob, "train-bob-mig-b", GPU1_UUID, MIG_B_UUID, (2, 0), 3072),
    ]
    expected = {}
    for user, tag, gpu, instance, gi_ci, mib in plan:
        p = spawn(user, tag)
        gi, ci = gi_ci if gi_ci else (None, None)
        lab.add_process(gpu, p.pid, mib, gi=gi, ci=ci)
        expected[p.pid] = (user, tag, gpu, instance, mib)
    lab.write()
    return expected


def test_status_attributes_processes_to_real_users(daemon, lab, spawn, users):
    expected = start_workload(lab, spawn, users)

    def all_listed():
        s = daemon.status(user=users["alice"])
        return s if all(find_process(s, pid)[1] for pid in expected) else None

    status = wait_for(all_listed, what="every lab process to appear in status")
    for pid, (user, tag, gpu_uuid, instance_uuid, mib) in expected.items():
        gpu, proc = find_process(status, pid)
        assert gpu["uuid"] == gpu_uuid, f"pid {pid} ({tag}) listed on {gpu['uuid']}"
        assert proc["uid"] == user.uid, f"{tag}: {proc}"
        assert proc["user"] == user.name, f"{tag}: {proc}"
        assert proc["command"] is not None and tag in proc["command"], f"{tag}: {proc}"
        assert proc["command"].startswith("/usr/bin/python3 -c "), f"{tag}: {proc}"
        assert proc["instance_uuid"] == instance_uuid, f"{tag}: {proc}"
        assert proc["memory_used_bytes"] == mib * MIB, f"{tag}: {proc}"
        assert proc["vanished"] is False, f"{tag}: {proc}"


def test_status_as_bob_sees_the_same(daemon, lab, spawn, users):
    expected = start_workload(lab, spawn, users)
    wait_for(lambda: all(find_process(daemon.status(), pid)[1] for pid in expected),
             what="every lab process to appear in status")
    as_bob = daemon.status(user=users["bob"])
    for pid, (user, tag, _, _, _) in expected.items():
        assert find_process(as_bob, pid)[1]["user"] == user.name, tag


def test_status_json_shape_and_simulator_facts(daemon, lab, spawn, users):
    start_workload(lab, spawn, users)
    status = wait_for(lambda: (s := daemon.status()) and len(s["gpus"][0]["processes"]) == 2 and s,
                      what="the workload to show")
    check_shape(status, TOP_KEYS, "status")
    assert status["simulated"] is True
    assert status["nvml_available"] is True
    assert status["driver_version"] == DRIVER_VERSION
    assert status["hostname"] == socket.gethostname()
    assert len(status["gpus"]) == 2 and status["gpu_count"] == 2
    for i, g in enumerate(status["gpus"]):
        check_shape(g, GPU_KEYS, f"gpus[{i}]")
        assert g["index"] == i
        assert g["healthy"] is True and g["error"] is None, g
        for j, inst in enumerate(g["instances"]):
            check_shape(inst, INSTANCE_KEYS, f"gpus[{i}].instances[{j}]")
        for j, p in enumerate(g["processes"]):
            check_shape(p, PROCESS_KEYS, f"gpus[{i}].processes[{j}]")

    g0, g1 = gpu_by_uuid(status, GPU0_UUID), gpu_by_uuid(status, GPU1_UUID)
    assert g0["name"] == "NVIDIA A100-SXM4-80GB"
    assert g0["pci_bus_id"] == "00000000:07:00.0"
    assert g0["memory_total_bytes"] == 81920 * MIB
    assert g0["utilization_gpu"] == 40
    assert g0["temperature_c"] == 41
    assert g0["power_w"] == 123.0
    assert g0["mig_enabled"] is False and g0["instances"] == []

    assert g1["mig_enabled"] is True
    # NVML has no utilisation on MIG-enabled GPUs: unknown, not 0.
    assert g1["utilization_gpu"] is None
    instances = {i["uuid"]: i for i in g1["instances"]}
    assert set(instances) == {MIG_A_UUID, MIG_B_UUID}
    assert instances[MIG_A_UUID]["profile"] == "3g.40gb"
    assert instances[MIG_A_UUID]["gpu_instance_id"] == 1
    assert instances[MIG_B_UUID]["gpu_instance_id"] == 2
    assert instances[MIG_A_UUID]["compute_instance_id"] == 0
    assert instances[MIG_A_UUID]["memory_total_bytes"] == 40192 * MIB


def test_human_status_names_users(daemon, lab, spawn, users):
    expected = start_workload(lab, spawn, users)
    wait_for(lambda: all(find_process(daemon.status(), pid)[1] for pid in expected),
             what="every lab process to appear in status")
    r = daemon.cli("status", user=users["alice"])
    assert r.returncode == 0, r.stderr
    assert "SIMULATED" in r.stdout, r.stdout
    lines = r.stdout.splitlines()
    for pid, (user, tag, _, _, _) in expected.items():
        line = next((ln for ln in lines if re.search(rf"\b{pid}\b", ln)), None)
        assert line is not None, f"pid {pid} ({tag}) not shown:\n{r.stdout}"
        # The table may shorten long names to fit the terminal width.
        assert user.name[:9] in line, f"{tag}: {line!r}"
