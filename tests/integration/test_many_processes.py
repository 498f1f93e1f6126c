"""More processes on a GPU than gpukeeper lists (issue 10 item 14): NVML
reports 4,100 processes on GPU0. The first 4,096 are kept, the GPU's process
list is marked incomplete (status, the gpukeeper_gpu_processes_incomplete
metric) and the GPU is not granted while it is; a list that fits again
clears the mark. It used to read as no processes at all on a healthy GPU."""

import http.client

from conftest import GPU0_UUID, start_leasing_daemon, wait_for
from enforcefixtures import free_port

LISTED_MAX = 4096
GONE_PID = 4100000  # above any pid this machine hands out


def scrape(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_more_than_4096_processes_keeps_what_fits_and_refuses_grants(daemon_factory, lab,
                                                                      users):
    alice = users["alice"]
    port = free_port()
    d = start_leasing_daemon(daemon_factory, lab, http={"listen": f"127.0.0.1:{port}"})
    gpu0 = lab.gpu(GPU0_UUID)
    gpu0["processes"] = [{"pid": GONE_PID + i, "used_mib": 1} for i in range(LISTED_MAX + 4)]
    lab.write()
    d.tick(2)

    status = d.status()
    g = next(g for g in status["gpus"] if g["uuid"] == GPU0_UUID)
    assert g["processes_incomplete"] is True, g
    assert len(g["processes"]) == LISTED_MAX
    code, body = scrape(port)
    assert code == 200
    assert f'gpukeeper_gpu_processes_incomplete{{uuid="{GPU0_UUID}",gpu="0"}} 1' in body, body

    r = d.cli("lease", "acquire", "--gpu", GPU0_UUID, "--no-wait", user=alice)
    assert r.returncode != 0, r.stdout
    assert not d.leases()

    gpu0["processes"] = []
    lab.write()
    d.tick(2)
    wait_for(lambda: not next(g for g in d.status()["gpus"]
                              if g["uuid"] == GPU0_UUID)["processes_incomplete"],
             what="the mark to clear")
    r = d.cli("lease", "acquire", "--gpu", GPU0_UUID, "--no-wait", user=alice)
    assert r.returncode == 0, r.stderr
