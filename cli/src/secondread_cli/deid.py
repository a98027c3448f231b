"""``secondread deid SRC DST``: the de-identification engine in batch.

Runs the same engine as the deidentify service (DICOM PS3.15 Basic Profile with options, keyed
pseudonyms, quarantine policy) over every DICOM file under SRC and writes the results into DST.
See docs/deidentification.md.

The command is parsed with argparse, not typer: ``secondread deid`` is dispatched here before the
rest of the command line is imported (:mod:`secondread_cli.entry`), so a batch does not pay for
typer, rich and pydantic at start-up. rich is loaded only to draw a progress bar on a terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the module itself loads pydicom: imported only when deid runs
    from secondread_deidentify.batch import Summary

DESCRIPTION = (
    "De-identify every DICOM file under SRC into DST (quarantined ones under DST/quarantine)."
)
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A bad argument: printed as ``error: ...`` with exit code 2."""


def parser(prog: str = "secondread deid") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    p.add_argument("src", type=Path, metavar="SRC", help="folder of DICOM files (any depth)")
    p.add_argument("dst", type=Path, metavar="DST", help="output folder (created if missing)")
    p.add_argument(
        "--key-file",
        type=Path,
        help="pseudonym key file; default: SECONDREAD_PSEUDONYM_KEY(_FILE), else the local "
        "stack's key (the service's, so the output links to the archive)",
    )
    p.add_argument("--issuer", default="", help="issuer of patient ids when a file names none")
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes to use (default 0: one per CPU)",
    )
    p.add_argument("--json", dest="as_json", action="store_true", help="print the summary as JSON")
    return p


def _key(key_file: Path | None) -> bytes:
    if key_file is not None:
        try:
            key = key_file.read_bytes().strip()
        except OSError as exc:
            raise UsageError(f"cannot read --key-file {key_file}: {exc.strerror}") from exc
        if not key:
            raise UsageError(f"--key-file {key_file} is empty")
        return key
    from secondread_deidentify.settings import DeidentifySettings
    from secondread_shared.secrets import MissingSecretError, load_key

    settings = DeidentifySettings()
    try:
        return load_key(
            "pseudonym_key",
            settings.pseudonym_key,
            settings.pseudonym_key_file,
            local_path=settings.stack_dir / "secrets" / "pseudonym.key",
            environment=settings.environment,
        )
    except MissingSecretError as exc:
        raise UsageError(f"{exc}, or pass --key-file") from exc


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr when it is a terminal; nothing otherwise (and rich not loaded)."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("de-identifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("deid", total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


def _print_summary(summary: Summary, dst: Path) -> None:
    data = summary.as_dict()
    names = (
        "files",
        "written",
        "quarantined",
        "skipped_not_dicom",
        "failed",
        "patients",
        "studies",
    )
    for name in names:
        sys.stdout.write(f"{name:<18}{data[name]:>8}\n")
    for reason, n in summary.reasons.items():
        sys.stdout.write(f"quarantined ({n}): {reason}\n")
    for error, n in summary.errors.items():
        sys.stderr.write(f"failed ({n}): {error}\n")
    sys.stdout.write(
        f"{summary.instances} instances in {summary.seconds:.2f} s "
        f"({data['instances_per_second']} instances/s) -> {dst}\n"
    )


def main(argv: Sequence[str] | None = None, prog: str = "secondread deid") -> int:
    """Run the command; returns the exit code (0 ok, 1 a file failed, 2 bad arguments)."""
    args = parser(prog).parse_args(argv)
    try:
        if not args.src.is_dir():
            raise UsageError(f"SRC {args.src} is not a folder")
        if args.workers < 0:
            raise UsageError(f"--workers must be 0 or more, not {args.workers}")
        key = _key(args.key_file)
    except UsageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    from secondread_deidentify import batch  # pydicom: loaded only when deid runs

    with _progress(not args.as_json and sys.stderr.isatty()) as on_file:
        summary = batch.run(
            args.src,
            args.dst,
            key,
            workers=args.workers or None,
            default_issuer=args.issuer,
            on_file=on_file,
        )
    if args.as_json:
        sys.stdout.write(json.dumps(summary.as_dict()) + "\n")
    else:
        _print_summary(summary, args.dst)
    return 0 if summary.ok else EXIT_FAILED
