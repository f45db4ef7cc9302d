"""Django-side publishers: every server-originated event the consumers
handle, sent with channel_layer.group_send, so that a socket served by
Daphne or by the sidecar gets it alike.

Kibray had none of these (spec §3, §6-9): no signal, view or task published
notification, dashboard_update, admin_update, plan_update,
inspection_update or any task_* event. Group names use canonical ids (an
int primary key, not the URL's text), the same as the consumers join.
"""
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from kibray.realtime.frames import now_iso

TASK_EVENTS = ("task_created", "task_updated", "task_deleted", "task_status_changed")


def _group_send(group, event):
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer is configured (set REDIS_URL)")
    async_to_sync(layer.group_send)(group, event)
    return {"group": group, "event": event}


def publish_notification(notification):
    """Kibray's flat notification event, for a saved Notification."""
    return _group_send(
        "notifications_%d" % notification.user_id,
        {
            "type": "notification",
            "notification_id": notification.pk,
            "title": notification.title,
            "message": notification.message,
            "notification_type": notification.notification_type,
            "priority": notification.priority or "normal",
            "url": notification.link_url or "",
            "timestamp": now_iso(),
        },
    )


def publish_send_notification(notification, category="info"):
    """The nested event of Kibray's Celery task send_websocket_notification,
    which its consumer could not handle; kept for clients that read it."""
    created = notification.created_at or timezone.now()
    return _group_send(
        "notifications_%d" % notification.user_id,
        {
            "type": "send_notification",
            "notification": {
                "id": notification.pk,
                "title": notification.title,
                "message": notification.message,
                "category": category,
                "url": notification.link_url or "",
                "created_at": created.isoformat(),
            },
        },
    )


def publish_unread_count(user_id, count):
    """Tell every tab of a user its unread count."""
    return _group_send("notifications_%d" % user_id, {"type": "unread_count", "count": count})


def publish_task_event(kind, project_id, task_id, **fields):
    """One of task_created, task_updated, task_deleted and
    task_status_changed; fields holds task_data, changes, old_status and
    new_status as the event needs (absent fields reach the client as
    null)."""
    if kind not in TASK_EVENTS:
        raise ValueError("task event must be one of %s" % ", ".join(TASK_EVENTS))
    event = {"type": kind, "task_id": task_id, "timestamp": now_iso()}
    event.update(fields)
    return _group_send("tasks_project_%d" % int(project_id), event)


def publish_dashboard_update(project_id, metric, value):
    """A changed dashboard metric of a project."""
    return _group_send(
        "dashboard_project_%d" % int(project_id),
        {"type": "dashboard_update", "metric": metric, "value": value, "timestamp": now_iso()},
    )


def publish_admin_update(data):
    """Anything for the admin dashboard."""
    return _group_send("dashboard_admin", {"type": "admin_update", "data": data, "timestamp": now_iso()})


def publish_plan_update(date, plan_id, status):
    """A daily plan of a date changed status; date is YYYY-MM-DD."""
    return _group_send(
        "daily_plan_%s" % date,
        {"type": "plan_update", "plan_id": plan_id, "status": status, "timestamp": now_iso()},
    )


def publish_inspection_update(inspection_id, defect_count, overall_score):
    """New figures of a quality inspection."""
    return _group_send(
        "quality_inspection_%d" % int(inspection_id),
        {
            "type": "inspection_update",
            "defect_count": defect_count,
            "overall_score": overall_score,
            "timestamp": now_iso(),
        },
    )
