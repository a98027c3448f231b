"""What an operator sees of a dead letter (headers, never the payload) and what a replay
carries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from secondread_shared import broker as br
from secondread_shared import topics
from secondread_shared.deadletters import (
    DLQ_TOPICS,
    REPLAYED_FROM,
    is_dlq_topic,
    letter_of,
    redact_reason,
    replay_headers,
    source_topic,
)
from secondread_shared.events import CaseReceived
from secondread_shared.records import Record

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SECRET = "Jane Doe-Synthetic 1961-04-02"


def validation_reason(payload: dict[str, object]) -> str:
    with pytest.raises(ValidationError) as caught:
        CaseReceived.model_validate(payload)
    return f"{type(caught.value).__name__}: {caught.value}"


def letter(headers: dict[str, str], value: bytes = b"{}") -> Record:
    return Record(topics.dlq(topics.CASE_RECEIVED), 1, 42, T0, "case-9", value, headers)


def test_the_view_holds_headers_and_position_and_withholds_quoted_input() -> None:
    reason = validation_reason({"case_id": "case-9", "patient_name": SECRET, "urgency": SECRET})
    assert SECRET in reason  # pydantic quotes the input: the payload
    rec = letter(
        {
            br.H_REASON: reason,
            br.H_TOPIC: topics.CASE_RECEIVED,
            br.H_PARTITION: "0",
            br.H_OFFSET: "17",
            br.H_ATTEMPTS: "3",
            br.H_SERVICE: "deidentify",
            br.H_CASE: "case-9",
            br.H_ERROR: reason,
        },
        value=SECRET.encode(),
    )
    d = letter_of(rec)
    assert (d.topic, d.partition, d.offset, d.case_id) == (rec.topic, 1, 42, "case-9")
    assert (d.source_topic, d.source_partition, d.source_offset) == (topics.CASE_RECEIVED, 0, 17)
    assert (d.service, d.attempts, d.phi_zone, d.dead_lettered_at) == ("deidentify", 3, True, T0)
    assert d.reason.startswith("ValidationError:") and "input_value=(withheld)" in d.reason
    assert SECRET not in repr(d)


def test_missing_headers_fall_back_to_the_topic_and_key() -> None:
    d = letter_of(letter({}))
    assert (d.case_id, d.source_topic, d.attempts, d.source_offset) == (
        "case-9", topics.CASE_RECEIVED, None, None)  # fmt: skip
    assert not letter_of(Record(topics.dlq(topics.CASE_ASSIGNED), 0, 0, T0, "", b"", {})).phi_zone


def test_a_long_reason_is_cut() -> None:
    assert len(redact_reason("x" * 5000)) == 500


def test_a_replay_drops_the_dead_letter_headers_and_names_its_letter() -> None:
    rec = letter({br.H_REASON: "r", br.H_TOPIC: topics.CASE_RECEIVED, "traceparent": "00-ab",
                  REPLAYED_FROM: "older:0:1"})  # fmt: skip
    assert source_topic(rec) == topics.CASE_RECEIVED
    assert replay_headers(rec) == [
        ("traceparent", b"00-ab"),
        (REPLAYED_FROM, f"{rec.topic}:1:42".encode()),
    ]


def test_only_the_platforms_dlq_twins_are_dead_letter_topics() -> None:
    assert is_dlq_topic(topics.dlq(topics.CASE_STATUS))
    assert not is_dlq_topic(topics.CASE_STATUS) and not is_dlq_topic("other.dlq")
    assert len(DLQ_TOPICS) == len(topics.EVENT_TOPICS)
