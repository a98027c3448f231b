"""``secondread tasks``: the task records of every service's schema, read with each service's
own settings (database role and password), newest first."""

from __future__ import annotations

from secondread_deidentify.settings import DeidentifySettings
from secondread_ingest.settings import IngestSettings
from secondread_notify.settings import NotifySettings
from secondread_reporting.settings import ReportingSettings
from secondread_routing.settings import RoutingSettings
from secondread_shared.db import Database, DatabaseError
from secondread_shared.settings import CommonSettings
from secondread_shared.tasks import Task, tasks

SETTINGS: tuple[type[CommonSettings], ...] = (
    IngestSettings, DeidentifySettings, RoutingSettings, ReportingSettings, NotifySettings,
)  # fmt: skip


async def all_tasks(case_id: str | None = None) -> list[Task]:
    found: list[Task] = []
    for cls in SETTINGS:
        db = Database(cls().db_dsn, max_size=1)
        try:
            await db.open()
            found += await tasks(db, case_id)
        except DatabaseError:
            continue  # that service has not started yet (no table) or PostgreSQL is down
        except Exception as exc:
            if "case_tasks" not in str(exc):
                raise
        finally:
            await db.close()
    return sorted(found, key=lambda t: t.updated_at, reverse=True)


async def all_parked() -> list[tuple[str, dict[str, object]]]:
    """Every service's parked outbox rows (attempts spent, reason kept), with the service."""
    from secondread_shared import outbox

    found: list[tuple[str, dict[str, object]]] = []
    for cls in SETTINGS:
        settings = cls()
        db = Database(settings.db_dsn, max_size=1)
        try:
            await db.open()
            found += [(settings.service_name, row) for row in await outbox.parked(db)]
        except DatabaseError:
            continue
        except Exception as exc:
            if "outbox" not in str(exc):  # deidentify has no outbox
                raise
        finally:
            await db.close()
    return found
