import pytest
from pydantic import ValidationError

from secondread_shared import topics
from secondread_shared.events import (
    ALL_EVENTS,
    CaseState,
    CaseStatusChanged,
    ObjectRef,
)


def test_envelope_fields_are_filled() -> None:
    ev = CaseStatusChanged(case_id="c1", producer="ingest", state=CaseState.RECEIVED)
    assert ev.event_type == "case.status"
    assert ev.schema_version == 1
    assert ev.event_id and ev.occurred_at.tzinfo is not None
    assert ev.TOPIC == topics.CASE_STATUS


def test_events_round_trip_through_json() -> None:
    ev = CaseStatusChanged(case_id="c1", producer="ingest", state=CaseState.NOTIFIED, detail="x")
    assert CaseStatusChanged.model_validate_json(ev.model_dump_json()) == ev


def test_every_event_topic_is_a_known_topic() -> None:
    assert {cls.TOPIC for cls in ALL_EVENTS} == set(topics.EVENT_TOPICS)


def test_object_ref_requires_a_sha256() -> None:
    with pytest.raises(ValidationError):
        ObjectRef(bucket="b", key="k", sha256="nothex", size=1)


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    raw = CaseStatusChanged(case_id="c", producer="p", state=CaseState.SIGNED).model_dump()
    raw["added_later"] = 1
    assert CaseStatusChanged.model_validate(raw).case_id == "c"
