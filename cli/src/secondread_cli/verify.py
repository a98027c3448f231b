"""``secondread verify``: check a signed report's signature, through the API or offline.

- ``secondread verify REPORT_ID`` asks reporting's public ``GET /v1/reports/{id}/verify``.
- ``secondread verify --file report.json --signature report.sig.json`` checks the file itself:
  its RFC 8785 canonical form against the Ed25519 signature, under the public key the signature
  names. The key comes from ``--keys`` (a saved copy of ``GET /v1/keys``: fully offline) or else
  from the published list at ``--api``.

Both exit 0 when the signature is valid and 1 when it is not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

REPORTING_URL = "http://127.0.0.1:8004"


def _published_keys(api: str, keys_file: Path | None) -> list[dict[str, Any]]:
    if keys_file is not None:
        data = json.loads(keys_file.read_text())
    else:
        import httpx

        data = httpx.get(f"{api.rstrip('/')}/v1/keys", timeout=15).raise_for_status().json()
    keys: list[dict[str, Any]] = data["keys"] if isinstance(data, dict) else data
    return keys


def check_file(
    report: dict[str, Any], signature: dict[str, Any], keys: list[dict[str, Any]]
) -> tuple[bool, str]:
    """Whether ``report`` verifies under ``signature`` and the key it names; and why not."""
    from secondread_reporting.signing import verify_document

    if signature.get("algorithm") != "Ed25519":
        return False, f"unsupported algorithm {signature.get('algorithm')!r}"
    if report.get("key_id") not in (None, signature.get("key_id")):
        return False, "the report names another key than its signature"
    found = [k for k in keys if k.get("kid") == signature.get("key_id")]
    if not found:
        return False, f"key {signature.get('key_id')} is not published"
    if not verify_document(report, str(signature.get("signature", "")), found[0]["public_key"]):
        return False, "the signature does not match this report (changed, or not signed by it)"
    return True, f"signed by {found[0]['radiologist_id']} with key {found[0]['kid']}"


def verify(
    report_id: Annotated[
        str | None, typer.Argument(help="Check this report through the API")
    ] = None,
    file: Annotated[Path | None, typer.Option("--file", help="A report.json to check")] = None,
    signature: Annotated[
        Path | None, typer.Option("--signature", help="Its report.sig.json")
    ] = None,
    keys: Annotated[
        Path | None, typer.Option("--keys", help="Saved GET /v1/keys (no network at all)")
    ] = None,
    api: Annotated[str, typer.Option(envvar="SECONDREAD_REPORTING_URL")] = REPORTING_URL,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check a signed report's signature; exit 1 when it does not verify."""
    if file is not None:
        if signature is None:
            raise typer.BadParameter("--file needs --signature")
        report = json.loads(file.read_text())
        sig = json.loads(signature.read_text())
        ok, why = check_file(report, sig, _published_keys(api, keys))
        answer: dict[str, Any] = {"report_id": report.get("report_id"), "valid": ok, "detail": why}
    elif report_id is not None:
        import httpx

        r = httpx.get(f"{api.rstrip('/')}/v1/reports/{report_id}/verify", timeout=15)
        if r.status_code == 404:
            typer.echo(f"no report {report_id}", err=True)
            raise typer.Exit(1)
        answer = r.raise_for_status().json()
        ok = bool(answer["valid"])
    else:
        raise typer.BadParameter("give a REPORT_ID, or --file and --signature")
    if as_json:
        typer.echo(json.dumps(answer))
    elif ok:
        signer = answer.get("signer") or {}
        who = signer.get("display_name") or answer.get("detail", "")
        typer.echo(f"VALID: report {answer.get('report_id')} {who}".rstrip())
        if answer.get("key_id"):
            typer.echo(f"  key {answer['key_id']}, signed at {answer['signed_at']}")
    else:
        typer.echo(f"INVALID: report {answer.get('report_id')}: {answer.get('detail', '')}")
    if not ok:
        raise typer.Exit(1)
