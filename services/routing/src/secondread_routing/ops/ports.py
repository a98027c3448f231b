"""What the operations use cases need: the status view, the dead-letter index, the replay
ledger (routing's PostgreSQL), the bus that fetches and replays a dead letter (Kafka), a clock
and a token verifier. Small Protocols, faked in the tests."""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from secondread_routing.ops.domain import CaseRow, LetterRef, LetterRow, Replay
from secondread_shared.casestatus import CaseStatus
from secondread_shared.deadletters import DeadLetter
from secondread_shared.oidc import Principal
from secondread_shared.records import Record


class StatusView(Protocol):
    """The latest status of every case, fed by the status topic (safe for N replicas)."""

    async def upsert(self, status: CaseStatus) -> bool:
        """Keep ``status`` when it supersedes the case's (later time, then offset); whether it
        did. A redelivered or older event changes nothing but the case's first-seen time."""
        ...

    async def counts(self) -> dict[str, int]: ...
    async def recent(self, state: str | None, limit: int) -> list[CaseRow]:
        """Most recently changed first, in ``state`` when given."""
        ...

    async def in_states(self, states: Collection[str], limit: int) -> list[CaseRow]:
        """Cases in ``states``, longest unchanged first."""
        ...

    async def open_with_due(self, exclude: Collection[str], limit: int) -> list[CaseRow]:
        """Cases with a due time that are in none of ``exclude``, soonest due first."""
        ...


class LetterIndex(Protocol):
    """Every dead letter's headers and position (never its payload), and its replay."""

    async def add(self, letter: DeadLetter) -> None: ...
    async def letters(self, limit: int) -> tuple[list[LetterRow], int, int]:
        """Newest first; and how many there are, and how many are not replayed."""
        ...

    async def letter(self, ref: LetterRef) -> LetterRow | None: ...


class ReplayClaim(Protocol):
    previous: Replay | None
    """The replay recorded before this claim, if the letter was replayed already."""

    async def published(self, target_topic: str, at: datetime) -> Replay: ...


class ReplayLedger(Protocol):
    def claim(
        self, ref: LetterRef, operator: str, at: datetime
    ) -> AbstractAsyncContextManager[ReplayClaim]:
        """Hold the letter's replay record (one holder at a time, across replicas) until the
        block ends; recorded only when the block ends without an exception."""
        ...


class LetterBus(Protocol):
    async def fetch(self, ref: LetterRef) -> Record | None: ...
    async def replay(self, letter: Record) -> str:
        """Publish ``letter`` again on its source topic; that topic."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class Verifier(Protocol):
    async def verify(self, token: str) -> Principal: ...
