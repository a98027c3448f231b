"""The de-identification engine: one DICOM instance in, one de-identified instance out.

Implements the DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile (E.2) from
Table E.1-1 of edition :data:`~secondread_deidentify.tables.EDITION`, with the options of
:class:`~secondread_deidentify.options.DeidOptions`:

- every action of the table (D, Z, X, K, C, U and the conditional ones, see :func:`resolve`),
  applied at any depth of nesting;
- private attributes removed (Retain Safe Private is not offered);
- ``PatientID`` replaced by a keyed HMAC of issuer and id, ``PatientName`` derived from it;
- UIDs remapped through a keyed hash, consistently across studies, restarts and replicas;
- dates shifted by a per-patient offset (E.3.6), patient characteristics kept (E.3.10),
  descriptors cleaned of known identifiers (E.3.5);
- ``PatientIdentityRemoved``, ``DeidentificationMethod`` and
  ``DeidentificationMethodCodeSequence`` (CID 7050) set (PS3.15 E.1.1 item 6);
- the File Meta Information rebuilt from the de-identified dataset (PS3.10 7.1);
- the result checked against the quarantine policy (:mod:`secondread_deidentify.policy`).

Attributes the table does not list are kept, as the profile says, with three safeguards: a
person name (PN) is emptied, a non-registered UID is remapped, and any other text is scrubbed of
the identifiers read from this instance's own header.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property, lru_cache, partial
from pathlib import Path
from typing import Any, Final, TypeVar

import pydicom
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID

from secondread_deidentify.dates import shift_da, shift_dt
from secondread_deidentify.errors import InvalidInstanceError
from secondread_deidentify.options import CODING_SCHEME, DeidOptions
from secondread_deidentify.policy import DEFAULT_RULES, Rule, quarantine_reason
from secondread_deidentify.pseudonyms import (
    date_shift_days,
    patient_pseudonym,
    pseudonym_name,
    remap_uid,
)
from secondread_deidentify.scrub import KnownIdentifiers, Scrubber
from secondread_deidentify.tables import (
    CLEAN_DESCRIPTORS,
    NOT_SHIFTED,
    REMOVED_FREE_TEXT,
    RETAIN_PATIENT_CHARACTERISTICS,
    TEMPORAL_VRS,
    Action,
    ProfileTable,
    load_table,
)
from secondread_deidentify.writer import element_bytes, part10_bytes, string_value


class Op(Enum):
    """What the engine does to one element, once the table and the options are resolved."""

    KEEP = "keep"
    REMOVE = "remove"
    EMPTY = "empty"
    DUMMY = "dummy"
    CLEAN = "clean"
    SHIFT = "shift"
    REMAP = "remap"
    RECURSE = "recurse"


# UIDs that name a class or a syntax, never an instance: not remapped even when not registered.
KEEP_UIDS: Final = frozenset(
    {
        "SOPClassUID",
        "ReferencedSOPClassUID",
        "ReferencedSOPClassUIDInFile",
        "AffectedSOPClassUID",
        "RequestedSOPClassUID",
        "MediaStorageSOPClassUID",
        "RelatedGeneralSOPClassUID",
        "OriginalSpecializedSOPClassUID",
        "TransferSyntaxUID",
        "ReferencedTransferSyntaxUIDInFile",
        "ImplementationClassUID",
        "CodingSchemeUID",
        "ContextGroupExtensionCreatorUID",
        "MappingResourceUID",
    }
)
# Sequences whose "D" keeps the structure and de-identifies every item (SR content trees);
# any other sequence with "D" is replaced by one empty item (a dummy consistent with SQ).
RECURSE_ON_D: Final = frozenset({"ContentSequence"})
TEXT_VRS: Final = frozenset({"LO", "SH", "LT", "ST", "UT", "UC"})

DUMMY: Final[dict[str, Any]] = {
    "AE": "ANONYMIZED",
    "AS": "000D",
    "CS": "ANONYMIZED",
    "DA": "19000101",
    "DS": "0",
    "DT": "19000101000000",
    "IS": "0",
    "LO": "ANONYMIZED",
    "LT": "ANONYMIZED",
    "PN": "ANONYMIZED",
    "SH": "ANONYMIZED",
    "ST": "ANONYMIZED",
    "TM": "000000",
    "UC": "ANONYMIZED",
    "UR": "http://example.invalid/",
    "UT": "ANONYMIZED",
}
# PS3.5 Table 6.2-1: a cleaned value that grew past its VR's maximum length is cut.
MAX_LENGTH: Final = {"SH": 16, "LO": 64, "ST": 1024, "LT": 10240, "PN": 64 * 5}
_BINARY_VRS: Final = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
MEMO_LIMIT: Final = 100_000
"""Entries an engine memo (changed values, identities) holds before it is emptied."""
_V = TypeVar("_V")


def resolve(action: Action, keyword: str, vr: str, options: DeidOptions) -> Op:
    """The operation for an attribute of Table E.1-1 under ``options``.

    Options first: Retain Patient Characteristics (K or C), Clean Descriptors (C), Retain
    Longitudinal Temporal Information with Modified Dates (dates and date-times shifted, times
    kept). Then the Basic Profile action. A conditional action (``X/Z``, ``X/D``, ``Z/D``,
    ``X/Z/D``, ``X/Z/U*``) depends on the attribute's Type in the IOD; the engine does not look
    Types up, so it takes the choice that conforms for every Type: ``Z`` over ``X`` and ``D``
    over ``X`` or ``Z``; sequences are removed where ``X`` is allowed and no UID is to be kept.
    """
    if options.retain_patient_characteristics:
        kept = RETAIN_PATIENT_CHARACTERISTICS.get(keyword)
        if kept is Action.K:
            return Op.RECURSE if vr == "SQ" else Op.KEEP
        if kept is Action.C:
            return Op.CLEAN
    if (
        options.clean_descriptors
        and keyword in CLEAN_DESCRIPTORS
        and keyword not in REMOVED_FREE_TEXT
        and vr != "SQ"
    ):
        return Op.CLEAN
    if (
        options.retain_longitudinal_modified_dates
        and vr in TEMPORAL_VRS
        and keyword not in NOT_SHIFTED
    ):
        return Op.SHIFT
    if vr == "SQ":
        if action in (Action.K, Action.X_Z_U):
            return Op.RECURSE
        if action is Action.D:
            return Op.RECURSE if keyword in RECURSE_ON_D else Op.DUMMY
        if action in (Action.Z, Action.X_Z):
            return Op.EMPTY
        if action is Action.Z_D:
            return Op.DUMMY
        return Op.REMOVE  # X, X/D, X/Z/D
    return {
        Action.D: Op.DUMMY,
        Action.Z: Op.EMPTY,
        Action.X: Op.REMOVE,
        Action.K: Op.KEEP,
        Action.C: Op.CLEAN,
        Action.U: Op.REMAP,
        Action.Z_D: Op.DUMMY,
        Action.X_Z: Op.EMPTY,
        Action.X_D: Op.DUMMY,
        Action.X_Z_D: Op.DUMMY,
        Action.X_Z_U: Op.REMAP,
    }[action]


@dataclass(frozen=True)
class Profile:
    """Table E.1-1 resolved for one set of options: tag -> operation."""

    table: ProfileTable
    options: DeidOptions
    ops: dict[int, Op]

    def op(self, tag: int, vr: str) -> Op | None:
        """The operation for ``tag``; ``None`` when the table does not list it."""
        found = self.ops.get(tag)
        if found is not None:
            return found
        action = self.table.action(tag)  # repeating groups (curves, overlays)
        if action is None:
            return None
        return resolve(action, "", vr, self.options)


@lru_cache(maxsize=8)
def build_profile(options: DeidOptions) -> Profile:
    """Resolve the table of :data:`~secondread_deidentify.tables.EDITION` for ``options``."""
    table = load_table()
    ops: dict[int, Op] = {}
    for tag, action in table.actions.items():
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            vr = "UN"
        ops[tag] = resolve(action, keyword_for_tag(tag), vr.split(" ")[0], options)
    return Profile(table, options, ops)


@dataclass(frozen=True)
class Identity:
    """What the instance said about the patient: kept only in the vault, never logged."""

    patient_id: str
    issuer: str
    patient_name: str
    birth_date: str
    accession_number: str
    other_ids: tuple[str, ...] = ()
    other_names: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    institutions: tuple[str, ...] = ()

    def known(self) -> KnownIdentifiers:
        """The identifiers to scrub from free text."""
        return KnownIdentifiers(
            names=(self.patient_name, *self.other_names),
            ids=(self.patient_id, self.accession_number, *self.other_ids),
            birth_date=self.birth_date,
            phones=self.phones,
            addresses=self.addresses,
            organisations=self.institutions,
        )

    def identifiers(self) -> list[str]:
        """Every non-empty identifying string."""
        return self.known().values()


@dataclass
class DeidResult:
    """One de-identified instance and what the PHI zone needs to know about it.

    The instance is ``parts`` one after the other: the de-identified header, then (when the
    pixel data was never handed to pydicom) a view of the original bytes from the Pixel Data
    element to the end. A file writer writes the parts as they are; :attr:`data` joins them.
    """

    parts: tuple[bytes | memoryview, ...]
    pseudonym: str
    identity: Identity
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    original_study_instance_uid: str
    modality: str
    body_part: str
    date_shift_days: int
    study_description: str = ""
    series_description: str = ""
    procedure_codes: tuple[str, ...] = ()
    """Code meanings of the procedure code sequences the profile kept."""
    patient_age: str = ""
    """DICOM AS (``045Y``), kept by the Retain Patient Characteristics Option."""
    quarantine_reason: str | None = None
    options: list[str] = field(default_factory=list)

    @cached_property
    def data(self) -> bytes:
        """The whole de-identified instance (DICOM Part 10)."""
        return b"".join(self.parts)


_PROCEDURE_CODE_KEYWORDS: Final = ("ProcedureCodeSequence", "RequestedProcedureCodeSequence")


def _code_meanings(ds: Dataset, keywords: Sequence[str]) -> tuple[str, ...]:
    """The Code Meanings of the items of the code sequences ``keywords`` (PS3.3 8.8), as
    written after de-identification."""
    meanings: list[str] = []
    for kw in keywords:
        for item in ds.get(kw) or ():
            meaning = str(item.get("CodeMeaning", "") or "").strip()
            if meaning:
                meanings.append(meaning)
    return tuple(dict.fromkeys(meanings))


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, MultiValue | list | tuple):
        return [str(v) for v in value if v is not None and str(v).strip()]
    text = str(value)
    return [text] if text.strip() else []


def _vr(ds: Dataset, tag: BaseTag) -> str:
    """The VR of ``tag`` in ``ds`` without decoding the value (implicit VR: the dictionary's)."""
    item = ds.get_item(tag)
    vr = item.VR if item is not None else None
    if vr and vr != "UN":
        return str(vr)
    # implicit VR, or a standard attribute sent as UN: decoded with its dictionary VR
    try:
        return str(dictionary_VR(tag)).split(" ")[0]
    except KeyError:
        return "UN"


# Attributes read_identity collects, by keyword: the list each goes to.
_IDENTITY_KEYWORDS: Final = {
    "PatientName": "PatientName",
    "PatientID": "PatientID",
    "OtherPatientIDs": "ids",
    "AdmissionID": "ids",
    "MedicalRecordLocator": "ids",
    "PatientTelephoneNumbers": "phones",
    "ReferringPhysicianTelephoneNumbers": "phones",
    "PatientAddress": "addresses",
    "InstitutionAddress": "addresses",
    "ReferringPhysicianAddress": "addresses",
    "InstitutionName": "institutions",
}


@lru_cache(maxsize=16384)
def _identity_kind(tag: int) -> str | None:
    return _IDENTITY_KEYWORDS.get(keyword_for_tag(tag))


# Attributes read_identity reads besides those of _IDENTITY_KEYWORDS and every PN.
_IDENTITY_TAGS: Final = frozenset(
    {0x00100021, 0x00100030, 0x00080050}  # IssuerOfPatientID, PatientBirthDate, AccessionNumber
)


def _remember(memo: dict[Any, _V], key: Any, value: _V) -> _V:
    """Store ``value`` in an engine memo, emptied first when it holds :data:`MEMO_LIMIT`."""
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[key] = value
    return value


def _plain(value: Any) -> bool:
    """Bytes that read the same in every character set: ASCII without escape sequences."""
    return isinstance(value, bytes) and value.isascii() and b"\x1b" not in value


def _identity_key(ds: Dataset, default_issuer: str) -> tuple[Any, ...] | None:
    """Everything :func:`read_identity` reads from ``ds``, as the bytes read; ``None`` when
    ``ds`` has a sequence or an implicit-VR element, or when an identifying attribute was
    already decoded or is not plain."""
    parts: list[Any] = [default_issuer]
    for tag in ds.keys():
        elem = ds.get_item(tag)
        if elem.VR in (None, "SQ", "UN"):
            return None
        if elem.VR == "PN" or tag in _IDENTITY_TAGS or _identity_kind(tag) is not None:
            if not isinstance(elem, RawDataElement) or (elem.value and not _plain(elem.value)):
                return None
            parts.append((tag, elem.VR, elem.value))
    return tuple(parts)


def read_identity(
    ds: Dataset, default_issuer: str = "", memo: dict[Any, Identity] | None = None
) -> Identity:
    """Collect the identifying values of ``ds`` (top level and every sequence) for the vault
    and for scrubbing; nothing is changed.

    With ``memo``, the identity of an instance whose identifying attributes are the same bytes
    as an earlier one's (the rest of its series, in practice) is not decoded again.
    """
    if memo is None or (key := _identity_key(ds, default_issuer)) is None:
        return _read_identity(ds, default_issuer)
    found = memo.get(key)
    if found is None:
        found = _remember(memo, key, _read_identity(ds, default_issuer))
    return found


def _read_identity(ds: Dataset, default_issuer: str) -> Identity:
    names: list[str] = []
    ids: list[str] = []
    phones: list[str] = []
    addresses: list[str] = []
    institutions: list[str] = []

    found = {"ids": ids, "phones": phones, "addresses": addresses, "institutions": institutions}

    def visit(d: Dataset) -> None:
        # Only the elements that can hold an identity are decoded; the rest stay raw.
        for tag in d.keys():
            vr = _vr(d, tag)
            kind = _identity_kind(tag)
            if vr == "SQ":
                for item in d[tag].value:
                    visit(item)
            elif vr == "PN" and kind != "PatientName":
                names.extend(_strings(d[tag].value))
            elif kind == "PatientID":
                if d is not ds:  # a patient id inside a sequence (e.g. other patient ids)
                    ids.extend(_strings(d[tag].value))
            elif kind is not None and kind in found:
                found[kind].extend(_strings(d[tag].value))

    visit(ds)
    issuer = str(ds.get("IssuerOfPatientID", "") or "").strip() or default_issuer
    return Identity(
        patient_id=str(ds.get("PatientID", "") or "").strip(),
        issuer=issuer,
        patient_name=str(ds.get("PatientName", "") or ""),
        birth_date=str(ds.get("PatientBirthDate", "") or ""),
        accession_number=str(ds.get("AccessionNumber", "") or ""),
        other_ids=tuple(dict.fromkeys(ids)),
        other_names=tuple(dict.fromkeys(names)),
        phones=tuple(dict.fromkeys(phones)),
        addresses=tuple(dict.fromkeys(addresses)),
        institutions=tuple(dict.fromkeys(institutions)),
    )


class _Context:
    """Per-instance state of one walk."""

    def __init__(
        self,
        profile: Profile,
        key: bytes,
        shift: int,
        scrubber: Scrubber,
        memo: dict[Any, bytes],
    ) -> None:
        self.profile = profile
        self.memo = memo
        self.key = key
        self.shift = shift
        self.scrubber = scrubber
        self.remap: Callable[[str], str] = lambda uid: _remap(key, uid)


@lru_cache(maxsize=65536)
def _remap(key: bytes, uid: str) -> str:
    uid = uid.strip()
    if not uid or UID(uid).name != uid:
        return uid  # a UID registered in PS3.6 Annex A names a class or a syntax: kept
    return remap_uid(key, uid)


def _map_values(elem: DataElement, fn: Callable[[str], str]) -> None:
    value = elem.value
    if value is None or value == "":
        return
    if isinstance(value, MultiValue | list):
        elem.value = [fn(str(v)) for v in value]
    else:
        elem.value = fn(str(value))


def _dummy(ds: Dataset, tag: BaseTag, vr: str, ctx: _Context) -> None:
    if vr == "SQ":
        ds[tag].value = [Dataset()]  # the element read keeps its length encoding
    elif vr == "UI":
        _map_values(ds[tag], ctx.remap)
    else:  # a constant: the value read is never decoded
        value = DUMMY.get(vr, b"\x00\x00" if vr in _BINARY_VRS else 0)
        ds[tag] = DataElement(tag, vr, value)


def _clean(scrubber: Scrubber, limit: int | None, value: str) -> str:
    return scrubber.scrub(value)[:limit]


def _shift(elem: DataElement, ctx: _Context) -> None:
    if elem.VR == "DA":
        _map_values(elem, lambda v: shift_da(v, ctx.shift))
    elif elem.VR == "DT":
        _map_values(elem, lambda v: shift_dt(v, ctx.shift))
    # TM: a whole-day shift leaves the time of day as it is.


def _change(elem: DataElement, op: Op, vr: str, ctx: _Context) -> None:
    """Apply a value-changing ``op`` (REMAP, SHIFT, CLEAN) to a non-sequence element."""
    if op is Op.REMAP:
        if vr == "UI":
            _map_values(elem, ctx.remap)
        else:
            elem.value = None
    elif op is Op.SHIFT:
        _shift(elem, ctx)
    elif op is Op.CLEAN:
        if vr in TEXT_VRS or vr == "PN":
            _map_values(elem, partial(_clean, ctx.scrubber, MAX_LENGTH.get(vr)))
        elif vr in ("DA", "DT"):
            _shift(elem, ctx)


def _change_raw(ds: Dataset, tag: BaseTag, op: Op, vr: str, ctx: _Context) -> bool:
    """Apply ``op`` to the raw element ``tag`` through ``memo``; ``False`` when it does not apply.

    The values of a series repeat from instance to instance (study and series UIDs, dates,
    descriptions): the encoded result of a change is memoised by the bytes read and what the
    change depends on (the key for UIDs, the patient's shift for dates, the patient's scrubber
    for text), and reused as a raw element the writer copies. Only plain ASCII values without
    escape sequences are memoised, which read the same in every character set.
    """
    raw = ds.get_item(tag)
    value = raw.value if isinstance(raw, RawDataElement) and raw.VR == vr else None
    if not value or not _plain(value):
        return False
    key = (
        tag,
        op,
        value,
        ctx.shift if op is Op.SHIFT else 0,
        ctx.scrubber if op is Op.CLEAN else None,
    )
    done = ctx.memo.get(key)
    if done is not None:
        ds[tag] = raw._replace(value=done, length=len(done))
        return True
    elem = ds[tag]
    _change(elem, op, vr, ctx)
    encoded = string_value(elem)
    if encoded is not None:
        _remember(ctx.memo, key, encoded)
    return True


def _walk(ds: Dataset, ctx: _Context) -> None:
    profile = ctx.profile
    for tag in list(ds.keys()):
        if tag.group & 1 or tag.group == 0x0002:
            # A private attribute or private creator (Retain Safe Private is off), or File Meta
            # Information misplaced in the dataset (it is rebuilt from scratch).
            del ds[tag]
            continue
        vr = _vr(ds, tag)
        op = profile.op(tag, vr)
        if op is None:  # not in Table E.1-1: kept, with safeguards
            if vr == "SQ":
                op = Op.RECURSE
            elif vr == "PN":
                op = Op.EMPTY
            elif vr == "UI":
                op = Op.KEEP if keyword_for_tag(tag) in KEEP_UIDS else Op.REMAP
            elif vr in ("DA", "DT") and profile.options.retain_longitudinal_modified_dates:
                op = Op.SHIFT
            elif vr in TEXT_VRS:
                op = Op.CLEAN
            else:
                continue  # kept as read, never decoded (pixel data included)
        if op is Op.KEEP:
            continue
        if op is Op.REMOVE:
            del ds[tag]
            continue
        if op is Op.DUMMY:
            _dummy(ds, tag, vr, ctx)
            continue
        if vr == "SQ":
            if op is Op.EMPTY:
                ds[tag].value = []  # the element read keeps its length encoding
            elif op in (Op.RECURSE, Op.REMAP, Op.CLEAN):
                for item in ds[tag].value:
                    _walk(item, ctx)
            continue
        if op is Op.EMPTY:
            ds[tag] = DataElement(tag, vr, None)  # the value read is never decoded
        elif op is not Op.RECURSE and not _change_raw(ds, tag, op, vr, ctx):
            _change(ds[tag], op, vr, ctx)


def _method_item(code: tuple[str, str]) -> Dataset:
    item = Dataset()
    item.CodeValue = code[0]
    item.CodingSchemeDesignator = CODING_SCHEME
    item.CodeMeaning = code[1]
    return item


@lru_cache(maxsize=256)
def _scrubber(known: KnownIdentifiers, shift: int | None) -> Scrubber:
    return Scrubber(known, shift_days=shift)


_PIXEL_DATA: Final = 0x7FE00010
_METHOD_CODE_SEQUENCE: Final = 0x00120064  # DeidentificationMethodCodeSequence
_LONG_VRS: Final = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC"}) | {
    b"UN",
    b"UR",
    b"UT",
    b"UV",
}


@dataclass(frozen=True)
class PixelTail:
    """The Pixel Data element at the end of a file, left as bytes (never decoded or copied by
    pydicom): ``data[start:]`` is the whole element, ``data[value_start:value_end]`` its
    value."""

    data: bytes
    start: int
    vr: str
    value_start: int
    value_end: int


def find_pixel_tail(data: bytes, offset: int, ds: Dataset) -> PixelTail | None:
    """Locate the Pixel Data element that starts at ``offset`` and ends the file.

    Only for little-endian, non-deflated transfer syntaxes (PS3.5 7.1), a (7FE0,0010) element
    that is the last element of the file (PS3.5 A.4 for encapsulated values: items up to the
    Sequence Delimitation Item). Anything else returns ``None``: the caller then reads the whole
    file with pydicom.
    """
    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if ts is None or not UID(ts).is_little_endian or UID(ts).is_deflated:
        return None
    if offset == len(data):
        return PixelTail(data, offset, "", offset, offset)  # no pixel data at all
    if len(data) < offset + 8 or int.from_bytes(data[offset : offset + 4], "little") != (
        (0x7FE0) | (0x0010 << 16)
    ):
        return None
    if UID(ts).is_implicit_VR:
        length = int.from_bytes(data[offset + 4 : offset + 8], "little")
        value_start = offset + 8
        vr = "OB" if int(ds.get("BitsAllocated", 16) or 16) <= 8 else "OW"
    else:
        raw_vr = data[offset + 4 : offset + 6]
        vr = raw_vr.decode("ascii", "replace")
        if raw_vr in _LONG_VRS:
            length = int.from_bytes(data[offset + 8 : offset + 12], "little")
            value_start = offset + 12
        else:
            length = int.from_bytes(data[offset + 6 : offset + 8], "little")
            value_start = offset + 8
    if length != 0xFFFFFFFF:
        end = value_start + length
    else:  # encapsulated: Item (FFFE,E000) ... Sequence Delimitation Item (FFFE,E0DD)
        pos, end = value_start, -1
        while pos + 8 <= len(data):
            group = int.from_bytes(data[pos : pos + 2], "little")
            elem = int.from_bytes(data[pos + 2 : pos + 4], "little")
            item_len = int.from_bytes(data[pos + 4 : pos + 8], "little")
            if group != 0xFFFE:
                return None
            if elem == 0xE0DD:
                end = pos + 8
                break
            if elem != 0xE000 or item_len == 0xFFFFFFFF:
                return None
            pos += 8 + item_len
    if end != len(data):
        return None  # something follows the pixel data: take the full path
    value_end = end if length != 0xFFFFFFFF else end - 8  # without the delimitation item
    return PixelTail(data, offset, vr, value_start, value_end)


class Engine:
    """De-identifies DICOM instances under one key, one set of options and one policy.

    Parameters
    ----------
    key
        The pseudonym key (from settings or a secret file); never written to the output.
    options
        The PS3.15 E.3 options applied on top of the Basic Profile.
    rules
        The quarantine policy (see :mod:`secondread_deidentify.policy`).
    """

    def __init__(
        self,
        key: bytes,
        options: DeidOptions | None = None,
        rules: Sequence[Rule] = DEFAULT_RULES,
    ) -> None:
        if not key:
            raise ValueError("the pseudonym key is empty")
        self.key = key
        self.options = options or DeidOptions()
        self.rules = tuple(rules)
        self.profile = build_profile(self.options)
        # Constant for every instance: built and encoded once.
        self._method_sequence = DataElement(
            _METHOD_CODE_SEQUENCE, "SQ", [_method_item(c) for c in self.options.codes()]
        )
        self._method_bytes = element_bytes(self._method_sequence)
        self._memo: dict[Any, bytes] = {}  # see _change_raw
        self._identities: dict[Any, Identity] = {}  # see read_identity

    def deidentify(self, data: bytes | Path, *, default_issuer: str = "") -> DeidResult:
        """De-identify one DICOM Part 10 instance.

        Parameters
        ----------
        data
            The original file bytes, or its path.
        default_issuer
            Issuer of the patient id when the instance has no ``IssuerOfPatientID``
            (the sending hospital), so equal ids of two hospitals never collide.

        Raises
        ------
        InvalidInstanceError
            When ``data`` is not a DICOM instance with a SOP Instance UID.
        """
        if isinstance(data, Path):
            data = data.read_bytes()
        buf = io.BytesIO(data)
        try:
            ds = pydicom.dcmread(buf, stop_before_pixels=True)
            tail = find_pixel_tail(data, buf.tell(), ds)
            if tail is None:
                ds = pydicom.dcmread(io.BytesIO(data))
        except (InvalidDicomError, EOFError, ValueError, OSError, KeyError) as exc:
            raise InvalidInstanceError(
                f"not a DICOM Part 10 instance: {type(exc).__name__}"
            ) from exc
        if "SOPInstanceUID" not in ds or "SOPClassUID" not in ds:
            raise InvalidInstanceError("the instance has no SOPInstanceUID or SOPClassUID")
        return self.deidentify_dataset(ds, default_issuer=default_issuer, tail=tail)

    def deidentify_dataset(
        self, ds: Dataset, *, default_issuer: str = "", tail: PixelTail | None = None
    ) -> DeidResult:
        """De-identify ``ds`` in place and serialise it (see :meth:`deidentify`).

        With ``tail``, ``ds`` was read without its Pixel Data, which is appended to the
        serialised header byte for byte (the pixel data is never decoded, so never changed).
        """
        identity = read_identity(ds, default_issuer, self._identities)
        pseudonym = patient_pseudonym(self.key, identity.issuer, identity.patient_id)
        shift = date_shift_days(self.key, pseudonym)
        date_shift = shift if self.options.retain_longitudinal_modified_dates else None
        scrubber = _scrubber(identity.known(), date_shift)
        ctx = _Context(self.profile, self.key, shift, scrubber, self._memo)
        original_study = str(ds.get("StudyInstanceUID", ""))
        old_meta = getattr(ds, "file_meta", None)
        transfer_syntax = old_meta.get("TransferSyntaxUID") if old_meta is not None else None

        _walk(ds, ctx)

        ds.PatientID = pseudonym
        ds.PatientName = pseudonym_name(pseudonym)
        ds.PatientIdentityRemoved = "YES"
        if self.options.retain_longitudinal_modified_dates:
            ds.LongitudinalTemporalInformationModified = "MODIFIED"
        ds.DeidentificationMethod = self.options.description(self.profile.table.edition)

        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = transfer_syntax or pydicom.uid.ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = "SECONDREAD_DEID"
        ds.file_meta = meta

        if tail is not None and tail.value_end > tail.value_start:
            # The rules see the pixel data too (a pixel-text detector is one more rule).
            # A read-only view, not a copy: copying 0.5 MB cost a tenth of the instance's time.
            pixels = memoryview(tail.data)[tail.value_start : tail.value_end]
            ds.add_new(_PIXEL_DATA, tail.vr, pixels)
        reason = quarantine_reason(ds, self.rules)
        if tail is not None and _PIXEL_DATA in ds:
            del ds[_PIXEL_DATA]
        data = part10_bytes(ds, {_METHOD_CODE_SEQUENCE: self._method_bytes})
        if data is None:  # pydicom writes what the fast writer declines (same bytes)
            ds.DeidentificationMethodCodeSequence = [_method_item(c) for c in self.options.codes()]
            out = io.BytesIO()
            ds.save_as(out, enforce_file_format=True)
            data = out.getvalue()
        parts = (data,) if tail is None else (data, memoryview(tail.data)[tail.start :])
        return DeidResult(
            parts=parts,
            pseudonym=pseudonym,
            identity=identity,
            study_instance_uid=str(ds.get("StudyInstanceUID", "")),
            series_instance_uid=str(ds.get("SeriesInstanceUID", "")),
            sop_instance_uid=str(ds.SOPInstanceUID),
            sop_class_uid=str(ds.SOPClassUID),
            original_study_instance_uid=original_study,
            modality=str(ds.get("Modality", "")),
            body_part=str(ds.get("BodyPartExamined", "")),
            date_shift_days=shift,
            study_description=str(ds.get("StudyDescription", "") or ""),
            series_description=str(ds.get("SeriesDescription", "") or ""),
            procedure_codes=_code_meanings(ds, _PROCEDURE_CODE_KEYWORDS),
            patient_age=str(ds.get("PatientAge", "") or ""),
            quarantine_reason=reason,
            options=[c[1] for c in self.options.codes()],
        )


def deidentify(data: bytes, key: bytes, *, default_issuer: str = "") -> DeidResult:
    """De-identify one instance with the default options and policy (see :class:`Engine`)."""
    return Engine(key).deidentify(data, default_issuer=default_issuer)
