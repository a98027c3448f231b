"""A small FHIR server for the tests of notify's FHIR channel: a real HTTP process that takes a
transaction Bundle at its base URL (FHIR R4 3.1.0.11), checks the bearer token, validates the
Bundle and every resource in it with ``fhir.resources``, honours ``ifNoneExist`` on identifiers,
and stores what it creates as ``DIR/<type>-<n>.json``.

Usage: ``python -m tests.fhir_receiver --port P --token T --dir D``. It is a test tool, not a
FHIR server: no search, no read, no other interaction.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError


class _Handler(BaseHTTPRequestHandler):
    server: FhirServer

    def do_POST(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            return self._answer(401, _outcome("security", "missing or wrong bearer token"))
        try:
            bundle = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            Bundle.model_validate(bundle)
            for entry in bundle["entry"]:
                resource = entry["resource"]
                get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        except (ValueError, KeyError, ValidationError) as exc:
            return self._answer(400, _outcome("invalid", str(exc)[:500]))
        if bundle.get("type") != "transaction":
            return self._answer(400, _outcome("invalid", "only transaction Bundles are taken"))
        responses = []
        with self.server.lock:
            for entry in bundle["entry"]:
                responses.append(self.server.create(entry))
        self._answer(200, {"resourceType": "Bundle", "type": "transaction-response",
                           "entry": responses})  # fmt: skip

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _outcome(code: str, text: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": text}]}  # fmt: skip


class FhirServer(ThreadingHTTPServer):
    def __init__(self, address: tuple[str, int], token: str, folder: Path) -> None:
        super().__init__(address, _Handler)
        self.token = token
        self.folder = folder
        self.lock = threading.Lock()
        self.count = 0

    def create(self, entry: dict[str, Any]) -> dict[str, Any]:
        resource = entry["resource"]
        kind = resource["resourceType"]
        condition = entry.get("request", {}).get("ifNoneExist", "")
        if condition.startswith("identifier="):
            system, _, value = condition.removeprefix("identifier=").partition("|")
            for path in sorted(self.folder.glob(f"{kind}-*.json")):
                stored = json.loads(path.read_text())
                if any(i.get("system") == system and i.get("value") == value
                       for i in stored.get("identifier", [])):  # fmt: skip
                    return {"response": {"status": "200 OK", "location": f"{kind}/{stored['id']}"}}
        self.count += 1
        resource = {**resource, "id": str(self.count)}
        (self.folder / f"{kind}-{self.count}.json").write_text(json.dumps(resource))
        return {"response": {"status": "201 Created", "location": f"{kind}/{self.count}"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    FhirServer(("127.0.0.1", args.port), args.token, args.dir).serve_forever()


if __name__ == "__main__":
    main()
