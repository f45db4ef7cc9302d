"""Task updates (/ws/tasks/<project_id>/): members of the project only
(Kibray let any authenticated user in, spec §6-10)."""
from kibray.access import accessible_project
from kibray.realtime.frames import now_iso
from kibray.realtime.outcome import Outcome


def project(user, project_id):
    """The project if the user may follow its tasks."""
    return accessible_project(user, project_id)


def authorize(p):
    """Admit the socket to the project's task group."""
    if p is None:
        return Outcome.deny()
    return Outcome(allow=True, join=["tasks_project_%d" % p.pk])


def connect(project_id):
    """Kibray's greeting; project_id is echoed as the URL's text."""
    return Outcome(
        reply=[
            {
                "type": "connection_established",
                "message": "Connected to task updates",
                "project_id": str(project_id),
                "timestamp": now_iso(),
            }
        ]
    )


def subscribe_task(frame):
    """An acknowledgement only, as in Kibray: task_id is echoed as sent."""
    return Outcome(reply=[{"type": "task_subscribed", "task_id": frame.get("task_id"), "timestamp": now_iso()}])


def receive(handler, frame):
    """Run the handler for one inbound frame (discriminator: action)."""
    if handler == "subscribe_task":
        return subscribe_task(frame)
    return Outcome.fail("unknown_type", "no handler for this action")
