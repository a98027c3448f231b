"""The operations page (/ops/ on routing) in headless Chromium: an operator signs in through the
real Keycloak login page (authorization code + PKCE), sees a case submitted through the whole
stack with its state, stage and age and no identity, sees a poison message's dead letter with its
reason and never its content, cancels one replay with the keyboard, and replays another dead
letter from the page (click, confirm), after which its case flows on (routing assigns it) and the
letter shows as replayed; a second replay publishes nothing. axe-core finds nothing serious."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from playwright.sync_api import expect

from secondread_cli import keycloak
from secondread_shared import broker as br
from secondread_shared import topics
from secondread_shared.deadletters import REPLAYED_FROM
from secondread_shared.events import CaseDeidentified, CaseState, CaseStatusChanged
from secondread_shared.records import read_all
from tests.e2e.browser import SCREENSHOTS, explain_failed_sign_in, serious_violations
from tests.e2e.conftest import submit, wait_for
from tests.e2e.identity import OPERATOR, TOKENS, keycloak_repo
from tests.synthetic import Patient, ct_study, planted, write_study

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack")]

KAFKA = "127.0.0.1:9092"
ROUTING = "http://127.0.0.1:8003"
OPS = f"{ROUTING}/ops/"
DLQ = topics.dlq(topics.CASE_DEIDENTIFIED)
T = TypeVar("T")


def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run a helper that calls asyncio.run (Kafka) outside the thread of Playwright's loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


def api(path: str, user: str = OPERATOR, method: str = "GET") -> Any:
    r = httpx.request(method, f"{ROUTING}/v1/ops{path}", headers=TOKENS.auth(user), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def state_of(case_id: str) -> str | None:
    cases = api("/cases?limit=1000")["cases"]
    return next((c["state"] for c in cases if c["case_id"] == case_id), None)


def letter_of(case_id: str) -> dict[str, Any] | None:
    letters = api("/dead-letters?limit=1000")["letters"]
    return next((d for d in letters if d["case_id"] == case_id and d["topic"] == DLQ), None)


async def _send(*messages: tuple[str, str, bytes, dict[str, str]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for topic, key, value, headers in messages:
            await producer.send_and_wait(
                topic,
                value,
                key=key.encode(),
                headers=[(k, v.encode()) for k, v in headers.items()],
            )
    finally:
        await producer.stop()


def send(*messages: tuple[str, str, bytes, dict[str, str]]) -> None:
    asyncio.run(_send(*messages))


def waiting_case(case_id: str) -> CaseDeidentified:
    """A de-identified case routing can assign (a CT chest from the demo jurisdiction)."""
    return CaseDeidentified(
        case_id=case_id,
        producer="deidentify",
        patient_pseudonym=f"SRops{uuid.uuid4().hex[:12]}",
        hospital_id="h-ops-test",
        urgency="routine",
        jurisdiction="US",
        clinical_question="second opinion",
        original_report="No acute finding.",
        study_instance_uids=[f"2.25.{uuid.uuid4().int}"],
        orthanc_study_ids=[],
        modalities=["CT"],
        body_parts=["CHEST"],
        study_descriptions=["CT CHEST WO"],
    )


def outage_dead_letter(event: CaseDeidentified) -> None:
    """What the dead-letter middleware leaves when routing's database stays down through every
    attempt: the event unchanged on the DLQ twin with its headers, and a ``dead_lettered``
    status. (No service here fails transiently on demand; the real middleware's poison path is
    the other letter of the test.)"""
    headers = {
        br.H_REASON: "DatabaseError: database unavailable: OperationalError",
        br.H_ERROR: "DatabaseError: database unavailable: OperationalError",
        br.H_TOPIC: topics.CASE_DEIDENTIFIED,
        br.H_PARTITION: "0",
        br.H_OFFSET: "0",
        br.H_ATTEMPTS: "3",
        br.H_SERVICE: "routing",
        br.H_CASE: event.case_id,
    }
    status = CaseStatusChanged(
        case_id=event.case_id,
        producer="routing",
        state=CaseState.DEAD_LETTERED,
        detail=f"{topics.CASE_DEIDENTIFIED}: DatabaseError",
    )
    send(
        (DLQ, event.case_id, event.model_dump_json().encode(), headers),
        (topics.CASE_STATUS, event.case_id, status.model_dump_json().encode(), {}),
    )


def replays_on_source(case_id: str) -> list[str]:
    records = asyncio.run(read_all(KAFKA, [topics.CASE_DEIDENTIFIED], lambda r: r.key == case_id))
    return [r.headers.get(REPLAYED_FROM, "") for r in records]


def sign_in(page: Any) -> dict[str, list[str]]:
    """Open the page and sign in on Keycloak's own login page as the demo operator; the query of
    the authorization request."""
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if "/openid-connect/auth" in r.url else None)
    page.goto(OPS)
    page.wait_for_url(re.compile(r"/realms/secondread/protocol/openid-connect/auth"))
    page.fill("#username", OPERATOR)
    page.fill("#password", keycloak.demo_password(keycloak_repo(), OPERATOR))
    page.click("#kc-login")
    page.wait_for_url(re.compile("^" + re.escape(OPS)))
    try:
        # (a locator, not wait_for_function: the page's CSP forbids eval)
        page.locator("#updated", has_text="Updated at").wait_for(timeout=30_000)
    except Exception:
        explain_failed_sign_in(page, ROUTING, OPS)
        raise
    assert seen, "the page never sent the authorization request"
    return parse_qs(urlsplit(seen[0]).query)


def test_the_api_refuses_without_a_token_and_without_the_operator_role() -> None:
    r = httpx.get(f"{ROUTING}/v1/ops/cases", timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    r = httpx.get(f"{ROUTING}/v1/ops/dead-letters", headers=TOKENS.auth("rad-chen"), timeout=10)
    assert r.status_code == 403
    assert r.json()["error"]["message"] == (
        "the operations API needs the operator role, which rad-chen lacks"
    )
    spec = httpx.get(f"{ROUTING}/openapi.json", timeout=10).json()
    assert "/v1/ops/dead-letters/{topic}/{partition}/{offset}/replay" in spec["paths"]


def test_an_operator_sees_cases_and_dead_letters_and_replays_one_from_the_page(
    browser: Any, tmp_path: Path
) -> None:
    # A case through the real stack: ingest (the CLI), deidentify, routing.
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:10]}")
    folder = write_study(tmp_path / "study", ct_study(patient, count=2, seed=uuid.uuid4().hex))
    (tmp_path / "report.txt").write_text("8 mm nodule RUL; cannot exclude malignancy.")
    submitted = submit(folder, "Is the nodule malignant?", tmp_path / "report.txt")
    wait_for("the submitted case assigned", lambda: state_of(submitted) == "assigned", 120)

    # A poison message: the real middleware dead-letters it with its reason.
    secret = f"SECRET-CONTENT-{uuid.uuid4().hex[:8]}"
    poison = f"ops-poison-{uuid.uuid4().hex[:12]}"
    off_loop(send, (topics.CASE_DEIDENTIFIED, poison, json.dumps({"note": secret}).encode(), {}))
    poisoned = wait_for("the poison's dead letter indexed", lambda: letter_of(poison), 60)
    assert "ValidationError" in poisoned["reason"] and secret not in json.dumps(poisoned)

    # A valid event left on the DLQ by an outage: replaying it lets the case flow on.
    stranded = f"ops-stranded-{uuid.uuid4().hex[:12]}"
    off_loop(outage_dead_letter, waiting_case(stranded))
    letter = wait_for("the stranded case's dead letter indexed", lambda: letter_of(stranded), 60)
    wait_for("the stranded case dead-lettered", lambda: state_of(stranded) == "dead_lettered", 60)
    key = f"{letter['topic']}/{letter['partition']}/{letter['offset']}"

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        query = sign_in(page)
        assert query["client_id"] == ["secondread-web"]
        assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
        assert "Signed in as ops-demo" in page.inner_text("#who")

        # The submitted case, with its state and stage; no identity anywhere on the page.
        row = page.locator(f'#cases tr[data-case="{submitted}"]')
        row.wait_for()
        assert "assigned" in row.inner_text() and "reading (reporting)" in row.inner_text()
        content = page.content().lower()
        for identifier in planted(patient):
            assert identifier.lower() not in content, "an identity is on the operations page"
        # The dead letters with their reasons, never their content.
        poison_row = page.locator(f'#letters tr[data-case="{poison}"]')
        poison_row.wait_for()
        assert "ValidationError" in poison_row.inner_text()
        assert secret.lower() not in content
        assert "dead letter: needs an operator" in page.inner_text("#counts")

        # Filters: only dead-lettered cases, with the stuck threshold of the operator's choice.
        page.select_option("#state", "dead_lettered")
        expect(page.locator("#cases tbody .badge:not(.dead_lettered)")).to_have_count(0)
        expect(page.locator(f'#cases tr[data-case="{stranded}"]')).to_have_count(1)
        page.fill("#stuck", "1")
        page.click("#filters button[type=submit]")
        page.wait_for_selector("#updated")

        found = serious_violations(page)
        assert found == [], "\n".join(found)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.select_option("#state", "")
        expect(page.locator(f'#cases tr[data-case="{submitted}"]')).to_have_count(1)
        page.screenshot(path=str(SCREENSHOTS / "ops.png"))

        # The keyboard: a replay can be opened and cancelled (Escape) without sending anything.
        page.focus(f'#letters tr[data-case="{poison}"] button.replay')
        page.keyboard.press("Enter")
        dialog = page.locator("#confirm")
        assert dialog.is_visible() and poison in page.inner_text("#confirm-text")
        assert page.evaluate("document.activeElement.id") == "confirm-cancel"
        found = serious_violations(page)
        assert found == [], "\n".join(found)
        page.keyboard.press("Escape")
        assert not dialog.is_visible()
        assert letter_of(poison)["replay"] is None  # type: ignore[index]

        # Replay from the page: click, confirm.
        page.click(f'#letters tr[data-letter="{key}"] button.replay')
        assert dialog.is_visible() and "published again on" in page.inner_text("#confirm-text")
        page.click("#confirm-replay")
        page.wait_for_selector(f"text=Replayed the dead letter of case {stranded}")
        replayed = page.locator(f'#letters tr[data-letter="{key}"]')
        replayed.locator("text=by ops-demo").wait_for()
        assert replayed.locator("button.replay").count() == 0

        # It flows on: routing consumes the replayed event and assigns the case.
        wait_for("the replayed case assigned", lambda: state_of(stranded) == "assigned", 90)
        page.click("#refresh")
        page.locator(f'#cases tr[data-case="{stranded}"] >> text="assigned"').wait_for()
    finally:
        context.close()

    ref = key.replace("/", ":")
    assert off_loop(replays_on_source, stranded) == [ref]
    # A second request (a second click, another tab) publishes nothing more.
    topic, partition, offset = key.split("/")
    again = api(f"/dead-letters/{topic}/{partition}/{offset}/replay", method="POST")
    assert again["status"] == "already_replayed"
    assert again["letter"]["replay"]["operator"] == OPERATOR
    assert off_loop(replays_on_source, stranded) == [ref]
