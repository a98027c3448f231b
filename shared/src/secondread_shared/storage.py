"""S3 object storage adapter (any S3 server; versitygw in the local stack).

The ``minio`` client is synchronous, so every call runs in a worker thread. Failures become
:class:`~secondread_shared.errors.StorageError` (transient) or
:class:`~secondread_shared.errors.ObjectNotFoundError` /
:class:`~secondread_shared.errors.IntegrityError` (permanent).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from dataclasses import dataclass
from typing import Any

import urllib3
from minio import Minio
from minio.error import S3Error

from secondread_shared.errors import IntegrityError, ObjectNotFoundError, StorageError
from secondread_shared.events import ObjectRef
from secondread_shared.settings import CommonSettings


class _Minio(Minio):
    """minio's client, signing ``UNSIGNED-PAYLOAD`` over plain HTTP as it does over HTTPS.

    Over HTTP, minio hashes every body for the signature, and the server hashes it again to
    check it: about 2 ms of CPU per half-megabyte instance, a second of a 300-instance case
    spent on both sides. The objects' integrity does not rest on it: every object carries its
    sha256 (metadata and :class:`ObjectRef`), which every reader checks
    (:meth:`ObjectStore.get_verified`).
    """

    def _build_headers(
        self,
        host: str,
        headers: dict[str, Any] | None = None,
        body: bytes | None = None,
        creds: Any = None,
    ) -> tuple[dict[str, Any], Any]:
        built, date = super()._build_headers(host, headers, None, creds)  # body: not hashed
        if body:
            built["Content-Length"] = str(len(body))
        if creds:
            built["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
        return built, date


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    sha256: str


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


class ObjectStore:
    """Put and get whole objects with their sha256 digest.

    Parameters
    ----------
    endpoint
        ``host:port`` of the S3 server.
    timeout_s
        Connect and read timeout of every request.
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        *,
        secure: bool = False,
        region: str = "us-east-1",
        timeout_s: float = 30.0,
    ) -> None:
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(5.0, timeout_s), read=timeout_s),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=(502, 503, 504)),
            maxsize=16,
        )
        self._client = _Minio(
            endpoint=endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> ObjectStore:
        """The object store the settings name."""
        return cls(
            settings.s3_endpoint,
            settings.s3_access_key,
            settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_secure,
            region=settings.s3_region,
            timeout_s=settings.s3_timeout_s,
        )

    async def _run(self, fn: Any, /, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, **kwargs)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket", "NoSuchObject"):
                raise ObjectNotFoundError(f"{exc.code}: {kwargs.get('object_name', '')}") from exc
            raise StorageError(f"S3 {exc.code}") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageError(f"S3 unreachable: {type(exc).__name__}") from exc

    async def put(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        sha256: str | None = None,
    ) -> ObjectRef:
        """Store ``data`` under ``bucket/key`` and return its reference with sha256 (``sha256``
        when the caller has it already: ``sha256_hex(data)``)."""
        digest = sha256 or sha256_hex(data)
        await self._run(
            self._client.put_object,
            bucket_name=bucket,
            object_name=key,
            data=io.BytesIO(data),
            length=len(data),
            content_type=content_type,
            metadata={"sha256": digest},
        )
        return ObjectRef(bucket=bucket, key=key, sha256=digest, size=len(data))

    async def get(self, bucket: str, key: str) -> bytes:
        """Read a whole object."""

        def read(bucket_name: str, object_name: str) -> bytes:
            resp = self._client.get_object(bucket_name=bucket_name, object_name=object_name)
            try:
                return bytes(resp.read())
            finally:
                resp.close()
                resp.release_conn()

        data: bytes = await self._run(read, bucket_name=bucket, object_name=key)
        return data

    async def get_verified(self, ref: ObjectRef) -> bytes:
        """Read the object ``ref`` names and check its sha256 (claim-check integrity)."""
        data = await self.get(ref.bucket, ref.key)
        if sha256_hex(data) != ref.sha256:
            raise IntegrityError(f"sha256 mismatch for {ref.bucket}/{ref.key}")
        return data

    async def exists(self, bucket: str, key: str) -> bool:
        """Whether ``bucket/key`` exists."""
        try:
            await self._run(self._client.stat_object, bucket_name=bucket, object_name=key)
        except ObjectNotFoundError:
            return False
        return True

    async def delete(self, bucket: str, key: str) -> None:
        """Remove ``bucket/key``; removing an absent object is not an error (S3 DeleteObject)."""
        await self._run(self._client.remove_object, bucket_name=bucket, object_name=key)

    async def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key under ``prefix`` (recursive)."""

        def listing(bucket_name: str, prefix: str) -> list[str]:
            return [
                o.object_name
                for o in self._client.list_objects(
                    bucket_name=bucket_name, prefix=prefix, recursive=True
                )
                if o.object_name
            ]

        keys: list[str] = await self._run(listing, bucket_name=bucket, prefix=prefix)
        return keys

    async def ping(self, bucket: str) -> bool:
        """Readiness: the bucket answers."""
        try:
            return bool(await self._run(self._client.bucket_exists, bucket_name=bucket))
        except StorageError:
            return False
