"""The identity vault (schema ``deidentify``, PHI zone): who a pseudonym is, encrypted at rest.

Rows are encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under the vault key.
"""

from __future__ import annotations

import json

from cryptography.fernet import Fernet

from secondread_deidentify.engine import Identity
from secondread_shared.db import Database

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
)


class Vault:
    def __init__(self, db: Database, fernet: Fernet) -> None:
        self.db = db
        self.fernet = fernet

    async def record(self, case_id: str, pseudonym: str, identity: Identity) -> None:
        blob = self.fernet.encrypt(json.dumps(identity.__dict__).encode())
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO vault (case_id, patient_pseudonym, identity) VALUES (%s, %s, %s)"
                " ON CONFLICT (case_id, patient_pseudonym)"
                " DO UPDATE SET identity = EXCLUDED.identity",
                (case_id, pseudonym, blob),
            )

    async def mark_processed(self, case_id: str, event_id: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO processed (case_id, event_id) VALUES (%s, %s)"
                " ON CONFLICT (case_id) DO NOTHING",
                (case_id, event_id),
            )
