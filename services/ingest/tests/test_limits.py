"""The body limit refuses a chunked upload that passes the limit, with no Content-Length."""

from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from secondread_ingest.api import error_response
from secondread_ingest.errors import InputRejected
from secondread_ingest.limits import BodyLimit


def make_app(limit: int) -> FastAPI:
    app = FastAPI()

    @app.exception_handler(InputRejected)
    async def rejected(_request: Request, exc: InputRejected) -> JSONResponse:
        return error_response(exc)

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, Any]:
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
        return {"bytes": total}

    app.add_middleware(BodyLimit, max_bytes=limit)
    return app


def chunks(n: int, size: int = 1000) -> Any:
    for _ in range(n):
        yield b"x" * size


@pytest.mark.parametrize(("n", "status"), [(5, 200), (50, 413)])
def test_chunked_body_is_limited(n: int, status: int) -> None:
    client = TestClient(make_app(limit=10_000))
    resp = client.post("/upload", content=chunks(n))  # a generator: sent chunked
    assert resp.status_code == status
    if status == 413:
        assert resp.json()["error"]["code"] == "too_large"
    else:
        assert resp.json() == {"bytes": n * 1000}
