"""The case form and DICOM object validation: pure logic, no I/O frameworks.

Validation follows DICOM PS3.10 (file format): a 128-byte preamble, ``DICM``, file meta
information (group 0002) whose Media Storage SOP Class/Instance UIDs agree with the dataset.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Literal

import pydicom
from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_dataset, read_preamble
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import DeflatedExplicitVRLittleEndian

from secondread_ingest.errors import InputRejected, ReportExtractionError
from secondread_ingest.reports import extract_report_text, is_report_class
from secondread_shared.events import Contact, Urgency
from secondread_shared.text import refuse_nul

_DEFER = 64 * 1024
_UNDEFINED = 0xFFFFFFFF
_PIXEL_DATA = Tag(0x7FE0, 0x0010)
_UID = r"^[0-9]+(\.[0-9]+)*$"
_UIDS = ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID")

MAX_SEQUENCE_DEPTH = 64
"""Deepest sequence nesting accepted (PS3.5 7.5 sets none). Real objects nest a few levels
(SR content trees about ten); far deeper nesting only exhausts the readers' recursion, here and
in deidentify, so it is refused as ``too_deep``."""
MAX_SEQUENCE_ITEMS = 50_000
"""Most sequence items (and pixel data fragments) accepted in one instance. The reader makes an
object of every item: a few megabytes of empty items would take gigabytes and minutes."""
MAX_INFLATED = 256 * 1024**2
"""Largest dataset accepted after inflating a Deflated Explicit VR Little Endian one (PS3.5
A.5): the reader inflates the whole dataset in memory, so a small deflate bomb would not stay
small."""
_ITEM_TAGS = (b"\xfe\xff\x00\xe0", b"\xff\xfe\xe0\x00")  # (FFFE,E000), little and big endian
_DEFLATED_UID = DeflatedExplicitVRLittleEndian.encode()


class IntakeForm(BaseModel):
    """The ``intake`` part of ``POST /v1/cases``."""

    model_config = ConfigDict(extra="forbid")

    clinical_question: str = Field(min_length=1, max_length=20_000)
    original_report: str = Field(default="", max_length=200_000)
    urgency: Urgency = Urgency.ROUTINE
    referring_physician: Contact
    patient_email: EmailStr | None = None
    jurisdiction: str = Field(default="US", min_length=2, max_length=16)
    consent: bool
    """The patient's consent to processing; a case without it is refused."""
    patient_delivery_consent: bool = False
    """The patient's consent to receive the report at ``patient_email`` (both are needed)."""
    delivery_channels: list[Literal["email", "webhook", "fhir", "dicom"]] | None = None
    """The hospital's channels to deliver this case over (all of them when not given)."""
    study_instance_uids: list[str] = Field(default_factory=list, max_length=100)
    """Studies that will come by C-STORE or STOW-RS (a case opened with the intake alone)."""
    expected_instances: int | None = Field(default=None, ge=1)
    """Declared instance count: the case is complete as soon as this many have arrived."""
    fetch_priors: bool = False
    """Allow ingest to query the hospital's PACS for this patient's prior studies."""

    @model_validator(mode="after")
    def _patient_delivery(self) -> IntakeForm:
        if self.patient_delivery_consent and self.patient_email is None:
            raise ValueError("patient_delivery_consent needs patient_email")
        return self

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        return refuse_nul(value)  # the intake is kept in PostgreSQL (jsonb, text)

    @field_validator("study_instance_uids")
    @classmethod
    def _uids(cls, value: list[str]) -> list[str]:
        for uid in value:
            if len(uid) > 64 or not re.match(_UID, uid):
                raise ValueError("not a DICOM UID (PS3.5 9.1)")
        return value


@dataclass(frozen=True)
class InstanceInfo:
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str = ""
    patient_id: str = ""
    issuer_of_patient_id: str = ""
    report_text: str | None = None
    """Text of a DICOM SR or encapsulated PDF report, when the instance is one."""
    report_error: str | None = None
    """Why a report instance's text could not be extracted."""


def inspect_instance(data: bytes, name: str, *, max_inflated: int = MAX_INFLATED) -> InstanceInfo:
    """Parse one DICOM Part 10 file and return its identifying UIDs.

    Raises
    ------
    InputRejected
        ``not_dicom``, ``truncated``, ``too_deep``, ``too_many_items``, ``too_large`` (a
        deflated dataset inflating past ``max_inflated``), ``bad_charset``, ``missing_uid``,
        ``bad_uid`` or ``meta_mismatch``, naming ``name``.
    """
    unreadable = InputRejected("truncated", f"{name}: truncated or unreadable DICOM")
    size, items = _scan(data, name, max_inflated)
    if items > MAX_SEQUENCE_ITEMS:
        raise InputRejected(
            "too_many_items", f"{name}: more than {MAX_SEQUENCE_ITEMS} sequence items"
        )
    try:
        # Values above _DEFER bytes (pixel data) are not copied; their bounds are checked below.
        ds = pydicom.dcmread(io.BytesIO(data), force=False, defer_size=_DEFER)
    except InvalidDicomError as exc:
        raise InputRejected("not_dicom", f"{name}: not a DICOM Part 10 file") from exc
    except RecursionError as exc:  # undefined-length sequences are parsed as they are read
        raise _too_deep(name) from exc
    except Exception as exc:
        # What pydicom raises on bytes it cannot parse: EOFError, struct.error, its own
        # BytesLengthException (no ValueError), ...
        if _raised_in(exc, "charset.py"):
            raise _bad_charset(name) from exc
        raise unreadable from exc
    try:
        pixel_bytes, end = -1, 0
        # The reader has parsed every element header; values are checked against the bytes we
        # have, not decoded (decoding every value cost more than the rest of a C-STORE).
        for tag in ds.keys():
            # keep_deferred: a deferred value (pixel data) is bounds-checked, not read.
            raw = ds.get_item(tag, keep_deferred=True)
            if not isinstance(raw, RawDataElement):
                continue
            if raw.value is None and raw.length:
                # Deferred: the value must lie inside the bytes we have.
                if raw.value_tell + raw.length > size:
                    raise unreadable
                length = raw.length
            elif raw.length != _UNDEFINED and len(raw.value or b"") < raw.length:
                raise unreadable
            else:
                length = len(raw.value or b"")
            end = raw.value_tell + length if raw.length != _UNDEFINED else size
            if raw.tag == _PIXEL_DATA:
                pixel_bytes = length
        if 0 < size - end < 8 and ds:
            # The reader stops without a word at a partial element header: a file cut there.
            raise unreadable
        _check_depth(ds, name)
        if "TransferSyntaxUID" not in ds.file_meta:
            raise InputRejected("meta_mismatch", f"{name}: file meta has no TransferSyntaxUID")
        short = pixel_bytes >= 0 and pixel_bytes < _expected_pixel_bytes(ds)
    except InputRejected:
        raise
    except RecursionError as exc:
        raise _too_deep(name) from exc
    except Exception as exc:
        raise unreadable from exc
    if short:
        raise InputRejected("truncated", f"{name}: pixel data shorter than its image size")
    try:
        if is_report_class(str(ds.get("SOPClassUID", ""))):
            ds = pydicom.dcmread(io.BytesIO(data), force=False)  # reports are small: read whole
        found = {kw: str(ds.get(kw, "") or "").strip() for kw in _UIDS}
    except RecursionError as exc:
        raise _too_deep(name) from exc
    except Exception as exc:
        raise unreadable from exc
    missing = [kw for kw in _UIDS if not found[kw]]
    if missing:
        raise InputRejected("missing_uid", f"{name}: missing {', '.join(missing)}")
    for kw in _UIDS:
        if len(found[kw]) > 64 or not re.match(_UID, found[kw]):
            raise InputRejected(
                "bad_uid", f"{name}: {kw} is not a DICOM UID (digits and dots, PS3.5 9.1)"
            )
    meta = ds.file_meta
    for meta_kw, ds_kw in (
        ("MediaStorageSOPInstanceUID", "SOPInstanceUID"),
        ("MediaStorageSOPClassUID", "SOPClassUID"),
    ):
        if meta_kw in meta and str(meta[meta_kw].value) != found[ds_kw]:
            raise InputRejected(
                "meta_mismatch", f"{name}: file meta {meta_kw} disagrees with {ds_kw}"
            )
    report_text: str | None = None
    report_error: str | None = None
    try:
        report_text = extract_report_text(ds)
    except ReportExtractionError as exc:
        report_error = str(exc)
    return InstanceInfo(
        study_instance_uid=found["StudyInstanceUID"],
        series_instance_uid=found["SeriesInstanceUID"],
        sop_instance_uid=found["SOPInstanceUID"],
        sop_class_uid=found["SOPClassUID"],
        transfer_syntax_uid=str(meta.TransferSyntaxUID),
        patient_id=_text(ds, "PatientID"),
        issuer_of_patient_id=_text(ds, "IssuerOfPatientID"),
        report_text=report_text,
        report_error=report_error,
    )


def _items(buffer: bytes) -> int:
    return sum(buffer.count(tag) for tag in _ITEM_TAGS)


def _scan(data: bytes, name: str, max_inflated: int) -> tuple[int, int]:
    """Size of the bytes the reader parses the dataset from, and the item tags among them.

    That is ``data`` itself, or, when its transfer syntax is Deflated Explicit VR Little Endian
    (PS3.5 A.5), the dataset inflated: measured a mebibyte at a time and refused past
    ``max_inflated``, before the reader inflates it whole.
    """
    if _DEFLATED_UID not in data[:_DEFER]:
        return len(data), _items(data)
    fp = io.BytesIO(data)
    try:
        read_preamble(fp, False)
        meta = read_dataset(fp, False, True, stop_when=lambda tag, *_: tag.group != 2)
        deflated = meta.get("TransferSyntaxUID", "") == DeflatedExplicitVRLittleEndian
    except Exception:
        deflated = False  # no readable file meta: the reader refuses it by name
    if not deflated:
        return len(data), _items(data)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    pending, size, items, tail = data[fp.tell() :], 0, 0, b""
    try:
        while not inflater.eof:
            chunk = inflater.decompress(pending, 1024 * 1024)
            pending = inflater.unconsumed_tail
            if not chunk and not pending:
                raise InputRejected("truncated", f"{name}: the deflated dataset is cut short")
            size += len(chunk)
            if size > max_inflated:
                raise InputRejected(
                    "too_large", f"{name}: the deflated dataset inflates beyond {max_inflated}"
                    " bytes", status=413,
                )  # fmt: skip
            window = tail + chunk  # an item tag split across two chunks is counted once
            items += _items(window)
            tail = window[-3:]
    except zlib.error as exc:
        raise InputRejected("truncated", f"{name}: the deflated dataset is corrupt") from exc
    return size, items


def _raised_in(exc: BaseException, filename: str) -> bool:
    """Whether ``exc`` was raised inside a module file called ``filename``."""
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last, tb = tb, tb.tb_next
    return last is not None and last.tb_frame.f_code.co_filename.endswith(filename)


def _bad_charset(name: str) -> InputRejected:
    # pydicom looks a Specific Character Set up as a codec name; some values (with a NUL, say)
    # make that lookup fail with a ValueError instead of the LookupError it recovers from.
    return InputRejected(
        "bad_charset", f"{name}: Specific Character Set (0008,0005) is not a character set"
    )


def _too_deep(name: str) -> InputRejected:
    return InputRejected(
        "too_deep", f"{name}: sequences nested deeper than {MAX_SEQUENCE_DEPTH} levels"
    )


def _check_depth(ds: pydicom.Dataset, name: str) -> None:
    """Refuse nesting beyond :data:`MAX_SEQUENCE_DEPTH`, without recursion: each level's
    sequences are parsed only when the walk reaches them."""
    todo: list[tuple[pydicom.Dataset, int]] = [(ds, 0)]
    while todo:
        item, depth = todo.pop()
        for tag in item.keys():
            raw = item.get_item(tag, keep_deferred=True)
            vr = raw.VR
            if vr != "SQ" and not (vr in (None, "UN") and _dictionary_vr(tag) == "SQ"):
                continue
            value = item[tag].value
            if not isinstance(value, Sequence) or not value:
                continue
            if depth + 1 > MAX_SEQUENCE_DEPTH:
                raise _too_deep(name)
            todo.extend((child, depth + 1) for child in value if isinstance(child, pydicom.Dataset))


def _dictionary_vr(tag: int) -> str | None:
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


def _text(ds: pydicom.Dataset, keyword: str) -> str:
    """A text value as stored in PostgreSQL (which takes no NUL character); ``""`` when it
    cannot be decoded at all."""
    try:
        value = str(ds.get(keyword, "") or "")
    except Exception:  # a character set the reader cannot apply: the value is not needed
        return ""
    return value.replace("\0", "").strip()


def _expected_pixel_bytes(ds: pydicom.Dataset) -> int:
    """Bytes of native (uncompressed) pixel data the header promises; 0 when encapsulated."""
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        return 0
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    bits = int(ds.get("BitsAllocated", 0))
    pixels = int(ds.get("Rows", 0)) * int(ds.get("Columns", 0)) * int(ds.get("SamplesPerPixel", 1))
    return (pixels * frames * bits + 7) // 8


def iter_zip(
    fileobj: IO[bytes], name: str, *, max_members: int, max_ratio: float, max_total: int
) -> Iterator[tuple[str, bytes]]:
    """Yield ``(member name, bytes)`` of each file in a zip, refusing bombs and traversal.

    Directories and a ``DICOMDIR`` index are skipped; the index is not an instance.
    """
    try:
        zf = zipfile.ZipFile(fileobj)
    except zipfile.BadZipFile as exc:
        raise InputRejected("bad_zip", f"{name}: not a readable zip archive") from exc
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > max_members:
            raise InputRejected("zip_too_many", f"{name}: more than {max_members} members")
        total = 0
        for info in infos:
            parts = info.filename.replace("\\", "/").split("/")
            if info.filename.startswith("/") or ".." in parts or ":" in parts[0]:
                raise InputRejected(
                    "zip_traversal", f"{name}: unsafe member path {info.filename!r}"
                )
            total += info.file_size
            if total > max_total:
                raise InputRejected(
                    "too_large", f"{name}: unpacks beyond {max_total} bytes", status=413
                )
            if info.compress_size and info.file_size / info.compress_size > max_ratio:
                raise InputRejected(
                    "zip_bomb", f"{name}: member {info.filename!r} compression ratio too high"
                )
            if parts[-1].upper() == "DICOMDIR":
                continue
            with zf.open(info) as member:
                data = member.read(info.file_size + 1)
            if len(data) != info.file_size:
                raise InputRejected(
                    "zip_bomb", f"{name}: member {info.filename!r} larger than declared"
                )
            yield info.filename, data
