import json
from pathlib import Path

import pytest

from secondread_cli import keycloak, stack


def test_component_ports_command_and_realm_import(tmp_path: Path) -> None:
    comp = stack.component_table()["keycloak"]
    assert comp.ports == (8180, 9180)
    cmd = keycloak.command(tmp_path / "cache", tmp_path / "stack" / "keycloak")
    assert "--http-port=8180" in cmd and "--http-management-port=9180" in cmd
    assert "--import-realm" in cmd and "--http-host=127.0.0.1" in cmd
    assert any(a.startswith(f"--db-url=jdbc:h2:file:{tmp_path}/stack/keycloak/h2/") for a in cmd)
    with pytest.raises(FileNotFoundError, match=r"install\.sh"):
        keycloak.prepare(tmp_path / "cache", stack.repo_root(), tmp_path / "data")


def test_realm_holds_roles_clients_and_one_user_per_roster_reader() -> None:
    realm = json.loads(keycloak.realm_file(stack.repo_root()).read_text())
    assert realm["realm"] == "secondread"
    roles = {r["name"] for r in realm["roles"]["realm"]}
    assert roles == {"radiologist", "operator", "hospital_admin"}
    clients = {c["clientId"]: c for c in realm["clients"]}
    assert clients["secondread-api"]["publicClient"] is False
    cli = clients["secondread-cli"]
    assert cli["publicClient"] is True
    assert cli["attributes"]["pkce.code.challenge.method"] == "S256"
    users = {u["username"]: u["realmRoles"] for u in realm["users"]}
    roster = (stack.repo_root() / "deploy" / "roster.toml").read_text()
    readers = [line.split('"')[1] for line in roster.splitlines() if line.startswith("id = ")]
    assert readers and all(users[r] == ["radiologist"] for r in readers)
    assert sorted(users.values()).count(["operator"]) == 1
    assert sorted(users.values()).count(["hospital_admin"]) == 1
    assert keycloak.demo_password(stack.repo_root(), "rad-okafor") == "demo-rad-okafor"


def test_a_changed_realm_file_starts_the_local_database_afresh(tmp_path: Path) -> None:
    """Keycloak imports a realm only when it does not exist: a realm changed in the repo would
    never reach a developer's running stack unless its local database starts afresh."""
    from secondread_cli import keycloak as kc

    cache, repo, data = tmp_path / "cache", tmp_path / "repo", tmp_path / "data"
    home = kc.home(cache)
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "kc.sh").write_text("")
    java = tmp_path / "jdk"
    (java / "bin").mkdir(parents=True)
    (java / "bin" / "java").write_text("")
    (home / ".java-home").write_text(str(java))
    realm = kc.realm_file(repo)
    realm.parent.mkdir(parents=True)
    realm.write_text('{"realm": "secondread"}')
    kc.prepare(cache, repo, data)
    (data / "h2").mkdir()
    (data / "h2" / "keycloakdb.mv.db").write_text("imported")
    kc.prepare(cache, repo, data)  # same file: the database is kept
    assert (data / "h2" / "keycloakdb.mv.db").exists()
    realm.write_text('{"realm": "secondread", "clients": []}')
    kc.prepare(cache, repo, data)  # changed: imported again on this start
    assert not (data / "h2").exists()
    assert (home / "data" / "import" / "secondread-realm.json").read_text() == realm.read_text()
