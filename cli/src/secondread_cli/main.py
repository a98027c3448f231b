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

from secondread_cli import deid as deid_command
from secondread_cli.links import link_app
from secondread_cli.read import read_app
from secondread_cli.verify import verify as verify_command

# Commands import their heavy modules (Kafka, FastStream, OpenTelemetry, httpx) when they run,
# so `secondread --help` starts fast. `secondread deid` does not even load this module
# (secondread_cli.entry); it is listed here so that help and the application object know it.

app = typer.Typer(
    help="secondread: second-opinion radiology pipeline (local stack and tools).",
    no_args_is_help=True,
    add_completion=False,
)
# Not a terminal (a pipe, a test): never wrap, so that a message stays one line to grep.
err = Console(stderr=True, soft_wrap=not sys.stderr.isatty())
# Piped output (scripts, CI logs) gets wide tables instead of truncated cells.
out = Console() if sys.stdout.isatty() else Console(width=200)

INGEST_URL = "http://127.0.0.1:8001"
JAEGER_URL = "http://127.0.0.1:16686"
DEMO_API_KEY = "demo-hospital-key"


@app.command()
def up(
    components: Annotated[list[str] | None, typer.Argument(help="Only these components")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each component")] = 120.0,
    replicas: Annotated[
        int | None,
        typer.Option(
            help="Run this many replicas of each service (replica k of S is S-k), remembered in "
            "the stack folder; replicas above it are stopped (default: the remembered count, 1)"
        ),
    ] = None,
) -> None:
    """Start the local stack and the five services (idempotent)."""
    from secondread_cli import stack

    try:
        stack.up(components or None, timeout=timeout, replicas=replicas)
    except stack.StackError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    status()


@app.command()
def down(
    components: Annotated[list[str] | None, typer.Argument(help="Only these components")] = None,
) -> None:
    """Stop what ``up`` started (a service: every replica); data is kept."""
    from secondread_cli import stack

    try:
        stack.down(components or None)
    except stack.StackError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


@app.command()
def status() -> None:
    """Show each component (every replica of each service): pid, health, address and log file."""
    from secondread_cli import stack

    table = Table("component", "pid", "healthy", "address", "log")
    try:
        rows = stack.status()
    except stack.StackError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    for s in rows:
        table.add_row(
            s.name,
            str(s.pid or "-"),
            "[green]yes[/green]" if s.healthy else "[red]no[/red]",
            s.url,
            str(s.log),
        )
    out.print(table)
    out.print(f"stack folder: {stack.stack_dir()}   mail: http://127.0.0.1:8025 (secondread mail)")
    if not all(s.healthy for s in rows):
        raise typer.Exit(1)


@app.command()
def logs(
    components: Annotated[
        list[str] | None, typer.Argument(help="Only these components (a service: every replica)")
    ] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Lines from the end of each")] = 20,
) -> None:
    """Show the end of each component's log (every replica of each service)."""
    from secondread_cli import stack

    try:
        paths = stack.log_paths(components or None)
    except stack.StackError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    for name, path in paths:
        typer.echo(f"==> {name}: {path} <==")
        typer.echo(stack.tail(path, lines) if path.exists() else "(no log yet)")


@app.command()
def submit(
    folder: Annotated[Path, typer.Argument(help="Folder of DICOM files (any depth)")],
    question: Annotated[str, typer.Option("--question", help="Clinical question")],
    report_file: Annotated[Path, typer.Option("--report-file", help="Original report (text)")],
    physician_email: Annotated[str, typer.Option("--physician-email")],
    physician_name: Annotated[str, typer.Option("--physician-name")] = "Referring Physician",
    urgent: Annotated[bool, typer.Option("--urgent")] = False,
    patient_email: Annotated[str | None, typer.Option("--patient-email")] = None,
    patient_consent: Annotated[
        bool,
        typer.Option(
            "--patient-consent",
            help="The patient consents to receive the report at --patient-email themselves",
        ),
    ] = False,
    jurisdiction: Annotated[str, typer.Option("--jurisdiction")] = "US",
    fetch_priors: Annotated[
        bool, typer.Option("--fetch-priors", help="Let ingest fetch priors from the PACS")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object")] = False,
    url: Annotated[str, typer.Option(envvar="SECONDREAD_INGEST_URL")] = INGEST_URL,
    api_key: Annotated[str, typer.Option(envvar="SECONDREAD_API_KEY")] = DEMO_API_KEY,
) -> None:
    """Submit a case from a folder through ingest's HTTP API (the demo hospital by default)."""
    from secondread_cli.submit import SubmitError, submit_case

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
        "patient_delivery_consent": patient_consent,
        "jurisdiction": jurisdiction,
        "consent": True,
        "fetch_priors": fetch_priors,
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
                on_retry=lambda attempt, why: err.print(
                    f"[yellow]upload failed ({why}); retrying with the same Idempotency-Key"
                    f" (attempt {attempt + 1})[/yellow]"
                ),
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
    from secondread_cli.traces import case_traces, services_in

    traces = case_traces(url, case_id)
    if not traces:
        err.print(f"no trace found for case {case_id}")
        raise typer.Exit(1)
    table = Table("trace id", "spans", "services")
    for tr in traces:
        table.add_row(tr["traceID"], str(len(tr["spans"])), ", ".join(sorted(services_in(tr))))
    out.print(table)
    out.print(f"open: {url}/trace/{traces[0]['traceID']}")


KAFKA = "127.0.0.1:9092"
KafkaOpt = Annotated[str, typer.Option("--bootstrap", envvar="SECONDREAD_KAFKA_BOOTSTRAP")]


@app.command()
def outbox() -> None:
    """The outbox rows every service parked (attempts spent): service, topic, case, attempts,
    last error. A parked row never blocks the rows behind it; fix the cause, then requeue it by
    clearing parked_at in that service's outbox."""
    import asyncio

    from secondread_cli.tasks_view import all_parked
    from secondread_shared.deadletters import redact_reason

    rows = asyncio.run(all_parked())
    table = Table("service", "id", "topic", "case id", "attempts", "parked at", "last error")
    for service, r in rows:
        table.add_row(
            service, str(r["id"]), str(r["topic"]), str(r["case_id"] or ""), str(r["attempts"]),
            str(r["parked_at"])[:19], redact_reason(str(r["last_error"] or ""))[:80],
        )  # fmt: skip
    out.print(table)
    err.print(f"{len(rows)} parked outbox rows")


@app.command()
def tasks(
    case_id: Annotated[str | None, typer.Argument(help="One case (default: every case)")] = None,
    open_only: Annotated[
        bool, typer.Option("--open", help="Only tasks still running or waiting for a retry")
    ] = False,
    limit: Annotated[int, typer.Option(help="At most this many rows")] = 50,
) -> None:
    """Each case's task record in every service: stage, state, attempts, next retry, last
    error (the services' own PostgreSQL schemas; errors with input values withheld)."""
    import asyncio

    from secondread_cli.tasks_view import all_tasks
    from secondread_shared.deadletters import redact_reason

    rows = asyncio.run(all_tasks(case_id))
    if open_only:
        rows = [r for r in rows if r.state in ("running", "retrying")]
    table = Table("case id", "stage", "state", "attempts", "next retry", "updated", "last error")
    for r in rows[:limit]:
        table.add_row(
            r.case_id, r.stage, r.state, str(r.attempts),
            r.next_retry_at.strftime("%H:%M:%S") if r.next_retry_at and r.state == "retrying"
            else "", r.updated_at.strftime("%Y-%m-%d %H:%M:%S"), redact_reason(r.last_error)[:80],
        )  # fmt: skip
    out.print(table)
    err.print(
        f"{len(rows)} task records" + (f" (first {limit} shown)" if len(rows) > limit else "")
    )


@app.command()
def cases(
    bootstrap: KafkaOpt = KAFKA,
    stuck: Annotated[
        bool,
        typer.Option(
            "--stuck",
            help="Only cases in an automated stage (received, deidentified, signed) with no"
            " status change for --after minutes.",
        ),
    ] = False,
    after: Annotated[float, typer.Option("--after", help="Minutes without progress.")] = 15.0,
) -> None:
    """List every case with its latest state (from secondread.case.status.v1)."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from secondread_shared import casestatus

    states = asyncio.run(casestatus.case_states(bootstrap))
    if stuck:
        states = casestatus.stuck(states, datetime.now(UTC), timedelta(minutes=after))
    table = Table("case id", "state", "by", "at", "detail")
    for case_id, st in sorted(states.items(), key=lambda kv: kv[1].order):
        table.add_row(
            case_id,
            st.state,
            st.producer or "?",
            st.occurred_at.astimezone(UTC).isoformat()[:19],
            st.detail,
        )
    out.print(table)
    err.print(f"{len(states)} cases" + (f" stuck for more than {after:g} min" if stuck else ""))


@app.command()
def events(case_id: str, bootstrap: KafkaOpt = KAFKA) -> None:
    """Show every status change of one case, oldest first."""
    import asyncio
    from datetime import UTC

    from secondread_shared import casestatus

    evs = asyncio.run(casestatus.status_events(bootstrap, case_id))
    if not evs:
        err.print(f"no status events for case {case_id}")
        raise typer.Exit(1)
    table = Table("at", "state", "by", "detail")
    for ev in evs:
        at = ev.occurred_at.astimezone(UTC).isoformat()[:23]
        table.add_row(at, ev.state, ev.producer, ev.detail)
    out.print(table)


mail_app = typer.Typer(
    help="The local mail server (Mailpit): delivered emails.", no_args_is_help=True
)
app.add_typer(mail_app, name="mail")


@mail_app.command("list")
def mail_list() -> None:
    """The delivered emails, newest first (web UI: http://127.0.0.1:8025)."""
    from secondread_cli import mail

    try:
        found = mail.messages()
    except mail.MailError as exc:
        err.print(f"[red]{exc}[/red] (is the stack up? make up)")
        raise typer.Exit(1) from exc
    table = Table("received", "to", "subject", "attachments", "id")
    for m in found:
        table.add_row(m.created[:19], ", ".join(m.to), m.subject, str(m.attachments), m.id)
    out.print(table)
    err.print(f"{len(found)} messages")


@mail_app.command("save")
def mail_save(
    folder: Annotated[Path, typer.Argument(help="Where to write <id>.eml files")],
) -> None:
    """Write every delivered email as an .eml file in FOLDER."""
    from secondread_cli import mail

    try:
        written = mail.save(folder)
    except mail.MailError as exc:
        err.print(f"[red]{exc}[/red] (is the stack up? make up)")
        raise typer.Exit(1) from exc
    err.print(f"{len(written)} messages in {folder}")


dlq_app = typer.Typer(help="List and replay dead letters.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")


@dlq_app.command("list")
def dlq_list(
    topic: Annotated[str | None, typer.Option(help="Source topic (default: all)")] = None,
    bootstrap: KafkaOpt = KAFKA,
) -> None:
    """List dead letters: where they came from and why (never their payload)."""
    import asyncio

    from secondread_shared import deadletters

    letters = [
        deadletters.letter_of(r) for r in asyncio.run(deadletters.dead_letters(bootstrap, topic))
    ]
    table = Table("dlq topic", "partition:offset", "case id", "service", "attempts", "reason")
    for letter in letters:
        table.add_row(
            letter.topic,
            f"{letter.partition}:{letter.offset}",
            letter.case_id,
            letter.service or "?",
            "?" if letter.attempts is None else str(letter.attempts),
            letter.reason or "?",
        )
    out.print(table)
    err.print(f"{len(letters)} dead letters")


@dlq_app.command("replay")
def dlq_replay(
    topic: Annotated[str, typer.Option(help="Source topic whose dead letters to replay")],
    case: Annotated[str | None, typer.Option(help="Only this case's letters")] = None,
    offset: Annotated[int | None, typer.Option(help="Only the letter at this DLQ offset")] = None,
    bootstrap: KafkaOpt = KAFKA,
) -> None:
    """Publish dead letters again on their source topic (handlers are idempotent)."""
    import asyncio

    from secondread_shared import deadletters

    letters = asyncio.run(deadletters.dead_letters(bootstrap, topic))
    chosen = [
        r
        for r in letters
        if (case is None or r.key == case) and (offset is None or r.offset == offset)
    ]
    if not chosen:
        err.print("no matching dead letter")
        raise typer.Exit(1)
    n = asyncio.run(deadletters.replay(bootstrap, chosen))
    out.print(f"replayed {n} dead letter(s) onto {topic}")


roster_app = typer.Typer(help="The radiologist roster routing assigns from.", no_args_is_help=True)
app.add_typer(roster_app, name="roster")


@roster_app.command("import")
def roster_import(
    file: Annotated[Path, typer.Argument(help="Roster file, TOML or YAML (docs/routing.md)")],
) -> None:
    """Validate FILE and make it the roster (atomic; the same file again changes nothing)."""
    import asyncio

    from secondread_cli.roster import import_file
    from secondread_routing.roster import RosterError
    from secondread_shared.db import DatabaseError

    try:
        changed = asyncio.run(import_file(file))
    except RosterError as exc:
        for problem in exc.problems:
            err.print(f"[red]error:[/red] {problem}")
        err.print("nothing was changed")
        raise typer.Exit(1) from exc
    except DatabaseError as exc:
        err.print(f"[red]error:[/red] routing's database: {exc}")
        raise typer.Exit(1) from exc
    if changed:
        out.print(f"roster imported: {len(changed)} reader(s) changed: {', '.join(changed)}")
    else:
        out.print("roster unchanged")


@roster_app.command("list")
def roster_list() -> None:
    """Show the readers, their open cases and their availability."""
    import asyncio

    from secondread_cli.roster import list_readers
    from secondread_shared.db import DatabaseError

    try:
        rows = asyncio.run(list_readers())
    except DatabaseError as exc:
        err.print(f"[red]error:[/red] routing's database: {exc}")
        raise typer.Exit(1) from exc
    table = Table("id", "name", "subspecialties", "licences", "open", "max open",
                  "availability", "conflicts")  # fmt: skip
    for row in rows:
        r = row.reader
        table.add_row(
            r.id,
            f"{r.display_name}, {r.credentials}" if r.credentials else r.display_name,
            ", ".join(r.subspecialties),
            ", ".join(f"{lic.jurisdiction} to {lic.expires}" for lic in r.licences),
            str(row.open_cases),
            str(r.max_open),
            row.availability,
            ", ".join(r.conflicts),
        )
    out.print(table)
    err.print(f"{len(rows)} readers")


@app.command()
def classify(
    path: Annotated[Path, typer.Argument(help="A DICOM file, or a folder holding one study")],
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules", help="Rules file (default: routing's, or SECONDREAD_ROUTING_RULES)"
        ),
    ] = None,
    question: Annotated[str, typer.Option("--question", help="Clinical question")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Classify a study into a subspecialty with routing's rules; print the rule and inputs."""
    import os

    from secondread_cli.classify import ClassifyError, read_headers, result
    from secondread_routing.rules import RulesError, load_rules

    env = os.environ.get("SECONDREAD_ROUTING_RULES")
    try:
        loaded = load_rules(rules or (Path(env) if env else None))
        headers = read_headers(path)
    except (RulesError, ClassifyError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    answer = result(headers, loaded.classify(headers.facts(question)), loaded)
    if as_json:
        sys.stdout.write(json.dumps(answer) + "\n")
        return
    out.print(f"subspecialty: {answer['subspecialty']}")
    out.print(f"rule:         {answer['rule']}  ({answer['rules_file']})")
    if answer["flags"]:
        out.print(f"flags:        {', '.join(answer['flags'])}")
    for key, value in answer["inputs"].items():
        shown = ", ".join(value) if isinstance(value, list) else str(value)
        out.print(f"  {key}: {shown or '-'}")


@app.command(
    help=deid_command.DESCRIPTION,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,  # `deid --help` is argparse's, like every other option of deid
)
def deid(ctx: typer.Context) -> None:
    raise typer.Exit(deid_command.main(ctx.args))


app.command("verify")(verify_command)
app.add_typer(read_app, name="read")
app.add_typer(link_app, name="link")

if __name__ == "__main__":
    app()
