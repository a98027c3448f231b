"""The reference webhook receiver: how a hospital verifies what notify's webhook channel sends.

:func:`verify` is all a receiver needs (ten lines of it are the example in docs/notify.md). The
runnable server (``python -m secondread_notify.receiver --port 8099 --secret-file F --dir D``)
is the same check in a small HTTP server, used by the tests and handy for a demo: it stores
each accepted delivery as ``D/<Idempotency-Key>.json``, answers a resend of the same delivery
(same key) with 200 without storing it twice, and refuses a bad signature (401), a timestamp
more than five minutes away (401) and a signature seen before on another delivery (409: the
Idempotency-Key is not signed, so a replayed body under a new key is caught by its signature).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TOLERANCE_S = 300


class Refused(Exception):
    """The request is not a genuine, fresh delivery; the message says why."""


def verify(header: str, body: bytes, secret: bytes, *, now: float | None = None) -> int:
    """Check ``X-Secondread-Signature`` (``t=<unix>,v1=<hex>``) over ``body``; its timestamp.

    Raises
    ------
    Refused
        A malformed header, a signature that does not match, or a timestamp more than
        :data:`TOLERANCE_S` seconds from ``now``.
    """
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp, given = int(fields["t"]), fields["v1"]
    except (KeyError, ValueError) as exc:
        raise Refused("malformed signature header") from exc
    expected = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        raise Refused("signature does not match")
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE_S:
        raise Refused("timestamp outside the 5-minute tolerance")
    return timestamp


class _Handler(BaseHTTPRequestHandler):
    server: ReceiverServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        header = self.headers.get("X-Secondread-Signature", "")
        key = self.headers.get("Idempotency-Key", "")
        try:
            verify(header, body, self.server.secret)
        except Refused as exc:
            return self._answer(401, str(exc))
        if not key or "/" in key or key.startswith("."):
            return self._answer(400, "missing or invalid Idempotency-Key")
        with self.server.lock:
            target = self.server.folder / f"{key}.json"
            if target.exists():  # the same delivery again (a resend): acknowledged, not redone
                return self._answer(200, "duplicate delivery, already stored")
            if header in self.server.seen_signatures:
                return self._answer(409, "replayed signature")
            self.server.seen_signatures.add(header)
            target.write_bytes(body)
        return self._answer(200, "stored")

    def _answer(self, status: int, message: str) -> None:
        data = json.dumps({"status": status, "message": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the stored files are the record


class ReceiverServer(ThreadingHTTPServer):
    def __init__(self, address: tuple[str, int], secret: bytes, folder: Path) -> None:
        super().__init__(address, _Handler)
        self.secret = secret
        self.folder = folder
        self.lock = threading.Lock()
        self.seen_signatures: set[str] = set()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--secret-file", type=Path, required=True)
    parser.add_argument("--dir", type=Path, required=True, help="where deliveries are stored")
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    server = ReceiverServer((args.host, args.port), args.secret_file.read_bytes().strip(), args.dir)
    print(f"listening on http://{args.host}:{args.port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
