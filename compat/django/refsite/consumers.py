"""WebSocket consumers of the reference project, served by Daphne.

RoomConsumer is the consumer that docs/examples/interop.yaml stands in
for, written the way a Django app would write it, so that tests can run it
next to the sidecar in one group and compare.
"""
from asgiref.sync import async_to_sync
from channels.generic.websocket import JsonWebsocketConsumer
from django.core.exceptions import ImproperlyConfigured


class RoomConsumer(JsonWebsocketConsumer):
    """Joins group room_<name>, sends every group event to the socket as
    JSON, and broadcasts every inbound JSON frame to the group as an event
    of type room.message."""

    def connect(self):
        if self.channel_layer is None:
            raise ImproperlyConfigured("RoomConsumer needs a channel layer: set REDIS_URL")
        self.group = "room_" + self.scope["url_route"]["kwargs"]["name"]
        # Joining before accept means a client whose handshake completed is
        # already in the group.
        async_to_sync(self.channel_layer.group_add)(self.group, self.channel_name)
        self.accept()

    def disconnect(self, code):
        group = getattr(self, "group", None)
        if group:
            async_to_sync(self.channel_layer.group_discard)(group, self.channel_name)

    def receive_json(self, content, **kwargs):
        async_to_sync(self.channel_layer.group_send)(self.group, {**content, "type": "room.message"})

    def room_message(self, event):
        self.send_json(event)
