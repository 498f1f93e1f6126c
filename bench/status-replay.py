#!/usr/bin/python3
"""status-replay.py: a stand-in gpukeeperd that answers `status` with one
captured result, the same bytes every time, for timing and profiling
`gpukeeper status` on a fixed reply (no sampler ticks, no cache misses).

    bench/status-replay.py capture DAEMON_SOCKET FILE [--rows-by-pid]
    bench/status-replay.py serve SOCKET FILE

capture: asks a running gpukeeperd for its status with process rows (what
`gpukeeper status` asks for) and writes the result object to FILE;
--rows-by-pid re-sorts each GPU's rows by pid (the order of daemons before
rows came in display order). serve: listens on SOCKET (replaced if it
exists) and answers every request on every connection, one at a time: a
`status` with FILE's result, anything else with an empty result. Stop it
with SIGTERM or SIGINT."""
import json
import os
import socket
import struct
import sys


def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def call(path, op, args):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
        body = json.dumps({"v": 1, "id": 1, "op": op, "args": args}).encode()
        s.sendall(struct.pack(">I", len(body)) + body)
        head = recv_exact(s, 4)
        return json.loads(recv_exact(s, struct.unpack(">I", head)[0]))


def capture(daemon, out, by_pid):
    reply = call(daemon, "status", {"process_rows": True})
    if not reply.get("ok"):
        sys.exit(f"status-replay: the daemon said {reply.get('error')}")
    result = reply["result"]
    if by_pid:
        place = result["process_fields"].index("pid")
        for gpu in result["gpus"]:
            gpu["processes"].sort(key=lambda row: row[place])
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f, separators=(",", ":"), ensure_ascii=False)


def serve(path, result_file):
    with open(result_file, "rb") as f:
        result = f.read().strip()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(16)
    while True:
        conn, _ = server.accept()
        with conn:
            while (head := recv_exact(conn, 4)) is not None:
                request = json.loads(recv_exact(conn, struct.unpack(">I", head)[0]))
                prefix = b'{"v":1,"id":%d,"ok":true,"result":' % request["id"]
                body = prefix + (result if request.get("op") == "status" else b"{}") + b"}"
                conn.sendall(struct.pack(">I", len(body)) + body)


def main():
    argv = sys.argv[1:]
    if len(argv) >= 3 and argv[0] == "capture":
        capture(argv[1], argv[2], "--rows-by-pid" in argv[3:])
    elif len(argv) == 3 and argv[0] == "serve":
        serve(argv[1], argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
