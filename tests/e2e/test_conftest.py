"""The session's ordering hook (unit tier: no stack needed)."""

from __future__ import annotations

from typing import cast

import pytest

from tests.e2e.conftest import RUNS_LAST, move_last


class _Item:
    def __init__(self, name: str, *, last: bool = False) -> None:
        self.name = name
        self.last = last

    def get_closest_marker(self, name: str) -> object | None:
        return object() if self.last and name == RUNS_LAST else None


def test_runs_last_tests_move_behind_every_other_in_their_own_order() -> None:
    items = [_Item("scan-1", last=True), _Item("a"), _Item("scan-2", last=True), _Item("b")]
    as_items = cast(list[pytest.Item], items)
    move_last(as_items)
    assert [i.name for i in items] == ["a", "b", "scan-1", "scan-2"]


def test_the_zone_scan_is_marked_to_run_last() -> None:
    from tests.e2e import test_zone_scan

    assert any(m.name == RUNS_LAST for m in test_zone_scan.pytestmark)
