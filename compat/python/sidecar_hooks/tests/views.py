"""Hook views used by the unit tests."""
from sidecar_hooks import sidecar_hook


@sidecar_hook
def echo_hook(request, hook, project_id):
    return {"reply": [{"type": "seen", "project_id": project_id, "event": hook.event}]}
