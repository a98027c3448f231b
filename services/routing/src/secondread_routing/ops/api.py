"""The operator API (``/v1/ops/...``, role ``operator``) and the page (``/ops/``).

Each route parses, authorises (a bearer token from the OIDC provider with the ``operator``
realm role; 401 and 403 name what is wrong), calls a use case and returns its view. Nothing
here shows a payload or an identity: case ids, states, reasons and positions only.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from string import Template
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from secondread_routing.ops.domain import (
    CasesOverview,
    LetterRef,
    LettersOverview,
    ReplayOutcome,
)
from secondread_routing.ops.errors import Forbidden, NotFound, PageUnavailable, Unauthenticated
from secondread_routing.ops.ports import Verifier
from secondread_routing.ops.service import OpsService
from secondread_shared.errors import ApiError, TransientError, error_body
from secondread_shared.oidc import Principal

OPERATOR = "operator"
WEB = Path(__file__).parent / "web"


@dataclass(frozen=True)
class PageConfig:
    """What the page needs to sign in and refresh (public values only)."""

    issuer: str
    client_id: str
    refresh_seconds: float
    stuck_minutes: float
    at_risk_hours: float
    keycloak_js: Path
    """keycloak-js's browser module (``web/node_modules/keycloak-js/lib/keycloak.js``)."""

    def oidc(self) -> dict[str, str]:
        """keycloak-js's configuration: realm form for Keycloak, discovery otherwise."""
        base, sep, realm = self.issuer.rstrip("/").partition("/realms/")
        if sep and realm and "/" not in realm:
            return {"url": base, "realm": realm, "clientId": self.client_id}
        return {"oidcProvider": self.issuer, "clientId": self.client_id}

    def origin(self) -> str:
        scheme, _, rest = self.issuer.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"


@dataclass
class OpsDeps:
    service: OpsService
    verifier: Verifier
    page: PageConfig


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "no valid bearer token"},
    403: {"model": ErrorBody, "description": "the token has no operator role"},
    422: {"model": ErrorBody, "description": "a parameter is invalid (named in the message)"},
    503: {"model": ErrorBody, "description": "Kafka or the database did not answer: try again"},
}


def get_deps(request: Request) -> OpsDeps:
    deps: OpsDeps = request.app.state.ops
    return deps


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "sign in: send an OIDC access token as 'Authorization: Bearer <token>'"
        )
    return token.strip()


async def operator(
    deps: Annotated[OpsDeps, Depends(get_deps)],
    authorization: Annotated[str | None, Header()] = None,
) -> Principal:
    """The verified caller with the ``operator`` role (401, 403 otherwise)."""
    who = await deps.verifier.verify(_bearer(authorization))
    if not who.has(OPERATOR):
        raise Forbidden(f"the operations API needs the operator role, which {who.username} lacks")
    return who


def build_router() -> APIRouter:
    router = APIRouter(prefix="/v1/ops", tags=["operations"], responses=REFUSALS)

    @router.get("/cases", summary="Cases by state, at risk of their due time, and stuck")
    async def cases(
        deps: Annotated[OpsDeps, Depends(get_deps)],
        _who: Annotated[Principal, Depends(operator)],
        state: Annotated[
            str | None,
            Query(
                max_length=64,
                pattern=r"^[a-z][a-z0-9_]*$",
                description="only cases in this state (a state name: lower case and _)",
            ),
        ] = None,
        stuck_after_minutes: Annotated[
            float | None,
            Query(gt=0, le=60 * 24 * 30, description="minutes without progress (default 15)"),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> CasesOverview:
        after = timedelta(minutes=stuck_after_minutes) if stuck_after_minutes else None
        return await deps.service.cases(state=state or None, stuck_after=after, limit=limit)

    @router.get("/dead-letters", summary="Dead letters: headers and reason, never the payload")
    async def dead_letters(
        deps: Annotated[OpsDeps, Depends(get_deps)],
        _who: Annotated[Principal, Depends(operator)],
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> LettersOverview:
        return await deps.service.dead_letters(limit)

    @router.post(
        "/dead-letters/{topic}/{partition}/{offset}/replay",
        summary="Replay one dead letter onto its source topic (once; a repeat is answered"
        " with the first replay)",
        responses={404: {"model": ErrorBody, "description": "no dead letter there"}},
    )
    async def replay(
        topic: Annotated[str, PathParam(max_length=249, description="the .dlq topic")],
        partition: Annotated[int, PathParam(ge=0)],
        offset: Annotated[int, PathParam(ge=0)],
        deps: Annotated[OpsDeps, Depends(get_deps)],
        who: Annotated[Principal, Depends(operator)],
    ) -> ReplayOutcome:
        return await deps.service.replay(LetterRef(topic, partition, offset), who.username)

    return router


ASSETS = {"ops.js": "text/javascript", "ops.css": "text/css"}


def build_page_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/ops")
    async def to_page() -> RedirectResponse:
        return RedirectResponse("/ops/", status_code=308)

    @router.get("/ops/")
    async def page(deps: Annotated[OpsDeps, Depends(get_deps)]) -> HTMLResponse:
        cfg = deps.page
        config = {
            "oidc": cfg.oidc(),
            "api": "/v1/ops",
            "refreshSeconds": cfg.refresh_seconds,
            "stuckMinutes": cfg.stuck_minutes,
            "atRiskHours": cfg.at_risk_hours,
        }
        body = Template((WEB / "index.html").read_text()).substitute(
            config=html.escape(json.dumps(config), quote=True)
        )
        origin = cfg.origin()
        csp = (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
            f" connect-src 'self' {origin}; frame-src {origin}; form-action {origin};"
            " base-uri 'none'; frame-ancestors 'none'"
        )
        return HTMLResponse(
            body,
            headers={
                "Content-Security-Policy": csp,
                "Cache-Control": "no-store",
                "Referrer-Policy": "no-referrer",
                "X-Content-Type-Options": "nosniff",
            },
        )

    @router.get("/ops/static/{name}")
    async def asset(name: str, deps: Annotated[OpsDeps, Depends(get_deps)]) -> Response:
        if name == "keycloak.js":
            path = deps.page.keycloak_js
            if not path.is_file():
                raise PageUnavailable(
                    f"keycloak-js is not installed ({path}); run `make up` (npm ci in web/)"
                )
            return FileResponse(path, media_type="text/javascript")
        if name not in ASSETS:
            raise NotFound(f"the page has no asset {name!r}")
        return FileResponse(WEB / name, media_type=ASSETS[name])

    return router


def mount(app: FastAPI) -> None:
    """The routes and the error bodies on ``app``, whose ``state.ops`` holds the
    :class:`OpsDeps`."""

    @app.exception_handler(ApiError)
    async def refused(_request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(error_body(exc.code, exc.message), exc.status, headers=headers)

    @app.exception_handler(TransientError)
    async def unavailable(_request: Request, exc: TransientError) -> JSONResponse:
        body = error_body("unavailable", f"{exc}; nothing was recorded: try again")
        return JSONResponse(body, 503, headers={"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ())]
            where = f"{loc[0]} parameter {'.'.join(loc[1:])!r}" if len(loc) > 1 else ".".join(loc)
            problems.append(f"{where}: {e.get('msg', 'invalid')}")
        return JSONResponse(error_body("invalid", "; ".join(problems) or "invalid request"), 422)

    app.include_router(build_router())
    app.include_router(build_page_router())
