"""The identity vault (schema ``deidentify``, PHI zone): who a pseudonym is, encrypted at rest.

The re-identification record of DICOM PS3.15 E.1.1 item 3 ("the mapping ... may be retained"):
for each case and patient pseudonym, the identity read from the headers and the map from the
original to the pseudonymous Study Instance UIDs. Rows are encrypted with Fernet (AES-128-CBC +
HMAC-SHA256) under the vault key, which comes from settings or a secret file, never the repo.

Every read goes through :meth:`Vault.reidentify`, which writes an audit row (who, why, which
case and pseudonym, whether a record was found) in the same transaction as the read: no read
without its audit row.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from secondread_deidentify.engine import Identity
from secondread_deidentify.errors import VaultRecordNotFoundError
from secondread_shared.db import Database
from secondread_shared.errors import PermanentError

MIGRATIONS = (
    """
    CREATE TABLE IF NOT EXISTS vault (
        case_id           text NOT NULL,
        patient_pseudonym text NOT NULL,
        identity          bytea NOT NULL,
        created_at        timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (case_id, patient_pseudonym)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS processed (
        case_id      text PRIMARY KEY,
        event_id     text NOT NULL,
        processed_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS vault_audit (
        id                bigserial PRIMARY KEY,
        at                timestamptz NOT NULL DEFAULT now(),
        actor             text NOT NULL,
        purpose           text NOT NULL,
        case_id           text NOT NULL,
        patient_pseudonym text NOT NULL,
        found             boolean NOT NULL
    )
    """,
)


class VaultDecryptError(PermanentError):
    """A vault row cannot be decrypted with the configured key (wrong or rotated key)."""


class Vault:
    """Encrypted re-identification records with audited reads.

    Parameters
    ----------
    db
        The deidentify schema's connection pool.
    fernet
        The cipher built from the vault key (:func:`secondread_shared.secrets.fernet_from_key`).
    """

    def __init__(self, db: Database, fernet: Fernet) -> None:
        self.db = db
        self.fernet = fernet

    async def record(
        self,
        case_id: str,
        pseudonym: str,
        identity: Identity,
        studies: dict[str, str] | None = None,
    ) -> None:
        """Store (or replace, on redelivery) the record of ``pseudonym`` in ``case_id``.

        ``studies`` maps original to pseudonymous Study Instance UIDs.
        """
        payload = {"identity": asdict(identity), "studies": studies or {}}
        blob = self.fernet.encrypt(json.dumps(payload).encode())
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO vault (case_id, patient_pseudonym, identity) VALUES (%s, %s, %s)"
                " ON CONFLICT (case_id, patient_pseudonym)"
                " DO UPDATE SET identity = EXCLUDED.identity",
                (case_id, pseudonym, blob),
            )

    async def reidentify(
        self, case_id: str, pseudonym: str, *, actor: str, purpose: str
    ) -> tuple[Identity, dict[str, str]]:
        """Read who ``pseudonym`` is in ``case_id``; audited whatever the outcome.

        Parameters
        ----------
        actor
            Who reads (a service or a person); required, never empty.
        purpose
            Why (e.g. ``"delivery"``); required, never empty.

        Returns
        -------
        The identity and the original -> pseudonymous Study Instance UID map.

        Raises
        ------
        VaultRecordNotFoundError
            No record; the attempt is audited all the same.
        """
        if not actor.strip() or not purpose.strip():
            raise ValueError("a vault read needs an actor and a purpose")
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT identity FROM vault WHERE case_id = %s AND patient_pseudonym = %s",
                (case_id, pseudonym),
            )
            row = await cur.fetchone()
            await conn.execute(
                "INSERT INTO vault_audit (actor, purpose, case_id, patient_pseudonym, found)"
                " VALUES (%s, %s, %s, %s, %s)",
                (actor, purpose, case_id, pseudonym, row is not None),
            )
        if row is None:
            raise VaultRecordNotFoundError(f"no vault record for case {case_id}")
        try:
            payload = json.loads(self.fernet.decrypt(bytes(row["identity"])))
        except InvalidToken as exc:
            raise VaultDecryptError("vault record does not decrypt with the vault key") from exc
        raw = payload.get("identity", payload)
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        return Identity(**fields), dict(payload.get("studies", {}))

    async def audit_log(self, case_id: str) -> list[tuple[datetime, str, str, str, bool]]:
        """The audit rows of ``case_id``, oldest first: (at, actor, purpose, pseudonym, found)."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT at, actor, purpose, patient_pseudonym, found FROM vault_audit"
                " WHERE case_id = %s ORDER BY id",
                (case_id,),
            )
            rows = await cur.fetchall()
        return [
            (r["at"], r["actor"], r["purpose"], r["patient_pseudonym"], r["found"]) for r in rows
        ]

    async def mark_processed(self, case_id: str, event_id: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO processed (case_id, event_id) VALUES (%s, %s)"
                " ON CONFLICT (case_id) DO NOTHING",
                (case_id, event_id),
            )
