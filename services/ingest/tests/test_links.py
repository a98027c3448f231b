"""Upload links: signed, expiring, and refused with a reason when altered, forged or late."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from secondread_ingest import links
from secondread_ingest.links import LinkClaims, LinkError

KEY = b"k" * 32
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def claims(hours: float = 2) -> LinkClaims:
    return LinkClaims("link-1", "demo", NOW + timedelta(hours=hours))


def test_a_signed_link_verifies_and_says_its_hospital_and_expiry() -> None:
    token = links.sign_link(KEY, claims())
    got = links.verify_link(KEY, token, NOW)
    assert got == LinkClaims("link-1", "demo", (NOW + timedelta(hours=2)))


def test_a_link_is_refused_once_it_expired() -> None:
    token = links.sign_link(KEY, claims(hours=1))
    links.verify_link(KEY, token, NOW + timedelta(minutes=59))
    with pytest.raises(LinkError) as exc:
        links.verify_link(KEY, token, NOW + timedelta(hours=1))
    assert exc.value.code == "link_expired"
    assert "expired on 2026-12-01 13:00 UTC" in exc.value.message


def test_another_hospital_or_a_later_expiry_breaks_the_signature() -> None:
    body, sig = links.sign_link(KEY, claims()).split(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    for change in ({"h": "other"}, {"e": data["e"] + 86400}):
        forged = base64.urlsafe_b64encode(json.dumps({**data, **change}).encode()).rstrip(b"=")
        with pytest.raises(LinkError) as exc:
            links.verify_link(KEY, f"{forged.decode()}.{sig}", NOW)
        assert exc.value.code == "link_invalid"
        assert "not genuine" in exc.value.message


def test_a_link_signed_with_another_key_is_refused() -> None:
    token = links.sign_link(b"another key", claims())
    with pytest.raises(LinkError, match="not genuine"):
        links.verify_link(KEY, token, NOW)


@pytest.mark.parametrize("token", ["", "abc", "abc.", ".abc", "a.b.c", "%%%.%%%"])
def test_a_damaged_link_is_refused_with_a_reason(token: str) -> None:
    with pytest.raises(LinkError) as exc:
        links.verify_link(KEY, token, NOW)
    assert exc.value.code == "link_invalid"


@pytest.mark.parametrize(
    ("text", "span"),
    [("30m", timedelta(minutes=30)), ("12h", timedelta(hours=12)), ("7d", timedelta(days=7)),
     ("2w", timedelta(days=14)), (" 90d ", timedelta(days=90))],
)  # fmt: skip
def test_lifetimes_are_a_number_and_a_unit(text: str, span: timedelta) -> None:
    assert links.parse_duration(text) == span


@pytest.mark.parametrize(
    ("text", "says"),
    [("7", "not a lifetime"), ("3x", "not a lifetime"), ("0d", "longer than zero"),
     ("91d", "at most 90 days"), ("-1d", "not a lifetime")],
)  # fmt: skip
def test_a_bad_lifetime_is_named(text: str, says: str) -> None:
    with pytest.raises(LinkError) as exc:
        links.parse_duration(text)
    assert exc.value.code == "bad_expiry"
    assert says in exc.value.message


def test_a_capability_is_kept_only_as_its_digest() -> None:
    token, digest = links.new_capability()
    assert len(token) >= 43 and token not in digest
    assert links.capability_digest(token) == digest
    assert links.new_capability()[0] != token
