"""The stack's commands (``secondread up|status|logs``) on a stack folder of the test's own:
what they print and refuse before any process would start."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from secondread_cli.main import app

runner = CliRunner()


def test_up_refuses_a_replica_count_out_of_range(own_stack_dir: Path) -> None:
    done = runner.invoke(app, ["up", "--replicas", "0"])
    assert done.exit_code == 1
    assert "replicas must be between 1 and 9, not 0" in done.output
    assert not (own_stack_dir / "replicas").exists()


def test_status_names_a_garbled_replica_count(own_stack_dir: Path) -> None:
    own_stack_dir.mkdir(parents=True)
    (own_stack_dir / "replicas").write_text("lots\n")
    done = runner.invoke(app, ["status"])
    assert done.exit_code == 1
    assert "holds 'lots', not a replica count between 1 and 9" in done.output


def test_logs_shows_the_end_of_every_replicas_log(own_stack_dir: Path) -> None:
    (own_stack_dir / "replicas").parent.mkdir(parents=True)
    (own_stack_dir / "replicas").write_text("2\n")
    logs = own_stack_dir / "logs"
    logs.mkdir()
    (logs / "routing.log").write_text("".join(f"line {i}\n" for i in range(30)))
    done = runner.invoke(app, ["logs", "routing", "-n", "2"])
    assert done.exit_code == 0, done.output
    assert done.output.splitlines() == [
        f"==> routing: {logs / 'routing.log'} <==",
        "line 28",
        "line 29",
        f"==> routing-2: {logs / 'routing-2.log'} <==",
        "(no log yet)",
    ]


def test_logs_names_an_unknown_component(own_stack_dir: Path) -> None:
    done = runner.invoke(app, ["logs", "kafak"])
    assert done.exit_code == 1
    assert "unknown component(s) kafak" in done.output
