"""A corpus of bad input, one item per refusal ingest must make (issue 3, "Validation").

Each item is synthetic: built from :mod:`tests.synthetic`, then broken in one way.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import pydicom

from tests.synthetic import Patient, ct_study, zip_bytes


@dataclass(frozen=True)
class Bad:
    name: str
    filename: str
    data: bytes
    content_type: str
    code: str
    """The error code ingest answers with."""
    dimse_status: int | None = None
    """The C-STORE failure status, for items a DIMSE peer can send."""


def _rewrite(data: bytes, change: object) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    change(ds)  # type: ignore[operator]
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


def corpus(seed: str) -> list[Bad]:
    good = ct_study(Patient(patient_id=f"BAD-{seed[:8]}"), count=1, seed=seed)[0]

    def no_sop(ds: pydicom.Dataset) -> None:
        del ds.SOPInstanceUID

    def no_study(ds: pydicom.Dataset) -> None:
        del ds.StudyInstanceUID

    def meta(ds: pydicom.Dataset) -> None:
        ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.10.1138.999"

    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.dcm", b"\0" * 20_000_000)
    return [
        Bad("not DICOM", "notes.dcm", b"this is not a DICOM file\n" * 50, "application/dicom",
            "not_dicom", 0xC000),
        Bad("truncated", "half.dcm", good[: len(good) // 2], "application/dicom", "truncated"),
        Bad("missing SOP Instance UID", "nosop.dcm", _rewrite(good, no_sop),
            "application/dicom", "missing_uid"),
        Bad("missing Study Instance UID", "nostudy.dcm", _rewrite(good, no_study),
            "application/dicom", "missing_uid", 0xC002),
        Bad("file meta disagrees", "meta.dcm", _rewrite(good, meta), "application/dicom",
            "meta_mismatch"),
        Bad("zip bomb", "bomb.zip", bomb.getvalue(), "application/zip", "zip_bomb"),
        Bad("zip path traversal", "evil.zip", zip_bytes({"../../etc/evil.dcm": good}),
            "application/zip", "zip_traversal"),
        Bad("wrong content type", "report.txt", b"hello", "text/plain", "wrong_content_type"),
    ]  # fmt: skip
