"""Write docs/asyncapi.json from the services' real brokers: ``make asyncapi``.

Each service's app is built with tracing off and a throw-away stack folder (for local keys); no
connection is opened. The test ``tests/test_asyncapi.py`` fails when the committed document is
stale.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from secondread_shared.asyncapi import specification

OUT = Path(__file__).with_name("asyncapi.json")


def build() -> dict[str, Any]:
    from secondread_deidentify.app import create_app as deidentify
    from secondread_deidentify.settings import DeidentifySettings
    from secondread_ingest.app import create_app as ingest
    from secondread_ingest.settings import IngestSettings
    from secondread_notify.app import create_app as notify
    from secondread_notify.settings import NotifySettings
    from secondread_reporting.app import create_app as reporting
    from secondread_reporting.settings import ReportingSettings
    from secondread_routing.app import create_app as routing
    from secondread_routing.settings import RoutingSettings

    with tempfile.TemporaryDirectory() as tmp:
        common: dict[str, Any] = {
            "stack_dir": Path(tmp),
            "tracing_enabled": False,
            "log_level": "ERROR",
        }
        apps = [
            ingest(IngestSettings(**common)),
            deidentify(DeidentifySettings(**common)),
            routing(RoutingSettings(**common)),
            reporting(ReportingSettings(**common)),
            notify(NotifySettings(**common)),
        ]
        return specification([a.state.runtime.broker for a in apps], version="1")


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    sys.stderr.write(f"wrote {OUT}\n")
