"""ingest's HTTP API.

- ``POST /v1/cases``: open a case. ``multipart/form-data`` with an ``intake`` part (JSON) and
  ``files`` parts (DICOM files or zips), or the intake alone (as that one part, or as an
  ``application/json`` body) naming ``study_instance_uids`` that come by C-STORE or STOW-RS.
- ``GET /v1/cases/{id}``: where the case is.
- ``GET /v1/parked``: the hospital's studies that came without an intake.
- ``POST /dicomweb/studies[/{study}]``: STOW-RS (PS3.18 10.5).

Every refusal is ``{"error": {"code", "message"}}`` with a 4xx status and stores nothing of the
refused object.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import psycopg
import pydicom
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from opentelemetry import trace
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from secondread_ingest import stow
from secondread_ingest.errors import (
    OUT_OF_RESOURCES,
    STATUS_BY_REJECTION,
    InputRejected,
)
from secondread_ingest.intake import IntakeForm, inspect_instance, iter_zip
from secondread_ingest.repository import CaseRow
from secondread_ingest.service import (
    IngestDeps,
    record_upload,
    upload_case_id,
)
from secondread_ingest.settings import IngestSettings
from secondread_shared.events import new_id
from secondread_shared.logging import bind_case, get_logger
from secondread_shared.tracing import CASE_ID_ATTRIBUTE

log = get_logger(__name__)
tracer = trace.get_tracer("secondread.ingest")

ZIP_TYPES = {"application/zip", "application/x-zip-compressed"}
FILE_TYPES = ZIP_TYPES | {"application/dicom", "application/octet-stream", ""}


def error_response(exc: InputRejected) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status
    )


def _is_zip(upload: UploadFile) -> bool:
    head = upload.file.read(4)
    upload.file.seek(0)
    return head == b"PK\x03\x04" or (upload.content_type or "") in ZIP_TYPES


def upload_objects(
    uploads: list[UploadFile], settings: IngestSettings
) -> Iterator[tuple[str, bytes]]:
    """Every object of the uploaded files, as (name, bytes): a zip's members, or the file."""
    for upload in uploads:
        yield from _objects(upload, settings)


def _objects(upload: UploadFile, settings: IngestSettings) -> Iterator[tuple[str, bytes]]:
    name = upload.filename or "upload"
    ctype = (upload.content_type or "").split(";")[0].strip().lower()
    if ctype not in FILE_TYPES:
        raise InputRejected(
            "wrong_content_type", f"{name}: content type {ctype!r} is not DICOM or zip", status=415
        )
    upload.file.seek(0)
    if _is_zip(upload):
        yield from iter_zip(
            upload.file,
            name,
            max_members=settings.max_zip_members,
            max_ratio=settings.max_zip_ratio,
            max_total=settings.max_upload_bytes,
        )
    else:
        yield name, upload.file.read()


def get_deps(request: Request) -> IngestDeps:
    """The service's dependencies, set on ``app.state.deps`` by the composition root."""
    deps: IngestDeps = request.app.state.deps
    return deps


def hospital(
    deps: Annotated[IngestDeps, Depends(get_deps)],
    x_api_key: Annotated[str | None, Header()] = None,
) -> str:
    """The hospital an API key belongs to (401 when unknown)."""
    if not x_api_key or x_api_key not in deps.settings.api_keys:
        raise InputRejected("unauthorized", "missing or unknown X-API-Key", status=401)
    return deps.settings.api_keys[x_api_key]


@contextlib.asynccontextmanager
async def _form(request: Request) -> AsyncIterator[FormData]:
    """The multipart form of ``request``; what Starlette's parser refuses (too many fields, a
    malformed part) is refused as ``bad_multipart``, naming it."""
    try:
        form = await request.form(max_files=100_000, max_fields=16)
    except StarletteHTTPException as exc:
        raise InputRejected("bad_multipart", f"multipart body: {exc.detail}", status=400) from exc
    try:
        yield form
    finally:
        await form.close()


def _check_length(request: Request, settings: IngestSettings) -> None:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > settings.max_upload_bytes:
        raise InputRejected(
            "too_large", f"upload exceeds {settings.max_upload_bytes} bytes", status=413
        )


class CaseOpened(BaseModel):
    """The answer to ``POST /v1/cases`` (201, or 200 for a repeated ``Idempotency-Key``)."""

    case_id: str
    status_url: str
    instances: int


class CaseView(BaseModel):
    """Where a case stands (``GET /v1/cases/{case_id}``, ``GET /v1/parked``)."""

    case_id: str
    status: str
    source: str
    created_at: str
    instances: int
    studies: int
    flags: list[str]
    parked_reason: str | None = None


class ParkedCases(BaseModel):
    parked: list[CaseView]


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON Schema with its ``$defs`` written in place (a request body given as
    ``openapi_extra`` cannot point into ``$defs``)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(dict(defs[ref.removeprefix("#/$defs/")]))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result


def _case_body() -> dict[str, Any]:
    intake = _inline(IntakeForm.model_json_schema())
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["intake"],
                        "properties": {
                            "intake": {
                                "type": "string",
                                "description": "the intake as JSON (the application/json body)",
                            },
                            "files": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "description": "DICOM Part 10 files, or zips of them",
                            },
                        },
                    }
                },
                "application/json": {"schema": intake},
            },
        }
    }


STOW_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/related": {
                "schema": {"type": "string", "format": "binary"},
                "description": 'type="application/dicom": one Part 10 instance per part',
            }
        },
    }
}
STOW_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": text,
        "content": {"application/dicom+json": {"schema": {"type": "object"}}},
    }
    for status, text in (
        (200, "every instance stored (Store Instances Response, PS3.18 10.5.3)"),
        (202, "some instances stored, the others in FailedSOPSequence"),
        (409, "no instance stored: each in FailedSOPSequence with its reason"),
    )
}


def build_router() -> APIRouter:
    router = APIRouter()

    @router.post(
        "/v1/cases",
        status_code=201,
        response_model=CaseOpened,
        responses={200: {"model": CaseOpened, "description": "the same upload again"}},
        openapi_extra=_case_body(),
    )
    async def open_case(
        request: Request,
        deps: Annotated[IngestDeps, Depends(get_deps)],
        hospital_id: Annotated[str, Depends(hospital)],
    ) -> JSONResponse:
        settings = deps.settings
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        _check_length(request, settings)
        if ctype == "application/json":
            intake = _parse_intake(await request.body())
            return await _open_intake_only(deps, hospital_id, intake)
        if ctype != "multipart/form-data":
            raise InputRejected(
                "wrong_content_type",
                "POST /v1/cases takes multipart/form-data (or application/json for an intake"
                " alone)",
                status=415,
            )
        key = request.headers.get("idempotency-key")
        case_id = upload_case_id(hospital_id, key) if key else new_id()
        if key:
            earlier = await deps.repo.get_case(case_id)
            if earlier is not None:  # a retry of an upload that was recorded: the same case
                log.info("case_upload_repeated", hospital=hospital_id)
                return _uploaded(case_id, earlier.instances, status=200)
        async with _form(request) as form:
            intake = _parse_intake(form.get("intake"))
            uploads = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
            if not uploads:
                if intake.study_instance_uids:
                    return await _open_intake_only(deps, hospital_id, intake)
                raise InputRejected(
                    "no_files",
                    "at least one 'files' part is required, or study_instance_uids in the intake",
                )
            bind_case(case_id)
            with tracer.start_as_current_span(
                "ingest open_case", attributes={CASE_ID_ATTRIBUTE: case_id}
            ):
                try:
                    n = await record_upload(
                        deps, case_id, hospital_id, intake, upload_objects(uploads, settings)
                    )
                except psycopg.errors.UniqueViolation:
                    # the same key's upload was recorded meanwhile (a concurrent retry)
                    earlier = await deps.repo.get_case(case_id)
                    if earlier is None:  # pragma: no cover
                        raise
                    return _uploaded(case_id, earlier.instances, status=200)
        if not intake.fetch_priors:
            await deps.desk.announce(case_id)
        log.info("case_uploaded", instances=n, hospital=hospital_id)
        return _uploaded(case_id, n, status=201)

    @router.get("/v1/cases/{case_id}", response_model=CaseView, response_model_exclude_none=True)
    async def case_status(
        case_id: str,
        deps: Annotated[IngestDeps, Depends(get_deps)],
        hospital_id: Annotated[str, Depends(hospital)],
    ) -> dict[str, Any]:
        row = await deps.repo.get_case(case_id)
        if row is None or row.hospital_id != hospital_id:
            raise InputRejected("not_found", f"no case {case_id}", status=404)
        return _case_view(row)

    @router.get("/v1/parked", response_model=ParkedCases, response_model_exclude_none=True)
    async def parked(
        deps: Annotated[IngestDeps, Depends(get_deps)],
        hospital_id: Annotated[str, Depends(hospital)],
    ) -> dict[str, Any]:
        return {"parked": [_case_view(r) for r in await deps.repo.parked(hospital_id)]}

    @router.post("/dicomweb/studies", responses=STOW_RESPONSES, openapi_extra=STOW_BODY)
    async def stow_rs(
        request: Request,
        deps: Annotated[IngestDeps, Depends(get_deps)],
        hospital_id: Annotated[str, Depends(hospital)],
    ) -> JSONResponse:
        return await _stow(request, deps, hospital_id, None)

    @router.post(
        "/dicomweb/studies/{study_instance_uid}", responses=STOW_RESPONSES, openapi_extra=STOW_BODY
    )
    async def stow_rs_study(
        study_instance_uid: str,
        request: Request,
        deps: Annotated[IngestDeps, Depends(get_deps)],
        hospital_id: Annotated[str, Depends(hospital)],
    ) -> JSONResponse:
        return await _stow(request, deps, hospital_id, study_instance_uid)

    return router


def _uploaded(case_id: str, instances: int, *, status: int) -> JSONResponse:
    return JSONResponse(
        {"case_id": case_id, "status_url": f"/v1/cases/{case_id}", "instances": instances},
        status_code=status,
    )


def _case_view(row: CaseRow) -> dict[str, Any]:
    view: dict[str, Any] = {
        "case_id": row.case_id,
        "status": row.status,
        "source": row.source,
        "created_at": row.created_at.isoformat(),
        "instances": row.instances,
        "studies": len(row.study_instance_uids),
        "flags": list(row.flags),
    }
    if row.parked_reason:
        view["parked_reason"] = row.parked_reason
    return view


async def _open_intake_only(deps: IngestDeps, hospital_id: str, intake: IntakeForm) -> JSONResponse:
    if not intake.study_instance_uids:
        raise InputRejected(
            "no_files", "an intake alone must name its study_instance_uids (or attach files)"
        )
    case_id, created = await deps.repo.open_intake(
        new_case_id=new_id(), hospital_id=hospital_id, intake=intake
    )
    bind_case(case_id)
    log.info("case_opened_by_intake", hospital=hospital_id, joined_existing=not created)
    return JSONResponse(
        {"case_id": case_id, "status_url": f"/v1/cases/{case_id}", "instances": 0},
        status_code=201,
    )


async def _stow(
    request: Request, deps: IngestDeps, hospital_id: str, study_uid: str | None
) -> JSONResponse:
    """Store every part that is a valid instance; refuse the others in FailedSOPSequence."""
    settings = deps.settings
    _check_length(request, settings)
    reader = stow.PartReader(
        stow.request_boundary(request.headers.get("content-type", "")),
        max_part=settings.max_instance_bytes,
    )
    stored: list[stow.Stored] = []
    failed: list[stow.Failed] = []
    base = str(request.base_url).rstrip("/")
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > settings.max_upload_bytes:
            raise InputRejected(
                "too_large", f"upload exceeds {settings.max_upload_bytes} bytes", status=413
            )
        for part in reader.feed(chunk):
            try:
                await _stow_part(deps, hospital_id, study_uid, part, base, stored, failed)
            finally:
                part.close()
    reader.finish()
    if not stored and not failed:
        raise InputRejected("no_files", "the STOW-RS request holds no DICOM part", status=400)
    studies = {s.study_instance_uid for s in stored}
    study_url = f"{base}/dicomweb/studies/{studies.pop()}" if len(studies) == 1 else None
    status, body = stow.store_response(stored, failed, study_url)
    headers = {"Content-Type": "application/dicom+json"}
    warning = stow.warning_header(failed)
    if warning:
        headers["Warning"] = warning
    log.info("stow_rs", hospital=hospital_id, stored=len(stored), failed=len(failed))
    return JSONResponse(body, status_code=status, headers=headers)


async def _stow_part(
    deps: IngestDeps,
    hospital_id: str,
    study_uid: str | None,
    part: stow.Part,
    base: str,
    stored: list[stow.Stored],
    failed: list[stow.Failed],
) -> None:
    name = f"part {len(stored) + len(failed) + 1}"
    if part.content_type not in ("application/dicom", ""):
        failed.append(
            stow.Failed("", "", STATUS_BY_REJECTION["not_dicom"], f"{name}: not application/dicom")
        )
        return
    data = part.read()
    try:
        info = inspect_instance(data, name)
        if study_uid is not None and info.study_instance_uid != study_uid:
            raise InputRejected(
                "study_mismatch", f"{name}: StudyInstanceUID differs from the request URL"
            )
    except InputRejected as exc:
        cls, uid = _uids_if_any(data)
        reason = STATUS_BY_REJECTION.get(exc.code, 0xC000)
        failed.append(stow.Failed(cls, uid, reason, exc.message))
        log.info("stow_part_refused", code=exc.code)
        return
    try:
        await deps.desk.accept(hospital_id, data, source="stow", name=name)
    except Exception as exc:  # transient (store, database): refused for now, named
        log.error("stow_part_failed", error=type(exc).__name__)
        failed.append(
            stow.Failed(
                info.sop_class_uid, info.sop_instance_uid, OUT_OF_RESOURCES, f"{name}: retry later"
            )
        )
        return
    stored.append(
        stow.Stored(
            info.sop_class_uid,
            info.sop_instance_uid,
            f"{base}/dicomweb/studies/{info.study_instance_uid}/series/"
            f"{info.series_instance_uid}/instances/{info.sop_instance_uid}",
            info.study_instance_uid,
        )
    )


def _uids_if_any(data: bytes) -> tuple[str, str]:
    """SOP Class and Instance UIDs of a refused part, when they can be read at all."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=[
            "SOPClassUID", "SOPInstanceUID"
        ])  # fmt: skip
        return str(ds.get("SOPClassUID", "")), str(ds.get("SOPInstanceUID", ""))
    except Exception:
        return "", ""


def _parse_intake(part: object) -> IntakeForm:
    if part is None:
        raise InputRejected("no_intake", "the 'intake' part (JSON) is required")
    if isinstance(part, UploadFile):
        raw: bytes = part.file.read()
    elif isinstance(part, bytes):
        raw = part
    else:
        raw = str(part).encode()
    try:
        intake = IntakeForm.model_validate(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise InputRejected("bad_intake", f"intake is not JSON: {exc.msg}") from exc
    except UnicodeDecodeError as exc:  # json.loads of bytes that are no UTF-8, -16 or -32
        raise InputRejected("bad_intake", "intake is not JSON: not UTF-8 text") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise InputRejected("bad_intake", f"intake: {problems}") from exc
    if not intake.consent:
        raise InputRejected(
            "no_consent",
            "intake.consent: a case is processed only with the patient's consent (consent: true)",
        )
    return intake
