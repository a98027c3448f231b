"""Reading a case's traces from the trace store's query API (Jaeger ``/api/traces``)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from secondread_shared.settings import SERVICES
from secondread_shared.tracing import CASE_ID_ATTRIBUTE


def case_traces(query_url: str, case_id: str, *, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """Every trace holding a span tagged ``secondread.case_id=case_id``, across all services."""
    tags = json.dumps({CASE_ID_ATTRIBUTE: case_id})
    found: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=query_url.rstrip("/"), timeout=timeout_s) as http:
        for service in SERVICES:
            resp = http.get(
                "/api/traces",
                params={
                    "service": f"secondread-{service}",
                    "tags": tags,
                    "limit": 50,
                    "lookback": "2d",
                },
            )
            if resp.status_code == 404:
                continue
            resp.raise_for_status()
            for tr in resp.json().get("data") or []:
                found[tr["traceID"]] = tr
    return list(found.values())


def services_in(trace: dict[str, Any]) -> set[str]:
    """The ``service.name`` of every span in a Jaeger trace."""
    procs = trace.get("processes", {})
    return {procs[s["processID"]]["serviceName"] for s in trace.get("spans", [])}
