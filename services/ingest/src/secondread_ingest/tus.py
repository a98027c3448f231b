"""The portal's resumable uploads: the tus 1.0.0 protocol (https://tus.io/protocols/resumable-upload)
served by tuspyserver's FastAPI router, on a storage backend of ingest's own.

tuspyserver handles the protocol (creation, HEAD offsets, PATCH, termination, expiry). Its
default backends keep upload state on the local disk or, for S3, serialise writers within one
process only, so a second replica could not resume an upload the first one began.
:class:`SharedUploadStore` keeps everything shared instead:

- the tus info and the offset in PostgreSQL (``tus_uploads``); the offset is the sum of the
  parts recorded, never a number a process remembers;
- the bytes in the raw bucket, one object per part (``portal/uploads/<id>/<start>-<rand>``),
  each recorded in ``tus_parts`` only if it continues the upload exactly where it stands;
- writers of one upload serialised by a PostgreSQL advisory lock held on its own connection, so
  a PATCH on any replica excludes a PATCH on every other, and a killed replica's lock goes with
  its connection.

A PATCH cut short (a dropped connection, a closed tab) keeps every byte that arrived: tuspyserver
flushes on ``ClientDisconnect``, and the next ``HEAD`` answers that offset on any replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import IO, Any

import psycopg
from tuspyserver.storage import TusStorage

from secondread_ingest.portal_repository import Part, PortalRepository
from secondread_shared.logging import get_logger
from secondread_shared.storage import ObjectStore

log = get_logger(__name__)

PART_SIZE = 8 * 1024 * 1024
"""Bytes buffered before a part is written (per PATCH in progress)."""
LOCK_TIMEOUT_S = 10.0

# tuspyserver logs each HEAD with the upload's info at INFO, in an f-string: keep it quiet (the
# portal puts nothing identifying in tus metadata, but logs are JSON key-value pairs here).
logging.getLogger("tuspyserver").setLevel(logging.WARNING)


def _lock_key(upload_id: str) -> str:
    return f"secondread-tus:{upload_id}"


class UploadMovedOn(RuntimeError):
    """A part did not continue the upload where it stood (another writer got there first)."""


class SharedUploadStore(TusStorage):
    """tuspyserver's :class:`~tuspyserver.storage.TusStorage` on PostgreSQL and S3.

    Parameters
    ----------
    repo
        The portal's tables (``tus_uploads``, ``tus_parts``).
    store, bucket
        Where the parts go (the PHI raw bucket: an upload is raw patient data).
    dsn
        For the advisory lock's own connection (not one of the pool's).
    """

    def __init__(
        self,
        repo: PortalRepository,
        store: ObjectStore,
        bucket: str,
        dsn: str,
        *,
        part_size: int = PART_SIZE,
        lock_timeout_s: float = LOCK_TIMEOUT_S,
    ) -> None:
        self.repo = repo
        self.store = store
        self.bucket = bucket
        self.dsn = dsn
        self.part_size = part_size
        self.lock_timeout_s = lock_timeout_s
        self._pending: dict[str, bytearray] = {}
        """Bytes of the PATCH in progress not yet written as a part (only under the lock)."""

    # --- data -----------------------------------------------------------
    async def create(self, uid: str) -> None:
        await self.repo.tus_create(uid)

    async def exists(self, uid: str) -> bool:
        return await self.repo.tus_state(uid) is not None

    async def size(self, uid: str) -> int:
        state = await self.repo.tus_state(uid)
        return 0 if state is None else state[1]

    async def append(self, uid: str, chunk: bytes) -> None:
        buf = self._pending.setdefault(uid, bytearray())
        buf += chunk
        if len(buf) >= self.part_size:
            await self._write_part(uid)

    async def flush(self, uid: str) -> None:
        await self._write_part(uid)

    async def _write_part(self, uid: str) -> None:
        buf = self._pending.pop(uid, None)
        if not buf:
            return
        start = await self.size(uid)
        key = f"portal/uploads/{uid}/{start:015d}-{secrets.token_hex(4)}"
        await self.store.put(self.bucket, key, bytes(buf))
        if not await self.repo.tus_add_part(uid, Part(start, len(buf), self.bucket, key)):
            await self.store.delete(self.bucket, key)
            raise UploadMovedOn(f"upload {uid} moved on while a part was written")

    async def finalize(self, uid: str) -> None:
        await self.repo.tus_finish(uid)

    async def read(self, uid: str) -> bytes | None:
        if not await self.exists(uid):
            return None
        chunks = [await self.store.get(p.bucket, p.key) for p in await self.repo.tus_parts(uid)]
        return b"".join(chunks)

    async def copy_to(self, uid: str, out: IO[bytes]) -> int:
        """Write the upload's bytes, in order, to ``out`` (one part in memory at a time)."""
        total = 0
        for part in await self.repo.tus_parts(uid):
            data = await self.store.get(part.bucket, part.key)
            if len(data) != part.length:
                raise UploadMovedOn(f"part {part.key} holds {len(data)} bytes, not {part.length}")
            out.write(data)
            total += len(data)
        return total

    async def delete(self, uid: str) -> None:
        for part in await self.repo.tus_delete(uid):
            await self.store.delete(part.bucket, part.key)

    # --- info -----------------------------------------------------------
    async def read_info(self, uid: str) -> dict[str, Any] | None:
        state = await self.repo.tus_state(uid)
        if state is None:
            return None
        info, stored = state
        return None if info is None else {**info, "offset": stored}

    async def write_info(self, uid: str, data: dict[str, Any]) -> None:
        await self.repo.tus_write_info(uid, data)

    # --- housekeeping ---------------------------------------------------
    async def list_uids(self) -> list[str]:
        return await self.repo.tus_ids()

    def location(self, uid: str) -> str:
        return f"s3://{self.bucket}/portal/uploads/{uid}/"

    @contextlib.asynccontextmanager
    async def lock(self, uid: str) -> AsyncIterator[None]:  # type: ignore[override]
        """Exclusive access to ``uid`` across every replica (``pg_try_advisory_lock`` on a
        connection of its own; :class:`TimeoutError`, which tuspyserver answers with 503 and
        tus clients retry, when another writer holds it for ``lock_timeout_s``)."""
        conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        try:
            deadline = time.monotonic() + self.lock_timeout_s
            while True:
                cur = await conn.execute(
                    "SELECT pg_try_advisory_lock(hashtextextended(%s, 0)) AS ok",
                    (_lock_key(uid),),
                )
                row = await cur.fetchone()
                if row is not None and row[0]:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("another request is writing this upload: retry")
                await asyncio.sleep(0.1)
            self._pending.pop(uid, None)  # nothing left over from a PATCH that failed
            try:
                yield
            finally:
                self._pending.pop(uid, None)
                with contextlib.suppress(psycopg.Error):
                    await conn.execute(
                        "SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (_lock_key(uid),)
                    )
        finally:
            await conn.close()
