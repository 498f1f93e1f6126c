"""The daemon's status cache (issue 16, src/daemon/status-cache.h): a status
reply sent again byte for byte while nothing it shows changed, and never a
stale one -- right after a lease is acquired, released or drained (also
pipelined behind the change in one write), when a run lease's connection
closes, and when the resolver thread answers a user's name without any
event on the daemon's loop.

The daemons here sample once an hour: only debug.tick samples, so the
cache's chain is not broken every 0.2 s by the sampler and its hits are
what is tested."""

import json
import socket
import struct
import threading
import urllib.request

from conftest import (FRAME_HEADER, GK, Conn, find_process, frame, recv_exact, recv_frame,
                      run_cli, start_leasing_daemon, wait_for)

QUIET = {"sample_interval": "1h"}


def raw_frames(sock, n):
    """The next `n` reply frames' JSON bytes, as sent."""
    out = []
    for _ in range(n):
        (length,) = FRAME_HEADER.unpack(recv_exact(sock, FRAME_HEADER.size))
        out.append(recv_exact(sock, length))
    return out


def send_all(sock, *requests):
    """Several requests in one write: the daemon reads them in one go."""
    data = b""
    for rid, op, args in requests:
        p = json.dumps({"v": 1, "id": rid, "op": op, "args": args or {}}).encode()
        data += struct.pack(">I", len(p)) + p
    sock.sendall(data)


def with_http(d):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        d.sections["http"] = {"listen": f"127.0.0.1:{s.getsockname()[1]}"}
    d.write_config()
    return d


def counters(d):
    body = urllib.request.urlopen(f"http://{d.sections['http']['listen']}/metrics",
                                  timeout=10).read().decode()
    got = {}
    for line in body.splitlines():
        for name in ("cached", "built"):
            key = f"gpukeeper_status_replies_{name}_total "
            if line.startswith(key):
                got[name] = int(line[len(key):])
    return got


def leasing_daemon(daemon_factory, lab, **extra):
    lab.write()
    d = with_http(daemon_factory(policy={"default_duration": "1h", "max_duration": "1d",
                                         "reconnect_grace": "10s"}, **QUIET, **extra))
    d.start()
    d.tick()
    return d


def test_repeated_status_is_identical_bytes_from_the_cache(daemon_factory, lab):
    d = leasing_daemon(daemon_factory, lab)
    before = counters(d)
    with d.connect() as s:
        replies = []
        for _ in range(5):
            send_all(s, (9, "status", None))
            replies += raw_frames(s, 1)
        # And two in one read.
        send_all(s, (9, "status", None), (9, "status", None))
        replies += raw_frames(s, 2)
    assert all(r == replies[0] for r in replies), replies
    assert replies[0].startswith(b'{"v":1,"id":9,"ok":true,"result":{"simulated":true,')
    assert replies[0].endswith(b'}}')
    after = counters(d)
    # One build at most after /metrics (a foreign event), then hits.
    assert after["cached"] - before["cached"] >= 5, (before, after)
    assert after["built"] - before["built"] <= 2, (before, after)
    # The status of the CLI is the same document.
    assert d.status() == json.loads(replies[0])["result"]


def status_of(frame_bytes):
    msg = json.loads(frame_bytes)
    assert msg["ok"] is True, msg
    return msg["result"]


def gpu_of(status, uuid):
    for g in status["gpus"]:
        if g["uuid"] == uuid:
            return g
        for i in g["instances"]:
            if i["uuid"] == uuid:
                return i
    raise AssertionError(f"{uuid} not in status")


def test_pipelined_changes_show_in_the_status_behind_them(daemon_factory, lab):
    d = leasing_daemon(daemon_factory, lab)
    with d.connect() as s:
        send_all(s, (1, "status", None), (2, "status", None))  # warm: a build, a hit
        first = raw_frames(s, 2)
        assert first[0][:40] != b"" and status_of(first[0]) == status_of(first[1])

        send_all(s, (3, "lease.acquire", {"kind": "manual", "gpus": 1, "wait": False}),
                 (4, "status", None))
        acquired, st = raw_frames(s, 2)
        lease = json.loads(acquired)["result"]["lease"]
        uuid = lease["devices"][0]["uuid"]
        shown = gpu_of(status_of(st), uuid)["lease"]
        assert shown is not None and shown["id"] == lease["id"], shown

        send_all(s, (5, "status", None), (6, "lease.release", {"id": lease["id"]}),
                 (7, "status", None))
        before, released, after = raw_frames(s, 3)
        assert gpu_of(status_of(before), uuid)["lease"]["id"] == lease["id"]
        assert json.loads(released)["ok"] is True, released
        assert gpu_of(status_of(after), uuid)["lease"] is None

        send_all(s, (8, "admin.drain", {"device": uuid, "reason": "test"}), (9, "status", None))
        drained, st = raw_frames(s, 2)
        assert json.loads(drained)["ok"] is True, drained
        assert gpu_of(status_of(st), uuid)["drained"] is True
        send_all(s, (10, "admin.undrain", {"device": uuid}), (11, "status", None))
        undrained, st = raw_frames(s, 2)
        assert json.loads(undrained)["ok"] is True, undrained
        assert gpu_of(status_of(st), uuid)["drained"] is False
    # The CLI, on connections of its own, sees the same.
    r = d.cli("lease", "acquire", "--gpus", "1", "--time", "1h", "--json")
    assert r.returncode == 0, r.stderr
    lid = json.loads(r.stdout)["lease"]["id"]
    assert any(g["lease"] and g["lease"]["id"] == lid for g in d.status()["gpus"])
    assert d.cli("lease", "release", str(lid)).returncode == 0
    assert not any(g["lease"] and g["lease"]["id"] == lid for g in d.status()["gpus"])


def test_closing_a_run_lease_connection_shows_at_once(daemon_factory, lab, users, raw_as):
    d = leasing_daemon(daemon_factory, lab)
    c = raw_as(d, users["alice"], [["lease.acquire", {"kind": "run", "gpus": 1,
                                                       "command": "sleep"}]], hold=True)
    reply = c.wait_replies(1)[0]
    assert reply["ok"] is True, reply
    lid = reply["result"]["lease"]["id"]
    with Conn(d) as conn:
        for _ in range(3):  # a build, then hits
            st = conn.call("status")["result"]
            assert any(g["lease"] and g["lease"]["id"] == lid for g in st["gpus"]), st
        c.close()
        wait_for(lambda: d.leases() == [], timeout=10, what="the run lease to end")
        st = conn.call("status")["result"]
        assert not any(g["lease"] and g["lease"]["id"] == lid for g in st["gpus"]), st


def test_user_name_shows_once_the_resolver_answers(daemon_factory, lab, spawn, users):
    """Every NSS lookup takes 0.3 s (the resolver's test seam): alice's first
    status shows her process without a name; the thread's answer comes with
    no event on the loop, and a status soon after -- no sample in between,
    and sooner than the loop's own timers would break the cache's chain
    (about 6 s here) -- names her. Without the names generation in the
    cache's key this times out."""
    alice = users["alice"]
    lab.write()
    d = with_http(daemon_factory(**QUIET))
    base_env = d.env

    def slow_env():
        e = base_env()
        e["GK_TEST_NSS_DELAY_MS"] = "300"
        return e

    d.env = slow_env
    d.start()
    p = spawn(alice, "cache-name-alice")
    lab.add_process(lab.data["gpus"][0]["uuid"], p.pid, 100)
    lab.write()
    d.tick()
    with Conn(d) as conn:
        st = conn.call("status")["result"]
        proc = find_process(st, p.pid)[1]
        assert proc is not None and proc["uid"] == alice.uid, st
        seen = [proc["user"]]
        ticks = counters(d)

        def named():
            user = find_process(conn.call("status")["result"], p.pid)[1]["user"]
            seen.append(user)
            return user == alice.name

        wait_for(named, timeout=4, interval=0.1, what="alice's name in status")
    # Nobody sampled meanwhile, and the replies before the name came were
    # the cache's: the answer itself made the next one a build.
    assert seen[0] is None, seen
    assert counters(d)["cached"] > ticks["cached"]


def test_process_rows_are_cached_beside_objects(daemon_factory, lab, spawn, users):
    """`{"process_rows": true}` (what `gpukeeper status` asks for): each
    process a row of its object's values in "process_fields" order, the rows
    in the order the command shows them, cached in a slot of its own beside
    the objects; other arguments are refused."""
    alice = users["alice"]
    lab.write()
    d = with_http(daemon_factory(**QUIET))
    d.start()
    p = spawn(alice, "rows-alice")
    lab.add_process(lab.data["gpus"][0]["uuid"], p.pid, 300)
    # Sampled after p with more memory: shown (and sent as rows) before it.
    p2 = spawn(alice, "rows-alice-2")
    lab.add_process(lab.data["gpus"][0]["uuid"], p2.pid, 500)
    lab.write()
    d.tick()
    wait_for(lambda: find_process(d.status(), p.pid)[1]["user"] == alice.name,
             what="alice's name in status")
    rows_args = {"process_rows": True}
    with d.connect() as s:
        send_all(s, (1, "status", None), (2, "status", rows_args))  # a build each
        send_all(s, (3, "status", None), (4, "status", rows_args),
                 (5, "status", {"process_rows": False}), (6, "status", rows_args))
        before = counters(d)
        send_all(s, (7, "status", None), (8, "status", rows_args), (9, "status", None),
                 (10, "status", rows_args))
        replies = raw_frames(s, 10)
        after = counters(d)
    assert all(status_of(r) for r in replies)
    # The last four came in one read: one state. /metrics broke the chain
    # once: the first of each shape is built again, the second is a hit,
    # byte for byte.
    assert replies[6] == replies[8].replace(b'"id":9,', b'"id":7,', 1)
    assert replies[7] == replies[9].replace(b'"id":10,', b'"id":8,', 1)
    assert after["built"] - before["built"] <= 2, (before, after)
    assert after["cached"] - before["cached"] >= 2, (before, after)
    objects = [status_of(replies[6])]
    rows = [status_of(replies[7])]
    fields = rows[0]["process_fields"]
    assert fields[:5] == ["pid", "uid", "user", "command", "memory_used_bytes"], fields
    assert "process_fields" not in objects[0]
    text = replies[7].decode()
    assert text.index('"gpu_count"') < text.index('"process_fields"') < text.index('"gpus"')
    def settled(procs):
        """An open violation's stop_at is its boot-clock deadline shown on
        the wall clock at the build: two builds differ by microseconds."""
        out = []
        for proc in procs:
            proc = dict(proc)
            if isinstance(proc.get("violation"), dict):
                proc["violation"] = dict(proc["violation"])
                stop_at = proc["violation"]["stop_at"]
                proc["violation"]["stop_at"] = "number" if isinstance(stop_at, float) else stop_at
            out.append(proc)
        return out

    seen = 0
    for go, gr in zip(objects[0]["gpus"], rows[0]["gpus"]):
        assert {k: v for k, v in go.items() if k != "processes"} == \
            {k: v for k, v in gr.items() if k != "processes"}
        by_pid = lambda procs: sorted(settled(procs), key=lambda proc: proc["pid"])
        shown = [dict(zip(fields, row)) for row in gr["processes"]]
        assert by_pid(shown) == by_pid(go["processes"])
        # Rows in the order `gpukeeper status` shows them: most memory
        # first, an unknown amount last, then by pid.
        assert shown == sorted(shown, key=lambda proc: (
            proc["memory_used_bytes"] is None, -(proc["memory_used_bytes"] or 0), proc["pid"]))
        assert all(list(obj) == fields for obj in go["processes"])
        seen += len(go["processes"])
    assert seen >= 2 and find_process(objects[0], p.pid)[1]["user"] == alice.name
    gpu0 = rows[0]["gpus"][0]["processes"]
    assert [row[0] for row in gpu0].index(p2.pid) < [row[0] for row in gpu0].index(p.pid)
    row = find_process({"gpus": [{"processes": [dict(zip(fields, r)) for r in g["processes"]],
                                  "instances": g["instances"]} for g in rows[0]["gpus"]]},
                       p.pid)[1]
    assert abs(row["violation"]["stop_at"] -
               find_process(objects[0], p.pid)[1]["violation"]["stop_at"]) < 0.01

    for bad in ({"process_rows": 1}, {"process_rows": None}, {"all": True},
                {"process_rows": True, "user": "alice"}):
        reply = d.request("status", bad)
        assert reply["ok"] is False and reply["error"]["name"] == "E_INVALID_ARGUMENT", reply
        assert "process_rows" in reply["error"]["message"], reply

    # The text view reads the rows.
    r = d.cli("status")
    assert r.returncode == 0, r.stderr
    line = next(l for l in r.stdout.splitlines() if str(p.pid) in l.split())
    assert "(no lease)" in line and "VIOLATION" in r.stdout, r.stdout


def test_text_view_asks_an_older_daemon_again_without_rows(workdir):
    """A daemon from before process rows refuses the argument
    (E_INVALID_ARGUMENT, "this operation takes no arguments"): `gpukeeper
    status` asks again, on the same connection, without it, and prints the
    objects' view."""
    path = workdir / "old.sock"
    result = {"simulated": False, "driver_version": "550.54.15", "hostname": "old",
              "sampled_at": None, "nvml_available": True, "message": None, "gpu_count": 1,
              "gpus": [{"index": 0, "uuid": "GPU-1", "name": "Old GPU", "healthy": True,
                        "memory_total_bytes": 1073741824, "memory_used_bytes": 0,
                        "instances": [], "mig_enabled": False, "lease": None,
                        "drained": False,
                        "processes": [{"pid": 4242, "uid": 0, "user": "root",
                                       "command": "old-daemon-process",
                                       "memory_used_bytes": 1048576, "leased": True}]}],
              "queue": []}
    asked = []
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)
    srv.settimeout(20)

    def serve():
        conn, _ = srv.accept()
        with conn:
            for _ in range(2):
                req = recv_frame(conn)
                if req is None:
                    return
                asked.append(req.get("args", {}))
                if req.get("args"):
                    reply = {"v": 1, "id": req["id"], "ok": False,
                             "error": {"code": 6, "name": "E_INVALID_ARGUMENT",
                                       "message": "this operation takes no arguments"}}
                else:
                    reply = {"v": 1, "id": req["id"], "ok": True, "result": result}
                conn.sendall(frame(reply))

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        r = run_cli([str(GK), "--socket", str(path), "status"])
    finally:
        t.join(10)
        srv.close()
    assert r.returncode == 0, r.stderr
    assert asked == [{"process_rows": True}, {}], asked
    assert "Old GPU" in r.stdout and "old-daemon-process" in r.stdout, r.stdout
