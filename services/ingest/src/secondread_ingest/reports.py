"""Text of an original report carried inside the study: a DICOM SR or an encapsulated PDF.

- Structured Report: every ``TextValue`` of the content tree (PS3.3 C.17.3, SR Document
  Content Module), depth first, each under its concept name when it has one.
- Encapsulated PDF Storage (PS3.3 A.45.1): the text layer of ``EncapsulatedDocument``.
"""

from __future__ import annotations

import io

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from secondread_ingest.errors import ReportExtractionError

ENCAPSULATED_PDF_STORAGE = "1.2.840.10008.5.1.4.1.1.104.1"
SR_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.88."


def is_report_class(sop_class_uid: str) -> bool:
    """Whether instances of ``sop_class_uid`` carry a report (SR or encapsulated PDF)."""
    return sop_class_uid == ENCAPSULATED_PDF_STORAGE or sop_class_uid.startswith(SR_CLASS_PREFIX)


def extract_report_text(ds: Dataset) -> str | None:
    """The report text of ``ds``; ``None`` when ``ds`` is not a report instance.

    Raises
    ------
    ReportExtractionError
        The instance is a report whose text cannot be read (a broken PDF, say).
    """
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class == ENCAPSULATED_PDF_STORAGE:
        text = _pdf_text(ds)
    elif sop_class.startswith(SR_CLASS_PREFIX):
        lines: list[str] = []
        try:
            _walk_sr(ds, lines)
        except ReportExtractionError:
            raise
        except Exception as exc:  # values the reader cannot decode (VR, length, charset)
            raise ReportExtractionError(
                f"structured report content unreadable: {type(exc).__name__}"
            ) from exc
        text = "\n".join(lines)
    else:
        return None
    # PostgreSQL text takes no NUL character; a report has no use for one.
    return (text or "").replace("\0", "").strip() or None


def _walk_sr(item: Dataset, lines: list[str]) -> None:
    children = item.get("ContentSequence", [])
    if not isinstance(children, Sequence | list):
        raise ReportExtractionError("structured report Content Sequence is not a sequence")
    for child in children:
        value = str(child.get("TextValue", "") or "").strip()
        if value:
            names = child.get("ConceptNameCodeSequence", [])
            heading = str(names[0].get("CodeMeaning", "")) if names else ""
            lines.append(f"{heading}: {value}" if heading else value)
        _walk_sr(child, lines)


def _pdf_text(ds: Dataset) -> str | None:
    document = ds.get("EncapsulatedDocument")
    if not document:
        raise ReportExtractionError("encapsulated PDF without EncapsulatedDocument")
    data = bytes(document)
    # PS3.3 A.45.1: the document is padded to even length with a single trailing NUL.
    try:
        reader = PdfReader(io.BytesIO(data.rstrip(b"\0")))
        text = "\n".join((page.extract_text() or "") for page in reader.pages)
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ReportExtractionError(f"encapsulated PDF unreadable: {type(exc).__name__}") from exc
    return text.strip() or None
