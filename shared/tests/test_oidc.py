"""The token verifier against a key set served in memory (the e2e tests use the real Keycloak)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from secondread_shared.errors import Unauthenticated
from secondread_shared.oidc import TokenVerifier

ISSUER = "https://idp.test/realms/secondread"


class KeySet:
    """A provider's discovery document and JWKS; keys can be added (rotation)."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.published: list[dict[str, Any]] = [
            self._jwk(self.rsa, "rsa-1", "RS256"),
            self._jwk(self.ec, "ec-1", "ES256"),
            {
                "kid": "enc-1",
                "kty": "RSA",
                "use": "enc",
                "alg": "RSA-OAEP",
                "n": "AQAB",
                "e": "AQAB",
            },
        ]

    @staticmethod
    def _jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
        algo = jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
        jwk: dict[str, Any] = json.loads(algo.to_jwk(key.public_key()))
        return {**jwk, "kid": kid, "alg": alg, "use": "sig"}

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json={"issuer": ISSUER, "jwks_uri": f"{ISSUER}/certs"})
        return httpx.Response(200, json={"keys": self.published})


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": "secondread-api",
        "sub": "u-1",
        "exp": now + 300,
        "iat": now,
        "preferred_username": "rad-okafor",
        "realm_access": {"roles": ["radiologist"]},
    }
    return {**base, **over}


@pytest.fixture
def keys() -> KeySet:
    return KeySet()


def verifier(keys: KeySet, **kw: Any) -> TokenVerifier:
    http = httpx.AsyncClient(transport=httpx.MockTransport(keys.handler))
    return TokenVerifier(ISSUER, "secondread-api", http=http, refetch_interval=0.0, **kw)


async def test_rs256_and_es256_tokens_verify(keys: KeySet) -> None:
    v = verifier(keys)
    rs = jwt.encode(claims(), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"})
    es = jwt.encode(claims(), keys.ec, algorithm="ES256", headers={"kid": "ec-1"})
    for token in (rs, es):
        who = await v.verify(token)
        assert who.username == "rad-okafor" and who.has("radiologist")
    assert v.fetches == 1


@pytest.mark.parametrize(
    ("over", "flaw"),
    [
        # times as offsets from when the test runs (not when it is collected: a long suite
        # runs it minutes later, and a "not before" of collection + 60 s has passed by then)
        ({"exp": -60}, "expired"),
        ({"nbf": +60}, "not valid yet"),
        ({"aud": "account"}, "not meant for"),
        ({"iss": "https://other.test/realms/x"}, "another issuer"),
    ],
)
async def test_claims_are_checked(keys: KeySet, over: dict[str, Any], flaw: str) -> None:
    now = int(time.time())
    over = {k: now + v if k in ("exp", "nbf") else v for k, v in over.items()}
    token = jwt.encode(claims(**over), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"})
    with pytest.raises(Unauthenticated, match=flaw):
        await verifier(keys).verify(token)


async def test_small_clock_skew_is_tolerated(keys: KeySet) -> None:
    token = jwt.encode(
        claims(exp=int(time.time()) - 3), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"}
    )
    assert (await verifier(keys, leeway=10).verify(token)).username == "rad-okafor"


async def test_unknown_kid_refetches_once_then_refuses(keys: KeySet) -> None:
    v = verifier(keys)
    await v.verify(jwt.encode(claims(), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"}))
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys.published.append(KeySet._jwk(rotated, "rsa-2", "RS256"))
    token = jwt.encode(claims(), rotated, algorithm="RS256", headers={"kid": "rsa-2"})
    assert (await v.verify(token)).username == "rad-okafor"
    assert v.fetches == 2
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims(), stranger, algorithm="RS256", headers={"kid": "nobody"})
    with pytest.raises(Unauthenticated, match="does not publish"):
        await v.verify(forged)


async def test_other_key_tampering_and_algorithm_confusion_are_refused(keys: KeySet) -> None:
    v = verifier(keys)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims(), stranger, algorithm="RS256", headers={"kid": "rsa-1"})
    with pytest.raises(Unauthenticated, match="signature"):
        await v.verify(forged)
    head, _, sig = jwt.encode(
        claims(), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"}
    ).split(".")
    other_body = jwt.encode(claims(preferred_username="rad-chen"), "x" * 32, algorithm="HS256")
    tampered = ".".join([head, other_body.split(".")[1], sig])
    with pytest.raises(Unauthenticated, match="signature"):
        await v.verify(tampered)
    hs = jwt.encode(claims(), "secret" * 6, algorithm="HS256", headers={"kid": "rsa-1"})
    with pytest.raises(Unauthenticated, match="not accepted"):
        await v.verify(hs)
    mixed = jwt.encode(claims(), keys.ec, algorithm="ES256", headers={"kid": "rsa-1"})
    with pytest.raises(Unauthenticated, match="does not match"):
        await v.verify(mixed)
    with pytest.raises(Unauthenticated, match="not a JWT"):
        await v.verify("not-a-token")
