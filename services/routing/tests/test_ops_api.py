"""The operator API and the page over HTTP, with the real token verifier on an in-memory key
set (the e2e test signs in through the real Keycloak): 401 and 403 with bodies naming what is
wrong, the views and the replay, the page's configuration and security headers, the OpenAPI."""

from __future__ import annotations

import asyncio
import html
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from secondread_routing.ops.api import OpsDeps, PageConfig, mount
from secondread_routing.ops.errors import BusUnavailable
from secondread_shared.casestatus import CaseStatus
from secondread_shared.oidc import TokenVerifier
from tests.ops_fakes import DLQ, NOW, World, dead_letter, new_world

ISSUER = "http://127.0.0.1:8180/realms/secondread"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/.well-known/openid-configuration"):
        return httpx.Response(200, json={"issuer": ISSUER, "jwks_uri": f"{ISSUER}/certs"})
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    return httpx.Response(200, json={"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]})


def token(roles: list[str], user: str = "ops-demo", **over: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "secondread-api", "sub": f"sub-{user}", "exp": now + 300,
              "iat": now, "preferred_username": user, "realm_access": {"roles": roles}}  # fmt: skip
    return jwt.encode(claims | over, KEY, algorithm="RS256", headers={"kid": "k1"})


def bearer(roles: list[str], **over: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(roles, **over)}"}


OPERATOR = bearer(["operator"])


@pytest.fixture
def world() -> World:
    return new_world()


@pytest.fixture
def client(world: World, tmp_path: Path) -> TestClient:
    (tmp_path / "keycloak.js").write_text("export default class Keycloak {}\n")
    app = FastAPI()
    http = httpx.AsyncClient(transport=httpx.MockTransport(jwks))
    app.state.ops = OpsDeps(
        service=world.ops,
        verifier=TokenVerifier(ISSUER, "secondread-api", http=http),
        page=PageConfig(ISSUER, "secondread-web", 10, 15, 6, tmp_path / "keycloak.js"),
    )
    mount(app)
    return TestClient(app)


def test_no_token_or_a_bad_one_is_401_naming_the_flaw(client: TestClient) -> None:
    for path in ("/v1/ops/cases", "/v1/ops/dead-letters"):
        r = client.get(path)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
        assert r.json()["error"]["code"] == "unauthenticated"
        assert "Authorization: Bearer" in r.json()["error"]["message"]
    r = client.get("/v1/ops/cases", headers=bearer(["operator"], exp=int(time.time()) - 3600))
    assert r.status_code == 401 and r.json()["error"]["message"] == "the token has expired"
    r = client.get("/v1/ops/cases", headers={"Authorization": "Bearer not-a-jwt"})
    assert r.status_code == 401 and r.json()["error"]["message"] == "the bearer token is not a JWT"
    r = client.post(f"/v1/ops/dead-letters/{DLQ}/1/7/replay")
    assert r.status_code == 401


def test_a_user_without_the_operator_role_is_403_and_sees_nothing(
    client: TestClient, world: World
) -> None:
    ref = dead_letter(world, 7)
    reader = bearer(["radiologist"], user="rad-chen")
    for method, path in (("GET", "/v1/ops/cases"), ("GET", "/v1/ops/dead-letters"),
                         ("POST", f"/v1/ops/dead-letters/{DLQ}/1/7/replay")):  # fmt: skip
        r = client.request(method, path, headers=reader)
        assert r.status_code == 403, r.text
        assert r.json() == {
            "error": {
                "code": "forbidden",
                "message": "the operations API needs the operator role, which rad-chen lacks",
            }
        }
    assert world.bus.published == [] and ref not in world.ledger.done


async def _status(world: World, case_id: str, state: str, minutes_ago: float) -> None:
    at = NOW - timedelta(minutes=minutes_ago)
    await world.ops.status_changed(CaseStatus(case_id, state, "svc", "", at, 0, 1))


def test_an_operator_gets_the_views_and_replays_once(client: TestClient, world: World) -> None:
    asyncio.run(_status(world, "case-a", "deidentified", 30))
    r = client.get("/v1/ops/cases", headers=OPERATOR)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["counts"] == {"deidentified": 1} and body["stuck_after_minutes"] == 15
    assert [c["case_id"] for c in body["stuck"]] == ["case-a"]
    r = client.get("/v1/ops/cases?stuck_after_minutes=60&state=deidentified", headers=OPERATOR)
    assert r.json()["stuck"] == [] and r.json()["state"] == "deidentified"

    dead_letter(world, 7)
    path = f"/v1/ops/dead-letters/{DLQ}/1/7/replay"
    first = client.post(path, headers=OPERATOR)
    second = client.post(path, headers=OPERATOR)
    assert (first.status_code, second.status_code) == (200, 200), first.text
    assert first.json()["status"] == "replayed" and second.json()["status"] == "already_replayed"
    assert first.json()["letter"]["replay"]["operator"] == "ops-demo"
    assert len(world.bus.published) == 1
    listed = client.get("/v1/ops/dead-letters", headers=OPERATOR).json()
    assert (listed["total"], listed["not_replayed"]) == (1, 0)
    [letter] = listed["letters"]
    assert letter["reason"] == "DatabaseError: unavailable" and letter["attempts"] == 3
    assert "never shown" not in json.dumps(listed) and "payload" not in letter


def test_kafka_down_is_503_and_the_replay_can_be_tried_again(
    client: TestClient, world: World
) -> None:
    dead_letter(world, 7)
    path = f"/v1/ops/dead-letters/{DLQ}/1/7/replay"
    world.bus.fail = BusUnavailable("Kafka did not confirm the replay (KafkaConnectionError)")
    r = client.post(path, headers=OPERATOR)
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert r.json()["error"] == {
        "code": "unavailable",
        "message": "Kafka did not confirm the replay (KafkaConnectionError); nothing was"
        " recorded: try again",
    }
    world.bus.fail = None
    assert client.post(path, headers=OPERATOR).json()["status"] == "replayed"


def test_bad_parameters_are_named(client: TestClient) -> None:
    r = client.get("/v1/ops/cases?limit=0", headers=OPERATOR)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid"
    assert r.json()["error"]["message"].startswith("query parameter 'limit': ")
    r = client.get("/v1/ops/cases?state=assigned%00", headers=OPERATOR)  # a NUL: no 500
    assert r.status_code == 422 and "query parameter 'state'" in r.json()["error"]["message"]
    r = client.post(f"/v1/ops/dead-letters/{DLQ}/1/notanumber/replay", headers=OPERATOR)
    assert r.status_code == 422 and "path parameter 'offset'" in r.json()["error"]["message"]
    r = client.post("/v1/ops/dead-letters/secondread.case.status.v1/0/1/replay", headers=OPERATOR)
    assert r.status_code == 422 and "is not a dead-letter topic" in r.json()["error"]["message"]
    r = client.post(f"/v1/ops/dead-letters/{DLQ}/1/999/replay", headers=OPERATOR)
    assert r.status_code == 404
    assert r.json()["error"] == {
        "code": "not_found",
        "message": f"there is no dead letter at {DLQ}:1:999",
    }


def test_the_page_signs_in_with_the_public_client_and_serves_its_assets(
    client: TestClient, tmp_path: Path
) -> None:
    r = client.get("/ops", follow_redirects=False)
    assert r.status_code == 308 and r.headers["location"] == "/ops/"
    r = client.get("/ops/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "connect-src 'self' http://127.0.0.1:8180" in csp
    assert "unsafe-inline" not in csp and "http" not in csp.split("connect-src")[0]
    marker = 'data-config="'
    raw = r.text.split(marker, 1)[1].split('"', 1)[0]
    config = json.loads(html.unescape(raw))
    assert config["oidc"] == {"url": "http://127.0.0.1:8180", "realm": "secondread",
                              "clientId": "secondread-web"}  # fmt: skip
    assert (config["api"], config["refreshSeconds"], config["stuckMinutes"]) == ("/v1/ops", 10, 15)
    assert '<label for="state">' in r.text and '<label for="stuck">' in r.text
    assert client.get("/ops/static/keycloak.js").text.startswith("export default class Keycloak")
    assert client.get("/ops/static/ops.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/ops/static/ops.css").status_code == 200
    assert client.get("/ops/static/../api.py").status_code == 404
    assert client.get("/ops/static/secrets.txt").json()["error"]["code"] == "not_found"
    (tmp_path / "keycloak.js").unlink()
    r = client.get("/ops/static/keycloak.js")
    assert r.status_code == 503 and "make up" in r.json()["error"]["message"]


def test_a_provider_other_than_keycloak_is_found_through_discovery() -> None:
    page = PageConfig("https://idp.example.org/oauth2", "web", 10, 15, 6, Path("k.js"))
    assert page.oidc() == {"oidcProvider": "https://idp.example.org/oauth2", "clientId": "web"}
    assert page.origin() == "https://idp.example.org"


def test_the_operator_endpoints_are_in_the_openapi_document(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert set(paths) == {
        "/v1/ops/cases",
        "/v1/ops/dead-letters",
        "/v1/ops/dead-letters/{topic}/{partition}/{offset}/replay",
    }
    replay = paths["/v1/ops/dead-letters/{topic}/{partition}/{offset}/replay"]["post"]
    assert {"200", "401", "403", "404", "422", "503"} <= set(replay["responses"])
    assert "CasesOverview" in spec["components"]["schemas"]
