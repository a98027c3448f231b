"""PostgreSQL's generated configuration and bootstrap SQL; roles from the services' settings."""

from __future__ import annotations

from secondread_cli import stack
from secondread_cli.stack.defaults import service_roles, service_settings
from secondread_shared.settings import SERVICES, CommonSettings


def test_pg_hba() -> None:
    hba = stack.render_pg_hba(["ingest", "routing"])
    rules = [line.split() for line in hba.splitlines() if line and not line.startswith("#")]
    assert rules == [
        ["local", "all", "postgres", "trust"],
        ["host", "secondread", "ingest,routing", "127.0.0.1/32", "scram-sha-256"],
    ]


def test_pg_bootstrap_sql() -> None:
    sql = stack.render_pg_bootstrap({"ingest": "ingest-local", "notify": "n'pw"})
    assert "REVOKE CREATE ON SCHEMA public FROM PUBLIC;" in sql
    assert 'CREATE SCHEMA IF NOT EXISTS "ingest" AUTHORIZATION "ingest";' in sql
    assert "CREATE ROLE \"notify\" LOGIN PASSWORD 'n''pw';" in sql
    assert 'ALTER ROLE "notify" IN DATABASE "secondread" SET search_path = "notify";' in sql
    assert "SUPERUSER" not in sql.replace("NOSUPERUSER", "")


def test_sql_quoting() -> None:
    assert stack._sql_literal("a'b") == "'a''b'"
    assert stack._sql_ident('a"b') == '"a""b"'


def test_roles_and_passwords_are_the_services_settings() -> None:
    assert service_roles() == {name: f"{name}-local" for name in SERVICES}
    for name in SERVICES:
        settings = service_settings(name)
        assert settings.db_dsn.startswith(f"host=127.0.0.1 port={stack.PG_PORT} dbname=secondread")


def test_port_and_database_are_the_common_settings() -> None:
    defaults = CommonSettings.model_fields
    assert stack.PG_PORT == defaults["db_port"].default == 55432
    assert stack.PG_DATABASE == defaults["db_name"].default == "secondread"
    assert stack.component_table()["postgres"].url == "postgresql://127.0.0.1:55432/secondread"
