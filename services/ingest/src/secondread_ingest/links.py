"""Upload links: expiring, signed capabilities naming one hospital (pure logic, no I/O).

A link token is ``<payload>.<signature>``, both base64url without padding:

- the payload is compact JSON ``{"v": 1, "l": <link id>, "h": <hospital id>, "e": <expiry>}``
  (expiry in whole seconds since the epoch, UTC);
- the signature is HMAC-SHA256 (RFC 2104, FIPS 198-1) of the payload's base64url text under the
  portal's link key.

The signature makes a link unforgeable and its expiry tamper-proof; whether a link is still
usable (not revoked, not used up) is recorded in PostgreSQL (:mod:`portal_repository`), so every
replica agrees.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

TOKEN_VERSION = 1
MAX_EXPIRES_IN = timedelta(days=90)
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class LinkError(ValueError):
    """A link that cannot be used; ``code`` is stable, the message says why in words."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class LinkClaims:
    """What a valid link token says."""

    link_id: str
    hospital_id: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_link_id() -> str:
    """A random link id (128 bits)."""
    return secrets.token_urlsafe(16)


def sign_link(key: bytes, claims: LinkClaims) -> str:
    """The token of ``claims`` under ``key``."""
    payload = json.dumps(
        {
            "v": TOKEN_VERSION,
            "l": claims.link_id,
            "h": claims.hospital_id,
            "e": int(claims.expires_at.timestamp()),
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    body = _b64(payload)
    mac = hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify_link(key: bytes, token: str, now: datetime) -> LinkClaims:
    """The claims of a genuine, unexpired token.

    Raises
    ------
    LinkError
        ``link_invalid`` (malformed or not signed with ``key``) or ``link_expired``.
    """
    body, dot, sig = token.strip().partition(".")
    if not dot or not body or not sig:
        raise LinkError("link_invalid", "this upload link is incomplete: copy the whole link")
    try:
        given = _unb64(sig)
    except (ValueError, TypeError) as exc:
        raise LinkError("link_invalid", "this upload link is damaged") from exc
    expected = hmac.new(key, body.encode("ascii", "replace"), hashlib.sha256).digest()
    if not hmac.compare_digest(given, expected):
        raise LinkError("link_invalid", "this upload link is not genuine or was altered")
    try:
        data = json.loads(_unb64(body))
        claims = LinkClaims(
            link_id=str(data["l"]),
            hospital_id=str(data["h"]),
            expires_at=datetime.fromtimestamp(int(data["e"]), UTC),
        )
        version = int(data["v"])
    except (ValueError, KeyError, TypeError) as exc:
        raise LinkError("link_invalid", "this upload link is damaged") from exc
    if version != TOKEN_VERSION:
        raise LinkError("link_invalid", "this upload link is of an unknown version")
    if claims.expires_at <= now:
        raise LinkError(
            "link_expired",
            f"this upload link expired on {claims.expires_at:%Y-%m-%d %H:%M} UTC:"
            " ask the hospital for a new one",
        )
    return claims


def parse_duration(text: str) -> timedelta:
    """``30m``, ``12h``, ``7d``, ``2w`` (one number and one unit) as a duration.

    Raises
    ------
    LinkError
        ``bad_expiry`` when the text is not such a duration, is zero, or exceeds 90 days.
    """
    match = _DURATION.match(text)
    if not match:
        raise LinkError(
            "bad_expiry", f"{text!r} is not a lifetime: use a number and a unit (30m, 12h, 7d, 2w)"
        )
    span = timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    check_lifetime(span)
    return span


def check_lifetime(span: timedelta) -> None:
    """Refuse a zero, negative or longer-than-90-days lifetime (``bad_expiry``)."""
    if span <= timedelta(0):
        raise LinkError("bad_expiry", "a link's lifetime must be longer than zero")
    if span > MAX_EXPIRES_IN:
        raise LinkError(
            "bad_expiry", f"a link's lifetime must be at most {MAX_EXPIRES_IN.days} days"
        )


def new_capability() -> tuple[str, str]:
    """A random capability (256 bits) and the sha256 under which it is stored."""
    token = secrets.token_urlsafe(32)
    return token, capability_digest(token)


def capability_digest(token: str) -> str:
    """The stored form of a capability: only its sha256 is kept, never the token itself."""
    return hashlib.sha256(token.strip().encode()).hexdigest()
