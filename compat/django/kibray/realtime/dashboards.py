"""Project dashboards, the admin dashboard, daily plans and quality
inspections: sockets that only listen.

The project dashboard's first frame is a snapshot that Kibray could not
serialise (a date and Decimals, spec §2.4); here every value is plain JSON.
"""
from decimal import ROUND_HALF_UP, Decimal

from kibray.access import accessible_project, active_user, is_staff
from kibray.models import Project
from kibray.realtime.frames import as_int
from kibray.realtime.outcome import Outcome

ADMIN_GROUP = "dashboard_admin"


def _money(value):
    """A Decimal amount as a float with two decimals."""
    return float(Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def earned_value_summary(project):
    """Earned-value figures of a project, as JSON-ready values."""
    budget = Decimal(project.budget_total)
    planned = budget * Decimal(project.planned_percent) / 100
    earned = budget * Decimal(project.percent_complete) / 100
    actual = Decimal(project.total_expenses)
    return {
        "as_of": project.status_date.isoformat() if project.status_date else None,
        "percent_complete": _money(project.percent_complete),
        "planned_value": _money(planned),
        "earned_value": _money(earned),
        "actual_cost": _money(actual),
        "schedule_variance": _money(earned - planned),
        "cost_variance": _money(earned - actual),
    }


def snapshot(project):
    """The dashboard_data frame's fields for a project."""
    budget = Decimal(project.budget_total)
    expenses = Decimal(project.total_expenses)
    return {
        "project_name": project.name,
        "earned_value": earned_value_summary(project),
        "budget_total": _money(budget),
        "total_expenses": _money(expenses),
        "budget_remaining": _money(budget - expenses),
        "profit": _money(Decimal(project.contract_value) - expenses),
    }


def project_dashboard(user, project_id, check=True):
    """The project of /ws/dashboard/project/<id>/ if it exists and (with
    check) the user may see it."""
    if check:
        return accessible_project(user, project_id)
    pk = as_int(project_id)
    return Project.objects.filter(pk=pk).first() if pk is not None else None


def authorize_project(project):
    """Admit the socket to the project's dashboard group."""
    if project is None:
        return Outcome.deny()
    return Outcome(allow=True, join=["dashboard_project_%d" % project.pk])


def connect_project(project):
    """Send the snapshot."""
    return Outcome(reply=[{"type": "dashboard_data", **snapshot(project)}])


def authorize_admin(user):
    """Staff and superusers only."""
    if not is_staff(user):
        return Outcome.deny()
    return Outcome(allow=True, join=[ADMIN_GROUP])


def authorize_daily_plan(user, date):
    """Any active user; the date is not checked beyond the route's pattern,
    as in Kibray."""
    if active_user(user) is None:
        return Outcome.deny()
    return Outcome(allow=True, join=["daily_plan_%s" % date])


def authorize_inspection(user, inspection_id):
    """Any active user."""
    pk = as_int(inspection_id)
    if active_user(user) is None or pk is None:
        return Outcome.deny()
    return Outcome(allow=True, join=["quality_inspection_%d" % pk])
