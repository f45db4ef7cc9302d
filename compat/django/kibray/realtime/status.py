"""Presence (/ws/status/), aware of several tabs.

Kibray broadcast "offline" when any one of a user's tabs closed (spec
§6-12). Here UserStatus.connection_count counts the user's open sockets:
"online" is broadcast when it goes from 0 to 1 and "offline" when it goes
back to 0. Both servers (Daphne's consumer and the sidecar through hooks)
keep the count in the database, so their sockets count together.
"""
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from kibray.access import active_user
from kibray.models import UserStatus
from kibray.realtime.frames import now_iso
from kibray.realtime.outcome import Outcome

GROUP = "user_status"


def authorize(user):
    """Admit an active user."""
    if active_user(user) is None:
        return Outcome.deny()
    return Outcome(allow=True, join=[GROUP])


def _changed(user, status):
    return {
        "type": "user_status_changed",
        "user_id": user.pk,
        "username": user.get_username(),
        "status": status,
        "timestamp": now_iso(),
    }


def online_users():
    """Every online user, ordered by id so that the list is stable."""
    rows = UserStatus.objects.filter(is_online=True).select_related("user").order_by("user_id")
    return [
        {
            "user_id": row.user_id,
            "username": row.user.get_username(),
            "last_seen": row.last_seen.isoformat() if row.last_seen else None,
        }
        for row in rows
    ]


def connect(user):
    """Count the socket; announce the user if it was offline; greet the
    socket with the online users."""
    with transaction.atomic():
        status, _ = UserStatus.objects.get_or_create(user=user)
        UserStatus.objects.filter(pk=status.pk).update(
            connection_count=F("connection_count") + 1, is_online=True, last_heartbeat=timezone.now()
        )
        status.refresh_from_db()
        first = status.connection_count == 1
    out = Outcome()
    if first:
        out.send(GROUP, _changed(user, "online"))
    out.reply.append(
        {
            "type": "connection_established",
            "message": "Connected to status updates",
            "online_users": online_users(),
            "timestamp": now_iso(),
        }
    )
    return out


def disconnect(user):
    """Uncount the socket; announce the user offline when it was the last."""
    with transaction.atomic():
        status = UserStatus.objects.filter(user=user).first()
        if status is None or status.connection_count <= 0:
            return Outcome()
        UserStatus.objects.filter(pk=status.pk).update(connection_count=F("connection_count") - 1)
        status.refresh_from_db()
        last = status.connection_count <= 0
        if last:
            UserStatus.objects.filter(pk=status.pk).update(is_online=False, connection_count=0)
    if last:
        return Outcome().send(GROUP, _changed(user, "offline"))
    return Outcome()


def heartbeat(user):
    """Record the heartbeat and acknowledge it."""
    updated = UserStatus.objects.filter(user=user).update(last_heartbeat=timezone.now())
    if not updated:
        UserStatus.objects.create(user=user, is_online=True, connection_count=1, last_heartbeat=timezone.now())
    return Outcome(reply=[{"type": "heartbeat_ack", "timestamp": now_iso()}])


def receive(user, handler, frame):
    """Run the handler for one inbound frame (discriminator: action)."""
    if handler == "heartbeat":
        return heartbeat(user)
    return Outcome.fail("unknown_type", "no handler for this action")
