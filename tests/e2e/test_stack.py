"""The local stack is what ARCHITECTURE.md says: real Kafka 4.x, topics, buckets, zoned roles."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import psycopg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from secondread_cli import stack
from secondread_shared import topics
from secondread_shared.settings import BUCKETS_CLEAR, BUCKETS_PHI, SERVICE_PORTS, CommonSettings
from secondread_shared.storage import ObjectStore

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("running_stack")]


def test_broker_is_apache_kafka_4_from_the_kafka_jars() -> None:
    [kafka] = [s for s in stack.status() if s.name == "kafka"]
    assert kafka.pid is not None
    cmdline = stack.pid_cmdline(kafka.pid)
    assert "kafka.Kafka" in cmdline
    classpath = cmdline[cmdline.index("-cp") + 1]
    libs = classpath.rstrip("*").rstrip("/")
    jars = {p.name for p in Path(libs).glob("kafka_2.13-*.jar")}
    assert any(re.fullmatch(r"kafka_2\.13-4\.\d+\.\d+\.jar", j) for j in jars), jars


def test_topics_partitions_dlq_twins_and_compaction() -> None:
    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers="127.0.0.1:9092")
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            specs = topics.topic_specs()
            assert {s.name for s in specs} <= existing
            described = await admin.describe_topics([s.name for s in specs])
            for topic in described:
                assert len(topic["partitions"]) >= 3, topic["topic"]
            [cfg] = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topics.CASE_STATUS)]
            )
            entries = {e[0]: e[1] for e in cfg.resources[0][4]}
            assert entries["cleanup.policy"] == "compact"
        finally:
            await admin.close()

    asyncio.run(run())


def test_buckets_exist() -> None:
    store = ObjectStore.from_settings(CommonSettings())
    for bucket in (*BUCKETS_PHI, *BUCKETS_CLEAR):
        assert asyncio.run(store.ping(bucket)), bucket


def test_each_service_role_sees_only_its_own_schema() -> None:
    dsn = "host=127.0.0.1 port=55432 dbname=secondread user=routing password=routing-local"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS routing.zone_probe (x int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM deidentify.vault")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE ingest.intruder (x int)")


@pytest.mark.parametrize("service", sorted(SERVICE_PORTS))
def test_service_probes(service: str) -> None:
    base = f"http://127.0.0.1:{SERVICE_PORTS[service]}"
    assert httpx.get(f"{base}/health").json()["status"] == "ok"
    ready = httpx.get(f"{base}/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["kafka"] is True
    metrics = httpx.get(f"{base}/metrics")
    assert metrics.status_code == 200
    assert "# TYPE" in metrics.text
