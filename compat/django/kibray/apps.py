"""App configuration."""
from django.apps import AppConfig


class KibrayConfig(AppConfig):
    """Connects the model signals that publish realtime events."""

    name = "kibray"
    default_auto_field = "django.db.models.AutoField"

    def ready(self):
        from kibray import signals  # noqa: F401  (registers receivers)
