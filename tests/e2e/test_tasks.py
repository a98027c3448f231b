"""Each case's task record in every service (``secondread tasks``): the stages a case went
through with their attempts, and a poison message's stage dead-lettered with its error."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from secondread_cli.tasks_view import all_tasks
from secondread_shared import topics
from tests.e2e.conftest import submit, wait_for
from tests.e2e.test_dead_letters import _send
from tests.e2e.test_pipeline import assigned_to
from tests.synthetic import Patient, ct_study, write_study

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack")]


def stages(case_id: str) -> dict[str, tuple[str, int, str]]:
    return {t.stage: (t.state, t.attempts, t.last_error) for t in asyncio.run(all_tasks(case_id))}


def test_a_case_leaves_a_task_record_at_every_stage(tmp_path: Path) -> None:
    patient = Patient(patient_id=f"MRN-{uuid.uuid4().hex[:10]}")
    folder = write_study(tmp_path / "s", ct_study(patient, count=2, seed=uuid.uuid4().hex))
    (tmp_path / "r.txt").write_text("No acute finding.")
    case_id = submit(folder, "Any change?", tmp_path / "r.txt")
    wait_for("the case on a worklist", lambda: assigned_to(case_id), timeout=120)

    def recorded() -> dict[str, tuple[str, int, str]] | None:
        found = stages(case_id)
        return found if "reporting:case.assigned.v1" in found else None

    found = wait_for("reporting's task record", recorded, timeout=30)
    for stage in ("deidentify:phi.case.received.v1", "routing:case.deidentified.v1",
                  "reporting:case.assigned.v1", "notify:phi.case.received.v1"):  # fmt: skip
        assert found[stage][:2] == ("done", 1), (stage, found[stage])
    listed = subprocess.run(
        [sys.executable, "-m", "secondread_cli.main", "tasks", case_id],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "routing:case.deidentified.v1" in listed.stdout and "done" in listed.stdout


def test_a_poison_message_leaves_its_stage_dead_lettered_with_the_error() -> None:
    case_id = f"poison-{uuid.uuid4()}"
    asyncio.run(_send(topics.CASE_DEIDENTIFIED, case_id, b'{"not": "an event"}'))

    def dead() -> tuple[str, int, str] | None:
        task = stages(case_id).get("routing:case.deidentified.v1")
        return task if task and task[0] == "dead_lettered" else None

    _state, attempts, error = wait_for("the dead-lettered task", dead, timeout=60)
    assert attempts >= 1 and "ValidationError" in error


def test_secondread_outbox_lists_the_parked_rows_of_every_service() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "secondread_cli.main", "outbox"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "parked outbox rows" in done.stderr
