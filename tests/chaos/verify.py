"""What a chaos run checks at its end, from the real stores: every case in exactly one terminal
state, one delivery per recipient, channel and report version, no stored object missing, and
no planted identifier in the clear zone."""

from __future__ import annotations

import asyncio
import email
import io
from collections import Counter
from dataclasses import dataclass, field

import httpx
import psycopg
from pydicom import dcmread

from secondread_ingest.settings import IngestSettings
from secondread_notify.settings import NotifySettings
from secondread_reporting.settings import ReportingSettings
from secondread_shared import casestatus, deadletters, topics
from secondread_shared.events import CaseDeidentified, CaseState
from secondread_shared.records import read_all
from secondread_shared.settings import BUCKETS_CLEAR, CommonSettings
from secondread_shared.storage import ObjectStore
from tests.chaos.workload import Submission
from tests.synthetic import leaks, planted

KAFKA = "127.0.0.1:9092"
ORTHANC = "http://127.0.0.1:8042"
PACS = "http://127.0.0.1:8043"
TERMINAL = {
    CaseState.NOTIFIED.value: "delivered",
    CaseState.QUARANTINED.value: "quarantined",
    CaseState.DEAD_LETTERED.value: "dead-lettered",
}


@dataclass
class Outcome:
    sub: Submission
    state: str = ""
    terminal: str = ""
    """``delivered``, ``quarantined``, ``dead-lettered`` or empty (lost)."""
    reason: str = ""
    problems: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)


def terminal_states(subs: list[Submission]) -> dict[str, Outcome]:
    """Each accepted case's outcome from the status topic and the dead letters."""
    states = asyncio.run(casestatus.case_states(KAFKA))
    letters = {}
    for record in asyncio.run(deadletters.dead_letters(KAFKA)):
        letter = deadletters.letter_of(record)
        letters.setdefault(letter.case_id, letter)
    out = {}
    for sub in subs:
        if not sub.case_id:
            continue
        o = Outcome(sub)
        st = states.get(sub.case_id)
        o.state = st.state if st else ""
        o.terminal = TERMINAL.get(o.state, "")
        letter = letters.get(sub.case_id)
        if letter is not None and o.terminal != "delivered":
            o.terminal, o.reason = "dead-lettered", letter.reason or "(no reason header)"
            if not letter.reason:
                o.problems.append("dead letter without a reason")
        out[sub.case_id] = o
    return out


def check_once(outcomes: dict[str, Outcome], subs: list[Submission]) -> None:
    """Duplicates: a study opened as two cases, two reports of a case, two deliveries (by
    idempotency key) to one recipient on one channel for one report version."""
    ours = [s for s in subs if s.case_id]
    uids = {s.study_uid: s for s in ours}
    with psycopg.connect(IngestSettings().db_dsn) as conn:
        rows = conn.execute(
            "SELECT study_instance_uid, count(DISTINCT case_id) FROM studies"
            " WHERE role = 'current' AND study_instance_uid = ANY(%s) GROUP BY 1",
            (list(uids),),
        ).fetchall()
    for uid, n in rows:
        if n > 1:
            outcomes[uids[uid].case_id].duplicates.append(f"study opened as {n} cases")
    ids = [s.case_id for s in ours]
    with psycopg.connect(ReportingSettings().db_dsn) as conn:
        reports = dict(conn.execute(
            "SELECT case_id, count(*) FROM reports WHERE case_id = ANY(%s) GROUP BY 1", (ids,)
        ).fetchall())  # fmt: skip
    with psycopg.connect(NotifySettings().db_dsn) as conn:
        deliveries = conn.execute(
            "SELECT case_id, report_id, channel, recipient_role, status,"
            " count(DISTINCT idempotency_key) FROM deliveries WHERE case_id = ANY(%s)"
            " GROUP BY 1, 2, 3, 4, 5",
            (ids,),
        ).fetchall()
    for case_id, n in reports.items():
        if n > 1:
            outcomes[case_id].duplicates.append(f"{n} reports")
    per_recipient: Counter[tuple[str, str, str, str]] = Counter()
    for case_id, report_id, channel, role, status, keys in deliveries:
        per_recipient[(case_id, report_id, channel, role)] += keys
        if status != "delivered" and outcomes[case_id].terminal == "delivered":
            outcomes[case_id].problems.append(f"{channel} to {role} is {status}")
    for (case_id, _report, channel, role), keys in per_recipient.items():
        if keys > 1:
            outcomes[case_id].duplicates.append(f"{keys} keys for {channel} to {role}")
    for case_id in ids:  # by email: one Message-ID per recipient (a resend keeps its id)
        ids_by_to: dict[str, set[str]] = {}
        for raw in _mails(case_id):
            msg = email.message_from_bytes(raw)
            ids_by_to.setdefault(str(msg["To"]), set()).add(str(msg["Message-ID"]))
        for to, message_ids in ids_by_to.items():
            if len(message_ids) > 1:
                outcomes[case_id].duplicates.append(f"{len(message_ids)} emails to {to}")


def _mails(case_id: str) -> list[bytes]:
    from secondread_cli import mail

    return mail.of_case(case_id)


def check_objects(outcomes: dict[str, Outcome]) -> None:
    """Every delivered case: its raw instances, its archived study, its report objects and the
    second opinion in the hospital PACS."""
    store = ObjectStore.from_settings(CommonSettings())
    deid = _deidentified([o.sub.case_id for o in outcomes.values()])
    for case_id, o in outcomes.items():
        if o.terminal != "delivered":
            continue
        n = len(o.sub.study)
        raw = asyncio.run(store.list_keys("secondread-phi-raw", f"cases/{case_id}/"))
        if len([k for k in raw if "/conflicts/" not in k]) != n:
            o.problems.append(f"{len(raw)} raw objects, expected {n}")
        event = deid.get(case_id)
        if event is None:
            o.problems.append("no case.deidentified")
            continue
        archived = sum(
            len(httpx.get(f"{ORTHANC}/studies/{sid}/instances", timeout=30).json())
            for sid in event.orthanc_study_ids
        )
        if archived < n:
            o.problems.append(f"{archived} archived instances, expected {n}")
        clear = asyncio.run(
            store.list_keys("secondread-clear", f"studies/{event.patient_pseudonym}/")
        )
        if len(clear) < n:
            o.problems.append(f"{len(clear)} clear objects, expected {n}")
        query = {"StudyInstanceUID": o.sub.study_uid, "Modality": "DOC\\SR"}
        pacs = httpx.post(
            f"{PACS}/tools/find", json={"Level": "Series", "Query": query}, timeout=30
        ).json()
        if len(pacs) != 2:
            o.problems.append(f"{len(pacs)} second-opinion series in the hospital PACS, expected 2")


def _deidentified(case_ids: list[str]) -> dict[str, CaseDeidentified]:
    wanted = set(case_ids)
    records = asyncio.run(read_all(KAFKA, [topics.CASE_DEIDENTIFIED], lambda r: r.key in wanted))
    return {r.key: CaseDeidentified.model_validate_json(r.value) for r in records}


def zone_leaks(outcomes: dict[str, Outcome]) -> list[str]:
    """Planted identifiers of this run's patients on a clear-zone topic, in a clear bucket or in
    an archived instance."""
    secrets = sorted({v.lower().encode() for o in outcomes.values()
                      for v in planted(o.sub.patient) if len(v) >= 6})  # fmt: skip
    secrets.append(b"mrn-chaos-")
    found: list[str] = []
    wanted = set(outcomes)
    clear_topics = [n for t in topics.EVENT_TOPICS if not topics.is_phi(t)
                    for n in (t, topics.dlq(t))]  # fmt: skip
    for r in asyncio.run(read_all(KAFKA, clear_topics, lambda r: r.key in wanted)):
        blob = (r.value if isinstance(r.value, bytes) else str(r.value).encode()).lower()
        found += [f"{r.topic}: {s.decode()}" for s in leaks(blob, secrets)]
    store = ObjectStore.from_settings(CommonSettings())
    deid = _deidentified(list(wanted))
    for event in deid.values():
        for bucket in BUCKETS_CLEAR:
            for key in asyncio.run(store.list_keys(bucket, f"studies/{event.patient_pseudonym}/")):
                blob = asyncio.run(store.get(bucket, key)).lower()
                found += [f"{bucket}/{key}" for _ in leaks(blob, secrets)]
        for sid in event.orthanc_study_ids:
            for inst in httpx.get(f"{ORTHANC}/studies/{sid}/instances", timeout=30).json():
                data = httpx.get(f"{ORTHANC}/instances/{inst['ID']}/file", timeout=30).content
                ds = dcmread(io.BytesIO(data), stop_before_pixels=True)
                blob = str(ds).lower().encode()
                found += [f"archive {inst['ID']}" for _ in leaks(blob, secrets)]
    return found
