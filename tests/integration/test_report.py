"""Usage history and `gpukeeper report`: the daemon writes a history row per
device per tick; alice holds GPU0 busy (40 %
utilisation) and then idle (0 %); the report shows her leased time about
the time she held it, part of it busy, the idle share in between, and the
idle part counted as waste. --csv has one header, one row per user and a
TOTAL row, ten fields each."""

import csv
import io
import json

from conftest import GPU0_UUID, start_leasing_daemon

CSV_FIELDS = ["user", "uid", "leased_device_hours", "busy_device_hours", "idle_share",
              "memory_gib_hours", "leases", "queue_wait_mean_sec", "queue_wait_p95_sec",
              "violations"]


TICKS = 10
SLACK = 1.5  # seconds: the test's own real time between the ticks, at most


def ok(r):
    assert r.returncode == 0, f"{r.args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def test_report_busy_then_idle(daemon_factory, lab, users):
    """Driven by the daemon's clock seam (debug.clock/debug.tick), not by
    sleeps: periodic sampling is off (1 h), each tick is one second of the
    daemon's time later than the one before, so every sample stands for 1 s
    (plus the few ms the test itself takes) and the figures are exact."""
    alice = users["alice"]
    lab.gpu(GPU0_UUID)["utilization_gpu"] = 40
    d = start_leasing_daemon(daemon_factory, lab, sample_interval="1h")
    d.tick()
    ok(d.cli("lease", "acquire", "--gpu", GPU0_UUID, user=alice))
    for _ in range(TICKS):
        d.clock(advance_sec=1)
        d.tick()
    lab.gpu(GPU0_UUID)["utilization_gpu"] = 0
    lab.write()
    for _ in range(TICKS):
        d.clock(advance_sec=1)
        d.tick()

    # Every GPU and MIG instance is sampled: GPU0, GPU1 and its two instances.
    assert d.query("SELECT count(*) AS n FROM history_devices")[0]["n"] == 4
    assert d.query("SELECT count(*) AS n FROM history_samples")[0]["n"] >= 4 * 2 * TICKS

    report = json.loads(ok(d.cli("report", "--since", "1h", "--json", user=alice)).stdout)
    rows = [u for u in report["users"] if u["uid"] == alice.uid]
    assert len(rows) == 1, report
    row = rows[0]
    leased_sec = row["leased_device_hours"] * 3600
    busy_sec = row["busy_device_hours"] * 3600
    # 2 * TICKS samples of 1 s each held; the first TICKS busy. The slack is
    # the real time between ticks (ms), never a sample interval.
    assert 2 * TICKS <= leased_sec < 2 * TICKS + SLACK, row
    assert TICKS <= busy_sec < TICKS + SLACK, row
    assert abs(row["idle_share"] - 0.5) < 0.05, row
    assert row["leases"] == 1 and row["violations"] == 0, row
    assert 0 <= row["queue_wait_mean_sec"] < 1.0, row
    totals = report["totals"]
    assert abs(totals["idle_leased_device_hours"] * 3600 - (leased_sec - busy_sec)) < 0.01
    assert totals["waste_device_hours"] >= totals["idle_leased_device_hours"], totals
    assert report["until_sec"] - report["since_sec"] >= 3599, report

    # --user narrows the rows; --csv has the documented shape.
    only = json.loads(ok(d.cli("report", "--user", "root", "--json", user=alice)).stdout)
    assert only["users"] == [], only
    text = ok(d.cli("report", "--since", "1h", "--csv", user=alice)).stdout
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == CSV_FIELDS, table
    assert all(len(r) == len(CSV_FIELDS) for r in table), table
    assert table[-1][0] == "TOTAL" and table[1][0] == alice.name, table
    assert abs(float(table[1][2]) - row["leased_device_hours"]) < 0.001, table

    # The table names alice and the waste.
    text = ok(d.cli("report", "--since", "1h", user=alice)).stdout
    assert alice.name in text and "Waste:" in text, text
    r = d.cli("report", "--json", "--csv", user=alice)
    assert r.returncode == 64, r
