"""The upload portal in headless Chromium against the running stack (issue 12, tests 1 and 3).

A patient's upload link -> choose a folder of synthetic DICOM (with a DICOMDIR and a file that is
not DICOM) -> the header summary -> the case form (first with errors that name their fields) ->
a tus upload that loses its connection mid-way, then loses its tab, and goes on from where it
stood when the link is opened again -> the status page reaches ``received``, showing no pseudonym,
and follows the case through the real pipeline to ``in review`` (routing assigned it) and
``delivered`` (a reader signed it through the API and notify delivered it). A dropped zip is
read in the browser. A hospital admin signs in through Keycloak (PKCE) and creates a link.
axe-core finds no serious or critical violation on any page.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import subprocess
import sys
import time
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from secondread_ingest.settings import IngestSettings
from secondread_shared import topics
from tests.e2e.browser import SCREENSHOTS, explain_failed_sign_in, serious_violations
from tests.e2e.conftest import wait_for
from tests.e2e.identity import HOSPITAL_ADMIN, READERS, TOKENS
from tests.e2e.reporting_support import sign_case
from tests.e2e.test_pipeline import assigned_to
from tests.synthetic import Patient, ct_study, write_study

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.usefixtures("running_stack")]

INGEST = "http://127.0.0.1:8001"
CHUNK = 512 * 1024


def new_link(*extra: str) -> str:
    """An upload link from the operator's command (``secondread link create``)."""
    done = subprocess.run(
        [sys.executable, "-m", "secondread_cli.main", "link", "create", "--hospital", "demo",
         "--expires-in", "2h", *extra],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.strip().splitlines())
    assert lines["hospital"] == "demo"
    assert lines["url"].startswith(f"{INGEST}/portal/#link=")
    return lines["url"]


def study_folder(root: Path, patient: Patient, count: int) -> Path:
    """A DICOM CD as a patient would have it: DICOMDIR, a study folder, and a stray text file."""
    cd = root / "CD"
    write_study(cd / "DICOM" / "ST00001", ct_study(patient, count=count, size=256,
                                                    seed=uuid.uuid4().hex))  # fmt: skip
    (cd / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 64)
    (cd / "README.TXT").write_text("Viewer for Windows: run VIEWER.EXE\n")
    return cd


def case_of(status_token: str) -> str | None:
    """The case id behind a status capability (ingest's records; the page never shows it)."""
    digest = hashlib.sha256(status_token.encode()).hexdigest()
    with psycopg.connect(IngestSettings().db_dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT case_id FROM portal_submissions WHERE token_sha256 = %s", (digest,)
        ).fetchone()
    return None if row is None else row[0]


def server_offset(status_token: str) -> int:
    view = httpx.get(f"{INGEST}/portal/api/status", headers={"X-Portal-Status": status_token})
    return int(view.json()["upload"]["received_bytes"])


def pending(page: Any) -> dict[str, Any]:
    raw = page.evaluate(
        "() => Object.entries(localStorage).find(([k]) => k.startsWith('secondread.portal.')"
        " && k !== 'secondread.portal.chunkBytes')"
    )
    assert raw, "the page keeps its upload in localStorage"
    return dict(json.loads(raw[1]))


def check_axe(page: Any, what: str) -> None:
    assert serious_violations(page) == [], what


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def fill_form(page: Any) -> None:
    page.fill("#clinical_question", "Is the right upper lobe nodule new since last year?")
    page.fill("#original_report", "8 mm nodule in the right upper lobe. Cannot exclude malignancy.")
    page.check("input[name=urgency][value=urgent]")
    page.fill("#physician_name", "Dr Ada Lovelace")
    page.fill("#physician_email", "ada.lovelace@example.org")
    page.check("#consent")


def test_a_patient_uploads_a_folder_resumably_and_follows_the_case(
    browser: Any, tmp_path: Path
) -> None:
    patient = Patient(name="Quixote^Alonso", patient_id=f"MRN-{uuid.uuid4().hex[:8]}")
    folder = study_folder(tmp_path, patient, count=40)  # about 5 MB: ten 512 KiB PATCHes
    url = new_link()
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.add_init_script(f"localStorage.setItem('secondread.portal.chunkBytes', '{CHUNK}')")
    patches: list[int] = []  # Upload-Offset of every PATCH the browser sent, in order
    cut = {"drop_at": 4, "close_after": 7, "closing": False}

    def on_tus(route: Any) -> None:
        request = route.request
        if request.method != "PATCH":
            route.continue_()
            return
        if cut["closing"]:
            route.abort("connectionreset")
            return
        patches.append(int(request.headers["upload-offset"]))
        if len(patches) == cut["drop_at"]:
            route.abort("connectionreset")  # the connection drops mid-upload
            return
        if len(patches) == cut["close_after"]:
            cut["closing"] = True  # from now on the network is gone, until the tab is closed
            route.abort("connectionreset")
            return
        route.continue_()

    context.route("**/portal/tus/**", on_tus)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    # 1. The link opens the page; choosing the folder reads the headers; nothing is sent yet.
    page.goto(url)
    page.wait_for_selector("#step-files:not([hidden])")
    assert "demo" in page.inner_text("#link-info")
    reached = []
    for _ in range(8):  # keyboard users reach both choosers with Tab
        page.keyboard.press("Tab")
        reached.append(page.evaluate("() => document.activeElement.id"))
    assert "pick-folder" in reached and "pick-files" in reached, reached
    check_axe(page, "the upload page")
    page.set_input_files("#pick-folder", str(folder))
    page.wait_for_selector("#step-summary:not([hidden])", timeout=30_000)
    summary = page.inner_text("#summary")
    assert "Quixote Alonso" in summary and patient.patient_id in summary
    assert "CT" in summary and "2026-01-02" in summary
    assert "40 images in 1 series of 1 study" in summary
    skipped = page.inner_text("#skipped")
    assert "CD/README.TXT: not a DICOM file" in skipped
    assert "CD/DICOMDIR: the CD's index" in skipped
    assert patches == []
    check_axe(page, "the header summary")
    screenshot(page, "portal-upload")

    # 2. The form: sent empty, every error names its field; then filled in.
    page.click("#confirm")
    page.click("#send")
    page.wait_for_selector("#errors:not([hidden])")
    problems = page.inner_text("#errors")
    for named in ("Clinical question: required", "Physician's name:", "Physician's email:",
                  "Consent:"):  # fmt: skip
        assert named in problems, problems
    assert page.get_attribute("#clinical_question", "aria-invalid") == "true"
    assert "Clinical question: required" in page.inner_text("#clinical_question-error")
    check_axe(page, "the form with its errors")
    screenshot(page, "portal-form")
    fill_form(page)
    page.fill("#physician_email", "not-an-address")
    page.click("#send")
    page.wait_for_selector("#physician_email-error:has-text('not a valid email address')")
    assert "not a valid email address" in page.inner_text("#physician_email-error")
    page.fill("#physician_email", "ada.lovelace@example.org")
    page.click("#send")

    # 3. The upload: the connection drops at the third PATCH and tus-js-client resumes from the
    # server's offset; at the sixth the network goes and the tab is closed.
    page.wait_for_selector("#step-upload:not([hidden])")
    page.locator("#upload-text").filter(has_text=re.compile(r"\(([1-9]\d) %\)")).wait_for(
        timeout=60_000
    )  # a tenth or more sent: a speed and a time left to show
    progress = page.inner_text("#upload-text")
    assert re.search(r"MB of [\d.]+ MB \(\d+ %\) · [\d.]+ MB/s · about .+ left", progress), progress
    screenshot(page, "portal-progress")
    check_axe(page, "the upload in progress")
    deadline = time.monotonic() + 90
    while not cut["closing"]:  # the route handler runs while Playwright waits
        assert time.monotonic() < deadline, f"the upload stalled: {patches}"
        page.wait_for_timeout(100)
    token = pending(page)["status_token"]
    page.close()
    drop, close = cut["drop_at"], cut["close_after"]
    assert patches[:drop] == [i * CHUNK for i in range(drop)], patches
    assert patches[drop] == (drop - 1) * CHUNK, "after the drop, the upload goes on where it stood"
    stored = server_offset(token)
    assert stored == (close - 2) * CHUNK, (stored, patches)  # every PATCH but the two cut
    assert case_of(token) is None  # the case opens only when every byte has arrived

    # 4. The link again, in a new tab: the page knows the interrupted upload; the same folder
    # resumes it at the server's offset, without the form.
    cut["closing"] = False
    before = len(patches)
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("#notice:has-text('interrupted')")
    page.set_input_files("#pick-folder", str(folder))
    page.wait_for_selector("#step-summary:not([hidden])", timeout=30_000)
    page.click("#confirm")
    page.wait_for_selector("#step-upload:not([hidden])")
    assert page.is_hidden("#step-form")
    page.wait_for_url("**/portal/status#status=*", timeout=120_000)
    assert patches[before] == stored, "the reopened tab resumes at the stored offset"
    assert sum(1 for p in patches if p == 0) == 1, "nothing was sent twice from the start"

    # 5. The status page reaches received (ingest's record, then secondread.case.status.v1).
    # (selectors, not wait_for_function: the page's CSP allows no eval, even for tests)
    page.wait_for_selector(
        "body[data-step=received], body[data-step=in_review], body[data-step=delivered]",
        state="attached",
        timeout=90_000,
    )
    case_id = case_of(token)
    assert case_id is not None
    main = page.inner_text("main")
    assert "Is the right upper lobe nodule new since last year?" in main
    assert "Urgent" in main and "Dr Ada Lovelace" in main and "40 in 1 series (CT)" in main
    check_axe(page, "the status page")
    assert errors == []

    # 6. No pseudonym (nor a case id, nor the patient's name or id from the headers) on the
    # status page or in its API, once deidentify has given the case its pseudonym.
    pseudonym = wait_for("the case's pseudonym", lambda: pseudonym_of(case_id), timeout=90)
    page.reload()
    page.wait_for_selector("#entered:not([hidden])")
    html = page.content()
    api = httpx.get(f"{INGEST}/portal/api/status", headers={"X-Portal-Status": token}).text
    for secret in (pseudonym, patient.patient_id, "Quixote", case_id):
        assert secret not in html and secret not in api, secret

    # 7. Later steps follow the case through the real pipeline (ingest consumes the status
    # topic): routing assigns it, so the page says it is in review; the reader signs it through
    # the API, notify delivers it, so the page says delivered (issue 12, test 3).
    reader = wait_for("the case on a worklist", lambda: assigned_to(case_id), timeout=120)
    page.wait_for_selector("body[data-step=in_review]", state="attached", timeout=60_000)
    assert "A subspecialist radiologist is reading" in page.inner_text("#step-detail")
    screenshot(page, "portal-status")
    sign_case(case_id, reader)
    page.wait_for_selector("body[data-step=delivered]", state="attached", timeout=120_000)
    assert page.get_attribute("#steps li[data-step=delivered]", "aria-current") == "step"
    context.close()


def pseudonym_of(case_id: str) -> str | None:
    """The patient pseudonym deidentify gave ``case_id`` (its ``case.deidentified`` event)."""
    done = subprocess.run(
        ["kcat", "-b", "127.0.0.1:9092", "-t", topics.CASE_DEIDENTIFIED, "-C", "-e", "-q",
         "-f", "%k\t%s\n"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    for line in done.stdout.splitlines():
        key, _, value = line.partition("\t")
        if key == case_id:
            return str(json.loads(value)["patient_pseudonym"])
    return None


def test_a_dropped_zip_is_read_in_the_browser_and_opens_a_case(browser: Any) -> None:
    """Drag and drop of a (deflated) zip holding a study, its DICOMDIR and a stray file: the
    browser unzips it to read the headers, sends its members as they are, and the case opens."""
    patient = Patient(name="Panza^Sancho", patient_id=f"MRN-{uuid.uuid4().hex[:8]}")
    members = {
        f"STUDY/IM{i:04d}.dcm": data
        for i, data in enumerate(ct_study(patient, count=5, size=128, seed=uuid.uuid4().hex))
    }
    members["DICOMDIR"] = b"\0" * 128 + b"DICM"
    members["notes.txt"] = b"not an image"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(new_link())
        page.wait_for_selector("#step-files:not([hidden])")
        transfer = page.evaluate_handle(
            """([b64, name]) => {
                const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
                const dt = new DataTransfer();
                dt.items.add(new File([bytes], name, { type: "application/zip" }));
                return dt;
            }""",
            [base64.b64encode(buf.getvalue()).decode(), "from-the-hospital.zip"],
        )
        page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
        page.wait_for_selector("#step-summary:not([hidden])", timeout=30_000)
        assert "Panza Sancho" in page.inner_text("#summary")
        assert "5 images in 1 series of 1 study" in page.inner_text("#summary")
        skipped = page.inner_text("#skipped")
        assert "from-the-hospital.zip/notes.txt: not a DICOM file" in skipped
        assert "from-the-hospital.zip/DICOMDIR: the CD's index" in skipped
        page.click("#confirm")
        fill_form(page)
        page.click("#send")
        page.wait_for_url("**/portal/status#status=*", timeout=60_000)
        page.wait_for_selector(
            "body[data-step=received], body[data-step=in_review]", state="attached", timeout=120_000
        )
        token = page.url.split("#status=")[1]
        case_id = case_of(token)
        assert case_id is not None
        case = httpx.get(f"{INGEST}/v1/cases/{case_id}", headers={"X-API-Key": "demo-hospital-key"})
        assert case.json()["instances"] == 5  # the DICOMDIR and the text file were not sent
    finally:
        context.close()


def test_a_used_or_altered_link_says_why(browser: Any, tmp_path: Path) -> None:
    """A link opens one case: once its form is sent, it is used; an altered one is refused."""
    url = new_link()
    token = url.split("#link=")[1]
    size = 1000
    sent = httpx.post(
        f"{INGEST}/portal/api/submissions",
        headers={"X-Portal-Link": token},
        json={
            "intake": {"clinical_question": "Q?", "consent": True,
                       "referring_physician": {"name": "Dr B", "email": "b@example.org"}},
            "summary": {"instances": 1, "series": 1, "studies": 1, "modalities": ["MR"]},
            "upload_length": size,
        },
    )  # fmt: skip
    assert sent.status_code == 201, sent.text
    again = httpx.post(
        f"{INGEST}/portal/api/submissions", headers={"X-Portal-Link": token}, json={}
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "link_used"
    body, sig = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**data, "h": "other"}).encode()).rstrip(b"=")
    page = browser.new_page()
    try:
        page.goto(f"{INGEST}/portal/#link={forged.decode()}.{sig}")
        page.wait_for_selector("#notice:has-text('not genuine')")
        page.goto(url)
        page.wait_for_selector("#notice:has-text('used already')")
        assert page.is_hidden("#step-files")
        page.goto(f"{INGEST}/portal/")
        page.wait_for_selector("#no-link:not([hidden])")
        check_axe(page, "the page without a link")
    finally:
        page.close()


def test_a_hospital_admin_signs_in_and_creates_a_link(browser: Any) -> None:
    from secondread_cli import keycloak
    from tests.e2e.identity import keycloak_repo

    password = keycloak.demo_password(keycloak_repo(), HOSPITAL_ADMIN)
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{INGEST}/portal/admin/")
        page.wait_for_selector("#signed-out:not([hidden])")
        check_axe(page, "the admin page, signed out")
        page.click("#sign-in")
        page.wait_for_selector("#username", timeout=30_000)  # Keycloak's login form
        assert "code_challenge_method=S256" in page.url
        page.fill("#username", HOSPITAL_ADMIN)
        page.fill("#password", password)
        page.click("#kc-login")
        page.wait_for_selector("#signed-in:not([hidden]), #notice.error", timeout=30_000)
        if page.is_hidden("#signed-in"):
            explain_failed_sign_in(page, INGEST, f"{INGEST}/portal/admin/")
        assert "hospital “demo”" in page.inner_text("#who")
        page.select_option("#expires_in", "1d")
        page.fill("#max_cases", "0")
        page.click("#create button[type=submit]")
        assert "1 to 100" in page.inner_text("#max_cases-error")
        page.fill("#max_cases", "2")
        page.click("#create button[type=submit]")
        page.wait_for_selector("#created:not([hidden])")
        link = page.input_value("#created-url")
        assert link.startswith(f"{INGEST}/portal/#link=")
        page.wait_for_selector("#links tbody tr")
        first_row = page.inner_text("#links tbody tr")
        assert HOSPITAL_ADMIN in first_row and "0 of 2" in first_row and "open" in first_row
        check_axe(page, "the admin page, signed in")
        screenshot(page, "portal-admin")
        info = httpx.get(
            f"{INGEST}/portal/api/link", headers={"X-Portal-Link": link.split("#link=")[1]}
        ).json()
        assert info["hospital"] == "demo" and info["usable"] is True
        left = datetime.fromisoformat(info["expires_at"]) - datetime.now(UTC)
        assert timedelta(hours=23) < left <= timedelta(days=1, minutes=1)
    finally:
        context.close()


def test_creating_links_needs_the_hospital_admin_role() -> None:
    for user, code in ((READERS[0], 403), (None, 401)):
        headers = TOKENS.auth(user) if user else {}
        r = httpx.post(f"{INGEST}/portal/api/links", headers=headers, json={"expires_in": "1d"})
        assert r.status_code == code, r.text
        assert r.json()["error"]["code"] in ("forbidden", "unauthenticated")
    ok = httpx.post(
        f"{INGEST}/portal/api/links",
        headers=TOKENS.auth(HOSPITAL_ADMIN),
        json={"expires_in": "400d"},
    )
    assert ok.status_code == 422 and "at most 90 days" in ok.json()["error"]["message"]


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--hospital", "nowhere"], "unknown hospital 'nowhere': ingest knows demo"),
     (["--hospital", "demo", "--expires-in", "3x"], "'3x' is not a lifetime"),
     (["--hospital", "demo", "--expires-in", "91d"], "at most 90 days"),
     (["--hospital", "demo", "--max-cases", "0"], "max_cases must be between 1 and 100")],
)  # fmt: skip
def test_link_create_names_what_is_wrong(args: list[str], says: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "secondread_cli.main", "link", "create", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1 and done.stdout == ""
    assert says in done.stderr, done.stderr
