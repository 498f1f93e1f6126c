"""The socket protocol under abuse, spoken raw from Python: every bad request
gets the documented error (docs/protocol.md) or a closed connection, and the
daemon keeps serving `status` afterwards."""

import json
import socket

import pytest

from conftest import FRAME_HEADER, frame, recv_frame

E_MALFORMED, E_TOO_LARGE, E_UNKNOWN_OP, E_VERSION, E_BUSY = 1, 2, 3, 4, 9
REQUEST_MAX = 64 * 1024


def ping(rid):
    return {"v": 1, "id": rid, "op": "ping", "args": {}}


def assert_error(reply, code, name):
    assert reply is not None, f"connection closed instead of an {name} reply"
    assert reply.get("v") == 1, reply
    assert reply.get("ok") is False, reply
    err = reply.get("error")
    assert isinstance(err, dict), reply
    assert err.get("code") == code and err.get("name") == name, reply
    assert isinstance(err.get("message"), str) and err["message"], reply


def assert_still_serving(daemon):
    assert daemon.alive(), "gpukeeperd died:\n" + daemon.log()
    reply = daemon.request("status")
    assert reply["ok"] is True and isinstance(reply["result"]["gpus"], list), reply


def test_ping_round_trip_echoes_id(daemon):
    with daemon.connect() as s:
        for rid in (1, 2, 99):
            s.sendall(frame(ping(rid)))
            reply = recv_frame(s)
            assert reply["v"] == 1 and reply["id"] == rid and reply["ok"] is True, reply
            assert isinstance(reply["result"], dict), reply


@pytest.mark.parametrize("body", [
    b"{not json",
    b"\xff\xfe\x00garbage",
    b"[1, 2, 3]",
    b'"just a string"',
    b'{"v": 1, "id": 5}',
    b'{"v": 1, "id": 5, "op": 42, "args": {}}',
], ids=["broken-json", "binary", "array", "string", "no-op", "op-not-string"])
def test_malformed_request_keeps_connection_usable(daemon, body):
    with daemon.connect() as s:
        s.sendall(frame(body))
        reply = recv_frame(s)
        assert_error(reply, E_MALFORMED, "E_MALFORMED")
        if body.startswith(b"{not") or body.startswith(b"\xff"):
            assert reply["id"] is None, reply
        s.sendall(frame(ping(8)))
        reply = recv_frame(s)
        assert reply is not None and reply["ok"] is True and reply["id"] == 8, reply
    assert_still_serving(daemon)


def test_empty_frame_is_malformed_then_close(daemon):
    with daemon.connect() as s:
        s.sendall(FRAME_HEADER.pack(0))
        reply = recv_frame(s)
        assert_error(reply, E_MALFORMED, "E_MALFORMED")
        assert reply["id"] is None, reply
        assert s.recv(1) == b""
    assert_still_serving(daemon)


@pytest.mark.parametrize("length", [1 << 30, REQUEST_MAX + 1], ids=["1GiB", "64KiB+1"])
def test_oversized_frame_gets_too_large_then_close(daemon, length):
    with daemon.connect() as s:
        s.sendall(FRAME_HEADER.pack(length))
        reply = recv_frame(s)
        assert_error(reply, E_TOO_LARGE, "E_TOO_LARGE")
        assert reply["id"] is None, reply
        # Then the daemon hangs up: it cannot resynchronise inside a frame.
        assert s.recv(1) == b""
    assert_still_serving(daemon)


def test_largest_allowed_frame_is_read(daemon):
    request = ping(3)
    request["args"] = {"pad": ""}
    overhead = len(json.dumps(request).encode())
    request["args"]["pad"] = "x" * (REQUEST_MAX - overhead)
    body = json.dumps(request).encode()
    assert len(body) == REQUEST_MAX
    with daemon.connect() as s:
        s.sendall(frame(body))
        reply = recv_frame(s)
    # ping may accept or refuse the unexpected argument, but never as too large.
    assert reply is not None and reply["id"] == 3, reply
    assert reply["ok"] is True or reply["error"]["name"] != "E_TOO_LARGE", reply
    assert_still_serving(daemon)


def test_unknown_op(daemon):
    with daemon.connect() as s:
        s.sendall(frame({"v": 1, "id": 11, "op": "no-such-op", "args": {}}))
        reply = recv_frame(s)
        assert_error(reply, E_UNKNOWN_OP, "E_UNKNOWN_OP")
        assert reply["id"] == 11, reply
        s.sendall(frame(ping(12)))
        assert recv_frame(s)["ok"] is True
    assert_still_serving(daemon)


def test_unsupported_version(daemon):
    with daemon.connect() as s:
        s.sendall(frame({"v": 999, "id": 13, "op": "ping", "args": {}}))
        reply = recv_frame(s)
        assert_error(reply, E_VERSION, "E_VERSION")
        assert reply["id"] == 13, reply
        # The connection stays open for a request in the right version.
        s.sendall(frame(ping(14)))
        assert recv_frame(s)["ok"] is True
    assert_still_serving(daemon)


@pytest.mark.parametrize("sent", [
    b"\x00\x00",
    FRAME_HEADER.pack(100),
    FRAME_HEADER.pack(100) + b'{"v": 1, "id"',
], ids=["half-header", "header-only", "half-body"])
def test_partial_frame_then_disconnect(daemon, sent):
    with daemon.connect() as s:
        s.sendall(sent)
    with daemon.connect() as s:
        s.sendall(sent)
        s.shutdown(socket.SHUT_WR)
        # End of stream inside a frame: the daemon closes without a reply
        # or answers with an error; it never answers as if it were a request.
        reply = recv_frame(s)
        assert reply is None or reply["ok"] is False, reply
    assert_still_serving(daemon)


def test_two_requests_in_one_write(daemon):
    with daemon.connect() as s:
        s.sendall(frame(ping(21)) + frame(ping(22)))
        assert recv_frame(s)["id"] == 21
        assert recv_frame(s)["id"] == 22


def test_two_hundred_connections_at_once(daemon):
    """Beyond its per-user connection limit the daemon answers E_BUSY and
    closes; it must serve the others and stay up."""
    conns = []
    try:
        for _ in range(200):
            conns.append(daemon.connect())
        for i, s in enumerate(conns):
            try:
                s.sendall(frame(ping(1000 + i)))
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused: its E_BUSY reply is already waiting to be read
        served = busy = 0
        for i, s in enumerate(conns):
            try:
                reply = recv_frame(s)
            except ConnectionResetError:
                reply = None
            assert reply is not None, f"connection {i} closed without a reply"
            if reply["ok"]:
                assert reply["id"] == 1000 + i, reply
                served += 1
            else:
                assert_error(reply, E_BUSY, "E_BUSY")
                busy += 1
        assert served > 0 and served + busy == 200, (served, busy)
    finally:
        for s in conns:
            s.close()
    assert_still_serving(daemon)


def test_waiting_acquire_does_not_hold_up_later_replies(daemon_factory, lab, users):
    """docs/protocol.md (issue 10 item 17): on one connection, a lease.acquire
    that waits in the queue does not hold up the requests after it; their
    replies come at once, each with its own id, and the acquire's reply comes,
    with its id, once it is granted."""
    from conftest import GPU0_UUID, start_leasing_daemon
    from test_dos import connect_as
    alice, bob = users["alice"], users["bob"]
    d = start_leasing_daemon(daemon_factory, lab)
    r = d.cli("lease", "acquire", "--gpu", GPU0_UUID, user=alice)
    assert r.returncode == 0, r.stderr
    (held,) = [x["id"] for x in d.leases() if x["uid"] == alice.uid]
    s = connect_as(d, bob.uid)
    try:
        s.sendall(frame({"v": 1, "id": 41, "op": "lease.acquire",
                         "args": {"kind": "manual", "devices": [GPU0_UUID]}})
                  + frame({"v": 1, "id": 42, "op": "ping", "args": {}}))
        first = recv_frame(s)
        while "event" in first:  # a queue-position event may come first
            first = recv_frame(s)
        assert first["id"] == 42 and first["ok"] is True, first
        assert d.cli("lease", "release", str(held), user=alice).returncode == 0
        second = recv_frame(s)
        while "event" in second:
            second = recv_frame(s)
        assert second["id"] == 41 and second["ok"] is True, second
    finally:
        s.close()
