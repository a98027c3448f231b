"""The cases of a chaos run, sent the way hospitals send them (by upload and by C-STORE), and
a test reader who signs every case assigned to any demo reader, both retrying through faults
the way real clients do (the same idempotency key for every retry)."""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

from secondread_cli.submit import SubmitError, submit_case
from tests.e2e.identity import READERS, TOKENS
from tests.e2e.reporting_support import complete_draft
from tests.synthetic import Patient, ct_study, write_study

INGEST = "http://127.0.0.1:8001"
REPORTING = "http://127.0.0.1:8004"
API_KEY = "demo-hospital-key"
CALLING_AE = "DEMO_PACS"
"""The demo hospital's PACS AE title: the Storage SCP maps it to hospital ``demo``."""


@dataclass
class Submission:
    n: int
    door: str
    """``upload`` or ``c-store``."""
    patient: Patient
    study: list[bytes]
    case_id: str = ""
    refused: str = ""
    """Why the client gave up (the case was never accepted: not lost, not counted)."""
    signed: str = ""
    """The report id the test reader got when it signed."""

    @property
    def study_uid(self) -> str:
        return str(dcmread(io.BytesIO(self.study[0]), stop_before_pixels=True).StudyInstanceUID)


@dataclass
class Workload:
    cases: int
    instances: int
    folder: Path
    dicom_ports: list[int]
    log: Callable[[str], None]
    submissions: list[Submission] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def prepare(self) -> None:
        for n in range(self.cases):
            patient = Patient(patient_id=f"MRN-CHAOS-{uuid.uuid4().hex[:10]}")
            study = ct_study(patient, count=self.instances, seed=uuid.uuid4().hex)
            door = "upload" if n % 2 == 0 else "c-store"
            self.submissions.append(Submission(n, door, patient, study))

    def feed(self, over_s: float) -> None:
        """Send every case, spread over ``over_s`` seconds."""
        gap = over_s / max(1, self.cases)
        for sub in self.submissions:
            if self.stop.is_set():
                return
            t0 = time.monotonic()
            try:
                if sub.door == "upload":
                    self._upload(sub)
                else:
                    self._c_store(sub)
            except Exception as exc:  # the client gave up: reported, never counted as lost
                sub.refused = f"{type(exc).__name__}: {exc}"[:200]
                self.log(f"case {sub.n} ({sub.door}) not accepted: {sub.refused}")
            time.sleep(max(0.0, gap - (time.monotonic() - t0)))

    def _upload(self, sub: Submission) -> None:
        folder = write_study(self.folder / f"case-{sub.n}", sub.study)
        answer = submit_case(url=INGEST, api_key=API_KEY, folder=folder, intake=intake(),
                             idempotency_key=f"chaos-{sub.patient.patient_id}", attempts=10,
                             timeout_s=60)  # fmt: skip
        sub.case_id = str(answer["case_id"])

    def _c_store(self, sub: Submission) -> None:
        body = intake(study_instance_uids=[sub.study_uid], expected_instances=len(sub.study))
        sub.case_id = retry(lambda: _open_intake(body), what=f"intake of case {sub.n}")
        for i, data in enumerate(sub.study):
            port = self.dicom_ports[i % len(self.dicom_ports)]  # the study spans the replicas
            retry(lambda d=data, p=port: _store(d, p), what=f"C-STORE of case {sub.n}")  # type: ignore[misc]

    def read(self) -> None:
        """The test reader: accept and sign every assigned case of this run, until stopped."""
        ours = {s.case_id: s for s in self.submissions}
        while not self.stop.is_set():
            for reader in READERS:
                try:
                    r = httpx.get(f"{REPORTING}/v1/worklist", headers=TOKENS.auth(reader),
                                  timeout=15)  # fmt: skip
                    if r.status_code != 200:
                        continue
                    for entry in r.json()["cases"]:
                        sub = ours.get(entry["case_id"]) or self._find(entry["case_id"])
                        if sub is not None and not sub.signed:
                            sub.signed = sign(entry["case_id"], reader)
                except (httpx.HTTPError, KeyError, ValueError, RuntimeError):
                    continue  # reporting or the identity provider is down: next round
            ours = {s.case_id: s for s in self.submissions}
            self.stop.wait(2.0)

    def _find(self, case_id: str) -> Submission | None:
        return next((s for s in self.submissions if s.case_id == case_id), None)


def intake(**extra: Any) -> dict[str, Any]:
    return {
        "clinical_question": "Interval change of the nodule?",
        "original_report": "Findings: 6 mm nodule in the right upper lobe. Impression: benign.",
        "referring_physician": {"name": "Dr Referrer", "email": "referrer@example.org"},
        "consent": True,
        **extra,
    }


def retry(call: Callable[[], Any], *, what: str, attempts: int = 30, every_s: float = 2.0) -> Any:
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception:
            if attempt == attempts:
                raise
            time.sleep(every_s)
    raise AssertionError(what)  # pragma: no cover


def _open_intake(body: dict[str, Any]) -> str:
    r = httpx.post(f"{INGEST}/v1/cases", json=body, headers={"X-API-Key": API_KEY}, timeout=30)
    if r.status_code != 201:
        raise SubmitError(f"intake: HTTP {r.status_code} {r.text[:200]}")
    return str(r.json()["case_id"])


def _store(data: bytes, port: int) -> None:
    ae = AE(ae_title=CALLING_AE)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title="SECONDREAD")
    if not assoc.is_established:
        raise ConnectionError(f"no association with 127.0.0.1:{port}")
    try:
        status = assoc.send_c_store(dcmread(io.BytesIO(data)))
    finally:
        assoc.release()
    if not status or int(status.Status) != 0:
        raise ConnectionError(f"C-STORE status {status.Status if status else 'none'}")


def sign(case_id: str, reader: str) -> str:
    """Accept, draft and sign as ``reader``; the report id. The key names the case and the draft
    version it signs, so a retry of the same request gets the same report, and a retry after
    the draft was saved again is a new request (a case still has one report: reporting refuses
    a second)."""
    auth = TOKENS.auth(reader)
    httpx.post(f"{REPORTING}/v1/cases/{case_id}/accept", headers=auth, timeout=30)
    view = httpx.get(f"{REPORTING}/v1/cases/{case_id}", headers=auth, timeout=30)
    view.raise_for_status()
    current = httpx.get(f"{REPORTING}/v1/cases/{case_id}/draft", headers=auth, timeout=30)
    current.raise_for_status()
    draft = complete_draft(view.json()["statements"])
    if_match = {**auth, "If-Match": current.headers["etag"]}
    saved = httpx.put(
        f"{REPORTING}/v1/cases/{case_id}/draft", json=draft, headers=if_match, timeout=30
    )
    saved.raise_for_status()
    signed = httpx.post(f"{REPORTING}/v1/cases/{case_id}/report",
                        json={"draft_version": saved.json()["version"]},
                        headers={**auth, "Idempotency-Key":
                                 f"chaos-sign-{case_id}-{saved.json()['version']}"},
                        timeout=60)  # fmt: skip
    if signed.status_code not in (200, 201):
        raise RuntimeError(f"sign: HTTP {signed.status_code}")
    return str(signed.json()["report_id"])
