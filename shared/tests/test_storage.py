"""The object store adapter on the real S3 server of the local stack (versitygw): a round trip,
the sha256 kept and checked, and bodies sent as ``UNSIGNED-PAYLOAD`` (not hashed for the
signature, on either side)."""

from __future__ import annotations

import os
import uuid

import pytest

from secondread_shared.errors import IntegrityError
from secondread_shared.events import ObjectRef
from secondread_shared.settings import CommonSettings
from secondread_shared.storage import ObjectStore, sha256_hex
from tests.e2e.conftest import running_stack  # noqa: F401  (the fixture: starts the stack)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("running_stack")]


def test_bodies_are_signed_as_unsigned_payload_and_not_hashed() -> None:
    store = ObjectStore.from_settings(CommonSettings())
    creds = store._client._provider.retrieve()  # type: ignore[union-attr]
    headers, _ = store._client._build_headers("h:9000", {}, b"x" * 1000, creds)
    assert headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert headers["Content-Length"] == "1000"


async def test_a_round_trip_keeps_the_bytes_and_their_sha256() -> None:
    settings = CommonSettings()
    store = ObjectStore.from_settings(settings)
    key = f"storage-test/{uuid.uuid4().hex}"
    data = os.urandom(300_000)
    try:
        ref = await store.put(settings.bucket_clear, key, data, sha256=sha256_hex(data))
        assert ref == ObjectRef(
            bucket=settings.bucket_clear, key=key, sha256=sha256_hex(data), size=len(data)
        )
        assert await store.get_verified(ref) == data
        with pytest.raises(IntegrityError):
            await store.get_verified(ref.model_copy(update={"sha256": "0" * 64}))
    finally:
        await store.delete(settings.bucket_clear, key)
