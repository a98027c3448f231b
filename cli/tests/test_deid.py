"""``secondread deid SRC DST``: the command line over the batch engine."""

import json
from pathlib import Path

from typer.testing import CliRunner

from secondread_cli.main import app
from tests.synthetic import Patient, ct_study, write_study

runner = CliRunner()


def test_deid_writes_a_summary_and_links_with_the_same_key(tmp_path: Path) -> None:
    write_study(tmp_path / "src", ct_study(Patient(), count=3, size=8))
    key = tmp_path / "key"
    key.write_text("a" * 64)
    result = runner.invoke(
        app,
        ["deid", str(tmp_path / "src"), str(tmp_path / "dst"), "--key-file", str(key), "--json"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["written"] == 3 and summary["failed"] == 0 and summary["patients"] == 1
    assert len(list((tmp_path / "dst").rglob("*.dcm"))) == 3


def test_deid_exits_non_zero_on_errors(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_study(src, ct_study(Patient(), count=1, size=8))
    (src / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff")
    key = tmp_path / "key"
    key.write_text("b" * 64)
    result = runner.invoke(app, ["deid", str(src), str(tmp_path / "dst"), "--key-file", str(key)])
    assert result.exit_code == 1
    assert "failed" in result.output


def test_deid_refuses_a_missing_source_or_key_file(tmp_path: Path) -> None:
    assert runner.invoke(app, ["deid", str(tmp_path / "nope"), str(tmp_path / "d")]).exit_code == 2
    (tmp_path / "s").mkdir()
    result = runner.invoke(
        app, ["deid", str(tmp_path / "s"), str(tmp_path / "d"), "--key-file", str(tmp_path / "k")]
    )
    assert result.exit_code == 2
