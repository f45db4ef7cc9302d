"""Access tokens for WebSocket handshakes, and re-checks of a socket's
credential after it was accepted.

Kibray's browser clients send ?token=<simplejwt access token>, but its
server only read the session cookie (spec §6-19). TokenAuthMiddleware runs
inside Channels' AuthMiddlewareStack and accepts, in this order, a token in
the ?token= query parameter or an "Authorization: Bearer" header; a token
that proves an active user wins over the session, and a refused token falls
back to the session (browsers keep stale tokens next to a valid cookie).

scope["kibray_auth"] records where the user came from, so that
credential_problem() can re-check it later: a token's expiry, or the
session still naming the same user.
"""
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model

QUERY_PARAM = "token"


def _query_token(scope):
    query = scope.get("query_string", b"").decode("latin-1")
    values = parse_qs(query, keep_blank_values=True).get(QUERY_PARAM, [])
    if len(values) != 1 or not values[0]:
        return None
    return values[0]


def _header_token(scope):
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            parts = value.decode("latin-1").split()
            if len(parts) == 2 and parts[0] == "Bearer":
                return parts[1]
            return None
    return None


def token_user(raw):
    """The active user an access token proves, with the token's exp, or
    (None, None)."""
    from rest_framework_simplejwt.exceptions import TokenError
    from rest_framework_simplejwt.settings import api_settings
    from rest_framework_simplejwt.tokens import AccessToken

    try:
        token = AccessToken(raw)
    except TokenError:
        return None, None
    user_id = token.get(api_settings.USER_ID_CLAIM)
    if user_id is None:
        return None, None
    try:
        user = get_user_model().objects.filter(**{api_settings.USER_ID_FIELD: user_id}).first()
    except (TypeError, ValueError):
        return None, None
    if user is None or not user.is_active:
        return None, None
    return user, token.get("exp")


class TokenAuthMiddleware:
    """ASGI middleware: a valid access token sets scope["user"]."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        raw = _query_token(scope) or _header_token(scope)
        auth = None
        if raw:
            user, exp = await database_sync_to_async(token_user)(raw)
            if user is not None:
                scope["user"] = user
                auth = {"method": "jwt", "token": raw, "exp": exp}
        if auth is None:
            session = scope.get("session")
            auth = {"method": "session", "session_key": getattr(session, "session_key", None)}
        scope["kibray_auth"] = auth
        return await self.inner(scope, receive, send)


def credential_problem(scope, user):
    """Why the socket's credential no longer holds ("jwt_expired",
    "session_expired", "user_inactive"), or None while it does. Runs in a
    sync context (it may read the database)."""
    auth = scope.get("kibray_auth") or {}
    if auth.get("method") == "jwt":
        found, _ = token_user(auth["token"])
        if found is None:
            return "jwt_expired"
        if found.pk != user.pk:
            return "user_changed"
        return None
    key = auth.get("session_key")
    if not key:
        return "session_expired"
    from importlib import import_module

    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)
    data = store.load()
    if str(data.get("_auth_user_id")) != str(user.pk):
        return "session_expired"
    if not get_user_model().objects.filter(pk=user.pk, is_active=True).exists():
        return "user_inactive"
    return None
