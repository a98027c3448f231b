"""``secondread link create --hospital H``: an upload link for the portal, made by an operator.

It runs ingest's own use case (:meth:`secondread_ingest.portal_service.PortalService.create_link`)
against ingest's database (schema ``ingest``, as ingest's role; ``SECONDREAD_DB_*`` settings)
with ingest's link key (``SECONDREAD_PORTAL_LINK_KEY`` or ``..._FILE``; on the local stack the
key ingest generated under ``.stack/ingest/``), so the link is recorded where every ingest
replica checks it.
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

link_app = typer.Typer(
    help="Upload links for the portal (/portal/ on ingest).", no_args_is_help=True
)


async def create(hospital: str, expires_in: str, max_cases: int) -> tuple[str, str]:
    """``(url, expiry as ISO 8601)`` of a new link (``LinkError`` naming what is wrong)."""
    from secondread_ingest import links, portal
    from secondread_ingest.portal_repository import PortalRepository
    from secondread_ingest.settings import IngestSettings
    from secondread_shared.db import Database

    settings = IngestSettings()
    span = links.parse_duration(expires_in)  # refuse a bad duration before connecting
    known = portal.known_hospitals(settings)
    if hospital not in known:
        raise links.LinkError(
            "unknown_hospital",
            f"unknown hospital {hospital!r}: ingest knows {', '.join(sorted(known))}"
            " (SECONDREAD_HOSPITALS, SECONDREAD_API_KEYS)",
        )
    db = Database(settings.db_dsn, min_size=1, max_size=1)
    await db.open()
    try:
        repo = PortalRepository(db)
        await repo.migrate()
        service = portal.link_service(settings, repo)
        created = await service.create_link(
            hospital_id=hospital,
            created_by=f"operator:{getpass.getuser()}",
            expires_in=span,
            max_cases=max_cases,
        )
    finally:
        await db.close()
    return created.url, created.expires_at.isoformat()


@link_app.command("create")
def link_create(
    hospital: Annotated[str, typer.Option("--hospital", help="The hospital id, e.g. demo")],
    expires_in: Annotated[
        str, typer.Option("--expires-in", help="Lifetime: 30m, 12h, 7d, 2w (at most 90 days)")
    ] = "7d",
    max_cases: Annotated[
        int, typer.Option("--max-cases", help="How many cases the link may open")
    ] = 1,
) -> None:
    """Create an upload link for HOSPITAL's patients or physicians; print its URL and expiry."""
    import asyncio

    from secondread_ingest.links import LinkError
    from secondread_shared.db import DatabaseError
    from secondread_shared.logging import configure_logging

    configure_logging("cli", "WARNING")  # the use case's log lines are for the service

    try:
        url, expires = asyncio.run(create(hospital, expires_in, max_cases))
    except LinkError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    except DatabaseError as exc:
        typer.echo(f"error: ingest's database: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"url: {url}")
    typer.echo(f"expires: {expires}")
    typer.echo(f"hospital: {hospital}")
