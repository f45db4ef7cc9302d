"""Unit tests of sidecar_hooks, runnable without a project:

    cd compat/python && /usr/bin/python3 -m unittest discover -s sidecar_hooks/tests -t .

Django is configured here, once, with an in-memory database.
"""
import django
from django.conf import settings

SECRET = "0123456789abcdef-test-secret"
OLD_SECRET = "an-older-secret-still-accepted"

if not settings.configured:
    settings.configure(
        SECRET_KEY="sidecar-hooks-unit-tests",
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
        MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        ROOT_URLCONF="sidecar_hooks.tests.urls",
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        USE_TZ=True,
        SIDECAR_HOOK_SECRETS=[SECRET, OLD_SECRET],
    )
    django.setup()
