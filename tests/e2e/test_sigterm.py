"""SIGTERM (what Kubernetes and ``secondread down`` send) while a service is handling a case:
the service goes unready, finishes the message in flight and commits it, and exits within its
grace period, so the restarted service does not handle it again."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import pytest

from secondread_cli import stack
from secondread_shared import topics
from secondread_shared.settings import CommonSettings
from tests.e2e.conftest import submit, wait_for
from tests.e2e.test_pipeline import read_topic
from tests.synthetic import Patient, ct_study, write_study

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack")]

DEIDENTIFY = "http://127.0.0.1:8002"
INSTANCES = 120


def log_events(log: Path, start: int) -> list[dict[str, object]]:
    """The JSON log lines written after byte ``start``."""
    with log.open("rb") as fh:
        fh.seek(start)
        lines = fh.read().decode("utf-8", "replace").splitlines()
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def test_sigterm_finishes_the_case_in_flight_and_exits_within_the_grace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:10]}")
    study = ct_study(patient, count=INSTANCES, size=128, seed=uuid.uuid4().hex)
    folder = write_study(tmp_path / "s", study)
    (tmp_path / "r.txt").write_text("Findings: 8 mm nodule. Impression: probably benign.")
    log = stack.log_file("deidentify", stack.stack_dir())
    mark = log.stat().st_size
    case_id = submit(folder, "Is the nodule benign?", tmp_path / "r.txt")

    def started() -> bool | None:  # deidentify has begun this case (it logs per instance batch)
        return any(e.get("case_id") == case_id for e in log_events(log, mark)) or None

    wait_for("deidentify working on the case", started, timeout=60, every=0.05)
    grace = CommonSettings().shutdown_grace_s
    t0 = time.monotonic()
    stack.down(["deidentify"])
    took = time.monotonic() - t0
    assert "SIGKILL" not in capsys.readouterr().out
    assert took < grace + 5, f"deidentify took {took:.1f} s to stop (grace {grace:g} s)"
    try:
        events = log_events(log, mark)
        names = [e.get("event") for e in events]
        assert "stop_signal" in names and "service_stopped" in names
        signal_at = names.index("stop_signal")
        done = [
            i
            for i, e in enumerate(events)
            if e.get("event") == "case_deidentified" and e.get("case_id") == case_id
        ]
        assert done, "the case in flight was not finished before the exit"
        # finished after the signal (it was in flight) and before the process stopped
        assert signal_at < done[0] < names.index("service_stopped")
        published = read_topic(topics.CASE_DEIDENTIFIED, case_id)
        assert len(published) == 1  # published before the exit
    finally:
        stack.up(["deidentify"], timeout=120)
    ready = httpx.get(f"{DEIDENTIFY}/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    time.sleep(5)  # a redelivered (uncommitted) event would be handled again by now
    assert len(read_topic(topics.CASE_DEIDENTIFIED, case_id)) == 1
    restarted = log_events(log, mark)
    assert sum(1 for e in restarted if e.get("event") == "case_deidentified"
               and e.get("case_id") == case_id) == 1  # fmt: skip
