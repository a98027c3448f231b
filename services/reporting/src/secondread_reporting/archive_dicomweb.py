"""The archive's DICOMweb root (Orthanc's DICOMweb plugin), asked on a reader's behalf.

Answers are streamed: the caller gets the response headers and reads the body chunk by chunk, so
no study is ever held in memory. The archive builds its ``BulkDataURI`` values from the RFC 7239
``Forwarded`` header (the Orthanc DICOMweb plugin honours it since 0.7), so the URIs in its
metadata point at reporting's proxy, never at the archive.
"""

from __future__ import annotations

import re

import httpx

from secondread_reporting.dicomweb import Forward
from secondread_reporting.errors import ArchiveUnavailable
from secondread_reporting.settings import ReportingSettings

PASSED_BACK = ("content-type", "content-length", "content-location", "warning")
"""Answer headers the reader gets as the archive sent them (a multipart ``Content-Type`` keeps
its boundary)."""
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def forwarded(host: str, proto: str) -> str:
    """The RFC 7239 ``Forwarded`` value naming where the reader reached us; a host that is not
    a plain ``name[:port]`` is refused, so nothing can be injected into the header."""
    if not _HOST.match(host):
        raise ValueError(f"{host!r} is not a host name")
    return f"host={host};proto={'https' if proto == 'https' else 'http'}"


class ArchiveDicomWeb:
    """Streaming GETs against the archive's DICOMweb root.

    Parameters
    ----------
    root
        The archive's DICOMweb root, e.g. ``http://127.0.0.1:8042/dicom-web``.
    timeout_s
        Connect and read timeout of each request (a read waits at most this long between two
        chunks, not for the whole answer).
    """

    def __init__(
        self,
        root: str,
        *,
        user: str | None = None,
        password: str | None = None,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.root = root.rstrip("/")
        auth = httpx.BasicAuth(user, password or "") if user else None
        self._http = httpx.AsyncClient(
            auth=auth,
            timeout=httpx.Timeout(timeout_s, pool=timeout_s),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: ReportingSettings) -> ArchiveDicomWeb:
        """The archive the settings name (``archive_dicomweb_url``, else Orthanc's
        ``/dicom-web``), with the archive's credentials."""
        password = settings.orthanc_password
        return cls(
            settings.archive_dicomweb_url or f"{settings.orthanc_url.rstrip('/')}/dicom-web",
            user=settings.orthanc_user,
            password=password.get_secret_value() if password else None,
            timeout_s=settings.orthanc_timeout_s,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def open(
        self, forward: Forward, *, accept: str | None, forwarded_for: str
    ) -> httpx.Response:
        """Send ``forward`` and return as soon as the headers arrived; the caller streams the
        body (``aiter_raw``) and must close the response."""
        headers = {"Accept-Encoding": "identity", "Forwarded": forwarded_for}
        if accept:
            headers["Accept"] = accept
        url = f"{self.root}/{forward.path}"
        if forward.query:
            url += "?" + forward.query_string
        request = self._http.build_request("GET", url, headers=headers)
        try:
            return await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise ArchiveUnavailable(
                f"the archive's DICOMweb did not answer ({type(exc).__name__})"
            ) from exc
