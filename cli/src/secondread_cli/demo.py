"""``make demo``: a guided tour of one case for a newcomer, on the local stack.

1. starts the stack if needed;
2. puts a synthetic prior study of a synthetic patient into the demo hospital's PACS, then
   submits a new study of the same patient (``--fetch-priors``);
3. a **scripted demo reader** (clearly labelled) accepts, drafts and signs through the API, with a
   token from the local Keycloak;
4. prints the case timeline, the assessment, where the PDF, the DICOM objects and the delivered
   email are, and the ``secondread verify`` command for the report.

Every person and number here is made up.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydicom.uid import CTImageStorage, generate_uid

from secondread_cli import keycloak, mail, stack
from secondread_shared.dicom import new_instance

REPORTING = "http://127.0.0.1:8004"
PACS = "http://127.0.0.1:8043"
ARCHIVE = "http://127.0.0.1:8042"
READERS = ("rad-chen", "rad-okafor", "rad-silva", "rad-novak")
T = TypeVar("T")


def say(text: str = "") -> None:
    print(text, flush=True)


def scripted(reader: str, text: str) -> None:
    say(f"  [scripted demo reader {reader}] {text}")


def wait(what: str, probe: Callable[[], T | None], timeout: float = 180.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(1.0)


def ct_series(patient_id: str, study_date: str, count: int) -> list[bytes]:
    """A small synthetic chest CT of a made-up patient."""
    study = generate_uid(entropy_srcs=[patient_id, study_date, "study"])
    series = generate_uid(entropy_srcs=[study, "series"])
    out = []
    for i in range(count):
        sop = generate_uid(entropy_srcs=[series, str(i)])
        ds = new_instance(CTImageStorage, sop)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[study, "for"])
        ds.Modality, ds.BodyPartExamined = "CT", "CHEST"
        ds.PatientName, ds.PatientID = "Demo^Dolores", patient_id
        ds.PatientBirthDate, ds.PatientSex = "19580704", "F"
        ds.StudyDate = ds.SeriesDate = study_date
        ds.StudyTime, ds.StudyDescription = "093000", "CT CHEST WITHOUT CONTRAST"
        ds.AccessionNumber, ds.ReferringPhysicianName = f"DEMO{study_date}", "Demo^Referrer"
        ds.SeriesNumber, ds.InstanceNumber = 1, i + 1
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows = ds.Columns = 64
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        noise = bytearray(hashlib.shake_256(sop.encode()).digest(64 * 64 * 2))
        noise[1::2] = bytes(b & 0x0F for b in noise[1::2])
        ds.PixelData = bytes(noise)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        out.append(buf.getvalue())
    return out


def api(method: str, path: str, reader: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {keycloak.demo_token(reader)}", **kw.pop("headers", {})}
    r = httpx.request(method, f"{REPORTING}{path}", headers=headers, timeout=60, **kw)
    if r.status_code >= 400:
        raise SystemExit(f"demo: {method} {path} answered {r.status_code}: {r.text}")
    return r


def signed_doc_summary(draft: dict[str, Any]) -> str:
    return str(draft["assessment"]["summary"])


def main() -> None:
    say("secondread demo: one second opinion from upload to a verifiable signature")
    say("(synthetic patient, synthetic images, a scripted reader; nothing here is real)\n")
    say("1. the local stack")
    if not stack.healthy():
        stack.up(timeout=240)
    else:
        say("   already running")

    patient_id = f"DEMO-{uuid.uuid4().hex[:8].upper()}"
    say(f"\n2. a prior study of patient {patient_id} in the hospital PACS ({PACS}), then a new one")
    for data in ct_series(patient_id, "20250310", 2):
        httpx.post(f"{PACS}/instances", content=data, timeout=30).raise_for_status()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "study"
        folder.mkdir()
        for i, data in enumerate(ct_series(patient_id, "20261130", 3)):
            (folder / f"{i}.dcm").write_bytes(data)
        report = Path(tmp) / "report.txt"
        report.write_text(
            "FINDINGS: 9 mm solid nodule in the right upper lobe. No pleural effusion. "
            "No mediastinal lymphadenopathy. IMPRESSION: Indeterminate pulmonary nodule; "
            "cannot exclude malignancy. Follow-up CT suggested."
        )
        done = subprocess.run(
            [sys.executable, "-m", "secondread_cli.main", "submit", str(folder),
             "--question", "Has the nodule grown since the prior? Malignant?",
             "--report-file", str(report), "--physician-email", "referrer@example.org",
             "--physician-name", "Dr Demo Referrer", "--fetch-priors", "--json"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"demo: submit failed: {done.stderr}")
    case_id = json.loads(done.stdout.strip().splitlines()[-1])["case_id"]
    say(f"   submitted: case {case_id}")

    def on_a_worklist() -> str | None:
        for reader in READERS:
            rows = api("GET", "/v1/worklist", reader).json()["cases"]
            if any(c["case_id"] == case_id for c in rows):
                return reader
        return None

    reader = wait("the case on a reader's worklist", on_a_worklist)
    say(f"\n3. routed to {reader}; what follows is scripted, not a radiologist's judgement")
    view = api("GET", f"/v1/cases/{case_id}", reader).json()
    counts = (f"{len(view['statements'])} numbered statements, {len(view['viewer_links'])} "
              "studies (the new one and the prior fetched from the PACS)")  # fmt: skip
    scripted(reader, f"opens the case: {view['clinical_question']!r}, {counts}")
    api("POST", f"/v1/cases/{case_id}/accept", reader)
    scripted(reader, "accepts it")
    statements = [
        {"number": s["number"], "verdict": "confirmed", "comment": ""} for s in view["statements"]
    ]
    statements[0].update(verdict="refined", grade="2a",
                         comment="10 mm now (9 mm on the prior), spiculated margin")  # fmt: skip
    draft = {
        "findings": "Solid nodule of the right upper lobe, 10 mm, spiculated; 9 mm on the prior "
        "of 2025-03-10. No effusion, no adenopathy.",
        "statements": statements,
        "assessment": {"diagnosis_changed": False, "severity_changed": True,
                       "staging_changed": False,
                       "summary": "Growing spiculated nodule: more suspicious than reported"},
        "recommendations": [
            {"type": "follow_up_imaging", "modality": "PET-CT", "interval": "2 weeks"},
            {"type": "referral", "specialty": "thoracic surgery"},
        ],
    }  # fmt: skip
    etag = api("GET", f"/v1/cases/{case_id}/draft", reader).headers["etag"]
    version = api("PUT", f"/v1/cases/{case_id}/draft", reader, json=draft,
                  headers={"If-Match": etag}).json()["version"]  # fmt: skip
    scripted(reader, f"saves the draft (version {version})")
    signed = api("POST", f"/v1/cases/{case_id}/report", reader, json={"draft_version": version},
                 headers={"Idempotency-Key": f"demo-{case_id}"}).json()  # fmt: skip
    report_id = signed["report_id"]
    scripted(reader, f"signs: report {report_id} (Ed25519 key {signed['key_id']})")

    def delivered() -> list[bytes] | None:
        return mail.of_case(case_id) or None

    mails = wait("the delivery email", delivered, timeout=120)

    say("\n4. what happened")
    say("   timeline (secondread.case.status.v1):")
    import asyncio

    from secondread_cli import kafka_tools
    from secondread_shared import topics

    records = asyncio.run(
        kafka_tools.read_all("127.0.0.1:9092", [topics.CASE_STATUS], lambda r: r.key == case_id)
    )
    for r in records:
        ev = json.loads(r.value)
        say(f"     {ev['occurred_at'][:19]}  {ev['state']:<14} {ev.get('detail', '')}")
    say(f"   assessment: {signed_doc_summary(draft)}")
    say(f"   PDF:        s3://secondread-reports/reports/{case_id}/{report_id}.pdf")
    say(f"               {REPORTING}/v1/reports/{report_id}/pdf (with {reader}'s token)")
    links = view["viewer_links"]
    if links:
        say(f"   DICOM:      the Encapsulated PDF, a new series of the case's study: {links[0]}")
    say(f"   email:      {len(mails)} delivered: {mail.base_url()} (or secondread mail list)")
    say(f"   hospital PACS: the report beside the original study at {PACS}/ui/app/")
    say(f"   verify:     secondread verify {report_id}")
    say(f"               ({REPORTING}/v1/reports/{report_id}/verify; keys at {REPORTING}/v1/keys)")
    pages()
    sys.stdout.write(report_id + "\n")


def pages() -> None:
    """The three pages, a fresh upload link for the portal and the demo logins."""
    import asyncio

    from secondread_cli.links import create
    from secondread_shared.logging import configure_logging

    configure_logging("cli", "WARNING")  # the link's log line is for the service
    repo = stack.repo_root()
    say("\n5. the pages (sign in with the demo logins below; docs/web.md)")
    say(f"   reading workspace (radiologists): {REPORTING}/read/   viewer: {REPORTING}/viewer/")
    try:
        url, expires = asyncio.run(create("demo", "1d", 1))
        say(f"   upload portal (patients, physicians): {url}")
        say(f"      (an upload link for hospital demo, valid until {expires[:16]}; more with")
        say("       secondread link create --hospital demo; hospital admins make them at")
        say("       http://127.0.0.1:8001/portal/admin/)")
    except Exception as exc:  # the demo's case is done; a link is a convenience
        say(f"   upload portal: http://127.0.0.1:8001/portal/ (no link made: {exc})")
    say("   operations (operators): http://127.0.0.1:8003/ops/")
    logins = [("radiologist", r) for r in READERS] + [
        ("operator", "ops-demo"),
        ("hospital admin", "hospital-admin-demo"),
    ]
    say("   demo logins (local Keycloak, http://127.0.0.1:8180):")
    for role, user in logins:
        say(f"      {role:15} {user:20} password {keycloak.demo_password(repo, user)}")


if __name__ == "__main__":
    main()
