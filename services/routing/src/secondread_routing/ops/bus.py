"""Dead letters on Kafka: one fetched by its offset, and replayed with the shared code of
``secondread dlq replay`` (:func:`secondread_shared.deadletters.replay`)."""

from __future__ import annotations

from secondread_routing.ops.domain import LetterRef
from secondread_shared import deadletters
from secondread_shared.records import Record


class KafkaLetterBus:
    """:class:`~secondread_routing.ops.ports.LetterBus` on the Kafka cluster at ``bootstrap``."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    async def fetch(self, ref: LetterRef) -> Record | None:
        return await deadletters.fetch(self.bootstrap, ref.topic, ref.partition, ref.offset)

    async def replay(self, letter: Record) -> str:
        await deadletters.replay(self.bootstrap, [letter])
        return deadletters.source_topic(letter)
