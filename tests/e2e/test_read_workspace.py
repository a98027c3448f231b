"""The reading workspace (/read/ on reporting) in headless Chromium: sign-in through the real
Keycloak login page (authorization code + PKCE), the worklist, accept and decline, the case, the
report editor with autosave, a conflict between two tabs, signing with a confirmation, the signed
PDF in the page, an addendum, and sign-out. axe-core finds nothing serious on any of its pages."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from secondread_cli import keycloak
from secondread_shared import topics
from secondread_shared.events import Priority, Urgency
from tests.e2e.browser import SCREENSHOTS, explain_failed_sign_in, serious_violations
from tests.e2e.conftest import wait_for
from tests.e2e.identity import TOKENS, keycloak_repo
from tests.e2e.reporting_support import REPORTING, archived_study, put_on_worklist
from tests.e2e.test_reporting_worklist import published

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack")]

READ = f"{REPORTING}/read/"
READER = "rad-chen"
VIEWPORT = {"width": 1400, "height": 1000}
T = TypeVar("T")


def off_loop(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Run a helper that calls asyncio.run (Kafka) outside the thread of Playwright's loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args, **kw).result()


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.set_default_timeout(20_000)
    try:
        yield ctx
    finally:
        ctx.close()


def sign_in(page: Any, username: str = READER, path: str = "/read/") -> dict[str, list[str]]:
    """Open ``path`` and sign in on Keycloak's own login page; the authorization request's
    query (to check PKCE)."""
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if "/openid-connect/auth" in r.url else None)
    page.goto(f"{REPORTING}{path}")
    page.wait_for_url(re.compile(r"/realms/secondread/protocol/openid-connect/auth"))
    page.fill("#username", username)
    page.fill("#password", keycloak.demo_password(keycloak_repo(), username))
    page.click("#kc-login")
    page.wait_for_url(re.compile("^" + re.escape(f"{REPORTING}{path}")))
    try:
        expect(page.locator("#who")).to_contain_text("Signed in as")
    except AssertionError:
        explain_failed_sign_in(page, REPORTING, READ)
        raise
    assert seen, "the page never sent the authorization request"
    return parse_qs(urlsplit(seen[0]).query)


def no_serious_violations(page: Any) -> None:
    found = serious_violations(page)
    assert found == [], "\n".join(found)


@pytest.fixture
def reader_case() -> Iterator[Callable[..., Any]]:
    """Puts a case with a study in the archive on the reader's worklist; what is still open at
    the end is declined, so that the reader's desk stays as it was."""
    made: list[str] = []

    def make(**over: Any) -> Any:
        uid, orthanc_id, pseudonym = off_loop(archived_study)
        fields: dict[str, Any] = {
            "study_instance_uids": [uid],
            "orthanc_study_ids": [orthanc_id],
            "patient_pseudonym": pseudonym,
            "radiologist_name": "Dr. A. Chen",
            "radiologist_credentials": "MD, PhD",
            "radiologist_certifications": ["Diagnostic Radiology"],
            "radiologist_licence": "US",
        }
        case = off_loop(put_on_worklist, READER, **(fields | over))
        made.append(case.case_id)
        return case

    yield make
    for case_id in made:
        status = api("GET", f"/v1/cases/{case_id}/status")
        if status.status_code == 200 and status.json()["status"] in ("assigned", "accepted"):
            api("POST", f"/v1/cases/{case_id}/decline", json={"reason": "test clean-up"})


def api(method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(
        method, f"{REPORTING}{path}", headers=TOKENS.auth(READER), timeout=30, **kw
    )


def draft(case_id: str) -> dict[str, Any]:
    body: dict[str, Any] = api("GET", f"/v1/cases/{case_id}/draft").json()
    return body


def wait_saved(page: Any) -> None:
    expect(page.locator("#save-status")).to_contain_text("All changes saved")


def test_a_radiologist_signs_in_reads_accepts_fills_and_signs(
    context: Any, reader_case: Callable[..., Any]
) -> None:
    case = reader_case(
        priority=Priority.URGENT, urgency=Urgency.URGENT,
        due_at=datetime.now(UTC) + timedelta(hours=5, minutes=30),
    )  # fmt: skip
    case_id = case.case_id
    page = context.new_page()
    dicomweb: list[tuple[str, int]] = []
    page.on(
        "response", lambda r: dicomweb.append((r.url, r.status)) if "/dicom-web/" in r.url else None
    )
    auth = sign_in(page)
    assert auth["code_challenge_method"] == ["S256"] and auth["code_challenge"][0]
    assert auth["response_type"] == ["code"] and auth["client_id"] == ["secondread-web"]

    # the worklist: priority, due time with a live countdown, subspecialty, flags
    expect(page.get_by_role("heading", name="Your worklist")).to_be_visible()
    row = page.locator(f'tr[data-case-id="{case_id}"]')
    expect(row).to_contain_text("urgent")
    expect(row).to_contain_text("chest")
    expect(row).to_contain_text("hedge:cannot exclude")
    timer = row.get_by_role("timer")
    expect(timer).to_contain_text(re.compile(r"^5 h 2\d min \d\d s left$"))
    before = timer.inner_text()
    expect(timer).not_to_have_text(before, timeout=3000)  # it ticks
    no_serious_violations(page)
    page.screenshot(path=str(SCREENSHOTS / "read-worklist.png"))

    # accept (by keyboard), then open the case
    row.get_by_role("button", name=f"Accept case {case_id}").focus()
    page.keyboard.press("Enter")
    expect(row).to_contain_text("accepted")
    assert api("GET", f"/v1/cases/{case_id}/status").json()["status"] == "accepted"
    row.get_by_role("link", name=f"Open case {case_id}").click()
    expect(page).to_have_url(f"{READ}cases/{case_id}")

    # the case: the question, the original report and its numbered statements, the flags, the
    # priors and earlier opinions, and the viewer on the case's study
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Case {case_id}")
    expect(page.locator(".question")).to_have_text("Is the nodule malignant?")
    expect(page.locator("#original-report")).to_contain_text("cannot exclude malignancy")
    statements = page.get_by_role("list", name="Numbered statements of the original report")
    expect(statements.locator("li")).to_have_count(3)
    expect(statements.locator("li").nth(1)).to_contain_text("No pleural effusion.")
    expect(page.get_by_text("the original report hedges")).to_be_visible()
    expect(page.get_by_text("No prior studies of this patient.")).to_be_visible()
    viewer = page.locator("iframe#viewer")
    expect(viewer).to_have_attribute("src", re.compile(case.study_instance_uids[0]))
    assert "/viewer/" in (viewer.get_attribute("src") or "")
    # the page opened the viewer's session, so the embedded viewer reads the study over DICOMweb
    canvas = page.frame_locator("iframe#viewer").locator("canvas").first
    expect(canvas).to_be_visible(timeout=60_000)
    assert (canvas.bounding_box() or {}).get("width", 0) > 100
    for _ in range(120):  # Playwright delivers the frame's responses while it waits
        if any("/series/" in url for url, _ in dicomweb):
            break
        page.wait_for_timeout(250)
    assert dicomweb and all(status == 200 for _, status in dicomweb), dicomweb
    no_serious_violations(page)
    page.screenshot(path=str(SCREENSHOTS / "read-case.png"))

    # the editor: every statement, the assessment, a typed recommendation; findings left out
    s1 = page.locator("fieldset.statement-review[data-number='1']")
    s1.get_by_label("Refined").check()
    page.select_option("#grade-1", "2a")
    page.fill("#comment-1", "spiculated margin")
    page.locator("fieldset.statement-review[data-number='2']").get_by_label("Confirmed").check()
    page.locator("fieldset.statement-review[data-number='3']").get_by_label("Revised").check()
    page.select_option("#grade-3", "3b")
    page.fill("#comment-3", "suspicious, Lung-RADS 4B")
    page.check("#diagnosis_changed-yes")
    page.check("#severity_changed-yes")
    page.check("#staging_changed-no")
    page.fill("#summary", "Upgraded: suspicious for primary lung cancer")
    page.click("#add-recommendation")
    page.fill("#rec-0-modality", "PET-CT")
    page.fill("#rec-0-interval", "2 weeks")
    wait_saved(page)
    assert draft(case_id)["missing"] == ["findings"]

    # signing names what is missing, and its link moves the focus to that field
    page.click("#sign")
    problems = page.locator("#sign-problems .error-summary")
    expect(problems).to_contain_text("The report cannot be signed yet")
    expect(problems).to_contain_text("Findings")
    expect(page.locator("dialog")).to_have_count(0)
    no_serious_violations(page)
    problems.get_by_role("link").click()
    assert page.evaluate("document.activeElement.id") == "findings"
    page.keyboard.type("8 mm spiculated solid nodule in the right upper lobe.")
    wait_saved(page)
    expect(problems).to_have_count(0)
    saved = draft(case_id)
    assert saved["missing"] == [] and saved["draft"]["findings"].startswith("8 mm spiculated")
    assert saved["draft"]["recommendations"] == [
        {"type": "follow_up_imaging", "modality": "PET-CT", "interval": "2 weeks"}
    ]
    page.locator("#editor").screenshot(path=str(SCREENSHOTS / "read-editor.png"))

    # sign, with a confirmation (the focus starts on Cancel; Escape closes it unsigned)
    page.click("#sign")
    dialog = page.get_by_role("dialog", name="Sign this report?")
    expect(dialog).to_contain_text(f"version {saved['version']}")
    expect(dialog).to_contain_text("Dr. A. Chen")
    assert page.evaluate("document.activeElement.id") == "sign-cancel"
    no_serious_violations(page)
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert page.evaluate("document.activeElement.id") == "sign"
    page.click("#sign")
    page.click("#sign-confirm")

    # the signed report: verification and the PDF in the page
    expect(page.get_by_role("heading", name="Signed report")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Signature valid")).to_be_visible()
    pdf = page.locator("iframe.pdf-frame")
    expect(pdf).to_have_attribute("src", re.compile(r"^blob:"))
    head = page.evaluate(
        "async () => { const r = await fetch(document.querySelector('iframe.pdf-frame').src);"
        " const b = new Uint8Array(await r.arrayBuffer()); return [r.headers.get('content-type'),"
        " String.fromCharCode(...b.slice(0, 5)), b.length]; }"
    )
    assert head[0] == "application/pdf" and head[1] == "%PDF-" and head[2] > 5000, head
    report = api("GET", f"/v1/cases/{case_id}").json()["report"]
    assert report is not None and report["addenda"] == []
    assert api("GET", f"/v1/reports/{report['report_id']}/verify").json()["valid"] is True
    expect(page.locator("#editor")).to_have_count(0)
    no_serious_violations(page)

    # an addendum, by keyboard: its text is required; then signed with a confirmation (the PDF
    # viewer beside it may still be laying itself out, so no clicks by coordinates here)
    expect(pdf).to_have_attribute("data-loaded", "1")
    page.focus("#addendum-sign")
    page.keyboard.press("Enter")
    expect(page.locator("#addendum-problems")).to_contain_text("What changes, and why")
    assert page.evaluate("document.activeElement.textContent").startswith("The addendum cannot")
    page.fill("#add-text", "The nodule measures 9 mm on the thin-section reconstruction.")
    page.check("#add-diagnosis_changed-no")
    page.check("#add-severity_changed-no")
    page.check("#add-staging_changed-no")
    page.fill("#add-summary", "Size corrected to 9 mm; assessment unchanged")
    page.focus("#addendum-sign")
    page.keyboard.press("Enter")
    confirm = page.get_by_role("dialog", name="Sign this addendum?")
    confirm.get_by_role("button", name="Sign the addendum").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text(re.compile(r"^Addendum 1, signed"))).to_be_visible(timeout=60_000)
    addenda = api("GET", f"/v1/cases/{case_id}").json()["report"]["addenda"]
    assert len(addenda) == 1
    signed = api("GET", f"/v1/reports/{addenda[0]['report_id']}").json()["report"]
    assert signed["kind"] == "addendum" and signed["amends"]["report_id"] == report["report_id"]
    page.get_by_role("heading", name="Signed report").scroll_into_view_if_needed()
    # the page was drawn again: its PDF is a new frame; Chromium's viewer paints after "load"
    expect(page.locator("#signed-pdf iframe.pdf-frame")).to_have_attribute("data-loaded", "1")
    page.wait_for_timeout(1500)
    page.screenshot(path=str(SCREENSHOTS / "read-signed.png"))


def test_two_tabs_on_one_draft_merge_or_show_the_conflict_never_losing_text(
    context: Any, reader_case: Callable[..., Any]
) -> None:
    case_id = reader_case().case_id
    path = f"/read/cases/{case_id}"
    a = context.new_page()
    sign_in(a, path=path)
    b = context.new_page()  # the same sign-in session: no login page this time
    b.goto(f"{REPORTING}{path}")
    for page in (a, b):
        expect(page.locator("#save-status")).to_have_text("No draft saved yet.")

    # different fields in each tab: the second save merges instead of failing or overwriting
    a.fill("#findings", "Findings typed in tab A.")
    wait_saved(a)
    b.fill("#summary", "Summary typed in tab B")
    expect(b.locator("#merge-note")).to_contain_text("merged with yours")
    expect(b.locator("#findings")).to_have_value("Findings typed in tab A.")
    wait_saved(b)
    both = draft(case_id)["draft"]
    assert both["findings"] == "Findings typed in tab A."
    assert both["assessment"]["summary"] == "Summary typed in tab B"

    # the same field in both tabs: the stale tab shows the conflict, nothing is overwritten
    b.fill("#findings", "Findings rewritten in tab B.")
    wait_saved(b)
    a.fill("#findings", "Findings rewritten in tab A.")
    conflict = a.locator("#conflict .conflict")
    expect(conflict).to_contain_text("also changed in another tab or window")
    expect(conflict).to_contain_text("Findings rewritten in tab A.")
    expect(conflict).to_contain_text("Findings rewritten in tab B.")
    expect(a.locator("#save-status")).to_contain_text("Not saved")
    expect(a.locator("#findings")).to_have_value("Findings rewritten in tab A.")
    time.sleep(1.5)  # past the autosave delay: still nothing written over tab B's text
    assert draft(case_id)["draft"]["findings"] == "Findings rewritten in tab B."
    a.get_by_role("button", name="Show the conflict").click()
    assert a.evaluate("document.activeElement.id") == "conflict-title"
    no_serious_violations(a)
    a.screenshot(path=str(SCREENSHOTS / "read-conflict.png"))

    # the reader keeps theirs for the findings; tab B's summary survives
    conflict.get_by_role("button", name="Save with these choices").click()
    wait_saved(a)
    expect(a.get_by_role("button", name="Show the conflict")).to_be_hidden()
    kept = draft(case_id)["draft"]
    assert kept["findings"] == "Findings rewritten in tab A."
    assert kept["assessment"]["summary"] == "Summary typed in tab B"


def test_decline_with_a_reason_by_keyboard_then_sign_out(
    context: Any, reader_case: Callable[..., Any]
) -> None:
    case_id = reader_case().case_id
    page = context.new_page()
    sign_in(page)
    row = page.locator(f'tr[data-case-id="{case_id}"]')
    decline = row.get_by_role("button", name=f"Decline case {case_id}")
    decline.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name=f"Decline case {case_id}")
    assert page.evaluate("document.activeElement.id") == "decline-reason"
    page.keyboard.press("Escape")  # closes, and gives the focus back
    expect(dialog).to_have_count(0)
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == (
        f"Decline case {case_id}"
    )
    page.keyboard.press("Enter")
    dialog.get_by_role("button", name="Decline case").click()
    expect(dialog.get_by_role("alert")).to_have_text("Enter the reason for declining.")
    no_serious_violations(page)
    page.keyboard.type("Outside my subspecialty")
    dialog.get_by_role("button", name="Decline case").click()
    expect(dialog).to_have_count(0)
    expect(row).to_have_count(0)
    expect(page.get_by_role("status").first).to_contain_text(f"Case {case_id} declined")
    [event] = wait_for("case.declined", lambda: off_loop(published, topics.CASE_DECLINED, case_id))
    assert event["reason"] == "Outside my subspecialty"

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/realms/secondread/protocol/openid-connect/auth"))
    expect(page.locator("#username")).to_be_visible()
