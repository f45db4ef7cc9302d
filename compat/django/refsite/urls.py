"""URL routes of the reference project."""
from django.urls import path

from refsite import sidecar_views, views

urlpatterns = [
    path("echo/", views.echo),
    path("echo/<path:rest>", views.echo),
    path("cookies/", views.cookies),
    path("big/", views.big),
    path("status/<int:code>/", views.status),
    path("slow/", views.slow),
    path("sidecar/session/", sidecar_views.session_check),
    path("sidecar/session/calls/", sidecar_views.session_check_calls),
]
