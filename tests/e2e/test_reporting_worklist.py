"""The worklist (priority, due time, time left), accept and decline on the real stack, and the
case view's numbered statements."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from secondread_cli import kafka_tools
from secondread_shared import topics
from secondread_shared.events import Priority, Urgency
from tests.e2e.conftest import wait_for
from tests.e2e.identity import TOKENS
from tests.e2e.reporting_support import KAFKA, REPORTING, put_on_worklist

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack")]

READER = "rad-silva"


def published(topic: str, case_id: str) -> list[dict[str, object]]:
    records = asyncio.run(kafka_tools.read_all(KAFKA, [topic], lambda r: r.key == case_id))
    return [json.loads(r.value) for r in records]


def test_worklist_orders_by_priority_and_due_time_with_time_left() -> None:
    now = datetime.now(UTC)
    late = put_on_worklist(READER, due_at=now + timedelta(hours=40)).case_id
    soon = put_on_worklist(READER, due_at=now + timedelta(hours=3)).case_id
    urgent = put_on_worklist(
        READER, priority=Priority.URGENT, urgency=Urgency.URGENT, due_at=now + timedelta(hours=20)
    ).case_id
    rows = httpx.get(f"{REPORTING}/v1/worklist", headers=TOKENS.auth(READER)).json()["cases"]
    ours = [r for r in rows if r["case_id"] in {late, soon, urgent}]
    assert [r["case_id"] for r in ours] == [urgent, soon, late]
    assert ours[1]["time_left"].startswith(("2 h", "3 h"))
    assert 0 < ours[1]["seconds_left"] <= 3 * 3600
    for case_id in (late, soon, urgent):  # leave the demo reader's desk as it was
        httpx.post(f"{REPORTING}/v1/cases/{case_id}/decline", headers=TOKENS.auth(READER),
                   json={"reason": "test clean-up"})  # fmt: skip


def test_accept_and_decline_publish_for_routing() -> None:
    case = put_on_worklist(READER).case_id
    auth = TOKENS.auth(READER)
    r = httpx.post(f"{REPORTING}/v1/cases/{case}/accept", headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    [accepted] = wait_for("case.accepted", lambda: published(topics.CASE_ACCEPTED, case))
    assert accepted["radiologist_id"] == READER and accepted["event_type"] == "case.accepted"

    other = httpx.post(f"{REPORTING}/v1/cases/{case}/decline", headers=TOKENS.auth("rad-chen"),
                       json={"reason": "not mine"})  # fmt: skip
    assert other.status_code == 403
    empty = httpx.post(f"{REPORTING}/v1/cases/{case}/decline", headers=auth, json={"reason": ""})
    assert empty.status_code == 422
    r = httpx.post(f"{REPORTING}/v1/cases/{case}/decline", headers=auth,
                   json={"reason": "conflict of interest"})  # fmt: skip
    assert r.status_code == 200, r.text
    [declined] = wait_for("case.declined", lambda: published(topics.CASE_DECLINED, case))
    assert declined["reason"] == "conflict of interest"
    rows = httpx.get(f"{REPORTING}/v1/worklist", headers=auth).json()["cases"]
    assert case not in [c["case_id"] for c in rows]

    # routing's answer, a new case.assigned of the same case, moves it to the next reader
    moved = put_on_worklist("rad-chen", case_id=case, radiologist_name="Dr. A. Chen")
    assert moved.case_id == case
    assert httpx.get(f"{REPORTING}/v1/cases/{case}", headers=auth).status_code == 403
    httpx.post(f"{REPORTING}/v1/cases/{case}/decline", headers=TOKENS.auth("rad-chen"),
               json={"reason": "test clean-up"})  # fmt: skip


def test_case_view_numbers_the_original_statements() -> None:
    case = put_on_worklist(READER).case_id
    view = httpx.get(f"{REPORTING}/v1/cases/{case}", headers=TOKENS.auth(READER)).json()
    assert view["statements"] == [
        {"number": 1, "section": "findings",
         "text": "8 mm solid nodule in the right upper lobe."},
        {"number": 2, "section": "findings", "text": "No pleural effusion."},
        {"number": 3, "section": "impression",
         "text": "Indeterminate pulmonary nodule; cannot exclude malignancy."},
    ]  # fmt: skip
    assert view["clinical_question"] == "Is the nodule malignant?"
    assert view["flags"] == ["hedge:cannot exclude"]
    httpx.post(f"{REPORTING}/v1/cases/{case}/decline", headers=TOKENS.auth(READER),
               json={"reason": "test clean-up"})  # fmt: skip
