"""NVIDIA's Grafana dashboard for dcgm-exporter (grafana.com 12239) against
gpukeeper: a real Prometheus (Debian's `prometheus`) scrapes the daemon, and
every PromQL query of the dashboard (fixtures/dcgm-exporter-dashboard-12239.json,
copied from NVIDIA/dcgm-exporter's grafana/ JSON) returns data, with the
template variables filled in as Grafana does for "All" (label_values() of
the series API, joined into a regex). The lab has a Hopper GPU (GPM: the
profiling series) and an Ampere GPU (no GPM: its profiling series are
absent, not 0); SM and memory clocks come from nvmlDeviceGetClockInfo;
`device` is nvidia<NVML index>, not the /dev minor; the driver version is a
label of every series (issue 17)."""

import json
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

from conftest import GPU0_UUID, DRIVER_VERSION, TEST_POLICY, wait_for
from test_metrics import PROMETHEUS, TOKEN, free_port, query, require_tool, scrape

FIXTURE = Path(__file__).parent / "fixtures" / "dcgm-exporter-dashboard-12239.json"
H100_UUID = "GPU-0a1b2c3d-0000-4000-8000-0000000000a1"


def series_label_values(prom_port, metric, label):
    url = (f"http://127.0.0.1:{prom_port}/api/v1/series?"
           + urllib.parse.urlencode({"match[]": metric}))
    with urllib.request.urlopen(url, timeout=10) as resp:
        doc = json.load(resp)
    assert doc["status"] == "success", doc
    return sorted({s[label] for s in doc["data"] if label in s})


def test_every_query_of_the_dcgm_dashboard_returns_data(daemon_factory, lab, tmp_path):
    require_tool(PROMETHEUS)
    dashboard = json.loads(FIXTURE.read_text())
    # GPU 0 (BASE_LAB's A100) with clocks, no GPM; /dev/nvidia7 but NVML index 0.
    lab.gpu(GPU0_UUID).update(minor=7, clock_sm_mhz=1410, clock_mem_mhz=1593)
    # A Hopper GPU with GPM at index 2 (GPU 1 is BASE_LAB's MIG-enabled A100).
    lab.data["gpus"].append({
        "name": "NVIDIA H100 80GB HBM3", "uuid": H100_UUID, "pci_bus_id": "00000000:1A:00.0",
        "minor": 2, "memory_total_mib": 81559, "utilization_gpu": 93, "utilization_memory": 40,
        "temperature_c": 52, "power_mw": 512000, "energy_mj": 5000, "lost": False, "xid": 0,
        "clock_sm_mhz": 1980, "clock_mem_mhz": 2619,
        "gpm": {"graphics_util": 95, "sm_util": 90, "sm_occupancy": 60, "tensor_util": 70,
                "dram_bw_util": 45},
        "processes": []})
    lab.write()
    port = free_port()
    d = daemon_factory(policy=dict(TEST_POLICY))
    d.sections["http"] = {"listen": f"127.0.0.1:{port}", "token": TOKEN}
    d.start()

    # On the daemon's own scrape first: what dcgm-exporter would write.
    body = wait_for(lambda: (lambda b: b if "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{" in b else None)(
        scrape(port)), timeout=10, what="the GPM series (after two samples)")
    lines = body.splitlines()
    tensor = [x for x in lines if x.startswith("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{")]
    assert len(tensor) == 1 and f'UUID="{H100_UUID}"' in tensor[0], tensor
    assert tensor[0].endswith(" 0.700000"), tensor
    assert 'device="nvidia2"' in tensor[0], tensor
    assert f'DCGM_FI_DRIVER_VERSION="{DRIVER_VERSION}"' in tensor[0], tensor
    sm0 = [x for x in lines if x.startswith("DCGM_FI_DEV_SM_CLOCK{") and f'"{GPU0_UUID}"' in x]
    assert len(sm0) == 1 and sm0[0].endswith(" 1410"), sm0
    assert 'device="nvidia0"' in sm0[0], sm0  # the index, not /dev/nvidia7
    assert any(x.startswith("DCGM_FI_DEV_MEM_CLOCK{") and x.endswith(" 2619") for x in lines)
    # Absent, not zero, where there is no GPM.
    assert not [x for x in lines if x.startswith("DCGM_FI_PROF_") and H100_UUID not in x]

    prom_port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: gpukeeper\n"
        "    authorization:\n      type: Bearer\n"
        f"      credentials: {TOKEN}\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{port}']\n")
    log = open(tmp_path / "prometheus.log", "wb")
    prom = subprocess.Popen([PROMETHEUS, f"--config.file={config}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        def variable(name):
            metric, label = dashboard["variables"][name][len("label_values("):-1].split(", ")
            return series_label_values(prom_port, metric, label)

        def variables():
            values = {name: variable(name) for name in dashboard["variables"]}
            return values if all(values.values()) and len(values["gpu"]) == 3 else None

        def fill(expr, values):
            # Grafana's "All" of a multi-value variable: a regex of every value.
            for name, vals in values.items():
                expr = expr.replace(f"${name}", "(" + "|".join(vals) + ")")
            return expr

        try:
            values = wait_for(variables, timeout=60, interval=0.5,
                              what="the dashboard's template variables")
            assert values["gpu"] == ["0", "1", "2"], values
            for title, expr in dashboard["panels"].items():
                filled = fill(expr, values)
                result = wait_for(lambda: query(prom_port, filled), timeout=30, interval=0.5,
                                  what=f"data for the panel {title!r}: {filled}")
                assert result, title
                if title == "GPU SM Clocks":
                    by_gpu = {s["metric"]["gpu"]: float(s["value"][1]) for s in result}
                    assert by_gpu == {"0": 1410e6, "2": 1980e6}, by_gpu
                if title == "Tensor Core Utilization":
                    assert [s["metric"]["gpu"] for s in result] == ["2"], result
                    assert float(result[0]["value"][1]) == 0.7, result
        except BaseException:
            log.flush()
            print((tmp_path / "prometheus.log").read_text(errors="replace")[-4000:])
            raise
    finally:
        prom.terminate()
        try:
            prom.wait(timeout=20)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        log.close()
