"""``python -m secondread_notify``: run the service."""

from secondread_notify.app import create_app
from secondread_notify.settings import NotifySettings
from secondread_shared.service import serve

settings = NotifySettings()
serve(create_app(settings), settings)
