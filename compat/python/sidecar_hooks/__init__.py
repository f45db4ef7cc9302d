"""Helpers for the Django views that answer channels-sidecar hooks.

The sidecar POSTs signed JSON to these views when a socket asks to
connect, sends a frame that needs the database, or goes away; the view's
returned dict tells the sidecar what to do. See docs/hooks.md.

    from sidecar_hooks import HookError, sidecar_hook

    @sidecar_hook(events=["authorize"])
    def authorize_project(request, hook):
        return {"allow": Membership.objects.filter(
            user_id=hook.user_id, project_id=hook.params["project_id"]).exists()}
"""
from .decorator import RESPONSE_KEYS, HookError, configured_secrets, sidecar_hook
from .request import (
    EVENT_AUTHORIZE,
    EVENT_CONNECT,
    EVENT_DISCONNECT,
    EVENT_RECEIVE,
    EVENTS,
    BadHookRequest,
    HookRequest,
)
from .signing import MAX_CLOCK_SKEW, SignatureError, sign, signed_headers, verify

__all__ = [
    "BadHookRequest",
    "EVENTS",
    "EVENT_AUTHORIZE",
    "EVENT_CONNECT",
    "EVENT_DISCONNECT",
    "EVENT_RECEIVE",
    "HookError",
    "HookRequest",
    "MAX_CLOCK_SKEW",
    "RESPONSE_KEYS",
    "SignatureError",
    "configured_secrets",
    "sidecar_hook",
    "sign",
    "signed_headers",
    "verify",
]
