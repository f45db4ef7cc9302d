"""URLs of the kibray app: the sidecar's hooks under /internal/ws/ and the
test API under /internal/kibray/ (off unless KIBRAY_TEST_API)."""
from django.urls import path

from kibray import hook_views, testapi_views

urlpatterns = [
    path("internal/ws/chat/project/", hook_views.chat_project),
    path("internal/ws/chat/channel/", hook_views.chat_channel),
    path("internal/ws/chat/direct/", hook_views.chat_direct),
    path("internal/ws/notifications/", hook_views.notifications_hook),
    path("internal/ws/dashboard/project/", hook_views.dashboard_project),
    path("internal/ws/dashboard/admin/", hook_views.dashboard_admin),
    path("internal/ws/daily-plan/", hook_views.daily_plan),
    path("internal/ws/quality/inspection/", hook_views.quality_inspection),
    path("internal/ws/tasks/", hook_views.tasks_hook),
    path("internal/ws/status/", hook_views.status_hook),
    path("internal/ws/authorize/project/", hook_views.authorize_project),
    path("internal/kibray/reset/", testapi_views.reset),
    path("internal/kibray/fixtures/", testapi_views.fixtures),
    path("internal/kibray/credentials/", testapi_views.credentials),
    path("internal/kibray/op/", testapi_views.operation),
    path("internal/kibray/publish/", testapi_views.publish),
]
