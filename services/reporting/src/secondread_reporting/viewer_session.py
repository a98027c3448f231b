"""The viewer's session: the reader's verified access token in an ``HttpOnly`` cookie.

OHIF's DICOMweb requests are same-origin, so the browser sends the cookie with each of them and
no script ever reads the token. The session is opened two ways:

- ``GET /viewer/signin`` runs the OIDC authorization code flow with PKCE (RFC 7636, S256)
  from reporting itself: the provider redirects back to ``/viewer/signin/callback``, reporting
  exchanges the code at the token endpoint (server to server: no CORS involved), verifies the
  access token and sets the cookies. ``POST /viewer/session/renew`` exchanges the refresh token
  (also ``HttpOnly``, sent only to that path) for a new access token before the old one expires.
- ``POST /viewer/session`` with ``Authorization: Bearer <token>``: a page that already holds a
  token (the reading workspace) hands it over, and sends it again whenever it renews it.

Nothing is kept on the server: every replica verifies the cookie like a bearer token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any, Protocol
from urllib.parse import urlencode

import httpx
import jwt
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from secondread_reporting.errors import ApiError, Forbidden, Unauthenticated
from secondread_shared.oidc import Principal

COOKIE = "secondread_viewer"
"""The session: the reader's access token (``HttpOnly``, ``SameSite=Strict``)."""
REFRESH_COOKIE = "secondread_viewer_refresh"
"""The refresh token of a session opened by :func:`signin` (sent to the renew path only)."""
SIGNIN_COOKIE = "secondread_viewer_signin"
"""The state and PKCE verifier of a sign-in under way (``SameSite=Lax``: it must come back
with the provider's redirect)."""
RADIOLOGIST = "radiologist"
SESSION_PATH = "/viewer/session"


class Verifier(Protocol):
    """Verifies an access token (:class:`secondread_shared.oidc.TokenVerifier`)."""

    async def verify(self, token: str) -> Principal: ...


class ProviderRefused(Exception):
    """The identity provider refused a code or a refresh token."""


class ProviderUnavailable(ApiError):
    """The identity provider did not answer (503, try again)."""

    status = 503
    code = "identity_provider_unavailable"


class OidcCodeFlow:
    """The token calls of the authorization code flow for a public client, found through
    discovery (OpenID Connect Discovery 1.0, section 4)."""

    def __init__(self, issuer: str, client_id: str, *, http: httpx.AsyncClient | None = None):
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._http = http or httpx.AsyncClient(timeout=10.0)
        self._endpoints: dict[str, str] = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _endpoint(self, name: str) -> str:
        if name not in self._endpoints:
            try:
                found = await self._http.get(f"{self.issuer}/.well-known/openid-configuration")
                found.raise_for_status()
                config = found.json()
                for key in ("authorization_endpoint", "token_endpoint"):
                    self._endpoints[key] = str(config[key])
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                raise ProviderUnavailable(
                    f"the identity provider {self.issuer} did not answer ({type(exc).__name__})"
                ) from exc
        return self._endpoints[name]

    async def authorization_url(self, redirect_uri: str, state: str, challenge: str) -> str:
        query = {
            "client_id": self.client_id,
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return f"{await self._endpoint('authorization_endpoint')}?{urlencode(query)}"

    async def _token(self, form: dict[str, str]) -> dict[str, Any]:
        url = await self._endpoint("token_endpoint")
        try:
            answer = await self._http.post(url, data={**form, "client_id": self.client_id})
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                f"the identity provider {self.issuer} did not answer ({type(exc).__name__})"
            ) from exc
        if answer.status_code != 200:
            try:
                reason = answer.json().get("error_description") or answer.json().get("error")
            except ValueError:
                reason = f"HTTP {answer.status_code}"
            raise ProviderRefused(str(reason))
        tokens: dict[str, Any] = answer.json()
        return tokens

    async def exchange(self, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
        return await self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": redirect_uri,
            }
        )

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        return await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})


def pkce_pair() -> tuple[str, str]:
    """A code verifier and its S256 challenge (RFC 7636, 4.1 and 4.2)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path of the viewer, never another site."""
    if value and value.startswith("/viewer/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/viewer/"


@dataclass
class SessionDeps:
    verifier: Verifier
    flow: OidcCodeFlow


def get_session_deps(request: Request) -> SessionDeps:
    deps: SessionDeps = request.app.state.viewer_session
    return deps


Deps = Annotated[SessionDeps, Depends(get_session_deps)]


def request_token(request: Request, *, cookie: bool) -> str:
    """The bearer token of ``request``, else (when ``cookie``) its session cookie."""
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if cookie and request.cookies.get(COOKIE):
        return request.cookies[COOKIE]
    raise Unauthenticated(
        "sign in: open the viewer (it signs you in at /viewer/signin), or send an OIDC access "
        "token as 'Authorization: Bearer <token>'"
    )


async def radiologist(verifier: Verifier, token: str) -> Principal:
    who = await verifier.verify(token)
    if not who.has(RADIOLOGIST):
        raise Forbidden(
            f"the viewer is for radiologists: {who.username} does not have the radiologist role"
        )
    return who


def _expiry(token: str) -> int:
    claims = jwt.decode(token, options={"verify_signature": False})
    return int(claims["exp"])


def _body(who: Principal, expires: int, renewable: bool) -> dict[str, Any]:
    return {
        "radiologist_id": who.username,
        "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)),
        "expires_in": max(0, expires - int(time.time())),
        "renewable": renewable,
    }


def _set_session(
    answer: Response, request: Request, token: str, refresh: tuple[str, int] | None
) -> None:
    secure = request.url.scheme == "https"
    lifetime = _expiry(token) - int(time.time())
    answer.set_cookie(COOKIE, token, max_age=max(1, lifetime), path="/", secure=secure,
                      httponly=True, samesite="strict")  # fmt: skip
    if refresh is not None:
        value, refresh_lifetime = refresh
        answer.set_cookie(REFRESH_COOKIE, value, max_age=max(1, refresh_lifetime),
                          path=SESSION_PATH, secure=secure, httponly=True,
                          samesite="strict")  # fmt: skip
    answer.headers["Cache-Control"] = "no-store"


def _refresh_of(tokens: dict[str, Any]) -> tuple[str, int] | None:
    if not tokens.get("refresh_token"):
        return None
    return str(tokens["refresh_token"]), int(tokens.get("refresh_expires_in") or 1800)


def _page(title: str, text: str, status: int) -> HTMLResponse:
    def esc(s: str) -> str:
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{esc(title)} · secondread</title></head><body><main>"
        f"<h1>{esc(title)}</h1><p>{esc(text)}</p>"
        '<p><a href="/viewer/signin">Sign in again</a> · <a href="/read/">Worklist</a></p>'
        "</main></body></html>",
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def build_session_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/viewer/signin")
    async def signin(request: Request, deps: Deps, next: str | None = None) -> Response:
        """Start the authorization code flow with PKCE; come back to ``next``."""
        state = secrets.token_urlsafe(24)
        verifier, challenge = pkce_pair()
        redirect_uri = str(request.url_for("viewer_signin_callback"))
        url = await deps.flow.authorization_url(redirect_uri, state, challenge)
        answer = RedirectResponse(url, status_code=303)
        pending = {"state": state, "verifier": verifier, "next": safe_next(next)}
        answer.set_cookie(SIGNIN_COOKIE, json.dumps(pending), max_age=600, path="/viewer/signin",
                          secure=request.url.scheme == "https", httponly=True,
                          samesite="lax")  # fmt: skip
        answer.headers["Cache-Control"] = "no-store"
        return answer

    @router.get("/viewer/signin/callback", name="viewer_signin_callback")
    async def signin_callback(request: Request, deps: Deps) -> Response:
        params = request.query_params
        if "error" in params:
            why = params.get("error_description") or params["error"]
            return _page("Sign-in refused", f"The identity provider said: {why}.", 401)
        try:
            pending = json.loads(request.cookies.get(SIGNIN_COOKIE, ""))
        except ValueError:
            pending = None
        if not pending or not secrets.compare_digest(
            str(pending.get("state", "")), params.get("state", "")
        ):
            return _page("Sign-in expired", "This sign-in was not started here, or it took "
                         "more than ten minutes; start it again.", 400)  # fmt: skip
        redirect_uri = str(request.url_for("viewer_signin_callback"))
        try:
            tokens = await deps.flow.exchange(
                params.get("code", ""), str(pending["verifier"]), redirect_uri
            )
        except ProviderRefused as exc:
            return _page("Sign-in refused", f"The identity provider refused the code: {exc}.", 401)
        access = str(tokens["access_token"])
        try:
            await radiologist(deps.verifier, access)
        except (Unauthenticated, Forbidden) as exc:
            return _page("Not signed in to the viewer", exc.message, exc.status)
        answer = RedirectResponse(safe_next(str(pending.get("next"))), status_code=303)
        _set_session(answer, request, access, _refresh_of(tokens))
        answer.delete_cookie(SIGNIN_COOKIE, path="/viewer/signin")
        return answer

    @router.post(SESSION_PATH)
    async def open_session(request: Request, deps: Deps) -> JSONResponse:
        """Keep a verified bearer token as the viewer session, for as long as it is valid."""
        token = request_token(request, cookie=False)
        who = await radiologist(deps.verifier, token)
        answer = JSONResponse(_body(who, _expiry(token), renewable=False))
        _set_session(answer, request, token, None)
        answer.delete_cookie(REFRESH_COOKIE, path=SESSION_PATH)
        return answer

    @router.get(SESSION_PATH)
    async def session(request: Request, deps: Deps) -> dict[str, Any]:
        """Who the session is and until when; 401 when there is none (or it has expired)."""
        token = request_token(request, cookie=True)
        who = await radiologist(deps.verifier, token)
        return _body(who, _expiry(token), renewable=REFRESH_COOKIE in request.cookies)

    @router.post(f"{SESSION_PATH}/renew")
    async def renew(request: Request, deps: Deps) -> JSONResponse:
        """A new access token for a session opened by ``/viewer/signin``."""
        refresh_token = request.cookies.get(REFRESH_COOKIE)
        if not refresh_token:
            raise Unauthenticated("this viewer session cannot be renewed: sign in again")
        try:
            tokens = await deps.flow.refresh(refresh_token)
        except ProviderRefused as exc:
            raise Unauthenticated(f"the sign-in has ended ({exc}): sign in again") from exc
        access = str(tokens["access_token"])
        who = await radiologist(deps.verifier, access)
        answer = JSONResponse(_body(who, _expiry(access), renewable=True))
        _set_session(answer, request, access, _refresh_of(tokens))
        return answer

    @router.delete(SESSION_PATH, status_code=204)
    async def close_session() -> Response:
        answer = Response(status_code=204)
        answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        answer.delete_cookie(REFRESH_COOKIE, path=SESSION_PATH, httponly=True, samesite="strict")
        return answer

    return router
