"""The radiologist HTTP API: worklist, case view, signing, report and key lookup."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import BaseModel, ConfigDict, Field

from secondread_reporting.auth import Principal, TokenVerifier
from secondread_reporting.errors import (
    ArchiveUnavailable,
    Conflict,
    Forbidden,
    NotFound,
    Unauthenticated,
)
from secondread_reporting.outputs import diagnostic_report, encapsulated_pdf, render_pdf
from secondread_reporting.repository import AlreadySigned, ReportingRepository
from secondread_reporting.service import Reporting, reader_case
from secondread_reporting.settings import ReportingSettings
from secondread_reporting.signing import ReportDraft, canonical_bytes, key_id, sign
from secondread_shared.errors import TransientError
from secondread_shared.events import (
    CaseAssigned,
    CaseState,
    CaseStatusChanged,
    ReportSigned,
    new_id,
)
from secondread_shared.logging import bind_case, get_logger
from secondread_shared.orthanc import OrthancClient
from secondread_shared.outbox import OutboxRelay
from secondread_shared.storage import ObjectStore
from secondread_shared.tracing import CASE_ID_ATTRIBUTE

RADIOLOGIST = "radiologist"
OPERATOR = "operator"

log = get_logger(__name__)
tracer = trace.get_tracer("secondread.reporting")
_PROPAGATOR = TraceContextTextMapPropagator()


@dataclass
class ReportingDeps:
    settings: ReportingSettings
    repo: ReportingRepository
    store: ObjectStore
    relay: OutboxRelay
    orthanc: OrthancClient
    verifier: TokenVerifier
    reporting: Reporting


class DeclineBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


def get_deps(request: Request) -> ReportingDeps:
    """The service's dependencies, set on ``app.state.deps`` by the composition root."""
    deps: ReportingDeps = request.app.state.deps
    return deps


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send an OIDC access token as 'Authorization: Bearer <token>'")
    return token.strip()


async def principal(
    deps: Annotated[ReportingDeps, Depends(get_deps)],
    authorization: Annotated[str | None, Header()] = None,
) -> Principal:
    """The verified caller (401 naming the flaw otherwise)."""
    return await deps.verifier.verify(_bearer(authorization))


async def radiologist(who: Annotated[Principal, Depends(principal)]) -> str:
    """The reader id of a caller with the ``radiologist`` role (403 otherwise)."""
    if not who.has(RADIOLOGIST):
        raise Forbidden("this needs the radiologist role")
    return who.username


async def signed_report(case_id: str, deps: ReportingDeps, radiologist_id: str) -> dict[str, Any]:
    """The signed report of a case on ``radiologist_id``'s worklist (404 otherwise)."""
    await reader_case(deps.repo, case_id, radiologist_id)
    signed = await deps.repo.signed_report(case_id)
    if signed is None:
        raise NotFound("not signed yet", code="not_signed")
    return signed


def build_router() -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.get("/worklist")
    async def worklist(
        deps: Annotated[ReportingDeps, Depends(get_deps)],
        radiologist_id: Annotated[str, Depends(radiologist)],
    ) -> dict[str, Any]:
        cases = await deps.reporting.worklist(radiologist_id)
        return {"radiologist_id": radiologist_id, "cases": cases}

    @router.get("/cases/{case_id}")
    async def case_view(
        case_id: str,
        deps: Annotated[ReportingDeps, Depends(get_deps)],
        radiologist_id: Annotated[str, Depends(radiologist)],
    ) -> dict[str, Any]:
        return await deps.reporting.case_view(case_id, radiologist_id)

    @router.post("/cases/{case_id}/accept")
    async def accept(
        case_id: str,
        deps: Annotated[ReportingDeps, Depends(get_deps)],
        radiologist_id: Annotated[str, Depends(radiologist)],
    ) -> dict[str, Any]:
        bind_case(case_id)
        result = await deps.reporting.accept(case_id, radiologist_id)
        deps.relay.wake()
        return result

    @router.post("/cases/{case_id}/decline")
    async def decline(
        case_id: str,
        body: DeclineBody,
        deps: Annotated[ReportingDeps, Depends(get_deps)],
        radiologist_id: Annotated[str, Depends(radiologist)],
    ) -> dict[str, Any]:
        bind_case(case_id)
        result = await deps.reporting.decline(case_id, radiologist_id, body.reason)
        deps.relay.wake()
        return result

    @router.get("/cases/{case_id}/status")
    async def case_status(
        case_id: str,
        deps: Annotated[ReportingDeps, Depends(get_deps)],
        who: Annotated[Principal, Depends(principal)],
    ) -> dict[str, Any]:
        """Where a case stands: for operators, and for the case's own reader. No clinical text."""
        if who.has(OPERATOR):
            row = await deps.repo.case(case_id)
            if row is None:
                raise NotFound(f"no case {case_id}")
        elif who.has(RADIOLOGIST):
            row = await reader_case(deps.repo, case_id, who.username)
        else:
            raise Forbidden("this needs the operator or radiologist role")
        return {
            "case_id": case_id,
            "status": row.status.value,
            "radiologist_id": row.radiologist_id,
            "priority": row.assigned.priority.value,
            "due_at": row.assigned.due_at.isoformat(),
        }

    @router.post("/cases/{case_id}/report", status_code=201)
    async def sign_report(
        case_id: str,
        draft: ReportDraft,
        deps: Annotated[ReportingDeps, Depends(get_deps)],
        radiologist_id: Annotated[str, Depends(radiologist)],
    ) -> dict[str, Any]:
        bind_case(case_id)
        row = await reader_case(deps.repo, case_id, radiologist_id)
        if await deps.repo.signed_report(case_id) is not None:
            raise Conflict(_already_signed(case_id), code="already_signed")
        assigned = row.assigned
        # A human step starts a new trace, linked to the case's automated trace.
        case_ctx = trace.get_current_span(_PROPAGATOR.extract(row.trace)).get_span_context()
        links = [Link(case_ctx)] if case_ctx.is_valid else []
        token = otel_context.attach(otel_context.Context())
        try:
            with tracer.start_as_current_span(
                "reporting sign", links=links, attributes={CASE_ID_ATTRIBUTE: case_id}
            ):
                result = await _sign(case_id, draft, assigned, deps, radiologist_id)
        finally:
            otel_context.detach(token)
        deps.relay.wake()
        return result

    @router.get("/reports/{case_id}")
    async def report(
        case_id: str,
        deps: Annotated[ReportingDeps, Depends(get_deps)],
        radiologist_id: Annotated[str, Depends(radiologist)],
    ) -> dict[str, Any]:
        signed = await signed_report(case_id, deps, radiologist_id)
        return {
            "report": json.loads(bytes(signed["canonical"])),
            "signature": signed["signature"],
            "key_id": signed["key_id"],
            "algorithm": "Ed25519",
        }

    @router.get("/reports/{case_id}/pdf")
    async def report_pdf(
        case_id: str,
        deps: Annotated[ReportingDeps, Depends(get_deps)],
        radiologist_id: Annotated[str, Depends(radiologist)],
    ) -> Response:
        signed = await signed_report(case_id, deps, radiologist_id)
        key = str(signed["object_key"]).removesuffix(".json") + ".pdf"
        pdf = await deps.store.get(deps.settings.bucket_reports, key)
        return Response(pdf, media_type="application/pdf")

    @router.get("/keys/{kid}")
    async def public_key(
        kid: str, deps: Annotated[ReportingDeps, Depends(get_deps)]
    ) -> dict[str, str]:
        found = await deps.repo.public_key(kid)
        if found is None:
            raise NotFound(f"no key {kid}")
        rad, raw = found
        return {
            "key_id": kid,
            "radiologist_id": rad,
            "algorithm": "Ed25519",
            "public_key": base64.b64encode(raw).decode(),
        }

    return router


def _render(
    document: dict[str, Any], signature: str, kid: str, study_uids: list[str]
) -> tuple[bytes, bytes | None, bytes]:
    """PDF, DICOM Encapsulated PDF (in the case's first study, if any) and FHIR JSON."""
    pdf = render_pdf(document, signature=signature, key_id=kid)
    dicom = (
        encapsulated_pdf(
            pdf,
            report=document,
            study_instance_uid=study_uids[0],
            uid_root_entropy=str(document["report_id"]),
        )
        if study_uids
        else None
    )
    fhir = json.dumps(diagnostic_report(document, pdf)).encode()
    return pdf, dicom, fhir


def _already_signed(case_id: str) -> str:
    return f"case {case_id} already has a signed report; corrections are addenda"


async def _sign(
    case_id: str,
    draft: ReportDraft,
    assigned: CaseAssigned,
    deps: ReportingDeps,
    radiologist_id: str,
) -> dict[str, Any]:
    private = await deps.repo.signing_key(radiologist_id)
    kid = key_id(private.public_key())
    report_id = new_id()
    signed_at = datetime.now(UTC)
    document = {
        "report_id": report_id,
        "case_id": case_id,
        "patient_pseudonym": assigned.patient_pseudonym,
        "study_instance_uids": assigned.study_instance_uids,
        "radiologist_id": radiologist_id,
        "signed_at": signed_at.isoformat(),
        "algorithm": "Ed25519",
        "key_id": kid,
        **draft.model_dump(mode="json"),
    }
    canonical = canonical_bytes(document)
    signature = sign(private, canonical)
    object_key = f"reports/{case_id}/{report_id}.json"
    ref = await deps.store.put(
        deps.settings.bucket_reports, object_key, canonical, content_type="application/json"
    )
    pdf, dicom, fhir = await asyncio.to_thread(
        _render, document, signature, kid, assigned.study_instance_uids
    )
    pdf_ref = await deps.store.put(
        deps.settings.bucket_reports,
        f"reports/{case_id}/{report_id}.pdf",
        pdf,
        content_type="application/pdf",
    )
    fhir_ref = await deps.store.put(
        deps.settings.bucket_reports,
        f"reports/{case_id}/{report_id}.fhir.json",
        fhir,
        content_type="application/fhir+json",
    )
    archive_id = ""
    if dicom is not None:
        try:
            archive_id = (await deps.orthanc.store_instance(dicom)).instance_id
        except TransientError as exc:
            raise ArchiveUnavailable("the archive did not answer; nothing was signed") from exc
    event = ReportSigned(
        case_id=case_id,
        producer="reporting",
        report_id=report_id,
        radiologist_id=radiologist_id,
        signed_at=signed_at,
        key_id=kid,
        signature=signature,
        report=ref,
        assessment=draft.assessment.summary,
        pdf=pdf_ref,
        fhir=fhir_ref,
        archive_instance_id=archive_id,
    )
    status = CaseStatusChanged(
        case_id=case_id,
        producer="reporting",
        causation_id=event.event_id,
        state=CaseState.SIGNED,
        detail=f"signed by {radiologist_id}",
    )
    try:
        await deps.repo.record_signed(
            report_id=report_id,
            case_id=case_id,
            radiologist_id=radiologist_id,
            kid=kid,
            canonical=canonical,
            signature=signature,
            signed_at=signed_at,
            object_key=object_key,
            events=[event, status],
        )
    except AlreadySigned as exc:
        raise Conflict(_already_signed(case_id), code="already_signed") from exc
    log.info("report_signed", report_id=report_id, key_id=kid)
    return {"report_id": report_id, "key_id": kid, "signature": signature, "algorithm": "Ed25519"}
