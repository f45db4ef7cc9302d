"""Who may open which socket.

Kibray's chat check compared a free-text client name with the user's name
and email and so refused every non-staff employee (spec §6-11). Here the
rule is explicit and the same for chat, tasks and dashboards: staff and
superusers see every project, anyone else needs an active ProjectAccess.
"""
from django.contrib.auth import get_user_model

from kibray.models import Project, ProjectAccess
from kibray.realtime.frames import as_int


def active_user(user):
    """The user if it is an authenticated, active account, else None."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    return user


def user_by_id(user_id):
    """The active user with this primary key (int or digit string), or
    None: hooks name users by id, and an account deactivated since the
    handshake must count as gone."""
    pk = as_int(user_id)
    if pk is None:
        return None
    return get_user_model().objects.filter(pk=pk, is_active=True).first()


def is_staff(user):
    """Staff or superuser, as Kibray's admin dashboard requires."""
    user = active_user(user)
    return bool(user and (user.is_staff or user.is_superuser))


def can_access_project(user, project):
    """Whether user may see project's chat, tasks and dashboard."""
    user = active_user(user)
    if user is None or project is None:
        return False
    if user.is_staff or user.is_superuser:
        return True
    return ProjectAccess.objects.filter(project=project, user=user, is_active=True).exists()


def accessible_project(user, project_id):
    """The project with this id if user may access it, else None."""
    pk = as_int(project_id)
    if pk is None:
        return None
    project = Project.objects.filter(pk=pk).first()
    if not can_access_project(user, project):
        return None
    return project
