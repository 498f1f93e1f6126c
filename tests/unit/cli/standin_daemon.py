"""A stand-in for gpukeeperd, for testing the gpukeeper CLI alone.

It speaks the real wire protocol of docs/protocol.md (4-byte big-endian
length, one JSON object) on a Unix socket and answers the lease operations
of the lease spec from a tiny in-memory model, so that `gpukeeper run`,
`lease ...`, `queue` and `admin` can be exercised end to end (signals, exec
failures, reconnects) before or without the real daemon. It is not an
allocator: what it grants and when is scripted by the test through the
constructor. Every request it receives is appended to `requests`, and every
release (explicit, or a run lease whose connection closed) to `released`.
"""
import json
import os
import socket
import struct
import threading
import time

GPUS = ["GPU-aaaaaaaa-0000-1111-2222-333344445555", "GPU-bbbbbbbb-0000-1111-2222-333344445555"]


class StandinDaemon:
    def __init__(self, path, queue_events=0, queue_delay=0.0, refuse=None, event_after=None):
        """queue_events: how many queue.position events to send before
        granting (the same event twice counts once for the CLI);
        queue_delay: seconds between them; refuse: (code, name, message)
        answered to every lease.acquire instead of a grant; event_after:
        seconds after a grant to send an unsolicited event."""
        self.path = path
        self.queue_events = queue_events
        self.queue_delay = queue_delay
        self.refuse = refuse
        self.event_after = event_after
        self.requests = []
        self.released = []
        self.leases = {}
        self.next_id = 1
        self.lock = threading.Lock()
        self.conns = set()
        self.sock = None
        self.stopping = False

    # -- lifecycle -------------------------------------------------------
    def start(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(16)
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self):
        """Like a daemon killed: the socket and every connection close."""
        self.stopping = True
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        for c in list(self.conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        self.conns.clear()

    # -- protocol --------------------------------------------------------
    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.add(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _recv_exact(c, n):
        buf = b""
        while len(buf) < n:
            chunk = c.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    @staticmethod
    def _send(c, obj):
        data = json.dumps(obj).encode()
        c.sendall(struct.pack(">I", len(data)) + data)

    def _serve(self, c):
        bound = set()  # run leases held by this connection
        try:
            while True:
                (n,) = struct.unpack(">I", self._recv_exact(c, 4))
                req = json.loads(self._recv_exact(c, n))
                with self.lock:
                    self.requests.append(req)
                self._answer(c, req, bound)
        except (EOFError, OSError, ValueError):
            pass
        finally:
            # A stopped (killed) daemon releases nothing; a live one releases
            # the run leases of a connection that closed.
            with self.lock:
                for lid in bound if not self.stopping else ():
                    lease = self.leases.get(lid)
                    if lease and lease["state"] == "active":
                        lease["state"] = "released"
                        self.released.append((lid, "client exited"))
            self.conns.discard(c)
            c.close()

    def _lease(self, kind, n, command):
        lid = self.next_id
        self.next_id += 1
        devices = [{"uuid": GPUS[i], "gpu_uuid": GPUS[i], "gpu_index": i, "profile": None}
                   for i in range(n)]
        lease = {"id": lid, "uid": os.getuid(), "user": "tester", "kind": kind,
                 "state": "active", "devices": devices,
                 "cuda_visible_devices": ",".join(d["uuid"] for d in devices),
                 "created_at": time.time() - 60,
                 "expires_at": time.time() + 4 * 3600 if kind == "manual" else None,
                 "released_at": None, "release_reason": None, "pid": None,
                 "command": command, "attached": kind == "run"}
        self.leases[lid] = lease
        return lease

    def _reply(self, c, req, result=None, error=None):
        msg = {"v": 1, "id": req.get("id")}
        if error:
            msg.update(ok=False, error={"code": error[0], "name": error[1], "message": error[2]})
        else:
            msg.update(ok=True, result=result)
        self._send(c, msg)

    def _answer(self, c, req, bound):
        op, args = req.get("op"), req.get("args") or {}
        if op == "ping":
            return self._reply(c, req, {"version": "standin", "protocol": 1})
        if op == "lease.acquire":
            if self.refuse:
                return self._reply(c, req, error=self.refuse)
            if args.get("wait", True):
                for i in range(self.queue_events):
                    pos = max(1, self.queue_events - i)
                    data = {"request_id": 1, "position": pos, "waiting": self.queue_events,
                            "reason": "waiting for 1 GPU: 0 free"}
                    self._send(c, {"v": 1, "event": "queue.position", "data": data})
                    self._send(c, {"v": 1, "event": "queue.position", "data": data})
                    time.sleep(self.queue_delay)
            with self.lock:
                lease = self._lease(args.get("kind"), args.get("gpus", 1), args.get("command"))
                if lease["kind"] == "run":
                    bound.add(lease["id"])
            self._reply(c, req, {"lease": lease})
            if self.event_after is not None:
                time.sleep(self.event_after)
                self._send(c, {"v": 1, "event": "lease.note", "data": {"id": lease["id"]}})
            return None
        if op == "lease.attach":
            lease = self.leases.get(args.get("id"))
            if not lease or lease["state"] != "active":
                return self._reply(c, req, error=(7, "E_NOT_FOUND", "no such lease"))
            bound.add(lease["id"])
            return self._reply(c, req, {"lease": lease})
        if op == "lease.release":
            with self.lock:
                ids = [l["id"] for l in self.leases.values() if l["state"] == "active"
                       and (args.get("all") or l["id"] == args.get("id"))]
                if not ids and not args.get("all"):
                    return self._reply(c, req, error=(7, "E_NOT_FOUND", "no such lease"))
                for lid in ids:
                    self.leases[lid]["state"] = "released"
                    self.released.append((lid, "released"))
                    bound.discard(lid)
            return self._reply(c, req, {"released": ids})
        if op == "lease.list":
            return self._reply(c, req, {"leases": [l for l in self.leases.values()
                                                   if l["state"] == "active"]})
        if op == "lease.env":
            active = [l for l in self.leases.values() if l["state"] == "active"]
            if not active:
                return self._reply(c, req, error=(7, "E_NOT_FOUND", "you hold no lease; get one "
                                                  "with 'gpukeeper lease acquire'"))
            lease = active[-1]
            return self._reply(c, req, {"lease": lease, "env": {
                "CUDA_VISIBLE_DEVICES": lease["cuda_visible_devices"],
                "CUDA_DEVICE_ORDER": "PCI_BUS_ID", "GPUKEEPER_LEASE_ID": str(lease["id"])}})
        if op == "lease.extend":
            lease = self.leases.get(args.get("id"))
            if not lease:
                return self._reply(c, req, error=(7, "E_NOT_FOUND", "no such lease"))
            lease["expires_at"] = max(lease["expires_at"], time.time()) + args["duration_sec"]
            return self._reply(c, req, {"lease": lease})
        if op == "queue.list":
            return self._reply(c, req, {"queue": [
                {"request_id": 4, "uid": 1002, "user": "bob", "kind": "run", "position": 1,
                 "since": time.time() - 125, "wants": "2 GPUs", "reason": "waiting for 2 GPUs: 1 free"}]})
        if op in ("admin.drain", "admin.undrain"):
            return self._reply(c, req, error=(5, "E_PERMISSION", "only administrators may drain GPUs"))
        return self._reply(c, req, error=(3, "E_UNKNOWN_OP", f"no operation \"{op}\""))
