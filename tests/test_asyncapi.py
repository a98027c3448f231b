"""docs/asyncapi.json is generated from the code and must be current (``make asyncapi``)."""

import json

from docs.generate_asyncapi import OUT, build
from secondread_shared import topics


def test_every_topic_has_its_schema_and_the_document_is_current() -> None:
    doc = build()
    addresses = {ch["address"] for ch in doc["channels"].values()}
    assert set(topics.EVENT_TOPICS) <= addresses
    schemas = doc["components"]["schemas"]
    for name in (
        "CaseReceived",
        "CaseDeidentified",
        "CaseAssigned",
        "ReportSigned",
        "NotificationDelivered",
        "NotificationFailed",
        "CaseStatusChanged",
    ):
        assert "case_id" in schemas[name]["properties"], name
    committed = json.loads(OUT.read_text())
    assert committed == json.loads(json.dumps(doc, sort_keys=True)), (
        "docs/asyncapi.json is stale: run `make asyncapi`"
    )
