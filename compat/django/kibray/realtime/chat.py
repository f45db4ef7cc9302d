"""Project chat (/ws/chat/project/<project_id>/) and channel chat
(/ws/chat/<channel_id>/).

Both keep Kibray's events (user_joined, user_left, chat_message,
typing_indicator, read_receipt). A project room is Kibray's
chat_project_<id> group, and its messages are saved in the project's
default channel (Kibray's get_or_create failed as soon as a project had two
channels, spec §6-5). A channel room is new: the React client's
/ws/chat/<channel_id>/ used to fail with HTTP 500 (spec §6-3); here the id is
a ChatChannel's primary key or slug, and the room is chat_channel_<pk>.
"""
from kibray.access import accessible_project, active_user, can_access_project
from kibray.models import ChatChannel, ChatMessage, Project
from kibray.realtime.frames import CLOSE_FORBIDDEN, as_int, now_iso
from kibray.realtime.outcome import Outcome
from kibray.sanitize import sanitize_message

MAX_MESSAGE_LENGTH = 4000

# The React client's offline queue wraps the whole frame as "message" a
# second time; a few levels are unwrapped, never an unbounded chain.
MAX_UNWRAP = 4


class Room:
    """One chat room: its group, its project, and the channel its messages
    are saved in (None: the project's default channel)."""

    def __init__(self, group, project, channel=None):
        self.group = group
        self.project = project
        self.channel = channel

    def save_channel(self):
        """The channel a new message goes to."""
        if self.channel is not None:
            return self.channel
        channel = ChatChannel.objects.filter(project=self.project).order_by("-is_default", "id").first()
        if channel is None:
            channel, _ = ChatChannel.objects.get_or_create(
                project=self.project, name="General", defaults={"is_default": True}
            )
        return channel

    def messages(self):
        """The messages a read receipt may name."""
        if self.channel is not None:
            return ChatMessage.objects.filter(channel=self.channel)
        return ChatMessage.objects.filter(channel__project=self.project)

    def still_allowed(self, user):
        """Re-check access before a write: a membership can be revoked
        while the socket is open."""
        return can_access_project(user, self.project)


def project_room(user, project_id, check=True):
    """The room of /ws/chat/project/<project_id>/, or None if it does not
    exist or (with check) the user may not enter it. Without check the
    room of an open socket is found again, for hooks after the handshake;
    writes re-check access themselves."""
    if check:
        project = accessible_project(user, project_id)
    else:
        pk = as_int(project_id)
        project = Project.objects.filter(pk=pk).first() if pk is not None else None
    if project is None:
        return None
    return Room("chat_project_%d" % project.pk, project)


def channel_room(user, channel_id, check=True):
    """The room of /ws/chat/<channel_id>/, where channel_id is a
    ChatChannel's primary key or slug, or None (see project_room)."""
    if check and active_user(user) is None:
        return None
    pk = as_int(channel_id)
    if pk is not None:
        channel = ChatChannel.objects.select_related("project").filter(pk=pk).first()
    else:
        channel = ChatChannel.objects.select_related("project").filter(slug=str(channel_id)).first()
    if channel is None or (check and not can_access_project(user, channel.project)):
        return None
    return Room("chat_channel_%d" % channel.pk, channel.project, channel)


def authorize(room):
    """Admit the socket to the room's group, or refuse it."""
    if room is None:
        return Outcome.deny()
    return Outcome(allow=True, join=[room.group])


def _who(user):
    return {"user_id": user.pk, "username": user.get_username()}


def connect_project(room, user):
    """Kibray's project chat: the joiner gets its own user_joined, the
    room gets one too (each socket skips its own user's)."""
    stamp = now_iso()
    frame = {"type": "user_joined", **_who(user), "timestamp": stamp}
    return Outcome(reply=[frame]).send(room.group, dict(frame))


def connect_channel(room, user):
    """The channel room tells the joiner where it is, in the
    connection_established frame the React client listens for."""
    stamp = now_iso()
    hello = {
        "type": "connection_established",
        "channel_id": room.channel.pk,
        "project_id": room.project.pk,
        **_who(user),
        "timestamp": stamp,
    }
    joined = {"type": "user_joined", **_who(user), "timestamp": stamp}
    return Outcome(reply=[hello]).send(room.group, joined)


def disconnect(room, user):
    """Tell the room the user left."""
    return Outcome().send(room.group, {"type": "user_left", **_who(user), "timestamp": now_iso()})


def message_text(frame):
    """The text of a chat frame, or an Outcome with the error to report."""
    value = frame.get("message")
    for _ in range(MAX_UNWRAP):
        if not isinstance(value, dict):
            break
        value = value.get("message")
    if not isinstance(value, str) or not value.strip():
        return Outcome.fail("invalid_message", "message must be a non-empty string")
    if len(value) > MAX_MESSAGE_LENGTH:
        return Outcome.fail("invalid_message", "message is longer than %d characters" % MAX_MESSAGE_LENGTH)
    return value


def save_message(room, user, frame):
    """Validate, clean and save a chat message, then broadcast it as
    chat_message with its new message_id."""
    if not room.still_allowed(user):
        return Outcome.closing(CLOSE_FORBIDDEN, "forbidden")
    text = message_text(frame)
    if isinstance(text, Outcome):
        return text
    cleaned = sanitize_message(text)
    msg = ChatMessage.objects.create(channel=room.save_channel(), user=user, message=cleaned)
    attachments = frame.get("attachments")
    event = {
        "type": "chat_message",
        "message_id": msg.pk,
        "message": cleaned,
        **_who(user),
        "timestamp": now_iso(),
        "attachments": attachments if isinstance(attachments, list) else [],
    }
    return Outcome().send(room.group, event)


def typing(room, user, frame):
    """Broadcast a typing indicator; is_typing is passed on as sent
    (true when absent), as Kibray did."""
    return Outcome().send(
        room.group,
        {"type": "typing_indicator", **_who(user), "is_typing": frame.get("is_typing", True)},
    )


def read_receipt(room, user, frame):
    """Mark a message of this room read by the user and tell the room."""
    if not room.still_allowed(user):
        return Outcome.closing(CLOSE_FORBIDDEN, "forbidden")
    message_id = as_int(frame.get("message_id"))
    if message_id is None:
        return Outcome.fail("invalid_message_id", "message_id must be an integer")
    msg = room.messages().filter(pk=message_id).first()
    if msg is None:
        return Outcome.fail("not_found", "no such message in this chat")
    msg.read_by.add(user)
    return Outcome().send(
        room.group,
        {"type": "read_receipt", "message_id": msg.pk, "user_id": user.pk, "timestamp": now_iso()},
    )


HANDLERS = {
    "message": save_message,
    "chat_message": save_message,
    "typing": typing,
    "read_receipt": read_receipt,
}

# Handlers that write to the database; the server re-checks the socket's
# credential before them (close 4001 when it has expired).
CRITICAL = frozenset({"message", "chat_message", "read_receipt"})


def receive(room, user, handler, frame):
    """Run the handler for one inbound frame."""
    fn = HANDLERS.get(handler)
    if fn is None:
        return Outcome.fail("unknown_type", "no handler for this type")
    return fn(room, user, frame)
