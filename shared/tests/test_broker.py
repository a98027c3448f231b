"""Component tests of the delivery semantics with FastStream's in-memory broker."""

from typing import Any

import pytest
from faststream.kafka import KafkaMessage, TestKafkaBroker

from secondread_shared import broker as broker_mod
from secondread_shared import topics
from secondread_shared.errors import PermanentError, TransientError
from secondread_shared.events import CaseState, CaseStatusChanged


def make(outage_budget_s: float = 0.0) -> Any:
    return broker_mod.create_broker(
        service="test",
        bootstrap="127.0.0.1:1",
        tracer_provider=None,
        registry=None,
        max_attempts=3,
        backoff_s=0.0,
        outage_budget_s=outage_budget_s,
    )


async def test_permanent_error_goes_to_dlq_with_reason_and_source() -> None:
    br, _policy = make()
    dead: list[Any] = []
    statuses: list[CaseStatusChanged] = []

    @br.subscriber(topics.CASE_DEIDENTIFIED, group_id="g")
    async def handler(body: dict[str, Any]) -> None:
        raise PermanentError("no eligible radiologist")

    @br.subscriber(topics.dlq(topics.CASE_DEIDENTIFIED), group_id="d")
    async def dlq_handler(body: dict[str, Any], msg: KafkaMessage) -> None:
        dead.append(msg)

    @br.subscriber(topics.CASE_STATUS, group_id="s")
    async def status_handler(ev: CaseStatusChanged) -> None:
        statuses.append(ev)

    async with TestKafkaBroker(br) as tb:
        await tb.publish({"x": 1}, topic=topics.CASE_DEIDENTIFIED, key=b"case-9")
    assert len(dead) == 1
    headers = dead[0].headers
    assert headers[broker_mod.H_REASON].startswith("PermanentError: no eligible radiologist")
    assert headers[broker_mod.H_TOPIC] == topics.CASE_DEIDENTIFIED
    assert headers[broker_mod.H_ATTEMPTS] == "1"
    assert H_PARTITION_AND_OFFSET_PRESENT(headers)
    assert [s.state for s in statuses] == [CaseState.DEAD_LETTERED]
    assert statuses[0].case_id == "case-9"


def H_PARTITION_AND_OFFSET_PRESENT(headers: dict[str, str]) -> bool:
    return headers[broker_mod.H_PARTITION] != "" and headers[broker_mod.H_OFFSET] != ""


async def test_transient_error_is_retried_then_succeeds() -> None:
    br, _ = make()
    calls: list[int] = []
    dead: list[Any] = []

    @br.subscriber(topics.CASE_ASSIGNED, group_id="g")
    async def handler(body: dict[str, Any]) -> None:
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("s3 down")

    @br.subscriber(topics.dlq(topics.CASE_ASSIGNED), group_id="d")
    async def dlq_handler(body: dict[str, Any]) -> None:
        dead.append(body)

    async with TestKafkaBroker(br) as tb:
        await tb.publish({"x": 1}, topic=topics.CASE_ASSIGNED, key=b"c")
    assert len(calls) == 3
    assert dead == []


async def test_transient_error_exhausting_retries_is_dead_lettered() -> None:
    br, _ = make()
    dead: list[Any] = []

    @br.subscriber(topics.CASE_ASSIGNED, group_id="g")
    async def handler(body: dict[str, Any]) -> None:
        raise TransientError("s3 down")

    @br.subscriber(topics.dlq(topics.CASE_ASSIGNED), group_id="d")
    async def dlq_handler(body: dict[str, Any], msg: KafkaMessage) -> None:
        dead.append(msg.headers)

    async with TestKafkaBroker(br) as tb:
        await tb.publish({"x": 1}, topic=topics.CASE_ASSIGNED, key=b"c")
    assert len(dead) == 1
    assert dead[0][broker_mod.H_ATTEMPTS] == "3"


async def test_a_dependency_down_is_waited_for_within_the_outage_budget() -> None:
    """Past max_attempts, a TransientError (storage, Orthanc, the database down) is retried
    until the outage budget runs out; any other error still stops at max_attempts."""
    br, _ = make(outage_budget_s=5.0)
    calls: list[str] = []
    dead: list[Any] = []

    @br.subscriber(topics.CASE_ASSIGNED, group_id="g")
    async def handler(body: dict[str, Any]) -> None:
        calls.append(body["kind"])
        if body["kind"] == "outage" and calls.count("outage") <= 6:
            raise TransientError("s3 down")  # back after the 6th attempt
        if body["kind"] == "bug":
            raise RuntimeError("a bug, not an outage")

    @br.subscriber(topics.dlq(topics.CASE_ASSIGNED), group_id="d")
    async def dlq_handler(body: dict[str, Any]) -> None:
        dead.append(body["kind"])

    async with TestKafkaBroker(br) as tb:
        await tb.publish({"kind": "outage"}, topic=topics.CASE_ASSIGNED, key=b"c1")
        await tb.publish({"kind": "bug"}, topic=topics.CASE_ASSIGNED, key=b"c2")
    assert calls.count("outage") == 7 and calls.count("bug") == 3
    assert dead == ["bug"]


async def test_invalid_payload_is_dead_lettered_not_looped() -> None:
    br, _ = make()
    dead: list[Any] = []

    @br.subscriber(topics.CASE_STATUS, group_id="g")
    async def handler(ev: CaseStatusChanged) -> None:
        pytest.fail("must not be called with an invalid event")

    @br.subscriber(topics.dlq(topics.CASE_STATUS), group_id="d")
    async def dlq_handler(body: Any, msg: KafkaMessage) -> None:
        dead.append(msg.headers)

    async with TestKafkaBroker(br) as tb:
        await tb.publish({"state": "nope"}, topic=topics.CASE_STATUS, key=b"c")
    assert len(dead) == 1
    assert "ValidationError" in dead[0][broker_mod.H_REASON]


async def test_a_handler_past_its_time_limit_is_retried_then_dead_lettered() -> None:
    import asyncio

    br, _ = broker_mod.create_broker(
        service="test", bootstrap="127.0.0.1:1", tracer_provider=None, registry=None,
        max_attempts=2, backoff_s=0.0, handler_timeout_s=0.05,
    )  # fmt: skip
    calls: list[int] = []
    dead: list[Any] = []

    @br.subscriber(topics.CASE_ASSIGNED, group_id="g")
    async def handler(body: dict[str, Any]) -> None:
        calls.append(1)
        await asyncio.sleep(5)

    @br.subscriber(topics.dlq(topics.CASE_ASSIGNED), group_id="d")
    async def dlq_handler(body: dict[str, Any], msg: KafkaMessage) -> None:
        dead.append(msg.headers)

    async with TestKafkaBroker(br) as tb:
        await tb.publish({"x": 1}, topic=topics.CASE_ASSIGNED, key=b"c")
    assert len(calls) == 2 and len(dead) == 1
    assert dead[0][broker_mod.H_REASON].startswith("HandlerTimeout: the handler took longer")


def test_a_time_limit_that_does_not_fit_the_poll_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="do not fit in the consumer's max_poll_interval"):
        broker_mod.DeadLetterPolicy(
            service="t", max_attempts=4, backoff_s=1.0, handler_timeout_s=300.0
        )
