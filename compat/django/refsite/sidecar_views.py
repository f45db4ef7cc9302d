"""The Django side of the sidecar's session callback.

When the sidecar cannot read a session itself (file sessions, a custom
SESSION_ENGINE, custom authentication backends or user models), it is
configured with

    auth:
      session_callback:
        url: http://127.0.0.1:8000/sidecar/session/
        hook_secret: ${SIDECAR_HOOK_SECRET}

and POSTs every session cookie it needs checked to this view. Copy this
module into the project, route a URL to ``session_check`` (keep it off the
public internet, or at least behind the signature), and set
``SIDECAR_HOOK_SECRET`` in settings.py (or the environment) to the same
value as ``hook_secret``.

The request:

    POST <url>
    Content-Type: application/json
    X-Sidecar-Timestamp: <Unix seconds when it was sent>
    X-Sidecar-Signature: sha256=<hex HMAC-SHA256(hook_secret, timestamp + "." + body)>

    {"session_key": "<value of the SESSION_COOKIE_NAME cookie>"}

The answers:

    200 {"user_id": "42", "backend": "...", "session_auth_hash": "...",
         "expires_at": null}
        the session belongs to this user. backend and session_auth_hash
        are the session's _auth_user_backend and _auth_user_hash (the
        sidecar's own user-table checks, when it has a database, compare
        them as for any session). expires_at (Unix seconds) may be given
        when the project knows it; the sidecar then refuses the session
        after it.
    401 {"error": "anonymous"}   no logged-in, active user for this session
    403 {"error": "forbidden"}   a project may answer this to refuse a user
    400 {"error": "bad_signature" | "stale_timestamp" | "bad_request"}
        the sidecar treats it as "callback unavailable" and refuses the
        socket; it never accepts on an error.

The session is loaded by the project's own SessionMiddleware (so
SESSION_ENGINE and SESSION_COOKIE_NAME apply) and the user is resolved as
Channels' AuthMiddleware resolves it for a WebSocket: the session's backend
must be in AUTHENTICATION_BACKENDS, backend.get_user() must return a user
(ModelBackend refuses inactive users), and _auth_user_hash must match
get_session_auth_hash(). Unlike django.contrib.auth.get_user, it accepts no
hash made with a SECRET_KEY_FALLBACKS key and writes nothing: Django would
re-key such a session, and the browser, which never sees this response,
would lose it.
"""

import hashlib
import hmac
import json
import os
import threading
import time

from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    _get_user_session_key,
    load_backend,
)
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

TIMESTAMP_HEADER = "X-Sidecar-Timestamp"
SIGNATURE_HEADER = "X-Sidecar-Signature"
SIGNATURE_PREFIX = "sha256="

# How far the sidecar's clock may be from ours; it also bounds how long a
# captured request can be replayed.
DEFAULT_MAX_SKEW = 300

# How many checks this process answered; the reference project's tests
# read it through session_check_calls to see the sidecar's cache at work.
_calls = 0
_calls_lock = threading.Lock()


def _hook_secret():
    secret = getattr(settings, "SIDECAR_HOOK_SECRET", None) or os.environ.get("SIDECAR_HOOK_SECRET", "")
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def _signature_problem(request):
    """Why the request's signature is not acceptable, or None."""
    secret = _hook_secret()
    ts = request.headers.get(TIMESTAMP_HEADER, "")
    sig = request.headers.get(SIGNATURE_HEADER, "")
    if not secret or not ts.isdigit() or not sig.startswith(SIGNATURE_PREFIX):
        return "bad_signature"
    expected = hmac.new(secret, ts.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, sig[len(SIGNATURE_PREFIX):]):
        return "bad_signature"
    max_skew = getattr(settings, "SIDECAR_HOOK_MAX_SKEW", DEFAULT_MAX_SKEW)
    if abs(time.time() - int(ts)) > max_skew:
        return "stale_timestamp"
    return None


def _session_user(request):
    """The user of request.session, as channels.auth.get_user finds it."""
    session = request.session
    try:
        user_id = _get_user_session_key(request)
        backend_path = session[BACKEND_SESSION_KEY]
    except (KeyError, ValueError, TypeError):
        return None, None
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None, None
    user = load_backend(backend_path).get_user(user_id)
    if user is None:
        return None, None
    if hasattr(user, "get_session_auth_hash"):
        session_hash = session.get(HASH_SESSION_KEY)
        if not session_hash or not constant_time_compare(session_hash, user.get_session_auth_hash()):
            return None, None
    return user, backend_path


@csrf_exempt
@require_POST
def session_check(request):
    """Answer who the session in the signed request belongs to."""
    global _calls
    with _calls_lock:
        _calls += 1
    problem = _signature_problem(request)
    if problem:
        return JsonResponse({"error": problem}, status=400)
    try:
        session_key = json.loads(request.body)["session_key"]
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": "bad_request"}, status=400)
    if not isinstance(session_key, str):
        return JsonResponse({"error": "bad_request"}, status=400)

    probe = HttpRequest()
    probe.method = "GET"
    probe.META = {"REMOTE_ADDR": request.META.get("REMOTE_ADDR", "")}
    probe.COOKIES = {settings.SESSION_COOKIE_NAME: session_key}
    SessionMiddleware(lambda r: None).process_request(probe)
    user, backend = _session_user(probe)
    if user is None:
        return JsonResponse({"error": "anonymous"}, status=401)
    return JsonResponse(
        {
            "user_id": str(user.pk),
            "backend": backend,
            "session_auth_hash": probe.session.get(HASH_SESSION_KEY, ""),
            "expires_at": None,
        }
    )


@require_GET
def session_check_calls(request):
    """How many checks this process answered (for the reference tests)."""
    with _calls_lock:
        return JsonResponse({"calls": _calls})
