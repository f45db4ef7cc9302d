"""Chat consumers: project chat (the premium chat page), channel chat (the
React client) and direct messages."""
from kibray.consumers.base import KibrayConsumer
from kibray.realtime import chat, direct


class ProjectChatConsumer(KibrayConsumer):
    """/ws/chat/project/<project_id>/: Kibray's frame names (message,
    typing, user_joined, user_left, read_receipt)."""

    discriminator = "type"
    critical = chat.CRITICAL
    events = {
        "chat_message": "chat_message",
        "typing_indicator": "typing_indicator",
        "user_joined": "user_joined",
        "user_left": "user_left",
        "read_receipt": "read_receipt",
    }
    # The frame type each chat event becomes on this route.
    message_frame = "message"
    typing_frame = "typing"

    def authorize(self):
        self.room = chat.project_room(self.user, self.params["project_id"])
        return chat.authorize(self.room)

    def on_connect(self):
        return chat.connect_project(self.room, self.user)

    def on_disconnect(self):
        return chat.disconnect(self.room, self.user)

    def handle(self, handler, frame):
        return chat.receive(self.room, self.user, handler, frame)

    def chat_message(self, event):
        # The sender gets its own message back: the premium page shows a
        # message only when the server echoes it.
        return {
            "type": self.message_frame,
            "message_id": event.get("message_id"),
            "message": event.get("message"),
            "user_id": event.get("user_id"),
            "username": event.get("username"),
            "timestamp": event.get("timestamp"),
            "attachments": event.get("attachments", []),
        }

    def typing_indicator(self, event):
        if self.is_self(event):
            return None
        return {
            "type": self.typing_frame,
            "user_id": event.get("user_id"),
            "username": event.get("username"),
            "is_typing": event.get("is_typing"),
        }

    def user_joined(self, event):
        if self.is_self(event):
            return None
        return {
            "type": "user_joined",
            "user_id": event.get("user_id"),
            "username": event.get("username"),
            "timestamp": event.get("timestamp"),
        }

    def user_left(self, event):
        if self.is_self(event):
            return None
        return {
            "type": "user_left",
            "user_id": event.get("user_id"),
            "username": event.get("username"),
            "timestamp": event.get("timestamp"),
        }

    def read_receipt(self, event):
        # No filter: the reader gets its own receipt, as in Kibray.
        return {
            "type": "read_receipt",
            "message_id": event.get("message_id"),
            "user_id": event.get("user_id"),
            "timestamp": event.get("timestamp"),
        }


class ChannelChatConsumer(ProjectChatConsumer):
    """/ws/chat/<channel_id>/: the frame names the React client's useChat
    expects (chat_message, typing_indicator, connection_established)."""

    message_frame = "chat_message"
    typing_frame = "typing_indicator"

    def authorize(self):
        self.room = chat.channel_room(self.user, self.params["channel_id"])
        return chat.authorize(self.room)

    def on_connect(self):
        return chat.connect_channel(self.room, self.user)


class DirectChatConsumer(KibrayConsumer):
    """/ws/chat/direct/<user_id>/: a conversation between two users."""

    discriminator = "type"
    critical = direct.CRITICAL
    events = {"direct_message": "direct_message"}

    def authorize(self):
        self.pair = direct.pair(self.user, self.params["user_id"])
        return direct.authorize(self.pair)

    def handle(self, handler, frame):
        return direct.receive(self.pair, self.user, handler, frame)

    def direct_message(self, event):
        return {
            "type": "message",
            "message_id": event.get("message_id"),
            "message": event.get("message"),
            "from_user_id": event.get("from_user_id"),
            "from_username": event.get("from_username"),
            "timestamp": event.get("timestamp"),
        }
