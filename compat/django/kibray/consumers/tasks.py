"""The task consumer."""
from kibray.consumers.base import KibrayConsumer
from kibray.realtime import tasks


class TaskConsumer(KibrayConsumer):
    """/ws/tasks/<project_id>/: task events of one project. Frames are
    told apart by "action", as Kibray's client sends them."""

    discriminator = "action"
    events = {
        "task_created": "task_created",
        "task_updated": "task_updated",
        "task_deleted": "task_deleted",
        "task_status_changed": "task_status_changed",
    }

    def authorize(self):
        self.project = tasks.project(self.user, self.params["project_id"])
        return tasks.authorize(self.project)

    def on_connect(self):
        return tasks.connect(self.params["project_id"])

    def handle(self, handler, frame):
        return tasks.receive(handler, frame)

    def task_created(self, event):
        return {
            "type": "task_created",
            "task_id": event.get("task_id"),
            "task_data": event.get("task_data"),
            "timestamp": event.get("timestamp"),
        }

    def task_updated(self, event):
        return {
            "type": "task_updated",
            "task_id": event.get("task_id"),
            "task_data": event.get("task_data"),
            "changes": event.get("changes"),
            "timestamp": event.get("timestamp"),
        }

    def task_deleted(self, event):
        return {"type": "task_deleted", "task_id": event.get("task_id"), "timestamp": event.get("timestamp")}

    def task_status_changed(self, event):
        return {
            "type": "task_status_changed",
            "task_id": event.get("task_id"),
            "old_status": event.get("old_status"),
            "new_status": event.get("new_status"),
            "timestamp": event.get("timestamp"),
        }
