"""Model signals that publish: a new Notification reaches the user's open
sockets wherever it was created (Kibray's 54 creation sites published
nothing, spec §3). Code that publishes a notification in another form sets
skip_publish on the instance before saving it."""
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from kibray.models import Notification


@receiver(post_save, sender=Notification, dispatch_uid="kibray_publish_notification")
def notification_created(sender, instance, created, raw=False, **kwargs):
    """Publish a new notification once its row is committed."""
    if not created or raw or getattr(instance, "skip_publish", False):
        return
    from django.conf import settings

    if not settings.CHANNEL_LAYERS:
        return
    from kibray.publishers import publish_notification

    transaction.on_commit(lambda: publish_notification(instance))
