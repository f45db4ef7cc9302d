"""WSGI entry point, used by runserver and by WSGI servers."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refsite.settings")

application = get_wsgi_application()
