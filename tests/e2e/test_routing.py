"""routing on the real stack: rules, roster import, eligibility, capacity, waiting cases, decline,
accept timeout, two replicas, and a returning patient's priors and earlier opinion.

Each test adds readers of its own to the demo roster with ``secondread roster import`` (the demo
readers stay, so other tests keep working) and sends its cases from a jurisdiction that only its
own readers are licensed for (``NZ-<random>``), so nothing else can take them. The demo roster is
imported back at the end. Cases are published as ``case.deidentified`` events where the test is
about routing alone; the returning patient goes through the whole pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from psycopg.rows import dict_row

from secondread_cli import kafka_tools, stack
from secondread_shared import topics
from secondread_shared.events import (
    CaseAccepted,
    CaseDeclined,
    CaseDeidentified,
)
from tests.e2e.conftest import submit, wait_for
from tests.e2e.identity import TOKENS
from tests.e2e.reporting_support import publish, sign_case
from tests.routing_cases import DESCRIPTIONS
from tests.synthetic import Patient, ct_study, write_study

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack")]

KAFKA = "127.0.0.1:9092"
REPORTING = "http://127.0.0.1:8004"
DSN = "host=127.0.0.1 port=55432 dbname=secondread user=routing password=routing-local"
REPO = Path(__file__).parents[2]
DEMO_ROSTER = REPO / "deploy" / "roster.toml"
TODAY = datetime.now(UTC).date()
RUN = uuid.uuid4().hex[:6]


# ---- helpers ---------------------------------------------------------------------------------


_JURISDICTIONS: set[str] = set()


def jurisdiction() -> str:
    """A subdivision of New Zealand nobody else reads for (ISO 3166-2 shape, random), never one
    an earlier test of the session drew: the shape leaves 4,096 codes, so two tests of one
    session drew the same one now and then, and a reader of the earlier test took the later
    test's case."""
    while True:
        code = "NZ-" + uuid.uuid4().hex[:3].upper()
        if code not in _JURISDICTIONS:
            _JURISDICTIONS.add(code)
            return code


def reader_entry(rid: str, juris: str, **over: Any) -> dict[str, Any]:
    reader: dict[str, Any] = {
        "id": f"t{RUN}-{rid}",
        "display_name": f"Dr. Test {rid.upper()}",
        "credentials": "MD (synthetic)",
        "subspecialties": ["chest"],
        "licences": [{"jurisdiction": juris, "expires": TODAY + timedelta(days=365)}],
        "max_open": 50,
    }
    return reader | over


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secondread_cli.main", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def import_roster(tmp_path: Path, extra: list[dict[str, Any]], suffix: str = ".yaml") -> str:
    """Import the demo roster plus ``extra`` readers; the command's output."""
    demo = tomllib.loads(DEMO_ROSTER.read_text())["reader"]
    path = tmp_path / f"roster-{uuid.uuid4().hex[:6]}{suffix}"
    path.write_text(yaml.safe_dump({"reader": [*demo, *extra]}, sort_keys=False))
    done = cli("roster", "import", str(path))
    assert done.returncode == 0, done.stderr
    return done.stdout


def waiting_here() -> int:
    """Cases of this module's jurisdictions (``NZ-*``) that wait for a reader."""
    rows = sql(
        "SELECT count(*) AS n FROM cases WHERE state = 'unassigned'"
        " AND event->>'jurisdiction' LIKE %s",
        "NZ-%",
    )
    return int(rows[0]["n"])


@pytest.fixture(scope="module", autouse=True)
def demo_roster_back(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Afterwards: a sweeper licensed for all of New Zealand takes whatever waits in this
    module's jurisdictions (so nothing is left retrying), then the demo roster comes back."""
    yield
    everything = ["neuro", "head_neck", "msk", "body", "chest", "breast", "cardiac",
                  "prostate_gu", "pediatric", "nuclear_medicine", "vascular_interventional",
                  "general"]  # fmt: skip
    sweeper = reader_entry("sweeper", "NZ", subspecialties=everything, max_open=100000)
    import_roster(tmp_path_factory.mktemp("sweep"), [sweeper])
    wait_for("the waiting test cases swept", lambda: waiting_here() == 0, timeout=60)
    done = cli("roster", "import", str(DEMO_ROSTER))
    assert done.returncode == 0, done.stderr


def new_case(juris: str, **over: Any) -> CaseDeidentified:
    base: dict[str, Any] = {
        "case_id": f"rt-{uuid.uuid4()}",
        "producer": "test",
        "patient_pseudonym": f"SRtest{uuid.uuid4().hex[:12]}",
        "hospital_id": "h-test",
        "urgency": "routine",
        "jurisdiction": juris,
        "clinical_question": "second opinion",
        "original_report": "Findings as described.",
        "study_instance_uids": [f"2.25.{uuid.uuid4().int}"],
        "orthanc_study_ids": [],
        "modalities": ["CT"],
        "body_parts": ["CHEST"],
        "study_descriptions": ["CT CHEST WO"],
    }
    return CaseDeidentified.model_validate(base | over)


def sql(query: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(DSN, row_factory=dict_row, autocommit=True) as conn:
        cur = conn.execute(query.encode(), params)
        return list(cur.fetchall()) if cur.description else []


def assignments(case_id: str) -> list[dict[str, Any]]:
    return sql("SELECT * FROM assignments WHERE case_id = %s ORDER BY id", case_id)


def open_reader(case_id: str) -> str | None:
    rows = [a for a in assignments(case_id) if a["closed_at"] is None]
    return str(rows[0]["radiologist_id"]) if rows else None


def case_row(case_id: str) -> dict[str, Any] | None:
    rows = sql("SELECT * FROM cases WHERE case_id = %s", case_id)
    return rows[0] if rows else None


def published(topic: str, case_ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """The events of ``case_ids`` on ``topic``, each event once (by event id), oldest first."""
    records = asyncio.run(kafka_tools.read_all(KAFKA, [topic], lambda r: r.key in case_ids))
    out: dict[str, list[dict[str, Any]]] = {c: [] for c in case_ids}
    seen: set[str] = set()
    for r in records:
        ev = json.loads(r.value)
        if ev["event_id"] not in seen:
            seen.add(ev["event_id"])
            out[r.key].append(ev)
    return out


def wait_assigned(case_id: str, reader: str | None = None, timeout: float = 60) -> str:
    def probe() -> str | None:
        got = open_reader(case_id)
        return got if got and (reader is None or got == reader) else None

    return wait_for(f"{case_id} assigned to {reader or 'a reader'}", probe, timeout=timeout)


def wait_state(case_id: str, state: str, timeout: float = 60) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        row = case_row(case_id)
        return row if row and row["state"] == state else None

    return wait_for(f"{case_id} {state}", probe, timeout=timeout)


def on_worklist(case_id: str, reader: str) -> None:
    def probe() -> bool:
        url = f"{REPORTING}/v1/cases/{case_id}"
        return httpx.get(url, headers=TOKENS.auth(reader)).status_code == 200

    wait_for(f"{case_id} on the reader's worklist", probe, timeout=60)


# ---- the tests -------------------------------------------------------------------------------


def test_description_table_is_classified_through_routing(tmp_path: Path) -> None:
    juris = jurisdiction()
    everything = ["neuro", "head_neck", "msk", "body", "chest", "breast", "cardiac",
                  "prostate_gu", "pediatric", "nuclear_medicine", "vascular_interventional",
                  "general"]  # fmt: skip
    import_roster(tmp_path, [reader_entry("all", juris, subspecialties=everything, max_open=500)])
    cases = [
        new_case(juris, modalities=[d.modality], body_parts=[d.body_part] if d.body_part else [],
                 study_descriptions=[d.description] if d.description else [], patient_age=d.age)
        for d in DESCRIPTIONS
    ]  # fmt: skip
    assert len(cases) >= 40
    publish(*cases)
    for c in cases:
        wait_assigned(c.case_id, f"t{RUN}-all")
    events = published(topics.CASE_ASSIGNED, {c.case_id for c in cases})
    got = {c.case_id: events[c.case_id][0] for c in cases}
    wrong = [
        (d.description, d.expected, got[c.case_id]["subspecialty"])
        for c, d in zip(cases, DESCRIPTIONS, strict=True)
        if got[c.case_id]["subspecialty"] != d.expected
    ]
    assert wrong == []
    for c, d in zip(cases, DESCRIPTIONS, strict=True):
        ev = got[c.case_id]
        assert ev["rule"], "every decision records its rule"
        assert ("classify:ambiguous" in ev["flags"]) == (d.expected == "general")
        assert ev["radiologist_name"] == "Dr. Test ALL"
        assert ev["radiologist_credentials"] == "MD (synthetic)"
        assert ev["priors"] == [] and "priors:none" in ev["flags"]


def test_classify_command_reads_the_dicom_headers(tmp_path: Path) -> None:
    folder = write_study(tmp_path / "s", ct_study(Patient(), count=2, seed=uuid.uuid4().hex))
    done = cli("classify", str(folder), "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["subspecialty"] == "chest" and answer["rule"] == "chest-description"
    assert answer["inputs"]["files"] == 2 and answer["inputs"]["body_parts"] == ["CHEST"]
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {id: all-ct, subspecialty: body, match: {modality: [CT]}}\n")
    done = cli("classify", str(folder), "--rules", str(rules), "--json")
    assert json.loads(done.stdout)["rule"] == "all-ct"
    rules.write_text("rules:\n  - {id: bad, subspecialty: astrology, match: {modality: [CT]}}\n")
    done = cli("classify", str(folder), "--rules", str(rules))
    assert done.returncode == 1 and "rule 'bad' field subspecialty" in done.stderr
    text = cli("classify", str(folder))
    assert "subspecialty: chest" in text.stdout and "chest-description" in text.stdout


def test_licence_expiry_conflict_absence_and_strict_capacity(tmp_path: Path) -> None:
    juris = jurisdiction()
    tomorrow = TODAY + timedelta(days=1)
    expiring = reader_entry("exp", juris, licences=[{"jurisdiction": juris, "expires": tomorrow}])
    conflicted = reader_entry("conf", juris, conflicts=["h-conflict"])
    away = reader_entry("away", juris, absences=[{"from": TODAY, "to": TODAY + timedelta(days=10)}])
    small = reader_entry("cap", juris, max_open=1)
    import_roster(tmp_path, [expiring, conflicted, away, small])
    exp, conf, cap = (r["id"] for r in (expiring, conflicted, small))

    # routine (due in 72 h): the licence expires first, the conflict and the absence bar the
    # others, so only the small reader is left
    a = new_case(juris, hospital_id="h-conflict")
    publish(a)
    wait_assigned(a.case_id, cap)
    # the same again: the small reader is full, and strict capacity never exceeds it
    b = new_case(juris, hospital_id="h-conflict")
    publish(b)
    row = wait_state(b.case_id, "unassigned")
    assert row["reason"] == "everybody eligible is at capacity"
    # urgent (due in 24 h): the expiring licence is still valid on the due date
    c = new_case(juris, hospital_id="h-other", urgency="urgent")
    publish(c)
    wait_assigned(c.case_id, exp)
    # another hospital: the conflict does not apply
    d = new_case(juris, hospital_id="h-other")
    publish(d)
    wait_assigned(d.case_id, conf)
    # the small reader gives case a back: workload falls, and the waiting case b is retried
    # (nobody else can take a: it waits in turn)
    publish(CaseDeclined(case_id=a.case_id, producer="test", radiologist_id=cap, reason="busy"))
    wait_assigned(b.case_id, cap)
    assert [r["closed_reason"] for r in assignments(a.case_id)] == ["declined"]
    assert wait_state(a.case_id, "unassigned")["reason"].startswith("no reader available")
    statuses = published(topics.CASE_STATUS, {b.case_id})[b.case_id]
    assert [s["state"] for s in statuses] == ["unassigned", "assigned"]
    assert statuses[0]["detail"] == "everybody eligible is at capacity"
    dlq = asyncio.run(kafka_tools.dead_letters(KAFKA, topics.CASE_DEIDENTIFIED))
    assert not [r for r in dlq if r.key in {a.case_id, b.case_id, c.case_id, d.case_id}]


def test_unassigned_then_assigned_after_roster_import(tmp_path: Path) -> None:
    juris = jurisdiction()
    case = new_case(juris)
    publish(case)
    row = wait_state(case.case_id, "unassigned")
    assert row["reason"].startswith(f"no licence for jurisdiction {juris}")

    # a bad roster is refused whole, naming the reader and the field, and changes nothing
    before = cli("roster", "list").stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[reader]]\nid = "x1"\ndisplay_name = "X"\nsubspecialties = ["astrology"]\n'
        f'licences = [{{ jurisdiction = "{juris}", expires = 2030-01-01 }}]\n'
        '[[reader]]\nid = "x2"\ndisplay_name = "Y"\nsubspecialties = ["chest"]\n'
        'licences = [{ jurisdiction = "ZZ", expires = 2001-01-01 }]\n'
    )
    done = cli("roster", "import", str(bad))
    assert done.returncode == 1
    assert "reader 'x1' field subspecialties" in done.stderr
    assert "reader 'x2' field licences.0.jurisdiction" in done.stderr
    assert "nothing was changed" in done.stderr
    assert cli("roster", "list").stdout == before
    assert case_row(case.case_id)["state"] == "unassigned"  # type: ignore[index]

    reader = reader_entry("late", juris)
    out = import_roster(tmp_path, [reader])
    assert reader["id"] in out
    wait_assigned(case.case_id, reader["id"])
    statuses = published(topics.CASE_STATUS, {case.case_id})[case.case_id]
    assert [s["state"] for s in statuses] == ["unassigned", "assigned"]
    # the same roster again changes nothing; the list shows the reader's open case
    assert "roster unchanged" in import_roster(tmp_path, [reader])
    listing = cli("roster", "list")
    line = next(ln for ln in listing.stdout.splitlines() if reader["id"] in ln)
    assert "│ 1 " in line and "available" in line


def test_decline_and_accept_timeout_each_reassign_once(tmp_path: Path) -> None:
    juris = jurisdiction()
    readers = [reader_entry(n, juris) for n in ("d1", "d2", "d3")]
    import_roster(tmp_path, readers)
    d1, d2, d3 = (r["id"] for r in readers)

    x = new_case(juris)
    publish(x)
    wait_assigned(x.case_id, d1)
    publish(CaseDeclined(case_id=x.case_id, producer="test", radiologist_id=d1, reason="away"))
    wait_assigned(x.case_id, d2)

    y = new_case(juris)
    publish(y)
    wait_assigned(y.case_id, d1)  # d1 holds nothing now; d1 and d3 tie, roster order
    # the accept timer is due now (it lives in PostgreSQL; the service polls it)
    sql("UPDATE assignments SET accept_by = now() WHERE case_id = %s AND closed_at IS NULL",
        y.case_id)  # fmt: skip
    wait_assigned(y.case_id, d3)  # not back to d1, and not d2 (one open case already)

    # x was accepted by d2: its timer is stopped even when due
    publish(CaseAccepted(case_id=x.case_id, producer="test", radiologist_id=d2))
    wait_for("the accept", lambda: assignments(x.case_id)[-1]["accepted_at"] is not None)
    sql("UPDATE assignments SET accept_by = now() - interval '1 minute' WHERE case_id = %s",
        x.case_id)  # fmt: skip

    time.sleep(6)  # three rounds of the timer loop
    assert [(a["radiologist_id"], a["closed_reason"]) for a in assignments(x.case_id)] == [
        (d1, "declined"),
        (d2, None),
    ]
    assert [(a["radiologist_id"], a["closed_reason"]) for a in assignments(y.case_id)] == [
        (d1, "accept_timeout"),
        (d3, None),
    ]
    events = published(topics.CASE_ASSIGNED, {x.case_id, y.case_id})
    assert [e["radiologist_id"] for e in events[x.case_id]] == [d1, d2]
    assert [e["radiologist_id"] for e in events[y.case_id]] == [d1, d3]


@contextlib.contextmanager
def routing_process(log_path: Path, port: int, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """Another routing process (same consumer group, same schema) on ``port``."""
    log = log_path.open("wb")
    full_env = os.environ | {
        "SECONDREAD_STACK_DIR": str(stack.stack_dir()),
        "SECONDREAD_HTTP_PORT": str(port),
        **env,
    }
    proc = subprocess.Popen([sys.executable, "-m", "secondread_routing"], cwd=REPO, env=full_env,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"routing on {port} exited: {log_path.read_text()[-2000:]}")
            try:
                return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(f"routing on port {port}", ready, timeout=120, every=1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def second_replica(tmp_path: Path) -> Iterator[Path]:
    """A second routing replica beside the stack's; its log."""
    log_path = tmp_path / "routing-2.log"
    with routing_process(log_path, 8013) as proc:
        yield log_path
        assert proc.poll() is None, "replica 2 kept running"


@pytest.fixture
def soft_routing(tmp_path: Path) -> Iterator[None]:
    """routing with ``SECONDREAD_CAPACITY_POLICY=soft`` in place of the stack's (strict) one,
    which is started again afterwards."""
    stack.down(["routing"])
    try:
        with routing_process(tmp_path / "routing-soft.log", 8013,
                             SECONDREAD_CAPACITY_POLICY="soft"):  # fmt: skip
            yield
    finally:
        stack.up(["routing"], timeout=180)


def test_soft_capacity_assigns_past_max_open_and_flags_it(
    tmp_path: Path, soft_routing: None
) -> None:
    juris = jurisdiction()
    reader = reader_entry("soft", juris, max_open=1)
    import_roster(tmp_path, [reader])
    a, b = new_case(juris), new_case(juris)
    publish(a)
    wait_assigned(a.case_id, reader["id"])
    publish(b)
    wait_assigned(b.case_id, reader["id"])  # strict would leave it waiting
    events = published(topics.CASE_ASSIGNED, {a.case_id, b.case_id})
    assert "over_capacity" not in events[a.case_id][0]["flags"]
    assert "over_capacity" in events[b.case_id][0]["flags"]


def test_two_replicas_assign_once_and_fire_each_timer_once(
    tmp_path: Path, second_replica: Path
) -> None:
    juris = jurisdiction()
    readers = [reader_entry(n, juris, max_open=10) for n in ("r1", "r2", "r3")]
    import_roster(tmp_path, readers)
    ids = {r["id"] for r in readers}
    cases = [new_case(juris) for _ in range(24)]
    publish(*cases)
    for c in cases:
        wait_assigned(c.case_id, timeout=90)
    # strict capacity held across both replicas: 24 cases over 3 readers of 10
    loads: dict[str, int] = {}
    for c in cases:
        rows = assignments(c.case_id)
        assert len(rows) == 1, f"{c.case_id} assigned {len(rows)} times"
        loads[rows[0]["radiologist_id"]] = loads.get(rows[0]["radiologist_id"], 0) + 1
    assert set(loads) <= ids and max(loads.values()) <= 10 and sum(loads.values()) == 24

    # every timer due at once: each fires once, whichever replica takes it
    sql("UPDATE assignments SET accept_by = now() WHERE case_id = ANY(%s) AND closed_at IS NULL",
        [c.case_id for c in cases])  # fmt: skip

    def all_reassigned() -> bool:
        return all(len(assignments(c.case_id)) >= 2 for c in cases)

    wait_for("every case reassigned", all_reassigned, timeout=90)
    time.sleep(5)  # a double fire would show up by now
    for c in cases:
        rows = assignments(c.case_id)
        assert [r["closed_reason"] for r in rows] == ["accept_timeout", None], rows
        assert rows[0]["radiologist_id"] != rows[1]["radiologist_id"]
    events = published(topics.CASE_ASSIGNED, {c.case_id for c in cases})
    assert all(len(events[c.case_id]) == 2 for c in cases)
    # both replicas took part: the second routed some of the cases, the first the others
    ours = {c.case_id for c in cases}
    routed_by_2 = {
        line["case_id"]
        for line in map(
            json.loads, [ln for ln in second_replica.read_text().splitlines() if ln.startswith("{")]
        )
        if line.get("event") == "case_routed" and line.get("case_id") in ours
    }
    assert 0 < len(routed_by_2) < len(cases)


def test_returning_patient_gets_the_first_study_and_its_signed_opinion(tmp_path: Path) -> None:
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:10]}")
    report = tmp_path / "report.txt"
    report.write_text("Lungs: 6 mm nodule, indeterminate.")
    first_dir = write_study(tmp_path / "first", ct_study(patient, count=2, seed=uuid.uuid4().hex))
    first = submit(first_dir, "Nodule: benign?", report)
    reader = wait_assigned(first, timeout=120)
    on_worklist(first, reader)
    sign_case(first, reader)
    wait_for(
        "the opinion recorded", lambda: sql("SELECT 1 FROM opinions WHERE case_id = %s", first)
    )
    assert [a["closed_reason"] for a in assignments(first)] == ["signed"]

    later = write_study(
        tmp_path / "later", ct_study(patient, count=2, seed=uuid.uuid4().hex, study_date="20260601")
    )
    second = submit(later, "Follow-up: has the nodule grown?", report)
    reader2 = wait_assigned(second, timeout=120)
    on_worklist(second, reader2)
    events = published(topics.CASE_ASSIGNED, {first, second})
    one, two = events[first][0], events[second][-1]
    assert two["patient_pseudonym"] == one["patient_pseudonym"]
    assert one["study_instance_uids"][0] in [p["study_instance_uid"] for p in two["priors"]]
    [opinion] = two["earlier_opinions"]
    assert opinion["case_id"] == first and opinion["radiologist_id"] == reader
    assert opinion["assessment"]
    assert "priors:none" not in two["flags"]
    # close the follow-up too, so the demo readers' workload does not grow run after run
    sign_case(second, reader2)


def test_an_accept_timer_due_while_routing_is_down_fires_after_the_restart(tmp_path: Path) -> None:
    juris = jurisdiction()
    readers = [reader_entry(n, juris) for n in ("p1", "p2")]
    import_roster(tmp_path, readers)
    p1, p2 = (r["id"] for r in readers)
    case = new_case(juris, urgency="urgent")
    publish(case)
    wait_assigned(case.case_id, p1)
    stack.down(["routing"])
    try:
        # the timer comes due while no routing runs: it is a row, not a task in a process
        sql("UPDATE assignments SET accept_by = now() WHERE case_id = %s AND closed_at IS NULL",
            case.case_id)  # fmt: skip
    finally:
        stack.up(["routing"], timeout=180)
    wait_assigned(case.case_id, p2)
    assert [a["closed_reason"] for a in assignments(case.case_id)] == ["accept_timeout", None]
