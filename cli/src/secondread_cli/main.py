"""The ``secondread`` command: one entry point for operators and developers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from secondread_cli import stack
from secondread_cli.submit import SubmitError, submit_case
from secondread_cli.traces import case_traces, services_in

app = typer.Typer(
    help="secondread: second-opinion radiology pipeline (local stack and tools).",
    no_args_is_help=True,
    add_completion=False,
)
err = Console(stderr=True)
out = Console()

INGEST_URL = "http://127.0.0.1:8001"
JAEGER_URL = "http://127.0.0.1:16686"
DEMO_API_KEY = "demo-hospital-key"


@app.command()
def up(
    components: Annotated[list[str] | None, typer.Argument(help="Only these components")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each component")] = 120.0,
) -> None:
    """Start the local stack and the five services (idempotent)."""
    try:
        stack.up(components or None, timeout=timeout)
    except stack.StackError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    status()


@app.command()
def down(
    components: Annotated[list[str] | None, typer.Argument(help="Only these components")] = None,
) -> None:
    """Stop what ``up`` started; data is kept."""
    stack.down(components or None)


@app.command()
def status() -> None:
    """Show each component: pid, health, address and log file."""
    table = Table("component", "pid", "healthy", "address", "log")
    rows = stack.status()
    for s in rows:
        table.add_row(
            s.name,
            str(s.pid or "-"),
            "[green]yes[/green]" if s.healthy else "[red]no[/red]",
            s.url,
            str(s.log),
        )
    out.print(table)
    out.print(f"stack folder: {stack.stack_dir()}   mail: {stack.stack_dir() / 'mail'}")
    if not all(s.healthy for s in rows):
        raise typer.Exit(1)


@app.command()
def submit(
    folder: Annotated[Path, typer.Argument(help="Folder of DICOM files (any depth)")],
    question: Annotated[str, typer.Option("--question", help="Clinical question")],
    report_file: Annotated[Path, typer.Option("--report-file", help="Original report (text)")],
    physician_email: Annotated[str, typer.Option("--physician-email")],
    physician_name: Annotated[str, typer.Option("--physician-name")] = "Referring Physician",
    urgent: Annotated[bool, typer.Option("--urgent")] = False,
    patient_email: Annotated[str | None, typer.Option("--patient-email")] = None,
    jurisdiction: Annotated[str, typer.Option("--jurisdiction")] = "US",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object")] = False,
    url: Annotated[str, typer.Option(envvar="SECONDREAD_INGEST_URL")] = INGEST_URL,
    api_key: Annotated[str, typer.Option(envvar="SECONDREAD_API_KEY")] = DEMO_API_KEY,
) -> None:
    """Submit a case from a folder through ingest's HTTP API (the demo hospital by default)."""
    try:
        report = report_file.read_text()
    except OSError as exc:
        err.print(f"[red]error:[/red] cannot read --report-file {report_file}: {exc.strerror}")
        raise typer.Exit(2) from exc
    intake = {
        "clinical_question": question,
        "original_report": report,
        "urgency": "urgent" if urgent else "routine",
        "referring_physician": {"name": physician_name, "email": physician_email},
        "patient_email": patient_email,
        "jurisdiction": jurisdiction,
        "consent": True,
    }
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        transient=True,
    ) as progress:
        zipping = progress.add_task("packing", total=None)
        upload = progress.add_task("uploading", total=None, visible=False)

        def on_zip(i: int, n: int) -> None:
            progress.update(zipping, completed=i, total=n)

        def on_upload(done: int, total: int) -> None:
            progress.update(upload, completed=done, total=total, visible=True)

        try:
            answer = submit_case(
                url=url,
                api_key=api_key,
                folder=folder,
                intake=intake,
                on_zip=on_zip,
                on_upload=on_upload,
            )
        except SubmitError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
    if as_json:
        sys.stdout.write(json.dumps(answer) + "\n")
    else:
        err.print(f"{answer['instances']} instances accepted; status: {url}{answer['status_url']}")
        sys.stdout.write(answer["case_id"] + "\n")


@app.command()
def trace(
    case_id: str,
    url: Annotated[str, typer.Option(envvar="SECONDREAD_JAEGER_URL")] = JAEGER_URL,
) -> None:
    """Show the traces of a case: each trace, its services and span count."""
    traces = case_traces(url, case_id)
    if not traces:
        err.print(f"no trace found for case {case_id}")
        raise typer.Exit(1)
    table = Table("trace id", "spans", "services")
    for tr in traces:
        table.add_row(tr["traceID"], str(len(tr["spans"])), ", ".join(sorted(services_in(tr))))
    out.print(table)
    out.print(f"open: {url}/trace/{traces[0]['traceID']}")


if __name__ == "__main__":
    app()
