"""``python -m secondread_deidentify``: run the service."""

from secondread_shared.service import serve

from secondread_deidentify.app import create_app
from secondread_deidentify.settings import DeidentifySettings

settings = DeidentifySettings()
serve(create_app(settings), settings)
