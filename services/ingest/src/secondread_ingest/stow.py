"""STOW-RS (DICOM PS3.18 10.5, Store Transaction): request parsing and the store response.

The request body is ``multipart/related; type="application/dicom"``, one DICOM Part 10
instance per part (PS3.18 10.5.1.2). It is parsed incrementally: each part is spooled to a
temporary file as it streams in and handed over when complete, so a large request is never held
in memory. The response (PS3.18 10.5.3, Table 10.5.3-1, in the DICOM JSON model of PS3.18 F.2)
lists stored instances in ReferencedSOPSequence (0008,1199) and refused ones, with their Failure
Reason (0008,1197), in FailedSOPSequence (0008,1198).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import IO, Any

from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header

from secondread_ingest.errors import InputRejected

_PART_MEMORY = 8 * 1024 * 1024


@dataclass
class Part:
    """One body part: its headers (lower-case names) and its bytes in a temporary file."""

    headers: dict[str, str]
    file: IO[bytes]
    size: int = 0

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def read(self) -> bytes:
        self.file.seek(0)
        return self.file.read()

    def close(self) -> None:
        self.file.close()


def request_boundary(content_type: str) -> bytes:
    """The multipart boundary of a STOW-RS request, checking its media types.

    Raises
    ------
    InputRejected
        ``wrong_content_type`` (415): not ``multipart/related`` with ``type`` application/dicom.
    """
    ctype, params = parse_options_header(content_type)
    if ctype != b"multipart/related":
        raise InputRejected(
            "wrong_content_type",
            'STOW-RS takes multipart/related; type="application/dicom" (PS3.18 10.5.1.2)',
            status=415,
        )
    kind = params.get(b"type", b"application/dicom").strip(b'"').lower()
    if kind != b"application/dicom":
        raise InputRejected(
            "wrong_content_type",
            f"STOW-RS parts of type {kind.decode(errors='replace')!r} are not supported;"
            " send application/dicom",
            status=415,
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise InputRejected("bad_multipart", "multipart/related without a boundary", status=400)
    return boundary.strip(b'"')


@dataclass
class PartReader:
    """Feed body chunks; collect finished parts. Refuses a part beyond ``max_part``."""

    boundary: bytes
    max_part: int
    done: list[Part] = field(default_factory=list)
    _current: Part | None = None
    _field: bytearray = field(default_factory=bytearray)
    _value: bytearray = field(default_factory=bytearray)
    _headers: dict[str, str] = field(default_factory=dict)
    _parser: Any = None
    _too_large: bool = False

    def __post_init__(self) -> None:
        callbacks: Any = {
            "on_part_begin": self._begin,
            "on_part_data": self._data,
            "on_part_end": self._end,
            "on_header_field": lambda d, s, e: self._field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._value.extend(d[s:e]),
            "on_header_end": self._header_end,
        }
        self._parser = MultipartParser(self.boundary, callbacks)

    def _begin(self) -> None:
        self._headers = {}

    def _header_end(self) -> None:
        name = self._field.decode("latin-1").strip().lower()
        self._headers[name] = self._value.decode("latin-1").strip()
        self._field.clear()
        self._value.clear()

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._current is None:
            self._current = Part(
                dict(self._headers), tempfile.SpooledTemporaryFile(max_size=_PART_MEMORY)
            )
        self._current.size += end - start
        if self._current.size > self.max_part:
            self._too_large = True
            return
        self._current.file.write(data[start:end])

    def _end(self) -> None:
        part = self._current or Part(dict(self._headers), tempfile.SpooledTemporaryFile())
        self._current = None
        if self._too_large:
            part.close()
            raise InputRejected("too_large", f"a part exceeds {self.max_part} bytes", status=413)
        self.done.append(part)

    def feed(self, chunk: bytes) -> list[Part]:
        """Parse ``chunk``; return the parts it completed."""
        try:
            self._parser.write(chunk)
        except InputRejected:
            raise
        except Exception as exc:
            raise InputRejected("bad_multipart", f"malformed multipart body: {exc}") from exc
        out, self.done = self.done, []
        return out

    def finish(self) -> None:
        try:
            self._parser.finalize()
        except Exception as exc:
            raise InputRejected("bad_multipart", f"malformed multipart body: {exc}") from exc
        if self._current is not None:
            self._current.close()
            raise InputRejected("bad_multipart", "multipart body ends inside a part")


@dataclass(frozen=True)
class Stored:
    sop_class_uid: str
    sop_instance_uid: str
    retrieve_url: str
    study_instance_uid: str = ""


@dataclass(frozen=True)
class Failed:
    sop_class_uid: str
    sop_instance_uid: str
    failure_reason: int
    comment: str


def warning_header(failed: list[Failed]) -> str | None:
    """An RFC 7234 ``Warning`` (code 299) naming the first refusals (PS3.18 10.5.3)."""
    if not failed:
        return None
    text = "; ".join(f.comment for f in failed[:3]).replace('"', "'")
    more = f" (+{len(failed) - 3} more)" if len(failed) > 3 else ""
    return f'299 secondread "{text}{more}"'[:1000]


def _ui(value: str) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}


def store_response(
    stored: list[Stored], failed: list[Failed], study_url: str | None
) -> tuple[int, dict[str, Any]]:
    """HTTP status and the Store Instances Response (DICOM JSON) of a STOW-RS request.

    200 when every instance was stored, 202 when some were refused, 409 when none was stored
    (PS3.18 10.5.3.1).
    """
    body: dict[str, Any] = {}
    if study_url:
        body["00081190"] = {"vr": "UR", "Value": [study_url]}
    if failed:
        body["00081198"] = {
            "vr": "SQ",
            "Value": [
                {
                    "00081150": _ui(f.sop_class_uid),
                    "00081155": _ui(f.sop_instance_uid),
                    "00081197": {"vr": "US", "Value": [f.failure_reason]},
                }
                for f in failed
            ],
        }
    if stored:
        body["00081199"] = {
            "vr": "SQ",
            "Value": [
                {
                    "00081150": _ui(s.sop_class_uid),
                    "00081155": _ui(s.sop_instance_uid),
                    "00081190": {"vr": "UR", "Value": [s.retrieve_url]},
                }
                for s in stored
            ],
        }
    if not failed:
        return 200, body
    if stored:
        return 202, body
    return 409, body
