from datetime import UTC, datetime, timedelta

from secondread_ingest.completion import Action, Progress, Rules, Status, decide

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
RULES = Rules(quiet_period_s=10, intake_hold_s=60, pacs_configured=True)


def p(**kw) -> Progress:  # type: ignore[no-untyped-def]
    base = dict(status=Status.RECEIVING, has_intake=True, instances=3, unannounced=3,
                last_instance_at=NOW - timedelta(seconds=11))  # fmt: skip
    return Progress(**{**base, **kw})  # type: ignore[arg-type]


def test_quiet_period_completes_and_new_instances_wait() -> None:
    assert decide(p(), RULES, NOW) == Action.ANNOUNCE
    assert decide(p(last_instance_at=NOW - timedelta(seconds=2)), RULES, NOW) == Action.WAIT


def test_declared_count_completes_at_once() -> None:
    fresh = NOW - timedelta(seconds=1)
    assert decide(p(last_instance_at=fresh, expected_instances=3), RULES, NOW) == Action.ANNOUNCE
    assert decide(p(last_instance_at=fresh, expected_instances=4), RULES, NOW) == Action.WAIT


def test_no_intake_is_parked_after_the_hold_window() -> None:
    assert decide(p(has_intake=False), RULES, NOW) == Action.WAIT
    old = NOW - timedelta(seconds=61)
    assert decide(p(has_intake=False, last_instance_at=old), RULES, NOW) == Action.PARK


def test_priors_before_announcement_and_late_instances_amend() -> None:
    assert decide(p(fetch_priors=True), RULES, NOW) == Action.FETCH_PRIORS
    assert decide(p(fetch_priors=True, priors_done=True), RULES, NOW) == Action.ANNOUNCE
    no_pacs = Rules(10, 60, pacs_configured=False)
    assert decide(p(fetch_priors=True), no_pacs, NOW) == Action.ANNOUNCE
    assert decide(p(status=Status.RECEIVED, unannounced=1), RULES, NOW) == Action.AMEND
    assert decide(p(status=Status.RECEIVED, unannounced=0), RULES, NOW) == Action.WAIT
    assert decide(p(status=Status.COMPLETE, last_instance_at=NOW), RULES, NOW) == Action.ANNOUNCE
