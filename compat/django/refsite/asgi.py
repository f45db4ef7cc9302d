"""ASGI entry point, for Daphne or another ASGI server.

HTTP goes to Django's views; WebSocket connections go to the consumers in
refsite.consumers, and Kibray's ten routes (/ws/chat/..., /ws/notifications/
and the others) to the kibray app's consumers (kibray.routing). The channel
layer is configured only when REDIS_URL is set (see settings.py).
"""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refsite.settings")

# Django must be set up before anything imports models or consumers.
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from kibray.routing import websocket_urlpatterns as kibray_urlpatterns  # noqa: E402
from refsite.consumers import RoomConsumer  # noqa: E402

websocket_urlpatterns = [
    path("ws/room/<str:name>/", RoomConsumer.as_asgi()),
] + kibray_urlpatterns

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
