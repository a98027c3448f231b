"""The short form of ``make chaos``: a few cases through the whole pipeline with two replicas
of every service while every kind of fault of the full schedule plays (shorter outages), then
the verdict line. Runs after the other tests (it restarts every service), before the zone scan.
"""

from __future__ import annotations

import os
import re

import pytest

from tests.chaos.__main__ import run

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.runs_last,
    pytest.mark.usefixtures("running_stack"),
    pytest.mark.timeout(1500),
]

VERDICT = re.compile(
    r"cases (\d+), delivered (\d+), quarantined (\d+), dead-lettered (\d+), lost (\d+),"
    r" duplicated (\d+)"
)


def test_short_chaos_run_loses_nothing_and_doubles_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cases = int(os.environ.get("CHAOS_SHORT_CASES", "4"))
    code = run(cases, instances=3, short=True, timeout_s=600)
    out = capsys.readouterr().out
    print(out)  # the run's log and table, in the test report
    last = out.strip().splitlines()[-1]
    verdict = VERDICT.fullmatch(last)
    assert verdict, f"the last line is not the verdict: {last!r}"
    n, delivered, quarantined, dead, lost, duplicated = map(int, verdict.groups())
    assert (lost, duplicated) == (0, 0), last
    assert n == cases and delivered + quarantined + dead == n
    assert delivered >= 1  # the pipeline delivered through the faults
    assert code == 0, "identifiers in the clear zone (see the output)"
