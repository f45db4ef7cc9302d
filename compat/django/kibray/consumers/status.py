"""The presence consumer."""
from kibray.consumers.base import KibrayConsumer
from kibray.realtime import status


class StatusConsumer(KibrayConsumer):
    """/ws/status/: who is online, with {"action": "heartbeat"}."""

    discriminator = "action"
    events = {"user_status_changed": "user_status_changed"}

    def authorize(self):
        return status.authorize(self.user)

    def on_connect(self):
        return status.connect(self.user)

    def on_disconnect(self):
        return status.disconnect(self.user)

    def handle(self, handler, frame):
        return status.receive(self.user, handler, frame)

    def user_status_changed(self, event):
        if self.is_self(event):
            return None
        return {
            "type": "user_status_changed",
            "user_id": event.get("user_id"),
            "username": event.get("username"),
            "status": event.get("status"),
            "timestamp": event.get("timestamp"),
        }
