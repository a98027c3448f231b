"""``secondread read ... --as READER`` and ``make demo`` (its module) on the real stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.reporting_support import complete_draft, put_on_worklist

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack")]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def test_read_worklist_show_draft_sign_as_a_demo_reader(tmp_path: Path) -> None:
    case = put_on_worklist("rad-novak").case_id
    read = ("secondread_cli.main", "read")
    listed = run(*read, "worklist", "--as", "rad-novak")
    assert listed.returncode == 0 and case in listed.stdout, listed.stderr
    shown = run(*read, "show", case, "--as", "rad-novak")
    assert " 1. [findings] 8 mm solid nodule in the right upper lobe." in shown.stdout
    assert run(*read, "show", case, "--as", "rad-chen").returncode == 1  # not theirs
    draft = tmp_path / "draft.json"
    statements = [{"number": n} for n in (1, 2, 3)]
    draft.write_text(json.dumps(complete_draft(statements, summary="Agree with the report")))
    saved = run(*read, "draft", case, "--as", "rad-novak", "--file", str(draft))
    assert saved.returncode == 0 and "version 1" in saved.stdout, saved.stderr
    signed = run(*read, "sign", case, "--as", "rad-novak")
    assert signed.returncode == 0, signed.stderr
    report_id = signed.stdout.strip().splitlines()[-1]
    verified = run("secondread_cli.main", "verify", report_id)
    assert verified.returncode == 0 and "VALID" in verified.stdout


def test_the_demo_tour_ends_with_a_report_that_verifies() -> None:
    done = run("secondread_cli.demo", timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "[scripted demo reader " in out
    for step in ("received", "deidentified", "assigned", "signed", "notified"):
        assert f"  {step} " in out, step
    assert (
        "assessment: Growing spiculated nodule" in out and "delivered: http://127.0.0.1:8025" in out
    )
    report_id = out.strip().splitlines()[-1]
    assert f"secondread verify {report_id}" in out
    # the three pages, a working upload link and the demo logins
    for page in ("http://127.0.0.1:8004/read/", "http://127.0.0.1:8003/ops/",
                 "http://127.0.0.1:8001/portal/#link="):  # fmt: skip
        assert page in out, page
    assert "rad-chen             password demo-rad-chen" in out
    assert "ops-demo" in out and "hospital-admin-demo" in out
    assert run("secondread_cli.main", "verify", report_id).returncode == 0
