"""Loading keys from settings or a secret file, never from the repository."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import SecretStr

from secondread_shared.errors import PermanentError


class MissingSecretError(PermanentError):
    """A required key is in neither the environment nor its file."""


def load_key(
    name: str,
    value: SecretStr | None,
    path: Path | None,
    *,
    local_path: Path,
    environment: str,
    generate: bool = True,
) -> bytes:
    """Return the key ``name`` from ``value``, else from ``path``.

    In the ``local`` environment only, a missing key is generated once into ``local_path``
    (mode 0600, under the git-ignored stack folder) and reused on every later start.

    Raises
    ------
    MissingSecretError
        Outside ``local`` when neither source holds the key.
    """
    if value is not None:
        return value.get_secret_value().strip().encode()
    path = path or (local_path if environment == "local" else None)
    if path is not None and path.exists():
        return path.read_bytes().strip()
    if environment == "local" and generate and path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32).encode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        return key
    raise MissingSecretError(
        f"{name} is not configured: set SECONDREAD_{name.upper()} or SECONDREAD_{name.upper()}_FILE"
    )


def fernet_from_key(key: bytes) -> Fernet:
    """A Fernet cipher (AES-128-CBC + HMAC-SHA256) from any key material (hashed to 32 bytes)."""
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key).digest()))
