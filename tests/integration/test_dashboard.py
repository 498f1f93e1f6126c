"""The dashboard (GET /) in a real browser: headless Chromium (Debian's
`chromium`) loads the page from a daemon with a token, a lease on a whole
GPU, a lease on a MIG instance, a queued request and an unleased process,
runs its script, and the rendered DOM must show every GPU and MIG card, the
holders, the queue and the unleased process (its command, which looks like
HTML, as text). A screenshot is saved as $GK_BUILD_DIR/dashboard.png for CI.
The JSON API's parameter checks and the token rules are checked over HTTP."""

import http.client
import json
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import BUILD, GPU0_UUID, GPU1_UUID, MIG_A_UUID, MIG_B_UUID, free_port, \
    start_leasing_daemon, wait_for, wait_queue_len

TOKEN = "dash-t0ken.for_tests"
# A command line that would be markup if the page used innerHTML.
HTML_TAG = "<img src=x onerror=alert(1)><b>bold</b>"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def get(port, path, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read().decode()
    finally:
        conn.close()


def chromium(*args, timeout=30):
    """Run headless Chromium with a throwaway profile; returns stdout."""
    with tempfile.TemporaryDirectory(prefix="gk-chromium-") as profile:
        r = subprocess.run([CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox",
                            "--no-first-run", "--disable-extensions", "--disable-dev-shm-usage",
                            f"--user-data-dir={profile}", *args],
                           capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


@pytest.fixture
def dash_daemon(daemon_factory, lab, users, spawn):
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/install-deps.sh)")
    alice, bob = users["alice"], users["bob"]
    port = free_port()
    d = start_leasing_daemon(daemon_factory, lab, enforcement={"mode": "observe"},
                             http={"listen": f"127.0.0.1:{port}", "token": TOKEN})
    d.port = port
    assert d.cli("lease", "acquire", "--gpu", "0", "--time", "1h", user=alice).returncode == 0
    assert d.cli("lease", "acquire", "--mig", "3g.40gb", user=bob).returncode == 0
    theirs = spawn(bob, HTML_TAG)
    lab.add_process(GPU0_UUID, theirs.pid, 2048)
    lab.write()
    d.cli_popen("run", "--gpus", "1", "--", "sleep", "60", user=bob)
    wait_queue_len(d, 1)
    wait_for(lambda: any(p["pid"] == theirs.pid
                         for g in d.status()["gpus"] for p in g["processes"]),
             what="bob's unleased process in the snapshot")
    d.alice, d.bob, d.theirs = alice, bob, theirs
    return d


def test_dashboard_renders_in_chromium(dash_daemon):
    d = dash_daemon
    url = f"http://127.0.0.1:{d.port}/?token={TOKEN}"
    dom = chromium("--virtual-time-budget=5000", "--dump-dom", url)
    (BUILD / "dashboard.html").write_text(dom)  # what was checked, for the CI artifact too
    error = re.search(r'<span id="error">([^<]*)</span>', dom)
    assert error and not error.group(1), f"the page reported: {error and error.group(1)}"

    # Every GPU and MIG instance has its card.
    cards = re.findall(r'<div class="card[^"]*" data-uuid="([^"]*)"', dom)
    for uuid in (GPU0_UUID, GPU1_UUID, MIG_A_UUID, MIG_B_UUID):
        assert uuid in cards, (uuid, cards)
    holders = re.findall(r'<b class="holder-name">([^<]*)</b>', dom)
    assert sorted(holders) == sorted([d.alice.name, d.bob.name]), holders
    assert re.findall(r'<span class="queue-user">([^<]*)</span>', dom) == [d.bob.name]
    # The unleased process is shown, red, with its command as text.
    unleased = re.findall(r'<div class="bad unleased-process">([^<]*)</div>', dom)
    assert len(unleased) == 1 and str(d.theirs.pid) in unleased[0], unleased
    assert "&lt;img src=x" in unleased[0] and "<img" not in dom
    assert 'class="card gpu unleased"' in dom
    # The slower parts ran too: usage cards and a chart per GPU.
    assert dom.count("<svg") == 2, dom.count("<svg")
    assert "last 30 days" in dom

    shot = BUILD / "dashboard.png"
    shot.unlink(missing_ok=True)
    chromium("--virtual-time-budget=5000", f"--screenshot={shot}", "--window-size=1280,900",
             "--hide-scrollbars", url)
    assert shot.stat().st_size > 10000


def test_dashboard_http_rules(dash_daemon):
    port = dash_daemon.port
    auth = {"Authorization": f"Bearer {TOKEN}"}
    # Every route needs the token: header, cookie, or ?token= on the page.
    for path in ("/", "/api/status", "/api/usage?days=1", f"/api/history?gpu={GPU0_UUID}&hours=1"):
        assert get(port, path)[0] == 401, path
        assert get(port, path, {"Cookie": "gk_token=wrong"})[0] == 401, path
        assert get(port, path, auth)[0] == 200, path
        assert get(port, path, {"Cookie": f"gk_token={TOKEN}"})[0] == 200, path
    assert get(port, "/?token=wrong")[0] == 401
    status, headers, body = get(port, f"/?token={TOKEN}")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "HttpOnly" in headers["Set-Cookie"] and f"gk_token={TOKEN}" in headers["Set-Cookie"]
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    # The token is no query parameter of the API.
    assert get(port, f"/api/status?token={TOKEN}")[0] == 401

    status, headers, body = get(port, "/api/status", auth)
    doc = json.loads(body)
    assert headers["Content-Type"] == "application/json"
    assert {"gpus", "queue", "violations", "alerts", "hostname"} <= doc.keys()
    assert [v["pid"] for v in doc["violations"]] == [dash_daemon.theirs.pid]

    for bad in ("/api/usage?days=0", "/api/usage?days=91", "/api/usage?days=x",
                "/api/history?hours=1", f"/api/history?gpu={GPU0_UUID}&hours=169"):
        assert get(port, bad, auth)[0] == 400, bad
    # Defaults (docs/http-api.md, issue 17): 7 days of usage, 24 hours of
    # history; without gpu= the answer says what is needed.
    assert json.loads(get(port, "/api/usage", auth)[2])["days"] == 7
    doc = json.loads(get(port, f"/api/history?gpu={GPU0_UUID}", auth)[2])
    assert doc["uuid"] == GPU0_UUID and doc["hours"] == 24, doc
    status, _, text = get(port, "/api/history", auth)
    assert status == 400 and "gpu=UUID" in text and "http-api.md" in text, text
    assert get(port, "/api/history?gpu=GPU-nope&hours=1", auth)[0] == 404
    assert get(port, "/api/nothing", auth)[0] == 404
    doc = json.loads(get(port, "/api/usage?days=90", auth)[2])
    assert doc["days"] == 90 and isinstance(doc["users"], list)
    doc = json.loads(get(port, f"/api/history?gpu={MIG_A_UUID}&hours=168", auth)[2])
    assert doc["uuid"] == MIG_A_UUID and isinstance(doc["points"], list)
