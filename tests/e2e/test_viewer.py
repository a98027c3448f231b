"""The diagnostic viewer on the real stack: a reader signs in through Keycloak, OHIF (served by
reporting at /viewer/) renders the case's study and its prior side by side through reporting's
DICOMweb proxy, every DICOMweb request answers 200 and nothing is fetched from outside; another
radiologist's session gets 403 for that study (issue 12, tests 2 and 4)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from secondread_shared.events import EarlierOpinion, PriorStudy
from tests.e2e.browser import SCREENSHOTS, serious_violations
from tests.e2e.identity import TOKENS
from tests.e2e.reporting_support import ORTHANC, REPORTING, put_on_worklist
from tests.phantom import ct_series

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack")]

READER = "rad-novak"
OTHER = "rad-chen"
KEYCLOAK = "http://127.0.0.1:8180"


def store(instances: Iterator[bytes]) -> str:
    """Store a series in the archive (REST, 4 at a time, as deidentify writes); its study id."""

    def one(data: bytes) -> str:
        r = httpx.post(f"{ORTHANC}/instances", content=data, timeout=60)
        r.raise_for_status()
        return str(r.json()["ParentStudy"])

    with ThreadPoolExecutor(4) as pool:
        ids = set(pool.map(one, instances))
    [study_id] = ids
    return study_id


@pytest.fixture(scope="module")
def case() -> Iterator[dict[str, Any]]:
    """A case on the reader's worklist: a 24-slice phantom CT and a 16-slice prior of the same
    pseudonymous patient, both in the archive."""
    import uuid

    pseudonym = f"SR{uuid.uuid4().hex[:12].upper()}"
    current, slices = ct_series(pseudonym, count=24, seed=uuid.uuid4().hex, nodule_mm=14)
    current_id = store(slices)
    prior, prior_slices = ct_series(pseudonym, count=16, seed=uuid.uuid4().hex,
                                    study_date="20250310", nodule_mm=9)  # fmt: skip
    prior_id = store(prior_slices)
    event = put_on_worklist(
        READER,
        patient_pseudonym=pseudonym,
        study_instance_uids=[current.study_uid],
        orthanc_study_ids=[current_id],
        priors=[
            PriorStudy(orthanc_study_id=prior_id, study_instance_uid=prior.study_uid,
                       study_date="20250310", description="CT CHEST (phantom)",
                       modalities=["CT"], body_parts=["CHEST"], score=0.9,
                       reasons=["same body part", "same modality"])
        ],
    )  # fmt: skip
    view = httpx.get(f"{REPORTING}/v1/cases/{event.case_id}", headers=TOKENS.auth(READER)).json()
    yield {"case_id": event.case_id, "current": current, "prior": prior, "view": view}
    httpx.post(f"{REPORTING}/v1/cases/{event.case_id}/decline", headers=TOKENS.auth(READER),
               json={"reason": "test clean-up"})  # fmt: skip


def sign_in(page: Any, username: str) -> None:
    """Keycloak's sign-in form (the authorization code flow is under way)."""
    page.wait_for_url(f"{KEYCLOAK}/realms/secondread/**", timeout=30_000)
    page.fill("#username", username)
    page.fill("#password", f"demo-{username}")
    page.click("#kc-login")


PIXELS = """() => Array.from(document.querySelectorAll('canvas.cornerstone-canvas')).map(c => {
  const w = c.width, h = c.height;
  if (!w || !h) return {w, h, distinct: 0};
  const copy = document.createElement('canvas');
  copy.width = w; copy.height = h;
  const ctx = copy.getContext('2d');
  ctx.drawImage(c, 0, 0);
  const data = ctx.getImageData(0, 0, w, h).data;
  const seen = new Set();
  for (let i = 0; i < data.length; i += 4 * 31) seen.add(data[i]);
  return {w, h, distinct: seen.size};
})"""


def test_case_view_links_open_the_viewer_on_the_study_and_its_prior(case: dict[str, Any]) -> None:
    view, current, prior = case["view"], case["current"], case["prior"]
    both = f"StudyInstanceUIDs={current.study_uid},{prior.study_uid}"
    assert view["viewer_url"] == (
        f"{REPORTING}/viewer/viewer?{both}&hangingProtocolId=@ohif/hpCompare"
    )
    assert view["viewer_links"] == [
        f"{REPORTING}/viewer/viewer?StudyInstanceUIDs={current.study_uid}"
    ]
    assert view["priors"][0]["viewer_link"] == view["viewer_url"]


def test_an_earlier_opinions_study_is_readable_while_the_follow_up_is_open() -> None:
    """The proxy's rule as the repository reads it: the earlier case's study opens for the
    reader of the follow-up that lists its opinion, and closes with the follow-up. (Before the
    browser tests: Playwright's loop forbids the asyncio.run of put_on_worklist after them.)"""
    import uuid
    from datetime import UTC, datetime

    earlier_uid = f"1.2.826.0.1.3680043.10.1138.9.{uuid.uuid4().int % 10**20}"
    earlier = put_on_worklist(OTHER, study_instance_uids=[earlier_uid])
    opinion = EarlierOpinion(case_id=earlier.case_id, report_id=f"rep-{uuid.uuid4().hex[:8]}",
                             radiologist_id=OTHER, signed_at=datetime.now(UTC))  # fmt: skip
    follow_up = put_on_worklist(READER, earlier_opinions=[opinion])
    search = f"{REPORTING}/dicom-web/studies?StudyInstanceUID={earlier_uid}"
    try:
        assert httpx.get(search, headers=TOKENS.auth(READER)).status_code == 200
    finally:
        for reader, case_id in ((READER, follow_up.case_id), (OTHER, earlier.case_id)):
            httpx.post(f"{REPORTING}/v1/cases/{case_id}/decline", headers=TOKENS.auth(reader),
                       json={"reason": "test clean-up"})  # fmt: skip
    closed = httpx.get(search, headers=TOKENS.auth(READER))
    assert closed.status_code == 403 and closed.json()["error"]["code"] == "study_not_readable"


def test_reader_sees_the_study_and_prior_side_by_side(browser: Any, case: dict[str, Any]) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 860})
    page = context.new_page()
    dicomweb: list[tuple[int, str]] = []
    outside: list[str] = []
    own = (REPORTING, KEYCLOAK, "data:", "blob:")
    page.on("request", lambda r: None if r.url.startswith(own) else outside.append(r.url))
    page.on("response", lambda r: dicomweb.append((r.status, r.url)) if "/dicom-web/" in r.url
            else None)  # fmt: skip
    try:
        page.goto(case["view"]["viewer_url"])
        sign_in(page, READER)
        page.wait_for_url(f"{REPORTING}/viewer/viewer?**", timeout=30_000)

        def two_images() -> list[dict[str, int]] | None:
            shown = [c for c in page.evaluate(PIXELS) if c["distinct"] > 10]
            return shown if len(shown) >= 2 else None

        page.wait_for_function(
            f"() => ({PIXELS})().filter(c => c.distinct > 10).length >= 2", timeout=120_000
        )
        shown = two_images()
        assert shown and all(c["w"] > 100 and c["h"] > 100 for c in shown)
        page.wait_for_timeout(1500)  # let the thumbnails settle for the screenshot
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "viewer.png"))

        assert outside == [], f"the viewer fetched from outside secondread: {outside}"
        assert dicomweb, "OHIF made no DICOMweb request"
        failed = [(s, u) for s, u in dicomweb if s != 200]
        assert failed == [], failed
        paths = [u for _, u in dicomweb]
        for uid in (case["current"].study_uid, case["prior"].study_uid):
            assert any(f"/studies/{uid}/series/" in u and "/frames/" in u for u in paths), uid
        assert any(u.endswith("/metadata") for u in paths)
    finally:
        context.close()


def test_another_radiologists_session_gets_403_for_the_study(
    browser: Any, case: dict[str, Any]
) -> None:
    context = browser.new_context()
    page = context.new_page()
    uid = case["current"].study_uid
    try:
        page.goto(f"{REPORTING}/viewer/signin?next=/viewer/")
        sign_in(page, OTHER)
        page.wait_for_url(f"{REPORTING}/viewer/**", timeout=30_000)
        who = page.request.get(f"{REPORTING}/viewer/session")
        assert who.status == 200 and who.json()["radiologist_id"] == OTHER
        for path in (f"studies/{uid}/metadata", f"studies?StudyInstanceUID={uid}",
                     f"studies/{uid}/series", f"series?StudyInstanceUID={uid}"):  # fmt: skip
            r = page.request.get(f"{REPORTING}/dicom-web/{path}")
            assert r.status == 403, (path, r.status, r.text())
            assert r.json()["error"]["code"] == "study_not_readable"
        # the study list the proxy answers holds none of the reader's studies
        listed = page.request.get(f"{REPORTING}/dicom-web/studies").json()
        assert uid not in {s["0020000D"]["Value"][0] for s in listed}
    finally:
        context.close()


def test_the_viewers_refusal_page_names_why_and_passes_axe(browser: Any) -> None:
    """An operator who opens the viewer is signed in, then told the viewer is for radiologists
    (reporting's own page; OHIF's pages are third-party, see docs/web.md)."""
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{REPORTING}/viewer/viewer?StudyInstanceUIDs=1.2.3")
        sign_in(page, "ops-demo")
        page.wait_for_url(f"{REPORTING}/viewer/signin/callback?**", timeout=30_000)
        assert page.locator("h1").inner_text() == "Not signed in to the viewer"
        assert "does not have the radiologist role" in page.locator("main").inner_text()
        assert serious_violations(page) == []
        assert page.request.get(f"{REPORTING}/viewer/session").status == 401
    finally:
        context.close()


def test_proxy_passes_multipart_frames_and_metadata_through(case: dict[str, Any]) -> None:
    """Through the proxy the answers are the archive's: same frames (its multipart boundary),
    metadata whose bulk data URIs point at the proxy, never at the archive."""
    uid = case["current"].study_uid
    auth = TOKENS.auth(READER)
    meta = httpx.get(f"{REPORTING}/dicom-web/studies/{uid}/metadata", headers=auth, timeout=30)
    assert meta.status_code == 200 and meta.headers["content-type"] == "application/dicom+json"
    first = meta.json()[0]
    bulk = first["7FE00010"]["BulkDataURI"]
    assert bulk.startswith(f"{REPORTING}/dicom-web/studies/{uid}/"), bulk
    series, sop = first["0020000E"]["Value"][0], first["00080018"]["Value"][0]
    path = f"studies/{uid}/series/{series}/instances/{sop}/frames/1"
    accept = {"Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*"}
    proxied = httpx.get(f"{REPORTING}/dicom-web/{path}", headers={**auth, **accept}, timeout=30)
    direct = httpx.get(f"{ORTHANC}/dicom-web/{path}", headers=accept, timeout=30)
    assert proxied.status_code == direct.status_code == 200
    ctype = proxied.headers["content-type"]
    assert ctype.startswith("multipart/related") and "boundary=" in ctype
    boundary = ctype.split("boundary=")[1].strip('"').encode()
    assert proxied.content.count(boundary) == 2  # the archive's own boundary, opening and closing
    # each part names its location at the proxy, never at the archive
    assert f"Content-Location: {REPORTING}/dicom-web/{path}".encode() in proxied.content
    assert ORTHANC.encode() not in proxied.content[:4096]
    direct_boundary = direct.headers["content-type"].split("boundary=")[1].strip('"').encode()
    same = proxied.content.replace(boundary, b"B").replace(REPORTING.encode(), b"ROOT")
    assert same == direct.content.replace(direct_boundary, b"B").replace(ORTHANC.encode(), b"ROOT")
    assert proxied.headers["cache-control"] == "no-store"

    bulkdata = httpx.get(bulk, headers=auth, timeout=30)
    assert bulkdata.status_code == 200 and len(bulkdata.content) > 256 * 256 * 2

    no_token = httpx.get(f"{REPORTING}/dicom-web/studies/{uid}/metadata", timeout=30)
    assert no_token.status_code == 401 and no_token.json()["error"]["code"] == "unauthenticated"


def test_viewer_session_cookie_is_httponly_strict_and_refuses_non_radiologists() -> None:
    opened = httpx.post(f"{REPORTING}/viewer/session", headers=TOKENS.auth(READER), timeout=30)
    assert opened.status_code == 200 and opened.json()["radiologist_id"] == READER
    cookie = opened.headers["set-cookie"].lower()
    assert "secondread_viewer=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert 0 < opened.json()["expires_in"] <= 300
    operator = httpx.post(f"{REPORTING}/viewer/session", headers=TOKENS.auth("ops-demo"))
    assert operator.status_code == 403 and "radiologist" in operator.json()["error"]["message"]
