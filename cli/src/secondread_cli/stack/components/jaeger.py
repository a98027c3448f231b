"""Jaeger v2 all-in-one: OTLP in (the services' ``CommonSettings.otlp_endpoint``), traces in memory.

Its ports are those of ``deploy/local/jaeger/config.yaml`` (the query API and the two OTLP
receivers), read from that file when the table is built.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the lock yet

from secondread_cli.stack.component import Component, Context
from secondread_cli.stack.defaults import address_port
from secondread_cli.stack.errors import StackError
from secondread_cli.stack.paths import HOST, cache_dir, data_dir, repo_root
from secondread_cli.stack.probes import http_ok

NAMES: tuple[str, ...] = ("jaeger",)
REPLICATED = False


def jaeger_config() -> Path:
    """Our all-in-one config (the built-in one binds the query API to every interface)."""
    return repo_root() / "deploy" / "local" / "jaeger" / "config.yaml"


@dataclass(frozen=True)
class JaegerPorts:
    query: int
    otlp_grpc: int
    otlp_http: int


@functools.cache
def jaeger_ports() -> JaegerPorts:
    """The query API's and the OTLP receivers' ports, from :func:`jaeger_config`."""
    config: dict[str, Any] = yaml.safe_load(jaeger_config().read_text())
    try:
        otlp = config["receivers"]["otlp"]["protocols"]
        return JaegerPorts(
            query=address_port(config["extensions"]["jaeger_query"]["http"]["endpoint"]),
            otlp_grpc=address_port(otlp["grpc"]["endpoint"]),
            otlp_http=address_port(otlp["http"]["endpoint"]),
        )
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise StackError(
            f"{jaeger_config()}: no endpoint with a port for the query API or OTLP ({exc})",
            component="jaeger",
        ) from exc


def _prepare(stack: Path) -> None:
    binary = cache_dir() / "bin" / "jaeger"
    if not binary.exists():
        raise StackError(f"{binary} not found: run deploy/local/install.sh", component="jaeger")
    data_dir("jaeger", stack).mkdir(parents=True, exist_ok=True)


def _command(_stack: Path) -> list[str]:
    return [str(cache_dir() / "bin" / "jaeger"), "--config", f"file:{jaeger_config()}"]


def components(ctx: Context) -> list[Component]:
    ports = jaeger_ports()
    return [
        Component(
            name="jaeger",
            ports=(ports.query, ports.otlp_grpc, ports.otlp_http),
            url=f"http://{HOST}:{ports.query}",
            marker=str(cache_dir() / "bin" / "jaeger"),
            command=_command,
            health=lambda: http_ok(f"http://{HOST}:{ports.query}/api/services"),
            prepare=_prepare,
        )
    ]
