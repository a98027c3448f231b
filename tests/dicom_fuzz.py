"""Malformed DICOM Part 10 files for property-based tests (issue 13, "Bad input").

A small byte-level encoder (Explicit VR Little Endian, PS3.5 7.1.2 and 7.5) builds files that
pydicom would refuse to write: declared lengths that lie, sequences nested thousands deep,
undefined-length items with no delimiter, character sets that do not exist. The Hypothesis
strategies below each yield a :class:`Fuzzed` file with what it is expected to do.

Everything is synthetic: the patient values are invented like those of :mod:`tests.synthetic`.
"""

from __future__ import annotations

import secrets
import struct
import zlib
from dataclasses import dataclass, field

from hypothesis import strategies as st
from pydicom.uid import CTImageStorage, DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

from tests.synthetic import ROOT

TRANSFER_SYNTAXES = [ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian]
"""The transfer syntaxes of the generated files (what a C-STORE peer proposes for them)."""
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT"}
"""VRs with a 4-byte length after two reserved bytes (PS3.5 Table 7.1-1)."""
UNDEFINED = 0xFFFFFFFF
ITEM = 0xE000
ITEM_DELIMITER = 0xE00D
SEQUENCE_DELIMITER = 0xE0DD
MAX_DEPTH = 64
"""ingest's limit on sequence nesting (:data:`secondread_ingest.intake.MAX_SEQUENCE_DEPTH`)."""
MAX_ITEMS = 50_000
"""ingest's limit on sequence items (:data:`secondread_ingest.intake.MAX_SEQUENCE_ITEMS`)."""


def pad(value: bytes, vr: bytes) -> bytes:
    """Even length (PS3.5 7.1.1): UIDs and binary VRs pad with NUL, text with a space."""
    if len(value) % 2 == 0:
        return value
    return value + (b"\0" if vr in (b"UI", b"OB", b"UN") else b" ")


def element(tag: int, vr: str, value: bytes, *, length: int | None = None) -> bytes:
    """One explicit-VR little-endian data element; ``length`` overrides the true length."""
    code = vr.encode()
    size = len(value) if length is None else length
    group, elem = tag >> 16, tag & 0xFFFF
    if code in LONG_VRS:
        return struct.pack("<HH2sHI", group, elem, code, 0, size) + value
    return struct.pack("<HH2sH", group, elem, code, size & 0xFFFF) + value


def delimiter(kind: int) -> bytes:
    return struct.pack("<HHI", 0xFFFE, kind, 0)


def item(body: bytes, *, undefined: bool = False, delimited: bool = True) -> bytes:
    """A sequence item (PS3.5 7.5.1): of defined length, or undefined and (maybe) delimited."""
    if not undefined:
        return struct.pack("<HHI", 0xFFFE, ITEM, len(body)) + body
    end = delimiter(ITEM_DELIMITER) if delimited else b""
    return struct.pack("<HHI", 0xFFFE, ITEM, UNDEFINED) + body + end


def sequence(
    tag: int, items: list[bytes], *, undefined: bool = False, delimited: bool = True
) -> bytes:
    """A sequence of already encoded ``items``, of defined or undefined length."""
    body = b"".join(items)
    if not undefined:
        return element(tag, "SQ", body)
    end = delimiter(SEQUENCE_DELIMITER) if delimited else b""
    return element(tag, "SQ", body + end, length=UNDEFINED)


def nested(tag: int, inner: bytes, depth: int, *, undefined: bool) -> bytes:
    """``inner`` inside ``depth`` sequences of one item each, built in linear time (each level's
    headers are computed, not re-encoded around a copy of everything inside)."""
    if undefined:
        opening = element(tag, "SQ", b"", length=UNDEFINED) + item(b"")[:4] + b"\xff" * 4
        closing = delimiter(ITEM_DELIMITER) + delimiter(SEQUENCE_DELIMITER)
        return opening * depth + inner + closing * depth
    heads: list[bytes] = []
    size = len(inner)
    for _ in range(depth):
        item_head = struct.pack("<HHI", 0xFFFE, ITEM, size)
        size += len(item_head)
        seq_head = element(tag, "SQ", b"", length=size)
        size += len(seq_head)
        heads.append(seq_head + item_head)
    return b"".join(reversed(heads)) + inner


def text(tag: int, vr: str, value: str | bytes) -> bytes:
    raw = value.encode("ascii") if isinstance(value, str) else value
    return element(tag, vr, pad(raw, vr.encode()))


@dataclass(frozen=True)
class Uids:
    study: str
    series: str
    sop: str
    sop_class: str = CTImageStorage


RUN = secrets.randbelow(10**8)
"""Part of every generated UID, fixed for the process: one run's files never collide with an
earlier run's on the shared stack (same UID, other bytes), and Hypothesis still replays them."""


def uids(seed: int) -> Uids:
    return Uids(*(f"{ROOT}77.{RUN}.{seed}.{n}" for n in (1, 2, 3)))


def part10(body: list[bytes], ids: Uids, *, transfer_syntax: str = ExplicitVRLittleEndian) -> bytes:
    """Preamble, ``DICM``, file meta (group 0002, with its group length) and ``body``."""
    meta = (
        element(0x00020001, "OB", b"\0\1")
        + text(0x00020002, "UI", ids.sop_class)
        + text(0x00020003, "UI", ids.sop)
        + text(0x00020010, "UI", transfer_syntax)
    )
    group_length = element(0x00020000, "UL", struct.pack("<I", len(meta)))
    return b"\0" * 128 + b"DICM" + group_length + meta + b"".join(body)


@dataclass(frozen=True)
class Dataset:
    """A valid small CT dataset as a list of encoded top-level elements (ascending tags)."""

    ids: Uids
    elements: list[bytes]
    charset: bytes | None = None

    def file(self) -> bytes:
        return part10(self.elements, self.ids)


def ct_dataset(
    ids: Uids,
    *,
    rows: int = 4,
    extra: dict[int, bytes] | None = None,
    patient_id: bytes = b"MRN-FUZZ-0001",
    patient_name: bytes = b"Fuzz^Testa",
) -> Dataset:
    """A small native CT image; ``extra`` adds encoded elements by tag (kept in tag order)."""
    parts: dict[int, bytes] = {
        0x00080016: text(0x00080016, "UI", ids.sop_class),
        0x00080018: text(0x00080018, "UI", ids.sop),
        0x00080060: text(0x00080060, "CS", "CT"),
        0x00100010: element(0x00100010, "PN", pad(patient_name, b"PN")),
        0x00100020: element(0x00100020, "LO", pad(patient_id, b"LO")),
        0x0020000D: text(0x0020000D, "UI", ids.study),
        0x0020000E: text(0x0020000E, "UI", ids.series),
        0x00280002: element(0x00280002, "US", struct.pack("<H", 1)),
        0x00280004: text(0x00280004, "CS", "MONOCHROME2"),
        0x00280010: element(0x00280010, "US", struct.pack("<H", rows)),
        0x00280011: element(0x00280011, "US", struct.pack("<H", rows)),
        0x00280100: element(0x00280100, "US", struct.pack("<H", 16)),
        0x00280101: element(0x00280101, "US", struct.pack("<H", 12)),
        0x00280102: element(0x00280102, "US", struct.pack("<H", 11)),
        0x00280103: element(0x00280103, "US", struct.pack("<H", 0)),
        0x7FE00010: element(0x7FE00010, "OW", bytes(range(256)) * (rows * rows * 2 // 256)
                            + bytes(rows * rows * 2 % 256)),
    }  # fmt: skip
    parts.update(extra or {})
    return Dataset(ids, [parts[t] for t in sorted(parts)])


@dataclass(frozen=True)
class Fuzzed:
    """One generated file and what ingest must do with it."""

    kind: str
    data: bytes
    must_refuse: bool
    """The file is malformed where a reader must notice: ingest has to refuse it."""
    note: str = ""
    ids: Uids | None = None
    codes: frozenset[str] = field(default_factory=frozenset)
    """When refused, the codes that name the fault (any code when empty)."""
    must_accept: bool = False
    """The file is valid (however odd): ingest has to read it, or refuse it only with one of
    ``codes``."""


# ------------------------------------------------------------------------------- strategies

seeds = st.integers(min_value=1, max_value=10**9)


@st.composite
def truncated(draw: st.DrawFn) -> Fuzzed:
    """A valid file cut short, anywhere from inside the preamble to inside the last element."""
    seed, rows = draw(seeds), draw(st.sampled_from([2, 4, 8, 64]))
    ds = ct_dataset(uids(seed), rows=rows)
    data = ds.file()
    cut = draw(st.integers(min_value=0, max_value=len(data) - 1))
    # Element boundaries of the dataset: a cut exactly there leaves a shorter, well-formed file.
    ends, at = set(), len(data) - sum(len(e) for e in ds.elements)
    for e in ds.elements:
        ends.add(at)
        at += len(e)
    return Fuzzed(
        "truncated",
        data[:cut],
        must_refuse=cut not in ends,
        note=f"uids({seed}), rows {rows}: cut at {cut} of {len(data)}",
        ids=ds.ids,
    )


HUGE_LENGTHS = [0xFFFFFFFE, 0xFFFFFFF0, 0x7FFFFFFF, 0x80000000, 2**31 + 7, 10**9, 0xFFFF]


@st.composite
def wrong_lengths(draw: st.DrawFn) -> Fuzzed:
    """A valid file with the declared length of one element changed (often past the end)."""
    ds = ct_dataset(uids(draw(seeds)), rows=draw(st.sampled_from([4, 64, 200])))
    index = draw(st.integers(min_value=0, max_value=len(ds.elements) - 1))
    original = ds.elements[index]
    vr = original[4:6]
    long = vr in LONG_VRS
    header = 12 if long else 8
    true_length = len(original) - header
    limit = 0xFFFFFFFE if long else 0xFFFF
    length = draw(
        st.one_of(
            st.sampled_from([x for x in HUGE_LENGTHS if x <= limit]),
            st.integers(min_value=0, max_value=limit),
            st.integers(min_value=max(0, true_length - 8), max_value=true_length + 8),
        ).filter(lambda n: n != true_length)
    )
    changed = original[: header - (4 if long else 2)] + struct.pack("<I" if long else "<H", length)
    elements = list(ds.elements)
    elements[index] = changed + original[header:]
    data = part10(elements, ds.ids)
    value_at = len(data) - sum(len(e) for e in elements[index:]) + header
    overrun = value_at + length > len(data)
    return Fuzzed(
        "wrong_length",
        data,
        # A value said to run past the end of the file is a truncated file.
        must_refuse=overrun,
        note=f"element {index} (VR {vr.decode()}) length {true_length} -> {length}",
        ids=ds.ids,
    )


@st.composite
def deep_nesting(draw: st.DrawFn) -> Fuzzed:
    """A sequence nested ``depth`` deep (defined or undefined lengths, delimited)."""
    depth = draw(
        st.one_of(
            st.integers(min_value=1, max_value=MAX_DEPTH + 4),
            st.integers(min_value=MAX_DEPTH + 1, max_value=20_000),
        )
    )
    undefined = draw(st.booleans())
    inner = nested(0x00081115, text(0x00080100, "SH", "T-D0001"), depth, undefined=undefined)
    ds = ct_dataset(uids(draw(seeds)), extra={0x00081115: inner})
    return Fuzzed(
        "deep_nesting",
        ds.file(),
        must_refuse=depth > MAX_DEPTH,
        must_accept=depth <= MAX_DEPTH,
        note=f"depth {depth}, {'undefined' if undefined else 'defined'} lengths",
        ids=ds.ids,
        codes=frozenset({"too_deep"}) if depth > MAX_DEPTH else frozenset(),
    )


@st.composite
def undelimited(draw: st.DrawFn) -> Fuzzed:
    """Undefined-length items whose item and/or sequence delimiters are missing."""
    items = draw(st.integers(min_value=1, max_value=4))
    item_delimited = draw(st.booleans())
    # At least one delimiter is missing.
    seq_delimited = draw(st.booleans()) if not item_delimited else False
    body = [
        item(text(0x00081150, "UI", CTImageStorage), undefined=True, delimited=item_delimited)
        for _ in range(items)
    ]
    # Before the patient and study attributes, or among them, or after the pixel data's
    # attributes (0x00400275 Request Attributes Sequence sorts after 0x0020000E).
    tag = draw(st.sampled_from([0x00081115, 0x00081140, 0x00400275]))
    seq = sequence(tag, body, undefined=True, delimited=seq_delimited)
    ds = ct_dataset(uids(draw(seeds)), extra={tag: seq})
    return Fuzzed(
        "undelimited",
        ds.file(),
        # Without its delimiter a sequence swallows every element after it: the UIDs of the
        # dataset (Study, Series) or the pixel data are then missing or malformed.
        must_refuse=True,
        note=f"{items} items, item delimiters {item_delimited}, sequence delimiter {seq_delimited}",
        ids=ds.ids,
    )


CHARSETS = [
    b"", b"ISO_IR 100", b"ISO_IR 192", b"GB18030", b"GBK", b"ISO 2022 IR 87",
    b"\\ISO 2022 IR 87", b"ISO 2022 IR 6\\ISO 2022 IR 149", b"ISO_IR 13\\ISO 2022 IR 87",
    b"ISO_IR 6", b"ISO-IR 100", b"UTF-8", b"BOGUS CHARSET", b"ISO_IR 100\\ISO_IR 100",
    b"\\\\\\", b"ISO 2022 IR 58\\ISO 2022 IR 159", b"\xff\xfe", b"ISO_IR 144 ",
]  # fmt: skip
"""Defined terms (PS3.3 C.12.1.1.2), their misspellings, empty values and nonsense."""

TEXT_BYTES = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [
            b"\x1b$B\x30\x21\x1b(B",  # ISO 2022 JIS X 0208 escape, then back to ASCII
            b"\x1b$B\xff\xff",  # an escape with no way back
            b"\x1b$)C\x0e\xbe\xc6\x0f",  # KS X 1001 via shift-out/shift-in
            b"\xc3\x28\xa0\xa1",  # invalid UTF-8
            b"\xe4\xb8\xad\xe6\x96\x87",  # valid UTF-8
            b"Fuzz\0Testa",  # NUL inside a value
            b"\0\0\0\0",
            "Ýmir^Þór".encode("latin-1"),
        ]
    ),
)


@st.composite
def charsets(draw: st.DrawFn) -> Fuzzed:
    """A valid file whose Specific Character Set and text values are anything at all."""
    charset = draw(st.one_of(st.sampled_from(CHARSETS), st.binary(max_size=32)))
    name, pid, description = draw(TEXT_BYTES), draw(TEXT_BYTES), draw(TEXT_BYTES)
    extra = {
        0x00080005: element(0x00080005, "CS", pad(charset, b"CS")),
        0x00081030: element(0x00081030, "LO", pad(description, b"LO")),
    }
    ds = ct_dataset(uids(draw(seeds)), extra=extra, patient_id=pid, patient_name=name)
    return Fuzzed(
        "charset",
        ds.file(),
        # Text the reader cannot decode is no reason to refuse an image whose UIDs are fine;
        # only a value that is no character set name at all is refused, by that name.
        must_refuse=False,
        must_accept=True,
        note=f"charset {charset!r}",
        ids=ds.ids,
        codes=frozenset({"bad_charset"}),
    )


@st.composite
def many_items(draw: st.DrawFn) -> Fuzzed:
    """A sequence of a few or of very many (small, empty or undefined-length) items."""
    n = draw(st.one_of(st.integers(1, 300), st.integers(MAX_ITEMS + 1, 3 * MAX_ITEMS)))
    undefined = draw(st.booleans())
    body = draw(st.sampled_from([b"", text(0x00081150, "UI", CTImageStorage)]))
    seq = sequence(0x00081115, [item(body, undefined=undefined)] * n, undefined=undefined)
    ds = ct_dataset(uids(draw(seeds)), extra={0x00081115: seq})
    return Fuzzed(
        "many_items",
        ds.file(),
        must_refuse=n > MAX_ITEMS,
        must_accept=n <= MAX_ITEMS,
        note=f"{n} items, {'undefined' if undefined else 'defined'} lengths",
        ids=ds.ids,
        codes=frozenset({"too_many_items"}) if n > MAX_ITEMS else frozenset(),
    )


def deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def deflate_bomb(ids: Uids, inflated: int) -> bytes:
    """A Deflated Explicit VR Little Endian file (PS3.5 A.5) whose dataset inflates to more
    than ``inflated`` bytes of zeros (an OB value), from a few hundred kilobytes: one
    compressed mebibyte of zeros repeated (each block ends byte-aligned, and refers only to
    zeros), then a final empty block."""
    mib = 1024 * 1024
    count = -(-inflated // mib)
    elements = ct_dataset(ids).elements[:-1]  # without the pixel data
    head = b"".join(elements) + struct.pack("<HH2sHI", 0x0009, 0x1001, b"OB", 0, count * mib)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    start = packer.compress(head) + packer.flush(zlib.Z_SYNC_FLUSH)
    zeros = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = zeros.compress(bytes(mib)) + zeros.flush(zlib.Z_SYNC_FLUSH)
    end = zeros.flush(zlib.Z_FINISH)
    return part10(
        [start + block * count + end], ids, transfer_syntax=DeflatedExplicitVRLittleEndian
    )


@st.composite
def deflated(draw: st.DrawFn) -> Fuzzed:
    """Deflated datasets (PS3.5 A.5): whole, cut short, or not deflate data at all."""
    ds = ct_dataset(uids(draw(seeds)))
    packed = deflate(b"".join(ds.elements))
    how = draw(st.sampled_from(["whole", "cut", "garbage"]))
    if how == "cut":
        packed = packed[: draw(st.integers(0, len(packed) - 1))]
    elif how == "garbage":
        packed = draw(st.binary(min_size=1, max_size=600))
    data = part10([packed], ds.ids, transfer_syntax=DeflatedExplicitVRLittleEndian)
    whole = how == "whole"
    return Fuzzed("deflated", data, must_refuse=not whole, must_accept=whole, note=how, ids=ds.ids)


BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


@st.composite
def reports(draw: st.DrawFn) -> Fuzzed:
    """Basic Text SR documents (their text becomes the case's original report): content trees
    of any shape, text in any character set, a Content Sequence that is sometimes no sequence."""
    charset = draw(st.sampled_from(CHARSETS[:12]))

    def content(depth: int) -> bytes:
        body = text(0x0040A040, "CS", "TEXT") + element(
            0x0040A160, "UT", pad(draw(TEXT_BYTES), b"UT")
        )
        if depth < 4 and draw(st.booleans()):
            children = [content(depth + 1) for _ in range(draw(st.integers(1, 3)))]
            body += sequence(0x0040A730, [item(c) for c in children],
                             undefined=draw(st.booleans()))  # fmt: skip
        return body

    shape = draw(st.sampled_from(["tree", "tree", "wrong_vr", "empty"]))
    if shape == "tree":
        tree = sequence(0x0040A730, [item(content(0)) for _ in range(draw(st.integers(1, 3)))])
    elif shape == "wrong_vr":
        tree = element(0x0040A730, draw(st.sampled_from(["LO", "UN", "OB"])),
                       pad(draw(TEXT_BYTES), b"OB"))  # fmt: skip
    else:
        tree = element(0x0040A730, "SQ", b"")
    seed = draw(seeds)
    ids = Uids(*(f"{ROOT}78.{RUN}.{seed}.{n}" for n in (1, 2, 3)), sop_class=BASIC_TEXT_SR)
    ds = ct_dataset(
        ids, extra={0x00080005: element(0x00080005, "CS", pad(charset, b"CS")), 0x0040A730: tree}
    )
    return Fuzzed(
        "report",
        ds.file(),
        must_refuse=False,
        must_accept=True,
        note=f"{shape}, charset {charset!r}",
        ids=ids,
        # A Content Sequence sent as UN is parsed as the sequence its tag is: garbage there is
        # an unreadable file (deidentify could not walk it either).
        codes=frozenset({"bad_charset", "truncated"} if shape == "wrong_vr" else {"bad_charset"}),
    )


def bad_files() -> st.SearchStrategy[Fuzzed]:
    """Every kind above."""
    return st.one_of(
        truncated(), wrong_lengths(), deep_nesting(), undelimited(), charsets(), many_items(),
        deflated(), reports(),
    )  # fmt: skip
