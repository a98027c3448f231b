"""Async client for the Orthanc REST API (the reading archive).

Every request has a timeout. A 4xx answer to an upload becomes
:class:`~secondread_shared.errors.OrthancRejectedError` (permanent); anything else that fails
becomes :class:`~secondread_shared.errors.OrthancError` (transient).
See the Orthanc Book, "REST API of the Orthanc core".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from secondread_shared.errors import OrthancError, OrthancRejectedError
from secondread_shared.settings import CommonSettings


@dataclass(frozen=True)
class StoredInstance:
    """Orthanc's answer to ``POST /instances``."""

    instance_id: str
    study_id: str
    status: str  # "Success" or "AlreadyStored"


class OrthancClient:
    """A small async Orthanc client.

    Parameters
    ----------
    url
        Base URL, e.g. ``http://127.0.0.1:8042``.
    timeout_s
        Timeout of each request, in seconds.
    """

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        auth = httpx.BasicAuth(user, password or "") if user else None
        self._http = httpx.AsyncClient(base_url=url.rstrip("/"), auth=auth, timeout=timeout_s)
        self.url = url.rstrip("/")

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
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise OrthancError(f"Orthanc {method} {path}: {type(exc).__name__}") from exc
        if resp.status_code >= 500:
            raise OrthancError(f"Orthanc {method} {path}: HTTP {resp.status_code}")
        return resp

    async def system(self) -> dict[str, Any]:
        """``GET /system``: version and names; used for readiness."""
        resp = await self._request("GET", "/system")
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    async def store_instance(self, dicom: bytes) -> StoredInstance:
        """``POST /instances`` with a DICOM Part 10 file."""
        resp = await self._request(
            "POST", "/instances", content=dicom, headers={"Content-Type": "application/dicom"}
        )
        if 400 <= resp.status_code < 500:
            raise OrthancRejectedError(f"Orthanc refused the instance: HTTP {resp.status_code}")
        data = resp.json()
        return StoredInstance(
            instance_id=data["ID"], study_id=data["ParentStudy"], status=data.get("Status", "")
        )

    async def delete_instance(self, instance_id: str) -> None:
        """``DELETE /instances/{id}``; an instance that is gone already is fine."""
        resp = await self._request("DELETE", f"/instances/{instance_id}")
        if resp.status_code not in (200, 404):
            resp.raise_for_status()

    async def find_studies(self, query: dict[str, str]) -> list[dict[str, Any]]:
        """``POST /tools/find`` at study level with ``Expand``; ``query`` uses DICOM keywords."""
        resp = await self._request(
            "POST", "/tools/find", json={"Level": "Study", "Query": query, "Expand": True}
        )
        resp.raise_for_status()
        studies: list[dict[str, Any]] = resp.json()
        return studies

    async def study(self, study_id: str) -> dict[str, Any]:
        """``GET /studies/{id}``."""
        resp = await self._request("GET", f"/studies/{study_id}")
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    async def study_series(self, study_id: str) -> list[dict[str, Any]]:
        """``GET /studies/{id}/series``: the study's series with their main DICOM tags."""
        resp = await self._request("GET", f"/studies/{study_id}/series")
        resp.raise_for_status()
        series: list[dict[str, Any]] = resp.json()
        return series

    async def instance_file(self, instance_id: str) -> bytes:
        """``GET /instances/{id}/file``: the stored DICOM file."""
        resp = await self._request("GET", f"/instances/{instance_id}/file")
        resp.raise_for_status()
        return resp.content
