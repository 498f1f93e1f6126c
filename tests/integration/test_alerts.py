"""Alert delivery to real receivers on 127.0.0.1: the generic webhook, the
DingTalk robot (text message, signed with the optional secret) and Slack
shapes, each sink with its own event filter; email over SMTP with AUTH
(Debian's aiosmtpd); GPU conditions (memory above the fraction for
memory_for, temperature, a lost GPU) and their recovery; a sink that
refuses connections, and one that never answers, neither delays
enforcement, and the refused one is retried until it is delivered; the
same condition is not sent again before repeat_after. Secrets never reach
the daemon's log."""

import base64
import email.utils
import hashlib
import hmac
import json
import re
import signal
import socket
import time
from urllib.parse import quote

import pytest

from conftest import GPU0_UUID, start_leasing_daemon, wait_for
from enforcefixtures import (audit, free_port, hooks, silent_port, smtp,  # noqa: F401 (fixtures)
                             victims, wait_violation, HookServer)

DING_SECRET = "SEC0123456789abcdef0123456789abcdef"
DING_TOKEN = "tok3n0123456789"
SMTP_PASSWORD = "s3cret-pw-417"

GRACE = 2.0
LATE = 2.0
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def ok(r):
    assert r.returncode == 0, f"{r.args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def test_webhook_dingtalk_slack_formats(daemon_factory, lab, users, victims, hooks):
    bob = users["bob"]
    hook = hooks()
    d = start_leasing_daemon(
        daemon_factory, lab,
        enforcement={"mode": "observe"},
        alerts={"sinks": [
            {"name": "generic", "type": "webhook", "url": hook.url("/hook")},
            {"name": "ding", "type": "dingtalk",
             "url": hook.url(f"/ding?access_token={DING_TOKEN}"), "secret": DING_SECRET},
            {"name": "chat", "type": "slack", "url": hook.url("/slack"),
             "events": ["violation"]},
        ]})

    # "daemon" (started) goes to every sink that takes all events.
    start = hook.wait(lambda: hook.bodies("/hook", event="daemon"), what="the start alert")[0]
    assert set(start) == {"event", "severity", "status", "subject", "text", "host", "time",
                          "key", "details"}, start
    assert start["severity"] == "info" and start["status"] == "firing", start
    assert start["host"] == socket.gethostname(), start
    assert RFC3339.match(start["time"]), start
    assert "started" in start["subject"], start
    assert start["details"] == {}, start
    req = hook.received("/hook")[0]
    assert req["headers"]["Content-Type"].startswith("application/json"), req["headers"]

    ding = hook.wait(lambda: hook.received("/ding"), what="the DingTalk message")[0]
    assert ding["body"] == {"msgtype": "text", "text": {"content": ding["body"]["text"]["content"]}}
    assert "started" in ding["body"]["text"]["content"], ding["body"]
    # Signed as DingTalk documents: timestamp in ms, sign = URL-encoded
    # base64(HMAC-SHA256(key=secret, "timestamp\nsecret")); the token stays.
    q = ding["query"]
    assert q["access_token"] == [DING_TOKEN], q
    ts = int(q["timestamp"][0])
    assert abs(ts / 1000 - ding["at"]) < 60, (ts, ding["at"])
    want = base64.b64encode(hmac.new(DING_SECRET.encode(), f"{ts}\n{DING_SECRET}".encode(),
                                     hashlib.sha256).digest()).decode()
    assert q["sign"] == [want], (q, want)
    assert f"sign={quote(want, safe='')}" in ding["raw_query"], ding["raw_query"]

    # A violation goes to all three; the Slack sink's filter takes only that.
    job = victims(d, bob, "bob-alerted")
    lab.add_process(GPU0_UUID, job.pid, 1024)
    lab.write()
    wait_violation(d, job.pid)
    body = hook.wait(lambda: hook.bodies("/hook", event="violation"), what="the webhook")[0]
    assert body["severity"] == "warning" and body["details"]["pid"] == job.pid, body
    assert body["details"]["user"] == bob.name and body["details"]["device_uuid"] == GPU0_UUID
    slack = hook.wait(lambda: hook.received("/slack"), what="the Slack message")
    assert len(slack) == 1, [s["body"] for s in slack]
    assert set(slack[0]["body"]) == {"text"}, slack[0]["body"]
    assert str(job.pid) in slack[0]["body"]["text"], slack[0]["body"]
    hook.wait(lambda: any(str(job.pid) in r["body"]["text"]["content"]
                          for r in hook.received("/ding")), what="the DingTalk violation")
    # Delivery is recorded, per sink, without URLs or secrets.
    sent = wait_for(lambda: len(audit(d, "alert.sent")) >= 5 and audit(d, "alert.sent"),
                    what="5 deliveries in the audit trail")
    sinks = {json.loads(a["detail"])["sink"] for a in sent}
    assert sinks == {"generic", "ding", "chat"}, sent
    everything = d.log() + json.dumps(d.query("SELECT * FROM audit"))
    assert DING_SECRET not in everything and DING_TOKEN not in everything


# aiosmtpd warns that AUTH without TLS is unsafe: on loopback, for a test, it is fine.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_email_over_smtp_with_auth(daemon_factory, lab, smtp):
    server = smtp(login="gkalerts", password=SMTP_PASSWORD)
    d = start_leasing_daemon(
        daemon_factory, lab,
        alerts={"sinks": [{"name": "mail", "type": "email",
                           "smtp_url": f"smtp://127.0.0.1:{server.port}",
                           "username": "gkalerts", "password": SMTP_PASSWORD,
                           "from": "gpukeeper@gpu-node.example",
                           "to": ["admin@lab.example", "ops@lab.example"],
                           "events": ["daemon"]}]})
    wait_for(lambda: server.messages, timeout=15, what="the email")
    mail_from, rcpt, msg = server.messages[0]
    assert server.auth_attempts == [("gkalerts", SMTP_PASSWORD)], server.auth_attempts
    assert mail_from == "gpukeeper@gpu-node.example", mail_from
    assert sorted(rcpt) == ["admin@lab.example", "ops@lab.example"], rcpt
    assert "gpukeeper@gpu-node.example" in msg["From"], msg["From"]
    assert "admin@lab.example" in msg["To"] and "ops@lab.example" in msg["To"], msg["To"]
    assert "started" in msg["Subject"], msg["Subject"]
    assert abs(email.utils.parsedate_to_datetime(msg["Date"]).timestamp() - time.time()) < 60
    assert re.match(r"^<[^@<>\s]+@[^@<>\s]+>$", msg["Message-ID"]), msg["Message-ID"]
    body = msg.get_payload(decode=True).decode()
    assert "started" in body, body
    assert len(server.messages) == 1
    sent = wait_for(lambda: audit(d, "alert.sent"), what="the delivery record")
    assert json.loads(sent[0]["detail"])["sink"] == "mail"
    assert SMTP_PASSWORD not in d.log()


def test_gpu_conditions_alert_and_recover(daemon_factory, lab, hooks):
    hook = hooks()
    d = start_leasing_daemon(
        daemon_factory, lab,
        alerts={"memory_fraction": 0.9, "memory_for": "1s", "temperature_c": 80,
                "temperature_for": "0s",
                "sinks": [{"name": "ops", "type": "webhook", "url": hook.url("/hook"),
                           "events": ["memory", "temperature", "gpu_lost"]}]})
    # Memory above 90 % of GPU0's 80 GiB: alerted only after memory_for.
    lab.gpu(GPU0_UUID)["memory_used_mib"] = 80000
    lab.gpu(GPU0_UUID)["temperature_c"] = 91
    lab.write()
    written = time.time()
    hot = hook.wait(lambda: hook.bodies("/hook", event="temperature"), what="temperature")[0]
    assert hot["status"] == "firing" and hot["details"]["uuid"] == GPU0_UUID, hot
    assert "91" in hot["text"], hot
    mem = hook.wait(lambda: hook.bodies("/hook", event="memory"), what="the memory alert")[0]
    arrived = next(r["at"] for r in hook.received("/hook") if r["body"] is mem)
    assert arrived - written >= 1.0 - 0.1, "raised before memory_for"
    assert mem["details"]["uuid"] == GPU0_UUID and mem["details"]["gpu"] == 0, mem

    # It clears: one recovery each, marked resolved.
    lab.gpu(GPU0_UUID)["memory_used_mib"] = 1000
    lab.gpu(GPU0_UUID)["temperature_c"] = 40
    lab.write()
    hook.wait(lambda: len(hook.bodies("/hook", event="memory")) == 2 and
              len(hook.bodies("/hook", event="temperature")) == 2, what="the recoveries")
    for event in ("memory", "temperature"):
        rec = hook.bodies("/hook", event=event)[1]
        assert rec["status"] == "resolved" and rec["severity"] == "resolved", rec

    # A lost GPU is critical.
    lab.gpu(GPU0_UUID)["lost"] = True
    lab.write()
    lost = hook.wait(lambda: hook.bodies("/hook", event="gpu_lost"), what="gpu_lost")[0]
    assert lost["severity"] == "critical" and lost["details"]["uuid"] == GPU0_UUID, lost
    time.sleep(0.5)
    assert len(hook.bodies("/hook", event="memory")) == 2
    assert len(hook.bodies("/hook", event="gpu_lost")) == 1


def test_failing_sinks_do_not_delay_enforcement_and_are_retried(daemon_factory, lab, users,
                                                                victims, silent_port):
    bob = users["bob"]
    refused = free_port()
    events = ["violation", "process_stopped"]
    d = start_leasing_daemon(
        daemon_factory, lab,
        enforcement={"mode": "enforce", "grace": "2s", "kill_timeout": "1s"},
        alerts={"sinks": [
            {"name": "down", "type": "webhook", "url": f"http://127.0.0.1:{refused}/hook",
             "events": events},
            {"name": "mute", "type": "webhook", "url": f"http://127.0.0.1:{silent_port}/hook",
             "events": events, "timeout": "30s"},
        ]})
    job = victims(d, bob, "bob-unleased")
    lab.add_process(GPU0_UUID, job.pid, 1024)
    lab.write()
    rec = wait_violation(d, job.pid)

    # The SIGTERM is on time although one sink refuses and one hangs.
    job.proc.wait(timeout=GRACE + 10)
    terms = job.terms()
    assert len(terms) == 1, terms
    assert rec["detected_at"] + GRACE - 0.1 <= terms[0] <= rec["detected_at"] + GRACE + LATE, \
        (terms, rec)

    # The refused sink comes up: a retry delivers what was queued, in order.
    receiver = HookServer(refused)
    try:
        got = wait_for(lambda: len(receiver.bodies("/hook")) >= 2 and receiver.bodies("/hook"),
                       timeout=20, what="the retried deliveries")
        assert [b["event"] for b in got[:2]] == ["violation", "process_stopped"], got
        assert got[0]["details"]["pid"] == job.pid, got[0]
        # The body tells the whole story, not one word (issue 17, item 4).
        stopped = got[1]["text"]
        assert f"Process {job.pid}" in stopped and "without a lease" in stopped, stopped
        assert "SIGTERM" in stopped or "SIGKILL" in stopped, stopped
    finally:
        receiver.close()
    sent = wait_for(lambda: [json.loads(a["detail"]) for a in audit(d, "alert.sent")
                             if json.loads(a["detail"])["sink"] == "down"],
                    what="the delivery record")
    first = next(s for s in sent if s["event"] == "violation")
    assert first["attempts"] >= 2, sent


def test_repeated_condition_not_resent_before_repeat_after(daemon_factory, lab, hooks):
    """repeat_after runs on the daemon's clock, which the test clock
    (debug.clock) advances: no sleeps, no dependence on how fast the
    reloads go."""
    hook = hooks()
    d = start_leasing_daemon(
        daemon_factory, lab,
        alerts={"repeat_after": "1h",
                "sinks": [{"name": "ops", "type": "webhook", "url": hook.url("/hook"),
                           "events": ["daemon"]}]})
    # "started", then two reloads within repeat_after (30 and 59 minutes of
    # daemon time later): one condition ("the daemon's state"), one message.
    hook.wait(lambda: hook.bodies("/hook"), what="the start alert")
    for n, advance in ((1, 30 * 60), (2, 29 * 60)):
        d.clock(advance_sec=advance)
        d.send_signal(signal.SIGHUP)
        wait_for(lambda: len(audit(d, "config.reload")) == n, what=f"reload {n}")

    # Past repeat_after the same condition is sent again. A sink delivers in
    # order, so had either reload above queued a message it would come first.
    d.clock(advance_sec=60 + 1)
    d.send_signal(signal.SIGHUP)
    wait_for(lambda: len(audit(d, "config.reload")) == 3, what="reload 3")
    again = hook.wait(lambda: len(hook.bodies("/hook")) >= 2 and hook.bodies("/hook")[1],
                      what="the alert after repeat_after")
    assert again["event"] == "daemon" and "reload" in again["subject"], again
    assert len(hook.bodies("/hook")) == 2, hook.bodies("/hook")
