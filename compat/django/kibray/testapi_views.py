"""Test-only endpoints: reset the app's data, create fixtures, mint real
credentials, change access mid-test, and make Django publish any event.

They exist only when settings.KIBRAY_TEST_API is true (refsite reads it
from the KIBRAY_TEST_API environment variable); otherwise every one of them
answers 404. They take and return JSON and are not protected otherwise, so
they must never be switched on outside tests.

Credentials are made by Django itself: the session cookie by
django.test.Client.force_login (the configured SESSION_ENGINE, the real
login()), the access token by simplejwt's AccessToken.for_user.
"""
import datetime
import functools
import json
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import transaction
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from kibray import publishers
from kibray.models import ChatChannel, ChatMessage, Notification, Project, ProjectAccess, UserStatus


class BadRequest(Exception):
    """The request names something that does not exist or is malformed."""


def test_api(view):
    """POST-only JSON view, present only with KIBRAY_TEST_API."""

    @csrf_exempt
    @functools.wraps(view)
    def wrapper(request):
        if not getattr(settings, "KIBRAY_TEST_API", False):
            raise Http404("test API disabled")
        if request.method != "POST":
            return JsonResponse({"detail": "use POST"}, status=405)
        try:
            body = json.loads(request.body or b"{}")
            if not isinstance(body, dict):
                raise BadRequest("the body must be a JSON object")
            return JsonResponse(view(body))
        except (BadRequest, ValueError, KeyError, TypeError) as e:
            return JsonResponse({"detail": "%s: %s" % (type(e).__name__, e)}, status=400)

    return wrapper


def _user(username):
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise BadRequest("no user %r" % username)
    return user


def _project(pk):
    project = Project.objects.filter(pk=pk).first()
    if project is None:
        raise BadRequest("no project %r" % pk)
    return project


@test_api
def reset(body):
    """Delete every user, project and session, and clear the cache (rate
    limits). Primary keys keep counting, so ids never repeat in a run."""
    with transaction.atomic():
        Project.objects.all().delete()
        get_user_model().objects.all().delete()
        Session.objects.all().delete()
    cache.clear()
    return {"ok": True}


@test_api
def fixtures(body):
    """Create users, projects with members, chat channels, messages and
    notifications; answer the ids by the names given.

    {"users": [{"username", "is_staff"?, "is_superuser"?, "is_active"?}],
     "projects": [{"name", "title"?, "client"?, "budget_total"?, "total_expenses"?,
                   "contract_value"?, "percent_complete"?, "planned_percent"?,
                   "status_date"?, "members"?: [username]}],
     "channels": [{"name", "project", "title"?, "slug"?, "is_default"?}],
     "messages": [{"name", "channel", "user", "text"}],
     "notifications": [{"name", "user", "title", "message"?, "notification_type"?,
                        "priority"?, "url"?, "is_read"?}]}
    -> {"users": {username: id}, "projects": {name: id}, "channels": {...},
        "messages": {...}, "notifications": {...}}
    """
    out = {"users": {}, "projects": {}, "channels": {}, "messages": {}, "notifications": {}}
    User = get_user_model()
    with transaction.atomic():
        for u in body.get("users", []):
            user = User(
                username=u["username"],
                is_staff=bool(u.get("is_staff", False)),
                is_superuser=bool(u.get("is_superuser", False)),
                is_active=bool(u.get("is_active", True)),
            )
            user.set_unusable_password()
            user.save()
            out["users"][user.username] = user.pk
        for p in body.get("projects", []):
            project = Project.objects.create(
                name=p.get("title", p["name"]),
                client=p.get("client", ""),
                budget_total=Decimal(str(p.get("budget_total", "0"))),
                total_expenses=Decimal(str(p.get("total_expenses", "0"))),
                contract_value=Decimal(str(p.get("contract_value", "0"))),
                percent_complete=Decimal(str(p.get("percent_complete", "0"))),
                planned_percent=Decimal(str(p.get("planned_percent", "0"))),
                status_date=datetime.date.fromisoformat(p["status_date"]) if p.get("status_date") else None,
            )
            for member in p.get("members", []):
                ProjectAccess.objects.create(project=project, user=_user(member))
            out["projects"][p["name"]] = project.pk
        for c in body.get("channels", []):
            channel = ChatChannel.objects.create(
                project=_project(out["projects"][c["project"]]),
                name=c.get("title", c["name"]),
                slug=c.get("slug") or None,
                is_default=bool(c.get("is_default", False)),
            )
            out["channels"][c["name"]] = channel.pk
        for m in body.get("messages", []):
            msg = ChatMessage.objects.create(
                channel=ChatChannel.objects.get(pk=out["channels"][m["channel"]]),
                user=_user(m["user"]),
                message=m["text"],
            )
            out["messages"][m["name"]] = msg.pk
        for n in body.get("notifications", []):
            note = Notification.objects.create(
                user=_user(n["user"]),
                title=n["title"],
                message=n.get("message", ""),
                notification_type=n.get("notification_type", "system"),
                priority=n.get("priority", "normal"),
                link_url=n.get("url", ""),
                is_read=bool(n.get("is_read", False)),
            )
            out["notifications"][n["name"]] = note.pk
    return out


@test_api
def credentials(body):
    """Mint a credential for a user.

    {"user": username, "kind": "cookie"} -> {"name": cookie name, "value"}
    {"user": username, "kind": "token", "lifetime"?: seconds (may be negative)}
        -> {"value": access token}
    """
    user = _user(body["user"])
    kind = body.get("kind")
    if kind == "cookie":
        from django.test import Client

        client = Client()
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        name = settings.SESSION_COOKIE_NAME
        return {"name": name, "value": client.cookies[name].value}
    if kind == "token":
        from rest_framework_simplejwt.tokens import AccessToken

        token = AccessToken.for_user(user)
        if "lifetime" in body:
            token.set_exp(from_time=token.current_time, lifetime=datetime.timedelta(seconds=float(body["lifetime"])))
        return {"value": str(token)}
    raise BadRequest("kind must be cookie or token")


@test_api
def operation(body):
    """Change data mid-test.

    {"op": "revoke_access"|"grant_access", "project": id, "user": username}
    {"op": "deactivate_user"|"activate_user", "user": username}
    {"op": "presence"} -> {"rows": [{"username", "is_online", "connection_count"}]}
    """
    op = body.get("op")
    if op in ("revoke_access", "grant_access"):
        access, _ = ProjectAccess.objects.get_or_create(project=_project(body["project"]), user=_user(body["user"]))
        access.is_active = op == "grant_access"
        access.save()
        return {"ok": True}
    if op in ("deactivate_user", "activate_user"):
        user = _user(body["user"])
        user.is_active = op == "activate_user"
        user.save()
        return {"ok": True}
    if op == "presence":
        rows = UserStatus.objects.select_related("user").order_by("user_id")
        return {
            "rows": [
                {"username": r.user.get_username(), "is_online": r.is_online, "connection_count": r.connection_count}
                for r in rows
            ]
        }
    raise BadRequest("unknown op %r" % op)


@test_api
def publish(body):
    """Make Django publish one event through the channel layer.

    {"kind": "notification", "user": username, "title", "message"?,
     "notification_type"?, "priority"?, "url"?}   (creates the row; the
        post_save signal publishes it) -> {"notification_id"}
    {"kind": "send_notification", "user", "title", "message"?, "category"?, "url"?}
    {"kind": "unread_count", "user"}
    {"kind": "task_created"|"task_updated"|"task_deleted"|"task_status_changed",
     "project": id, "task_id", "task_data"?, "changes"?, "old_status"?, "new_status"?}
    {"kind": "dashboard_update", "project": id, "metric", "value"}
    {"kind": "admin_update", "data"}
    {"kind": "plan_update", "date", "plan_id", "status"}
    {"kind": "inspection_update", "inspection_id", "defect_count", "overall_score"}
    -> {"group", "event"} (and notification_id where a row was made)
    """
    kind = body.get("kind")
    if kind == "notification":
        with transaction.atomic():
            note = Notification.objects.create(
                user=_user(body["user"]),
                title=body["title"],
                message=body.get("message", ""),
                notification_type=body.get("notification_type", "system"),
                priority=body.get("priority", "normal"),
                link_url=body.get("url", ""),
            )
        return {"notification_id": note.pk, "group": "notifications_%d" % note.user_id}
    if kind == "send_notification":
        note = Notification(
            user=_user(body["user"]),
            title=body["title"],
            message=body.get("message", ""),
            link_url=body.get("url", ""),
        )
        # Only the nested form is published, as Kibray's task sent it.
        note.skip_publish = True
        note.save()
        sent = publishers.publish_send_notification(note, category=body.get("category", "info"))
        return dict(sent, notification_id=note.pk)
    if kind == "unread_count":
        user = _user(body["user"])
        return publishers.publish_unread_count(user.pk, Notification.objects.filter(user=user, is_read=False).count())
    if kind in publishers.TASK_EVENTS:
        fields = {k: body[k] for k in ("task_data", "changes", "old_status", "new_status") if k in body}
        return publishers.publish_task_event(kind, body["project"], body.get("task_id"), **fields)
    if kind == "dashboard_update":
        return publishers.publish_dashboard_update(body["project"], body.get("metric"), body.get("value"))
    if kind == "admin_update":
        return publishers.publish_admin_update(body.get("data"))
    if kind == "plan_update":
        date = str(body["date"])
        datetime.date.fromisoformat(date)
        return publishers.publish_plan_update(date, body.get("plan_id"), body.get("status"))
    if kind == "inspection_update":
        return publishers.publish_inspection_update(
            body["inspection_id"], body.get("defect_count"), body.get("overall_score")
        )
    raise BadRequest("unknown kind %r" % kind)
