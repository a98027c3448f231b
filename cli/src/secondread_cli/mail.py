"""The local stack's mail server (Mailpit): list the delivered messages, save them as files.

Mailpit's HTTP API (``/api/v1/messages``, ``/api/v1/message/<id>/raw``) on 127.0.0.1:8025
(``SECONDREAD_MAILPIT_URL``); its web UI is at the same address.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import httpx

DEFAULT_URL = "http://127.0.0.1:8025"


def base_url() -> str:
    return os.environ.get("SECONDREAD_MAILPIT_URL", DEFAULT_URL).rstrip("/")


@dataclass(frozen=True)
class Summary:
    id: str
    created: str
    sender: str
    to: tuple[str, ...]
    subject: str
    size: int
    attachments: int


class MailError(RuntimeError):
    """Mailpit did not answer, or answered with an error."""


def _get(path: str, **params: str | int) -> httpx.Response:
    try:
        resp = httpx.get(f"{base_url()}{path}", params=params, timeout=15)
        resp.raise_for_status()
    except httpx.HTTPError as exc:
        raise MailError(f"mail server at {base_url()}: {exc}") from exc
    return resp


def messages(limit: int = 5000) -> list[Summary]:
    """The stored messages, newest first."""
    data = _get("/api/v1/messages", limit=limit).json()
    return [
        Summary(
            id=m["ID"],
            created=m.get("Created", ""),
            sender=(m.get("From") or {}).get("Address", ""),
            to=tuple(t.get("Address", "") for t in m.get("To") or []),
            subject=m.get("Subject", ""),
            size=int(m.get("Size", 0)),
            attachments=int(m.get("Attachments", 0)),
        )
        for m in data.get("messages", [])
    ]


def raw(message_id: str) -> bytes:
    """One message as it was received (RFC 5322)."""
    return _get(f"/api/v1/message/{message_id}/raw").content


def save(folder: Path) -> list[Path]:
    """Write every stored message as ``folder/<id>.eml`` (existing files are kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for m in messages():
        path = folder / f"{m.id}.eml"
        if not path.exists():
            path.write_bytes(raw(m.id))
        written.append(path)
    return written


def of_case(case_id: str) -> list[bytes]:
    """The raw messages that carry ``X-Secondread-Case-Id: case_id``, oldest first."""
    found = []
    for m in reversed(messages()):
        if case_id in m.subject:
            data = raw(m.id)
            if f"X-Secondread-Case-Id: {case_id}".encode() in data:
                found.append(data)
    return found
