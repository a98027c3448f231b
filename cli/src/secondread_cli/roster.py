"""``secondread roster import FILE`` and ``secondread roster list``: the roster in routing's
database (schema ``routing``, as routing's role; ``SECONDREAD_DB_*`` settings).

Import validates the whole file first and changes nothing when any reader is invalid; then it
replaces the roster in one transaction, and routing announces the change
(``secondread.roster.changed.v1``, from its outbox) so that waiting cases are retried.
Importing the same file again changes nothing and announces nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from secondread_routing.repository import RoutingRepository
from secondread_routing.roster import Reader, read_roster_file
from secondread_routing.service import import_roster
from secondread_routing.settings import RoutingSettings
from secondread_shared.db import Database


async def _open(settings: RoutingSettings) -> tuple[Database, RoutingRepository]:
    db = Database(settings.db_dsn, min_size=1, max_size=1)
    await db.open()
    repo = RoutingRepository(db)
    await repo.migrate()
    return db, repo


async def import_file(path: Path, settings: RoutingSettings | None = None) -> list[str]:
    """Validate ``path`` and make it the roster; the ids of the readers that changed.

    Raises :class:`~secondread_routing.roster.RosterError` before touching the database when
    the file is invalid.
    """
    settings = settings or RoutingSettings()
    readers = read_roster_file(path, today=datetime.now(UTC).date())
    db, repo = await _open(settings)
    try:
        return await import_roster(repo, readers)
    finally:
        await db.close()


@dataclass(frozen=True)
class ReaderRow:
    reader: Reader
    open_cases: int
    availability: str


def availability(reader: Reader, today: date) -> str:
    if not reader.active:
        return "inactive"
    for a in reader.absences:
        if a.start <= today <= a.end:
            return f"absent until {a.end.isoformat()}"
    upcoming = sorted(a.start for a in reader.absences if a.start > today)
    return f"available (away from {upcoming[0].isoformat()})" if upcoming else "available"


async def list_readers(settings: RoutingSettings | None = None) -> list[ReaderRow]:
    settings = settings or RoutingSettings()
    db, repo = await _open(settings)
    today = datetime.now(UTC).date()
    try:
        async with repo.unit() as unit:
            readers = await unit.readers()
            counts = await unit.open_counts()
    finally:
        await db.close()
    return [ReaderRow(r, counts.get(r.id, 0), availability(r, today)) for r in readers]
