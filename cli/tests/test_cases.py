"""``secondread cases --stuck``: which cases count as stuck."""

from datetime import UTC, datetime, timedelta

from secondread_cli.kafka_tools import stuck

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def status(state: str, minutes_ago: float) -> dict[str, str]:
    return {"state": state, "occurred_at": (NOW - timedelta(minutes=minutes_ago)).isoformat()}


def test_only_automated_stages_without_progress_are_stuck() -> None:
    states = {
        "old-received": status("received", 30),
        "old-deidentified": status("deidentified", 30),
        "old-signed": status("signed", 30),
        "fresh-received": status("received", 2),
        "waiting-reader": status("assigned", 300),
        "waiting-roster": status("unassigned", 300),
        "done": status("notified", 300),
        "failed": status("dead_lettered", 300),
        "unknown-state": status("something_new", 300),
    }
    found = stuck(states, NOW - timedelta(minutes=15))
    assert sorted(found) == ["old-deidentified", "old-received", "old-signed"]
