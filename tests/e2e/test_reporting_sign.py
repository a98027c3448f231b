"""Drafts, signing, verification and addenda on the real stack, with Keycloak tokens."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from secondread_cli import kafka_tools
from secondread_shared import topics
from secondread_shared.events import RosterChanged
from secondread_shared.settings import CommonSettings
from secondread_shared.storage import ObjectStore
from tests.e2e.conftest import wait_for
from tests.e2e.identity import TOKENS
from tests.e2e.reporting_support import (
    KAFKA,
    ORTHANC,
    REPORTING,
    archived_study,
    publish,
    put_on_worklist,
)
from tests.reporting_documents import DRAFT, dciodvfy_errors, fhir_validate

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack")]

READER = "rad-okafor"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "secondread_cli.main", *args],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def objects(case_id: str) -> list[str]:
    store = ObjectStore.from_settings(CommonSettings())
    return sorted(asyncio.run(store.list_keys("secondread-reports", f"reports/{case_id}/")))


def put(case_id: str, body: dict[str, Any], if_match: str | None) -> httpx.Response:
    headers = TOKENS.auth(READER) | ({"If-Match": if_match} if if_match else {})
    return httpx.put(f"{REPORTING}/v1/cases/{case_id}/draft", json=body, headers=headers)


def sign(case_id: str, version: int, key: str) -> httpx.Response:
    return httpx.post(f"{REPORTING}/v1/cases/{case_id}/report", json={"draft_version": version},
                      headers={**TOKENS.auth(READER), "Idempotency-Key": key},
                      timeout=60)  # fmt: skip


@pytest.fixture(scope="module")
def signed_case() -> dict[str, Any]:
    """A case in an archived study, drafted (with a conflict on the way) and signed twice with
    the same Idempotency-Key."""
    uid, orthanc_id, pseudonym = archived_study()
    case = put_on_worklist(
        READER, study_instance_uids=[uid], orthanc_study_ids=[orthanc_id],
        patient_pseudonym=pseudonym, radiologist_certifications=["Clinical Radiology"],
        radiologist_licence="US",
    ).case_id  # fmt: skip
    auth = TOKENS.auth(READER)
    empty = httpx.get(f"{REPORTING}/v1/cases/{case}/draft", headers=auth)
    assert empty.status_code == 200 and empty.headers["etag"] == '"0"'
    first = put(case, {"findings": "first pass"}, None)
    assert first.status_code == 200 and first.headers["etag"] == '"1"'
    second = put(case, DRAFT, '"1"')
    assert second.status_code == 200 and second.json()["version"] == 2
    stale = put(case, {"findings": "from an old tab"}, '"1"')
    assert stale.status_code == 412, stale.text
    assert stale.json()["error"]["code"] == "stale_draft"
    assert put(case, {"findings": "no If-Match"}, None).status_code == 428
    kept = httpx.get(f"{REPORTING}/v1/cases/{case}/draft", headers=auth).json()
    assert kept["version"] == 2 and kept["draft"]["findings"] == DRAFT["findings"]
    operator = httpx.get(f"{REPORTING}/v1/cases/{case}/draft", headers=TOKENS.auth("ops-demo"))
    assert operator.status_code == 403

    key = f"sign-{uuid.uuid4()}"
    assert sign(case, 1, key).status_code == 412  # signing what the reader did not review
    one = sign(case, 2, key)
    assert one.status_code == 201, one.text
    written = objects(case)
    instances = httpx.get(f"{ORTHANC}/studies/{orthanc_id}/instances").json()
    again = sign(case, 2, key)
    assert again.status_code == 201 and again.json() == one.json()
    return {"case": case, "sign": one.json(), "objects": written, "orthanc_id": orthanc_id,
            "instances": instances, "uid": uid, "pseudonym": pseudonym}  # fmt: skip


def test_incomplete_drafts_cannot_be_signed_and_the_error_names_the_gaps() -> None:
    case = put_on_worklist(READER).case_id
    partial = {
        "findings": "Nodule.",
        "statements": [{"number": 1, "verdict": "revised", "comment": "larger"}],
        "assessment": {"summary": "Changed"},
    }
    v = put(case, partial, None).json()["version"]
    r = sign(case, v, f"k-{uuid.uuid4()}")
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "incomplete_report"
    assert error["missing"] == [
        "statement 1 RADPEER grade (revised)",
        "statement 2 verdict (confirmed, refined or revised)",
        "statement 3 verdict (confirmed, refined or revised)",
        "assessment.diagnosis_changed (yes or no)",
        "assessment.severity_changed (yes or no)",
        "assessment.staging_changed (yes or no)",
        "recommendations (at least one; 'none' when there is nothing to do)",
    ]
    assert "statement 1 RADPEER grade" in error["message"]
    httpx.post(f"{REPORTING}/v1/cases/{case}/decline", headers=TOKENS.auth(READER),
               json={"reason": "test clean-up"})  # fmt: skip


def test_a_retried_sign_returns_the_same_report_and_writes_once(
    signed_case: dict[str, Any],
) -> None:
    case, report_id = signed_case["case"], signed_case["sign"]["report_id"]
    assert objects(case) == signed_case["objects"]
    suffixes = ("fhir.json", "json", "pdf", "sig.json")
    assert signed_case["objects"] == [f"reports/{case}/{report_id}.{s}" for s in suffixes]
    after = httpx.get(f"{ORTHANC}/studies/{signed_case['orthanc_id']}/instances").json()
    assert after == signed_case["instances"]
    events = asyncio.run(kafka_tools.read_all(KAFKA, [topics.REPORT_SIGNED],
                                              lambda r: r.key == case))  # fmt: skip
    assert [json.loads(e.value)["report_id"] for e in events] == [report_id]
    other_key = sign(case, 2, f"sign-{uuid.uuid4()}")
    assert other_key.status_code == 409
    assert other_key.json()["error"]["code"] == "already_signed"


def test_verify_keys_and_the_cli_both_ways(signed_case: dict[str, Any], tmp_path: Path) -> None:
    report_id = signed_case["sign"]["report_id"]
    check = httpx.get(f"{REPORTING}/v1/reports/{report_id}/verify").json()  # no token needed
    assert check["valid"] is True and check["key_id"] == signed_case["sign"]["key_id"]
    assert check["signer"]["display_name"] == "Dr. B. Okafor"
    assert check["signed_at"] == signed_case["sign"]["signed_at"]
    keys = httpx.get(f"{REPORTING}/v1/keys").json()["keys"]
    [mine] = [k for k in keys if k["kid"] == check["key_id"]]
    assert mine["algorithm"] == "Ed25519" and mine["radiologist_id"] == READER
    assert mine["valid_from"] and "valid_until" in mine

    done = cli("verify", report_id)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "VALID" in done.stdout

    stored = httpx.get(f"{REPORTING}/v1/reports/{report_id}", headers=TOKENS.auth(READER)).json()
    report, sig = tmp_path / "report.json", tmp_path / "report.sig.json"
    report.write_text(json.dumps(stored["report"], indent=2))
    sig.write_text(json.dumps(stored["signature"]))
    (tmp_path / "keys.json").write_text(json.dumps({"keys": keys}))
    offline = ["verify", "--file", str(report), "--signature", str(sig)]
    assert cli(*offline, "--keys", str(tmp_path / "keys.json")).returncode == 0
    assert cli(*offline).returncode == 0  # the key from the published list

    tampered = dict(stored["report"])
    tampered["assessment"] = {**tampered["assessment"], "summary": "Agree: benign"}
    report.write_text(json.dumps(tampered))
    bad = cli(*offline, "--keys", str(tmp_path / "keys.json"))
    assert bad.returncode == 1 and "INVALID" in bad.stdout
    assert cli("verify", "no-such-report").returncode == 1


def test_the_signed_document_carries_the_model(signed_case: dict[str, Any]) -> None:
    report_id = signed_case["sign"]["report_id"]
    stored = httpx.get(f"{REPORTING}/v1/reports/{report_id}", headers=TOKENS.auth(READER))
    doc = stored.json()["report"]
    assert doc["schema_version"] == 1 and doc["kind"] == "report" and doc["amends"] is None
    assert [(s["number"], s["verdict"], s["grade"]) for s in doc["statements"]] == [
        (1, "refined", "2a"), (2, "confirmed", None), (3, "revised", "3b")]  # fmt: skip
    assert doc["recommendations"][0]["text"] == "Follow-up PET-CT in 2 weeks"
    assert doc["signer"] == {
        "radiologist_id": READER,
        "display_name": "Dr. B. Okafor",
        "credentials": "MBBS, FRCR",
        "certifications": ["Clinical Radiology"],
        "licence": "US",
        "key_fingerprint": doc["signer"]["key_fingerprint"],
    }
    other = httpx.get(f"{REPORTING}/v1/reports/{report_id}", headers=TOKENS.auth("rad-chen"))
    assert other.status_code == 403


def test_an_addendum_is_signed_cites_the_original_and_is_published(
    signed_case: dict[str, Any],
) -> None:
    original = signed_case["sign"]
    body = {
        "text": "Outside PET-CT reviewed: no FDG uptake in the nodule.",
        "assessment": {"diagnosis_changed": True, "severity_changed": True,
                       "staging_changed": False, "summary": "Downgraded: likely benign"},
        "recommendations": [{"type": "follow_up_imaging", "modality": "CT",
                             "interval": "3 months"}],
    }  # fmt: skip
    headers = {**TOKENS.auth(READER), "Idempotency-Key": f"add-{uuid.uuid4()}"}
    url = f"{REPORTING}/v1/reports/{original['report_id']}/addenda"
    r = httpx.post(url, json=body, headers=headers, timeout=60)
    assert r.status_code == 201, r.text
    add = r.json()
    assert add["kind"] == "addendum" and add["amends"] == original["report_id"]
    assert httpx.post(url, json=body, headers=headers, timeout=60).json() == add
    doc = httpx.get(f"{REPORTING}/v1/reports/{add['report_id']}",
                    headers=TOKENS.auth(READER)).json()["report"]  # fmt: skip
    assert doc["amends"] == {"report_id": original["report_id"], "sha256": original["sha256"]}
    assert httpx.get(f"{REPORTING}/v1/reports/{add['report_id']}/verify").json()["valid"]
    assert f"reports/{signed_case['case']}/{add['report_id']}.pdf" in objects(signed_case["case"])

    def published() -> list[dict[str, Any]]:
        case = signed_case["case"]
        recs = asyncio.run(
            kafka_tools.read_all(KAFKA, [topics.REPORT_SIGNED], lambda x: x.key == case)
        )
        values = [json.loads(x.value) for x in recs]
        return [v for v in values if v.get("kind") == "addendum"]

    [event] = wait_for("the addendum on report.signed", published)
    assert event["amends"] == original["report_id"] and event["report_id"] == add["report_id"]


def test_the_pdf_and_the_structured_report_are_new_series_of_the_case_study(
    signed_case: dict[str, Any], tmp_path: Path
) -> None:
    series = httpx.get(f"{ORTHANC}/studies/{signed_case['orthanc_id']}/series").json()
    assert {s["MainDicomTags"]["Modality"] for s in series} == {"CT", "DOC", "SR"}
    texts = []
    for s in series:
        modality = s["MainDicomTags"]["Modality"]
        if modality == "CT":
            continue
        [instance] = s["Instances"]  # one instance per report (and per addendum, if signed yet)
        data = httpx.get(f"{ORTHANC}/instances/{instance}/file").content
        tags = httpx.get(f"{ORTHANC}/instances/{instance}/simplified-tags").json()
        assert tags["StudyInstanceUID"] == signed_case["uid"]
        assert tags["PatientID"] == signed_case["pseudonym"]
        assert dciodvfy_errors(data, tmp_path) == [], modality
        texts.append(json.dumps(tags))
    assert any("Upgraded: suspicious for primary lung cancer" in t for t in texts)


def test_the_stored_fhir_resource_passes_the_hapi_validator(
    signed_case: dict[str, Any], tmp_path: Path
) -> None:
    case, report_id = signed_case["case"], signed_case["sign"]["report_id"]
    store = ObjectStore.from_settings(CommonSettings())
    data = asyncio.run(store.get("secondread-reports", f"reports/{case}/{report_id}.fhir.json"))
    resource = json.loads(data)
    assert resource["conclusion"] == "Upgraded: suspicious for primary lung cancer"
    assert resource["identifier"][0]["value"] == report_id
    assert resource["presentedForm"][0]["contentType"] == "application/pdf"
    path = tmp_path / "report.fhir.json"
    path.write_bytes(data)
    code, out = fhir_validate([path])
    assert code == 0, out


def test_a_roster_import_creates_the_readers_keys_before_their_first_report() -> None:
    reader = f"rad-keys-{uuid.uuid4().hex[:8]}"
    publish(RosterChanged(producer="tests", readers=[reader]))

    def listed() -> list[dict[str, Any]]:
        keys = httpx.get(f"{REPORTING}/v1/keys").json()["keys"]
        return [k for k in keys if k["radiologist_id"] == reader]

    [key] = wait_for(f"a signing key for {reader}", listed, timeout=60)
    assert key["algorithm"] == "Ed25519" and len(key["kid"]) == 16
    assert httpx.get(f"{REPORTING}/v1/keys/{key['kid']}").json() == key


def test_concurrent_signs_with_different_keys_make_one_report() -> None:
    from concurrent.futures import ThreadPoolExecutor

    case = put_on_worklist(READER).case_id
    v = put(case, DRAFT, None).json()["version"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda i: sign(case, v, f"race-{i}-{uuid.uuid4()}"), range(4)))
    assert {a.status_code for a in answers} <= {201, 409}, [a.text for a in answers]
    ids = {a.json()["report_id"] for a in answers if a.status_code == 201}
    assert len(ids) == 1
    [report_id] = ids
    suffixes = ("fhir.json", "json", "pdf", "sig.json")
    assert objects(case) == [f"reports/{case}/{report_id}.{s}" for s in suffixes]

    def signed_events() -> list[bytes]:
        recs = asyncio.run(
            kafka_tools.read_all(KAFKA, [topics.REPORT_SIGNED], lambda r: r.key == case)
        )
        return [r.value for r in recs]

    assert len(wait_for("report.signed", signed_events)) == 1
