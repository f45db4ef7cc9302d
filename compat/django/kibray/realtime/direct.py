"""Direct messages (/ws/chat/direct/<user_id>/).

Kibray's DirectChatConsumer let anyone in and crashed on every message
(spec §2.2, §6-6). Here both users must be active accounts and different
people, and messages are saved as DirectMessage rows.
"""
from django.contrib.auth import get_user_model

from kibray.access import active_user, user_by_id
from kibray.models import DirectMessage
from kibray.realtime.chat import message_text
from kibray.realtime.frames import CLOSE_FORBIDDEN, as_int, now_iso
from kibray.realtime.outcome import Outcome
from kibray.sanitize import sanitize_message


class Pair:
    """The two users of a conversation and their group."""

    def __init__(self, me, other):
        self.other = other
        low, high = sorted([me.pk, other.pk])
        self.group = "direct_chat_%d_%d" % (low, high)


def pair(user, other_id, check=True):
    """The conversation of user with other_id, or None if it may not be
    opened. Without check an open socket's conversation is found again even
    if the other user was deactivated since (sending re-checks)."""
    me = active_user(user) if check else user
    if me is None:
        return None
    if check:
        other = user_by_id(other_id)
    else:
        pk = as_int(other_id)
        other = get_user_model().objects.filter(pk=pk).first() if pk is not None else None
    if other is None or other.pk == me.pk:
        return None
    return Pair(me, other)


def authorize(p):
    """Admit the socket to the conversation's group, or refuse it."""
    if p is None:
        return Outcome.deny()
    return Outcome(allow=True, join=[p.group])


def send_message(p, user, frame):
    """Save and broadcast a direct message; the sender gets it back too."""
    if user_by_id(p.other.pk) is None:
        return Outcome.closing(CLOSE_FORBIDDEN, "forbidden")
    text = message_text(frame)
    if isinstance(text, Outcome):
        return text
    cleaned = sanitize_message(text)
    msg = DirectMessage.objects.create(sender=user, recipient=p.other, message=cleaned)
    return Outcome().send(
        p.group,
        {
            "type": "direct_message",
            "message_id": msg.pk,
            "message": cleaned,
            "from_user_id": user.pk,
            "from_username": user.get_username(),
            "timestamp": now_iso(),
        },
    )


HANDLERS = {"message": send_message, "chat_message": send_message}
CRITICAL = frozenset(HANDLERS)


def receive(p, user, handler, frame):
    """Run the handler for one inbound frame."""
    fn = HANDLERS.get(handler)
    if fn is None:
        return Outcome.fail("unknown_type", "no handler for this type")
    return fn(p, user, frame)
