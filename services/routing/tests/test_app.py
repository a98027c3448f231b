"""The composition root refuses a bad rules file before it builds anything."""

from pathlib import Path

import pytest

from secondread_routing.app import create_app
from secondread_routing.errors import RulesError
from secondread_routing.settings import RoutingSettings


def test_a_bad_rules_file_stops_the_start_naming_rule_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - {id: kids, subspecialty: paediatric, match: {pediatric: true}}\n")
    with pytest.raises(RulesError, match="rule 'kids' field subspecialty: unknown subspecialty"):
        create_app(RoutingSettings(routing_rules=bad))


def test_the_override_is_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rules.yaml"
    monkeypatch.setenv("SECONDREAD_ROUTING_RULES", str(path))
    assert RoutingSettings().routing_rules == path
