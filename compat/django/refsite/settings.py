"""Settings of the reference project.

Everything a test may want to change comes from the environment, with
defaults that work for a throwaway test run and nowhere else.
"""
import os
import sys
import tempfile


def _env_list(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def _env_bool(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# compat/python holds sidecar_hooks, the helper that hook views use to check
# the sidecar's signed calls. It goes last on the path, so that it shadows
# nothing installed.
_SIDECAR_HELPERS = os.path.join(os.path.dirname(BASE_DIR), "python")
if _SIDECAR_HELPERS not in sys.path:
    sys.path.append(_SIDECAR_HELPERS)

SECRET_KEY = os.environ.get("SECRET_KEY", "refsite-test-secret-key-do-not-use-in-production")
DEBUG = _env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", ["*"])

# The channel layer's Redis, e.g. redis://127.0.0.1:6379/0. Without it there
# is no channel layer, and the HTTP views, which need none, still work.
REDIS_URL = os.environ.get("REDIS_URL", "")

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "channels",
    "refsite",
    "kibray",
]

MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "refsite.urls"
WSGI_APPLICATION = "refsite.wsgi.application"
ASGI_APPLICATION = "refsite.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get(
            "DJANGO_DB_PATH", os.path.join(tempfile.gettempdir(), "refsite-test.sqlite3")
        ),
        # Daphne's consumers, the HTTP hooks and the test API write from
        # several threads; wait for SQLite's lock rather than fail.
        "OPTIONS": {"timeout": 20},
    }
}
# DJANGO_DB_ENGINE=django.db.backends.postgresql selects a PostgreSQL
# database named by DJANGO_DB_NAME/HOST/PORT/USER/PASSWORD instead.
if os.environ.get("DJANGO_DB_ENGINE", "django.db.backends.sqlite3") != "django.db.backends.sqlite3":
    DATABASES["default"] = {
        "ENGINE": os.environ["DJANGO_DB_ENGINE"],
        "NAME": os.environ.get("DJANGO_DB_NAME", "refsite"),
        "HOST": os.environ.get("DJANGO_DB_HOST", ""),
        "PORT": os.environ.get("DJANGO_DB_PORT", ""),
        "USER": os.environ.get("DJANGO_DB_USER", ""),
        "PASSWORD": os.environ.get("DJANGO_DB_PASSWORD", ""),
    }

SESSION_ENGINE = os.environ.get("SESSION_ENGINE", "django.contrib.sessions.backends.db")
SESSION_COOKIE_NAME = os.environ.get("SESSION_COOKIE_NAME", "sessionid")

CHANNEL_LAYERS = {}
if REDIS_URL:
    _layer_config = {
        "hosts": [REDIS_URL],
        "prefix": os.environ.get("CHANNEL_LAYER_PREFIX", "asgi"),
    }
    # LAYER_KEYS: comma-separated symmetric_encryption_keys, newest first,
    # the same list the sidecar's channel_layer is given.
    _layer_keys = _env_list("LAYER_KEYS", [])
    if _layer_keys:
        _layer_config["symmetric_encryption_keys"] = _layer_keys
    CHANNEL_LAYERS["default"] = {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": _layer_config,
    }

# The kibray app (kibray/): secrets that sign the sidecar's hook calls,
# comma-separated, newest first (any one verifies, for rotation), and the
# switch for its test-only endpoints (fixtures, credentials, publishers),
# which must stay off outside tests.
SIDECAR_HOOK_SECRETS = _env_list("SIDECAR_HOOK_SECRETS", [])
KIBRAY_TEST_API = _env_bool("KIBRAY_TEST_API", False)

DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = _env_bool("DJANGO_USE_TZ", True)
TIME_ZONE = os.environ.get("DJANGO_TIME_ZONE", "UTC")
LANGUAGE_CODE = "en-us"

# Request bodies of the echo view are streamed, never held whole; this
# only bounds request.body and form parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2621440

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "WARNING")},
}
