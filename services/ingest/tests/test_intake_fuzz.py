"""Property-based fuzzing of ingest's DICOM parsing (issue 13, "Bad input, beyond today's corpus").

Hypothesis builds malformed Part 10 files (:mod:`tests.dicom_fuzz`): truncated, with wrong and
huge declared lengths, sequences nested thousands deep, undefined-length items without their
delimiters, impossible character sets. Every one is either refused with a named code (an
``InputRejected`` that names the file) or read whole with the UIDs it was built with, and the
same holds at each door: the parser, the upload API (a 4xx ``{"error": {...}}`` body) and the
Storage SCP (a C-STORE failure status over a real association). Anything ingest accepts,
deidentify's engine de-identifies or refuses by name: nothing accepted can crash it.

The example counts are bounded so that the module runs in seconds on two cores, and the
examples are the same on every run (derandomised) unless ``SECONDREAD_FUZZ_RANDOM=1``; for a
longer hunt, ``SECONDREAD_FUZZ_RANDOM=1 SECONDREAD_FUZZ_SCALE=20`` runs twenty times as many.
"""

from __future__ import annotations

import os
import socket
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from pynetdicom import AE, _config

from secondread_deidentify.engine import Engine
from secondread_deidentify.errors import InvalidInstanceError
from secondread_ingest.api import build_router, error_response
from secondread_ingest.desk import CaseDesk
from secondread_ingest.dimse import StorageSCP
from secondread_ingest.errors import STATUS_BY_REJECTION, SUCCESS, InputRejected
from secondread_ingest.intake import (
    MAX_SEQUENCE_DEPTH,
    MAX_SEQUENCE_ITEMS,
    InstanceInfo,
    inspect_instance,
)
from secondread_ingest.service import IngestDeps
from secondread_ingest.settings import IngestSettings
from secondread_ingest.spool import Spool
from secondread_shared.dicom import configure_pydicom
from secondread_shared.events import ObjectRef
from secondread_shared.storage import sha256_hex
from tests import dicom_fuzz
from tests.dicom_fuzz import Fuzzed

# pydicom warns (and logs) about every character set it cannot apply: expected here.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SCALE = int(os.environ.get("SECONDREAD_FUZZ_SCALE", "1"))
FAST = settings(
    max_examples=60 * SCALE,
    derandomize=os.environ.get("SECONDREAD_FUZZ_RANDOM", "") != "1",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
KINDS = {
    "truncated": dicom_fuzz.truncated(),
    "wrong_lengths": dicom_fuzz.wrong_lengths(),
    "deep_nesting": dicom_fuzz.deep_nesting(),
    "undelimited": dicom_fuzz.undelimited(),
    "charsets": dicom_fuzz.charsets(),
    "many_items": dicom_fuzz.many_items(),
    "deflated": dicom_fuzz.deflated(),
    "reports": dicom_fuzz.reports(),
}


@pytest.fixture(autouse=True, scope="module")
def _pydicom_as_in_the_service() -> Iterator[None]:
    """pydicom configured as the service configures it, and put back for the tests after."""
    from pydicom import config

    saved = (config.settings.reading_validation_mode, config.settings.writing_validation_mode)
    filters = list(warnings.filters)
    configure_pydicom()
    yield
    config.settings.reading_validation_mode, config.settings.writing_validation_mode = saved
    warnings.filters[:] = filters


def outcome(f: Fuzzed) -> InstanceInfo | InputRejected:
    """What the parser makes of ``f``: its info, or its refusal. Anything else fails the test."""
    try:
        return inspect_instance(f.data, "fuzz.dcm")
    except InputRejected as exc:
        return exc


def check(f: Fuzzed, result: InstanceInfo | InputRejected) -> None:
    if isinstance(result, InputRejected):
        assert result.code in STATUS_BY_REJECTION, result.code
        assert result.message.startswith("fuzz.dcm: "), result.message
        if f.codes:
            assert result.code in f.codes, (f.note, result.code, result.message)
        elif f.must_accept:
            raise AssertionError(f"refused a valid file: {f.kind}, {f.note}: {result.message}")
        return
    assert not f.must_refuse, f"accepted: {f.kind}, {f.note}"
    assert f.ids is not None
    assert (result.study_instance_uid, result.series_instance_uid, result.sop_instance_uid) == (
        f.ids.study,
        f.ids.series,
        f.ids.sop,
    ), f.note
    for text in (result.patient_id, result.issuer_of_patient_id, result.report_text or ""):
        assert "\0" not in text  # PostgreSQL text takes no NUL


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_parser_refuses_by_name_or_reads_the_uids_it_was_built_with(kind: str) -> None:
    @FAST
    @given(KINDS[kind])
    def parse(f: Fuzzed) -> None:
        check(f, outcome(f))

    parse()


def test_nesting_up_to_the_limit_is_read_and_one_level_more_is_refused() -> None:
    for undefined in (False, True):
        inner = dicom_fuzz.text(0x00080100, "SH", "T-D0001")
        ok = dicom_fuzz.nested(0x00081115, inner, MAX_SEQUENCE_DEPTH, undefined=undefined)
        ids = dicom_fuzz.uids(1)
        info = inspect_instance(dicom_fuzz.ct_dataset(ids, extra={0x00081115: ok}).file(), "a")
        assert info.sop_instance_uid == ids.sop
        deep = dicom_fuzz.nested(0x00081115, inner, MAX_SEQUENCE_DEPTH + 1, undefined=undefined)
        with pytest.raises(InputRejected, match="nested deeper than 64 levels") as exc:
            inspect_instance(dicom_fuzz.ct_dataset(ids, extra={0x00081115: deep}).file(), "a")
        assert exc.value.code == "too_deep"


def test_a_large_image_cut_inside_its_pixel_data_is_refused() -> None:
    """Pixel data beyond the deferred-read size (64 KiB) is bounds-checked too."""
    data = dicom_fuzz.ct_dataset(dicom_fuzz.uids(2), rows=256).file()
    assert inspect_instance(data, "big.dcm").sop_instance_uid
    with pytest.raises(InputRejected) as exc:
        inspect_instance(data[:-1000], "big.dcm")
    assert exc.value.code == "truncated"


@pytest.mark.parametrize(
    "uid", ["1.2.3/../../x", "1.2.\0.3", "1." + "2" * 63, "1.2.3 4", "1..2", "ÿ.1"]
)
def test_a_uid_that_is_no_uid_is_refused_naming_the_attribute(uid: str) -> None:
    """UIDs become object keys and database rows: only digits and dots, 64 at most."""
    ids = dicom_fuzz.uids(5)
    bad = dicom_fuzz.element(0x0020000D, "UI", dicom_fuzz.pad(uid.encode("latin-1"), b"UI"))
    data = dicom_fuzz.ct_dataset(ids, extra={0x0020000D: bad}).file()
    with pytest.raises(InputRejected, match="StudyInstanceUID is not a DICOM UID") as exc:
        inspect_instance(data, "u.dcm")
    assert exc.value.code == "bad_uid"


def test_a_deflate_bomb_is_refused_before_it_is_inflated_whole() -> None:
    ids = dicom_fuzz.uids(3)
    bomb = dicom_fuzz.deflate_bomb(ids, 8 * 1024 * 1024)
    assert len(bomb) < 40_000
    with pytest.raises(InputRejected, match="inflates beyond 4194304 bytes") as exc:
        inspect_instance(bomb, "bomb.dcm", max_inflated=4 * 1024 * 1024)
    assert exc.value.code == "too_large"
    # The same file under a higher limit is read: the bomb itself is well formed.
    assert inspect_instance(bomb, "bomb.dcm", max_inflated=16 * 1024 * 1024).sop_instance_uid


def test_the_item_limit_counts_items_before_parsing() -> None:
    ids = dicom_fuzz.uids(4)
    empty = dicom_fuzz.item(b"")
    seq = dicom_fuzz.sequence(0x00081115, [empty] * (MAX_SEQUENCE_ITEMS + 1))
    with pytest.raises(InputRejected, match="more than 50000 sequence items") as exc:
        inspect_instance(dicom_fuzz.ct_dataset(ids, extra={0x00081115: seq}).file(), "n.dcm")
    assert exc.value.code == "too_many_items"


@settings(FAST, max_examples=80 * SCALE)
@given(f=dicom_fuzz.bad_files())
def test_whatever_ingest_accepts_deidentify_deidentifies_or_refuses_by_name(f: Fuzzed) -> None:
    if not isinstance(outcome(f), InstanceInfo):
        return
    try:
        result = Engine(b"fuzz-key-0123456789abcdef0123456").deidentify(f.data)
    except InvalidInstanceError:
        return
    assert result.data[128:132] == b"DICM"


# ---------------------------------------------------------------------- the upload door


class _Store:
    async def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str, sha256: str | None = None
    ) -> ObjectRef:
        assert sha256 in (None, sha256_hex(data))
        return ObjectRef(bucket=bucket, key=key, sha256=sha256_hex(data), size=len(data))


class _Repo:
    def __init__(self) -> None:
        self.cases: list[dict[str, Any]] = []

    async def record_case(self, **kw: Any) -> None:
        self.cases.append(kw)


class _Desk:
    async def announce(self, case_id: str) -> None:
        return None


@pytest.fixture(scope="module")
def upload_client() -> Iterator[TestClient]:
    app = FastAPI()

    @app.exception_handler(InputRejected)
    async def rejected(_request: Request, exc: InputRejected) -> JSONResponse:
        return error_response(exc)

    settings_ = IngestSettings(api_keys={"k": "demo"}, dicom_enabled=False)
    app.state.deps = IngestDeps(
        settings=settings_,
        repo=cast(Any, _Repo()),
        store=cast(Any, _Store()),
        desk=cast(Any, _Desk()),
    )
    app.include_router(build_router())
    with TestClient(app) as client:
        yield client


INTAKE = (
    '{"clinical_question": "q?", "consent": true,'
    ' "referring_physician": {"name": "Dr R", "email": "r@example.org"}}'
)


@settings(FAST, max_examples=50 * SCALE)
@given(f=dicom_fuzz.bad_files())
def test_an_upload_is_refused_with_a_4xx_naming_the_file_or_opens_the_case(
    upload_client: TestClient, f: Fuzzed
) -> None:
    expected = outcome(f)
    r = upload_client.post(
        "/v1/cases",
        headers={"X-API-Key": "k"},
        files=[("files", ("im1.dcm", f.data, "application/dicom"))],
        data={"intake": INTAKE},
    )
    if isinstance(expected, InstanceInfo):
        assert r.status_code == 201, r.text
        assert r.json()["instances"] == 1
        return
    assert r.status_code == expected.status, r.text
    assert 400 <= r.status_code < 500
    error = r.json()["error"]
    assert error["code"] == expected.code
    assert error["message"].startswith("im1.dcm: ")


# ---------------------------------------------------------------------- the Storage SCP door


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def scp() -> Iterator[tuple[int, Path]]:
    """ingest's real Storage SCP and its validation-and-spool step, on a free port."""
    folder = Path(tempfile.mkdtemp(prefix="fuzz-spool-"))
    spool = Spool(folder)
    spool.open()
    desk = CaseDesk(
        settings=IngestSettings(dicom_enabled=False),
        repo=cast(Any, None),  # receive_dimse validates and spools; it stores nothing itself
        store=cast(Any, None),
        spool=spool,
        pacs=None,
        wake_relay=lambda: None,
    )
    port = _free_port()
    server = StorageSCP(
        host="127.0.0.1",
        port=port,
        ae_title="SECONDREAD",
        aet_to_hospital={"FUZZ_SCU": "demo"},
        receive=desk.receive_dimse,
        timeout_s=10,
    )
    server.start()
    # A path given to send_c_store is sent as it is, after its file meta, never decoded and
    # re-encoded by pynetdicom (which would repair or refuse the malformed datasets).
    chunked, _config.STORE_SEND_CHUNKED_DATASET = _config.STORE_SEND_CHUNKED_DATASET, True
    try:
        yield port, folder
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = chunked
        server.stop()


def _dataset_part(f: Fuzzed) -> bytes | None:
    """The file as a DIMSE peer sends it: a valid file meta (pynetdicom reads it to choose the
    presentation context; none of it travels) and the fuzzed dataset bytes after it."""
    assert f.ids is not None
    meta_end = len(dicom_fuzz.part10([], f.ids))
    if len(f.data) <= meta_end or f.data[:meta_end] != dicom_fuzz.part10([], f.ids):
        return None  # cut inside the file meta: nothing a DIMSE peer could send
    return f.data


@settings(FAST, max_examples=40 * SCALE)
@given(f=dicom_fuzz.bad_files())
def test_a_c_store_gets_a_named_failure_status_or_success(
    scp: tuple[int, Path], f: Fuzzed, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = _dataset_part(f)
    if data is None:
        return
    expected = outcome(f)
    path = tmp_path_factory.mktemp("cstore") / "fuzz.dcm"
    path.write_bytes(data)
    ae = AE(ae_title="FUZZ_SCU")
    for sop_class in (dicom_fuzz.uids(0).sop_class, dicom_fuzz.BASIC_TEXT_SR):
        for syntax in dicom_fuzz.TRANSFER_SYNTAXES:  # one context each: one is accepted
            ae.add_requested_context(sop_class, syntax)
    assoc = ae.associate("127.0.0.1", scp[0], ae_title="SECONDREAD")
    assert assoc.is_established
    try:
        status = assoc.send_c_store(path)
    finally:
        assoc.release()
    assert status is not None and "Status" in status, "no C-STORE response"
    if isinstance(expected, InstanceInfo):
        assert status.Status == SUCCESS
        return
    # The same refusal as the parser's, named in the ErrorComment (PS3.7 C.4.2.1.4).
    assert status.Status == STATUS_BY_REJECTION[expected.code], (hex(status.Status), f.note)
    assert str(status.get("ErrorComment", "")).startswith("C-STORE: ")


def test_the_scp_still_answers_after_the_fuzzing(scp: tuple[int, Path]) -> None:
    ae = AE(ae_title="FUZZ_SCU")
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", scp[0], ae_title="SECONDREAD")
    assert assoc.is_established
    status = assoc.send_c_echo()
    assoc.release()
    assert status.Status == SUCCESS


def test_a_form_the_multipart_parser_refuses_is_refused_by_name(
    upload_client: TestClient,
) -> None:
    """Starlette's own refusal (too many fields) was FastAPI's {"detail": ...} (Schemathesis)."""
    fields = {f"f{i}": "x" for i in range(20)}
    r = upload_client.post("/v1/cases", headers={"X-API-Key": "k"}, data=fields,
                           files=[("files", ("a.dcm", b"x", "application/dicom"))])  # fmt: skip
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "bad_multipart"
    assert "Too many fields" in r.json()["error"]["message"]
