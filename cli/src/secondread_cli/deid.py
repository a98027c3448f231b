"""``secondread deid SRC DST``: the de-identification engine in batch.

Runs the same engine as the deidentify service (DICOM PS3.15 Basic Profile with options, keyed
pseudonyms, quarantine policy) over every DICOM file under SRC and writes the results into DST.
See docs/deidentification.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

err = Console(stderr=True)


def _key(key_file: Path | None) -> bytes:
    if key_file is not None:
        try:
            key = key_file.read_bytes().strip()
        except OSError as exc:
            err.print(f"[red]error:[/red] cannot read --key-file {key_file}: {exc.strerror}")
            raise typer.Exit(2) from exc
        if not key:
            err.print(f"[red]error:[/red] --key-file {key_file} is empty")
            raise typer.Exit(2)
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
        err.print(f"[red]error:[/red] {exc}, or pass --key-file")
        raise typer.Exit(2) from exc


def deid(
    src: Annotated[Path, typer.Argument(help="Folder of DICOM files (any depth)")],
    dst: Annotated[Path, typer.Argument(help="Output folder (created if missing)")],
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            help="Pseudonym key file; default: SECONDREAD_PSEUDONYM_KEY(_FILE), else the local "
            "stack's key (the service's, so the output links to the archive)",
        ),
    ] = None,
    issuer: Annotated[
        str, typer.Option("--issuer", help="Issuer of patient ids when a file names none")
    ] = "",
    workers: Annotated[
        int, typer.Option("--workers", help="Processes to use (0: one per CPU)", min=0)
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """De-identify every DICOM file under SRC into DST (quarantined ones under DST/quarantine)."""
    if not src.is_dir():
        err.print(f"[red]error:[/red] SRC {src} is not a folder")
        raise typer.Exit(2)
    key = _key(key_file)
    with Progress(
        TextColumn("de-identifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=as_json or not err.is_terminal,
    ) as progress:
        task = progress.add_task("deid", total=None)

        def on_file(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        from secondread_deidentify import batch  # pydicom: loaded only when deid runs

        summary = batch.run(
            src, dst, key, workers=workers or None, default_issuer=issuer, on_file=on_file
        )
    data = summary.as_dict()
    if as_json:
        sys.stdout.write(json.dumps(data) + "\n")
    else:
        table = Table("result", "count")
        for name in ("files", "written", "quarantined", "skipped_not_dicom", "failed"):
            table.add_row(name, str(data[name]))
        table.add_row("patients", str(data["patients"]))
        table.add_row("studies", str(data["studies"]))
        Console().print(table)
        for reason, n in summary.reasons.items():
            Console().print(f"quarantined ({n}): {reason}")
        for error, n in summary.errors.items():
            err.print(f"[red]failed ({n}):[/red] {error}")
        Console().print(
            f"{summary.instances} instances in {summary.seconds:.2f} s "
            f"({data['instances_per_second']} instances/s) -> {dst}"
        )
    if not summary.ok:
        raise typer.Exit(1)
