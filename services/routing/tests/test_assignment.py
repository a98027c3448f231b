from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from secondread_routing.assignment import choose, classify, due_at, hedges, over_capacity
from secondread_routing.roster import Radiologist, Roster, RosterError, load_roster
from secondread_shared.events import Urgency

ROSTER = Roster(
    radiologist=[
        Radiologist(id="a", name="A", subspecialties=["chest"], jurisdictions=["US"], max_open=2),
        Radiologist(
            id="b",
            name="B",
            subspecialties=["chest"],
            jurisdictions=["US"],
            conflicts=["h-conflict"],
        ),
        Radiologist(id="c", name="C", subspecialties=["neuro"], jurisdictions=["DE"]),
    ]
)


def test_classify_by_modality_body_part_and_question() -> None:
    assert classify(["CT"], ["CHEST"], "") == "chest"
    assert classify(["MR"], ["HEAD"], "") == "neuro"
    assert classify(["MG"], [], "") == "breast"
    assert classify(["CT"], [], "rule out fracture of the wrist") == "msk"
    assert classify(["XA"], [], "") == "body"


def test_choose_least_loaded_eligible() -> None:
    kw = {"subspecialty": "chest", "jurisdiction": "US", "hospital_id": "h1"}
    assert choose(ROSTER, workload={}, **kw).id == "a"  # type: ignore[union-attr]
    assert choose(ROSTER, workload={"a": 1}, **kw).id == "b"  # type: ignore[union-attr]


def test_choose_respects_conflicts_licence_and_prefers_spare_capacity() -> None:
    kw = {"subspecialty": "chest", "jurisdiction": "US"}
    got = choose(ROSTER, hospital_id="h-conflict", workload={}, **kw)
    assert got is not None and got.id == "a"  # b has a conflict with this hospital
    # a is at capacity (2): b is chosen although it carries more cases
    got = choose(ROSTER, hospital_id="h1", workload={"a": 2, "b": 5}, **kw)
    assert got is not None and got.id == "b" and not over_capacity(got, {"a": 2, "b": 5})
    # everyone eligible is at capacity: still assigned (least loaded), flagged over capacity
    got = choose(ROSTER, hospital_id="h-conflict", workload={"a": 2}, **kw)
    assert got is not None and got.id == "a" and over_capacity(got, {"a": 2})
    # no licence for the jurisdiction: nobody
    assert (
        choose(ROSTER, subspecialty="chest", jurisdiction="DE", hospital_id="h", workload={})
        is None
    )
    got = choose(ROSTER, subspecialty="neuro", jurisdiction="DE-BY", hospital_id="h", workload={})
    assert got is not None and got.id == "c"


def test_due_time_urgent_sooner() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    assert due_at(t, Urgency.URGENT, routine_h=72, urgent_h=24) == t + timedelta(hours=24)
    assert due_at(t, Urgency.ROUTINE, routine_h=72, urgent_h=24) == t + timedelta(hours=72)


def test_hedges_flagged() -> None:
    assert hedges("Malignancy cannot exclude. Recommend correlation; nonspecific.") == [
        "hedge:cannot exclude",
        "hedge:nonspecific",
        "hedge:recommend correlation",
    ]
    assert hedges("Clear lungs.") == []


def test_project_roster_loads(tmp_path: Path) -> None:
    roster = load_roster(Path(__file__).parents[3] / "deploy" / "roster.toml")
    assert len(roster.radiologist) >= 4
    bad = tmp_path / "r.toml"
    bad.write_text(
        '[[radiologist]]\nid="x"\nname="X"\nsubspecialties=["astrology"]\njurisdictions=["US"]\n'
    )
    with pytest.raises(RosterError, match="astrology"):
        load_roster(bad)
    with pytest.raises(RosterError, match="not found"):
        load_roster(tmp_path / "missing.toml")
