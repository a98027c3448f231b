"""Helpers for the reporting e2e tests: put a synthetic case on a reader's worklist."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from secondread_shared.events import CaseAssigned, Event, Priority, Urgency
from tests.e2e.conftest import wait_for
from tests.e2e.identity import TOKENS

KAFKA = "127.0.0.1:9092"
REPORTING = "http://127.0.0.1:8004"
ORIGINAL_REPORT = (
    "FINDINGS: 8 mm solid nodule in the right upper lobe. No pleural effusion. "
    "IMPRESSION: Indeterminate pulmonary nodule; cannot exclude malignancy."
)


async def _publish(events: list[Event]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, enable_idempotence=True)
    await producer.start()
    try:
        for ev in events:
            await producer.send_and_wait(
                ev.TOPIC, ev.model_dump_json().encode(), key=ev.case_id.encode()
            )
    finally:
        await producer.stop()


def publish(*events: Event) -> None:
    asyncio.run(_publish(list(events)))


def assigned_event(reader: str, **over: Any) -> CaseAssigned:
    """A ``case.assigned`` of a new synthetic case (no study in the archive unless given)."""
    fields: dict[str, Any] = {
        "case_id": f"case-rep-{uuid.uuid4().hex[:12]}",
        "producer": "tests",
        "radiologist_id": reader,
        "subspecialty": "chest",
        "urgency": Urgency.ROUTINE,
        "due_at": datetime.now(UTC) + timedelta(hours=24),
        "patient_pseudonym": f"SR{uuid.uuid4().hex[:10].upper()}",
        "clinical_question": "Is the nodule malignant?",
        "original_report": ORIGINAL_REPORT,
        "study_instance_uids": [],
        "orthanc_study_ids": [],
        "flags": ["hedge:cannot exclude"],
        "priority": Priority.ROUTINE,
        "radiologist_name": "Dr. B. Okafor",
        "radiologist_credentials": "MBBS, FRCR",
    }
    fields.update(over)
    return CaseAssigned(**fields)


def put_on_worklist(reader: str, **over: Any) -> CaseAssigned:
    """Publish a synthetic assignment and wait until the reader's worklist shows it."""
    event = assigned_event(reader, **over)
    publish(event)

    def listed() -> bool:
        r = httpx.get(f"{REPORTING}/v1/worklist", headers=TOKENS.auth(reader), timeout=10)
        return r.status_code == 200 and any(
            c["case_id"] == event.case_id for c in r.json()["cases"]
        )

    wait_for(f"{event.case_id} on {reader}'s worklist", listed, timeout=60)
    return event


def complete_draft(statements: list[dict[str, Any]], summary: str = "Agree") -> dict[str, Any]:
    """A draft that can be signed: every original statement confirmed, nothing changed."""
    return {
        "findings": "Findings as described; no additional abnormality.",
        "statements": [
            {"number": s["number"], "verdict": "confirmed", "comment": ""} for s in statements
        ],
        "assessment": {
            "diagnosis_changed": False,
            "severity_changed": False,
            "staging_changed": False,
            "summary": summary,
        },
        "recommendations": [{"type": "none"}],
    }


def sign_case(case_id: str, reader: str, draft: dict[str, Any] | None = None) -> dict[str, Any]:
    """Draft and sign ``case_id`` as ``reader`` through the API; the sign response."""
    auth = TOKENS.auth(reader)
    if draft is None:
        view = httpx.get(f"{REPORTING}/v1/cases/{case_id}", headers=auth, timeout=30)
        assert view.status_code == 200, view.text
        draft = complete_draft(view.json()["statements"])
    current = httpx.get(f"{REPORTING}/v1/cases/{case_id}/draft", headers=auth, timeout=30)
    if_match = {**auth, "If-Match": current.headers["etag"]}
    saved = httpx.put(f"{REPORTING}/v1/cases/{case_id}/draft", json=draft, headers=if_match)
    assert saved.status_code == 200, saved.text
    signed = httpx.post(
        f"{REPORTING}/v1/cases/{case_id}/report",
        json={"draft_version": saved.json()["version"]},
        headers={**auth, "Idempotency-Key": f"sign-{uuid.uuid4()}"},
        timeout=60,
    )
    assert signed.status_code == 201, signed.text
    result: dict[str, Any] = signed.json()
    return result


ORTHANC = "http://127.0.0.1:8042"


def archived_study() -> tuple[str, str, str]:
    """A small pseudonymous CT study stored straight into the archive (as deidentify would):
    its StudyInstanceUID, Orthanc study id and the pseudonym."""
    from tests.synthetic import Patient, ct_study

    pseudonym = f"SR{uuid.uuid4().hex[:12].upper()}"
    patient = Patient(name=f"{pseudonym}^ANON", patient_id=pseudonym, birth_date="",
                      accession="", address="", phone="", institution="")  # fmt: skip
    study_id = ""
    # what deidentify would leave: no referring physician, no comment naming anyone
    cleaned = {"ReferringPhysicianName": "", "ImageComments": ""}
    for data in ct_study(patient, count=2, seed=uuid.uuid4().hex, free_text=cleaned):
        r = httpx.post(f"{ORTHANC}/instances", content=data, timeout=30)
        r.raise_for_status()
        study_id = r.json()["ParentStudy"]
    uid = httpx.get(f"{ORTHANC}/studies/{study_id}", timeout=10).json()["MainDicomTags"][
        "StudyInstanceUID"
    ]
    return uid, study_id, pseudonym
