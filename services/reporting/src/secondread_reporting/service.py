"""reporting's use cases, in the order a reader meets them: worklist, case view, accept or
decline, draft, sign, addend; and verification, which anyone may run. Written against the ports
in :mod:`secondread_reporting.ports`; no HTTP, no Kafka."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from secondread_reporting.dicomweb import Forward, plan, viewer_url
from secondread_reporting.errors import (
    Conflict,
    Forbidden,
    IncompleteReport,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
)
from secondread_reporting.ports import (
    JSON,
    OPEN,
    Attempt,
    CaseRow,
    Cases,
    CaseStatus,
    Clock,
    Drafts,
    Keys,
    Outputs,
    Signatures,
    Studies,
)
from secondread_reporting.report import (
    AddendumContent,
    DraftContent,
    addendum_document,
    addendum_missing,
    missing,
    report_document,
    signer_block,
)
from secondread_reporting.signing import (
    ALGORITHM,
    canonical_bytes,
    fingerprint,
    key_id,
    public_raw,
    sha256_hex,
    sign,
    signature_file,
    verify,
)
from secondread_reporting.statements import split_statements
from secondread_shared.events import (
    CaseAccepted,
    CaseDeclined,
    CaseState,
    CaseStatusChanged,
    Event,
    Priority,
    ReportSigned,
    new_id,
)

PRIORITY_RANK = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.ROUTINE: 2}


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def reader_case(cases: Cases, case_id: str, reader: str) -> CaseRow:
    """The case if it is assigned to ``reader``: 404 when unknown, 403 (no data) otherwise."""
    row = await cases.case(case_id)
    if row is None:
        raise NotFound(f"no case {case_id}")
    if row.radiologist_id != reader:
        raise Forbidden(f"case {case_id} is not assigned to you")
    return row


def time_left(due: datetime, now: datetime) -> str:
    """``3 h 05 min`` before the due time, ``overdue 12 min`` after it."""
    seconds = int((due - now).total_seconds())
    minutes = abs(seconds) // 60
    text = f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
    return text if seconds >= 0 else f"overdue {text}"


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(header: str | None) -> int | None:
    """The draft version an ``If-Match`` header names (RFC 9110, 13.1.1); None when absent."""
    if header is None:
        return None
    value = header.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise InvalidInput(f"If-Match {header!r} is not a draft version ETag", code="bad_etag")
    return int(value)


@dataclass(frozen=True)
class Reporting:
    """The use cases, bound to their ports."""

    cases: Cases
    clock: Clock
    viewer_base_url: str
    drafts: Drafts | None = None
    signatures: Signatures | None = None
    keys: Keys | None = None
    outputs: Outputs | None = None
    studies: Studies | None = None

    def _ports(self) -> tuple[Drafts, Signatures, Keys, Outputs]:
        assert self.drafts and self.signatures and self.keys and self.outputs
        return self.drafts, self.signatures, self.keys, self.outputs

    async def worklist(self, reader: str) -> list[JSON]:
        """The reader's open cases: by priority (urgent, high, routine), then due time."""
        now = self.clock.now()
        rows = await self.cases.open_cases(reader)
        rows.sort(key=lambda r: (PRIORITY_RANK[r.assigned.priority], r.assigned.due_at))
        return [
            {
                "case_id": r.case_id,
                "priority": r.assigned.priority.value,
                "urgency": r.assigned.urgency.value,
                "subspecialty": r.assigned.subspecialty,
                "due_at": r.assigned.due_at.isoformat(),
                "time_left": time_left(r.assigned.due_at, now),
                "seconds_left": int((r.assigned.due_at - now).total_seconds()),
                "accept_by": r.assigned.accept_by.isoformat() if r.assigned.accept_by else None,
                "status": r.status.value,
                "flags": r.assigned.flags,
            }
            for r in rows
        ]

    async def case_view(self, case_id: str, reader: str) -> JSON:
        """What the reader needs to answer: the question, the original report as numbered
        statements, the triage flags, the priors and earlier opinions with viewer links
        (``viewer_url``: the viewer on the case's studies and its priors, side by side)."""
        row = await reader_case(self.cases, case_id, reader)
        a = row.assigned
        base = self.viewer_base_url
        study_of = {p.study_instance_uid: p.orthanc_study_id for p in a.priors}
        return {
            "case_id": case_id,
            "status": row.status.value,
            "priority": a.priority.value,
            "urgency": a.urgency.value,
            "due_at": a.due_at.isoformat(),
            "time_left": time_left(a.due_at, self.clock.now()),
            "subspecialty": a.subspecialty,
            "patient_pseudonym": a.patient_pseudonym,
            "clinical_question": a.clinical_question,
            "original_report": a.original_report,
            "statements": [
                {"number": s.number, "section": s.section, "text": s.text}
                for s in split_statements(a.original_report)
            ],
            "flags": a.flags,
            "viewer_url": viewer_url(base, [*a.study_instance_uids,
                                            *(p.study_instance_uid for p in a.priors)]),
            "viewer_links": [viewer_url(base, [u]) for u in a.study_instance_uids],
            "priors": [
                {**p.model_dump(mode="json"),
                 "viewer_link": viewer_url(base, [*a.study_instance_uids, p.study_instance_uid])}
                for p in a.priors
            ],
            "earlier_opinions": [
                {
                    **o.model_dump(mode="json"),
                    "report_link": f"/v1/reports/{o.report_id}",
                }
                for o in a.earlier_opinions
            ],
            "studies": [{"study_instance_uid": u, "orthanc_study_id": study_of.get(u)}
                        for u in a.study_instance_uids],
            "signer": signer_block(a),
            "report": await self._signed_summary(case_id),
        }  # fmt: skip

    async def _signed_summary(self, case_id: str) -> JSON | None:
        """The case's signed report and its addenda (ids and times), None before signing."""
        if self.signatures is None:
            return None
        found = await self.signatures.signed_report(case_id)
        if found is None:
            return None
        addenda = []
        for addendum_id in await self.signatures.addenda(str(found["report_id"])):
            row = await self.signatures.report(addendum_id)
            if row is not None:
                addenda.append(
                    {"report_id": addendum_id, "signed_at": row["signed_at"].isoformat()}
                )
        return {
            "report_id": str(found["report_id"]),
            "signed_at": found["signed_at"].isoformat(),
            "addenda": addenda,
        }

    # ---- the viewer's DICOMweb -------------------------------------------------------------

    async def readable_studies(self, reader: str) -> frozenset[str]:
        """The StudyInstanceUIDs ``reader`` may open in the viewer: for each of their open
        cases, its studies (which also hold its signed second-opinion objects), its priors, and
        the studies of the earlier cases whose signed opinions it lists."""
        assert self.studies is not None, "the viewer's proxy needs the Studies port"
        uids: set[str] = set()
        earlier: set[str] = set()
        for case in await self.studies.open_case_studies(reader):
            uids.update(case.studies)
            uids.update(case.priors)
            earlier.update(case.earlier_cases)
        for studies in (await self.studies.studies_of(sorted(earlier))).values():
            uids.update(studies)
        return frozenset(u for u in uids if u)

    async def dicomweb_plan(
        self, reader: str, path: str, query: Sequence[tuple[str, str]]
    ) -> Forward:
        """What the archive's DICOMweb is asked for ``reader``'s request (403 for a study that
        is not theirs); see :func:`secondread_reporting.dicomweb.plan`."""
        return plan(path, query, await self.readable_studies(reader))

    async def accept(self, case_id: str, reader: str) -> JSON:
        """Take the case (routing stops its accept timer). Accepting twice is a no-op."""
        row = await reader_case(self.cases, case_id, reader)
        if row.status == CaseStatus.ACCEPTED:
            return {"case_id": case_id, "status": row.status.value}
        if row.status != CaseStatus.ASSIGNED:
            raise Conflict(f"case {case_id} is {row.status.value}", code="not_open")
        event = CaseAccepted(case_id=case_id, producer="reporting", radiologist_id=reader)
        if not await self.cases.set_status(case_id, row.status, CaseStatus.ACCEPTED, [event]):
            raise Conflict(f"case {case_id} changed meanwhile; reload it", code="not_open")
        return {"case_id": case_id, "status": CaseStatus.ACCEPTED.value}

    async def decline(self, case_id: str, reader: str, reason: str) -> JSON:
        """Give the case back with a reason; routing assigns it to someone else."""
        reason = reason.strip()
        if not reason:
            raise InvalidInput("a decline needs a reason", code="reason_missing")
        row = await reader_case(self.cases, case_id, reader)
        if row.status not in OPEN:
            raise Conflict(f"case {case_id} is {row.status.value}", code="not_open")
        event = CaseDeclined(
            case_id=case_id, producer="reporting", radiologist_id=reader, reason=reason
        )
        if not await self.cases.set_status(case_id, row.status, CaseStatus.DECLINED, [event]):
            raise Conflict(f"case {case_id} changed meanwhile; reload it", code="not_open")
        return {"case_id": case_id, "status": CaseStatus.DECLINED.value}

    # ---- drafts ----------------------------------------------------------------------------

    async def get_draft(self, case_id: str, reader: str) -> tuple[int, JSON]:
        """The reader's draft and its version (version 0 and an empty draft before the first
        save)."""
        drafts = self._ports()[0]
        await reader_case(self.cases, case_id, reader)
        draft = await drafts.draft(case_id)
        if draft is None:
            return 0, DraftContent().model_dump(mode="json")
        return draft.version, draft.content.model_dump(mode="json")

    async def still_missing(self, case_id: str, reader: str, content: DraftContent) -> list[str]:
        """What ``content`` still lacks before it can be signed (what a sign would answer in
        its 422), so a page can say so while the reader works."""
        row = await reader_case(self.cases, case_id, reader)
        return missing(content, split_statements(row.assigned.original_report))

    async def put_draft(
        self, case_id: str, reader: str, content: DraftContent, if_match: int | None
    ) -> int:
        """Save the draft if the client saw its current version; the new version.

        The first save needs no ``If-Match`` (or ``"0"``); every later one must name the version
        it replaces, and a stale one is refused (412) naming the current version.
        """
        drafts = self._ports()[0]
        row = await reader_case(self.cases, case_id, reader)
        if row.status not in OPEN:
            raise Conflict(f"case {case_id} is {row.status.value}", code="not_open")
        current = await drafts.draft(case_id)
        expected = None if if_match in (None, 0) else if_match
        if current is not None and if_match is None:
            raise PreconditionRequired(
                f"the draft exists (version {current.version}); send If-Match: "
                f"{etag(current.version)}"
            )
        version = await drafts.save_draft(case_id, reader, content, expected)
        if version is None:
            now = await drafts.draft(case_id)
            raise PreconditionFailed(
                f"the draft is at version {now.version if now else 0}, not {if_match}; "
                "reload it and apply your change again"
            )
        return version

    # ---- signing ---------------------------------------------------------------------------

    async def sign(
        self, case_id: str, reader: str, draft_version: int, idempotency_key: str
    ) -> JSON:
        """Sign the draft at ``draft_version``. The same ``Idempotency-Key`` returns the same
        report and writes nothing twice; a sign that failed halfway is finished by the next."""
        drafts, signatures, keys, _ = self._ports()
        if not idempotency_key.strip():
            raise InvalidInput("send an Idempotency-Key header", code="idempotency_key_missing")
        row = await reader_case(self.cases, case_id, reader)
        request = f"sign:{draft_version}"
        bound = await signatures.attempt_for_key(case_id, idempotency_key)
        if bound is not None:
            attempt, first_request = bound
            if first_request != request:
                raise InvalidInput(
                    "this Idempotency-Key was used for another request", code="idempotency_reuse"
                )
            if attempt.completed:
                return self._result(attempt)
            return await self._finish(attempt, row)
        if await signatures.signed_report(case_id) is not None:
            raise Conflict(
                f"case {case_id} already has a signed report; corrections are addenda",
                code="already_signed",
            )
        draft = await drafts.draft(case_id)
        if draft is None:
            raise IncompleteReport(["a draft (PUT /v1/cases/{id}/draft)"])
        if draft.version != draft_version:
            raise PreconditionFailed(
                f"the draft is at version {draft.version}, not {draft_version}; review it again"
            )
        original = split_statements(row.assigned.original_report)
        gaps = missing(draft.content, original)
        if gaps:
            raise IncompleteReport(gaps)
        pending = await signatures.pending_attempt(case_id)
        if pending is not None and pending.draft_version == draft_version:
            await signatures.bind_key(pending, idempotency_key, request)
            return await self._finish(pending, row)
        if pending is not None:  # the draft changed after a sign that failed halfway
            await self._ports()[3].remove_archived(pending.archive_ids)
        private = await keys.signing_key(reader)
        kid = key_id(private.public_key())
        report_id = pending.report_id if pending else new_id()
        signed_at = self.clock.now()
        document = report_document(
            report_id=report_id,
            assigned=row.assigned,
            original=original,
            draft=draft.content,
            draft_version=draft_version,
            signed_at=signed_at,
            key_id=kid,
            key_fingerprint=fingerprint(private.public_key()),
        )
        canonical = canonical_bytes(document)
        attempt = Attempt(
            report_id=report_id,
            case_id=case_id,
            kind="report",
            amends=None,
            radiologist_id=reader,
            draft_version=draft_version,
            key_id=kid,
            canonical=canonical,
            signature=sign(private, canonical),
            signed_at=signed_at,
            archive_ids=[],
        )
        await signatures.save_attempt(attempt, idempotency_key, request)
        return await self._finish(attempt, row)

    async def addend(
        self, report_id: str, reader: str, content: AddendumContent, idempotency_key: str
    ) -> JSON:
        """Sign an addendum to a signed report: its own document citing the original's id and
        hash, its own outputs, published with ``kind: addendum``."""
        _, signatures, keys, _ = self._ports()
        if not idempotency_key.strip():
            raise InvalidInput("send an Idempotency-Key header", code="idempotency_key_missing")
        original = await signatures.report(report_id)
        if original is None:
            raise NotFound(f"no report {report_id}")
        row = await reader_case(self.cases, str(original["case_id"]), reader)
        request = f"addendum:{report_id}:{sha256_hex(content.model_dump_json().encode())}"
        bound = await signatures.attempt_for_key(row.case_id, idempotency_key)
        if bound is not None:
            attempt, first_request = bound
            if first_request != request:
                raise InvalidInput(
                    "this Idempotency-Key was used for another request", code="idempotency_reuse"
                )
            return self._result(attempt) if attempt.completed else await self._finish(attempt, row)
        gaps = addendum_missing(content)
        if gaps:
            raise IncompleteReport(gaps)
        private = await keys.signing_key(reader)
        kid = key_id(private.public_key())
        signed_at = self.clock.now()
        document = addendum_document(
            report_id=new_id(),
            original=json.loads(bytes(original["canonical"])),
            original_sha256=sha256_hex(bytes(original["canonical"])),
            assigned=row.assigned,
            content=content,
            signed_at=signed_at,
            key_id=kid,
            key_fingerprint=fingerprint(private.public_key()),
        )
        canonical = canonical_bytes(document)
        attempt = Attempt(
            report_id=str(document["report_id"]),
            case_id=row.case_id,
            kind="addendum",
            amends=report_id,
            radiologist_id=reader,
            draft_version=0,
            key_id=kid,
            canonical=canonical,
            signature=sign(private, canonical),
            signed_at=signed_at,
            archive_ids=[],
        )
        await signatures.save_attempt(attempt, idempotency_key, request)
        return await self._finish(attempt, row)

    async def _finish(self, attempt: Attempt, row: CaseRow) -> JSON:
        """Write the outputs (same names on every try), then record the signature and its
        events in one transaction."""
        _, signatures, keys, outputs = self._ports()
        document: dict[str, Any] = json.loads(attempt.canonical)
        found = await keys.public_key(attempt.key_id)
        assert found is not None, "a signing key is stored before it signs"
        public = Ed25519PublicKey.from_public_bytes(found[1])
        written = await outputs.write(attempt, document, fingerprint(public))
        await signatures.set_archive_ids(attempt.report_id, written.archive_ids)
        event = ReportSigned(
            case_id=attempt.case_id,
            producer="reporting",
            report_id=attempt.report_id,
            radiologist_id=attempt.radiologist_id,
            signed_at=attempt.signed_at,
            key_id=attempt.key_id,
            signature=attempt.signature,
            report=written.report,
            assessment=str(document["assessment"]["summary"]),
            pdf=written.pdf,
            fhir=written.fhir,
            archive_instance_id=written.archive_ids[0] if written.archive_ids else "",
            kind="addendum" if attempt.kind == "addendum" else "report",
            amends=attempt.amends,
        )
        events: list[Event] = [event]
        if attempt.kind == "report":
            name = row.assigned.radiologist_name or attempt.radiologist_id
            events.append(
                CaseStatusChanged(
                    case_id=attempt.case_id,
                    producer="reporting",
                    causation_id=event.event_id,
                    state=CaseState.SIGNED,
                    detail=f"signed by {name}",
                )
            )
        await signatures.record_signed(attempt, object_key=written.report.key, events=events)
        return self._result(attempt)

    @staticmethod
    def _result(attempt: Attempt) -> JSON:
        return {
            "report_id": attempt.report_id,
            "kind": attempt.kind,
            "amends": attempt.amends,
            "key_id": attempt.key_id,
            "algorithm": ALGORITHM,
            "signature": attempt.signature,
            "sha256": sha256_hex(attempt.canonical),
            "signed_at": attempt.signed_at.isoformat(),
        }

    # ---- reading and verifying -------------------------------------------------------------

    async def signed(self, report_id: str, reader: str) -> JSON:
        """A signed report with its signature file: for the reader of its case, and for a
        reader whose open case lists it among the patient's earlier opinions."""
        _, signatures, _, _ = self._ports()
        row = await signatures.report(report_id)
        if row is None:
            raise NotFound(f"no report {report_id}")
        if not await self._cites(reader, report_id):
            await reader_case(self.cases, str(row["case_id"]), reader)
        attempt = _as_attempt(row)
        sig = signature_file(
            attempt.report_id, attempt.key_id, attempt.signature, attempt.canonical
        )
        return {"report": json.loads(attempt.canonical), "signature": sig}

    async def _cites(self, reader: str, report_id: str) -> bool:
        for case in await self.cases.open_cases(reader):
            if any(o.report_id == report_id for o in case.assigned.earlier_opinions):
                return True
        return False

    async def verify(self, report_id: str) -> JSON:
        """Whether the stored report still verifies under its signer's published key."""
        _, signatures, keys, _ = self._ports()
        row = await signatures.report(report_id)
        if row is None:
            raise NotFound(f"no report {report_id}")
        canonical = bytes(row["canonical"])
        found = await keys.public_key(str(row["key_id"]))
        valid = False
        if found is not None:
            public = Ed25519PublicKey.from_public_bytes(found[1])
            valid = verify(public, canonical, str(row["signature"]))
        document = json.loads(canonical)
        return {
            "report_id": report_id,
            "valid": valid,
            "kind": document.get("kind", "report"),
            "amends": document.get("amends"),
            "signer": document.get("signer"),
            "key_id": row["key_id"],
            "algorithm": ALGORITHM,
            "signed_at": row["signed_at"].isoformat(),
            "sha256": sha256_hex(canonical),
        }

    async def public_keys(self) -> list[JSON]:
        _, _, keys, _ = self._ports()
        out = []
        for k in await keys.keys():
            public = Ed25519PublicKey.from_public_bytes(bytes(k["public_raw"]))
            out.append(
                {
                    "kid": k["key_id"],
                    "algorithm": ALGORITHM,
                    "radiologist_id": k["radiologist_id"],
                    "valid_from": k["created_at"].isoformat(),
                    "valid_until": k["valid_until"].isoformat() if k["valid_until"] else None,
                    "public_key": base64.b64encode(public_raw(public)).decode(),
                    "fingerprint": fingerprint(public),
                }
            )
        return out


def _as_attempt(row: dict[str, Any]) -> Attempt:
    return Attempt(
        report_id=str(row["report_id"]),
        case_id=str(row["case_id"]),
        kind=str(row.get("kind", "report")),
        amends=row.get("amends"),
        radiologist_id=str(row["radiologist_id"]),
        draft_version=0,
        key_id=str(row["key_id"]),
        canonical=bytes(row["canonical"]),
        signature=str(row["signature"]),
        signed_at=row["signed_at"],
        archive_ids=[],
        completed=True,
    )
