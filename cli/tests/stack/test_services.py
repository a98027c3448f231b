"""The services' components: command, ports and the environment that makes each replica."""

from __future__ import annotations

from pathlib import Path

import pytest

from secondread_cli import stack
from secondread_cli.stack.defaults import service_settings
from secondread_ingest.settings import IngestSettings
from secondread_routing.settings import RoutingSettings
from secondread_shared.settings import SERVICE_PORTS


def _settings_under(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], cls: type) -> object:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return cls()


def test_service_components_run_from_repo(tmp_path: Path) -> None:
    comp = stack.component_table()["routing"]
    assert comp.in_repo
    assert comp.command(tmp_path)[-2:] == ["-m", "secondread_routing"]
    assert comp.marker == "secondread_routing"


def test_replica_1_gets_todays_ports_and_spool(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = stack.component_table()["ingest"].env(tmp_path)
    assert env == {
        "SECONDREAD_STACK_DIR": str(tmp_path),
        "SECONDREAD_HTTP_PORT": "8001",
        "SECONDREAD_REPLICA_ID": "ingest",
        "SECONDREAD_DICOM_PORT": "11112",
        "SECONDREAD_SPOOL_DIR": str(tmp_path / "ingest" / "spool"),
    }
    settings = _settings_under(monkeypatch, env, IngestSettings)
    assert isinstance(settings, IngestSettings)
    # The spool is where an ingest started without the variable would put it.
    assert settings.spool_path == IngestSettings(spool_dir=None).spool_path


def test_ingest_replica_2_reads_its_own_ports_id_and_spool(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = stack.component_table(2)["ingest-2"].env(tmp_path)
    settings = _settings_under(monkeypatch, env, IngestSettings)
    assert isinstance(settings, IngestSettings)
    assert settings.stack_dir == tmp_path
    assert (settings.http_port, settings.dicom_port) == (8011, 11113)
    assert settings.replica_id == "ingest-2"
    assert (
        settings.spool_path
        == tmp_path / "ingest-2" / "spool"
        == stack.spool_dir("ingest-2", tmp_path)
    )


def test_other_replicas_read_their_port_and_share_the_stack_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = stack.component_table(3)["routing-3"].env(tmp_path)
    assert "SECONDREAD_DICOM_PORT" not in env and "SECONDREAD_SPOOL_DIR" not in env
    assert env["SECONDREAD_REPLICA_ID"] == "routing-3"
    settings = _settings_under(monkeypatch, env, RoutingSettings)
    assert isinstance(settings, RoutingSettings)
    assert (settings.http_port, settings.stack_dir) == (8033, tmp_path)


def test_each_replica_has_its_own_data_folder(tmp_path: Path) -> None:
    table = stack.component_table(2)
    table["ingest-2"].prepare(tmp_path)
    assert (tmp_path / "ingest-2").is_dir()
    assert not (tmp_path / "ingest").exists()


def test_service_ports_are_the_ones_each_service_defaults_to() -> None:
    for name, port in SERVICE_PORTS.items():
        assert service_settings(name).http_port == port
