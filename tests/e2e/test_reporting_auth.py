"""reporting accepts access tokens from the running Keycloak and refuses bad ones; a reader sees
only their own cases, an operator only status."""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from secondread_cli import keycloak, stack
from tests.e2e.identity import HOSPITAL_ADMIN, OPERATOR, TOKENS, DemoTokens
from tests.e2e.reporting_support import REPORTING, put_on_worklist

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack")]

ISSUER = keycloak.issuer()


def worklist(token: str) -> httpx.Response:
    return httpx.get(
        f"{REPORTING}/v1/worklist", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def refused(r: httpx.Response, flaw: str) -> None:
    assert r.status_code == 401, r.text
    body = r.json()
    assert body["error"]["code"] == "unauthenticated"
    assert flaw in body["error"]["message"], body
    assert r.headers["www-authenticate"] == "Bearer"


def _b64(part: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return claims


def test_keycloak_rs256_and_es256_tokens_are_accepted() -> None:
    rs = TOKENS["rad-okafor"]
    es = DemoTokens(client_id="secondread-test-es256")["rad-okafor"]
    assert jwt.get_unverified_header(rs)["alg"] == "RS256"
    assert jwt.get_unverified_header(es)["alg"] == "ES256"
    for token in (rs, es):
        r = worklist(token)
        assert r.status_code == 200, r.text
        assert r.json()["radiologist_id"] == "rad-okafor"


def test_missing_expired_wrong_audience_and_foreign_tokens_are_refused() -> None:
    refused(httpx.get(f"{REPORTING}/v1/worklist", timeout=10), "Bearer")
    refused(worklist("not-a-jwt"), "not a JWT")

    # expired: a client of the realm whose tokens live 1 s; past the 10 s clock skew
    short = DemoTokens(client_id="secondread-test-short")["rad-okafor"]
    time.sleep(12)
    refused(worklist(short), "expired")

    # a real token of the realm, but for another client (no secondread-api audience)
    password = keycloak.demo_password(stack.repo_root(), "rad-okafor")
    other_aud = keycloak.password_token("rad-okafor", password, client_id="admin-cli")
    assert _claims(other_aud["access_token"]).get("aud") in (None, "account")
    refused(worklist(other_aud["access_token"]), "not meant for")

    # another issuer's key: a real token of Keycloak's master realm
    master = keycloak.password_token(
        keycloak.BOOTSTRAP_ADMIN,
        keycloak.BOOTSTRAP_ADMIN_PASSWORD,
        client_id="admin-cli",
        issuer_url=f"http://127.0.0.1:{keycloak.HTTP_PORT}/realms/master",
    )
    refused(worklist(master["access_token"]), "does not publish")

    # a token that claims our issuer and audience, signed with a stranger's key under our kid
    real = TOKENS["rad-okafor"]
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        _claims(real), stranger, algorithm="RS256", headers=jwt.get_unverified_header(real)
    )
    refused(worklist(forged), "signature")


def test_a_tampered_token_is_refused() -> None:
    head, body, sig = TOKENS["rad-chen"].split(".")
    claims = _claims(TOKENS["rad-chen"])
    assert claims["iss"] == ISSUER
    claims["preferred_username"] = "rad-okafor"
    refused(worklist(".".join([head, _b64(claims), sig])), "signature")
    assert worklist(".".join([head, body, sig])).status_code == 200


def test_readers_see_only_their_cases_and_operators_only_status() -> None:
    case = put_on_worklist("rad-okafor").case_id
    url = f"{REPORTING}/v1/cases/{case}"

    mine = httpx.get(url, headers=TOKENS.auth("rad-okafor"), timeout=10)
    assert mine.status_code == 200 and mine.json()["case_id"] == case

    theirs = httpx.get(url, headers=TOKENS.auth("rad-chen"), timeout=10)
    assert theirs.status_code == 403
    assert theirs.json() == {
        "error": {"code": "forbidden", "message": f"case {case} is not assigned to you"}
    }
    assert "nodule" not in theirs.text.lower()
    other_status = httpx.get(f"{url}/status", headers=TOKENS.auth("rad-chen"), timeout=10)
    assert other_status.status_code == 403

    unknown = httpx.get(f"{REPORTING}/v1/cases/case-nope", headers=TOKENS.auth("rad-chen"))
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"

    # the operator reads status and nothing clinical
    status = httpx.get(f"{url}/status", headers=TOKENS.auth(OPERATOR), timeout=10)
    assert status.status_code == 200, status.text
    assert status.json()["status"] == "assigned"
    assert status.json()["radiologist_id"] == "rad-okafor"
    assert "nodule" not in status.text.lower()
    r = httpx.get(url, headers=TOKENS.auth(OPERATOR), timeout=10)
    assert r.status_code == 403, r.text
    assert worklist(TOKENS[OPERATOR]).status_code == 403

    # a hospital admin is not an operator
    admin = httpx.get(f"{url}/status", headers=TOKENS.auth(HOSPITAL_ADMIN), timeout=10)
    assert admin.status_code == 403
    httpx.post(f"{url}/decline", headers=TOKENS.auth("rad-okafor"), json={"reason": "clean-up"})
