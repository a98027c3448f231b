"""``secondread read worklist|show|draft|sign --as READER``: act as a demo reader from the
command line, through the reporting API, with a token from the local Keycloak.

The token comes from the realm's public client by the password grant; the demo users' passwords
are read from ``deploy/local/keycloak/secondread-realm.json`` (local demo credentials only).
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

REPORTING_URL = "http://127.0.0.1:8004"

read_app = typer.Typer(
    help="Act as a demo reader: worklist, show, draft, sign (tokens from Keycloak).",
    no_args_is_help=True,
)
AsOpt = Annotated[str, typer.Option("--as", help="The demo reader, e.g. rad-okafor")]
ApiOpt = Annotated[str, typer.Option("--api", envvar="SECONDREAD_REPORTING_URL")]


class ReadError(RuntimeError):
    pass


def _call(method: str, url: str, reader: str, **kw: Any) -> Any:
    import httpx

    from secondread_cli import keycloak

    try:
        token = keycloak.demo_token(reader)
    except (KeyError, httpx.HTTPError) as exc:
        raise ReadError(f"no token for {reader}: {exc}") from exc
    headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
    r = httpx.request(method, url, headers=headers, timeout=60, **kw)
    if r.status_code >= 400:
        try:
            err = r.json()["error"]
            detail = f"{err['code']}: {err['message']}"
        except (ValueError, KeyError, TypeError):
            detail = r.text
        raise ReadError(f"HTTP {r.status_code} {detail}")
    return r


def _fail(exc: ReadError) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


@read_app.command("worklist")
def worklist(reader: AsOpt, api: ApiOpt = REPORTING_URL) -> None:
    """The reader's open cases, most pressing first."""
    try:
        cases = _call("GET", f"{api}/v1/worklist", reader).json()["cases"]
    except ReadError as exc:
        raise _fail(exc) from exc
    if not cases:
        typer.echo(f"{reader}: nothing on the worklist")
    for c in cases:
        typer.echo(f"{c['case_id']}  {c['priority']:<8} {c['status']:<9} due {c['due_at']} "
                   f"({c['time_left']})  {c['subspecialty']}")  # fmt: skip


@read_app.command("show")
def show(case_id: str, reader: AsOpt, api: ApiOpt = REPORTING_URL) -> None:
    """The case view: question, numbered statements, flags, priors."""
    try:
        view = _call("GET", f"{api}/v1/cases/{case_id}", reader).json()
    except ReadError as exc:
        raise _fail(exc) from exc
    typer.echo(f"case {view['case_id']} ({view['priority']}, {view['time_left']} left)")
    typer.echo(f"question: {view['clinical_question']}")
    typer.echo("original report, statement by statement:")
    for s in view["statements"]:
        typer.echo(f"  {s['number']:>2}. [{s['section']}] {s['text']}")
    typer.echo(f"flags: {', '.join(view['flags']) or '-'}")
    for p in view["priors"]:
        typer.echo(f"prior: {p.get('study_date', '')} {p['viewer_link']}")
    for link in view["viewer_links"]:
        typer.echo(f"images: {link}")


@read_app.command("draft")
def draft(
    case_id: str,
    reader: AsOpt,
    file: Annotated[
        Path | None, typer.Option("--file", help="A draft JSON to save (else print the draft)")
    ] = None,
    api: ApiOpt = REPORTING_URL,
) -> None:
    """Print the draft, or save ``--file`` over it (with the version just read as If-Match)."""
    url = f"{api}/v1/cases/{case_id}/draft"
    try:
        current = _call("GET", url, reader)
        if file is None:
            typer.echo(json.dumps(current.json(), indent=2))
            return
        body = json.loads(file.read_text())
        saved = _call("PUT", url, reader, json=body, headers={"If-Match": current.headers["etag"]})
    except ReadError as exc:
        raise _fail(exc) from exc
    typer.echo(f"draft saved: version {saved.json()['version']}")


@read_app.command("sign")
def sign(
    case_id: str,
    reader: AsOpt,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key")] = None,
    api: ApiOpt = REPORTING_URL,
) -> None:
    """Sign the current draft; prints the report id last."""
    key = idempotency_key or f"cli-{uuid.uuid4()}"
    try:
        version = _call("GET", f"{api}/v1/cases/{case_id}/draft", reader).json()["version"]
        signed = _call("POST", f"{api}/v1/cases/{case_id}/report", reader,
                       json={"draft_version": version},
                       headers={"Idempotency-Key": key}).json()  # fmt: skip
    except ReadError as exc:
        raise _fail(exc) from exc
    typer.echo(f"signed draft version {version} (key {signed['key_id']}, Idempotency-Key {key})")
    typer.echo(f"verify: secondread verify {signed['report_id']}")
    sys.stdout.write(signed["report_id"] + "\n")
