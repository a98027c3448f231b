"""routing's use cases with small fakes (no Kafka, no database)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from secondread_routing.assignment import Load
from secondread_routing.ports import AssignmentRecord, CaseRecord
from secondread_routing.priors import StudySummary
from secondread_routing.roster import Reader
from secondread_routing.rules import load_rules
from secondread_routing.service import Policy, RoutingService, import_roster
from secondread_shared.errors import OrthancError
from secondread_shared.events import (
    CaseAccepted,
    CaseAssigned,
    CaseDeclined,
    CaseDeidentified,
    CaseStatusChanged,
    EarlierOpinion,
    Event,
    ObjectRef,
    Priority,
    ReportSigned,
    RosterChanged,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@dataclass
class State:
    readers: list[Reader] = field(default_factory=list)
    cases: dict[str, CaseRecord] = field(default_factory=dict)
    assignments: list[dict[str, object]] = field(default_factory=list)
    opinions: list[tuple[EarlierOpinion, str]] = field(default_factory=list)
    outbox: list[Event] = field(default_factory=list)


class FakeUnit:
    def __init__(self, state: State) -> None:
        self.s = state

    async def case(self, case_id: str) -> CaseRecord | None:
        c = self.s.cases.get(case_id)
        return copy.deepcopy(c) if c else None

    async def save_case(self, case: CaseRecord) -> None:
        self.s.cases[case.case_id] = copy.deepcopy(case)

    async def readers(self) -> list[Reader]:
        return list(self.s.readers)

    async def replace_readers(self, readers: Sequence[Reader]) -> list[str]:
        before = {r.id: (i, r) for i, r in enumerate(self.s.readers)}
        changed = [r.id for i, r in enumerate(readers) if before.get(r.id) != (i, r)]
        gone = sorted(set(before) - {r.id for r in readers})
        self.s.readers = list(readers)
        return [*changed, *gone]

    def _open(self) -> list[dict[str, object]]:
        return [a for a in self.s.assignments if a["closed_at"] is None]

    async def load(self) -> dict[str, Load]:
        out: dict[str, Load] = {}
        for a in self._open():
            rid = str(a["radiologist_id"])
            prev = out.get(rid, Load())
            due = a["due_at"]
            assert isinstance(due, datetime)
            out[rid] = Load(prev.open + 1, max(d for d in (prev.free_at, due) if d))
        return out

    def _record(self, a: dict[str, object]) -> AssignmentRecord:
        return AssignmentRecord(
            id=int(a["id"]),  # type: ignore[call-overload]
            case_id=str(a["case_id"]),
            radiologist_id=str(a["radiologist_id"]),
            assigned_at=a["assigned_at"],  # type: ignore[arg-type]
            accept_by=a["accept_by"],  # type: ignore[arg-type]
            accepted_at=a["accepted_at"],  # type: ignore[arg-type]
        )

    async def open_assignment(self, case_id: str) -> AssignmentRecord | None:
        found = [a for a in self._open() if a["case_id"] == case_id]
        return self._record(found[0]) if found else None

    async def add_assignment(
        self, case: CaseRecord, radiologist_id: str, at: datetime, accept_by: datetime
    ) -> None:
        assert not [a for a in self._open() if a["case_id"] == case.case_id], "one open at a time"
        self.s.assignments.append(
            {"id": len(self.s.assignments) + 1, "case_id": case.case_id,
             "radiologist_id": radiologist_id, "assigned_at": at, "accept_by": accept_by,
             "accepted_at": None, "closed_at": None, "reason": None, "due_at": case.due_at}
        )  # fmt: skip

    async def close_assignment(self, assignment_id: int, reason: str, at: datetime) -> None:
        for a in self.s.assignments:
            if a["id"] == assignment_id and a["closed_at"] is None:
                a["closed_at"], a["reason"] = at, reason

    async def accept(self, assignment_id: int, at: datetime) -> None:
        for a in self.s.assignments:
            if a["id"] == assignment_id:
                a["accepted_at"] = at

    async def rearm(self, assignment_id: int, accept_by: datetime | None) -> None:
        for a in self.s.assignments:
            if a["id"] == assignment_id:
                a["accept_by"] = accept_by

    async def expired_timers(self, now: datetime, limit: int) -> list[AssignmentRecord]:
        return [
            self._record(a)
            for a in self._open()
            if a["accepted_at"] is None and a["accept_by"] and a["accept_by"] <= now  # type: ignore[operator]
        ][:limit]

    async def unassigned(self, limit: int) -> list[str]:
        return [c.case_id for c in self.s.cases.values() if c.state == "unassigned"][:limit]

    async def opinions_of(self, patient_pseudonym: str) -> list[EarlierOpinion]:
        return [o for o, p in self.s.opinions if p == patient_pseudonym]

    async def record_opinion(self, opinion: EarlierOpinion, patient_pseudonym: str) -> None:
        if all(o.report_id != opinion.report_id for o, _ in self.s.opinions):
            self.s.opinions.append((opinion, patient_pseudonym))

    async def enqueue(self, events: Sequence[Event]) -> None:
        self.s.outbox.extend(events)


class FakeRepo:
    def __init__(self) -> None:
        self.state = State()

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[FakeUnit]:
        snapshot = copy.deepcopy(self.state)
        try:
            yield FakeUnit(self.state)
        except BaseException:
            self.state.__dict__.update(snapshot.__dict__)  # roll back
            raise


class FakeClock:
    def __init__(self) -> None:
        self.t = T0

    def now(self) -> datetime:
        return self.t


class FakeArchive:
    def __init__(self, studies: list[StudySummary] | None = None, fail: bool = False) -> None:
        self.studies = studies or []
        self.fail = fail

    async def studies_of(self, patient_pseudonym: str) -> list[StudySummary]:
        if self.fail:
            raise OrthancError("archive down")
        return self.studies


def reader(rid: str, subs: list[str] | None = None, **over: object) -> Reader:
    base: dict[str, object] = {
        "id": rid,
        "display_name": f"Dr. {rid.upper()}",
        "credentials": "MD",
        "subspecialties": subs or ["chest"],
        "licences": [{"jurisdiction": "US", "expires": date(2030, 1, 1)}],
        "max_open": 2,
    }
    return Reader.model_validate(base | over)


def make(
    readers: list[Reader], archive: FakeArchive | None = None, **policy: object
) -> tuple[RoutingService, FakeRepo, FakeClock]:
    repo, clock = FakeRepo(), FakeClock()
    repo.state.readers = readers
    service = RoutingService(
        rules=load_rules(),
        repo=repo,
        archive=archive or FakeArchive(),
        clock=clock,
        policy=Policy(**policy),  # type: ignore[arg-type]
    )
    return service, repo, clock


def event(case_id: str, **over: object) -> CaseDeidentified:
    base: dict[str, object] = {
        "case_id": case_id,
        "producer": "deidentify",
        "occurred_at": T0,
        "patient_pseudonym": "SRabc",
        "hospital_id": "h1",
        "urgency": "routine",
        "jurisdiction": "US",
        "clinical_question": "lung nodule?",
        "original_report": "Nonspecific opacity.",
        "study_instance_uids": ["2.25.1"],
        "orthanc_study_ids": ["o1"],
        "modalities": ["CT"],
        "body_parts": ["CHEST"],
        "study_descriptions": ["CT CHEST WO"],
    }
    return CaseDeidentified.model_validate(base | over)


def assigned(repo: FakeRepo) -> list[CaseAssigned]:
    return [e for e in repo.state.outbox if isinstance(e, CaseAssigned)]


def statuses(repo: FakeRepo) -> list[tuple[str, str]]:
    return [
        (e.state.value, e.detail) for e in repo.state.outbox if isinstance(e, CaseStatusChanged)
    ]


async def test_assigns_with_rule_due_time_signature_block_and_flags() -> None:
    service, repo, _ = make([reader("a"), reader("b")])
    await service.route_case(event("c1"))
    await service.route_case(
        event("c2", urgency="urgent", original_report="Suspicious for metastases.")
    )
    a1, a2 = assigned(repo)
    assert [a1.radiologist_id, a2.radiologist_id] == ["a", "b"]
    assert (a1.subspecialty, a1.rule) == ("chest", "chest-description")
    assert a1.radiologist_name == "Dr. A" and a1.radiologist_credentials == "MD"
    assert a1.due_at == T0 + timedelta(hours=72) and a2.due_at == T0 + timedelta(hours=24)
    assert a1.accept_by == T0 + timedelta(hours=4) and a2.accept_by == T0 + timedelta(minutes=30)
    assert a1.priority is Priority.ROUTINE and a2.priority is Priority.URGENT
    assert "hedge:nonspecific" in a1.flags and "priors:none" in a1.flags and a1.priors == []
    assert "staging" in a2.flags and "hedge:suspicious for" in a2.flags
    assert [s for s, _ in statuses(repo)] == ["assigned", "assigned"]


async def test_a_flag_configured_to_raise_priority_raises_it() -> None:
    service, repo, _ = make([reader("a")])
    await service.route_case(event("c1", clinical_question="biopsy planned next week"))
    [a] = assigned(repo)
    assert "planned_procedure" in a.flags and a.priority is Priority.HIGH


async def test_unmatched_case_is_general_and_flagged_ambiguous() -> None:
    service, repo, _ = make([reader("g", ["general"])])
    await service.route_case(event("c1", modalities=["OT"], body_parts=[], study_descriptions=[],
                                   clinical_question="second opinion please"))  # fmt: skip
    [a] = assigned(repo)
    assert (a.subspecialty, a.rule) == ("general", "general") and "classify:ambiguous" in a.flags


async def test_redelivery_assigns_once() -> None:
    service, repo, _ = make([reader("a"), reader("b")])
    ev = event("c1")
    await service.route_case(ev)
    await service.route_case(ev)
    assert [a.radiologist_id for a in assigned(repo)] == ["a"]
    assert len(repo.state.assignments) == 1


async def test_nobody_eligible_waits_unassigned_with_reason_then_roster_change_assigns() -> None:
    service, repo, _ = make([reader("a")])
    await service.route_case(event("c1", jurisdiction="DE"))
    assert assigned(repo) == []
    assert statuses(repo) == [("unassigned", "no licence for jurisdiction DE valid on 2026-12-04")]
    await service.retry_unassigned()
    assert len(statuses(repo)) == 1  # same reason again: not announced twice
    changed = await import_roster(repo, [reader("a"), reader("d", licences=[
        {"jurisdiction": "DE", "expires": date(2030, 1, 1)}])])  # fmt: skip
    assert changed == ["d"] and isinstance(repo.state.outbox[-1], RosterChanged)
    assert await import_roster(repo, repo.state.readers) == []  # same roster: no change
    assert await service.retry_unassigned() == 1
    [a] = assigned(repo)
    assert a.radiologist_id == "d" and statuses(repo)[-1][0] == "assigned"


async def test_strict_capacity_waits_and_a_signed_report_frees_the_reader() -> None:
    service, repo, _ = make([reader("a", max_open=1)])
    await service.route_case(event("c1"))
    await service.route_case(event("c2"))
    assert [a.case_id for a in assigned(repo)] == ["c1"]
    assert statuses(repo)[-1] == ("unassigned", "everybody eligible is at capacity")
    await service.report_signed(signed("c1", "a"))
    assert [a.case_id for a in assigned(repo)] == ["c1", "c2"]
    closed = [a for a in repo.state.assignments if a["case_id"] == "c1"]
    assert closed[0]["reason"] == "signed"


async def test_soft_capacity_assigns_over_and_flags_it() -> None:
    service, repo, _ = make([reader("a", max_open=1)], capacity="soft")
    await service.route_case(event("c1"))
    await service.route_case(event("c2"))
    a1, a2 = assigned(repo)
    assert a2.radiologist_id == "a" and "over_capacity" in a2.flags
    assert "over_capacity" not in a1.flags


def signed(case_id: str, rid: str, report_id: str | None = None) -> ReportSigned:
    return ReportSigned(
        case_id=case_id,
        producer="reporting",
        report_id=report_id or f"rep-{case_id}",
        radiologist_id=rid,
        signed_at=T0 + timedelta(hours=1),
        key_id="k",
        signature="s",
        report=ObjectRef(bucket="b", key="k", sha256="0" * 64, size=1),
        assessment="diagnosis unchanged",
    )


async def test_decline_reassigns_once_and_never_back() -> None:
    service, repo, _ = make([reader("a"), reader("b")])
    await service.route_case(event("c1"))
    decline = CaseDeclined(case_id="c1", producer="reporting", radiologist_id="a", reason="busy")
    await service.case_declined(decline)
    await service.case_declined(decline)  # a redelivery: a holds nothing any more
    assert [a.radiologist_id for a in assigned(repo)] == ["a", "b"]
    assert "declined by a" in statuses(repo)[-1][1]
    await service.case_declined(decline.model_copy(update={"radiologist_id": "b"}))
    assert len(assigned(repo)) == 2  # a declined earlier: nobody is left
    assert statuses(repo)[-1] == (
        "unassigned",
        "every eligible reader declined or let the case time out",
    )


async def test_accept_timeout_reassigns_once_and_accept_stops_the_timer() -> None:
    service, repo, clock = make([reader("a"), reader("b"), reader("c")])
    await service.route_case(event("c1", urgency="urgent"))
    await service.route_case(event("c2"))
    await service.case_accepted(
        CaseAccepted(case_id="c2", producer="reporting", radiologist_id="b")
    )
    clock.t = T0 + timedelta(minutes=29)
    assert await service.fire_timers() == 0
    clock.t = T0 + timedelta(hours=5)
    assert await service.fire_timers() == 1  # c1 (urgent, 30 min), not c2 (accepted)
    assert await service.fire_timers() == 0  # fired once
    c1 = [a.radiologist_id for a in assigned(repo) if a.case_id == "c1"]
    assert c1 == ["a", "c"]  # b has c2: c is less loaded; a is never chosen again for c1
    reason = [a["reason"] for a in repo.state.assignments if a["case_id"] == "c1"]
    assert reason == ["accept_timeout", None]


async def test_a_stale_accept_or_decline_changes_nothing() -> None:
    service, repo, _ = make([reader("a"), reader("b")])
    await service.route_case(event("c1"))
    await service.case_declined(CaseDeclined(case_id="c1", producer="r", radiologist_id="b"))
    await service.case_declined(CaseDeclined(case_id="zz", producer="r", radiologist_id="a"))
    assert len(assigned(repo)) == 1


async def test_priors_and_earlier_opinions_of_a_returning_patient() -> None:
    ct, chest = frozenset({"CT"}), frozenset({"CHEST"})
    archive = FakeArchive(
        [
            StudySummary("o1", "2.25.1", date(2026, 1, 1), "CT CHEST", ct, chest),
            StudySummary("o0", "2.25.0", date(2024, 1, 1), "CT CHEST", ct, chest),
            StudySummary("o9", "2.25.9", date(2001, 1, 1), "CT CHEST", ct, chest),
        ]
    )
    service, repo, _ = make([reader("a"), reader("b")], archive, priors_lookback_days=3650)
    await service.route_case(event("c0", study_instance_uids=["2.25.0"]))
    await service.report_signed(signed("c0", "a"))
    await service.route_case(event("c1"))
    a = assigned(repo)[-1]
    assert [p.study_instance_uid for p in a.priors] == ["2.25.0"]  # 2.25.9 is outside the window
    assert [(o.case_id, o.report_id, o.assessment) for o in a.earlier_opinions] == [
        ("c0", "rep-c0", "diagnosis unchanged")
    ]
    assert "priors:none" not in a.flags


async def test_an_unavailable_archive_costs_the_priors_not_the_assignment() -> None:
    service, repo, _ = make([reader("a")], FakeArchive(fail=True))
    await service.route_case(event("c1"))
    [a] = assigned(repo)
    assert a.priors == [] and "priors_unavailable" in a.flags and "priors:none" not in a.flags


async def test_an_amended_case_is_announced_again_to_the_same_reader() -> None:
    service, repo, _ = make([reader("a"), reader("b")])
    ev = event("c1")
    await service.route_case(ev)
    await service.route_case(replace_event(ev, study_instance_uids=["2.25.1", "2.25.2"]))
    a1, a2 = assigned(repo)
    assert a1.radiologist_id == a2.radiologist_id == "a" and a2.study_instance_uids[-1] == "2.25.2"
    assert len(repo.state.assignments) == 1


def replace_event(ev: CaseDeidentified, **update: object) -> CaseDeidentified:
    fresh = ev.model_copy(update=update)
    return CaseDeidentified.model_validate(
        fresh.model_dump() | {"event_id": "amended-" + ev.event_id}
    )


async def test_a_timeout_with_nobody_else_keeps_the_case_and_starts_the_timer_again() -> None:
    service, repo, clock = make([reader("a")])
    await service.route_case(event("c1"))
    clock.t = T0 + timedelta(hours=5)
    assert await service.fire_timers() == 1
    [row] = repo.state.assignments
    assert row["closed_at"] is None and row["accept_by"] == clock.t + timedelta(hours=4)
    assert len(assigned(repo)) == 1 and statuses(repo)[-1][0] == "assigned"


async def test_over_capacity_describes_the_current_assignment_only() -> None:
    service, repo, _ = make([reader("a", max_open=1), reader("b", max_open=1)], capacity="soft")
    await service.route_case(event("c1"))
    await service.route_case(event("c2"))
    await service.route_case(event("c3"))  # both are full: a, over capacity
    await service.report_signed(signed("c2", "b"))  # b frees up
    await service.case_declined(CaseDeclined(case_id="c3", producer="r", radiologist_id="a"))
    last = assigned(repo)[-1]
    assert (last.case_id, last.radiologist_id) == ("c3", "b")
    assert "over_capacity" not in last.flags
    assert "over_capacity" in assigned(repo)[2].flags
