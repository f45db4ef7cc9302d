"""URLs for the tests that go through Django's middleware."""
from django.urls import path

from sidecar_hooks.tests import views

urlpatterns = [
    path("hook/<int:project_id>/", views.echo_hook),
]
