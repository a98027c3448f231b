"""Mailpit: the SMTP server notify sends to (``CommonSettings.smtp_port``), with a web UI and API
(``secondread_cli.mail.DEFAULT_URL``) that ``secondread mail`` and the tests read."""

from __future__ import annotations

from pathlib import Path

from secondread_cli.mail import DEFAULT_URL as MAILPIT_URL
from secondread_cli.stack.component import Component, Context
from secondread_cli.stack.defaults import COMMON, address_port
from secondread_cli.stack.paths import HOST, cache_dir, data_dir
from secondread_cli.stack.probes import http_ok, smtp_ok

NAMES: tuple[str, ...] = ("mailpit",)
REPLICATED = False

SMTP_PORT = COMMON.smtp_port
MAILPIT_HTTP_PORT = address_port(MAILPIT_URL)


def _command(stack: Path) -> list[str]:
    return [
        str(cache_dir() / "bin" / "mailpit"),
        "--smtp",
        f"{HOST}:{SMTP_PORT}",
        "--listen",
        f"{HOST}:{MAILPIT_HTTP_PORT}",
        "--database",
        str(data_dir("mailpit", stack) / "mailpit.db"),
        "--max",
        "5000",
        "--disable-version-check",
        "--smtp-disable-rdns",
    ]


def components(ctx: Context) -> list[Component]:
    return [
        Component(
            name="mailpit",
            ports=(SMTP_PORT, MAILPIT_HTTP_PORT),
            url=f"http://{HOST}:{MAILPIT_HTTP_PORT}",
            marker=str(cache_dir() / "bin" / "mailpit"),
            command=_command,
            health=lambda: (
                smtp_ok(SMTP_PORT) and http_ok(f"http://{HOST}:{MAILPIT_HTTP_PORT}/api/v1/info")
            ),
            prepare=lambda stack: data_dir("mailpit", stack).mkdir(parents=True, exist_ok=True),
        )
    ]
