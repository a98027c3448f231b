"""The HTTP API: worklist, case view, accept and decline, drafts, signing, addenda, reports, keys
and verification. Each route parses, authorises, calls a use case (service.py) and returns; errors
are :class:`~secondread_reporting.errors.ApiError` answered by the app's handler."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import BaseModel, ConfigDict, Field, field_validator

from secondread_reporting.errors import Forbidden, NotFound, Unauthenticated
from secondread_reporting.ports import JSON
from secondread_reporting.report import AddendumContent, DraftContent
from secondread_reporting.repository import ReportingRepository
from secondread_reporting.service import Reporting, etag, parse_if_match, reader_case
from secondread_reporting.settings import ReportingSettings
from secondread_shared.logging import bind_case, get_logger
from secondread_shared.oidc import Principal, TokenVerifier
from secondread_shared.orthanc import OrthancClient
from secondread_shared.outbox import OutboxRelay
from secondread_shared.storage import ObjectStore
from secondread_shared.text import refuse_nul
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

    @field_validator("reason")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        return refuse_nul(value)  # kept in PostgreSQL text


class SignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    draft_version: int = Field(ge=1, description="the draft version the reader reviewed")


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

    @router.get("/cases/{case_id}/draft")
    async def get_draft(
        case_id: str,
        response: Response,
        deps: Annotated[ReportingDeps, Depends(get_deps)],
        radiologist_id: Annotated[str, Depends(radiologist)],
    ) -> JSON:
        version, content = await deps.reporting.get_draft(case_id, radiologist_id)
        response.headers["ETag"] = etag(version)
        gaps = await deps.reporting.still_missing(
            case_id, radiologist_id, DraftContent.model_validate(content)
        )
        return {"case_id": case_id, "version": version, "draft": content, "missing": gaps}

    @router.put("/cases/{case_id}/draft")
    async def put_draft(
        case_id: str,
        body: DraftContent,
        response: Response,
        deps: Annotated[ReportingDeps, Depends(get_deps)],
        radiologist_id: Annotated[str, Depends(radiologist)],
        if_match: Annotated[str | None, Header()] = None,
    ) -> JSON:
        version = await deps.reporting.put_draft(
            case_id, radiologist_id, body, parse_if_match(if_match)
        )
        response.headers["ETag"] = etag(version)
        gaps = await deps.reporting.still_missing(case_id, radiologist_id, body)
        return {"case_id": case_id, "version": version, "missing": gaps}

    @router.post("/cases/{case_id}/report", status_code=201)
    async def sign_report(
        case_id: str,
        body: SignBody,
        deps: Annotated[ReportingDeps, Depends(get_deps)],
        radiologist_id: Annotated[str, Depends(radiologist)],
        idempotency_key: Annotated[str, Header()] = "",
    ) -> JSON:
        bind_case(case_id)
        row = await reader_case(deps.repo, case_id, radiologist_id)
        with _human_step("reporting sign", case_id, row.trace):
            result = await deps.reporting.sign(
                case_id, radiologist_id, body.draft_version, idempotency_key
            )
        deps.relay.wake()
        return result

    @router.get("/reports/{report_id}")
    async def report(
        report_id: str,
        deps: Annotated[ReportingDeps, Depends(get_deps)],
        radiologist_id: Annotated[str, Depends(radiologist)],
    ) -> JSON:
        return await deps.reporting.signed(report_id, radiologist_id)

    @router.get("/reports/{report_id}/pdf")
    async def report_pdf(
        report_id: str,
        deps: Annotated[ReportingDeps, Depends(get_deps)],
        radiologist_id: Annotated[str, Depends(radiologist)],
    ) -> Response:
        found = await deps.reporting.signed(report_id, radiologist_id)
        key = f"reports/{found['report']['case_id']}/{report_id}.pdf"
        pdf = await deps.store.get(deps.settings.bucket_reports, key)
        return Response(pdf, media_type="application/pdf")

    @router.post("/reports/{report_id}/addenda", status_code=201)
    async def addendum(
        report_id: str,
        body: AddendumContent,
        deps: Annotated[ReportingDeps, Depends(get_deps)],
        radiologist_id: Annotated[str, Depends(radiologist)],
        idempotency_key: Annotated[str, Header()] = "",
    ) -> JSON:
        result = await deps.reporting.addend(report_id, radiologist_id, body, idempotency_key)
        deps.relay.wake()
        return result

    @router.get("/reports/{report_id}/verify")
    async def verify(report_id: str, deps: Annotated[ReportingDeps, Depends(get_deps)]) -> JSON:
        """Public: anyone holding a report id can check its signature."""
        return await deps.reporting.verify(report_id)

    @router.get("/keys")
    async def keys(deps: Annotated[ReportingDeps, Depends(get_deps)]) -> JSON:
        """Public: every reader's signing key, to verify reports without trusting us."""
        return {"keys": await deps.reporting.public_keys()}

    @router.get("/keys/{kid}")
    async def public_key(kid: str, deps: Annotated[ReportingDeps, Depends(get_deps)]) -> JSON:
        for key in await deps.reporting.public_keys():
            if key["kid"] == kid:
                return key
        raise NotFound(f"no key {kid}")

    return router


@contextlib.contextmanager
def _human_step(name: str, case_id: str, carrier: dict[str, str]) -> Iterator[None]:
    """A human step starts a new trace, linked to the case's automated trace."""
    ctx = trace.get_current_span(_PROPAGATOR.extract(carrier)).get_span_context()
    links = [Link(ctx)] if ctx.is_valid else []
    token = otel_context.attach(otel_context.Context())
    try:
        with tracer.start_as_current_span(
            name, links=links, attributes={CASE_ID_ATTRIBUTE: case_id}
        ):
            yield
    finally:
        otel_context.detach(token)
