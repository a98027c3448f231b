"""``python -m secondread_ingest``: run the service."""

from secondread_shared.service import serve

from secondread_ingest.app import create_app
from secondread_ingest.settings import IngestSettings

settings = IngestSettings()
serve(create_app(settings), settings)
