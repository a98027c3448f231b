"""A fast DICOM Part 10 writer for the common case (PS3.10 section 7; PS3.5 section 7.1.2).

pydicom's writer spends most of a de-identification in per-element overhead, although most
elements leave the engine exactly as they were read. :func:`part10_bytes` writes those raw
elements header-and-value straight from the bytes read, and hands only decoded or changed
elements (and sequences) to pydicom's ``write_data_element``. It produces the same bytes as
``Dataset.save_as(..., enforce_file_format=True)``; it applies only to Explicit VR Little
Endian datasets whose character set is unchanged, and returns ``None`` otherwise so the caller
falls back to pydicom.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import correct_ambiguous_vr_element, write_data_element
from pydicom.multival import MultiValue
from pydicom.tag import Tag
from pydicom.uid import UID
from pydicom.valuerep import PersonName

# VRs whose explicit-VR header has 2 reserved bytes and a 32-bit length (PS3.5 Table 7.1-1).
_LONG_VRS = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
)
_UNDEFINED = 0xFFFFFFFF
_PREAMBLE = b"\x00" * 128 + b"DICM"
_EXPLICIT_LE = (False, True)  # (is_implicit_VR, is_little_endian)


def _header(tag: int, vr: str, length: int) -> bytes:
    if vr in _LONG_VRS:
        return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr.encode(), 0, length)
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), length)


# String VRs whose value, when plain ASCII ``str``, encodes as the characters themselves (PS3.5
# 6.2): the same bytes in every character set the standard allows, as pydicom writes them.
_STRING_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)


_PLAIN = (str, UID)  # UID is a str without any encoding of its own


def string_value(elem: DataElement) -> bytes | None:
    """The encoded value of a plain-ASCII string element, or ``None`` to let pydicom write it
    (any other VR or value)."""
    if elem.VR not in _STRING_VRS:
        return None
    value = elem.value
    if value is None or value == "":
        return b""
    if type(value) is PersonName:
        # One component group, plain ASCII: pydicom encodes it as the characters themselves.
        text = str(value)
        if "=" in text or "\\" in text or not text.isascii():
            return None
        return _padded(text, b" ")
    if type(value) in _PLAIN:
        text = value
    elif isinstance(value, MultiValue) and all(type(v) in _PLAIN for v in value):
        text = "\\".join(value)
    else:
        return None
    if not text.isascii():
        return None
    return _padded(text, b"\x00" if elem.VR == "UI" else b" ")


def _padded(value: str, pad: bytes) -> bytes:
    raw = value.encode("ascii")
    return raw + pad if len(raw) % 2 else raw


def file_meta_bytes(meta: FileMetaDataset) -> bytes | None:
    """Preamble, prefix and File Meta Information group (PS3.10 Table 7.1-1), or ``None`` when
    ``meta`` holds anything but the usual elements."""
    uis = {
        0x00020002: meta.get("MediaStorageSOPClassUID"),
        0x00020003: meta.get("MediaStorageSOPInstanceUID"),
        0x00020010: meta.get("TransferSyntaxUID"),
        0x00020012: meta.get("ImplementationClassUID"),
    }
    allowed = {0x00020000, 0x00020001, *uis, 0x00020013}
    if any(v is None for v in uis.values()) or any(int(t) not in allowed for t in meta.keys()):
        return None
    body = bytearray(_header(0x00020001, "OB", 2) + b"\x00\x01")
    for tag, value in uis.items():
        encoded = _padded(str(value), b"\x00")
        body += _header(tag, "UI", len(encoded)) + encoded
    name = meta.get("ImplementationVersionName")
    if name:
        encoded = _padded(str(name), b" ")
        body += _header(0x00020013, "SH", len(encoded)) + encoded
    group_length = _header(0x00020000, "UL", 4) + struct.pack("<I", len(body))
    return _PREAMBLE + group_length + bytes(body)


def element_bytes(elem: DataElement) -> bytes:
    """One element encoded in Explicit VR Little Endian, default character set."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_data_element(fp, elem)
    return fp.getvalue()


def dataset_bytes(ds: Dataset, extra: Mapping[int, bytes] | None = None) -> bytes | None:
    """The encoded dataset (without file meta), or ``None`` when the fast path does not apply.

    ``extra`` maps tags absent from ``ds`` to their already-encoded elements (for constant
    elements the caller encodes once), merged in tag order.
    """
    if ds.original_encoding != _EXPLICIT_LE or ds.original_character_set != ds._character_set:
        return None
    extra = extra or {}
    if any(tag in ds for tag in extra):
        return None
    encodings = ds.get("SpecificCharacterSet", "iso8859")
    out = bytearray()
    slow = DicomBytesIO()
    slow.is_little_endian = True
    slow.is_implicit_VR = False
    for tag in sorted([*ds.keys(), *map(Tag, extra)]):
        if tag.element == 0 and tag.group > 6:
            continue  # retired group lengths are not written (PS3.5 7.2)
        if tag in extra:
            out += extra[tag]
            continue
        elem: DataElement | RawDataElement = ds.get_item(tag)
        if (
            isinstance(elem, RawDataElement)
            and elem.value is not None
            and elem.length != _UNDEFINED
            and elem.VR is not None
            and len(elem.VR) == 2
        ):
            out += _header(tag, elem.VR, len(elem.value))
            out += elem.value
            continue
        if isinstance(elem, DataElement):
            value = string_value(elem)
            if value is not None:
                out += _header(tag, elem.VR, len(value))
                out += value
                continue
        if isinstance(elem, RawDataElement) and elem.VR is None:
            # Read as implicit VR although the transfer syntax is explicit (a writer's bug
            # pydicom tolerates): written with the dictionary's VR, as the syntax requires.
            elem = ds[tag]
        if elem.VR is not None and " or " in elem.VR:  # e.g. "OB or OW" after such a read
            elem = correct_ambiguous_vr_element(elem, ds, True)
        start = slow.tell()
        write_data_element(slow, elem, encodings)
        out += slow.getvalue()[start:]
    return bytes(out)


def _explicit_le(transfer_syntax: str | None) -> bool:
    """Whether a transfer syntax encodes the dataset as plain Explicit VR Little Endian (not
    implicit, big endian or deflated: PS3.5 A.2, A.5)."""
    if not transfer_syntax:
        return False
    ts = UID(transfer_syntax)
    return (
        ts.is_transfer_syntax
        and not ts.is_implicit_VR
        and ts.is_little_endian
        and not ts.is_deflated
    )


def part10_bytes(ds: Dataset, extra: Mapping[int, bytes] | None = None) -> bytes | None:
    """``ds`` with its ``file_meta`` (and ``extra``, see :func:`dataset_bytes`) as a Part 10
    file, or ``None`` to fall back to pydicom."""
    meta = getattr(ds, "file_meta", None)
    if meta is None or not _explicit_le(meta.get("TransferSyntaxUID")):
        return None
    head = file_meta_bytes(meta)
    if head is None:
        return None
    body = dataset_bytes(ds, extra)
    return None if body is None else head + body
