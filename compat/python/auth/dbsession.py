#!/usr/bin/python3
"""Drive the real Django's db session engine and user model, for Go tests.

The reference project's settings (compat/django/refsite/settings.py) are
used, so the database is chosen by the environment: DJANGO_DB_PATH for
SQLite, or DJANGO_DB_ENGINE=django.db.backends.postgresql with
DJANGO_DB_NAME/HOST/PORT/USER/PASSWORD; SECRET_KEY, SESSION_ENGINE,
DJANGO_USE_TZ and DJANGO_TIME_ZONE as the settings document.

Input (stdin): {"simple_jwt": {...}?, "ops": [op, ...]}, where simple_jwt
becomes settings.SIMPLE_JWT; output (stdout):
{"versions": {...}, "results": [...]}, one result per op, in order.

Ops:
  migrate                                  -> {}
  create_user   {"username", "password", "is_active"?}  -> {"id": pk}
  login         {"username", "password"}   -> {"sessionid": cookie value}
                (django.test.Client.login: authenticate, login, save)
  logout        {"sessionid"}              -> {"deleted": bool}
                (Client.logout: django.contrib.auth.logout flushes the row)
  set_password  {"username", "password"}   -> {}
  set_active    {"username", "is_active"}  -> {}
  expire_in     {"sessionid", "seconds"}   -> {"expire_date": str}
                (moves expire_date to timezone.now() + seconds)
  session_row   {"sessionid"}              -> {"exists": bool, "session_data"?, "expire_date"?}
  channels_user {"sessionid"}              -> {"user_id": pk or null}
                (channels.auth.get_user on the session, as AuthMiddleware
                resolves scope["user"]; it may flush the session)
  mint_token    {"username"}               -> {"token": AccessToken.for_user}
  jwt_user      {"token"}                  -> {"user_id": pk} or {"error": code}
                (simplejwt's JWTAuthentication: token, then get_user)
"""

import datetime
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "django"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refsite.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.sessions.models import Session  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402


def client_with(sessionid):
    c = Client()
    c.cookies[settings.SESSION_COOKIE_NAME] = sessionid
    return c


def op_migrate(op):
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return {}


def op_create_user(op):
    user = get_user_model().objects.create_user(
        username=op["username"], password=op["password"], is_active=op.get("is_active", True)
    )
    return {"id": user.pk}


def op_login(op):
    c = Client()
    if not c.login(username=op["username"], password=op["password"]):
        raise SystemExit("login refused for %s" % op["username"])
    return {"sessionid": c.cookies[settings.SESSION_COOKIE_NAME].value}


def op_logout(op):
    existed = Session.objects.filter(pk=op["sessionid"]).exists()
    client_with(op["sessionid"]).logout()
    return {"deleted": existed and not Session.objects.filter(pk=op["sessionid"]).exists()}


def op_set_password(op):
    user = get_user_model().objects.get(username=op["username"])
    user.set_password(op["password"])
    user.save()
    return {}


def op_set_active(op):
    user = get_user_model().objects.get(username=op["username"])
    user.is_active = op["is_active"]
    user.save()
    return {}


def op_expire_in(op):
    when = timezone.now() + datetime.timedelta(seconds=op["seconds"])
    Session.objects.filter(pk=op["sessionid"]).update(expire_date=when)
    return {"expire_date": str(when)}


def op_session_row(op):
    row = Session.objects.filter(pk=op["sessionid"]).first()
    if row is None:
        return {"exists": False}
    return {"exists": True, "session_data": row.session_data, "expire_date": str(row.expire_date)}


def op_channels_user(op):
    from asgiref.sync import async_to_sync
    from channels.auth import get_user
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore(session_key=op["sessionid"])
    user = async_to_sync(get_user)({"session": store})
    return {"user_id": user.pk if user.is_authenticated else None}


def op_mint_token(op):
    from rest_framework_simplejwt.tokens import AccessToken

    user = get_user_model().objects.get(username=op["username"])
    return {"token": str(AccessToken.for_user(user))}


def op_jwt_user(op):
    from rest_framework.exceptions import APIException
    from rest_framework_simplejwt.authentication import JWTAuthentication

    auth = JWTAuthentication()
    try:
        user = auth.get_user(auth.get_validated_token(op["token"].encode()))
    except APIException as e:
        # simplejwt puts its code in a detail dict: {"detail", "code"}.
        code = e.detail.get("code") if isinstance(e.detail, dict) else e.get_codes()
        return {"error": str(code)}
    return {"user_id": user.pk}


OPS = {
    "migrate": op_migrate,
    "create_user": op_create_user,
    "login": op_login,
    "logout": op_logout,
    "set_password": op_set_password,
    "set_active": op_set_active,
    "expire_in": op_expire_in,
    "session_row": op_session_row,
    "channels_user": op_channels_user,
    "mint_token": op_mint_token,
    "jwt_user": op_jwt_user,
}


def main():
    req = json.load(sys.stdin)
    if req.get("simple_jwt"):
        # Read once, when simplejwt's settings module is first imported.
        settings.SIMPLE_JWT = dict(req["simple_jwt"])
    results = [OPS[op["op"]](op) for op in req["ops"]]
    import channels

    versions = {"django": django.get_version(), "channels": channels.__version__}
    json.dump({"versions": versions, "results": results}, sys.stdout, default=str)


if __name__ == "__main__":
    main()
