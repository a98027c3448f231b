"""``secondread deid SRC DST``: the command line over the batch engine."""

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from secondread_cli.main import app
from tests.deid_corpus import planted_instance
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


def test_deid_help_is_the_commands_own(tmp_path: Path) -> None:
    result = runner.invoke(app, ["deid", "--help"])
    assert result.exit_code == 0
    assert "SRC" in result.stdout and "--key-file" in result.stdout and "--workers" in result.stdout
    assert (
        runner.invoke(
            app, ["deid", str(tmp_path), str(tmp_path / "d"), "--workers", "-1"]
        ).exit_code
        == 2
    )


def test_the_executable_writes_what_the_engine_writes(tmp_path: Path) -> None:
    """`secondread deid` runs in its own lean process (secondread_cli.entry hides pydicom's pixel
    back-ends): its output must be byte for byte what the engine writes in a full process."""
    from secondread_deidentify.batch import run

    src = tmp_path / "src"
    write_study(src / "a", ct_study(Patient(), count=4, size=16))
    (src / "planted.dcm").write_bytes(planted_instance(Patient(name="Panza^Teresa")).data)
    (src / "us.dcm").write_bytes(
        planted_instance(Patient(), modality="US", sop_class="1.2.840.10008.5.1.4.1.1.6.1").data
    )
    key = tmp_path / "key"
    key.write_text("c" * 64)
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "secondread"),
            "deid",
            str(src),
            str(tmp_path / "cmd"),
            "--key-file",
            str(key),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert (summary["written"], summary["quarantined"], summary["failed"]) == (5, 1, 0)
    run(src, tmp_path / "lib", b"c" * 64, workers=1)
    produced = {
        p.relative_to(tmp_path / "cmd"): p.read_bytes()
        for p in (tmp_path / "cmd").rglob("*")
        if p.is_file()
    }
    expected = {
        p.relative_to(tmp_path / "lib"): p.read_bytes()
        for p in (tmp_path / "lib").rglob("*")
        if p.is_file()
    }
    assert produced.keys() == expected.keys() and len(produced) == 7  # 6 instances, 1 reason
    assert produced == expected


def test_the_executable_loads_no_cli_framework_or_pixel_back_end(tmp_path: Path) -> None:
    """Start-up is most of a small batch: `secondread deid` must not load typer, rich, pydantic
    or pydicom's pixel back-ends (see secondread_cli.entry)."""
    (tmp_path / "src").mkdir()
    (tmp_path / "key").write_text("d" * 64)
    heavy = ("typer", "click", "rich", "pydantic", "numpy", "requests", "PIL")
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: print([m for m in {heavy!r} if sys.modules.get(m)]))\n"
        f"sys.argv = ['secondread', 'deid', {str(tmp_path / 'src')!r}, {str(tmp_path / 'dst')!r},"
        f" '--key-file', {str(tmp_path / 'key')!r}, '--json']\n"
        "from secondread_cli.entry import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[0])["failed"] == 0
    assert done.stdout.strip().splitlines()[-1] == "[]"
