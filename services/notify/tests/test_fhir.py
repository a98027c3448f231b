"""The FHIR channel against a real FHIR receiving process (tests/fhir_receiver.py validates the
Bundle and every resource): the DiagnosticReport arrives with the hospital's patient identifier
and the delivery copy as a Binary, both valid to the HAPI FHIR validator; a resend creates
nothing new; a wrong token is refused."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from secondread_notify.channels.base import Message, SendFailed
from secondread_notify.channels.fhir import FhirChannel, FhirSender
from secondread_notify.identity import read_identity
from secondread_shared.events import ObjectRef, ReportSigned
from tests.processes import free_port, serving
from tests.reporting_documents import fhir_validate
from tests.synthetic import Patient, ct_study

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "hospital-fhir-token"
MRN_SYSTEM = "urn:oid:2.16.840.1.113883.3.9999.1"
FHIR = {  # the shape reporting publishes (pseudonymous subject, PDF inline)
    "resourceType": "DiagnosticReport",
    "id": "r1",
    "identifier": [{"system": "urn:secondread:report", "value": "r1"}],
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "18748-4"}]},
    "subject": {"identifier": {"system": "urn:secondread:pseudonym", "value": "SR0123"}},
    "conclusion": "No change",
    "presentedForm": [{"contentType": "application/pdf", "data": "JVBERi0="}],
}


@pytest.fixture
def fhir_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port, folder = free_port(), tmp_path / "fhir"
    command = [sys.executable, "-m", "tests.fhir_receiver", "--port", str(port),
               "--token", TOKEN, "--dir", str(folder)]  # fmt: skip
    url = f"http://127.0.0.1:{port}/fhir"
    with serving(command, url, cwd=ROOT):
        yield url, folder


def message() -> Message:
    event = ReportSigned(
        case_id="c1",
        producer="reporting",
        report_id="r1",
        radiologist_id="rad",
        signed_at=datetime.now(UTC),
        key_id="k",
        signature="c2ln",
        report=ObjectRef(bucket="b", key="k", sha256="0" * 64, size=1),
        assessment="No change",
    )
    return Message(
        event=event, canonical=b"{}", report={}, pdf=b"%PDF-1.4 signed",
        fhir=json.dumps(FHIR).encode(),
        idempotency_key="r1.fhir.physician", role="physician", recipient_name="",
        recipient_address="", identity=read_identity(ct_study(Patient(), count=1, size=4)[0]),
        delivery_pdf=b"%PDF-1.4 delivery copy",
    )  # fmt: skip


def channel(url: str, token: str = TOKEN) -> FhirChannel:
    return FhirChannel(base_url=url, token=token, patient_identifier_system=MRN_SYSTEM)  # type: ignore[arg-type]


async def test_the_report_arrives_valid_with_the_hospital_patient_and_once(
    fhir_server: tuple[str, Path],
) -> None:
    url, folder = fhir_server
    sender = FhirSender(channel(url))
    await sender.send(message())
    await sender.send(message())  # a resend: the conditional create finds the report
    [report] = [json.loads(p.read_text()) for p in folder.glob("DiagnosticReport-*.json")]
    assert report["subject"] == {"identifier": {"system": MRN_SYSTEM, "value": "MRN-4242-7781"}}
    assert report["identifier"] == [{"system": "urn:secondread:report", "value": "r1"}]
    assert report["conclusion"] == "No change"
    assert "SR0123" not in json.dumps(report)  # the pseudonym stays out of the hospital's copy
    binaries = [json.loads(p.read_text()) for p in folder.glob("Binary-*.json")]
    assert [base64.b64decode(b["data"]) for b in binaries[:1]] == [b"%PDF-1.4 delivery copy"]
    assert report["presentedForm"][0]["contentType"] == "application/pdf"
    # and both resources pass the HAPI FHIR validator (R4), a tool nobody here wrote
    code, messages = fhir_validate(sorted(folder.glob("*.json")))
    assert code == 0, messages


async def test_a_wrong_token_is_refused_for_good(fhir_server: tuple[str, Path]) -> None:
    url, _ = fhir_server
    with pytest.raises(SendFailed) as exc:
        await FhirSender(channel(url, token="wrong")).send(message())
    assert exc.value.permanent and exc.value.reason == "HTTP 401"
