"""The viewer's files and the DICOMweb proxy's routes, with a fake token verifier and a fake
archive: what OHIF is served, who the proxy answers, what it asks the archive and what it passes
back; and that it streams (a 64 MB answer through real servers without holding it)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from starlette.responses import StreamingResponse

from secondread_reporting.archive_dicomweb import ArchiveDicomWeb
from secondread_reporting.errors import ApiError
from secondread_reporting.ports import CaseRow, CaseStatus, CaseStudies
from secondread_reporting.service import Reporting
from secondread_reporting.settings import ReportingSettings
from secondread_reporting.viewer import (
    ViewerDeps,
    app_config,
    index_page,
    mount_viewer,
    replace_in_chunks,
)
from secondread_reporting.viewer_session import COOKIE, OidcCodeFlow
from secondread_shared.errors import Unauthenticated, error_body
from secondread_shared.events import CaseAssigned, EarlierOpinion, PriorStudy
from secondread_shared.oidc import Principal

REPO = Path(__file__).resolve().parents[3]
DIST = REPO / "web" / "node_modules" / "@ohif" / "app" / "dist"
ISSUER = "http://idp.test/realms/r"


def token(username: str, seconds: int = 300) -> str:
    """An unsigned-looking JWT the fake verifier knows (the proxy reads only ``exp`` itself)."""
    exp = int(time.time()) + seconds
    return jwt.encode({"sub": username, "exp": exp}, "test-key-of-thirty-two-bytes-long!", "HS256")


class FakeVerifier:
    def __init__(self) -> None:
        self.roles = {"r1": {"radiologist"}, "r2": {"radiologist"}, "ops": {"operator"}}

    async def verify(self, value: str) -> Principal:
        try:
            sub = jwt.decode(value, options={"verify_signature": False})["sub"]
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated("the bearer token is not a JWT") from exc
        return Principal(username=sub, roles=frozenset(self.roles.get(sub, ())), subject=sub)


class FakeCases:
    def __init__(self) -> None:
        self.rows: dict[str, CaseRow] = {}

    def add(self, case_id: str, reader: str, status: CaseStatus = CaseStatus.ASSIGNED,
            **over: Any) -> None:  # fmt: skip
        fields: dict[str, Any] = {
            "case_id": case_id, "producer": "tests", "radiologist_id": reader,
            "subspecialty": "chest", "urgency": "routine",
            "due_at": datetime.now(UTC) + timedelta(hours=4), "patient_pseudonym": "SR1",
            "clinical_question": "?", "original_report": "FINDINGS: x.",
            "study_instance_uids": [], "orthanc_study_ids": [], **over,
        }  # fmt: skip
        self.rows[case_id] = CaseRow(case_id, reader, status, CaseAssigned(**fields), {})

    async def case(self, case_id: str) -> CaseRow | None:
        return self.rows.get(case_id)

    async def open_cases(self, radiologist_id: str) -> list[CaseRow]:
        return [r for r in self.rows.values() if r.radiologist_id == radiologist_id
                and r.status in (CaseStatus.ASSIGNED, CaseStatus.ACCEPTED)]  # fmt: skip

    async def set_status(self, *_: Any) -> bool:
        return False

    async def open_case_studies(self, radiologist_id: str) -> list[CaseStudies]:
        return [
            CaseStudies(r.case_id, r.assigned.study_instance_uids,
                        [p.study_instance_uid for p in r.assigned.priors],
                        [o.case_id for o in r.assigned.earlier_opinions])
            for r in await self.open_cases(radiologist_id)
        ]  # fmt: skip

    async def studies_of(self, case_ids: list[str]) -> dict[str, list[str]]:
        return {c: self.rows[c].assigned.study_instance_uids for c in case_ids if c in self.rows}


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def build(
    archive: ArchiveDicomWeb,
    cases: FakeCases,
    dist: Path = DIST,
    idp: httpx.MockTransport | None = None,
) -> FastAPI:
    settings = ReportingSettings(viewer_dist_dir=dist, oidc_issuer=ISSUER)
    app = FastAPI()

    @app.exception_handler(ApiError)
    async def refused(_r: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), exc.status)

    reporting = Reporting(cases, Clock(), "/viewer/", studies=cases)
    flow = OidcCodeFlow(ISSUER, "secondread-web",
                        http=httpx.AsyncClient(transport=idp) if idp else None)  # fmt: skip
    mount_viewer(app, ViewerDeps(settings, FakeVerifier(), reporting, archive), flow)
    return app


@pytest.fixture
def cases() -> FakeCases:
    c = FakeCases()
    c.add("c1", "r1", study_instance_uids=["1.2.3"],
          priors=[PriorStudy(orthanc_study_id="p", study_instance_uid="1.2.9")])  # fmt: skip
    return c


class Body(httpx.AsyncByteStream):
    """An answer that arrives in parts, like a network stream (not read in advance)."""

    def __init__(self, *parts: bytes) -> None:
        self.parts = parts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield part


class Recorder:
    """A fake archive (httpx mock transport) that answers every request with a multipart frame
    and remembers what it was asked."""

    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.url.path == "/dicom-web/studies":
            uids = [*request.url.params["StudyInstanceUID"].split(","), "6.6.6"]
            body = [{"0020000D": {"vr": "UI", "Value": [u]}} for u in uids]
            return httpx.Response(200, stream=Body(json.dumps(body).encode()),
                                  headers={"Content-Type": "application/dicom+json"})  # fmt: skip
        return httpx.Response(
            200,
            stream=Body(b"--XyZ\r\nContent-Type: application/octet-stream\r\n\r\nPIX",
                        b"ELS\r\n--XyZ--"),
            headers={"Content-Type": 'multipart/related; type="application/octet-stream"; '
                     "boundary=XyZ", "X-Orthanc-Secret": "no"},
        )  # fmt: skip


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(recorder: Recorder, cases: FakeCases) -> Iterator[TestClient]:
    archive = ArchiveDicomWeb("http://archive.test/dicom-web",
                              transport=httpx.MockTransport(recorder))  # fmt: skip
    with TestClient(build(archive, cases), base_url="http://reporting.test:8004") as c:
        yield c


# ---- what OHIF is served -------------------------------------------------------------------


@given(st.binary(max_size=300), st.lists(st.integers(1, 40), max_size=20))
def test_replace_in_chunks_matches_a_whole_replace_across_any_split(
    data: bytes, cuts: list[int]
) -> None:
    data = data.replace(b"ab", b"a") + b'__p = "/";' + data[:17] + b'__p = "/";'
    chunks, rest = [], data
    for n in cuts:
        chunks.append(rest[:n])
        rest = rest[n:]
    chunks.append(rest)
    old, new = b'__p = "/";', b'__p = "/viewer/";'
    assert b"".join(replace_in_chunks(iter(chunks), old, new)) == data.replace(old, new)


def test_ohif_index_is_rewritten_for_viewer_and_starts_only_after_sign_in() -> None:
    html = index_page((DIST / "index.html").read_text())
    assert re.findall(r'(?:src|href|content)="/(?!viewer/)', html) == []
    assert "<script>" not in html and "init-service-worker" not in html
    assert "app.bundle." not in re.sub(r'href="/viewer/app\.bundle\.css"', "", html)
    assert '<script type="module" src="/viewer/secondread/viewer-session.js">' in html
    assert 'role="status"' in html and "user-scalable=no" not in html


def test_app_config_names_only_reporting_and_nothing_outside() -> None:
    config = app_config(ReportingSettings(), "/viewer/app.bundle.0123456789abcdef.js")
    assert "http" not in config and "cloudfront" not in config
    body = json.loads(config.split("window.config = ")[1].split(";\nwindow.secondreadViewer")[0])
    [source] = body["dataSources"]
    roots = {source["configuration"][k] for k in ("qidoRoot", "wadoRoot", "wadoUriRoot")}
    assert roots == {"/dicom-web"} and body["routerBasename"] == "/viewer"
    assert body["showStudyList"] is False
    assert body["investigationalUseDialog"] == {"option": "never"}


def test_ohif_routes_get_the_page_and_assets_their_rewritten_bytes(client: TestClient) -> None:
    page = client.get("/viewer/viewer?StudyInstanceUIDs=1.2.3,1.2.9")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "connect-src 'self' http://idp.test" in page.headers["content-security-policy"]
    assert client.get("/viewer", follow_redirects=False).headers["location"] == "/viewer/"
    bundle = re.search(r'"appBundle": "(/viewer/app\.bundle\.[0-9a-f]+\.js)"',
                       client.get("/viewer/app-config.js").text)  # fmt: skip
    assert bundle
    js = client.get(bundle.group(1)).content
    assert b'__webpack_require__.p = "/viewer/";' in js and b'.p = "/";' not in js
    assert b"url(/viewer/" in client.get("/viewer/app.bundle.css").content
    wasm = next(p.name for p in DIST.glob("*.wasm"))
    assert client.get(f"/viewer/{wasm}").headers["content-type"] == "application/wasm"
    for hidden in (
        "sw.js",
        "google.js",
        "init-service-worker.js",
        "nope.js",
        "..%2F..%2Fpackage.json",
    ):
        assert client.get(f"/viewer/{hidden}").status_code == 404, hidden


def test_without_the_dist_the_viewer_says_how_to_install_it(
    recorder: Recorder, cases: FakeCases, tmp_path: Path
) -> None:
    archive = ArchiveDicomWeb("http://a/dicom-web", transport=httpx.MockTransport(recorder))
    with TestClient(build(archive, cases, dist=tmp_path / "missing")) as c:
        page = c.get("/viewer/viewer?StudyInstanceUIDs=1.2.3")
        assert page.status_code == 503 and "make up" in page.text
        assert "SECONDREAD_VIEWER_DIST_DIR" in page.text
        assert c.get("/viewer/app-config.js").json()["error"]["code"] == "viewer_not_installed"


# ---- who the proxy answers, and what it asks -------------------------------------------------


def test_the_readers_study_and_prior_are_forwarded_with_accept_and_forwarded_only(
    client: TestClient, recorder: Recorder
) -> None:
    accept = "multipart/related; type=application/octet-stream; transfer-syntax=*"
    for uid in ("1.2.3", "1.2.9"):
        r = client.get(f"/dicom-web/studies/{uid}/series/4.5/instances/6.7/frames/1",
                       headers={"Authorization": f"Bearer {token('r1')}", "Accept": accept,
                                "Cookie": "other=1"})  # fmt: skip
        assert r.status_code == 200 and r.content.endswith(b"--XyZ--")
        assert r.headers["content-type"].endswith("boundary=XyZ")
        assert "x-orthanc-secret" not in r.headers and r.headers["cache-control"] == "no-store"
    sent = recorder.seen[-1]
    assert (
        sent.url == "http://archive.test/dicom-web/studies/1.2.9/series/4.5/instances/6.7/frames/1"
    )
    assert sent.headers["accept"] == accept
    assert sent.headers["forwarded"] == "host=reporting.test:8004;proto=http"
    assert "authorization" not in sent.headers and "cookie" not in sent.headers


def test_another_readers_study_is_403_and_the_archive_is_not_asked(
    client: TestClient, recorder: Recorder
) -> None:
    r = client.get("/dicom-web/studies/1.2.3/metadata",
                   headers={"Authorization": f"Bearer {token('r2')}"})  # fmt: skip
    assert r.status_code == 403 and r.json()["error"]["code"] == "study_not_readable"
    assert recorder.seen == []


def test_a_study_search_answers_the_readers_studies_only(
    client: TestClient, recorder: Recorder
) -> None:
    r = client.get("/dicom-web/studies?PatientID=SR1",
                   headers={"Authorization": f"Bearer {token('r1')}"})  # fmt: skip
    assert r.status_code == 200
    assert [s["0020000D"]["Value"][0] for s in r.json()] == ["1.2.3", "1.2.9"]  # not 6.6.6
    assert recorder.seen[-1].url.params["StudyInstanceUID"] == "1.2.3,1.2.9"
    empty = client.get("/dicom-web/studies", headers={"Authorization": f"Bearer {token('r2')}"})
    assert empty.status_code == 200 and empty.json() == [] and len(recorder.seen) == 1


def test_who_may_use_the_proxy(client: TestClient) -> None:
    assert client.get("/dicom-web/studies/1.2.3/metadata").status_code == 401
    ops = client.get("/dicom-web/studies/1.2.3/metadata",
                     headers={"Authorization": f"Bearer {token('ops')}"})  # fmt: skip
    assert ops.status_code == 403 and "radiologist role" in ops.json()["error"]["message"]
    stow = client.post("/dicom-web/studies", headers={"Authorization": f"Bearer {token('r1')}"})
    assert stow.status_code == 405 and stow.json()["error"]["code"] == "read_only"


def test_the_session_cookie_is_the_verified_token_and_the_proxy_accepts_it(
    client: TestClient,
) -> None:
    opened = client.post("/viewer/session", headers={"Authorization": f"Bearer {token('r1')}"})
    assert opened.status_code == 200 and opened.json()["radiologist_id"] == "r1"
    assert 290 <= opened.json()["expires_in"] <= 300 and opened.json()["renewable"] is False
    cookie = opened.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert "max-age=" in cookie
    assert client.get("/viewer/session").json()["radiologist_id"] == "r1"
    assert client.get("/dicom-web/studies/1.2.3/metadata").status_code == 200
    assert client.get("/dicom-web/studies/1.2.4/metadata").status_code == 403
    assert client.delete("/viewer/session").status_code == 204
    assert client.get("/viewer/session").status_code == 401
    refused = client.post("/viewer/session", headers={"Authorization": f"Bearer {token('ops')}"})
    assert refused.status_code == 403 and COOKIE not in refused.headers.get("set-cookie", "")


def test_a_closed_case_closes_its_studies(client: TestClient, cases: FakeCases) -> None:
    auth = {"Authorization": f"Bearer {token('r1')}"}
    assert client.get("/dicom-web/studies/1.2.3/metadata", headers=auth).status_code == 200
    cases.add("c1", "r1", CaseStatus.SIGNED, study_instance_uids=["1.2.3"])
    assert client.get("/dicom-web/studies/1.2.3/metadata", headers=auth).status_code == 403


async def test_readable_studies_are_the_open_cases_studies_priors_and_earlier_opinions() -> None:
    c = FakeCases()
    c.add("old", "r9", CaseStatus.SIGNED, study_instance_uids=["1.1"])
    opinion = EarlierOpinion(case_id="old", report_id="rep", radiologist_id="r9",
                             signed_at=datetime.now(UTC))  # fmt: skip
    c.add("c1", "r1", study_instance_uids=["1.2.3"], earlier_opinions=[opinion],
          priors=[PriorStudy(orthanc_study_id="p", study_instance_uid="1.2.9")])  # fmt: skip
    c.add("c2", "r1", CaseStatus.ACCEPTED, study_instance_uids=["1.4"])
    c.add("c3", "r1", CaseStatus.DECLINED, study_instance_uids=["1.5"])
    c.add("c4", "r2", study_instance_uids=["1.6"])
    readable = await Reporting(c, Clock(), "/viewer/", studies=c).readable_studies("r1")
    assert readable == {"1.2.3", "1.2.9", "1.1", "1.4"}


class FakeProvider:
    """Discovery and the token endpoint of an identity provider, remembering the token calls."""

    def __init__(self) -> None:
        self.forms: list[dict[str, str]] = []
        self.user = "r1"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json={"authorization_endpoint": f"{ISSUER}/auth",
                                             "token_endpoint": f"{ISSUER}/token"})  # fmt: skip
        form = dict(httpx.QueryParams(request.content.decode()))
        self.forms.append(form)
        if form.get("code") == "bad" or form.get("refresh_token") == "revoked":
            return httpx.Response(400, json={"error": "invalid_grant",
                                             "error_description": "Code not valid"})  # fmt: skip
        return httpx.Response(
            200,
            json={
                "access_token": token(self.user),
                "expires_in": 300,
                "refresh_token": "refresh-1",
                "refresh_expires_in": 1800,
            },
        )


def test_the_viewers_own_sign_in_is_the_code_flow_with_pkce(
    recorder: Recorder, cases: FakeCases
) -> None:
    import base64
    import hashlib
    from urllib.parse import parse_qs, urlsplit

    idp = FakeProvider()
    archive = ArchiveDicomWeb("http://a/dicom-web", transport=httpx.MockTransport(recorder))
    app = build(archive, cases, idp=httpx.MockTransport(idp))
    with TestClient(app, base_url="http://reporting.test:8004") as c:
        start = c.get("/viewer/signin?next=/viewer/viewer?StudyInstanceUIDs=1.2.3",
                      follow_redirects=False)  # fmt: skip
        assert start.status_code == 303
        url = urlsplit(start.headers["location"])
        asked = {k: v[0] for k, v in parse_qs(url.query).items()}
        assert f"{url.scheme}://{url.netloc}{url.path}" == f"{ISSUER}/auth"
        assert asked["code_challenge_method"] == "S256" and asked["response_type"] == "code"
        assert asked["redirect_uri"] == "http://reporting.test:8004/viewer/signin/callback"
        pending_cookie = start.headers["set-cookie"].lower()
        assert "httponly" in pending_cookie and "samesite=lax" in pending_cookie

        wrong = c.get("/viewer/signin/callback?code=x&state=forged", follow_redirects=False)
        assert wrong.status_code == 400 and "Sign-in expired" in wrong.text
        back = c.get(f"/viewer/signin/callback?code=good&state={asked['state']}",
                     follow_redirects=False)  # fmt: skip
        assert back.status_code == 303
        assert back.headers["location"] == "/viewer/viewer?StudyInstanceUIDs=1.2.3"
        exchange = idp.forms[-1]
        assert exchange["grant_type"] == "authorization_code" and exchange["code"] == "good"
        digest = hashlib.sha256(exchange["code_verifier"].encode()).digest()
        assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == asked["code_challenge"]
        session = c.get("/viewer/session").json()
        assert session["radiologist_id"] == "r1" and session["renewable"] is True
        assert c.get("/dicom-web/studies/1.2.3/metadata").status_code == 200

        renewed = c.post("/viewer/session/renew")
        assert renewed.status_code == 200 and idp.forms[-1]["grant_type"] == "refresh_token"
        assert idp.forms[-1]["refresh_token"] == "refresh-1"

        idp.user = "ops"  # an account without the radiologist role
        start = c.get("/viewer/signin", follow_redirects=False)
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        refused = c.get(f"/viewer/signin/callback?code=good&state={state}")
        assert refused.status_code == 403 and "radiologist role" in refused.text


def test_sign_in_never_sends_the_reader_to_another_site() -> None:
    from secondread_reporting.viewer_session import safe_next

    assert safe_next("/viewer/viewer?StudyInstanceUIDs=1") == "/viewer/viewer?StudyInstanceUIDs=1"
    for bad in (
        "https://evil.example/",
        "//evil.example/viewer/",
        "/read/",
        "/viewer/\\evil",
        None,
    ):
        assert safe_next(bad) == "/viewer/"


# ---- streaming -------------------------------------------------------------------------------

CHUNK = 256 * 1024
CHUNKS = 256  # 64 MB


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: Any) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           lifespan="off"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "test server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def big_archive() -> FastAPI:
    """A fake archive whose answer is 64 MB of multipart, made as it is sent."""
    app = FastAPI()

    @app.get("/dicom-web/studies/{uid}")
    async def study(uid: str) -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            block = b"\x5a" * CHUNK
            for _ in range(CHUNKS):
                yield block
                await asyncio.sleep(0)

        return StreamingResponse(parts(), media_type="multipart/related; boundary=B")

    return app


def test_a_64_mb_answer_streams_through_without_being_held(cases: FakeCases) -> None:
    with serving(big_archive()) as upstream:
        archive = ArchiveDicomWeb(f"{upstream}/dicom-web")
        with serving(build(archive, cases)) as proxy:
            tracemalloc.start()
            try:
                received = 0
                with httpx.stream("GET", f"{proxy}/dicom-web/studies/1.2.3",
                                  headers={"Authorization": f"Bearer {token('r1')}"},
                                  timeout=60) as r:  # fmt: skip
                    assert r.status_code == 200
                    assert r.headers["content-type"] == "multipart/related; boundary=B"
                    for chunk in r.iter_raw():
                        received += len(chunk)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    assert received == CHUNK * CHUNKS
    assert peak < 16 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB while 64 MB went through"
