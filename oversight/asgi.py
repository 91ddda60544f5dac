"""ASGI entry point for Daphne: HTTP through Django, websockets through Channels."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oversight.settings")

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.urls import re_path

django_asgi = get_asgi_application()
if settings.DEBUG:
    # Daphne serves no static files itself; in development the app does (plotly's JS too).
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    django_asgi = ASGIStaticFilesHandler(django_asgi)

from execution.routing import websocket_urlpatterns  # noqa: E402  (needs apps loaded)
from oversight.risk.routing import websocket_urlpatterns as risk_websocket_urlpatterns  # noqa: E402
from oversight.ws_messages import NoSuchSocket  # noqa: E402

# Last: any other path is closed with 4404 instead of failing the handshake with a 500.
anything_else = [re_path(r"", NoSuchSocket.as_asgi())]

application = ProtocolTypeRouter(
    {
        "http": django_asgi,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(
                URLRouter(websocket_urlpatterns + risk_websocket_urlpatterns + anything_else)
            )
        ),
    }
)
