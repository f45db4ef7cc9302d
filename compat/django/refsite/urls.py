"""URL routes of the reference project."""
from django.urls import include, path

from refsite import hook_views, sidecar_views, views

urlpatterns = [
    path("echo/", views.echo),
    path("echo/<path:rest>", views.echo),
    path("cookies/", views.cookies),
    path("big/", views.big),
    path("status/<int:code>/", views.status),
    path("slow/", views.slow),
    path("sidecar/session/", sidecar_views.session_check),
    path("sidecar/session/calls/", sidecar_views.session_check_calls),
    # Hook views of the hooks package's tests (refsite/hook_views.py).
    path("hooktest/authorize/", hook_views.authorize_project),
    path("hooktest/message/", hook_views.save_message),
    path("hooktest/moderate/", hook_views.moderate),
    path("hooktest/sleepy/", hook_views.sleepy),
    path("hooktest/answer/", hook_views.answer),
    # The kibray app: the sidecar's hooks (/internal/ws/...) and its test
    # API (/internal/kibray/..., off unless KIBRAY_TEST_API).
    path("", include("kibray.urls")),
]
