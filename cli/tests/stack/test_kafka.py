"""Kafka's generated server.properties and cluster id."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from secondread_cli import stack
from secondread_shared.settings import CommonSettings


def _props(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


def test_kafka_properties(tmp_path: Path) -> None:
    props = _props(stack.render_kafka_properties(tmp_path / "data"))
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert "controller.quorum.voters" not in props
    assert props["listeners"] == (
        "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,FAULTS://127.0.0.1:9094"
    )
    # make chaos's Toxiproxy forwards 19092 to 9094: clients that bootstrap there stay behind it.
    assert props["advertised.listeners"].endswith(",FAULTS://127.0.0.1:19092")
    assert props["listener.security.protocol.map"].split(",")[-1] == "FAULTS:PLAINTEXT"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["auto.create.topics.enable"] == "false"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "share.coordinator.state.topic.replication.factor",
    ):
        assert props[key] == "1"


def test_kafka_cluster_id_shape() -> None:
    cid = stack.new_kafka_cluster_id()
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cid)
    assert len(base64.urlsafe_b64decode(cid + "==")) == 16
    assert cid != stack.new_kafka_cluster_id()


def test_the_broker_listens_where_the_services_look() -> None:
    bootstrap = CommonSettings.model_fields["kafka_bootstrap"].default
    assert bootstrap == f"127.0.0.1:{stack.KAFKA_PORT}"
    assert stack.component_table()["kafka"].ports == (9092, 9093, 9094)
