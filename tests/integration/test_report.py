"""Usage history and `gpukeeper report`: the daemon writes a history row per
device per tick; alice holds GPU0 busy (40 %
utilisation) and then idle (0 %); the report shows her leased time about
the time she held it, part of it busy, the idle share in between, and the
idle part counted as waste. --csv has one header, one row per user and a
TOTAL row, fourteen fields each.

Shared GPUs (issue 14): three real users hold shared leases of one GPU
(20/20/30 GiB budgets) with real processes declared to the simulator; each
one's report shows the time as shared hours of its own (not whole-GPU
hours, and not all of it for the first holder), its budget and its own
memory, and the history has one row per lease at each tick."""

import csv
import io
import json

from conftest import GPU0_UUID, TEST_POLICY, ensure_user, start_leasing_daemon, wait_for
from enforcefixtures import victims  # noqa: F401 (fixture)

CSV_FIELDS = ["user", "uid", "leased_device_hours", "busy_device_hours", "idle_share",
              "memory_gib_hours", "leases", "queue_wait_mean_sec", "queue_wait_p95_sec",
              "violations", "shared_device_hours", "shared_busy_device_hours",
              "shared_budget_gib", "shared_memory_gib_hours"]
GIB = 1 << 30


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
    by_name = json.loads(ok(d.cli("report", "--user", alice.name, "--json", user=alice)).stdout)
    by_uid = json.loads(ok(d.cli("report", "--user", str(alice.uid), "--json",
                                 user=alice)).stdout)
    assert [u["uid"] for u in by_name["users"]] == [alice.uid], by_name
    assert by_name["users"] == by_uid["users"], (by_name, by_uid)
    # A name /etc/passwd does not know: the daemon looks it up (the static
    # command crashed in glibc's NSS, libnss_systemd, doing it itself).
    r = d.cli("report", "--user", "gktest-no-such-user", user=alice)
    assert r.returncode == 66 and "no such user 'gktest-no-such-user'" in r.stderr, r
    r = d.cli("report", "--user", "", user=alice)
    assert r.returncode == 64, r
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


def test_report_shared_gpu(daemon_factory, lab, users, victims):  # noqa: F811
    """Three users share GPU0 for TICKS one-second ticks of the daemon's clock."""
    sharers = [users["alice"], users["bob"], ensure_user("gktest-shcarol")]
    budgets = {sharers[0].uid: 20, sharers[1].uid: 20, sharers[2].uid: 30}
    use_mib = {sharers[0].uid: 10 * 1024, sharers[1].uid: 15 * 1024, sharers[2].uid: 25 * 1024}
    lab.write()
    d = daemon_factory(policy=dict(TEST_POLICY), sample_interval="1h")
    d.sections["sharing"] = {"gpus": [0], "reserve": "1G"}
    d.start()
    wait_for(lambda: len(d.status()["gpus"]) == len(lab.data["gpus"]), what="the first snapshot")
    for u in sharers:
        ok(d.cli("lease", "acquire", "--share", f"{budgets[u.uid]}G", "--no-wait", user=u))
    lease_ids = {l["uid"]: l["id"] for l in d.leases()}
    assert sorted(lease_ids) == sorted(budgets), d.leases()
    # Each user's job: a real process of that user on GPU0, under its budget.
    jobs = {u.uid: victims(d, u, f"report-share-{u.name}") for u in sharers}
    for uid, job in jobs.items():
        lab.add_process(GPU0_UUID, job.pid, use_mib[uid])
    lab.write()

    def three_jobs():
        d.tick()  # periodic sampling is off: a tick reads the new lab
        return len(next(g for g in d.status()["gpus"] if g["uuid"] == GPU0_UUID)["processes"]) == 3

    wait_for(three_jobs, what="the three jobs in status")
    for _ in range(TICKS):
        d.clock(advance_sec=1)
        d.tick()

    # One history row per holder lease at each tick, with its budget.
    rows = d.query("SELECT s.lease_id, s.holder_uid, s.share_bytes, s.memory_used_bytes "
                   "FROM history_samples s JOIN history_devices v ON v.id = s.device_id "
                   "WHERE v.device_uuid = ? AND s.lease_id > 0", (GPU0_UUID,))
    by_lease = {}
    for r in rows:
        by_lease.setdefault(r["lease_id"], []).append(r)
    assert sorted(by_lease) == sorted(lease_ids.values()), by_lease.keys()
    for uid, lid in lease_ids.items():
        assert len(by_lease[lid]) >= TICKS
        assert all(r["holder_uid"] == uid and r["share_bytes"] == budgets[uid] * GIB
                   for r in by_lease[lid]), by_lease[lid]
        assert by_lease[lid][-1]["memory_used_bytes"] == use_mib[uid] << 20

    report = json.loads(ok(d.cli("report", "--since", "1h", "--json", user=sharers[0])).stdout)
    got = {u["uid"]: u for u in report["users"]}
    for u in sharers:
        row = got[u.uid]
        shared_sec = row["shared_device_hours"] * 3600
        # Each holder: TICKS seconds of shared time of its own, not of whole GPUs.
        assert TICKS <= shared_sec < TICKS + 1 + SLACK, row
        assert row["leased_device_hours"] == 0, row
        assert abs(row["shared_budget_gib"] - budgets[u.uid]) < 1e-6, row
        used_gib = row["shared_memory_gib_hours"] / row["shared_device_hours"]
        assert abs(used_gib - use_mib[u.uid] / 1024) < 0.01, row
        assert row["shared_busy_device_hours"] == row["shared_device_hours"], row
    totals = report["totals"]
    assert totals["leased_device_hours"] == 0, totals
    assert abs(totals["shared_device_hours"] -
               sum(got[u.uid]["shared_device_hours"] for u in sharers)) < 1e-9, totals

    # The table has the shared section with every holder and its budget.
    text = ok(d.cli("report", "--since", "1h", user=sharers[0])).stdout
    section = text.split("Shared GPUs (memory budgets):", 1)[1]
    for u in sharers:
        line = next(l for l in section.splitlines() if l.startswith(u.name[:12]))
        assert f"{budgets[u.uid]:.1f}" in line.split(), line
    table = list(csv.reader(io.StringIO(
        ok(d.cli("report", "--since", "1h", "--csv", user=sharers[0])).stdout)))
    assert table[0] == CSV_FIELDS
    csv_rows = {r[0]: r for r in table[1:]}
    assert float(csv_rows[sharers[2].name][CSV_FIELDS.index("shared_budget_gib")]) == 30.0
    for u in sharers:
        ok(d.cli("lease", "release", "--all", user=u))
