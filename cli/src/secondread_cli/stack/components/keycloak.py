"""Keycloak, the OIDC provider: its ports, command line and realm import are
``secondread_cli.keycloak``'s."""

from __future__ import annotations

from pathlib import Path

from secondread_cli import keycloak
from secondread_cli.stack.component import Component, Context
from secondread_cli.stack.errors import StackError
from secondread_cli.stack.paths import HOST, cache_dir, data_dir, repo_root
from secondread_cli.stack.probes import http_ok

NAMES: tuple[str, ...] = ("keycloak",)
REPLICATED = False


def _prepare(stack: Path) -> None:
    try:
        keycloak.prepare(cache_dir(), repo_root(), data_dir("keycloak", stack))
    except FileNotFoundError as exc:
        raise StackError(str(exc), component="keycloak") from exc


def components(ctx: Context) -> list[Component]:
    return [
        Component(
            name="keycloak",
            ports=(keycloak.HTTP_PORT, keycloak.MANAGEMENT_PORT),
            url=keycloak.issuer(HOST),
            marker=str(data_dir("keycloak", ctx.stack) / "h2"),
            command=lambda stack: keycloak.command(cache_dir(), data_dir("keycloak", stack), HOST),
            health=lambda: http_ok(f"http://{HOST}:{keycloak.MANAGEMENT_PORT}/health/ready"),
            prepare=_prepare,
            env=lambda _stack: keycloak.env(cache_dir()),
            grace=30.0,
            startup_timeout=240.0,
        )
    ]
