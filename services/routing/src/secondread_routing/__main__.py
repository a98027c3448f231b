"""``python -m secondread_routing``: run the service."""

from secondread_shared.service import serve

from secondread_routing.app import create_app
from secondread_routing.settings import RoutingSettings

settings = RoutingSettings()
serve(create_app(settings), settings)
