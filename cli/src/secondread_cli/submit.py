"""``secondread submit``: send a case from a folder through ingest's HTTP API."""

from __future__ import annotations

import json
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx


class SubmitError(RuntimeError):
    """The submission failed; the message says why (ingest's error code included)."""


class _ProgressReader:
    """A file wrapper that reports bytes read (httpx streams multipart parts by ``read``)."""

    def __init__(self, fh: IO[bytes], on_read: Callable[[int], None]) -> None:
        self._fh = fh
        self._on_read = on_read

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self._on_read(len(data))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


def zip_folder(folder: Path, dest: IO[bytes], on_file: Callable[[int, int], None]) -> int:
    """Zip every file under ``folder`` (stored, no compression: DICOM pixel data rarely shrinks)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if not files:
        raise SubmitError(f"{folder}: no files to submit")
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for i, path in enumerate(files, 1):
            zf.write(path, arcname=str(path.relative_to(folder)))
            on_file(i, len(files))
    return len(files)


def submit_case(
    *,
    url: str,
    api_key: str,
    folder: Path,
    intake: dict[str, Any],
    on_zip: Callable[[int, int], None] = lambda _i, _n: None,
    on_upload: Callable[[int, int], None] = lambda _done, _total: None,
    timeout_s: float = 600.0,
    idempotency_key: str | None = None,
    attempts: int = 4,
    on_retry: Callable[[int, str], None] = lambda _attempt, _why: None,
) -> dict[str, Any]:
    """Zip ``folder``, upload it with ``intake`` and return ingest's JSON answer.

    Every attempt carries the same ``Idempotency-Key`` (a new one per call unless given), so
    an upload retried after a dropped connection, a timeout or a 5xx opens its case once.
    """
    key = idempotency_key or str(uuid.uuid4())
    if not folder.is_dir():
        raise SubmitError(f"{folder}: not a directory")
    with tempfile.TemporaryFile() as tmp:
        zip_folder(folder, tmp, on_zip)
        total = tmp.tell()
        tmp.seek(0)
        sent = 0

        def progressed(n: int) -> None:
            nonlocal sent
            sent += n
            on_upload(sent, total)

        files = {
            "intake": (None, json.dumps(intake), "application/json"),
            "files": ("study.zip", _ProgressReader(tmp, progressed), "application/zip"),
        }
        for attempt in range(1, attempts + 1):
            tmp.seek(0)
            sent = 0
            why = ""
            try:
                resp = httpx.post(
                    f"{url.rstrip('/')}/v1/cases",
                    files=files,  # type: ignore[arg-type]
                    headers={"X-API-Key": api_key, "Idempotency-Key": key},
                    timeout=timeout_s,
                )
                if resp.status_code < 500:
                    break
                why = f"HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                if attempt == attempts:
                    raise SubmitError(
                        f"cannot reach ingest at {url}: {type(exc).__name__}"
                    ) from exc
                why = type(exc).__name__
            if attempt < attempts:
                on_retry(attempt, why)
                time.sleep(min(2.0**attempt, 30.0))
    if resp.status_code not in (200, 201):
        try:
            err = resp.json()["error"]
            detail = f"{err['code']}: {err['message']}"
        except (ValueError, KeyError, TypeError):
            detail = resp.text[:500]
        raise SubmitError(f"ingest refused the case (HTTP {resp.status_code}) {detail}")
    answer: dict[str, Any] = resp.json()
    return answer
