"""Hook views that the hooks package's tests call through the sidecar's
Go client, written with the sidecar_hooks helper as a Django app would.

Membership is fixed: user 1 belongs to projects 7 and 9, user 2 to
project 9. Messages are "saved" by numbering them in this process.
"""
import itertools
import threading
import time

from django.utils import timezone
from django.utils.html import escape

from sidecar_hooks import HookError, sidecar_hook

_MEMBERS = {"1": {7, 9}, "2": {9}}
_FORBIDDEN = "forbidden"
_MAX_SLEEP = 10.0

_ids = itertools.count(1)
_ids_lock = threading.Lock()


def _next_id():
    with _ids_lock:
        return next(_ids)


@sidecar_hook(events=["authorize"])
def authorize_project(request, hook):
    """Allow members of the project in the path, nobody else."""
    project = hook.params.get("project_id")
    allowed = hook.authenticated and project in _MEMBERS.get(hook.user_id, set())
    return {"allow": bool(allowed)}


@sidecar_hook(events=["receive"])
def save_message(request, hook):
    """Number the message, clean its text, and hand both back for the
    group event; acknowledge it to the sender."""
    text = hook.frame.get("message")
    if not isinstance(text, str) or not text.strip():
        raise HookError("empty_message", "a message needs some text")
    message_id = _next_id()
    return {
        "event": {
            "message_id": message_id,
            "message": escape(text.strip()),
            "user_id": hook.user_id,
            "project_id": hook.params.get("project_id"),
            "timestamp": timezone.now(),
        },
        "reply": [{"type": "message_saved", "message_id": message_id}],
    }


@sidecar_hook(events=["receive"])
def moderate(request, hook):
    """Refuse a message holding the forbidden word with an error frame;
    pass any other."""
    text = hook.frame.get("message", "")
    if isinstance(text, str) and _FORBIDDEN in text.lower():
        return {"error": {"error": "forbidden_word", "message": "please rephrase that"}}
    return {}


@sidecar_hook
def sleepy(request, hook):
    """Sleep for frame["seconds"] (at most 10), then answer {}."""
    seconds = hook.frame.get("seconds", 2)
    if isinstance(seconds, (int, float)):
        time.sleep(min(max(float(seconds), 0.0), _MAX_SLEEP))
    return {}


@sidecar_hook(events=["receive"])
def answer(request, hook):
    """Answer with frame["answer"] as it is, so that a test can send every
    kind of answer through Django's JSON encoder."""
    return hook.frame.get("answer")
