"""``python -m secondread_ingest``: run the service."""

from secondread_ingest.app import create_app
from secondread_ingest.settings import IngestSettings
from secondread_shared.service import serve

settings = IngestSettings()
serve(create_app(settings), settings)
