"""routing's handler with small fakes (no Kafka, no database)."""

from datetime import date, datetime
from typing import Any

import pytest

from secondread_routing.handlers import NoEligibleRadiologist, RoutingDeps, case_deidentified
from secondread_routing.priors import StudySummary
from secondread_routing.roster import Radiologist, Roster
from secondread_routing.settings import RoutingSettings
from secondread_shared.errors import OrthancError
from secondread_shared.events import CaseAssigned, CaseDeidentified, CaseStatusChanged, Event


class FakeRepo:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    async def workload(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows.values():
            counts[row["radiologist_id"]] = counts.get(row["radiologist_id"], 0) + 1
        return counts

    async def existing(self, case_id: str) -> dict[str, Any] | None:
        return self.rows.get(case_id)

    async def assign(
        self, case_id: str, radiologist_id: str, subspecialty: str, urgency: str, due: datetime
    ) -> None:
        self.rows.setdefault(
            case_id,
            {"radiologist_id": radiologist_id, "subspecialty": subspecialty, "due_at": due},
        )


def deps(published: list[Event], repo: FakeRepo) -> RoutingDeps:
    async def publish(event: Event) -> None:
        published.append(event)

    roster = Roster(
        radiologist=[
            Radiologist(id="a", name="A", subspecialties=["chest"], jurisdictions=["US"]),
            Radiologist(id="b", name="B", subspecialties=["chest"], jurisdictions=["US"]),
        ]
    )
    return RoutingDeps(settings=RoutingSettings(), roster=roster, repo=repo, publish=publish)  # type: ignore[arg-type]


def event(case_id: str, jurisdiction: str = "US") -> CaseDeidentified:
    return CaseDeidentified(
        case_id=case_id,
        producer="deidentify",
        patient_pseudonym="SRabc",
        urgency="urgent",
        jurisdiction=jurisdiction,
        clinical_question="lung nodule?",
        original_report="Nonspecific opacity.",
        study_instance_uids=["2.25.1"],
        orthanc_study_ids=["o1"],
        modalities=["CT"],
        body_parts=["CHEST"],
    )


async def test_assigns_least_loaded_and_announces() -> None:
    published: list[Event] = []
    repo = FakeRepo()
    d = deps(published, repo)
    await case_deidentified(event("c1"), d)
    await case_deidentified(event("c2"), d)
    assigned = [e for e in published if isinstance(e, CaseAssigned)]
    assert [a.radiologist_id for a in assigned] == ["a", "b"]
    assert assigned[0].subspecialty == "chest"
    assert "hedge:nonspecific" in assigned[0].flags
    assert assigned[0].due_at > assigned[0].occurred_at.replace(tzinfo=assigned[0].due_at.tzinfo)
    assert [e.state for e in published if isinstance(e, CaseStatusChanged)] == [
        "assigned",
        "assigned",
    ]


async def test_redelivery_reannounces_the_same_assignment() -> None:
    published: list[Event] = []
    repo = FakeRepo()
    d = deps(published, repo)
    ev = event("c1")
    await case_deidentified(ev, d)
    await case_deidentified(ev, d)
    assigned = [e for e in published if isinstance(e, CaseAssigned)]
    assert {a.radiologist_id for a in assigned} == {"a"}
    assert len(repo.rows) == 1


async def test_no_eligible_reader_is_a_permanent_error() -> None:
    with pytest.raises(NoEligibleRadiologist, match="chest in DE"):
        await case_deidentified(event("c1", jurisdiction="DE"), deps([], FakeRepo()))


class FakeArchive:
    def __init__(self, studies: list[StudySummary] | None = None, fail: bool = False) -> None:
        self.studies = studies or []
        self.fail = fail

    async def studies_of(self, patient_pseudonym: str) -> list[StudySummary]:
        if self.fail:
            raise OrthancError("archive down")
        return self.studies


async def test_priors_are_ranked_into_the_assignment() -> None:
    published: list[Event] = []
    d = deps(published, FakeRepo())
    d.archive = FakeArchive(
        [
            StudySummary("o1", "2.25.1", date(2026, 1, 1), "CT CHEST", frozenset({"CT"}),
                         frozenset({"CHEST"})),
            StudySummary("o0", "2.25.0", date(2024, 1, 1), "CT CHEST", frozenset({"CT"}),
                         frozenset({"CHEST"})),
        ]
    )  # fmt: skip
    await case_deidentified(event("c1"), d)
    [assigned] = [e for e in published if isinstance(e, CaseAssigned)]
    assert [p.study_instance_uid for p in assigned.priors] == ["2.25.0"]  # 2.25.1 is current
    assert assigned.priors[0].orthanc_study_id == "o0"
    assert "same body part" in assigned.priors[0].reasons


async def test_an_unavailable_archive_costs_the_priors_not_the_assignment() -> None:
    published: list[Event] = []
    d = deps(published, FakeRepo())
    d.archive = FakeArchive(fail=True)
    await case_deidentified(event("c1"), d)
    [assigned] = [e for e in published if isinstance(e, CaseAssigned)]
    assert assigned.priors == [] and "priors_unavailable" in assigned.flags
