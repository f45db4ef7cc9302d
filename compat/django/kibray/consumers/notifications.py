"""The notification consumer."""
from kibray.consumers.base import KibrayConsumer
from kibray.realtime import notifications


class NotificationConsumer(KibrayConsumer):
    """/ws/notifications/: the user's notifications and unread count.

    Besides Kibray's flat `notification` event it accepts the nested
    `send_notification` event that Kibray's Celery task published (which
    killed Kibray's sockets) and forwards it as it is; the React hook reads
    both.
    """

    discriminator = "type"
    critical = notifications.CRITICAL
    events = {
        "notification": "notification",
        "send_notification": "send_notification",
        "unread_count": "unread_count",
    }

    def authorize(self):
        return notifications.authorize(self.user)

    def on_connect(self):
        return notifications.connect(self.user)

    def handle(self, handler, frame):
        return notifications.receive(self.user, handler, frame)

    def notification(self, event):
        return {
            "type": "notification",
            "id": event.get("notification_id"),
            "title": event.get("title"),
            "message": event.get("message"),
            "notification_type": event.get("notification_type"),
            "priority": event.get("priority") or "normal",
            "url": event.get("url") or "",
            "timestamp": event.get("timestamp"),
        }

    def send_notification(self, event):
        return {"type": "send_notification", "notification": event.get("notification")}

    def unread_count(self, event):
        return {"type": "unread_count", "count": event.get("count")}
