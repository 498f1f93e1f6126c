"""GET /metrics on the daemon's HTTP listener, against real tools: a lab with
a MIG-enabled GPU, a lease and a violation is scraped; Debian's `promtool
check metrics` must parse the scrape; a real Prometheus server (Debian's
`prometheus`) scrapes the daemon every second and its HTTP API must return
DCGM_FI_DEV_FB_USED for every simulated GPU and gpukeeper_ series naming the
lease holder; the token, 404 and 405 rules hold.

promtool lints dcgm-exporter's own names (DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION
is a counter without `_total`; the label `modelName` is camelCase). Those
names are kept on purpose, so existing DCGM dashboards work unchanged: the
test allows exactly those lint findings on DCGM_ series and requires the
gpukeeper_ series to pass promtool with no finding at all."""

import http.client
import json
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request

import pytest

from conftest import (GPU0_UUID, GPU1_UUID, MIG_A_UUID, TEST_POLICY, free_port, wait_for)

PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"
TOKEN = "t0ken-for.tests"
# A command line that needs every escape of the text format.
WEIRD_TAG = 'tag "quoted" back\\slash\nnewline'


def require_tool(path):
    # Not a skip: the tools are part of the test dependencies (install-deps.sh).
    assert shutil.which(path), f"{path} is missing: apt-get install -y prometheus"


def ok(r):
    assert r.returncode == 0, f"{r.args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def get(port, path="/metrics", method="GET", token=TOKEN):
    """(status, headers, body) of one request to the daemon."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read().decode()
    finally:
        conn.close()


def scrape(port):
    status, headers, body = get(port)
    assert status == 200, f"/metrics answered {status}: {body}"
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return body


@pytest.fixture
def lab_daemon(daemon_factory, lab, users, spawn):
    """A daemon over BASE_LAB in observe mode with a token and per-process
    series; alice leases GPU0 and runs a process there, bob's process (with a
    command line that needs escaping) on GPU0 is a violation."""
    alice, bob = users["alice"], users["bob"]
    port = free_port()
    d = daemon_factory(policy=dict(TEST_POLICY), enforcement={"mode": "observe"})
    d.sections["http"] = {"listen": f"127.0.0.1:{port}", "token": TOKEN,
                          "per_process_metrics": True}
    lab.write()
    d.start()
    d.port = port
    wait_for(lambda: len(d.status()["gpus"]) == len(lab.data["gpus"]),
             what="the first snapshot with every GPU")
    ok(d.cli("lease", "acquire", "--gpu", GPU0_UUID, user=alice))
    mine = spawn(alice, "alice-metrics-job")
    theirs = spawn(bob, WEIRD_TAG)
    lab.add_process(GPU0_UUID, mine.pid, 2048)
    lab.add_process(GPU0_UUID, theirs.pid, 1024)
    lab.write()
    wait_for(lambda: "\ngpukeeper_violations_total 1\n" in scrape(port), timeout=10,
             what="the violation on /metrics")
    d.alice, d.bob = alice, bob
    return d


def test_scrape_is_valid_and_complete(lab_daemon):
    require_tool(PROMTOOL)
    d = lab_daemon
    body = scrape(d.port)
    alice, bob = d.alice.name, d.bob.name

    # Device series for both GPUs; the MIG GPU's memory per instance.
    assert f'DCGM_FI_DEV_FB_USED{{gpu="0",UUID="{GPU0_UUID}"' in body
    assert f'UUID="{GPU1_UUID}"' in body and 'GPU_I_PROFILE="3g.40gb",GPU_I_ID="1"' in body
    assert f'DCGM_FI_DEV_GPU_UTIL{{gpu="1",UUID="{GPU1_UUID}"' not in body
    assert (f'gpukeeper_device_leased{{uuid="{GPU0_UUID}",gpu="0",holder="{alice}",'
            f'kind="manual"}} 1') in body
    assert f'gpukeeper_device_leased{{uuid="{MIG_A_UUID}",gpu="1",holder="",kind=""}} 0' in body
    assert "\ngpukeeper_leases_active 1\n" in body
    assert f'\ngpukeeper_user_leased_devices{{user="{alice}"}} 1\n' in body
    assert f'\ngpukeeper_user_gpu_memory_used_bytes{{user="{bob}"}} {1024 * 2**20}\n' in body
    escaped = 'tag \\"quoted\\" back\\\\slash\\nnewline'
    assert f'user="{bob}",command="' in body and escaped in body

    # promtool must parse all of it (exit 1 is a parse error, 3 lint findings).
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True,
                       text=True, timeout=60)
    findings = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
    assert r.returncode in (0, 3), f"promtool failed ({r.returncode}):\n{r.stdout}{r.stderr}"
    allowed = ('counter metrics should have "_total" suffix',
               "label names should be written in 'snake_case' not 'camelCase'")
    for ln in findings:
        assert ln.startswith("DCGM_FI_DEV_") and ln.endswith(allowed), \
            f"promtool finding on a series we name ourselves: {ln}"

    # gpukeeper's own families alone: no finding at all.
    ours = "".join(ln + "\n" for ln in body.splitlines()
                   if (ln.startswith("# ") and ln.split()[2].startswith("gpukeeper_"))
                   or ln.startswith("gpukeeper_"))
    assert "gpukeeper_build_info" in ours
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=ours, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, f"promtool on gpukeeper_ series:\n{r.stdout}{r.stderr}"


def test_token_paths_and_methods(lab_daemon):
    port = lab_daemon.port
    assert get(port, token=None)[0] == 401
    assert get(port, token="wrong")[0] == 401
    assert get(port, token=TOKEN + "x")[0] == 401
    status, headers, _ = get(port, token=None)
    assert headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert get(port, path="/nothing")[0] == 404
    assert get(port, path="/metrics/x")[0] == 404
    status, headers, _ = get(port, method="POST")
    assert status == 405 and "GET" in headers.get("Allow", "")
    assert get(port, method="HEAD")[0] == 200
    # The token never reaches the log.
    assert TOKEN not in lab_daemon.log()


def query(prom_port, expr):
    url = (f"http://127.0.0.1:{prom_port}/api/v1/query?"
           + urllib.parse.urlencode({"query": expr}))
    with urllib.request.urlopen(url, timeout=10) as resp:
        doc = json.load(resp)
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def test_real_prometheus_scrapes_the_daemon(lab_daemon, tmp_path):
    require_tool(PROMETHEUS)
    d = lab_daemon
    prom_port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: gpukeeper\n"
        "    authorization:\n      type: Bearer\n"
        f"      credentials: {TOKEN}\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{d.port}']\n")
    log = open(tmp_path / "prometheus.log", "wb")
    prom = subprocess.Popen([PROMETHEUS, f"--config.file={config}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        def every_gpu():
            uuids = {s["metric"].get("UUID") for s in query(prom_port, "DCGM_FI_DEV_FB_USED")}
            return uuids >= {GPU0_UUID, GPU1_UUID}

        def holder_named():
            expr = f'gpukeeper_device_leased{{holder="{d.alice.name}"}} == 1'
            return [s for s in query(prom_port, expr)
                    if s["metric"].get("uuid") == GPU0_UUID]

        def up():
            return [s for s in query(prom_port, 'up{job="gpukeeper"}') if s["value"][1] == "1"]

        def check(predicate, what):
            try:
                return wait_for(predicate, timeout=60, interval=0.5, what=what)
            except BaseException:
                log.flush()
                print((tmp_path / "prometheus.log").read_text(errors="replace")[-4000:])
                raise

        check(up, "Prometheus to scrape the daemon successfully")
        check(every_gpu, "DCGM_FI_DEV_FB_USED for every simulated GPU in Prometheus")
        check(holder_named, "gpukeeper_device_leased with the holder's name in Prometheus")
        assert query(prom_port, f'gpukeeper_user_leased_devices{{user="{d.alice.name}"}}')
    finally:
        prom.terminate()
        try:
            prom.wait(timeout=20)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        log.close()


def test_reload_applies_token_and_keeps_the_listener(lab_daemon):
    d = lab_daemon
    new_port = free_port()
    d.sections["http"] = {"listen": f"127.0.0.1:{new_port}", "token": "next-token",
                          "per_process_metrics": False}
    d.write_config()
    d.send_signal(signal.SIGHUP)
    wait_for(lambda: "http.listen changed" in d.log(), what="the reload warning")
    # Same port until a restart; the new token and options at once.
    wait_for(lambda: get(d.port, token="next-token")[0] == 200, what="the new token")
    assert get(d.port)[0] == 401
    assert "gpukeeper_process_" not in get(d.port, token="next-token")[2]
    with pytest.raises(OSError):
        get(new_port, token="next-token")
    assert "next-token" not in d.log()
