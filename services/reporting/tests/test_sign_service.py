"""Drafts, signing and addenda against in-memory fakes: retries, a failure halfway, gaps."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from secondread_reporting.errors import (
    Conflict,
    Forbidden,
    IncompleteReport,
    InvalidInput,
    PreconditionFailed,
    PreconditionRequired,
)
from secondread_reporting.ports import Attempt, CaseRow, CaseStatus, Draft, Written
from secondread_reporting.report import AddendumContent, DraftContent
from secondread_reporting.service import Reporting
from secondread_reporting.signing import key_id, public_raw, sha256_hex, verify_document
from secondread_shared.events import EarlierOpinion, Event, ObjectRef, ReportSigned
from tests.reporting_documents import DRAFT, assigned


class Clock:
    def now(self) -> datetime:
        return datetime(2026, 12, 1, 12, tzinfo=UTC)


class Store:
    """One fake for the case, draft, signature and key ports."""

    def __init__(self) -> None:
        a = assigned()
        self.rows = {a.case_id: CaseRow(a.case_id, a.radiologist_id, CaseStatus.ACCEPTED, a, {})}
        self.drafts: dict[str, Draft] = {}
        self.attempts: dict[str, Attempt] = {}
        self.bound: dict[tuple[str, str], tuple[str, str]] = {}
        self.reports: dict[str, dict[str, Any]] = {}
        self.events: list[Event] = []
        self.private: dict[str, Ed25519PrivateKey] = {}

    async def case(self, case_id: str) -> CaseRow | None:
        return self.rows.get(case_id)

    async def open_cases(self, radiologist_id: str) -> list[CaseRow]:
        return [r for r in self.rows.values() if r.radiologist_id == radiologist_id]

    async def set_status(self, *args: Any) -> bool:
        return True

    async def draft(self, case_id: str) -> Draft | None:
        return self.drafts.get(case_id)

    async def save_draft(
        self, case_id: str, reader: str, content: DraftContent, expected: int | None
    ) -> int | None:
        current = self.drafts.get(case_id)
        if (current.version if current else None) != expected:
            return None
        version = (expected or 0) + 1
        self.drafts[case_id] = Draft(version, content)
        return version

    async def signed_report(self, case_id: str) -> dict[str, Any] | None:
        return next((r for r in self.reports.values() if r["case_id"] == case_id
                     and r["kind"] == "report"), None)  # fmt: skip

    async def report(self, report_id: str) -> dict[str, Any] | None:
        return self.reports.get(report_id)

    async def addenda(self, report_id: str) -> list[str]:
        return [r["report_id"] for r in self.reports.values() if r["amends"] == report_id]

    async def attempt_for_key(self, case_id: str, key: str) -> tuple[Attempt, str] | None:
        found = self.bound.get((case_id, key))
        return None if found is None else (self.attempts[found[0]], found[1])

    async def pending_attempt(self, case_id: str) -> Attempt | None:
        return next((a for a in self.attempts.values() if a.case_id == case_id
                     and a.kind == "report" and not a.completed), None)  # fmt: skip

    async def save_attempt(self, attempt: Attempt, key: str, request: str) -> None:
        self.attempts[attempt.report_id] = attempt
        await self.bind_key(attempt, key, request)

    async def bind_key(self, attempt: Attempt, key: str, request: str) -> None:
        self.bound.setdefault((attempt.case_id, key), (attempt.report_id, request))

    async def set_archive_ids(self, report_id: str, ids: list[str]) -> None:
        self.attempts[report_id] = replace(self.attempts[report_id], archive_ids=ids)

    async def record_signed(
        self, attempt: Attempt, *, object_key: str, events: list[Event]
    ) -> bool:
        if self.attempts[attempt.report_id].completed:
            return False
        self.attempts[attempt.report_id] = replace(attempt, completed=True)
        self.reports[attempt.report_id] = {
            "report_id": attempt.report_id, "case_id": attempt.case_id, "kind": attempt.kind,
            "key_id": attempt.key_id, "canonical": attempt.canonical,
            "signature": attempt.signature, "signed_at": attempt.signed_at,
            "radiologist_id": attempt.radiologist_id, "amends": attempt.amends,
        }  # fmt: skip
        self.events += events
        return True

    async def signing_key(self, radiologist_id: str) -> Ed25519PrivateKey:
        return self.private.setdefault(radiologist_id, Ed25519PrivateKey.generate())

    async def public_key(self, kid: str) -> tuple[str, bytes] | None:
        for reader, k in self.private.items():
            if key_id(k.public_key()) == kid:
                return reader, public_raw(k.public_key())
        return None

    async def keys(self) -> list[dict[str, Any]]:
        return []


class Outputs:
    """Objects by name; ``fail_at`` makes the n-th write fail once (a crash halfway)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.writes = 0
        self.fail_at: int | None = None
        self.removed: list[str] = []

    async def write(self, attempt: Attempt, document: dict[str, Any], fingerprint: str) -> Written:
        refs = []
        for suffix in ("json", "sig.json", "pdf", "fhir.json"):
            self.writes += 1
            if self.fail_at == self.writes:
                self.fail_at = None
                raise ConnectionError("the store went away")
            key = f"reports/{attempt.case_id}/{attempt.report_id}.{suffix}"
            self.objects[key] = attempt.canonical
            refs.append(ObjectRef(bucket="b", key=key, sha256="0" * 64, size=1))
        archive = [f"orthanc-{attempt.report_id}-{sha256_hex(attempt.canonical)[:6]}"]
        self.objects[archive[0]] = b""
        return Written(report=refs[0], signature=refs[1], pdf=refs[2], fhir=refs[3],
                       archive_ids=archive)  # fmt: skip

    async def remove_archived(self, archive_ids: list[str]) -> None:
        for a in archive_ids:
            self.objects.pop(a, None)
            self.removed.append(a)


@pytest.fixture
def parts() -> tuple[Store, Outputs, Reporting]:
    store, outputs = Store(), Outputs()
    reporting = Reporting(cases=store, clock=Clock(), viewer_base_url="v/", drafts=store,
                          signatures=store, keys=store, outputs=outputs)  # fmt: skip
    return store, outputs, reporting


async def test_draft_versions_and_stale_writes(parts: tuple[Store, Outputs, Reporting]) -> None:
    _, _, rep = parts
    assert await rep.get_draft("c-1", "rad-okafor") == (0, DraftContent().model_dump(mode="json"))
    assert await rep.put_draft("c-1", "rad-okafor", DraftContent(findings="a"), None) == 1
    with pytest.raises(PreconditionRequired):
        await rep.put_draft("c-1", "rad-okafor", DraftContent(findings="b"), None)
    assert await rep.put_draft("c-1", "rad-okafor", DraftContent(findings="b"), 1) == 2
    with pytest.raises(PreconditionFailed, match="version 2, not 1"):
        await rep.put_draft("c-1", "rad-okafor", DraftContent(findings="c"), 1)


async def test_signing_names_every_gap(parts: tuple[Store, Outputs, Reporting]) -> None:
    _, _, rep = parts
    ungraded = {"number": 3, "verdict": "revised", "comment": "no grade"}
    statements = [DRAFT["statements"][0], ungraded]
    partial = {**DRAFT, "statements": statements, "assessment": {"summary": ""}}
    v = await rep.put_draft("c-1", "rad-okafor", DraftContent.model_validate(partial), None)
    with pytest.raises(IncompleteReport) as err:
        await rep.sign("c-1", "rad-okafor", v, "k1")
    assert err.value.missing == [
        "statement 2 verdict (confirmed, refined or revised)",
        "statement 3 RADPEER grade (revised)",
        "assessment.diagnosis_changed (yes or no)",
        "assessment.severity_changed (yes or no)",
        "assessment.staging_changed (yes or no)",
        "assessment.summary",
    ]


async def test_a_retried_sign_returns_the_same_report_and_writes_once(
    parts: tuple[Store, Outputs, Reporting],
) -> None:
    store, outputs, rep = parts
    v = await rep.put_draft("c-1", "rad-okafor", DraftContent.model_validate(DRAFT), None)
    with pytest.raises(PreconditionFailed):
        await rep.sign("c-1", "rad-okafor", v + 1, "k1")
    first = await rep.sign("c-1", "rad-okafor", v, "k1")
    writes = outputs.writes
    again = await rep.sign("c-1", "rad-okafor", v, "k1")
    assert again == first and outputs.writes == writes
    assert len([e for e in store.events if isinstance(e, ReportSigned)]) == 1
    with pytest.raises(Conflict, match="addenda"):
        await rep.sign("c-1", "rad-okafor", v, "another-key")
    with pytest.raises(InvalidInput, match="another request"):
        await rep.sign("c-1", "rad-okafor", v + 1, "k1")
    doc = json.loads(store.reports[first["report_id"]]["canonical"])
    assert doc["signer"]["display_name"] == "Dr. B. Okafor" and doc["schema_version"] == 1
    public = base64.b64encode((await store.public_key(first["key_id"]))[1]).decode()  # type: ignore[index]
    assert verify_document(doc, first["signature"], public)
    assert not verify_document({**doc, "findings": "nothing"}, first["signature"], public)


async def test_a_failure_halfway_is_finished_by_the_next_sign_without_orphans(
    parts: tuple[Store, Outputs, Reporting],
) -> None:
    store, outputs, rep = parts
    v = await rep.put_draft("c-1", "rad-okafor", DraftContent.model_validate(DRAFT), None)
    outputs.fail_at = 3  # the PDF write fails
    with pytest.raises(ConnectionError):
        await rep.sign("c-1", "rad-okafor", v, "k1")
    assert store.reports == {} and store.events == []
    # the client lost its key: a new one finishes the same report
    done = await rep.sign("c-1", "rad-okafor", v, "k2")
    assert len(store.reports) == 1 and done["report_id"] in store.reports
    assert sorted(outputs.objects) == sorted(
        [f"reports/c-1/{done['report_id']}.{s}" for s in ("json", "sig.json", "pdf", "fhir.json")]
        + [f"orthanc-{done['report_id']}-{done['sha256'][:6]}"]
    )


async def test_a_changed_draft_after_a_failure_reuses_the_id_and_removes_the_old_archive(
    parts: tuple[Store, Outputs, Reporting],
) -> None:
    store, outputs, rep = parts
    v = await rep.put_draft("c-1", "rad-okafor", DraftContent.model_validate(DRAFT), None)
    # every output is written, then the process dies before the signature is recorded
    store_attempts_before = dict(store.attempts)
    real_record = store.record_signed

    async def crash(*a: Any, **k: Any) -> bool:
        raise ConnectionError("database went away")

    store.record_signed = crash  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await rep.sign("c-1", "rad-okafor", v, "k1")
    store.record_signed = real_record  # type: ignore[method-assign]
    [pending] = [a for a in store.attempts.values() if a not in store_attempts_before.values()]
    old_archive = pending.archive_ids
    assert old_archive and old_archive[0] in outputs.objects
    edited = {**DRAFT, "findings": "edited after the failure"}
    v2 = await rep.put_draft("c-1", "rad-okafor", DraftContent.model_validate(edited), v)
    done = await rep.sign("c-1", "rad-okafor", v2, "k3")
    assert done["report_id"] == pending.report_id
    assert outputs.removed == old_archive and old_archive[0] not in outputs.objects
    doc = json.loads(store.reports[done["report_id"]]["canonical"])
    assert doc["findings"] == "edited after the failure" and doc["draft_version"] == v2


async def test_an_addendum_cites_the_original_and_is_published_as_such(
    parts: tuple[Store, Outputs, Reporting],
) -> None:
    store, _, rep = parts
    v = await rep.put_draft("c-1", "rad-okafor", DraftContent.model_validate(DRAFT), None)
    first = await rep.sign("c-1", "rad-okafor", v, "k1")
    content = AddendumContent.model_validate({
        "text": "Comparison with the outside PET: no uptake.",
        "assessment": {"diagnosis_changed": True, "severity_changed": False,
                       "staging_changed": False, "summary": "Downgraded: likely benign"},
        "recommendations": [{"type": "follow_up_imaging", "modality": "CT",
                             "interval": "3 months"}],
    })  # fmt: skip
    add = await rep.addend(first["report_id"], "rad-okafor", content, "a1")
    assert await rep.addend(first["report_id"], "rad-okafor", content, "a1") == add
    doc = json.loads(store.reports[add["report_id"]]["canonical"])
    assert doc["kind"] == "addendum"
    assert doc["amends"] == {"report_id": first["report_id"], "sha256": first["sha256"]}
    [event] = [e for e in store.events if isinstance(e, ReportSigned) and e.kind == "addendum"]
    assert event.amends == first["report_id"]
    check = await rep.verify(add["report_id"])
    assert check["valid"] and check["kind"] == "addendum"


async def test_an_earlier_opinion_opens_for_the_reader_of_the_patients_next_case(
    parts: tuple[Store, Outputs, Reporting],
) -> None:
    store, _, rep = parts
    v = await rep.put_draft("c-1", "rad-okafor", DraftContent.model_validate(DRAFT), None)
    first = await rep.sign("c-1", "rad-okafor", v, "k1")
    with pytest.raises(Forbidden):
        await rep.signed(first["report_id"], "rad-chen")
    opinion = EarlierOpinion(case_id="c-1", report_id=first["report_id"],
                             radiologist_id="rad-okafor", signed_at=Clock().now())  # fmt: skip
    later = assigned(case_id="c-2", radiologist_id="rad-chen", earlier_opinions=[opinion])
    store.rows["c-2"] = CaseRow("c-2", "rad-chen", CaseStatus.ASSIGNED, later, {})
    opened = await rep.signed(first["report_id"], "rad-chen")
    assert opened["report"]["report_id"] == first["report_id"]


async def test_the_case_view_names_the_signed_report_and_its_addenda(
    parts: tuple[Store, Outputs, Reporting],
) -> None:
    _, _, rep = parts
    before = await rep.case_view("c-1", "rad-okafor")
    assert before["report"] is None
    assert before["signer"]["display_name"] == "Dr. B. Okafor"
    v = await rep.put_draft("c-1", "rad-okafor", DraftContent.model_validate(DRAFT), None)
    signed = await rep.sign("c-1", "rad-okafor", v, "k1")
    note = AddendumContent.model_validate(
        {"text": "size corrected", "assessment": DRAFT["assessment"]}
    )
    added = await rep.addend(signed["report_id"], "rad-okafor", note, "k2")
    summary = (await rep.case_view("c-1", "rad-okafor"))["report"]
    assert summary["report_id"] == signed["report_id"]
    assert summary["signed_at"] == signed["signed_at"]
    assert [a["report_id"] for a in summary["addenda"]] == [added["report_id"]]


async def test_still_missing_says_what_a_sign_would_refuse(
    parts: tuple[Store, Outputs, Reporting],
) -> None:
    _, _, rep = parts
    half = {**DRAFT, "recommendations": [{"type": "follow_up_imaging", "modality": "CT"},
                                         {"type": "referral"}]}  # fmt: skip
    content = DraftContent.model_validate(half)
    gaps = [
        "recommendation 1 (follow_up_imaging) interval",
        "recommendation 2 (referral) specialty",
    ]
    assert await rep.still_missing("c-1", "rad-okafor", content) == gaps
    v = await rep.put_draft("c-1", "rad-okafor", content, None)  # a draft may be incomplete
    with pytest.raises(IncompleteReport) as err:
        await rep.sign("c-1", "rad-okafor", v, "k1")
    assert err.value.missing == gaps
    assert await rep.still_missing("c-1", "rad-okafor", DraftContent.model_validate(DRAFT)) == []
