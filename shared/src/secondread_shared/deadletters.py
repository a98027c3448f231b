"""Dead letters: what an operator may see of one, and its replay onto the source topic.

A dead letter is the failed message, unchanged, on ``<topic>.dlq`` with the headers of
:mod:`secondread_shared.broker` (reason, source topic/partition/offset, attempts, service, case
id). Its payload is never shown: a PHI-zone dead letter (``secondread.phi.*.dlq``) holds PHI.
:class:`DeadLetter` carries the headers and the position only, and :func:`redact_reason` drops
the input values a validation error quotes.

``secondread dlq replay`` and routing's operations page both replay with :func:`replay`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaProducer

from secondread_shared import broker as br
from secondread_shared import topics
from secondread_shared.records import Record, read_all, read_one

DLQ_TOPICS: tuple[str, ...] = tuple(topics.dlq(t) for t in topics.EVENT_TOPICS)
REPLAYED_FROM = "x-secondread-replayed-from"
"""Header of a replayed message: ``<dlq topic>:<partition>:<offset>`` of its dead letter."""

# pydantic's ValidationError text quotes the input: "[type=missing, input_value={...},
# input_type=dict]". The input is the payload.
_INPUT_VALUE = re.compile(r"input_value=.*?(?=, input_type=|\]$)", re.S | re.M)
_REASON_SHOWN = 500


def redact_reason(reason: str) -> str:
    """``reason`` without the input values it quotes, cut to 500 characters."""
    text = _INPUT_VALUE.sub("input_value=(withheld)", reason)
    return text if len(text) <= _REASON_SHOWN else text[: _REASON_SHOWN - 1] + "…"


def is_dlq_topic(name: str) -> bool:
    """Whether ``name`` is the dead-letter twin of one of the platform's topics."""
    return name in DLQ_TOPICS


def source_topic(letter: Record) -> str:
    """Where a dead letter came from: its header, or the DLQ topic's name without ``.dlq``."""
    return letter.headers.get(br.H_TOPIC) or letter.topic.removesuffix(topics.DLQ_SUFFIX)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


@dataclass(frozen=True)
class DeadLetter:
    """A dead letter as an operator sees it: position and headers, never the payload."""

    topic: str
    partition: int
    offset: int
    case_id: str
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    service: str
    attempts: int | None
    reason: str
    """:func:`redact_reason` of the reason header."""
    dead_lettered_at: datetime
    replayed_from: str = ""
    """Set when this letter is itself a replayed message that failed again."""

    @property
    def phi_zone(self) -> bool:
        return topics.is_phi(self.topic)


def letter_of(record: Record) -> DeadLetter:
    """The operator's view of a dead-letter record (headers only)."""
    h = record.headers
    return DeadLetter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        case_id=h.get(br.H_CASE) or record.key,
        source_topic=source_topic(record),
        source_partition=_int(h.get(br.H_PARTITION)),
        source_offset=_int(h.get(br.H_OFFSET)),
        service=h.get(br.H_SERVICE, ""),
        attempts=_int(h.get(br.H_ATTEMPTS)),
        reason=redact_reason(h.get(br.H_REASON, "")),
        dead_lettered_at=record.timestamp,
        replayed_from=h.get(REPLAYED_FROM, ""),
    )


def replay_headers(letter: Record) -> list[tuple[str, bytes]]:
    """The headers a replayed message carries: the original ones (the dead-letter headers are
    dropped, so a replay that fails again is dead-lettered afresh with its new reason) and
    :data:`REPLAYED_FROM` naming the letter."""
    headers = [
        (k, v.encode()) for k, v in letter.headers.items() if not k.startswith("x-secondread-dlq-")
    ]
    headers = [(k, v) for k, v in headers if k != REPLAYED_FROM]
    headers.append((REPLAYED_FROM, f"{letter.topic}:{letter.partition}:{letter.offset}".encode()))
    return headers


async def dead_letters(bootstrap: str, topic: str | None = None) -> list[Record]:
    """Dead letters on every ``.dlq`` topic, or on the twin of the source ``topic``."""
    names = [topics.dlq(topic)] if topic else list(DLQ_TOPICS)
    return await read_all(bootstrap, names, lambda r: True)


async def fetch(bootstrap: str, topic: str, partition: int, offset: int) -> Record | None:
    """The dead letter at ``topic``/``partition``/``offset`` (``None`` when there is none)."""
    return await read_one(bootstrap, topic, partition, offset)


async def replay(bootstrap: str, letters: Sequence[Record]) -> int:
    """Publish each dead letter again on its source topic, same key and body, with
    :func:`replay_headers`; the number published.

    Handlers are idempotent, so a letter replayed twice does no harm; routing's operations page
    also records each replay and replays a letter once.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for letter in letters:
            await producer.send_and_wait(
                source_topic(letter),
                letter.value,
                key=letter.key.encode() or None,
                headers=replay_headers(letter),
            )
        return len(letters)
    finally:
        await producer.stop()
