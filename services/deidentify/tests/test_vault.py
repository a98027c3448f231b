"""The identity vault on the real PostgreSQL of the local stack: encrypted, every read audited."""

import uuid

import pytest

from secondread_deidentify.engine import Identity
from secondread_deidentify.errors import VaultRecordNotFoundError
from secondread_deidentify.settings import DeidentifySettings
from secondread_deidentify.vault import MIGRATIONS, Vault, VaultDecryptError
from secondread_shared.db import Database
from secondread_shared.secrets import fernet_from_key
from tests.e2e.conftest import running_stack  # noqa: F401  (the fixture: starts the stack)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("running_stack")]

IDENTITY = Identity(
    patient_id="MRN-VAULT-1",
    issuer="demo-hospital",
    patient_name="Quixote^Alonso",
    birth_date="19610315",
    accession_number="ACC-1",
    phones=("+34-555-0100",),
)


async def test_records_are_encrypted_and_every_read_is_audited() -> None:
    db = Database(DeidentifySettings().db_dsn)
    await db.open(MIGRATIONS)
    try:
        vault = Vault(db, fernet_from_key(b"test-vault-key"))
        case = f"case-{uuid.uuid4()}"
        await vault.record(case, "SRabc", IDENTITY, {"1.2.3": "2.25.9"})
        async with db.transaction() as conn:
            cur = await conn.execute("SELECT identity FROM vault WHERE case_id = %s", (case,))
            row = await cur.fetchone()
        assert row is not None
        blob = bytes(row["identity"])
        for value in ("MRN-VAULT-1", "Quixote", "19610315", "555-0100"):
            assert value.encode() not in blob

        identity, studies = await vault.reidentify(
            case, "SRabc", actor="notify", purpose="delivery"
        )
        assert identity == IDENTITY and studies == {"1.2.3": "2.25.9"}
        with pytest.raises(VaultRecordNotFoundError):
            await vault.reidentify(case, "SRnope", actor="ops", purpose="audit check")
        with pytest.raises(VaultDecryptError):
            await Vault(db, fernet_from_key(b"wrong key")).reidentify(
                case, "SRabc", actor="ops", purpose="wrong key"
            )
        with pytest.raises(ValueError):
            await vault.reidentify(case, "SRabc", actor="", purpose="x")
        log = await vault.audit_log(case)
        assert [(a, p, s, f) for _, a, p, s, f in log] == [
            ("notify", "delivery", "SRabc", True),
            ("ops", "audit check", "SRnope", False),
            ("ops", "wrong key", "SRabc", True),
        ]
    finally:
        await db.close()
