"""The ports deidentify's use cases need (small Protocols; adapters and fakes both fit)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from secondread_deidentify.engine import Identity
from secondread_shared.events import Event, ObjectRef
from secondread_shared.orthanc import StoredInstance

Publish = Callable[[Event], Awaitable[None]]


class ObjectStorePort(Protocol):
    """The raw, clear and quarantine buckets (:class:`secondread_shared.storage.ObjectStore`)."""

    async def get_verified(self, ref: ObjectRef) -> bytes: ...

    async def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str = ...
    ) -> ObjectRef: ...


class ArchivePort(Protocol):
    """The reading archive (:class:`secondread_shared.orthanc.OrthancClient`)."""

    async def store_instance(self, data: bytes) -> StoredInstance: ...


class VaultPort(Protocol):
    """The identity vault (:class:`secondread_deidentify.vault.Vault`)."""

    async def record(
        self,
        case_id: str,
        pseudonym: str,
        identity: Identity,
        studies: dict[str, str] | None = None,
    ) -> None: ...

    async def mark_processed(self, case_id: str, event_id: str) -> None: ...
