"""Access tokens from the running Keycloak for the local realm's demo users (no fake provider)."""

from __future__ import annotations

import time
from pathlib import Path

from secondread_cli import keycloak, stack


class DemoTokens:
    """``TOKENS[reader]`` is a valid bearer token of that demo user, renewed before it expires."""

    def __init__(self, client_id: str = keycloak.CLI_CLIENT) -> None:
        self.client_id = client_id
        self._cache: dict[str, tuple[str, float]] = {}

    def __getitem__(self, username: str) -> str:
        token, until = self._cache.get(username, ("", 0.0))
        if time.monotonic() < until:
            return token
        body = keycloak.password_token(
            username,
            keycloak.demo_password(keycloak_repo(), username),
            client_id=self.client_id,
        )
        token = str(body["access_token"])
        self._cache[username] = (token, time.monotonic() + float(body["expires_in"]) - 60)
        return token

    def auth(self, username: str) -> dict[str, str]:
        """The Authorization header of ``username``."""
        return {"Authorization": f"Bearer {self[username]}"}


def keycloak_repo() -> Path:
    return stack.repo_root()


READERS = ("rad-chen", "rad-okafor", "rad-silva", "rad-novak")
OPERATOR = "ops-demo"
HOSPITAL_ADMIN = "hospital-admin-demo"
TOKENS = DemoTokens()
