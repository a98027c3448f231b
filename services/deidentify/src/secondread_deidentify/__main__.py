"""``python -m secondread_deidentify``: run the service."""

from secondread_deidentify.app import create_app
from secondread_deidentify.settings import DeidentifySettings
from secondread_shared.service import serve

settings = DeidentifySettings()
serve(create_app(settings), settings)
