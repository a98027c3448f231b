"""The portal's tus endpoint on the real PostgreSQL and S3 of the local stack, as two replicas:
an upload begun on one goes on from the other, a stale or concurrent PATCH is refused without
losing bytes, every request needs the case's capability, and the case opens once, with exactly
the bytes sent.

The test's hospital is unknown to the running ingest, so the running service never claims the
test's uploads (a replica only opens cases of the hospitals it is configured for).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import IO

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from secondread_ingest.api import error_response
from secondread_ingest.errors import InputRejected
from secondread_ingest.intake import IntakeForm
from secondread_ingest.portal import add_error_handler, build_tus_router, tus_guard
from secondread_ingest.portal_repository import PortalRepository, SubmissionState
from secondread_ingest.portal_service import LinkService, PortalService
from secondread_ingest.settings import IngestSettings
from secondread_ingest.tus import SharedUploadStore
from secondread_shared.db import Database
from secondread_shared.storage import ObjectStore
from tests.e2e.conftest import running_stack  # noqa: F401  (the fixture: starts the stack)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("running_stack")]

HOSPITAL = "portal-tus-test"
TUS = {"Tus-Resumable": "1.0.0"}
META = "filename " + base64.b64encode(b"study.zip").decode()
META += ",filetype " + base64.b64encode(b"application/zip").decode()


@dataclass
class RecordingCases:
    """A :class:`CaseOpener` that keeps what it was given (ingest's own is tested end to end)."""

    opened: list[tuple[str, bytes]] = field(default_factory=list)

    async def open_from_zip(
        self, *, case_id: str, hospital_id: str, intake: IntakeForm, zip_file: IO[bytes]
    ) -> int:
        self.opened.append((case_id, zip_file.read()))
        return 1

    async def case_exists(self, case_id: str) -> bool:
        return any(c == case_id for c, _ in self.opened)

    async def case_status(self, case_id: str) -> str | None:
        return "received"


@dataclass
class Replica:
    db: Database
    service: PortalService
    client: httpx.AsyncClient


async def replica(settings: IngestSettings, cases: RecordingCases, part_size: int) -> Replica:
    db = Database(settings.db_dsn, max_size=4)
    await db.open()
    repo = PortalRepository(db)
    await repo.migrate()
    store = ObjectStore.from_settings(settings)
    uploads = SharedUploadStore(
        repo, store, settings.bucket_raw, settings.db_dsn, part_size=part_size, lock_timeout_s=2
    )
    links = LinkService(
        repo=repo, key=b"test-key", hospitals=lambda: {HOSPITAL}, public_url="http://portal/"
    )
    service = PortalService(
        repo=repo, links=links, uploads=uploads, cases=cases, max_upload_bytes=10**9
    )
    app = FastAPI()

    @app.exception_handler(InputRejected)
    async def rejected(_request: Request, exc: InputRejected) -> JSONResponse:
        return error_response(exc)

    add_error_handler(app)
    app.include_router(
        build_tus_router(service, uploads, 10**9), dependencies=[Depends(tus_guard(service))]
    )
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8001"
    )
    return Replica(db, service, client)


@pytest.fixture
async def replicas() -> AsyncIterator[tuple[Replica, Replica, RecordingCases]]:
    settings = IngestSettings()
    cases = RecordingCases()
    a = await replica(settings, cases, part_size=64 * 1024)
    b = await replica(settings, cases, part_size=64 * 1024)
    try:
        yield a, b, cases
    finally:
        for r in (a, b):
            await r.client.aclose()
            await r.db.close()


async def submit(r: Replica, size: int) -> str:
    link = await r.service.links.create_link(
        hospital_id=HOSPITAL, created_by="test", expires_in=timedelta(hours=1)
    )
    done = await r.service.submit_form(
        link_token=link.token,
        intake={
            "clinical_question": "Is it new?",
            "referring_physician": {"name": "Dr T", "email": "t@example.org"},
            "consent": True,
        },
        summary={"instances": 3, "series": 1, "studies": 1, "modalities": ["CT"]},
        upload_length=size,
    )
    return done.status_token


def patch(offset: int, token: str) -> dict[str, str]:
    return {
        **TUS,
        "X-Portal-Status": token,
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
    }


async def create(r: Replica, token: str, size: int) -> str:
    resp = await r.client.post(
        "/portal/tus/",
        headers={
            **TUS,
            "X-Portal-Status": token,
            "Upload-Length": str(size),
            "Upload-Metadata": META,
        },
    )
    assert resp.status_code == 201, resp.text
    return str(resp.headers["location"]).removeprefix("http://127.0.0.1:8001")


async def offset(r: Replica, path: str, token: str) -> int:
    resp = await r.client.head(path, headers={**TUS, "X-Portal-Status": token})
    assert resp.status_code == 200
    return int(resp.headers["upload-offset"])


async def test_an_upload_begun_on_one_replica_finishes_on_the_other_and_opens_once(
    replicas: tuple[Replica, Replica, RecordingCases],
) -> None:
    a, b, cases = replicas
    data = os.urandom(300_000)
    token = await submit(a, len(data))
    path = await create(a, token, len(data))

    r1 = await a.client.patch(path, headers=patch(0, token), content=data[:100_000])
    assert r1.status_code == 204 and r1.headers["upload-offset"] == "100000"
    assert await offset(b, path, token) == 100_000  # the other replica knows the offset

    stale = await b.client.patch(path, headers=patch(0, token), content=data[:100_000])
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "offset_mismatch"
    assert await offset(a, path, token) == 100_000  # the refused PATCH stored nothing

    r2 = await b.client.patch(path, headers=patch(100_000, token), content=data[100_000:])
    assert r2.status_code == 204 and r2.headers["upload-offset"] == str(len(data))

    row = await a.service.submission(token)
    assert row.state == SubmissionState.UPLOADED and row.stored == len(data)
    # Both replicas' workers run; exactly one opens the case, with exactly the bytes sent.
    opened = await asyncio.gather(a.service.open_next_case(), b.service.open_next_case())
    assert True in opened
    while await a.service.open_next_case():  # earlier runs' leftovers of the test hospital
        pass
    mine = [z for c, z in cases.opened if c == (await a.service.submission(token)).case_id]
    assert len(mine) == 1
    assert hashlib.sha256(mine[0]).hexdigest() == hashlib.sha256(data).hexdigest()
    row = await a.service.submission(token)
    assert row.state == SubmissionState.OPENED
    # ... and the upload's parts are gone from the store once the case is open.
    assert await a.service.repo.tus_parts(row.upload_id or "") == []
    status = await a.service.status(token)
    assert status["step"] == "received"
    assert status["upload"] == {"received_bytes": len(data), "total_bytes": len(data)}


async def test_two_patches_at_once_store_the_bytes_once(
    replicas: tuple[Replica, Replica, RecordingCases],
) -> None:
    a, b, _ = replicas
    data = os.urandom(200_000)
    token = await submit(a, len(data))
    path = await create(a, token, len(data))
    first, second = await asyncio.gather(
        a.client.patch(path, headers=patch(0, token), content=data[:150_000]),
        b.client.patch(path, headers=patch(0, token), content=data[:150_000]),
    )
    codes = sorted([first.status_code, second.status_code])
    assert codes[0] == 204 and codes[1] in (409, 503), (first.text, second.text)
    assert await offset(b, path, token) == 150_000
    done = await a.client.patch(path, headers=patch(150_000, token), content=data[150_000:])
    assert done.status_code == 204
    row = await a.service.submission(token)
    assert row.stored == len(data) and row.state == SubmissionState.UPLOADED


async def test_every_request_needs_the_cases_capability_and_its_own_upload(
    replicas: tuple[Replica, Replica, RecordingCases],
) -> None:
    a, _, _ = replicas
    token = await submit(a, 1000)
    other = await submit(a, 1000)
    path = await create(a, token, 1000)

    anonymous = await a.client.patch(path, headers={**patch(0, token), "X-Portal-Status": ""})
    assert anonymous.status_code == 401
    guessed = await a.client.head(path, headers={**TUS, "X-Portal-Status": "guess"})
    assert guessed.status_code == 401
    assert guessed.headers.get("upload-offset") is None
    foreign = await a.client.patch(path, headers=patch(0, other), content=b"x" * 10)
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "not_found"
    assert await offset(a, path, token) == 0

    wrong_length = await a.client.post(
        "/portal/tus/",
        headers={**TUS, "X-Portal-Status": other, "Upload-Length": "999", "Upload-Metadata": META},
    )
    assert wrong_length.status_code == 400
    assert "1000 bytes the form declared" in wrong_length.json()["error"]["message"]

    too_much = await a.client.patch(path, headers=patch(0, token), content=b"x" * 1001)
    assert too_much.status_code == 400


async def test_an_upload_whose_completion_was_not_recorded_is_adopted(
    replicas: tuple[Replica, Replica, RecordingCases],
) -> None:
    """The replica stopped between the last bytes and its completion hook: the bytes are all
    there, the client sees the upload done, and the worker still opens the case."""
    a, _, cases = replicas
    data = os.urandom(5000)
    token = await submit(a, len(data))
    path = await create(a, token, len(data))
    resp = await a.client.patch(path, headers=patch(0, token), content=data)
    assert resp.status_code == 204
    row = await a.service.submission(token)
    async with a.db.transaction() as conn:  # as if the hook never ran
        await conn.execute(
            "UPDATE portal_submissions SET state = 'uploading' WHERE submission_id = %s",
            (row.submission_id,),
        )
    assert await a.service.adopt_finished() >= 1
    while await a.service.open_next_case():
        pass
    row = await a.service.submission(token)
    assert row.state == SubmissionState.OPENED
    assert [z for c, z in cases.opened if c == row.case_id] == [data]
