"""Jaeger's config: loopback only, and the ports the stack and the services use."""

from __future__ import annotations

import re

from secondread_cli import stack
from secondread_shared.settings import CommonSettings


def test_jaeger_config_binds_loopback_only() -> None:
    text = stack.jaeger_config().read_text()
    endpoints = re.findall(r"(?:endpoint|host):\s*(\S+)", text)
    assert endpoints
    assert all(e.startswith("127.0.0.1") for e in endpoints), endpoints


def test_ports_come_from_the_config_and_match_the_services_exporter() -> None:
    ports = stack.jaeger_ports()
    assert (ports.query, ports.otlp_grpc, ports.otlp_http) == (16686, 4317, 4318)
    assert stack.JAEGER_QUERY_PORT == 16686
    assert CommonSettings.model_fields["otlp_endpoint"].default == "http://127.0.0.1:4317"
    assert stack.component_table()["jaeger"].ports == (16686, 4317, 4318)
