"""``python -m secondread_routing``: run the service."""

from secondread_routing.app import create_app
from secondread_routing.settings import RoutingSettings
from secondread_shared.service import serve

settings = RoutingSettings()
serve(create_app(settings), settings)
