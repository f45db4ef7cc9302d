"""Notifications (/ws/notifications/).

Kibray let anonymous users in (and then crashed), answered mark_read on the
sending tab only, and ignored mark_all_read and dismiss (spec §2.3, §6-7).
Here the socket needs a user, and every change of the unread count is sent
to all of the user's tabs through notifications_<user id>.
"""
from kibray.access import active_user
from kibray.models import Notification
from kibray.realtime.frames import as_int
from kibray.realtime.outcome import Outcome


def group(user):
    """The user's notification group."""
    return "notifications_%d" % user.pk


def unread_count(user):
    """How many of the user's notifications are unread."""
    return Notification.objects.filter(user=user, is_read=False).count()


def authorize(user):
    """Admit an active user to its own group."""
    if active_user(user) is None:
        return Outcome.deny()
    return Outcome(allow=True, join=[group(user)])


def connect(user):
    """Tell the new socket the unread count."""
    return Outcome(reply=[{"type": "unread_count", "count": unread_count(user)}])


def _count_changed(user):
    return Outcome().send(group(user), {"type": "unread_count", "count": unread_count(user)})


def _notification_id(frame):
    return as_int(frame.get("notification_id"))


def mark_read(user, frame):
    """Mark one of the user's notifications read."""
    nid = _notification_id(frame)
    if nid is None:
        return Outcome.fail("invalid_notification_id", "notification_id must be an integer")
    Notification.objects.filter(pk=nid, user=user).update(is_read=True)
    return _count_changed(user)


def mark_all_read(user, frame):
    """Mark all of the user's notifications read."""
    Notification.objects.filter(user=user, is_read=False).update(is_read=True)
    return _count_changed(user)


def dismiss(user, frame):
    """Delete one of the user's notifications."""
    nid = _notification_id(frame)
    if nid is None:
        return Outcome.fail("invalid_notification_id", "notification_id must be an integer")
    Notification.objects.filter(pk=nid, user=user).delete()
    return _count_changed(user)


HANDLERS = {"mark_read": mark_read, "mark_all_read": mark_all_read, "dismiss": dismiss}
CRITICAL = frozenset(HANDLERS)


def receive(user, handler, frame):
    """Run the handler for one inbound frame."""
    fn = HANDLERS.get(handler)
    if fn is None:
        return Outcome.fail("unknown_type", "no handler for this type")
    return fn(user, frame)
