"""Async access to the Orthanc REST API (the reading archive, and a hospital's PACS) on the
design's client, ``orthanc-api-client``.

``orthanc-api-client`` is synchronous (requests): every call runs in a worker thread, which is
also what lets deidentify write a case's instances to the archive in parallel. Every request
carries the configured timeout. A 4xx answer (other than 404 where "gone" is fine, 408 and 429)
becomes :class:`~secondread_shared.errors.OrthancRejectedError` (permanent); a connection
error, a timeout or a 5xx becomes :class:`~secondread_shared.errors.OrthancError` (transient).
See the Orthanc Book, "REST API of the Orthanc core".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from orthanc_api_client import OrthancApiClient
from orthanc_api_client import exceptions as api_errors

from secondread_shared.errors import OrthancError, OrthancRejectedError
from secondread_shared.settings import CommonSettings

T = TypeVar("T")
RETRYABLE_4XX = frozenset({408, 429})


@dataclass(frozen=True)
class StoredInstance:
    """Orthanc's answer to ``POST /instances``."""

    instance_id: str
    study_id: str
    status: str  # "Success" or "AlreadyStored"


class OrthancClient:
    """An async facade over ``orthanc_api_client.OrthancApiClient``.

    Parameters
    ----------
    url
        Base URL, e.g. ``http://127.0.0.1:8042``.
    timeout_s
        Timeout of each request, in seconds.
    connections
        The client's HTTP connection pool (parallel calls beyond it wait for a connection).
    """

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        timeout_s: float = 30.0,
        connections: int = 16,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._api = OrthancApiClient(
            self.url + "/", user=user, pwd=password, pool_maxsize=connections, pool_block=True
        )

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> OrthancClient:
        """The reading archive the settings name."""
        password = settings.orthanc_password
        return cls(
            settings.orthanc_url,
            user=settings.orthanc_user,
            password=password.get_secret_value() if password else None,
            timeout_s=settings.orthanc_timeout_s,
        )

    async def aclose(self) -> None:
        await asyncio.to_thread(self._api._http_session.close)

    async def _call(
        self, what: str, call: Callable[..., requests.Response], path: str, **kwargs: Any
    ) -> requests.Response:
        """One request in a worker thread, its failures mapped to the typed errors."""
        try:
            return await asyncio.to_thread(call, path, timeout=self.timeout_s, **kwargs)
        except api_errors.HttpError as exc:
            code = exc.http_status_code or 0
            if 400 <= code < 500 and code not in RETRYABLE_4XX:
                raise OrthancRejectedError(f"Orthanc refused {what}: HTTP {code}") from exc
            raise OrthancError(f"Orthanc {what}: HTTP {code}") from exc
        except (api_errors.OrthancApiException, requests.RequestException) as exc:
            raise OrthancError(f"Orthanc {what}: {type(exc).__name__}") from exc

    async def _json(self, what: str, call: Callable[..., requests.Response], path: str,
                    **kwargs: Any) -> Any:  # fmt: skip
        return (await self._call(what, call, path, **kwargs)).json()

    async def system(self) -> dict[str, Any]:
        """``GET /system``: version and names; used for readiness."""
        data: dict[str, Any] = await self._json("GET /system", self._api.get, "system")
        return data

    async def store_instance(self, dicom: bytes) -> StoredInstance:
        """``POST /instances`` with a DICOM Part 10 file."""
        data = await self._json(
            "the instance", self._api.post, "instances", data=dicom,
            headers={"Content-Type": "application/dicom"},
        )  # fmt: skip
        return StoredInstance(
            instance_id=data["ID"], study_id=data["ParentStudy"], status=data.get("Status", "")
        )

    async def delete_instance(self, instance_id: str) -> None:
        """``DELETE /instances/{id}``; an instance that is gone already is fine."""
        try:
            await self._call(f"DELETE instance {instance_id}", self._api.delete,
                             f"instances/{instance_id}")  # fmt: skip
        except OrthancRejectedError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, api_errors.HttpError) and cause.http_status_code == 404):
                raise

    async def find_studies(self, query: dict[str, str]) -> list[dict[str, Any]]:
        """``POST /tools/find`` at study level with ``Expand``; ``query`` uses DICOM keywords."""
        studies: list[dict[str, Any]] = await self._json(
            "POST /tools/find", self._api.post, "tools/find",
            json={"Level": "Study", "Query": query, "Expand": True},
        )  # fmt: skip
        return studies

    async def study(self, study_id: str) -> dict[str, Any]:
        """``GET /studies/{id}``."""
        data: dict[str, Any] = await self._json(
            f"GET study {study_id}", self._api.get, f"studies/{study_id}"
        )
        return data

    async def study_series(self, study_id: str) -> list[dict[str, Any]]:
        """``GET /studies/{id}/series``: the study's series with their main DICOM tags."""
        series: list[dict[str, Any]] = await self._json(
            f"GET series of study {study_id}", self._api.get, f"studies/{study_id}/series"
        )
        return series

    async def instance_file(self, instance_id: str) -> bytes:
        """``GET /instances/{id}/file``: the stored DICOM file."""
        resp = await self._call(
            f"GET instance {instance_id}", self._api.get, f"instances/{instance_id}/file"
        )
        return resp.content
