"""``python -m secondread_reporting``: run the service."""

from secondread_shared.service import serve

from secondread_reporting.app import create_app
from secondread_reporting.settings import ReportingSettings

settings = ReportingSettings()
serve(create_app(settings), settings)
