"""Dead letters on Kafka: one fetched by its offset, and replayed with the shared code of
``secondread dlq replay`` (:func:`secondread_shared.deadletters.replay`)."""

from __future__ import annotations

from aiokafka.errors import KafkaError

from secondread_routing.ops.domain import LetterRef
from secondread_routing.ops.errors import BusUnavailable
from secondread_shared import deadletters
from secondread_shared.records import Record


class KafkaLetterBus:
    """:class:`~secondread_routing.ops.ports.LetterBus` on the Kafka cluster at ``bootstrap``."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    async def fetch(self, ref: LetterRef) -> Record | None:
        try:
            return await deadletters.fetch(self.bootstrap, ref.topic, ref.partition, ref.offset)
        except KafkaError as exc:
            raise BusUnavailable(f"Kafka did not answer ({type(exc).__name__})") from exc

    async def replay(self, letter: Record) -> str:
        try:
            await deadletters.replay(self.bootstrap, [letter])
        except KafkaError as exc:
            raise BusUnavailable(
                f"Kafka did not confirm the replay ({type(exc).__name__})"
            ) from exc
        return deadletters.source_topic(letter)
