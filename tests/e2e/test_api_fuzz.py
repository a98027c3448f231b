"""Every service's HTTP API fuzzed from its own OpenAPI document with Schemathesis (issue 13).

For each operation the running service documents, Schemathesis generates requests that fit the
schema (positive) and requests that break it (negative), sends them with real credentials (the
demo hospital's API key; Keycloak tokens of a demo reader and the demo operator), and checks
each answer: no 5xx (``not_a_server_error``) and a body that matches the documented schema for
its status (``response_schema_conformance``: the refusals are the one error body). Reporting's
and ingest's case paths get a real case id half of the time, so the requests reach past
"not found". deidentify and notify document no operation (they serve probes only): the loop
finds none there, and fuzzes whatever they come to document.

``SECONDREAD_API_FUZZ_EXAMPLES`` sets the examples per operation and mode (default 6). The
examples are the same on every run (Hypothesis derandomised) unless ``SECONDREAD_FUZZ_RANDOM=1``
asks for fresh ones (a longer hunt: ``SECONDREAD_FUZZ_RANDOM=1 SECONDREAD_API_FUZZ_EXAMPLES=100``).
"""

from __future__ import annotations

import os
import uuid
import warnings
import zlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.e2e.identity import OPERATOR, TOKENS
from tests.e2e.reporting_support import put_on_worklist

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("running_stack")]

EXAMPLES = int(os.environ.get("SECONDREAD_API_FUZZ_EXAMPLES", "6"))
RANDOM = os.environ.get("SECONDREAD_FUZZ_RANDOM", "") == "1"
CHECKS = [not_a_server_error, response_schema_conformance]
LINES = int(os.environ.get("SECONDREAD_API_FUZZ_LINES", "16"))
"""Lines of each failure's report kept in the assertion message."""
READER = "rad-novak"
INGEST_KEY = {"X-API-Key": "demo-hospital-key"}
PORTS = {"ingest": 8001, "deidentify": 8002, "routing": 8003, "reporting": 8004, "notify": 8005}


def _ingest_case() -> str:
    """An intake-only case of the demo hospital, for ``/v1/cases/{case_id}``."""
    intake = {
        "clinical_question": "API fuzzing: a case that waits for a study never sent",
        "consent": True,
        "referring_physician": {"name": "Dr Fuzz", "email": "fuzz@example.org"},
        "study_instance_uids": [f"2.25.{uuid.uuid4().int}"],
    }
    r = httpx.post(f"http://127.0.0.1:{PORTS['ingest']}/v1/cases", json=intake,
                   headers=INGEST_KEY, timeout=30)  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["case_id"])


def _credentials(service: str) -> tuple[Callable[[], dict[str, str]], Callable[[str], str]]:
    """Headers to send (fresh per call: tokens expire), and a real case id for an operation
    (reporting: one case per operation, so that a decline does not close the others' case)."""
    ids: dict[str, str] = {}

    def real(label: str) -> str:
        key = label if service == "reporting" else ""
        if key not in ids:
            ids[key] = put_on_worklist(READER).case_id if service == "reporting" else _ingest_case()
        return ids[key]

    if service == "ingest":
        return (lambda: INGEST_KEY), real
    if service == "reporting":
        return (lambda: TOKENS.auth(READER)), real
    if service == "routing":
        return (lambda: TOKENS.auth(OPERATOR)), real
    return (lambda: {}), real


def _set_headers(case: Any, values: dict[str, str]) -> None:
    """Set ``values`` on ``case``, replacing what it generated under any spelling of their names
    (a generated ``authorization`` beside our ``Authorization`` would be sent as well)."""
    names = {k.lower() for k in values}
    kept = {k: v for k, v in (case.headers or {}).items() if k.lower() not in names}
    case.headers = {**kept, **values}


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    base: str,
    headers: Callable[[], dict[str, str]],
    real: Callable[[str], str],
    sent: dict[str, int],
) -> Callable[[], None]:
    """A Hypothesis test of ``operation``: its cases in ``mode``, sent and checked."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        phases=[Phase.explicit, Phase.generate],  # no shrinking against a live service
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: Any) -> None:
        # Half of the cases (chosen by what was generated, so runs repeat) get a real case id.
        params = case.path_parameters or {}
        if "case_id" in params and zlib.crc32(repr(sorted(params.items())).encode()) % 2:
            params["case_id"] = real(operation.label)
            if operation.label == "PUT /v1/cases/{case_id}/draft":
                # The draft's current version, so that the body reaches the database (without
                # it, every save after the first is refused 428 before the body is looked at).
                got = httpx.get(f"{base}/v1/cases/{params['case_id']}/draft", headers=headers())
                _set_headers(case, {"If-Match": got.headers["ETag"]})
        sent[operation.label] = sent.get(operation.label, 0) + 1
        _set_headers(case, headers())
        case.call_and_validate(base_url=base, checks=CHECKS)

    return call


@pytest.mark.parametrize("service", sorted(PORTS))
def test_the_api_answers_what_it_documents_and_never_5xx(service: str) -> None:
    # STOW-RS bodies (multipart/related) go out as the bytes generated, boundary or not.
    schemathesis.serializer.alias("multipart/related", "application/octet-stream")
    base = f"http://127.0.0.1:{PORTS[service]}"
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json", timeout=30)
    headers, real = _credentials(service)
    failures: list[str] = []
    sent: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    _fuzz(operation, mode, base, headers, real, sent)()
            except Unsatisfiable:
                continue  # nothing in this operation can be made invalid (no parameters)
            except BaseException as exc:  # Schemathesis' FailureGroup, or a transport error
                text = "\n    ".join(str(exc).strip().splitlines()[:LINES])
                failures.append(f"{mode.value} {operation.label}:\n    {text}")
    assert httpx.get(f"{base}/health", timeout=10).status_code == 200
    print(f"\n{service}: {sum(sent.values())} requests over {len(sent)} operations")
    assert not failures, f"{service}: {len(failures)} failing operations\n" + "\n".join(failures)
