"""The HTTP app every service starts from: its refusals, as answered and as documented."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from secondread_shared.service import build_runtime, create_http_app
from secondread_shared.settings import CommonSettings


def _app():  # type: ignore[no-untyped-def]
    runtime = build_runtime(CommonSettings(tracing_enabled=False, log_level="ERROR"), "test")
    app = create_http_app(runtime, title="t", start_broker=False)

    @app.get("/things/{n}")
    async def thing(n: int, limit: int = 10) -> dict[str, int]:
        return {"n": n, "limit": limit}

    return app


def test_an_invalid_request_is_refused_with_the_error_body_naming_each_parameter() -> None:
    r = TestClient(_app()).get("/things/seven", params={"limit": "many"})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "invalid"
    assert "path 'n': Input should be a valid integer" in error["message"]
    assert "query 'limit': Input should be a valid integer" in error["message"]


def test_every_route_documents_its_refusals_with_the_error_body() -> None:
    doc = _app().openapi()
    responses = doc["paths"]["/things/{n}"]["get"]["responses"]
    for status in ("401", "403", "404", "409", "422"):
        ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
        assert ref == "#/components/schemas/ErrorBody"
    assert doc["components"]["schemas"]["ErrorBody"]["required"] == ["error"]
    assert "HTTPValidationError" not in json.dumps(doc)  # FastAPI's {"detail": [...]}


def test_fastapis_own_refusals_use_the_error_body_too() -> None:
    app = _app()

    @app.post("/things")
    async def make(body: dict[str, int]) -> dict[str, int]:
        return body

    client = TestClient(app)
    json_type = {"Content-Type": "application/json"}
    r = client.post("/things", content=b"{not json", headers=json_type)
    assert r.status_code == 422
    assert r.json()["error"]["message"].startswith("body ")
    r = client.post("/things", content=b"\x80\x81{", headers=json_type)  # not even text
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "bad_request"
    r = client.get("/no/such/path")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
