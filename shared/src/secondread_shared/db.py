"""PostgreSQL access for a service's own schema (psycopg 3, async pool).

Each service connects as its own role, whose schema is its ``search_path``; it cannot read
another service's tables. Migrations are idempotent SQL statements run at start-up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from secondread_shared.errors import TransientError


class DatabaseError(TransientError):
    """The database is unreachable or failed a statement."""


class Database:
    """A pool of connections to one service schema.

    Parameters
    ----------
    dsn
        libpq connection string (see :attr:`CommonSettings.db_dsn`).
    """

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 8) -> None:
        self._pool = AsyncConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"row_factory": dict_row, "autocommit": False},
            timeout=15.0,
        )

    async def open(self, migrations: Sequence[str] = ()) -> None:
        """Open the pool and apply ``migrations`` (each one idempotent) in one transaction."""
        try:
            await self._pool.open(wait=True, timeout=30.0)
            async with self._pool.connection() as conn, conn.transaction():
                for statement in migrations:
                    await conn.execute(statement.encode())
        except (psycopg.Error, TimeoutError) as exc:
            raise DatabaseError(f"database unavailable: {type(exc).__name__}") from exc

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
        """A connection inside one transaction, committed on success."""
        try:
            async with self._pool.connection() as conn, conn.transaction():
                yield conn  # type: ignore[misc]
        except psycopg.OperationalError as exc:
            raise DatabaseError(f"database error: {type(exc).__name__}") from exc

    async def ping(self) -> bool:
        """Readiness: one round trip."""
        try:
            async with self._pool.connection(timeout=2.0) as conn:
                await conn.execute(b"SELECT 1")
            return True
        except Exception:
            return False


async def migrate(
    db: Database,
    migrations: Sequence[tuple[int, Sequence[str]]],
    *,
    lock: int,
    always: Sequence[str] = (),
) -> list[int]:
    """Apply numbered migrations not recorded in ``schema_migrations`` yet, in order, in one
    transaction; return the versions run.

    Parameters
    ----------
    migrations
        ``(version, statements)`` pairs; a version runs once, ever.
    lock
        The ``pg_advisory_xact_lock`` key of this schema's migrations, so that two replicas
        starting together migrate one after the other.
    always
        Idempotent statements run first on every start, outside the versions (the shared
        outbox's, which change with the shared package).
    """
    applied: list[int] = []
    async with db.transaction() as conn:
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT coalesce(max(version), 0) AS v FROM schema_migrations")
        row = await cur.fetchone()
        current = int(row["v"]) if row else 0
        for statement in always:
            await conn.execute(statement.encode())
        for version, statements in sorted(migrations):
            if version <= current:
                continue
            for statement in statements:
                await conn.execute(statement.encode())
            await conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            applied.append(version)
    return applied
