"""ingest's HTTP API: ``POST /v1/cases`` (multipart upload) and ``GET /v1/cases/{id}``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from opentelemetry import trace
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from secondread_ingest.errors import InputRejected
from secondread_ingest.intake import InstanceInfo, IntakeForm, inspect_instance, iter_zip
from secondread_ingest.repository import IngestRepository
from secondread_ingest.settings import IngestSettings
from secondread_shared.events import (
    CaseReceived,
    CaseState,
    CaseStatusChanged,
    InstanceRef,
    new_id,
)
from secondread_shared.logging import bind_case, get_logger
from secondread_shared.outbox import OutboxRelay, capture_trace
from secondread_shared.storage import ObjectStore, sha256_hex
from secondread_shared.tracing import CASE_ID_ATTRIBUTE

log = get_logger(__name__)
tracer = trace.get_tracer("secondread.ingest")

ZIP_TYPES = {"application/zip", "application/x-zip-compressed"}
FILE_TYPES = ZIP_TYPES | {"application/dicom", "application/octet-stream", ""}


@dataclass
class IngestDeps:
    settings: IngestSettings
    repo: IngestRepository
    store: ObjectStore
    relay: OutboxRelay


def error_response(exc: InputRejected) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status
    )


def _is_zip(upload: UploadFile) -> bool:
    head = upload.file.read(4)
    upload.file.seek(0)
    return head == b"PK\x03\x04" or (upload.content_type or "") in ZIP_TYPES


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


def build_router() -> APIRouter:
    router = APIRouter()

    @router.post("/v1/cases", status_code=201)
    async def open_case(
        request: Request,
        deps: Annotated[IngestDeps, Depends(get_deps)],
        hospital_id: Annotated[str, Depends(hospital)],
    ) -> JSONResponse:
        settings = deps.settings
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            raise InputRejected(
                "wrong_content_type", "POST /v1/cases takes multipart/form-data", status=415
            )
        length = int(request.headers.get("content-length") or 0)
        if length > settings.max_upload_bytes:
            raise InputRejected(
                "too_large", f"upload exceeds {settings.max_upload_bytes} bytes", status=413
            )
        case_id = new_id()
        bind_case(case_id)
        with tracer.start_as_current_span(
            "ingest open_case", attributes={CASE_ID_ATTRIBUTE: case_id}
        ):
            async with request.form(max_files=100_000, max_fields=16) as form:
                intake = _parse_intake(form.get("intake"))
                uploads = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
                if not uploads:
                    raise InputRejected("no_files", "at least one 'files' part is required")
                # Pass 1: validate everything; nothing is stored unless all of it is valid.
                seen: dict[str, str] = {}
                flags: list[str] = []
                for upload in uploads:
                    for name, data in _objects(upload, settings):
                        info = inspect_instance(data, name)
                        _dedupe(seen, info, data, flags)
                # Pass 2: store each distinct instance byte for byte.
                refs: dict[str, InstanceRef] = {}
                for upload in uploads:
                    for name, data in _objects(upload, settings):
                        info = inspect_instance(data, name)
                        if info.sop_instance_uid in refs:
                            continue
                        refs[info.sop_instance_uid] = await _store(deps, case_id, info, data)
            event = CaseReceived(
                case_id=case_id,
                producer="ingest",
                hospital_id=hospital_id,
                urgency=intake.urgency,
                clinical_question=intake.clinical_question,
                original_report=intake.original_report,
                referring_physician=intake.referring_physician,
                patient_email=intake.patient_email,
                jurisdiction=intake.jurisdiction,
                consent=intake.consent,
                instances=list(refs.values()),
                flags=flags,
            )
            status = CaseStatusChanged(
                case_id=case_id,
                producer="ingest",
                causation_id=event.event_id,
                state=CaseState.RECEIVED,
                detail=f"{len(refs)} instances",
            )
            await deps.repo.record_case(
                case_id=case_id,
                hospital_id=hospital_id,
                intake=intake.model_dump(mode="json"),
                instances=list(refs.values()),
                events=[event, status],
                trace=capture_trace(),
            )
        deps.relay.wake()
        log.info("case_received", instances=len(refs), hospital=hospital_id)
        return JSONResponse(
            {"case_id": case_id, "status_url": f"/v1/cases/{case_id}", "instances": len(refs)},
            status_code=201,
        )

    @router.get("/v1/cases/{case_id}")
    async def case_status(
        case_id: str,
        deps: Annotated[IngestDeps, Depends(get_deps)],
        hospital_id: Annotated[str, Depends(hospital)],
    ) -> dict[str, Any]:
        row = await deps.repo.get_case(case_id)
        if row is None or row.hospital_id != hospital_id:
            raise InputRejected("not_found", f"no case {case_id}", status=404)
        return {
            "case_id": row.case_id,
            "status": row.status,
            "created_at": row.created_at.isoformat(),
            "instances": row.instances,
        }

    return router


def _parse_intake(part: object) -> IntakeForm:
    if part is None:
        raise InputRejected("no_intake", "the 'intake' part (JSON) is required")
    raw = part.file.read() if isinstance(part, UploadFile) else str(part).encode()
    try:
        return IntakeForm.model_validate(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise InputRejected("bad_intake", f"intake is not JSON: {exc.msg}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise InputRejected("bad_intake", f"intake: {problems}") from exc


def _dedupe(seen: dict[str, str], info: InstanceInfo, data: bytes, flags: list[str]) -> None:
    digest = sha256_hex(data)
    previous = seen.setdefault(info.sop_instance_uid, digest)
    if previous != digest:
        flags.append(f"conflicting_duplicate:{info.sop_instance_uid}")


async def _store(deps: IngestDeps, case_id: str, info: InstanceInfo, data: bytes) -> InstanceRef:
    key = f"cases/{case_id}/{info.study_instance_uid}/{info.sop_instance_uid}.dcm"
    ref = await deps.store.put(
        deps.settings.bucket_raw, key, data, content_type="application/dicom"
    )
    return InstanceRef(
        **ref.model_dump(),
        study_instance_uid=info.study_instance_uid,
        series_instance_uid=info.series_instance_uid,
        sop_instance_uid=info.sop_instance_uid,
        sop_class_uid=info.sop_class_uid,
    )
