"""Bearer tokens: JWTs from any OpenID Connect provider (Keycloak on the local stack).

The verifier finds the provider's keys through discovery (OpenID Connect Discovery 1.0, section 4:
``<issuer>/.well-known/openid-configuration`` names ``jwks_uri``), accepts RS256 and ES256 (RFC
7518, section 3), and checks ``iss``, ``aud``, ``exp`` and ``nbf`` (RFC 7519, section 4.1) with a
small clock skew. A token signed with a key id it does not know makes it fetch the key set again
(providers rotate keys), at most once per ``refetch_interval``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from secondread_shared.errors import Unauthenticated

ALGORITHMS = ("RS256", "ES256")


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for."""

    username: str
    """The reader id for radiologists (the roster's ``id`` is their user name)."""
    roles: frozenset[str]
    subject: str

    def has(self, role: str) -> bool:
        return role in self.roles


class TokenVerifier:
    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        leeway: float = 10.0,
        refetch_interval: float = 5.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.leeway = leeway
        self.refetch_interval = refetch_interval
        self._http = http or httpx.AsyncClient(timeout=5.0)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = -1e9
        self._lock = asyncio.Lock()
        self.fetches = 0
        """How many times the key set was fetched (for tests and metrics)."""

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _fetch_keys(self) -> None:
        try:
            disc = await self._http.get(f"{self.issuer}/.well-known/openid-configuration")
            disc.raise_for_status()
            jwks = await self._http.get(str(disc.json()["jwks_uri"]))
            jwks.raise_for_status()
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise Unauthenticated(f"the identity provider's keys are unavailable: {exc}") from exc
        keys: dict[str, jwt.PyJWK] = {}
        for entry in jwks.json().get("keys", []):
            if entry.get("use", "sig") != "sig" or entry.get("alg") not in ALGORITHMS:
                continue
            try:
                keys[str(entry["kid"])] = jwt.PyJWK(entry)
            except (jwt.PyJWKError, KeyError):
                continue
        self._keys = keys
        self._fetched_at = time.monotonic()
        self.fetches += 1

    async def _key(self, kid: str) -> jwt.PyJWK:
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            if kid not in self._keys and (
                time.monotonic() - self._fetched_at >= self.refetch_interval
            ):
                await self._fetch_keys()
        if kid not in self._keys:
            raise Unauthenticated("the token is signed with a key the issuer does not publish")
        return self._keys[kid]

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; :class:`Unauthenticated` naming the flaw otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated("the bearer token is not a JWT") from exc
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            raise Unauthenticated(f"token algorithm {alg!r} is not accepted (RS256, ES256)")
        if not isinstance(kid, str):
            raise Unauthenticated("the token names no key id")
        key = await self._key(kid)
        if key.algorithm_name != alg:
            raise Unauthenticated("the token's algorithm does not match its key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("the token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthenticated("the token is not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthenticated(f"the token is not meant for {self.audience}") from exc
        except jwt.MissingRequiredClaimError as exc:
            if exc.claim == "aud":
                raise Unauthenticated(f"the token is not meant for {self.audience}") from exc
            raise Unauthenticated(f"the token has no {exc.claim!r} claim") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthenticated("the token comes from another issuer") from exc
        except jwt.InvalidSignatureError as exc:
            raise Unauthenticated("the token's signature does not verify") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"the token is invalid: {exc}") from exc
        roles = claims.get("realm_access", {}).get("roles", [])
        return Principal(
            username=str(claims.get("preferred_username") or claims["sub"]),
            roles=frozenset(str(r) for r in roles if isinstance(r, str)),
            subject=str(claims["sub"]),
        )
