"""ASGI entry point, for Daphne or another ASGI server.

Plain HTTP only for now; WebSocket consumers are routed here once the
reference app has them.
"""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refsite.settings")

application = get_asgi_application()
