"""Consumers that only listen: project dashboard, admin dashboard, daily
plans and quality inspections. They take no frames (each gets a
not_accepted error)."""
from kibray.consumers.base import KibrayConsumer
from kibray.realtime import dashboards


class DashboardConsumer(KibrayConsumer):
    """/ws/dashboard/project/<project_id>/: a snapshot, then updates."""

    events = {"dashboard_update": "dashboard_update"}

    def authorize(self):
        self.project = dashboards.project_dashboard(self.user, self.params["project_id"])
        return dashboards.authorize_project(self.project)

    def on_connect(self):
        return dashboards.connect_project(self.project)

    def dashboard_update(self, event):
        return {
            "type": "dashboard_update",
            "metric": event.get("metric"),
            "value": event.get("value"),
            "timestamp": event.get("timestamp"),
        }


class AdminDashboardConsumer(KibrayConsumer):
    """/ws/dashboard/admin/: staff only."""

    events = {"admin_update": "admin_update"}

    def authorize(self):
        return dashboards.authorize_admin(self.user)

    def admin_update(self, event):
        return {"type": "admin_update", "data": event.get("data"), "timestamp": event.get("timestamp")}


class DailyPlanConsumer(KibrayConsumer):
    """/ws/daily-plan/<YYYY-MM-DD>/."""

    events = {"plan_update": "plan_update"}

    def authorize(self):
        return dashboards.authorize_daily_plan(self.user, self.params["date"])

    def plan_update(self, event):
        return {
            "type": "plan_update",
            "plan_id": event.get("plan_id"),
            "status": event.get("status"),
            "timestamp": event.get("timestamp"),
        }


class QualityInspectionConsumer(KibrayConsumer):
    """/ws/quality/inspection/<inspection_id>/."""

    events = {"inspection_update": "inspection_update"}

    def authorize(self):
        return dashboards.authorize_inspection(self.user, self.params["inspection_id"])

    def inspection_update(self, event):
        return {
            "type": "inspection_update",
            "defect_count": event.get("defect_count"),
            "overall_score": event.get("overall_score"),
            "timestamp": event.get("timestamp"),
        }
