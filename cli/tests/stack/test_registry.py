"""The component table, its names and replicas, and the remembered replica count."""

from __future__ import annotations

from pathlib import Path

import pytest

from secondread_cli import stack
from secondread_shared.settings import SERVICE_PORTS

SERVICES = tuple(SERVICE_PORTS)


def test_components_in_start_order_with_unique_ports() -> None:
    table = stack.component_table()
    assert list(table) == list(stack.ALL_COMPONENTS)
    assert stack.ALL_COMPONENTS == (
        "postgres",
        "kafka",
        "s3",
        "orthanc",
        "orthanc-pacs",
        "jaeger",
        "mailpit",
        "keycloak",
        *SERVICES,
    )
    assert stack.INFRA + stack.SERVICES == stack.ALL_COMPONENTS
    ports = [p for c in table.values() for p in c.ports]
    assert len(ports) == len(set(ports))
    for name, port in SERVICE_PORTS.items():
        assert table[name].ports[0] == port
    assert table["ingest"].ports == (8001, 11112)


def test_two_replicas_name_and_place_the_second_of_each_service() -> None:
    table = stack.component_table(2)
    assert list(table)[len(stack.INFRA) :] == [
        "ingest", "ingest-2", "deidentify", "deidentify-2", "routing", "routing-2",
        "reporting", "reporting-2", "notify", "notify-2",
    ]  # fmt: skip
    assert {n: c.ports for n, c in table.items() if n.endswith("-2")} == {
        "ingest-2": (8011, 11113),
        "deidentify-2": (8012,),
        "routing-2": (8013,),
        "reporting-2": (8014,),
        "notify-2": (8015,),
    }
    assert table["ingest-2"].url == "http://127.0.0.1:8011"
    assert table["notify-2"].replica == 2 and table["notify"].replica == 1
    # Replica 1 keeps its name and ports whatever the count.
    for name in (*stack.INFRA, *SERVICES):
        assert table[name].ports == stack.component_table(1)[name].ports


def test_replicas_skip_a_block_of_ten_that_holds_another_components_port() -> None:
    table = stack.component_table(stack.MAX_REPLICAS)
    infra = {p for n in stack.INFRA for p in table[n].ports}
    assert {8025, 8042, 8043} <= infra  # Mailpit's web UI, the two Orthancs
    http = {k: table[stack.replica_name("ingest", k)].ports[0] for k in range(1, 10)}
    assert http == {1: 8001, 2: 8011, 3: 8031, 4: 8051, 5: 8061, 6: 8071, 7: 8081, 8: 8091, 9: 8101}
    assert table["notify-3"].ports == (8035,)
    assert table["ingest-9"].ports == (8101, 11120)
    ports = [p for c in table.values() for p in c.ports]
    assert len(ports) == len(set(ports)), "two components on one port"


def test_port_offsets() -> None:
    assert stack.port_offsets(1, set()) == [0]
    assert stack.port_offsets(3, set()) == [0, 10, 20]
    assert stack.port_offsets(3, {8025}) == [0, 10, 30]
    assert stack.port_offsets(2, {8011, 8035}) == [0, 20]


def test_select_orders_and_validates() -> None:
    assert stack.select(None) == list(stack.ALL_COMPONENTS)
    assert stack.select(["mailpit", "postgres", "kafka"]) == ["postgres", "kafka", "mailpit"]
    with pytest.raises(ValueError, match="unknown component"):
        stack.select(["postgres", "zookeeper"])


def test_select_expands_a_service_to_its_replicas() -> None:
    assert stack.select(["routing", "kafka"], replicas=3) == [
        "kafka",
        "routing",
        "routing-2",
        "routing-3",
    ]
    assert stack.select(["ingest-2"]) == ["ingest-2"]  # a replica by name, above the count
    assert stack.select(["ingest-1"], replicas=2) == ["ingest"]  # replica 1 alone
    assert stack.select(None, replicas=2)[-2:] == ["notify", "notify-2"]
    for wrong in ("ingest-0", "ingest-10", "ingest-02", "kafka-2", "ingest-x"):
        with pytest.raises(stack.UnknownComponentError, match=r"ingest\|deidentify"):
            stack.select([wrong])


def test_unknown_component_is_a_stack_error() -> None:
    with pytest.raises(stack.StackError):
        stack.select(["kafak"])


def test_the_replica_count_is_remembered_in_the_stack_folder(own_stack_dir: Path) -> None:
    assert stack.replicas() == 1
    stack.registry.write_replicas(own_stack_dir, 3)
    assert (own_stack_dir / "replicas").read_text() == "3\n"
    assert stack.replicas() == 3
    assert list(stack.component_table())[-3:] == ["notify", "notify-2", "notify-3"]
    assert len(stack.select(None)) == len(stack.INFRA) + 3 * len(SERVICES)


@pytest.mark.parametrize("text", ["0", "10", "two", "-1", ""])
def test_a_garbled_replica_count_is_named(own_stack_dir: Path, text: str) -> None:
    own_stack_dir.mkdir(parents=True)
    (own_stack_dir / "replicas").write_text(text)
    with pytest.raises(stack.StackError, match="not a replica count between 1 and 9"):
        stack.replicas()


@pytest.mark.parametrize("count", [0, 10])
def test_replica_count_out_of_range_is_refused(count: int) -> None:
    with pytest.raises(stack.StackError, match="replicas must be between 1 and 9"):
        stack.up(replicas=count)


def test_two_components_on_one_port_are_refused(tmp_path: Path) -> None:
    class Clash:
        NAMES = ("a", "b")
        REPLICATED = False

        @staticmethod
        def components(ctx: stack.Context) -> list[stack.Component]:
            return [
                stack.Component(
                    name=n, ports=(7,), url="", marker=n, command=list, health=lambda: True
                )
                for n in Clash.NAMES
            ]

    with pytest.raises(stack.StackError, match="b and a would both listen on port 7"):
        stack.Registry([Clash()]).table(tmp_path, 1)
