"""``python -m secondread_reporting``: run the service."""

from secondread_reporting.app import create_app
from secondread_reporting.settings import ReportingSettings
from secondread_shared.service import serve

settings = ReportingSettings()
serve(create_app(settings), settings)
