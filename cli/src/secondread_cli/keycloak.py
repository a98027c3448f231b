"""Keycloak, the local stack's OIDC provider: paths, command line and the demo users.

The distribution (``org.keycloak:keycloak-quarkus-dist`` from Maven Central) is unpacked by
``deploy/local/install.sh`` into ``<cache>/keycloak-<version>``, with the Java 21+ home it found
in ``.java-home``. Keycloak runs in development mode on 127.0.0.1:8180 (management, with the health
checks, on 9180: its default 9000 is the S3 port), with its H2 database under the stack folder.
The realm ``secondread`` is imported on start from ``deploy/local/keycloak/secondread-realm.json``
(an existing realm is left as it is).

The demo users' passwords live in that realm file only: :func:`demo_password` reads them there.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import httpx

KEYCLOAK_VERSION = "26.7.3"
HTTP_PORT = 8180
MANAGEMENT_PORT = 9180
REALM = "secondread"
CLI_CLIENT = "secondread-cli"
"""The public client (PKCE for browsers; password grant for the local demo users)."""
BOOTSTRAP_ADMIN = "admin"
BOOTSTRAP_ADMIN_PASSWORD = "admin-local"  # noqa: S105 - the local stack only
"""The master realm's temporary admin (local stack only)."""


def home(cache: Path) -> Path:
    return cache / f"keycloak-{KEYCLOAK_VERSION}"


def realm_file(repo: Path) -> Path:
    return repo / "deploy" / "local" / "keycloak" / f"{REALM}-realm.json"


def issuer(host: str = "127.0.0.1") -> str:
    return f"http://{host}:{HTTP_PORT}/realms/{REALM}"


def java_home(cache: Path) -> Path | None:
    """The Java 21+ home that install.sh found, if the distribution is installed."""
    marker = home(cache) / ".java-home"
    if not marker.exists():
        return None
    found = Path(marker.read_text().strip())
    return found if (found / "bin" / "java").exists() else None


def prepare(cache: Path, repo: Path, data: Path) -> None:
    """Check the install, make the data folder and put the realm where ``--import-realm`` looks.

    Keycloak reads imports only from ``<home>/data/import``; the copy there is refreshed on every
    start, and Keycloak imports a realm only when it does not exist yet. So when the realm file
    changed since the local database was made (a new client, origin or user in the repo), that
    database is started afresh and the realm imported again: the local stack's realm is always
    the repo's (its demo users and passwords live in that file).
    """
    kc = home(cache)
    if not (kc / "bin" / "kc.sh").exists() or java_home(cache) is None:
        raise FileNotFoundError(f"Keycloak not installed in {kc}: run deploy/local/install.sh")
    data.mkdir(parents=True, exist_ok=True)
    realm = realm_file(repo)
    digest = hashlib.sha256(realm.read_bytes()).hexdigest()
    stamp = data / "realm.sha256"
    made_from = stamp.read_text().strip() if stamp.exists() else ""
    if (data / "h2").exists() and made_from != digest:  # no stamp: made before stamps existed
        shutil.rmtree(data / "h2", ignore_errors=True)
    imports = kc / "data" / "import"
    imports.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(realm, imports / f"{REALM}-realm.json")
    stamp.write_text(digest + "\n")


def command(cache: Path, data: Path, host: str = "127.0.0.1") -> list[str]:
    db_url = f"jdbc:h2:file:{data / 'h2' / 'keycloakdb'};NON_KEYWORDS=VALUE"
    return [
        "bash",
        str(home(cache) / "bin" / "kc.sh"),
        "start-dev",
        f"--http-host={host}",
        f"--http-port={HTTP_PORT}",
        f"--http-management-port={MANAGEMENT_PORT}",
        "--health-enabled=true",
        "--import-realm",
        f"--db-url={db_url}",
    ]


def env(cache: Path) -> dict[str, str]:
    jh = java_home(cache)
    out = {
        "KC_BOOTSTRAP_ADMIN_USERNAME": BOOTSTRAP_ADMIN,
        "KC_BOOTSTRAP_ADMIN_PASSWORD": BOOTSTRAP_ADMIN_PASSWORD,
        "JAVA_OPTS_APPEND": "-Xms128m -Xmx512m",
    }
    if jh is not None:
        out["JAVA_HOME"] = str(jh)
    return out


def demo_password(repo: Path, username: str) -> str:
    """A demo user's password, read from the local realm file (the only place it is written)."""
    realm = json.loads(realm_file(repo).read_text())
    for user in realm.get("users", []):
        if user.get("username") == username:
            for cred in user.get("credentials", []):
                if cred.get("type") == "password":
                    return str(cred["value"])
    raise KeyError(f"no demo user {username!r} in {realm_file(repo)}")


def password_token(
    username: str,
    password: str,
    *,
    client_id: str = CLI_CLIENT,
    issuer_url: str | None = None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """An access token for a demo user, by the password grant (RFC 6749, section 4.3).

    The local realm allows this grant on its public clients for the demo users; a browser sign-in
    uses the authorisation code flow with PKCE instead. Returns the token endpoint's JSON
    (``access_token``, ``expires_in``, ...); raises :class:`httpx.HTTPStatusError` on refusal.
    """
    url = f"{issuer_url or issuer()}/protocol/openid-connect/token"
    form = {
        "grant_type": "password",
        "client_id": client_id,
        "username": username,
        "password": password,
        "scope": "openid",
    }
    r = httpx.post(url, data=form, timeout=timeout)
    r.raise_for_status()
    body: dict[str, Any] = r.json()
    return body


def demo_token(username: str, *, client_id: str = CLI_CLIENT, repo: Path | None = None) -> str:
    """A fresh access token for a demo user of the local realm (password from the realm file)."""
    root = repo or Path(__file__).resolve().parents[3]
    body = password_token(username, demo_password(root, username), client_id=client_id)
    return str(body["access_token"])
