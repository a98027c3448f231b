"""``secondread cases --stuck``: which cases count as stuck (the rule of the shared package,
which routing's operations page applies too)."""

from datetime import UTC, datetime, timedelta

from secondread_cli.kafka_tools import CaseStatus, stuck

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def status(case_id: str, state: str, minutes_ago: float) -> CaseStatus:
    at = NOW - timedelta(minutes=minutes_ago)
    return CaseStatus(case_id=case_id, state=state, producer="t", detail="", occurred_at=at)


def test_only_automated_stages_without_progress_are_stuck() -> None:
    states = {
        s.case_id: s
        for s in (
            status("old-received", "received", 30),
            status("old-deidentified", "deidentified", 30),
            status("old-signed", "signed", 30),
            status("fresh-received", "received", 2),
            status("waiting-reader", "assigned", 300),
            status("waiting-roster", "unassigned", 300),
            status("done", "notified", 300),
            status("failed", "dead_lettered", 300),
            status("unknown-state", "something_new", 300),
        )
    }
    found = stuck(states, NOW, timedelta(minutes=15))
    assert sorted(found) == ["old-deidentified", "old-received", "old-signed"]
