"""The view decorator that makes a Django view a sidecar hook."""
import functools
import logging

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .request import EVENT_AUTHORIZE, EVENTS, BadHookRequest, HookRequest
from .signing import SignatureError, verify

logger = logging.getLogger("sidecar_hooks")

#: The keys a hook answer may have; the sidecar refuses any other.
RESPONSE_KEYS = frozenset(("allow", "reply", "event", "group_send", "join", "leave", "error", "close"))


class HookError(Exception):
    """Raise in a hook view to answer with an error frame: the socket gets
    ``{"type": "error", "error": code, "message": message}``, the handler
    stops and the socket stays open."""

    def __init__(self, code, message=""):
        super().__init__(message or code)
        self.code = code
        self.message = message


def configured_secrets():
    """Return the accepted secrets as a list: settings.SIDECAR_HOOK_SECRETS
    (a list, newest first, for rotation) or settings.SIDECAR_HOOK_SECRET.
    Raise ImproperlyConfigured when there is none or one is empty."""
    secrets = getattr(settings, "SIDECAR_HOOK_SECRETS", None)
    if secrets is None:
        single = getattr(settings, "SIDECAR_HOOK_SECRET", None)
        secrets = [] if single is None else [single]
    if isinstance(secrets, (str, bytes)):
        raise ImproperlyConfigured("SIDECAR_HOOK_SECRETS must be a list of secrets, not one string")
    secrets = list(secrets)
    if not secrets:
        raise ImproperlyConfigured("set SIDECAR_HOOK_SECRETS (or SIDECAR_HOOK_SECRET) to the sidecar's hooks.secret")
    for s in secrets:
        if not isinstance(s, (str, bytes)) or not s:
            raise ImproperlyConfigured("every SIDECAR_HOOK_SECRETS entry must be a non-empty string")
    return secrets


def _refuse(status, code, message):
    return JsonResponse({"error": code, "message": message}, status=status)


def _check_answer(hook, answer):
    """Catch the mistakes that are easiest to make, here where a traceback
    points at the view; the sidecar checks every type again."""
    unknown = sorted(set(answer) - RESPONSE_KEYS)
    if unknown:
        raise TypeError(
            "hook answer has unknown key(s) %s; known: %s" % (", ".join(unknown), ", ".join(sorted(RESPONSE_KEYS)))
        )
    if "allow" in answer and answer["allow"] is not None and not isinstance(answer["allow"], bool):
        raise TypeError("hook answer 'allow' must be True or False")
    if hook.event == EVENT_AUTHORIZE and not isinstance(answer.get("allow"), bool):
        # Failing closed: a view that forgets to decide lets nobody in.
        raise TypeError("an authorize hook must answer {'allow': True} or {'allow': False}")


def sidecar_hook(view=None, *, events=None):
    """Make a Django view a sidecar hook.

    The decorated view is called as ``view(request, hook, *args, **kwargs)``
    with ``hook`` a HookRequest, only for POSTs whose signature and
    timestamp check out against settings.SIDECAR_HOOK_SECRETS (or
    SIDECAR_HOOK_SECRET). It returns a dict of actions (allow, reply,
    event, group_send, join, leave, error, close), sent as JSON with
    Django's JSON encoder (datetimes, UUIDs and Decimals are fine); None
    means no action, except for authorize, which must say ``allow``.
    Raising HookError answers with an error frame. An HttpResponse is
    passed through as it is.

    Refusals: 405 for a method other than POST, 403 for a bad signature or
    a stale timestamp, 400 for a body that is not a hook request or an
    event not in ``events`` (when given). Each is JSON:
    ``{"error": "<code>", "message": "<why>"}``.

    Use it bare (``@sidecar_hook``) or with the events the view accepts
    (``@sidecar_hook(events=["receive"])``).
    """
    if events is not None:
        events = tuple(events)
        for e in events:
            if e not in EVENTS:
                raise ValueError("unknown hook event %r; known: %s" % (e, ", ".join(EVENTS)))

    def decorate(func):
        @functools.wraps(func)
        def wrapper(request, *args, **kwargs):
            if request.method != "POST":
                response = _refuse(405, "method_not_allowed", "hooks are called with POST")
                response["Allow"] = "POST"
                return response
            secrets = configured_secrets()
            body = request.body
            try:
                verify(
                    body,
                    request.META.get("HTTP_X_SIDECAR_TIMESTAMP"),
                    request.META.get("HTTP_X_SIDECAR_SIGNATURE"),
                    secrets,
                )
            except SignatureError as exc:
                logger.warning("refused hook call to %s: %s", request.path, exc.message)
                return _refuse(403, exc.code, exc.message)
            try:
                hook = HookRequest.from_body(body)
            except BadHookRequest as exc:
                return _refuse(400, "bad_request", str(exc))
            if events is not None and hook.event not in events:
                return _refuse(
                    400, "unexpected_event", "this hook takes %s, not %s" % (", ".join(events), hook.event)
                )
            try:
                answer = func(request, hook, *args, **kwargs)
            except HookError as exc:
                return JsonResponse({"error": {"error": exc.code, "message": exc.message}})
            if isinstance(answer, HttpResponse):
                return answer
            if answer is None:
                answer = {}
            if not isinstance(answer, dict):
                raise TypeError("a hook view must return a dict, not %s" % type(answer).__name__)
            _check_answer(hook, answer)
            return JsonResponse(answer)

        return csrf_exempt(wrapper)

    if view is not None:
        return decorate(view)
    return decorate
