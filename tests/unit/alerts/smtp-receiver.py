#!/usr/bin/python3
"""A real SMTP server on 127.0.0.1 for the alert tests (Debian's python3-aiosmtpd).

usage: smtp-receiver.py OUTDIR [USER:PASSWORD]

Listens on a free port and writes it to OUTDIR/port once accepting. Every
message received is written as OUTDIR/msg-N.json: the envelope, the raw
message, its headers as received and the decoded subject and body, so the C
test can check them with jansson. With USER:PASSWORD, AUTH (PLAIN/LOGIN, in
clear: loopback only) is required before MAIL. Exits on SIGTERM.
"""
import email
import email.policy
import json
import logging
import os
import signal
import socket
import sys
import threading
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Handler:
    def __init__(self, outdir):
        self.outdir = outdir
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": session.auth_data if isinstance(session.auth_data, str) else None,
            "raw": raw.decode("utf-8", "replace"),
            "headers": {k: str(v) for k, v in msg.items()},
            "raw_headers": {k: v for k, v in msg.raw_items()},
            "subject": str(msg["subject"]),
            "body": msg.get_content().replace("\r\n", "\n"),
        }
        with self.lock:
            self.count += 1
            name = os.path.join(self.outdir, "msg-%d.json" % self.count)
        with open(name + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(name + ".tmp", name)
        return "250 OK"


def main():
    outdir = sys.argv[1]
    creds = sys.argv[2].split(":", 1) if len(sys.argv) > 2 else None

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = creds is not None and auth_data.login.decode() == creds[0] and auth_data.password.decode() == creds[1]
        return AuthResult(success=ok, auth_data=auth_data.login.decode() if ok else None)

    # AUTH without TLS is what this loopback test wants; keep its warnings quiet.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kwargs = {}
    if creds:
        kwargs = dict(authenticator=authenticator, auth_required=True, auth_require_tls=False)
    controller = Controller(Handler(outdir), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    with open(os.path.join(outdir, "port.tmp"), "w") as f:
        f.write(str(port))
    os.rename(os.path.join(outdir, "port.tmp"), os.path.join(outdir, "port"))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    controller.stop()


if __name__ == "__main__":
    main()
