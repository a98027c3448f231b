"""reporting's use cases against small fakes of their ports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from secondread_reporting.errors import Conflict, Forbidden, InvalidInput, NotFound
from secondread_reporting.ports import CaseRow, CaseStatus
from secondread_reporting.service import Reporting, time_left
from secondread_shared.events import CaseAccepted, CaseAssigned, CaseDeclined, Event, Priority

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return NOW


class FakeCases:
    def __init__(self) -> None:
        self.rows: dict[str, CaseRow] = {}
        self.sent: list[Event] = []

    def add(self, case_id: str, reader: str, **over: Any) -> None:
        fields: dict[str, Any] = {
            "case_id": case_id,
            "producer": "tests",
            "radiologist_id": reader,
            "subspecialty": "chest",
            "urgency": "routine",
            "due_at": NOW + timedelta(hours=4),
            "patient_pseudonym": "SR1",
            "clinical_question": "Nodule?",
            "original_report": "FINDINGS: Nodule RUL. IMPRESSION: Indeterminate.",
            "study_instance_uids": ["1.2.3"],
            "orthanc_study_ids": ["abc"],
            **over,
        }
        self.rows[case_id] = CaseRow(
            case_id, reader, CaseStatus.ASSIGNED, CaseAssigned(**fields), {}
        )

    async def case(self, case_id: str) -> CaseRow | None:
        return self.rows.get(case_id)

    async def open_cases(self, radiologist_id: str) -> list[CaseRow]:
        return [
            r
            for r in self.rows.values()
            if r.radiologist_id == radiologist_id
            and r.status in (CaseStatus.ASSIGNED, CaseStatus.ACCEPTED)
        ]

    async def set_status(
        self, case_id: str, expected: CaseStatus, status: CaseStatus, events: list[Event]
    ) -> bool:
        row = self.rows[case_id]
        if row.status != expected:
            return False
        self.rows[case_id] = CaseRow(row.case_id, row.radiologist_id, status, row.assigned, {})
        self.sent += events
        return True


@pytest.fixture
def cases() -> FakeCases:
    return FakeCases()


def service(cases: FakeCases) -> Reporting:
    return Reporting(cases, FixedClock(), "http://viewer/#/")


async def test_worklist_orders_by_priority_then_due_time_and_shows_time_left(
    cases: FakeCases,
) -> None:
    cases.add("late-routine", "r1", due_at=NOW + timedelta(hours=30))
    cases.add("early-routine", "r1", due_at=NOW + timedelta(minutes=50))
    cases.add("urgent", "r1", priority=Priority.URGENT, due_at=NOW + timedelta(hours=2))
    cases.add("high-overdue", "r1", priority=Priority.HIGH, due_at=NOW - timedelta(minutes=5))
    cases.add("someone-else", "r2")
    rows = await service(cases).worklist("r1")
    assert [r["case_id"] for r in rows] == ["urgent", "high-overdue", "early-routine",
                                            "late-routine"]  # fmt: skip
    assert [r["time_left"] for r in rows] == ["2 h 00 min", "overdue 5 min", "50 min",
                                              "30 h 00 min"]  # fmt: skip
    assert rows[1]["seconds_left"] == -300


def test_time_left() -> None:
    assert time_left(NOW + timedelta(minutes=65), NOW) == "1 h 05 min"
    assert time_left(NOW - timedelta(minutes=125), NOW) == "overdue 2 h 05 min"


async def test_case_view_numbers_the_statements_and_links_the_studies(cases: FakeCases) -> None:
    cases.add("c1", "r1")
    view = await service(cases).case_view("c1", "r1")
    assert view["statements"] == [
        {"number": 1, "section": "findings", "text": "Nodule RUL."},
        {"number": 2, "section": "impression", "text": "Indeterminate."},
    ]
    assert view["viewer_links"] == ["http://viewer/#/viewer?StudyInstanceUIDs=1.2.3"]
    assert view["viewer_url"] == "http://viewer/#/viewer?StudyInstanceUIDs=1.2.3"
    with pytest.raises(Forbidden, match="not assigned to you"):
        await service(cases).case_view("c1", "r2")
    with pytest.raises(NotFound):
        await service(cases).case_view("nope", "r1")


async def test_accept_then_decline_publish_their_events(cases: FakeCases) -> None:
    cases.add("c1", "r1")
    reporting = service(cases)
    assert (await reporting.accept("c1", "r1"))["status"] == "accepted"
    assert (await reporting.accept("c1", "r1"))["status"] == "accepted"  # no second event
    with pytest.raises(InvalidInput, match="reason"):
        await reporting.decline("c1", "r1", "  ")
    with pytest.raises(Forbidden):
        await reporting.decline("c1", "r2", "not mine")
    assert (await reporting.decline("c1", "r1", "conflict of interest"))["status"] == "declined"
    [accepted, declined] = cases.sent
    assert isinstance(accepted, CaseAccepted) and accepted.radiologist_id == "r1"
    assert isinstance(declined, CaseDeclined) and declined.reason == "conflict of interest"
    assert await reporting.worklist("r1") == []
    with pytest.raises(Conflict):
        await reporting.accept("c1", "r1")
