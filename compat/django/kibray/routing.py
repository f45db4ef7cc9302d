"""The ten WebSocket routes, in Kibray's order (spec §1.2).

Each consumer sits behind Kibray's stack: AllowedHostsOriginValidator, then
Channels' AuthMiddlewareStack (the session cookie), then
TokenAuthMiddleware (?token= or Authorization: Bearer). Path parameters
are ASCII where Kibray's used \\d and \\w (which Python reads as Unicode), so
that the routes match the same paths in Python and in Go's regular
expressions.
"""
from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import re_path

from kibray import consumers
from kibray.auth_middleware import TokenAuthMiddleware


def kibray_stack(app):
    """Wrap a consumer in the middleware of Kibray's ASGI application."""
    return AllowedHostsOriginValidator(AuthMiddlewareStack(TokenAuthMiddleware(app)))


websocket_urlpatterns = [
    re_path(r"^ws/chat/project/(?P<project_id>[0-9]+)/$", kibray_stack(consumers.ProjectChatConsumer.as_asgi())),
    re_path(r"^ws/chat/(?P<channel_id>[0-9A-Za-z_-]+)/$", kibray_stack(consumers.ChannelChatConsumer.as_asgi())),
    re_path(r"^ws/chat/direct/(?P<user_id>[0-9]+)/$", kibray_stack(consumers.DirectChatConsumer.as_asgi())),
    re_path(r"^ws/notifications/$", kibray_stack(consumers.NotificationConsumer.as_asgi())),
    re_path(r"^ws/dashboard/project/(?P<project_id>[0-9]+)/$", kibray_stack(consumers.DashboardConsumer.as_asgi())),
    re_path(r"^ws/dashboard/admin/$", kibray_stack(consumers.AdminDashboardConsumer.as_asgi())),
    re_path(
        r"^ws/daily-plan/(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})/$",
        kibray_stack(consumers.DailyPlanConsumer.as_asgi()),
    ),
    re_path(
        r"^ws/quality/inspection/(?P<inspection_id>[0-9]+)/$",
        kibray_stack(consumers.QualityInspectionConsumer.as_asgi()),
    ),
    re_path(r"^ws/tasks/(?P<project_id>[0-9]+)/$", kibray_stack(consumers.TaskConsumer.as_asgi())),
    re_path(r"^ws/status/$", kibray_stack(consumers.StatusConsumer.as_asgi())),
]
